/*
 * wsock_redis_publish.c — what the publish endpoint (SetHandler
 * wsock-publish, src/pubsub/wsock_publish_http.c) sends through this
 * child's Redis relay, waiting for Redis's answer:
 *
 *  - a message to a room of a redis location, in the envelope clients
 *    get, marked as the server's: {"type":"message","from":"server",
 *    "server":true,"data":TEXT}.  A client's text is always wrapped as
 *    "data" of its own envelope, with its member id (which always holds a
 *    '-') as "from", so no client can produce a top-level "server" or the
 *    "from" "server";
 *  - a message or a close for one connection by its id, on the channel
 *    PREFIX "\x01conn" that every child of every server sharing the Redis
 *    subscribes (wsock_redis_sub.c), so that whichever child holds it,
 *    on whichever server, serves it.
 *
 * Waiting (within WSockRedisTimeout) gives the endpoint the stream id of
 * a room with history and keeps one publisher's order: its next POST,
 * whichever child takes it, is published after this one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include <apr_atomic.h>
#include <apr_strings.h>

#include "wsock_json.h"
#include "wsock_redis.h"
#include "wsock_redis_publish.h"

struct wsock_redis_waiter {
    volatile apr_uint32_t refs;     /* the waiting thread's and the item's */
    pthread_mutex_t mx;
    pthread_cond_t cv;
    int done;                       /* Redis answered, or the item is gone */
    int ok;                         /* ... with a result, not an error */
    int lost;                       /* ... never: the connection went first */
    long long count;                /* PUBLISH: subscribers that got it */
    char id[48];                    /* with history: the stream id */
};

static void waiter_release(wsock_redis_waiter *w)
{
    if (apr_atomic_dec32(&w->refs) == 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mx);
        free(w);
    }
}

void wsock_redis_waiter_finish(wsock_redis_waiter *w, const struct redisReply *r)
{
    pthread_mutex_lock(&w->mx);
    if (!w->done) {
        w->done = 1;
        w->lost = r == NULL;
        if (r && r->type == REDIS_REPLY_INTEGER) {
            w->ok = 1;
            w->count = r->integer;
        }
        else if (r && r->type == REDIS_REPLY_STRING) {
            w->ok = 1;
            apr_cpystrn(w->id, r->str, sizeof(w->id));
        }
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mx);
    waiter_release(w);
}

/* Queues json for room's channel and waits for Redis. */
static apr_status_t publish_wait(const wsock_redis_cfg *cfg, const char *room,
                                 const char *json, apr_size_t len, wsock_redis_sent *out)
{
    wsock_redis_waiter *w;
    struct timespec until;
    apr_status_t rv;
    int err = 0;

    if (!wsock_redis_conf.in_use || !wsock_redis_relay_up()) {
        return APR_EAGAIN;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        return APR_ENOMEM;
    }
    pthread_mutex_init(&w->mx, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->refs = 2;
    if ((rv = wsock_redis_relay_publish_w(cfg, room, 0, json, len, w)) != APR_SUCCESS) {
        w->refs = 1;                /* the item never held it */
        waiter_release(w);
        return rv;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)apr_time_sec(wsock_redis_conf.timeout);
    until.tv_nsec += (long)(apr_time_usec(wsock_redis_conf.timeout) * 1000);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mx);
    while (!w->done && err != ETIMEDOUT) {
        err = pthread_cond_timedwait(&w->cv, &w->mx, &until);
    }
    if (!w->done) {
        rv = APR_TIMEUP;
    }
    else if (!w->ok) {
        /* a dropped connection is the relay going down, not a refusal */
        rv = w->lost ? APR_ECONNRESET : APR_EGENERAL;
    }
    else {
        out->count = w->count;
        apr_cpystrn(out->id, w->id, sizeof(out->id));
    }
    pthread_mutex_unlock(&w->mx);
    waiter_release(w);
    return rv;
}

apr_status_t wsock_redis_publish_room(const void *cfg, const char *room, const char *text,
                                      apr_size_t len, wsock_redis_sent *out)
{
    static const char head[] = "{\"type\":\"message\",\"from\":\"server\",\"server\":true,"
                               "\"data\":\"";
    apr_size_t mlen;
    apr_status_t rv;
    char *msg;

    memset(out, 0, sizeof(*out));
    if ((msg = wsock_json_wrap(head, text, len, "\"}", &mlen)) == NULL) {
        return APR_ENOMEM;
    }
    rv = publish_wait(cfg, room, msg, mlen, out);
    free(msg);
    return rv;
}

apr_status_t wsock_redis_publish_conn(const char *id, const void *tagged, apr_size_t len,
                                      wsock_redis_sent *out)
{
    static const wsock_redis_cfg no_history = { 0 };
    apr_size_t idlen = strlen(id);
    apr_status_t rv;
    char *msg;

    memset(out, 0, sizeof(*out));
    if ((msg = malloc(idlen + len)) == NULL) {
        return APR_ENOMEM;
    }
    memcpy(msg, id, idlen);
    memcpy(msg + idlen, tagged, len);
    rv = publish_wait(&no_history, WSOCK_REDIS_CONN_CHANNEL, msg, idlen + len, out);
    free(msg);
    return rv;
}

int wsock_redis_room_from_query(const void *cfg)
{
    return ((const wsock_redis_cfg *)cfg)->room_from_query;
}

int wsock_redis_publish_in_use(void)
{
    return wsock_redis_conf.in_use;
}
