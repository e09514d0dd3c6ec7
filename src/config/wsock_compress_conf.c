/*
 * wsock_compress_conf.c — WSockCompression: whether a location accepts
 * permessage-deflate (RFC 7692) and with which parameters.  One line sets
 * them all (an inner section's line replaces the outer one whole), so what
 * a location does can be read from a single line.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <httpd.h>
#include <http_config.h>
#include <apr_strings.h>

#include "wsock_config.h"
#include "wsock_parse.h"

/* A whole number from min to max, or NULL with an error. */
static const char *number(cmd_parms *cmd, const char *name, const char *v, int min, int max,
                          int *out)
{
    long n;

    if (!wsock_parse_long(v, min, max, &n)) {
        return apr_psprintf(cmd->pool, "WSockCompression: %s='%s' is not a whole number "
                            "from %d to %d", name, v, min, max);
    }
    *out = (int)n;
    return NULL;
}

static const char *on_off(cmd_parms *cmd, const char *name, const char *v, int *out)
{
    int k = wsock_keyword_of_two(v, "off", "on");

    if (k < 0) {
        return apr_psprintf(cmd->pool, "WSockCompression: %s='%s' is not on or off", name, v);
    }
    *out = k;
    return NULL;
}

/* One name=value parameter into cc. */
static const char *parameter(cmd_parms *cmd, wsock_compress_conf *cc, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *name;
    const char *v;

    if (eq == NULL || eq == arg) {
        return apr_psprintf(cmd->pool, "WSockCompression: '%s' is not name=value", arg);
    }
    name = apr_pstrmemdup(cmd->temp_pool, arg, (apr_size_t)(eq - arg));
    v = eq + 1;
    if (strcasecmp(name, "level") == 0) {
        return number(cmd, name, v, 0, 9, &cc->level);
    }
    if (strcasecmp(name, "mem_level") == 0) {
        return number(cmd, name, v, 1, 9, &cc->mem_level);
    }
    if (strcasecmp(name, "threshold") == 0) {
        apr_off_t n;
        const char *err = wsock_parse_bytes(cmd, v, 0, &n);
        if (err == NULL && n > 1024 * 1024 * 1024) {
            err = "WSockCompression: threshold is at most 1G";
        }
        cc->threshold = (apr_size_t)n;
        return err;
    }
    if (strcasecmp(name, "server_no_context_takeover") == 0) {
        return on_off(cmd, name, v, &cc->policy.server_no_context_takeover);
    }
    if (strcasecmp(name, "client_no_context_takeover") == 0) {
        return on_off(cmd, name, v, &cc->policy.client_no_context_takeover);
    }
    /* zlib cannot write raw deflate with a 256-byte window: the server's
     * own window starts at 9 (a client asking for 8 gets uncompressed
     * messages, see wsock_compress.c). */
    if (strcasecmp(name, "server_max_window_bits") == 0) {
        return number(cmd, name, v, 9, 15, &cc->policy.server_max_window_bits);
    }
    if (strcasecmp(name, "client_max_window_bits") == 0) {
        return number(cmd, name, v, 8, 15, &cc->policy.client_max_window_bits);
    }
    return apr_psprintf(cmd->pool, "WSockCompression: unknown parameter '%s' (level, threshold, "
                        "server_no_context_takeover, client_no_context_takeover, "
                        "server_max_window_bits, client_max_window_bits, mem_level)", name);
}

/* WSockCompression on|off [name=value ...] */
const char *wsock_cmd_compression(cmd_parms *cmd, void *conf, int argc, char *const argv[])
{
    wsock_dir_conf *d = conf;
    wsock_compress_conf *cc = apr_pcalloc(cmd->pool, sizeof(*cc));
    int on = argc ? wsock_keyword_of_two(argv[0], "off", "on") : -1;

    if (on < 0) {
        return "WSockCompression takes on or off, then name=value parameters";
    }
    if (!on && argc > 1) {
        return "WSockCompression off takes no parameters";
    }
    cc->on = on;
    cc->level = WSOCK_DEFAULT_COMPRESS_LEVEL;
    cc->mem_level = WSOCK_DEFAULT_COMPRESS_MEMLEVEL;
    cc->threshold = WSOCK_DEFAULT_COMPRESS_THRESHOLD;
    cc->policy.server_no_context_takeover = 1;
    cc->policy.client_no_context_takeover = 1;
    cc->policy.server_max_window_bits = 15;
    cc->policy.client_max_window_bits = 15;
    for (int i = 1; i < argc; i++) {
        const char *err;

        for (int j = 1; j < i; j++) {
            const char *a = argv[i], *b = argv[j];
            size_t la = strcspn(a, "="), lb = strcspn(b, "=");
            if (la == lb && strncasecmp(a, b, la) == 0) {
                return apr_psprintf(cmd->pool, "WSockCompression: '%.*s' is given twice",
                                    (int)la, a);
            }
        }
        if ((err = parameter(cmd, cc, argv[i])) != NULL) {
            return err;
        }
    }
    d->compress = cc;
    return NULL;
}
