/* tp_strict.c — test plugin whose create_config accepts exactly one
 * argument, level=1..9, and rejects anything else with a message. */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "wsock.h"

static const char *strict_config(apr_pool_t *p, int argc, char *const argv[], void **cfg)
{
    char *end;
    long level;

    if (argc != 1 || strncmp(argv[0], "level=", 6) != 0) {
        return "expects exactly one argument, level=1..9";
    }
    level = strtol(argv[0] + 6, &end, 10);
    if (*end || end == argv[0] + 6 || level < 1 || level > 9) {
        return apr_psprintf(p, "bad level '%s' (1..9)", argv[0] + 6);
    }
    *cfg = apr_pmemdup(p, &level, sizeof(level));
    return NULL;
}

static int echo(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    return wsock_send(wc, is_text, data, len) == APR_SUCCESS ? 0 : 1011;
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "strict",
    .create_config = strict_config,
    .on_message = echo,
};
