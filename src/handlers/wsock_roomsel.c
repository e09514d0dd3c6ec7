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

int wsock_roomsel_valid_arg(const char *s)
{
    apr_size_t n = strlen(s);

    return n >= 1 && n <= WSOCK_ROOMSEL_ARG_MAX
           && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_.-") == n;
}

int wsock_query_names(const char *q, const char *name)
{
    apr_size_t len = strlen(name);

    while (q && *q) {
        apr_size_t n = strcspn(q, "=&");

        if (n == len && strncasecmp(q, name, len) == 0) {
            return 1;
        }
        q = strchr(q, '&');
        q = q ? q + 1 : NULL;
    }
    return 0;
}

int wsock_roomsel_pick(wsock_conn *wc, const char *handler, int from_query,
                       wsock_roomsel *sel)
{
    const char *loc = wsock_location(wc);
    const char *arg = from_query ? wsock_query_arg(wc, "room") : NULL;
    int n;

    if (from_query && !arg && wsock_query_names(wsock_query(wc), "room")) {
        arg = "";                   /* there, but not decodable: refused below */
    }
    if (arg && !wsock_roomsel_valid_arg(arg)) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(wc),
                      WSOCKNO(0610) "%s %s: refused, the room query argument must be "
                      "1-64 characters of A-Z a-z 0-9 _ . -", handler, wsock_uri(wc));
        return HTTP_BAD_REQUEST;
    }
    n = arg ? snprintf(sel->room, sizeof(sel->room), "%s?%s", loc, arg)
            : snprintf(sel->room, sizeof(sel->room), "%s", loc);
    if (n < 0 || (apr_size_t)n >= sizeof(sel->room)) {
        return wsock_roomsel_too_long(wc, handler, sel);
    }
    sel->label = arg ? sel->room + strlen(loc) + 1 : sel->room;
    return 0;
}

int wsock_roomsel_too_long(wsock_conn *wc, const char *handler, const wsock_roomsel *sel)
{
    ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, wsock_connection(wc),
                  WSOCKNO(0611) "%s %s: cannot join room '%s' (the section path "
                  "must be at most %d bytes with room=query, %d without)",
                  handler, wsock_uri(wc), sel->room,
                  WSOCK_ROOMSEL_KEY_MAX - WSOCK_ROOMSEL_ARG_MAX - 1, WSOCK_ROOMSEL_KEY_MAX);
    return HTTP_INTERNAL_SERVER_ERROR;
}

int wsock_roomsel_join(wsock_conn *wc, const char *handler, int from_query,
                       wsock_roomsel *sel)
{
    int rc = wsock_roomsel_pick(wc, handler, from_query, sel);

    if (rc == 0 && wsock_join(wc, sel->room) != APR_SUCCESS) {
        rc = wsock_roomsel_too_long(wc, handler, sel);
    }
    return rc;
}
