/*
 * wsock_redis_catchup.c — the resumer: a thread per child that catches
 * resuming clients (?last_id=, or a session with history) up from their
 * room's stream after the 101, as each client reads, and then hands them
 * over to live delivery with nothing missed and nothing twice
 * (docs/redis.md#resuming).
 *
 * on_open only registers the client as catching up (from then on the
 * subscriber keeps a copy of its room's live messages for it, bounded:
 * wsock_redis_held.c) and queues a job here.  The resumer runs its jobs
 * in turns, each a bounded step, so that no client waits for another:
 *
 *   READY  until the room is subscribed here (the subscriber sees every
 *          message published from then on); then the welcome;
 *   PLAN   one script on the resumer's own Redis connection: the newest
 *          entries after the client's last id that fit in the caps, up to
 *          the stream's end L, and the client's sync marker published at
 *          that moment (wsock_redis_history.c); held copies up to L are
 *          dropped, they come with the stream;
 *   SEND   the planned entries, a page at a time, with wsock_send_try():
 *          at most TURN_BYTES per turn, then wsock_on_writable() says when
 *          the client has read enough for the next turn;
 *   SYNC   until the subscriber has seen the marker: every message up to L
 *          has passed it then, into the copies or (before the client
 *          registered) into the stream;
 *   then the subscriber takes over (wsock_redis_local_hand_over): it sends
 *          the held copies (all after L), the resumed notice, and joins
 *          the client to its room, between two of its deliveries.  If the
 *          client has no room for the copies, it comes back here to wait
 *          (FINISH) and is handed over again.
 *
 * Every wait is bounded by WSockRedisTimeout.  A client that gives no
 * room for that long is abandoned: closed with 1008 (WSOCK0810).  Nothing
 * here holds a lock across a Redis round trip or a send; the resumer's
 * mutex guards only its run queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "wsock_log.h"
#include "wsock_redis.h"
#include "wsock_threads.h"

APLOG_USE_MODULE(wsock);

#define TURN_BYTES (64 * 1024)      /* sent to one client per turn (at least a message) */
#define PAGE_MAX 100                /* entries asked from Redis at once */

typedef enum { CU_READY, CU_PLAN, CU_SEND, CU_SYNC, CU_FINISH } cu_phase;

struct wsock_redis_catchup {
    wsock_redis_client *cl;
    /* under mx */
    wsock_redis_catchup *next_run;
    int queued;                     /* on the run queue (holding a reference) */
    int writable;                   /* its on_writable callback ran */
    int mine;                       /* the resumer has the job (not the subscriber) */
    /* the resumer's while mine */
    wsock_redis_catchup *next;      /* its jobs */
    int listed;
    cu_phase phase;
    int armed;                      /* waiting for on_writable */
    apr_time_t deadline;            /* of the wait in progress; 0: none */
    apr_time_t sync_deadline;
    long max_n;
    apr_size_t max_bytes;
    char key[WSOCK_ROOMSEL_KEY_MAX + 80];
    char after[48];                 /* the client's last id */
    char cursor[48];                /* the last entry sent ("": none yet) */
    wsock_redis_plan plan;
    long sent;                      /* planned entries sent */
    int count;                      /* messages sent since the welcome */
    int complete;
    redisReply *page;
    size_t page_at;
    char uri[160], client[64];      /* for log lines */
};

static apr_thread_mutex_t *mx;
static apr_thread_cond_t *cv;
static wsock_redis_catchup *run_head, *run_tail;
static int recheck, stopped;
static redisContext *rc;            /* the resumer thread's; NULL until needed */

apr_status_t wsock_redis_catchup_init(apr_pool_t *pchild)
{
    apr_status_t rv = apr_thread_mutex_create(&mx, APR_THREAD_MUTEX_DEFAULT, pchild);

    return rv == APR_SUCCESS ? apr_thread_cond_create(&cv, pchild) : rv;
}

void wsock_redis_catchup_free(wsock_redis_catchup *cu)
{
    if (cu) {
        if (cu->page) {
            freeReplyObject(cu->page);
        }
        free(cu);
    }
}

/* ---- the run queue (any thread) ----------------------------------------- */

/* Under mx: cu has something to do.  The queue holds a reference, taken
 * by a caller that may (one of the connection's callbacks, or a holder). */
static void queue_locked(wsock_redis_catchup *cu)
{
    if (!cu->queued && !stopped) {
        cu->queued = 1;
        wsock_redis_client_ref(cu->cl);
        cu->next_run = NULL;
        if (run_tail) {
            run_tail->next_run = cu;
        }
        else {
            run_head = cu;
        }
        run_tail = cu;
        apr_thread_cond_signal(cv);
    }
}

/* On the connection's owning thread: the client has room again. */
static void writable_cb(wsock_conn *wc, void *baton)
{
    wsock_redis_client *cl = baton;

    (void)wc;
    apr_thread_mutex_lock(mx);
    cl->cu->writable = 1;
    queue_locked(cl->cu);
    apr_thread_mutex_unlock(mx);
}

void wsock_redis_catchup_poke(wsock_redis_client *cl)
{
    apr_thread_mutex_lock(mx);
    queue_locked(cl->cu);
    apr_thread_mutex_unlock(mx);
}

void wsock_redis_catchup_recheck(void)
{
    apr_thread_mutex_lock(mx);
    recheck = 1;
    apr_thread_cond_signal(cv);
    apr_thread_mutex_unlock(mx);
}

int wsock_redis_catchup_start(wsock_redis_client *cl, const wsock_redis_cfg *cfg,
                              const char *last_id)
{
    wsock_redis_catchup *cu = calloc(1, sizeof(*cu));
    apr_uint64_t ms = 0, seq = 0;

    if (cu == NULL) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    cu->cl = cl;
    cu->max_n = cfg->resume_max;
    cu->max_bytes = cfg->resume_max_bytes;
    cu->complete = 1;
    snprintf(cu->key, sizeof(cu->key), "%s%s", wsock_redis_conf.prefix, cl->sel.room);
    wsock_redis_parse_id(last_id, &ms, &seq);
    snprintf(cu->after, sizeof(cu->after), "%" APR_UINT64_T_FMT "-%" APR_UINT64_T_FMT, ms,
             seq);
    snprintf(cu->uri, sizeof(cu->uri), "%s", wsock_uri(cl->wc));
    snprintf(cu->client, sizeof(cu->client), "%s", wsock_conn_id(cl->wc));
    cu->deadline = apr_time_now() + wsock_redis_conf.timeout;
    cl->cu = cu;
    return 0;
}

void wsock_redis_catchup_go(wsock_redis_client *cl)
{
    wsock_redis_client_ref(cl);             /* the job's */
    apr_thread_mutex_lock(mx);
    cl->cu->mine = 1;
    if (stopped) {
        cl->cu->mine = 0;
        apr_thread_mutex_unlock(mx);
        wsock_redis_client_unref(cl);
        return;
    }
    queue_locked(cl->cu);
    apr_thread_mutex_unlock(mx);
}

void wsock_redis_catchup_bounce(wsock_redis_client *cl, int sent)
{
    wsock_redis_catchup *cu = cl->cu;

    cu->count += sent;              /* the subscriber's until mine again */
    apr_thread_mutex_lock(mx);
    if (stopped) {
        apr_thread_mutex_unlock(mx);
        wsock_redis_client_unref(cl);
        return;
    }
    cu->phase = CU_FINISH;
    cu->armed = 0;
    cu->mine = 1;                   /* with the subscriber's reference */
    queue_locked(cu);
    apr_thread_mutex_unlock(mx);
}

void wsock_redis_catchup_result(const wsock_redis_client *cl, int *count, int *complete)
{
    *count = cl->cu->count;
    *complete = cl->cu->complete;
}

/* ---- the resumer's side ---------------------------------------------------- */

static wsock_redis_catchup *jobs;   /* the resumer thread's */

/* The job leaves the resumer: to the subscriber (hand_over), or it is
 * over.  cu may be gone once this returns. */
static void end_job(wsock_redis_catchup *cu, int hand_over)
{
    wsock_redis_client *cl = cu->cl;

    if (cu->listed) {
        for (wsock_redis_catchup **p = &jobs; *p; p = &(*p)->next) {
            if (*p == cu) {
                *p = cu->next;
                break;
            }
        }
        cu->listed = 0;
    }
    if (cu->page) {
        freeReplyObject(cu->page);
        cu->page = NULL;
    }
    cu->deadline = 0;
    apr_thread_mutex_lock(mx);
    cu->mine = 0;
    apr_thread_mutex_unlock(mx);
    if (hand_over) {
        wsock_redis_local_hand_over(cl);    /* with the job's reference */
    }
    else {
        wsock_redis_client_unref(cl);
    }
}

static void incomplete(wsock_redis_catchup *cu, const char *why)
{
    cu->complete = 0;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, wsock_redis_server,
                 WSOCKNO(0805) "redis %s: %s resuming after %s may have missed messages (%s)",
                 cu->uri, cu->client, cu->after, why);
}

/* The client gave no room for WSockRedisTimeout: closed with 1008. */
static void abandon(wsock_redis_catchup *cu)
{
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, wsock_redis_server,
                 WSOCKNO(0810) "redis %s: %s does not read its catch-up (nothing taken "
                 "for %" APR_TIME_T_FMT " ms); closing with 1008", cu->uri, cu->client,
                 apr_time_as_msec(wsock_redis_conf.timeout));
    wsock_redis_local_abandon(cu->cl);
    wsock_close(cu->cl->wc, 1008, "slow consumer");
    end_job(cu, 0);
}

/* Waits for room in the client's connection: 1, or 0 if it is closing. */
static int arm(wsock_redis_catchup *cu)
{
    cu->armed = 1;
    cu->deadline = apr_time_now() + wsock_redis_conf.timeout;
    return wsock_on_writable(cu->cl->wc, writable_cb, cu->cl) == APR_SUCCESS;
}

static redisContext *connection(char *why, apr_size_t n)
{
    if (rc == NULL && !wsock_redis_relay_up()) {
        snprintf(why, n, "the relay is unavailable");
        return NULL;
    }
    if (rc == NULL) {
        rc = wsock_redis_connect(1, wsock_redis_conf.timeout, why, n);
    }
    return rc;
}

/* After a failed command: a broken connection is dropped (the next job
 * connects again). */
static void check_connection(void)
{
    if (rc && rc->err) {
        redisFree(rc);
        rc = NULL;
    }
}

static int plan(wsock_redis_catchup *cu, char *why, apr_size_t n)
{
    redisContext *c = connection(why, n);
    char marker[48];
    int ok;

    if (c == NULL) {
        return 0;
    }
    snprintf(marker, sizeof(marker), "%s %u sync\n", wsock_redis_child_token,
             (unsigned)cu->cl->serial);
    ok = wsock_redis_history_plan(c, cu->key, cu->after, cu->max_n, cu->max_bytes, marker,
                                  &cu->plan, why, n);
    check_connection();
    return ok;
}

typedef enum { TURN_DONE, TURN_WAIT, TURN_FAILED, TURN_GONE } turn_result;

/* The next page of planned entries into cu->page: 1, 0 if there are no
 * more (trimmed meanwhile), -1 with why. */
static int next_page(wsock_redis_catchup *cu, char *why, apr_size_t n)
{
    redisContext *c = connection(why, n);
    apr_size_t avg = cu->plan.count ? cu->plan.bytes / (apr_size_t)cu->plan.count : 1;
    long count = (long)(TURN_BYTES / (avg ? avg : 1)) + 1;
    char start[64];

    if (cu->page) {
        freeReplyObject(cu->page);
        cu->page = NULL;
    }
    if (c == NULL) {
        return -1;
    }
    if (*cu->cursor) {
        snprintf(start, sizeof(start), "(%s", cu->cursor);
    }
    else {
        snprintf(start, sizeof(start), "%s", cu->plan.first);
    }
    cu->page = wsock_redis_history_page(c, cu->key, start, cu->plan.newest,
                                        count < PAGE_MAX ? count : PAGE_MAX, why, n);
    cu->page_at = 0;
    check_connection();
    if (cu->page == NULL) {
        return -1;
    }
    return cu->page->elements > 0;
}

/* One turn of sending: at most TURN_BYTES (and at least one message). */
static turn_result send_turn(wsock_redis_catchup *cu, char *why, apr_size_t n)
{
    apr_size_t budget = TURN_BYTES;
    turn_result res = TURN_DONE;

    while (cu->sent < cu->plan.count) {
        const char *id, *json;
        apr_size_t len, mlen;
        apr_status_t rv;
        char *msg;
        int kind;

        if (budget == 0) {
            res = TURN_WAIT;        /* the client's next turn */
            break;
        }
        if (cu->page == NULL || cu->page_at >= cu->page->elements) {
            int got = next_page(cu, why, n);

            if (got < 0) {
                res = TURN_FAILED;
                break;
            }
            if (got == 0) {
                snprintf(why, n, "the stream was trimmed during the catch-up");
                res = TURN_FAILED;
                break;
            }
        }
        if ((kind = wsock_redis_history_entry(cu->page, cu->page_at, &id, &json, &len)) < 0) {
            snprintf(why, n, "a malformed stream entry");
            res = TURN_FAILED;
            break;
        }
        if (kind == 0 || (msg = wsock_redis_with_id(json, len, id, &mlen)) == NULL) {
            snprintf(cu->cursor, sizeof(cu->cursor), "%s", id);    /* not the relay's */
            cu->page_at++;
            continue;
        }
        rv = wsock_send_try(cu->cl->wc, 1, msg, mlen);
        free(msg);
        if (rv == APR_EAGAIN) {
            res = TURN_WAIT;
            break;
        }
        if (rv == APR_EOF) {
            res = TURN_GONE;
            break;
        }
        snprintf(cu->cursor, sizeof(cu->cursor), "%s", id);
        cu->page_at++;
        cu->sent++;                 /* (text that is not UTF-8 is skipped) */
        if (rv == APR_SUCCESS) {
            cu->count++;
            budget = mlen >= budget ? 0 : budget - mlen;
        }
    }
    if (*cu->cursor) {
        wsock_redis_local_set_seen(cu->cl, cu->cursor);
    }
    return res;
}

/* One step of a job; it may end it (cu may be gone afterwards). */
static void step(wsock_redis_catchup *cu, apr_time_t now)
{
    wsock_redis_client *cl = cu->cl;
    int writable, interrupted;
    char why[256];

    apr_thread_mutex_lock(mx);
    writable = cu->writable;
    cu->writable = 0;
    apr_thread_mutex_unlock(mx);
    if (wsock_redis_local_gone(cl)) {
        end_job(cu, 0);             /* on_close ran */
        return;
    }
    if (cu->armed && !writable) {
        if (now >= cu->deadline) {
            abandon(cu);
        }
        return;                     /* still no room */
    }
    cu->armed = 0;
    switch (cu->phase) {
    case CU_READY: {
        int state = wsock_redis_local_room_state(cl->sel.room);

        if (state == 0 && now < cu->deadline) {
            return;                 /* until the subscriber has the room */
        }
        cu->deadline = 0;
        wsock_redis_local_greet(cl, 0);
        if (state <= 0) {
            incomplete(cu, state < 0 ? "the relay is unavailable"
                                     : "the room was not subscribed in time");
            break;
        }
        cu->phase = CU_PLAN;
    }
    /* fall through */
    case CU_PLAN:
        if (!plan(cu, why, sizeof(why))) {
            incomplete(cu, why);
            break;
        }
        if (cu->plan.cut) {
            cu->complete = 0;
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, wsock_redis_server,
                         WSOCKNO(0811) "redis %s: %s resuming after %s missed more than "
                         "resume=%ld messages or resume-bytes=%" APR_SIZE_T_FMT "; it gets "
                         "the newest %ld", cu->uri, cu->client, cu->after, cu->max_n,
                         cu->max_bytes, cu->plan.count);
        }
        else if (!cu->plan.complete) {
            incomplete(cu, "the history no longer holds them all");
        }
        /* held copies up to the stream's end come with the stream */
        wsock_redis_local_set_upto(cl, *cu->plan.newest ? cu->plan.newest : cu->after);
        cu->sync_deadline = apr_time_now() + wsock_redis_conf.timeout;
        cu->phase = CU_SEND;
        /* fall through */
    case CU_SEND:
        switch (send_turn(cu, why, sizeof(why))) {
        case TURN_WAIT:
            if (!arm(cu)) {
                end_job(cu, 0);     /* closing */
            }
            return;
        case TURN_GONE:
            end_job(cu, 0);
            return;
        case TURN_FAILED:
            incomplete(cu, why);
            goto hand_over;         /* the marker may never come now */
        case TURN_DONE:
            break;
        }
        cu->phase = CU_SYNC;
        /* fall through */
    case CU_SYNC:
        if (!wsock_redis_local_is_synced(cl, &interrupted)) {
            if (!interrupted && now < cu->sync_deadline) {
                cu->deadline = cu->sync_deadline;
                return;             /* until the subscriber sees the marker */
            }
            incomplete(cu, interrupted ? "the relay went down"
                                       : "no sync from the subscriber in time");
        }
        break;
    case CU_FINISH:
        if (!writable) {
            if (!arm(cu)) {
                end_job(cu, 0);
            }
            return;                 /* bounced: until the client has room */
        }
        break;
    }
hand_over:
    cu->phase = CU_FINISH;
    cu->deadline = 0;
    end_job(cu, 1);
}

/* The earliest deadline of the jobs, 0 if none. */
static apr_time_t next_deadline(void)
{
    apr_time_t first = 0;

    for (wsock_redis_catchup *cu = jobs; cu; cu = cu->next) {
        if (cu->deadline && (!first || cu->deadline < first)) {
            first = cu->deadline;
        }
    }
    return first;
}

void *APR_THREAD_FUNC wsock_redis_catchup_main(apr_thread_t *t, void *data)
{
    (void)data;
    wsock_thread_name("wsock-catchup");       /* top -H; the signal-mask test */
    for (;;) {
        apr_time_t due = next_deadline(), now;
        wsock_redis_catchup *batch, *cu, *next;
        int all;

        apr_thread_mutex_lock(mx);
        while (!wsock_redis_stopping() && run_head == NULL && !recheck) {
            now = apr_time_now();
            if (due && now >= due) {
                break;
            }
            if (due) {
                apr_thread_cond_timedwait(cv, mx, due - now);
            }
            else {
                apr_thread_cond_wait(cv, mx);
            }
        }
        if (wsock_redis_stopping()) {
            apr_thread_mutex_unlock(mx);
            break;
        }
        batch = run_head;
        run_head = run_tail = NULL;
        all = recheck;
        recheck = 0;
        apr_thread_mutex_unlock(mx);

        now = apr_time_now();
        for (cu = batch; cu; cu = next) {
            wsock_redis_client *cl = cu->cl;
            int mine;

            apr_thread_mutex_lock(mx);
            next = cu->next_run;
            cu->queued = 0;
            mine = cu->mine;
            apr_thread_mutex_unlock(mx);
            if (mine && !cu->listed) {
                cu->next = jobs;
                jobs = cu;
                cu->listed = 1;
            }
            if (mine) {
                step(cu, now);
            }
            wsock_redis_client_unref(cl);       /* the queue's */
        }
        for (cu = jobs; cu; cu = next) {
            next = cu->next;
            if ((all && (cu->phase == CU_READY || cu->phase == CU_SYNC))
                || (cu->deadline && now >= cu->deadline)) {
                step(cu, now);
            }
        }
    }

    /* Stopping: nothing more is queued; let go of every job. */
    apr_thread_mutex_lock(mx);
    stopped = 1;
    apr_thread_mutex_unlock(mx);
    while (jobs) {
        end_job(jobs, 0);
    }
    apr_thread_mutex_lock(mx);
    while (run_head) {
        wsock_redis_catchup *cu = run_head;

        run_head = cu->next_run;
        cu->queued = 0;
        apr_thread_mutex_unlock(mx);
        wsock_redis_client_unref(cu->cl);
        apr_thread_mutex_lock(mx);
    }
    run_tail = NULL;
    apr_thread_mutex_unlock(mx);
    if (rc) {
        redisFree(rc);
        rc = NULL;
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}
