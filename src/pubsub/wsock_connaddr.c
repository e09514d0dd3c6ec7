/*
 * wsock_connaddr.c — a connection addressed by its id, in whichever child
 * process of the server holds it (see wsock_connaddr.h).
 *
 * Cost: an addressable connection holds one room of its child (a few
 * dozen bytes) and one slot of the bus's room table (WSockBusRooms), so
 * connections are addressable only where a handler asks for it (the
 * backend handler) or the location says WSockAddressable on.
 */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_strings.h>

#include "wsock_bus.h"
#include "wsock_codec.h"
#include "wsock_connaddr.h"
#include "wsock_log.h"
#include "wsock_rooms.h"

APLOG_USE_MODULE(wsock);

#define ROOM_SIZE (WSOCK_CONNADDR_ID_LEN + 3)
#define REASON_MAX 123                      /* what a close frame holds */

int wsock_connaddr_valid_id(const char *id)
{
    return id && strlen(id) == WSOCK_CONNADDR_ID_LEN
           && strspn(id, "0123456789abcdef") == WSOCK_CONNADDR_ID_LEN;
}

void wsock_connaddr_room(char *room, const char *id)
{
    room[0] = WSOCK_ROOM_RESERVED;
    room[1] = 'c';
    memcpy(room + 2, id, WSOCK_CONNADDR_ID_LEN);
    room[ROOM_SIZE - 1] = '\0';
}

int wsock_connaddr_valid_code(int code)
{
    return code == 1000 || code == 1008 || (code >= 3000 && code <= 4999);
}

apr_status_t wsock_make_addressable(wsock_conn *wc)
{
    char room[ROOM_SIZE];
    apr_status_t rv;

    wsock_connaddr_room(room, wsock_connection_id(wc));
    rv = wsock_rooms_join_reserved(wc, room);
    if (rv == APR_SUCCESS) {
        /* (where admins, and tests, find which id a client got) */
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wsock_connection(wc),
                      WSOCKNO(1508) "WebSocket %s from %s is addressable as connection=%s",
                      wsock_uri(wc), wsock_conn_id(wc), wsock_connection_id(wc));
    }
    return rv;
}

int wsock_connaddr_open(wsock_conn *wc, int addressable)
{
    apr_status_t rv = addressable ? wsock_make_addressable(wc) : APR_SUCCESS;

    if (rv != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, wsock_connection(wc),
                      WSOCKNO(1500) "WebSocket %s: cannot make it addressable "
                      "(WSockAddressable on); refused with 503", wsock_uri(wc));
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return 0;
}

/* Does what a tagged message says to wc; 1 if it was queued. */
static int apply(wsock_conn *wc, const unsigned char *m, apr_size_t len)
{
    char reason[REASON_MAX + 1];
    apr_size_t rlen;

    switch (len ? m[0] : 0) {
    case 'T':
    case 'B':
        return wsock_send(wc, m[0] == 'T', m + 1, len - 1) == APR_SUCCESS;
    case 'C':
        if (len < 3) {
            return 0;
        }
        rlen = len - 3 > REASON_MAX ? REASON_MAX : len - 3;
        memcpy(reason, m + 3, rlen);
        reason[rlen] = '\0';
        wsock_close(wc, (m[1] << 8) | m[2], reason);
        return 1;
    default:
        return 0;
    }
}

/* This child's connection with id, if any, does what m says; else the
 * bus carries m to the child that holds it.  How many connections of the
 * server have the id (0 or 1). */
static int dispatch(const char *id, const unsigned char *m, apr_size_t len, int local)
{
    char room[ROOM_SIZE];
    wsock_conn *wc;
    int n;

    if (!wsock_connaddr_valid_id(id)) {
        return 0;
    }
    wsock_connaddr_room(room, id);
    if ((wc = wsock_rooms_member(room)) != NULL) {
        apply(wc, m, len);
        wsock_unref(wc);
        return 1;
    }
    if (local) {
        return 0;
    }
    /* The bus posts only to a child that holds the room (to all of them
     * if its table overflowed and it cannot tell). */
    wsock_bus_post(room, 0, m, len);
    n = wsock_room_count(room);
    return n > 0;
}

void wsock_connaddr_deliver(const char *room, const void *data, apr_size_t len)
{
    wsock_conn *wc = wsock_rooms_member(room);

    if (wc) {
        apply(wc, data, len);
        wsock_unref(wc);
    }
}

static int id_send(const char *id, int is_text, const void *data, apr_size_t len, int local)
{
    unsigned char *m;
    int n;

    if (is_text && !wsock_utf8_valid(data, len)) {
        return 0;
    }
    if ((m = malloc(len + 1)) == NULL) {
        return 0;
    }
    m[0] = is_text ? 'T' : 'B';
    memcpy(m + 1, data, len);
    n = dispatch(id, m, len + 1, local);
    free(m);
    return n;
}

int wsock_id_send(const char *id, int is_text, const void *data, apr_size_t len)
{
    return id_send(id, is_text, data, len, 0);
}

int wsock_id_send_local(const char *id, int is_text, const void *data, apr_size_t len)
{
    return id_send(id, is_text, data, len, 1);
}

static int id_close(const char *id, int code, const char *reason, int local)
{
    unsigned char m[3 + REASON_MAX];
    apr_size_t rlen = reason ? strlen(reason) : 0;

    if (!wsock_connaddr_valid_code(code) || rlen > REASON_MAX
        || !wsock_utf8_valid((const uint8_t *)(reason ? reason : ""), rlen)) {
        return 0;
    }
    m[0] = 'C';
    m[1] = (unsigned char)(code >> 8);
    m[2] = (unsigned char)(code & 0xff);
    memcpy(m + 3, reason ? reason : "", rlen);
    return dispatch(id, m, 3 + rlen, local);
}

int wsock_id_close(const char *id, int code, const char *reason)
{
    return id_close(id, code, reason, 0);
}

int wsock_id_close_local(const char *id, int code, const char *reason)
{
    return id_close(id, code, reason, 1);
}

int wsock_id_connected(const char *id)
{
    char room[ROOM_SIZE];

    if (!wsock_connaddr_valid_id(id)) {
        return 0;
    }
    wsock_connaddr_room(room, id);
    return wsock_room_count(room) > 0;
}
