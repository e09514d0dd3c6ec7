/* tp_wrong_api.c — test plugin built for the next API version: mod_wsock
 * must refuse to load it (at configtest), naming the file. */
#include "wsock.h"

static int noop(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    (void)wc, (void)is_text, (void)data, (void)len;
    return 0;
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION + 1,
    .name = "wrongapi",
    .on_message = noop,
};
