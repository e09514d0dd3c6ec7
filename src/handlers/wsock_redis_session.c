/*
 * wsock_redis_session.c — session records of the redis handler
 * (WSockHandler redis ... session=SECONDS): a client gets a token in its
 * welcome; the record under PREFIX "session:" TOKEN (a hash: room, member,
 * name, last_id; with a TTL) lets it come back with ?session=TOKEN, to any
 * server sharing the Redis, into the same room under the same member id and
 * name, resuming after its last id.
 *
 * Reading a record happens in on_open (the thread upgrading the
 * connection): the record decides the client's room, which must be known
 * before it is accepted.  A child's look-ups use a few Redis connections
 * of their own (nothing else waits behind them), taken from a small pool
 * under a mutex that is never held across a round trip: a look-up waits at
 * most WSockRedisTimeout in all, for a free connection and for Redis's
 * answer, and a client whose record cannot be read in time (Redis
 * unavailable or slow, too many look-ups at once) is refused with 503
 * (WSOCK0809) rather than given a new session.  Writing goes through the
 * publisher's queue, so that on_close never waits for Redis.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_general.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "wsock_log.h"
#include "wsock_redis.h"

APLOG_USE_MODULE(wsock);

#define TOKEN_BYTES 16
#define NAME_MAX_LEN 64

#define LOOKUP_CONNS 4              /* look-ups of a child at once */

static apr_thread_mutex_t *pool_mutex;
static apr_thread_cond_t *pool_freed;
static redisContext *idle[LOOKUP_CONNS];    /* under pool_mutex */
static int n_idle, n_used;                  /* connections idle, and taken */

static apr_status_t close_lookups(void *data)
{
    (void)data;
    while (n_idle > 0) {
        redisFree(idle[--n_idle]);
    }
    return APR_SUCCESS;
}

apr_status_t wsock_redis_session_init(apr_pool_t *pchild)
{
    apr_status_t rv;

    apr_pool_cleanup_register(pchild, NULL, close_lookups, apr_pool_cleanup_null);
    rv = apr_thread_mutex_create(&pool_mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
    return rv == APR_SUCCESS ? apr_thread_cond_create(&pool_freed, pchild) : rv;
}

/* A connection for one look-up, or NULL with why when none is free or
 * can be made before deadline.  *c is NULL with 1 returned when the caller
 * may make a new one. */
static int take_conn(apr_time_t deadline, redisContext **c, char *why, apr_size_t n)
{
    apr_time_t now;

    *c = NULL;
    apr_thread_mutex_lock(pool_mutex);
    while (n_idle == 0 && n_used >= LOOKUP_CONNS && (now = apr_time_now()) < deadline) {
        apr_thread_cond_timedwait(pool_freed, pool_mutex, deadline - now);
    }
    if (n_idle == 0 && n_used >= LOOKUP_CONNS) {
        apr_thread_mutex_unlock(pool_mutex);
        snprintf(why, n, "other look-ups took the time");
        return 0;
    }
    if (n_idle > 0) {
        *c = idle[--n_idle];
    }
    n_used++;
    apr_thread_mutex_unlock(pool_mutex);
    return 1;
}

/* Gives a connection back (NULL: none was made; a broken one is closed). */
static void give_conn(redisContext *c)
{
    if (c && c->err) {
        redisFree(c);               /* broken, or timed out half-way */
        c = NULL;
    }
    apr_thread_mutex_lock(pool_mutex);
    n_used--;
    if (c) {
        idle[n_idle++] = c;
    }
    apr_thread_cond_signal(pool_freed);
    apr_thread_mutex_unlock(pool_mutex);
}

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

/* HGETALL key on a look-up connection, all within timeout: the reply,
 * or NULL with why. */
static redisReply *read_record(const char *key, apr_interval_time_t timeout, char *why,
                               apr_size_t n)
{
    apr_time_t deadline = apr_time_now() + timeout;
    redisContext *c;
    redisReply *r = NULL;
    apr_interval_time_t left;

    if (!take_conn(deadline, &c, why, n)) {
        return NULL;
    }
    if ((left = deadline - apr_time_now()) <= 0) {
        snprintf(why, n, "other look-ups took the time");
    }
    else if (c == NULL && (c = wsock_redis_connect(1, left, why, n)) == NULL) {
        /* why is set */
    }
    else if ((left = deadline - apr_time_now()) <= 0 || !wsock_redis_socket_timeout(c, left)) {
        snprintf(why, n, "no time left");
    }
    else if ((r = redisCommand(c, "HGETALL %s", key)) == NULL || r->type != REDIS_REPLY_ARRAY) {
        snprintf(why, n, "HGETALL: %s", r ? (r->type == REDIS_REPLY_ERROR ? r->str
                                                                          : "unexpected reply")
                                          : c->errstr);
        if (r) {
            freeReplyObject(r);
            r = NULL;
        }
    }
    give_conn(c);
    return r;
}

/* The record of token, if it is alive and belongs to this location: 1;
 * 0 if not; -1 if it cannot be read (a line is logged). */
static int restore(wsock_redis_client *cl, const char *token, char *last, apr_size_t lastsz)
{
    const char *loc = wsock_location(cl->wc), *room, *member, *name, *last_id;
    apr_size_t ll = strlen(loc);
    char key[160], why[256];
    redisReply *r;
    int ok = 0;

    record_key(key, sizeof(key), token);
    if ((r = read_record(key, wsock_redis_conf.timeout, why, sizeof(why))) == NULL) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(cl->wc),
                      WSOCKNO(0809) "redis %s: refused with 503, its session record could "
                      "not be read within WSockRedisTimeout (%s)", wsock_uri(cl->wc), why);
        return -1;
    }
    if ((room = hash_field(r, "room")) != NULL && (member = hash_field(r, "member")) != NULL
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
    freeReplyObject(r);
    return ok;
}

int wsock_redis_session_open(wsock_redis_client *cl, const wsock_redis_cfg *cfg, char *last,
                             apr_size_t lastsz)
{
    const char *token = query_value(cl->wc, "session"), *name = query_value(cl->wc, "name");
    unsigned char rnd[TOKEN_BYTES];
    int restored = 0;

    (void)cfg;
    if ((token && !valid_token(token)) || (name && !valid_name(name))) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(cl->wc),
                      WSOCKNO(0807) "redis %s: refused, session must be a token the "
                      "server issued and name 1-64 printable ASCII characters",
                      wsock_uri(cl->wc));
        return HTTP_BAD_REQUEST;
    }
    if (token && (restored = restore(cl, token, last, lastsz)) < 0) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (token && restored) {
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

void wsock_redis_session_save(wsock_redis_client *cl, const wsock_redis_cfg *cfg)
{
    char key[160], last_id[48];
    const char *values[4];

    wsock_redis_local_seen(cl, last_id, sizeof(last_id));
    record_key(key, sizeof(key), cl->session);
    values[0] = cl->sel.room;
    values[1] = cl->member;
    values[2] = cl->name;
    values[3] = last_id;
    wsock_redis_relay_save(key, cfg->session_ttl, values);
}
