/*
 * wsock_redis_relay.c — what a child's Redis relay shares: its state as
 * clients and the log see it, connecting to Redis, back-off, and the life
 * of its three threads (wsock_redis_pub.c publishes, wsock_redis_sub.c
 * subscribes and delivers, wsock_redis_catchup.c catches resuming clients
 * up).
 *
 * Every message, also to the sender's own room-mates here, goes through
 * Redis: all receivers in the cluster see a room's messages in the one
 * order Redis gave them.  Either connection failing makes the relay
 * unavailable: clients are told (wsock_redis_local_set_up), one line is
 * logged, and each thread reconnects with exponential back-off.
 *
 * RESP is hiredis's business; these files only drive its buffers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "wsock_log.h"
#include "wsock_redis.h"
#include "wsock_counters.h"

APLOG_USE_MODULE(wsock);

#define BACKOFF_MAX (5 * APR_USEC_PER_SEC)

char wsock_redis_child_token[9];
server_rec *wsock_redis_server;

static apr_thread_t *sub_thread, *pub_thread, *catchup_thread;
static volatile apr_uint32_t stopping;
static volatile apr_uint32_t up_flag;           /* mirrors the relay state */
static unsigned int jitter_seed;

static apr_thread_mutex_t *state_mutex;
static int parts_ok[2];                         /* subscriber, publisher */
static int announced = -1;                      /* what was logged last */

/* ---- state ------------------------------------------------------------ */

void wsock_redis_state(wsock_redis_part part, int ok, const char *why)
{
    int up, changed, announce = 0;

    /* The state changes in order under the mutex; clients are told and
     * the line is logged after it (tell_all sends the state as it is
     * then, so a late teller cannot undo a newer change). */
    apr_thread_mutex_lock(state_mutex);
    parts_ok[part] = ok;
    up = parts_ok[WSOCK_REDIS_SUB] && parts_ok[WSOCK_REDIS_PUB];
    apr_atomic_set32(&up_flag, (apr_uint32_t)up);
    changed = wsock_redis_local_set_up(up);
    if (up != announced && (up || why)) {
        announce = 1;
        if (up && announced == 0) {
            wsock_count(WSOCK_C_REDIS_RECONNECTS, 1);   /* up again after down */
        }
        announced = up;
    }
    wsock_gauge_set(WSOCK_G_REDIS_LINKS, up);
    apr_thread_mutex_unlock(state_mutex);
    if (changed) {
        wsock_redis_local_tell_all();
    }
    if (announce && up) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, wsock_redis_server,
                     WSOCKNO(0801) "redis relay: connected to %s", wsock_redis_conf.address);
    }
    else if (announce) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, wsock_redis_server,
                     WSOCKNO(0802) "redis relay: %s unavailable (%s); clients are told, "
                     "retrying with back-off", wsock_redis_conf.address, why);
    }
}

int wsock_redis_relay_up(void)
{
    return (int)apr_atomic_read32(&up_flag);
}

int wsock_redis_stopping(void)
{
    return (int)apr_atomic_read32(&stopping);
}

apr_interval_time_t wsock_redis_backoff(apr_interval_time_t *b)
{
    apr_interval_time_t now = *b;

    *b = *b * 2 > BACKOFF_MAX ? BACKOFF_MAX : *b * 2;
    /* between half and all of it, so that the children of a cluster do
     * not all knock at the same moment */
    return now / 2 + (apr_interval_time_t)(rand_r(&jitter_seed) % (int)(now / 2 + 1));
}

/* ---- connecting --------------------------------------------------------- */

/* A reply that is not an error, or NULL with *why set; frees an error. */
static redisReply *expect_ok(redisContext *c, redisReply *r, const char *cmd, char *why,
                             apr_size_t n)
{
    if (r == NULL) {
        snprintf(why, n, "%s: %s", cmd, c->errstr[0] ? c->errstr : "no reply");
    }
    else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, n, "%s: %s", cmd, r->str);
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

static struct timeval timeval_of(apr_interval_time_t t)
{
    struct timeval tv = { (time_t)(t / APR_USEC_PER_SEC), (suseconds_t)(t % APR_USEC_PER_SEC) };

    return tv;
}

int wsock_redis_socket_timeout(redisContext *c, apr_interval_time_t timeout)
{
    return redisSetTimeout(c, timeval_of(timeout)) == REDIS_OK;
}

redisContext *wsock_redis_connect(int select_db, apr_interval_time_t timeout, char *why,
                                  apr_size_t n)
{
    const wsock_redis_settings *cf = &wsock_redis_conf;
    struct timeval tv = timeval_of(timeout);
    redisContext *c = cf->unix_path ? redisConnectUnixWithTimeout(cf->unix_path, tv)
                                    : redisConnectWithTimeout(cf->host, cf->port, tv);
    redisReply *r;

    if (c == NULL || c->err) {
        snprintf(why, n, "connect: %s", c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK
        || (cf->host && redisEnableKeepAlive(c) != REDIS_OK)) {
        snprintf(why, n, "socket options: %s", c->errstr);
        goto fail;
    }
    if (cf->password) {
        r = cf->user ? redisCommand(c, "AUTH %s %s", cf->user, cf->password)
                     : redisCommand(c, "AUTH %s", cf->password);
        if ((r = expect_ok(c, r, "AUTH", why, n)) == NULL) {
            goto fail;
        }
        freeReplyObject(r);
    }
    if (select_db && cf->database) {
        r = redisCommand(c, "SELECT %d", cf->database);
        if ((r = expect_ok(c, r, "SELECT", why, n)) == NULL) {
            goto fail;
        }
        freeReplyObject(r);
    }
    /* A finished TCP connect proves little: a Redis being killed, or not
     * serving yet, can still complete one in the kernel, and the first
     * command then meets a reset.  The relay must not say "up" (and the
     * publisher lose its first batch) on such a connection: one round trip
     * per connect shows the server answers. */
    r = redisCommand(c, "PING");
    if ((r = expect_ok(c, r, "PING", why, n)) == NULL) {
        goto fail;
    }
    freeReplyObject(r);
    return c;
fail:
    if (c) {
        redisFree(c);
    }
    return NULL;
}

int wsock_redis_flush(redisContext *c)
{
    int done = 0;

    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return 0;
        }
    }
    return 1;
}

/* ---- life ----------------------------------------------------------------- */

static apr_status_t stop_cleanup(void *data)
{
    (void)data;
    wsock_redis_relay_stop();
    return APR_SUCCESS;
}

apr_status_t wsock_redis_relay_start(apr_pool_t *pchild, server_rec *s)
{
    unsigned char rnd[4];
    apr_status_t rv;

    wsock_redis_server = s;
    if ((rv = apr_generate_random_bytes(rnd, sizeof(rnd))) != APR_SUCCESS) {
        return rv;
    }
    snprintf(wsock_redis_child_token, sizeof(wsock_redis_child_token), "%02x%02x%02x%02x",
             rnd[0], rnd[1], rnd[2], rnd[3]);
    jitter_seed = (unsigned)rnd[0] << 24 | (unsigned)rnd[1] << 16 | (unsigned)getpid();
    /* A pre-cleanup: the threads' pools are sub-pools of pchild, which
     * are destroyed before pchild's ordinary cleanups run. */
    apr_pool_pre_cleanup_register(pchild, NULL, stop_cleanup);
    if ((rv = wsock_redis_sub_init()) != APR_SUCCESS
        || (rv = wsock_redis_pub_init(pchild)) != APR_SUCCESS
        || (rv = wsock_redis_catchup_init(pchild)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&state_mutex, APR_THREAD_MUTEX_DEFAULT, pchild))
           != APR_SUCCESS) {
        return rv;
    }
    /* Started from child_init, so born with every signal blocked (the
     * threading contract in wsock.h): the MPM's signals reach its threads. */
    rv = apr_thread_create(&pub_thread, NULL, wsock_redis_pub_main, NULL, pchild);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&sub_thread, NULL, wsock_redis_sub_main, NULL, pchild);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&catchup_thread, NULL, wsock_redis_catchup_main, NULL, pchild);
    }
    return rv;
}

void wsock_redis_relay_stop(void)
{
    apr_status_t rv;

    apr_atomic_set32(&stopping, 1);
    apr_atomic_set32(&up_flag, 0);
    wsock_redis_pub_wake(0);
    wsock_redis_relay_rooms_changed();
    wsock_redis_catchup_recheck();
    if (pub_thread) {
        apr_thread_join(&rv, pub_thread);
    }
    if (sub_thread) {
        apr_thread_join(&rv, sub_thread);
    }
    if (catchup_thread) {
        apr_thread_join(&rv, catchup_thread);
    }
    pub_thread = sub_thread = catchup_thread = NULL;
    wsock_redis_pub_discard();
    wsock_redis_sub_close();
}
