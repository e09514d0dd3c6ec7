/*
 * wsock_roomsel.c — the room of a connection for chat-like handlers (see
 * wsock_roomsel.h).  Query rooms live under their section: /a?room=x is
 * not /b?room=x.
 */
#include <stdio.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>

#include "wsock_roomsel.h"
#include "wsock_log.h"

APLOG_USE_MODULE(wsock);

int wsock_arg_onoff(const char *v, int *flag)
{
    if (strcasecmp(v, "on") == 0 || strcasecmp(v, "off") == 0) {
        *flag = strcasecmp(v, "on") == 0;
        return 1;
    }
    return 0;
}

int wsock_roomsel_arg(const char *arg, int *from_query)
{
    if (strncasecmp(arg, "room=", 5) != 0) {
        return 0;
    }
    if (strcasecmp(arg + 5, "location") != 0 && strcasecmp(arg + 5, "query") != 0) {
        return -1;
    }
    *from_query = strcasecmp(arg + 5, "query") == 0;
    return 1;
}

static int valid_room_arg(const char *s)
{
    apr_size_t n = strlen(s);

    return n >= 1 && n <= WSOCK_ROOMSEL_ARG_MAX
           && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_.-") == n;
}

/* Whether the raw query names a "room" argument: wsock_query_arg() leaves
 * out one it cannot decode (room=a%00b), which must not fall back to the
 * section's room. */
static int query_has_room(const char *q)
{
    while (q && *q) {
        apr_size_t n = strcspn(q, "=&");

        if (n == 4 && strncasecmp(q, "room", 4) == 0) {
            return 1;
        }
        q = strchr(q, '&');
        q = q ? q + 1 : NULL;
    }
    return 0;
}

int wsock_roomsel_join(wsock_conn *wc, const char *handler, int from_query,
                       wsock_roomsel *sel)
{
    const char *loc = wsock_location(wc);
    const char *arg = from_query ? wsock_query_arg(wc, "room") : NULL;
    int n;

    if (from_query && !arg && query_has_room(wsock_query(wc))) {
        arg = "";                   /* there, but not decodable: refused below */
    }
    if (arg && !valid_room_arg(arg)) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(wc),
                      WSOCKNO(0610) "%s %s: refused, the room query argument must be "
                      "1-64 characters of A-Z a-z 0-9 _ . -", handler, wsock_uri(wc));
        return HTTP_BAD_REQUEST;
    }
    n = arg ? snprintf(sel->room, sizeof(sel->room), "%s?%s", loc, arg)
            : snprintf(sel->room, sizeof(sel->room), "%s", loc);
    if (n < 0 || (apr_size_t)n >= sizeof(sel->room) || wsock_join(wc, sel->room) != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, wsock_connection(wc),
                      WSOCKNO(0611) "%s %s: cannot join room '%s' (the section path "
                      "must be at most %d bytes with room=query, %d without)",
                      handler, wsock_uri(wc), sel->room,
                      WSOCK_ROOMSEL_KEY_MAX - WSOCK_ROOMSEL_ARG_MAX - 1, WSOCK_ROOMSEL_KEY_MAX);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sel->label = arg ? sel->room + strlen(loc) + 1 : sel->room;
    return 0;
}
