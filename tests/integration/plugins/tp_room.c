/*
 * tp_room.c — test plugin for rooms.  A client joins the room named by its
 * query argument "room" (400 without one); every text message it sends is
 * published to that room, except "leave", which takes it out of the room.
 */
#include <string.h>

#include <httpd.h>

#include "wsock.h"

static int room_open(wsock_conn *wc)
{
    const char *room = wsock_query_arg(wc, "room");

    if (room == NULL || wsock_join(wc, room) != APR_SUCCESS) {
        return 400;
    }
    return 0;
}

static int room_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    const char *room = wsock_query_arg(wc, "room");

    if (is_text && len == 5 && memcmp(data, "leave", 5) == 0) {
        wsock_leave(wc, room);
        return 0;
    }
    wsock_publish(room, is_text, data, len);
    return 0;
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "room",
    .on_open = room_open,
    .on_message = room_message,
};
