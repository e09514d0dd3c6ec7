/*
 * wsock_echo.c — the echo handler: every message goes back to its sender
 * unchanged, text as text and binary as binary.  Uses only wsock.h.
 */
#include "wsock.h"

static int echo_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    /* A send can only fail if the connection is closing or its queue is
     * full; either way this connection is done. */
    return wsock_send(wc, is_text, data, len) == APR_SUCCESS ? 0 : 1011;
}

const wsock_handler wsock_echo_handler = {
    .api_version = WSOCK_API_VERSION,
    .name = "echo",
    .on_message = echo_message,
};
