/* tp_nosym.c — test plugin that is a valid .so without the "wsock_plugin"
 * symbol (the table is exported under another name). */
#include "wsock.h"

static int noop(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    (void)wc, (void)is_text, (void)data, (void)len;
    return 0;
}

WSOCK_PLUGIN_EXPORT const wsock_handler not_the_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "nosym",
    .on_message = noop,
};
