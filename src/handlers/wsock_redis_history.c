/*
 * wsock_redis_history.c — catching a resuming client up from its room's
 * Redis Stream, then handing it over to live delivery with nothing missed
 * and nothing twice (docs/redis.md#resuming).
 *
 * Runs in on_open, on the worker thread that upgrades the connection
 * (before the 101, like any handler talking to a back-end), over one
 * Redis connection per child kept for this purpose and guarded by a
 * mutex.  Every wait is bounded by WSockRedisTimeout.
 *
 * The hand-over:
 *   1. the client is registered as catching up: from now on the
 *      subscriber keeps a copy of every message of its room for it;
 *   2. its room's channel is subscribed (wait for that), so every message
 *      published from then on reaches the subscriber;
 *   3. XRANGE (last_id +: everything after the client's last id that the
 *      stream holds — ids up to L;
 *   4. PUBLISH a sync marker on the channel and wait until the subscriber
 *      has seen it: every message published before the XRANGE (so every
 *      id up to L) has then passed the subscriber — into the copies, or
 *      before step 1, when it was already in the stream;
 *   5. under the relay's local mutex (which the subscriber holds while it
 *      delivers): send the copies with ids after L, join the room.
 * Messages the subscriber sees after step 5 reach the client through the
 * room and have ids after L, because the channel carries a room's
 * messages in stream order (XADD and PUBLISH run in one script).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_thread_mutex.h>

#include "wsock_log.h"
#include "wsock_redis.h"

APLOG_USE_MODULE(wsock);

#define XRANGE_PAGE 500
#define XRANGE_PAGES 2000           /* a million messages at the most */

static apr_thread_mutex_t *mutex;
static redisContext *hc;            /* under mutex; NULL until needed */

static apr_status_t close_history(void *data)
{
    (void)data;
    if (hc) {
        redisFree(hc);
        hc = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t wsock_redis_history_init(apr_pool_t *pchild)
{
    apr_pool_cleanup_register(pchild, NULL, close_history, apr_pool_cleanup_null);
    return apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
}

redisContext *wsock_redis_sync_begin(char *why, apr_size_t n)
{
    apr_thread_mutex_lock(mutex);
    if (hc == NULL && (hc = wsock_redis_connect(1, why, n)) == NULL) {
        apr_thread_mutex_unlock(mutex);
    }
    return hc;
}

void wsock_redis_sync_end(int broken)
{
    if (broken && hc) {
        redisFree(hc);
        hc = NULL;
    }
    apr_thread_mutex_unlock(mutex);
}

/* The value of field name in a flat array of name/value pairs. */
static const redisReply *field(const redisReply *r, const char *name)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1];
        }
    }
    return NULL;
}

/* Sends every entry after *last (updated) to the client; 0 on a failure. */
static int send_after(wsock_redis_client *cl, const char *key, char *last, apr_size_t lastsz,
                      int *count)
{
    for (int page = 0; page < XRANGE_PAGES; page++) {
        char start[64];
        redisReply *r;
        size_t n;

        snprintf(start, sizeof(start), "(%s", last);
        r = redisCommand(hc, "XRANGE %s %s + COUNT %d", key, start, XRANGE_PAGE);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            if (r) {
                freeReplyObject(r);
            }
            return 0;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i], *j;
            apr_size_t len;
            char *msg;

            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
                || e->element[0]->type != REDIS_REPLY_STRING
                || (j = field(e->element[1], "j")) == NULL || j->type != REDIS_REPLY_STRING) {
                continue;
            }
            if ((msg = wsock_redis_with_id(j->str, j->len, e->element[0]->str, &len)) != NULL) {
                wsock_send(cl->wc, 1, msg, len);
                free(msg);
                (*count)++;
            }
            snprintf(last, lastsz, "%s", e->element[0]->str);
        }
        n = r->elements;
        freeReplyObject(r);
        if (n < XRANGE_PAGE) {
            return 1;
        }
    }
    return 1;
}

/* Whether every message after after is still in the stream: nothing was
 * ever trimmed, or the oldest entry kept is not newer than after. */
static int nothing_trimmed_after(const char *key, const char *after)
{
    redisReply *r = redisCommand(hc, "XINFO STREAM %s", key);
    const redisReply *len, *added, *first;
    int complete = 0;

    if (r && r->type == REDIS_REPLY_ERROR) {
        complete = strcmp(after, "0-0") == 0;      /* no stream: none kept, none lost */
    }
    else if (r && (len = field(r, "length")) && (added = field(r, "entries-added"))
             && len->type == REDIS_REPLY_INTEGER && added->type == REDIS_REPLY_INTEGER) {
        first = field(r, "recorded-first-entry-id");
        complete = len->integer == added->integer
                   || (first && first->type == REDIS_REPLY_STRING
                       && wsock_redis_id_cmp(first->str, after) <= 0);
    }
    if (r) {
        freeReplyObject(r);
    }
    return complete;
}

static int publish_sync(const char *key, apr_uint32_t serial)
{
    char marker[48];
    redisReply *r;
    int ok;

    snprintf(marker, sizeof(marker), "%s %u sync\n", wsock_redis_child_token, (unsigned)serial);
    r = redisCommand(hc, "PUBLISH %s %s", key, marker);
    ok = r && r->type == REDIS_REPLY_INTEGER;

    if (r) {
        freeReplyObject(r);
    }
    return ok;
}

/* Catches up from after last (updated to the last id sent): 1, or 0 with
 * why. */
static int catch_up(wsock_redis_client *cl, const char *key, char *last, apr_size_t lastsz,
                    int *count, int *complete, char *why, apr_size_t n)
{
    char from[48];
    int ok;

    if (wsock_redis_sync_begin(why, n) == NULL) {
        return 0;
    }
    snprintf(from, sizeof(from), "%s", last);
    /* After the XRANGE: the oldest entry only ever gets newer. */
    ok = send_after(cl, key, last, lastsz, count) && publish_sync(key, cl->serial);
    if (ok) {
        *complete = nothing_trimmed_after(key, from);
    }
    else {
        snprintf(why, n, "%s", hc->errstr[0] ? hc->errstr : "unexpected reply");
    }
    wsock_redis_sync_end(!ok);
    return ok;
}

int wsock_redis_history_resume(wsock_redis_client *cl, const char *last_id)
{
    apr_interval_time_t timeout = wsock_redis_conf.timeout;
    char key[256];
    apr_uint64_t ms = 0, seq = 0;
    char last[48], why[256] = "the relay is unavailable";
    int count = 0, complete = 0, lost;
    char notice[160];

    snprintf(key, sizeof(key), "%s%s", wsock_redis_conf.prefix, cl->sel.room);
    wsock_redis_parse_id(last_id, &ms, &seq);
    snprintf(last, sizeof(last), "%" APR_UINT64_T_FMT "-%" APR_UINT64_T_FMT, ms, seq);
    if (wsock_redis_local_wait_ready(cl->sel.room, timeout)) {
        int ok;

        wsock_redis_local_welcome(cl);
        ok = catch_up(cl, key, last, sizeof(last), &count, &complete, why, sizeof(why));
        if (ok && !wsock_redis_local_wait_synced(cl, timeout)) {
            snprintf(why, sizeof(why), "no sync from the subscriber in time");
            ok = 0;
        }
        if (!ok) {
            complete = 0;
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(cl->wc),
                          WSOCKNO(0805) "redis %s: resuming after %s may have missed "
                          "messages (%s)", wsock_uri(cl->wc), last_id, why);
        }
    }
    else {
        wsock_redis_local_welcome(cl);      /* says the relay is down */
    }
    snprintf(cl->seen, sizeof(cl->seen), "%s", last);
    if ((lost = wsock_redis_local_catch_finish(cl, last, &count)) < 0) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    snprintf(notice, sizeof(notice),
             "{\"type\":\"resumed\",\"count\":%d,\"complete\":%s}", count,
             complete && lost == 0 ? "true" : "false");
    wsock_send(cl->wc, 1, notice, strlen(notice));
    return 0;
}
