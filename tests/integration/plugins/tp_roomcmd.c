/*
 * tp_roomcmd.c — test plugin "roomcmd": rooms on command, within one
 * connection, so a test can join and leave thousands of rooms quickly and
 * read the room counts the server keeps.
 *
 * on_open joins the room of query argument "room", if given.  Text
 * messages are commands (NAME: 1-128 bytes, the rest of the message):
 *   join NAME         join; silent, "err join NAME <status>" on failure
 *   leave NAME        leave; silent
 *   pub NAME TEXT     wsock_publish(NAME, TEXT); silent
 *   count NAME        answers "count NAME <wsock_room_count_local>
 *                     <wsock_room_count>"
 *   pid               answers "pid <process id>": which child serves it
 *   sync              answers "sync": everything sent before is done
 * Anything else closes the connection with 1003.  What the rooms deliver
 * arrives as sent.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wsock.h"

#define NAME_MAX_LEN 128

static int roomcmd_open(wsock_conn *wc)
{
    const char *room = wsock_query_arg(wc, "room");

    if (room && wsock_join(wc, room) != APR_SUCCESS) {
        return 400;
    }
    return 0;
}

/* The word after the command, up to a space (or the end): 0 if bad. */
static int take_name(const char *data, apr_size_t len, apr_size_t skip, char *name,
                     const char **rest, apr_size_t *rest_len)
{
    apr_size_t n = 0;

    while (skip + n < len && data[skip + n] != ' ') {
        n++;
    }
    if (n == 0 || n > NAME_MAX_LEN) {
        return 0;
    }
    memcpy(name, data + skip, n);
    name[n] = '\0';
    *rest = data + skip + n + (skip + n < len ? 1 : 0);
    *rest_len = len - (apr_size_t)(*rest - data);
    return 1;
}

static int is_cmd(const char *data, apr_size_t len, const char *cmd)
{
    apr_size_t n = strlen(cmd);

    return len >= n && memcmp(data, cmd, n) == 0;
}

static int reply(wsock_conn *wc, const char *text)
{
    return wsock_send(wc, 1, text, strlen(text)) == APR_SUCCESS ? 0 : 1011;
}

static int roomcmd_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    char name[NAME_MAX_LEN + 1], out[NAME_MAX_LEN + 64];
    const char *rest;
    apr_size_t rest_len;
    apr_status_t rv;

    if (!is_text) {
        return 1003;
    }
    if (len == 3 && memcmp(data, "pid", 3) == 0) {
        snprintf(out, sizeof(out), "pid %ld", (long)getpid());
        return reply(wc, out);
    }
    if (len == 4 && memcmp(data, "sync", 4) == 0) {
        return reply(wc, "sync");
    }
    if (is_cmd(data, len, "join ") && take_name(data, len, 5, name, &rest, &rest_len)) {
        rv = wsock_join(wc, name);
        if (rv != APR_SUCCESS) {
            snprintf(out, sizeof(out), "err join %s %d", name, (int)rv);
            return reply(wc, out);
        }
        return 0;
    }
    if (is_cmd(data, len, "leave ") && take_name(data, len, 6, name, &rest, &rest_len)) {
        wsock_leave(wc, name);
        return 0;
    }
    if (is_cmd(data, len, "pub ") && take_name(data, len, 4, name, &rest, &rest_len)) {
        wsock_publish(name, 1, rest, rest_len);
        return 0;
    }
    if (is_cmd(data, len, "count ") && take_name(data, len, 6, name, &rest, &rest_len)) {
        snprintf(out, sizeof(out), "count %s %d %d", name, wsock_room_count_local(name),
                 wsock_room_count(name));
        return reply(wc, out);
    }
    return 1003;
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "roomcmd",
    .on_open = roomcmd_open,
    .on_message = roomcmd_message,
};
