/*
 * wsock_redis_pub.c — the publisher thread of a child's Redis relay.
 *
 * It owns one Redis connection and a queue bounded in messages and bytes
 * (WSockRedisQueue; what the thread has taken but Redis not yet answered
 * still counts): client messages are queued by on_message (which never
 * waits for Redis) and sent as pipelined PUBLISHes (with history: one
 * EVAL each, see history_script); session records go the same way.  When the connection fails, what is
 * queued is dropped (clients were told the relay is down, and stale
 * messages must not pop up after a restart) and the thread reconnects
 * with back-off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "wsock_log.h"
#include "wsock_redis.h"
#include "wsock_counters.h"
#include "wsock_threads.h"

APLOG_USE_MODULE(wsock);

#define PUBLISH_BATCH 256
#define PUBLISH_BATCH_BYTES (1024 * 1024)   /* (at least one message) */

typedef struct pub_item {
    struct pub_item *next;
    wsock_redis_waiter *waiter;         /* a publisher that waits for Redis, or NULL */
    apr_size_t size;                    /* what it costs the queue */
    long session_ttl;                   /* > 0: a session record, not a message */
    long history_max, history_age_ms;   /* both 0: no history */
    apr_size_t chan_len, head_len, len;
    char data[];                /* channel, then envelope head and JSON */
} pub_item;

/* With history, a message is appended to the room's stream and published
 * with its new id in one step: Redis runs a script atomically, so the
 * channel carries the messages in the stream's order (what resuming
 * relies on).  KEYS[1] is the stream and the channel; ARGV: envelope
 * head, JSON, MAXLEN (0: none), age in ms (0: none). */
static const char history_script[] =
    "local maxlen, age = tonumber(ARGV[3]), tonumber(ARGV[4]) "
    "local id "
    "if maxlen > 0 then "
    "  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'j', ARGV[2]) "
    "else "
    "  id = redis.call('XADD', KEYS[1], '*', 'j', ARGV[2]) "
    "end "
    "if age > 0 then "
    "  local t = redis.call('TIME') "
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "  if now > age then redis.call('XTRIM', KEYS[1], 'MINID', '~', now - age) end "
    "  redis.call('PEXPIRE', KEYS[1], age) "
    "end "
    "redis.call('PUBLISH', KEYS[1], ARGV[1] .. ' ' .. id .. '\\n' .. ARGV[2]) "
    "return id";

static apr_thread_mutex_t *q_mutex;
static apr_thread_cond_t *q_cond;
static pub_item *q_head, *q_tail;
static int q_len;                       /* queued and in flight */
static apr_size_t q_bytes;
static int pub_reconnect;               /* drop the connection: it is stale */

/* Frees a list; under q_mutex, what it counted is given back. */
static void free_items_locked(pub_item *it)
{
    while (it) {
        pub_item *next = it->next;
        if (it->waiter) {
            /* never sent, or the connection failed before the reply */
            wsock_redis_waiter_finish(it->waiter, NULL);
        }
        q_len--;
        q_bytes -= it->size;
        wsock_gauge_add(WSOCK_G_REDIS_QUEUE, -1);
        wsock_gauge_add(WSOCK_G_REDIS_QUEUE_BYTES, -(apr_int64_t)it->size);
        free(it);
        it = next;
    }
}

/* Under q_mutex: waits until deadline (0: until woken), or stop. */
static void publisher_wait(apr_time_t deadline)
{
    if (deadline == 0) {
        apr_thread_cond_wait(q_cond, q_mutex);
    }
    else if (apr_time_now() < deadline) {
        apr_thread_cond_timedwait(q_cond, q_mutex, deadline - apr_time_now());
    }
}

/* Redis refused one command (a key of another type, an ACL without the
 * right): that message is lost, the connection is fine.  Logged when the
 * error differs from the last one, not once per message. */
static void refused(const char *err)
{
    static char last[128];

    if (strncmp(last, err, sizeof(last) - 1) != 0) {
        snprintf(last, sizeof(last), "%s", err);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, wsock_redis_server,
                     WSOCKNO(0808) "redis relay: Redis refused a message (%s); it is lost",
                     err);
    }
}

/* Sends a batch as pipelined commands; 0 with why if the connection
 * failed. */
static int publish_batch(redisContext *c, pub_item *batch, char *why, apr_size_t n)
{
    int sent = 0;

    for (pub_item *it = batch; it; it = it->next, sent++) {
        const char *head = it->data + it->chan_len;

        if (it->session_ttl > 0) {
            /* key, then NUL-terminated field values (wsock_redis_session.c) */
            static const char *const names[] = { "room", "member", "name", "last_id" };
            const char *argv[10] = { "HSET", it->data };
            const char *v = it->data + it->chan_len + 1;

            for (int k = 0; k < 4; k++, v += strlen(v) + 1) {
                argv[2 + 2 * k] = names[k];
                argv[3 + 2 * k] = v;
            }
            redisAppendCommandArgv(c, 10, argv, NULL);
            redisAppendCommand(c, "EXPIRE %s %ld", it->data, it->session_ttl);
            sent++;                 /* two replies */
        }
        else if (it->history_max == 0 && it->history_age_ms == 0) {
            redisAppendCommand(c, "PUBLISH %b %b", it->data, it->chan_len, head, it->len);
        }
        else {
            /* the head without its '\n': the script adds " ID\n" */
            redisAppendCommand(c, "EVAL %s 1 %b %b %b %ld %ld", history_script, it->data,
                               it->chan_len, head, it->head_len - 1, head + it->head_len,
                               it->len - it->head_len, it->history_max, it->history_age_ms);
        }
    }
    /* the replies, in the items' order (a session record has two) */
    for (pub_item *it = batch; it; it = it->next) {
        for (int k = it->session_ttl > 0 ? 2 : 1; k > 0; k--) {
            redisReply *r = NULL;

            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                snprintf(why, n, "PUBLISH: %s", c->errstr);
                return 0;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                refused(r->str);
            }
            if (it->waiter) {
                wsock_redis_waiter_finish(it->waiter, r);
                it->waiter = NULL;
            }
            freeReplyObject(r);
        }
    }
    (void)sent;
    return 1;
}

void *APR_THREAD_FUNC wsock_redis_pub_main(apr_thread_t *t, void *data)
{
    apr_interval_time_t backoff = WSOCK_REDIS_BACKOFF_MIN;
    redisContext *c = NULL;
    char why[256];

    wsock_thread_name("wsock-redis-pub");       /* top -H; the signal-mask test */
    (void)data;
    while (!wsock_redis_stopping()) {
        pub_item *batch = NULL, **tail = &batch;
        apr_size_t batch_bytes = 0;
        int taken = 0, reconnect, failed;

        if (c == NULL) {
            apr_thread_mutex_lock(q_mutex);
            pub_reconnect = 0;          /* this is the reconnect */
            apr_thread_mutex_unlock(q_mutex);
            if ((c = wsock_redis_connect(1, wsock_redis_conf.timeout, why, sizeof(why)))
                == NULL) {
                wsock_redis_state(WSOCK_REDIS_PUB, 0, why);
                apr_thread_mutex_lock(q_mutex);
                publisher_wait(apr_time_now() + wsock_redis_backoff(&backoff));
                apr_thread_mutex_unlock(q_mutex);
                continue;
            }
            backoff = WSOCK_REDIS_BACKOFF_MIN;
            wsock_redis_state(WSOCK_REDIS_PUB, 1, NULL);
        }
        apr_thread_mutex_lock(q_mutex);
        while (q_head == NULL && !pub_reconnect && !wsock_redis_stopping()) {
            publisher_wait(0);
        }
        reconnect = pub_reconnect;
        pub_reconnect = 0;
        /* (taken items still count against the queue's bounds) */
        for (; q_head && taken < PUBLISH_BATCH && batch_bytes < PUBLISH_BATCH_BYTES; taken++) {
            batch_bytes += q_head->size;
            *tail = q_head;
            q_head = q_head->next;
            tail = &(*tail)->next;
            *tail = NULL;
        }
        if (q_head == NULL) {
            q_tail = NULL;
        }
        apr_thread_mutex_unlock(q_mutex);

        failed = reconnect || (batch && !publish_batch(c, batch, why, sizeof(why)));
        if (!failed) {
            wsock_count(WSOCK_C_REDIS_PUBLISHED, (apr_uint64_t)taken);
        }
        if (failed) {
            redisFree(c);
            c = NULL;
            wsock_redis_state(WSOCK_REDIS_PUB, 0, reconnect ? "the subscriber lost its connection" : why);
        }
        apr_thread_mutex_lock(q_mutex);
        free_items_locked(batch);
        if (failed) {
            /* Queued messages are lost with the connection: clients were
             * told the relay is down, and stale messages must not pop up
             * minutes later after a restart. */
            free_items_locked(q_head);
            q_head = q_tail = NULL;
        }
        apr_thread_mutex_unlock(q_mutex);
    }
    if (c) {
        redisFree(c);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Puts it on the publisher's queue, or frees it: APR_ENOSPC if full (an
 * empty queue takes a message of any size). */
static apr_status_t enqueue(pub_item *it, apr_size_t size)
{
    it->size = size;
    apr_thread_mutex_lock(q_mutex);
    if (q_len >= wsock_redis_conf.queue_max
        || (q_len > 0 && q_bytes + size > wsock_redis_conf.queue_max_bytes)) {
        apr_thread_mutex_unlock(q_mutex);
        free(it);
        wsock_count(WSOCK_C_REDIS_DROPPED, 1);
        return APR_ENOSPC;
    }
    if (q_tail) {
        q_tail->next = it;
    }
    else {
        q_head = it;
    }
    q_tail = it;
    q_len++;
    q_bytes += size;
    wsock_gauge_add(WSOCK_G_REDIS_QUEUE, 1);
    wsock_gauge_add(WSOCK_G_REDIS_QUEUE_BYTES, (apr_int64_t)size);
    apr_thread_cond_signal(q_cond);
    apr_thread_mutex_unlock(q_mutex);
    return APR_SUCCESS;
}

apr_status_t wsock_redis_relay_publish(const wsock_redis_cfg *cfg, const char *room,
                                       apr_uint32_t except_serial, const char *json,
                                       apr_size_t len)
{
    return wsock_redis_relay_publish_w(cfg, room, except_serial, json, len, NULL);
}

apr_status_t wsock_redis_relay_publish_w(const wsock_redis_cfg *cfg, const char *room,
                                         apr_uint32_t except_serial, const char *json,
                                         apr_size_t len, wsock_redis_waiter *waiter)
{
    const char *prefix = wsock_redis_conf.prefix;
    apr_size_t plen = strlen(prefix), rlen = strlen(room);
    apr_size_t size;
    char head[32];
    int hl;
    pub_item *it;

    if (!wsock_redis_relay_up()) {
        return APR_EAGAIN;
    }
    /* The envelope: who sent it (child token, and the sender's serial
     * when it must not get it back), then the JSON for the clients. */
    hl = snprintf(head, sizeof(head), "%s %u\n", wsock_redis_child_token,
                  (unsigned)except_serial);
    size = sizeof(*it) + plen + rlen + (apr_size_t)hl + len;
    if ((it = malloc(size)) == NULL) {
        return APR_ENOMEM;
    }
    it->next = NULL;
    it->waiter = waiter;            /* if enqueue refuses it, still the caller's */
    it->session_ttl = 0;
    it->history_max = cfg->history_max;
    it->history_age_ms = cfg->history_age_ms;
    it->chan_len = plen + rlen;
    it->head_len = (apr_size_t)hl;
    it->len = (apr_size_t)hl + len;
    memcpy(it->data, prefix, plen);
    memcpy(it->data + plen, room, rlen);
    memcpy(it->data + it->chan_len, head, (apr_size_t)hl);
    memcpy(it->data + it->chan_len + hl, json, len);
    return enqueue(it, size);
}

apr_status_t wsock_redis_relay_save(const char *key, long ttl, const char *const values[4])
{
    apr_size_t klen = strlen(key), len = klen + 1;
    pub_item *it;
    char *p;

    for (int k = 0; k < 4; k++) {
        len += strlen(values[k]) + 1;
    }
    if ((it = calloc(1, sizeof(*it) + len)) == NULL) {    /* (no waiter) */
        return APR_ENOMEM;
    }
    len += sizeof(*it);
    it->session_ttl = ttl;
    it->chan_len = klen;
    p = it->data;
    memcpy(p, key, klen + 1);
    p += klen + 1;
    for (int k = 0; k < 4; k++) {
        apr_size_t n = strlen(values[k]) + 1;
        memcpy(p, values[k], n);
        p += n;
    }
    return enqueue(it, len);
}

apr_status_t wsock_redis_pub_init(apr_pool_t *pchild)
{
    apr_status_t rv = apr_thread_mutex_create(&q_mutex, APR_THREAD_MUTEX_DEFAULT, pchild);

    return rv == APR_SUCCESS ? apr_thread_cond_create(&q_cond, pchild) : rv;
}

void wsock_redis_pub_wake(int reconnect)
{
    if (q_mutex) {
        apr_thread_mutex_lock(q_mutex);
        pub_reconnect |= reconnect;
        apr_thread_cond_broadcast(q_cond);
        apr_thread_mutex_unlock(q_mutex);
    }
}

void wsock_redis_pub_discard(void)
{
    if (q_mutex) {
        apr_thread_mutex_lock(q_mutex);
        free_items_locked(q_head);
        q_head = q_tail = NULL;
        apr_thread_mutex_unlock(q_mutex);
    }
}
