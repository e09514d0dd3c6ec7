/*
 * wsock_echo.c — the echo handler: every message goes back to its sender
 * unchanged, text as text and binary as binary.  Uses only wsock.h.
 */
#include "wsock.h"

static void echo_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    if (wsock_send(wc, is_text, data, len) != APR_SUCCESS) {
        wsock_close(wc, 1011, "echo failed");
    }
}

const wsock_handler wsock_echo_handler = {
    WSOCK_API_VERSION,
    "echo",
    NULL,
    echo_message,
    NULL
};
