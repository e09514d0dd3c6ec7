/*
 * tp_joinrefuse.c — test plugin "joinrefuse": on_open does what an
 * accepting handler does (joins a room, queues a greeting, publishes to the
 * room) and then refuses the connection.  Every refusal path must undo the
 * joins: a member left behind would be written to after its connection is
 * gone (issue 12, item 2).
 *
 * Query arguments of the handshake:
 *   room=NAME    the room to join (default "jr")
 *   refuse=NNN   what on_open returns (default 403): an HTTP status refuses
 *                before the upgrade, a close code after it
 *   extra=N      also join N more rooms, NAME.0 .. NAME.N-1 (default 0)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsock.h"

static int joinrefuse_open(wsock_conn *wc)
{
    const char *room = wsock_query_arg(wc, "room");
    const char *refuse = wsock_query_arg(wc, "refuse");
    const char *extra = wsock_query_arg(wc, "extra");
    int n = extra ? atoi(extra) : 0;
    char name[160];

    if (room == NULL) {
        room = "jr";
    }
    if (wsock_join(wc, room) != APR_SUCCESS) {
        return 500;
    }
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%.100s.%d", room, i);
        if (wsock_join(wc, name) != APR_SUCCESS) {
            return 500;
        }
    }
    /* Output queued before the answer is decided, and a message to the
     * room it is in at that moment (itself included). */
    wsock_send(wc, 1, "greeting", 8);
    wsock_publish(room, 1, "joined-then-refused", 19);
    return refuse ? atoi(refuse) : 403;
}

static int joinrefuse_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    /* Only reached when refuse= named a close code: the client is closed
     * right after the upgrade and should not get here. */
    (void)wc;
    (void)is_text;
    (void)data;
    (void)len;
    return 1011;
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "joinrefuse",
    .on_open = joinrefuse_open,
    .on_message = joinrefuse_message,
};
