/*
 * wsock_redis_session.c — session records of the redis handler
 * (WSockHandler redis ... session=SECONDS): a client gets a token in its
 * welcome; the record under PREFIX "session:" TOKEN (a hash: room, member,
 * name, last_id; with a TTL) lets it come back with ?session=TOKEN, to any
 * server sharing the Redis, into the same room under the same member id and
 * name, resuming after its last id.
 *
 * Reading a record happens in on_open (the worker thread upgrading the
 * connection, like the catching up); writing goes through the publisher's
 * queue, so that on_close never waits for Redis.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_general.h>

#include "wsock_log.h"
#include "wsock_redis.h"

APLOG_USE_MODULE(wsock);

#define TOKEN_BYTES 16
#define NAME_MAX_LEN 64

static int valid_token(const char *t)
{
    return strlen(t) == 2 * TOKEN_BYTES && strspn(t, "0123456789abcdef") == 2 * TOKEN_BYTES;
}

/* 1-64 printable ASCII characters. */
static int valid_name(const char *s)
{
    apr_size_t n = strlen(s);

    for (apr_size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return 0;
        }
    }
    return n >= 1 && n <= NAME_MAX_LEN;
}

static void record_key(char *key, apr_size_t n, const char *token)
{
    snprintf(key, n, "%ssession:%s", wsock_redis_conf.prefix, token);
}

/* A query argument, "" if present but not decodable, NULL if absent. */
static const char *query_value(wsock_conn *wc, const char *name)
{
    const char *v = wsock_query_arg(wc, name);

    return v ? v : wsock_query_names(wsock_query(wc), name) ? "" : NULL;
}

static const char *hash_field(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING
            && r->element[i + 1]->type == REDIS_REPLY_STRING
            && strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1]->str;
        }
    }
    return NULL;
}

/* The record of token, if it is alive and belongs to this location. */
static int restore(wsock_redis_client *cl, const char *token, char *last, apr_size_t lastsz)
{
    const char *loc = wsock_location(cl->wc), *room, *member, *name, *last_id;
    apr_size_t ll = strlen(loc);
    char key[160], why[256];
    redisContext *c;
    redisReply *r;
    int ok = 0;

    if ((c = wsock_redis_sync_begin(why, sizeof(why))) == NULL) {
        return 0;
    }
    record_key(key, sizeof(key), token);
    r = redisCommand(c, "HGETALL %s", key);
    if (r && r->type == REDIS_REPLY_ARRAY
        && (room = hash_field(r, "room")) != NULL && (member = hash_field(r, "member")) != NULL
        && (strcmp(room, loc) == 0 || (strncmp(room, loc, ll) == 0 && room[ll] == '?'))
        && strlen(room) < sizeof(cl->sel.room) && strlen(member) < sizeof(cl->member)) {
        snprintf(cl->sel.room, sizeof(cl->sel.room), "%s", room);
        cl->sel.label = room[ll] == '?' ? cl->sel.room + ll + 1 : cl->sel.room;
        snprintf(cl->member, sizeof(cl->member), "%s", member);
        if ((name = hash_field(r, "name")) != NULL && valid_name(name)) {
            snprintf(cl->name, sizeof(cl->name), "%s", name);
        }
        if ((last_id = hash_field(r, "last_id")) != NULL && !*last) {
            snprintf(last, lastsz, "%s", last_id);
        }
        ok = 1;
    }
    if (r) {
        freeReplyObject(r);
    }
    wsock_redis_sync_end(r == NULL);
    return ok;
}

int wsock_redis_session_open(wsock_redis_client *cl, const wsock_redis_cfg *cfg, char *last,
                             apr_size_t lastsz)
{
    const char *token = query_value(cl->wc, "session"), *name = query_value(cl->wc, "name");
    unsigned char rnd[TOKEN_BYTES];

    (void)cfg;
    if ((token && !valid_token(token)) || (name && !valid_name(name))) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(cl->wc),
                      WSOCKNO(0807) "redis %s: refused, session must be a token the "
                      "server issued and name 1-64 printable ASCII characters",
                      wsock_uri(cl->wc));
        return HTTP_BAD_REQUEST;
    }
    if (token && restore(cl, token, last, lastsz)) {
        snprintf(cl->session, sizeof(cl->session), "%s", token);
        if (name) {
            snprintf(cl->name, sizeof(cl->name), "%s", name);   /* a new name */
        }
        return 1;
    }
    /* No token, or one whose record expired (or another location's): a
     * new session. */
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    for (int i = 0; i < TOKEN_BYTES; i++) {
        snprintf(cl->session + 2 * i, 3, "%02x", rnd[i]);
    }
    if (name) {
        snprintf(cl->name, sizeof(cl->name), "%s", name);
    }
    return 0;
}

void wsock_redis_session_save(const wsock_redis_client *cl, const wsock_redis_cfg *cfg)
{
    char key[160], last_id[48];
    const char *values[4];

    wsock_redis_local_last_id(cl->sel.room, last_id, sizeof(last_id));
    if (!*last_id) {
        snprintf(last_id, sizeof(last_id), "%s", cl->seen);     /* nothing newer here */
    }
    record_key(key, sizeof(key), cl->session);
    values[0] = cl->sel.room;
    values[1] = cl->member;
    values[2] = cl->name;
    values[3] = last_id;
    wsock_redis_relay_save(key, cfg->session_ttl, values);
}
