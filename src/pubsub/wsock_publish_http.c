/*
 * wsock_publish_http.c — publishing over HTTP: SetHandler wsock-publish
 * (docs/publish.md).
 *
 *   POST   /pub?location=/chat[&room=lobby]   the body to a room, named as
 *                                            its subscribers are named
 *   POST   /pub?connection=ID                the body to one connection
 *   GET    /pub?connection=ID                is it connected (this server)
 *   DELETE /pub?connection=ID[&code=N][&reason=TEXT]   close it
 *
 * The target location's configuration is found the Apache way, with a
 * subrequest for its path: its WSockHandler, WSockMaxMessageSize and
 * section.  Rooms of the redis handler are published through this child's
 * Redis relay in the envelope clients get, marked as the server's; every
 * other room through wsock_publish() (every child process, by the bus).
 * The body is read bounded by the target's WSockMaxMessageSize (413
 * beyond, before it is read when Content-Length says so); Apache's
 * Timeout bounds a slow one.  Every answer is JSON.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_script.h>
#include <apr_strings.h>

#include <jansson.h>

#include "wsock.h"
#include "wsock_codec.h"
#include "wsock_config.h"
#include "wsock_connaddr.h"
#include "wsock_log.h"
#include "wsock_publish.h"
#include "wsock_redis_publish.h"
#include "wsock_roomsel.h"
#include "wsock_counters.h"

APLOG_USE_MODULE(wsock);
extern module AP_MODULE_DECLARE_DATA wsock_module;
extern const wsock_handler wsock_chat_handler;
int wsock_chat_room_from_query(const void *cfg);

#define ALLOW_ROOM "POST"
#define ALLOW_CONN "GET, POST, DELETE"

/* Writes obj (taken) as the answer with status. */
static int answer(request_rec *r, int status, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);

    json_decref(obj);
    r->status = status;
    wsock_count(status >= 200 && status < 300 ? WSOCK_C_PUBLISHED : WSOCK_C_PUBLISH_REFUSED, 1);
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (text) {
        ap_rputs(text, r);
        ap_rputc('\n', r);
        free(text);
    }
    return OK;
}

/* An error answer {"error":why} after a log line with tag (at info: the
 * caller's mistakes are not the server's). */
static int fail(request_rec *r, int status, const char *tag, const char *why)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "%s%s %s: %d, %s", tag, r->method, r->uri,
                  status, why);
    if (status == HTTP_REQUEST_ENTITY_TOO_LARGE || status == HTTP_BAD_REQUEST
        || status == HTTP_UNSUPPORTED_MEDIA_TYPE) {
        /* what is left of the body is not read: the connection goes */
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    return answer(r, status, json_pack("{s:s}", "error", why));
}

/* WSockPublishAccess: 0 if the client may publish here. */
static int access_refused(request_rec *r, const wsock_dir_conf *d)
{
    int access = d->publish_access == WSOCK_UNSET ? WSOCK_PUBLISH_LOCAL : d->publish_access;
    const char *ip = r->useragent_ip;

    if (access == WSOCK_PUBLISH_ANY) {
        return 0;
    }
    if (access == WSOCK_PUBLISH_AUTHENTICATED) {
        return r->user == NULL;
    }
    /* after mod_remoteip: a proxied client is not local */
    return !(ip && (strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0
                    || strncmp(ip, "::ffff:127.", 11) == 0));
}

/* A body that is text: a text type or JSON, in UTF-8.  0 binary, 1
 * text, or an HTTP status (415: a charset other than UTF-8). */
static int body_kind(request_rec *r)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *cs;
    char *type;
    int text;

    if (ct == NULL) {
        return 0;
    }
    type = ap_getword(r->pool, &ct, ';');
    ap_str_tolower(type);
    apr_collapse_spaces(type, type);
    text = strncmp(type, "text/", 5) == 0 || strcmp(type, "application/json") == 0
           || (strncmp(type, "application/", 12) == 0
               && strlen(type) > 17 && strcmp(type + strlen(type) - 5, "+json") == 0);
    if (!text) {
        return 0;
    }
    if ((cs = ap_strcasestr(ct, "charset=")) != NULL) {
        cs += 8;
        cs += *cs == '"';
        if (strncasecmp(cs, "utf-8", 5) != 0 && strncasecmp(cs, "utf8", 4) != 0) {
            return HTTP_UNSUPPORTED_MEDIA_TYPE;
        }
    }
    return 1;
}

static apr_status_t free_body(void *p)
{
    free(p);
    return APR_SUCCESS;
}

/* Reads the body, at most limit bytes: OK, 413 beyond, 400 if it could
 * not be read (a slow client past Apache's Timeout, a broken chunk). */
static int read_body(request_rec *r, apr_uint64_t limit, char **body, apr_size_t *len)
{
    apr_size_t cap = 0, n = 0;
    char *buf = NULL;
    long got;
    int rc;

    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        return rc;
    }
    if (r->remaining > 0 && (apr_uint64_t)r->remaining > limit) {
        return HTTP_REQUEST_ENTITY_TOO_LARGE;   /* not read at all */
    }
    if (ap_should_client_block(r)) {
        for (;;) {
            if (cap - n < 8192) {
                /* the known length, or doubling: at most twice the limit */
                apr_size_t want = r->remaining > 0 && n == 0 ? (apr_size_t)r->remaining + 1
                                                             : (cap ? 2 * cap : 16384);
                char *p;

                if (want > limit + 8192) {
                    want = (apr_size_t)limit + 8192;
                }
                if (want <= cap || (p = realloc(buf, want)) == NULL) {
                    free(buf);
                    return want <= cap ? HTTP_REQUEST_ENTITY_TOO_LARGE
                                       : HTTP_INTERNAL_SERVER_ERROR;
                }
                buf = p;
                cap = want;
            }
            if ((got = ap_get_client_block(r, buf + n, cap - n)) < 0) {
                free(buf);
                return HTTP_BAD_REQUEST;
            }
            if (got == 0) {
                break;
            }
            n += (apr_size_t)got;
            if (n > limit) {
                free(buf);
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
        }
    }
    if (buf) {
        apr_pool_cleanup_register(r->pool, buf, free_body, apr_pool_cleanup_null);
    }
    *body = buf ? buf : "";
    *len = n;
    return OK;
}

typedef struct {
    char *body;
    apr_size_t len;
    int is_text;
} pub_body;

/* The body of a POST, as text or binary, within limit: OK or an answer. */
static int take_body(request_rec *r, apr_uint64_t limit, pub_body *b, int *answered)
{
    int kind = body_kind(r), rc;

    *answered = 1;
    if (kind > 1) {
        return fail(r, kind, WSOCKNO(1502), "a text body must be UTF-8 (charset=utf-8)");
    }
    if ((rc = read_body(r, limit, &b->body, &b->len)) != OK) {
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return fail(r, rc, WSOCKNO(1503), apr_psprintf(r->pool, "the body is larger "
                        "than the target's WSockMaxMessageSize (%" APR_UINT64_T_FMT
                        " bytes)", limit));
        }
        return fail(r, rc, WSOCKNO(1504), "the body could not be read");
    }
    b->is_text = kind == 1;
    if (b->is_text && !wsock_utf8_valid((const uint8_t *)b->body, b->len)) {
        return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502), "the body is not valid UTF-8");
    }
    *answered = 0;
    return OK;
}

static apr_uint64_t max_message(const wsock_dir_conf *d)
{
    return d->max_message == WSOCK_UNSET ? WSOCK_DEFAULT_MAX_MESSAGE
                                         : (apr_uint64_t)d->max_message;
}

/* 503 for a relay that could not take or confirm the message. */
static int relay_failed(request_rec *r, apr_status_t rv)
{
    const char *why = rv == APR_EAGAIN ? "the Redis relay is down"
                      : rv == APR_ENOSPC ? "the Redis relay is busy (WSockRedisQueue)"
                      : rv == APR_TIMEUP ? "Redis did not confirm within WSockRedisTimeout "
                                           "(the message may still arrive)"
                      : rv == APR_ECONNRESET ? "the Redis relay went down before Redis "
                                               "confirmed (the message may still arrive)"
                      : "Redis refused the message";

    apr_table_setn(r->headers_out, "Retry-After", "1");
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, WSOCKNO(1505) "%s %s: 503, %s",
                  r->method, r->uri, why);
    return answer(r, HTTP_SERVICE_UNAVAILABLE, json_pack("{s:s}", "error", why));
}

/* Whether the location's handler takes rooms from the query: 1, 0, or -1
 * for a plugin (its own business). */
static int room_from_query(const wsock_dir_conf *td)
{
    if (td->handler == &wsock_chat_handler) {
        return wsock_chat_room_from_query(td->handler_cfg);
    }
    if (td->handler == &wsock_redis_handler) {
        return wsock_redis_room_from_query(td->handler_cfg);
    }
    return -1;
}

/* POST ?location=PATH[&room=NAME] */
static int publish_room(request_rec *r, const char *location, const char *room_arg)
{
    const wsock_dir_conf *td;
    char room[WSOCK_ROOMSEL_KEY_MAX + 1];
    request_rec *rr;
    pub_body b;
    int answered, rc, n, fq, receivers;
    json_t *out;

    if (location[0] != '/' || strlen(location) > WSOCK_ROOMSEL_KEY_MAX
        || strpbrk(location, "?#") != NULL) {
        return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502), "location must be a path (/...)");
    }
    if (room_arg && !wsock_roomsel_valid_arg(room_arg)) {
        return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502),
                    "room must be 1-64 characters of A-Z a-z 0-9 _ . -");
    }
    /* Its configuration as a request for it would see it (the subrequest's
     * own access checks do not matter here: its per-directory config is
     * made before them). */
    rr = ap_sub_req_lookup_uri(location, r, NULL);
    td = rr && rr->per_dir_config ? ap_get_module_config(rr->per_dir_config, &wsock_module)
                                  : NULL;
    if (td == NULL || td->handler == NULL) {
        if (rr) {
            ap_destroy_sub_req(rr);
        }
        return fail(r, HTTP_NOT_FOUND, WSOCKNO(1506),
                    "no WebSocket handler is configured at that location");
    }
    fq = room_from_query(td);
    if (room_arg && fq == 0) {
        ap_destroy_sub_req(rr);
        return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502), "room is only for a location "
                    "whose handler has room=query");
    }
    n = room_arg ? apr_snprintf(room, sizeof(room), "%s?%s", td->location, room_arg)
                 : apr_snprintf(room, sizeof(room), "%s", td->location);
    if (n < 0 || (apr_size_t)n >= sizeof(room) - 1) {
        ap_destroy_sub_req(rr);
        return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502), "the room's name is too long");
    }
    if ((rc = take_body(r, max_message(td), &b, &answered)) != OK || answered) {
        ap_destroy_sub_req(rr);
        return rc;
    }
    out = json_pack("{s:s,s:s?,s:s,s:I,s:s}", "location", td->location, "room", room_arg,
                    "handler", td->handler_name, "bytes", (json_int_t)b.len,
                    "type", b.is_text ? "text" : "binary");
    if (td->handler == &wsock_redis_handler) {
        wsock_redis_sent sent;
        apr_status_t rv;

        if (!b.is_text) {
            ap_destroy_sub_req(rr);
            json_decref(out);
            return fail(r, HTTP_UNSUPPORTED_MEDIA_TYPE, WSOCKNO(1502), "the redis "
                        "handler carries text only (send text/* or JSON, in UTF-8)");
        }
        receivers = wsock_room_count(room);
        rv = wsock_redis_publish_room(td->handler_cfg, room, b.body, b.len, &sent);
        if (rv != APR_SUCCESS) {
            ap_destroy_sub_req(rr);
            json_decref(out);
            return relay_failed(r, rv);
        }
        if (*sent.id) {
            json_object_set_new(out, "id", json_string(sent.id));
        }
        json_object_set_new(out, "relayed", json_true());
    }
    else {
        /* before: the count says who was there to receive it */
        receivers = wsock_room_count(room);
        wsock_publish(room, b.is_text, b.body, b.len);
    }
    json_object_set_new(out, "receivers", json_integer(receivers));
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, WSOCKNO(1507) "published %" APR_SIZE_T_FMT
                  " bytes to room %s of %s (%d receivers here)", b.len, room,
                  td->handler_name, receivers);
    ap_destroy_sub_req(rr);
    return answer(r, HTTP_OK, out);
}

/* ?connection=ID: POST sends to it, GET says whether it is connected,
 * DELETE closes it. */
static int address_connection(request_rec *r, const wsock_dir_conf *d, const char *id,
                              apr_table_t *args)
{
    int here = wsock_id_connected(id);
    int relay = !here && wsock_redis_publish_in_use();
    unsigned char *tagged;
    wsock_redis_sent sent;
    apr_status_t rv;
    json_t *out;

    if (r->method_number == M_GET) {
        out = json_pack("{s:s,s:b}", "connection", id, "connected", here);
        return answer(r, here ? HTTP_OK : HTTP_NOT_FOUND, out);
    }
    if (r->method_number == M_DELETE) {
        const char *code_s = apr_table_get(args, "code");
        const char *reason = apr_table_get(args, "reason");
        char *end = NULL;
        long code = code_s ? strtol(code_s, &end, 10) : 1000;
        apr_size_t rlen;

        reason = reason ? reason : "";
        rlen = strlen(reason);
        if ((code_s && (*code_s == '\0' || *end != '\0'))
            || !wsock_connaddr_valid_code((int)code)) {
            return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502),
                        "code must be 1000, 1008 or 3000-4999");
        }
        if (rlen > 123 || !wsock_utf8_valid((const uint8_t *)reason, rlen)) {
            return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502),
                        "reason must be UTF-8, at most 123 bytes");
        }
        out = json_pack("{s:s,s:i}", "connection", id, "code", (int)code);
        if (here) {
            wsock_id_close(id, (int)code, reason);
            json_object_set_new(out, "closed", json_true());
            return answer(r, HTTP_OK, out);
        }
        if (!relay) {
            json_object_set_new(out, "closed", json_false());
            return answer(r, HTTP_NOT_FOUND, out);
        }
        tagged = apr_palloc(r->pool, 3 + rlen);
        tagged[0] = 'C';
        tagged[1] = (unsigned char)(code >> 8);
        tagged[2] = (unsigned char)(code & 0xff);
        memcpy(tagged + 3, reason, rlen);
        if ((rv = wsock_redis_publish_conn(id, tagged, 3 + rlen, &sent)) != APR_SUCCESS) {
            json_decref(out);
            return relay_failed(r, rv);
        }
        json_object_set_new(out, "relayed", json_true());
        return answer(r, HTTP_ACCEPTED, out);
    }
    else {
        pub_body b;
        int answered, rc;

        if ((rc = take_body(r, max_message(d), &b, &answered)) != OK || answered) {
            return rc;
        }
        out = json_pack("{s:s,s:I,s:s}", "connection", id, "bytes", (json_int_t)b.len,
                        "type", b.is_text ? "text" : "binary");
        if (here && wsock_id_send(id, b.is_text, b.body, b.len)) {
            json_object_set_new(out, "receivers", json_integer(1));
            return answer(r, HTTP_OK, out);
        }
        if (!relay) {
            json_object_set_new(out, "receivers", json_integer(0));
            return answer(r, HTTP_NOT_FOUND, out);
        }
        tagged = apr_palloc(r->pool, b.len + 1);
        tagged[0] = b.is_text ? 'T' : 'B';
        memcpy(tagged + 1, b.body, b.len);
        if ((rv = wsock_redis_publish_conn(id, tagged, b.len + 1, &sent)) != APR_SUCCESS) {
            json_decref(out);
            return relay_failed(r, rv);
        }
        json_object_set_new(out, "receivers", json_integer(0));
        json_object_set_new(out, "relayed", json_true());
        return answer(r, HTTP_ACCEPTED, out);
    }
}

static int publish_handler(request_rec *r)
{
    const wsock_dir_conf *d;
    const char *location, *room, *id;
    apr_table_t *args = NULL;

    if (r->handler == NULL || strcmp(r->handler, "wsock-publish") != 0) {
        return DECLINED;
    }
    d = ap_get_module_config(r->per_dir_config, &wsock_module);
    if (access_refused(r, d)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSOCKNO(1501) "%s %s: refused (403) "
                      "by WSockPublishAccess %s", r->method, r->uri,
                      d->publish_access == WSOCK_PUBLISH_AUTHENTICATED
                          ? "authenticated: no user authenticated"
                          : "local (the default): the client is not on the loopback");
        r->connection->keepalive = AP_CONN_CLOSE;
        return answer(r, HTTP_FORBIDDEN, json_pack("{s:s}", "error", "forbidden"));
    }
    ap_args_to_table(r, &args);
    location = apr_table_get(args, "location");
    room = apr_table_get(args, "room");
    id = apr_table_get(args, "connection");
    if ((location == NULL) == (id == NULL)) {
        return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502),
                    "name either location= (and room=) or connection=");
    }
    if (id && !wsock_connaddr_valid_id(id)) {
        return fail(r, HTTP_BAD_REQUEST, WSOCKNO(1502),
                    "connection must be a connection id (32 hex digits)");
    }
    if ((id && r->method_number != M_GET && r->method_number != M_POST
         && r->method_number != M_DELETE)
        || (location && r->method_number != M_POST)) {
        apr_table_setn(r->headers_out, "Allow", id ? ALLOW_CONN : ALLOW_ROOM);
        r->allowed = (AP_METHOD_BIT << M_POST)
                     | (id ? (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_DELETE) : 0);
        return fail(r, HTTP_METHOD_NOT_ALLOWED, WSOCKNO(1502), "method not allowed");
    }
    return id ? address_connection(r, d, id, args) : publish_room(r, location, room);
}

void wsock_publish_register_hooks(void)
{
    ap_hook_handler(publish_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
