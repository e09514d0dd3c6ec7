/*
 * wsock_loop.c — the asynchronous driver for the event MPM.
 *
 * httpd 2.4 offers modules no poll callback for a connection, so the
 * handler answers the upgrade, returns SUSPENDED, and once the MPM has let
 * go of the connection (suspend_connection hook) one of this child's loop
 * threads owns it: it polls the sockets of all its connections plus a
 * wake-up (APR's wakeable pollset), runs each ready connection through the
 * same state machine as the blocking driver (wsock_conn_read, _flush,
 * _tick), and keeps the timers in a min-heap.  Output goes through the
 * connection's filters to wsock_netout.c, which never blocks; what the
 * socket does not take waits for POLLOUT.  Other threads hand messages to a
 * connection's queue and put the connection on its loop's ready list.
 *
 * The end of a connection (the MPM would do it for a request that returns
 * DONE): drain the output, end the request (ap_process_request_after_handler:
 * logged, pool freed), lingering close without blocking (shutdown for
 * writing, read until EOF for up to 2 s), then destroy the connection's
 * pool, whose cleanups close the socket and give the MPM back its
 * connection slot.  The event MPM counts a suspended connection until its
 * pool goes, in the state CONN_STATE_SUSPENDED, which is restored for that.
 * (httpd 2.4 has no call that hands a suspended connection back to the
 * MPM: destroying its pool is how the MPM's own cleanups run for it.)
 *
 * The hand-off from the MPM.  The worker thread that ran the handler calls
 * the suspend_connection hook, which puts the connection on a loop's inbox
 * under the loop's mutex: everything the handshake wrote is the loop's to
 * read.  After the hook returns, the MPM still writes to its own state in
 * the connection's pool (c->sbh, its "suspended" flag) and forgets the
 * socket; httpd 2.4 signals nothing when it is done.  So the memory of the
 * pool, and only that, waits for the worker: each worker thread has a slot
 * that names the connection it handed over last, and clears it the next
 * time it runs any of mod_wsock's hooks (its next request, connection,
 * suspend or resume: wsock_loop_worker_visit), by then done with it in
 * program order.  A connection that ends before that is freed as usual
 * (its cleanups run: the socket closes, the MPM counts it out), except that
 * its pool's allocator is first detached from the pool, keeps the pool's
 * blocks mapped, and goes into the slot: the worker destroys it when it
 * comes back, and the child's clean-up destroys what is left once the MPM
 * has joined every worker (see worker_slot and free_conn).  Nothing waits
 * for the worker but a few kilobytes of memory, at most one pool's worth
 * per worker thread.
 */
#include <unistd.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <apr_allocator.h>
#include <apr_atomic.h>
#include <apr_poll.h>
#include <apr_portable.h>

#include "wsock_compress.h"
#include "wsock_cpus.h"
#include "wsock_live.h"
#include "wsock_loop.h"
#include "wsock_peer_acked.h"
#include "wsock_reqlog.h"
#include "wsock_netin.h"
#include "wsock_netout.h"
#include "wsock_output.h"
#include "wsock_counters.h"
#include "wsock_threads.h"

APLOG_USE_MODULE(wsock);

#define LOOP_MAX_THREADS 8
#define LOOP_POLL_EVENTS 256
#define LOOP_LINGER (apr_time_from_sec(2))

/* A connection that has been quiet (no input, no output, no wake-up) for
 * this long gives back its buffers and the blocks its allocator keeps (see
 * trim_memory). */
#define LOOP_IDLE_TRIM (apr_time_from_sec(2))

/* Small free blocks an allocator may hold: the core input filter's socket
 * buffer from the handshake (12 KB: 8000 bytes and the block's header,
 * rounded up to 4 KB), the request pool's (8 KB) once the request ended at
 * the upgrade (WSockAccessLog upgrade), and two to spare.  Taking one that
 * was not kept costs an mmap and a munmap, once per quiet spell. */
#define LOOP_TRIM_NODES 4

enum { PHASE_HANDED = 0, PHASE_RUN, PHASE_DRAIN, PHASE_LINGER, PHASE_DEAD };

typedef struct wsock_loop {
    apr_pool_t *pool;
    apr_thread_t *thread;
    apr_os_thread_t tid;
    apr_pollset_t *ps;
    server_rec *s;

    apr_thread_mutex_t *mutex;     /* guards inbox, ready, released, stopping */
    wsock_conn *inbox;             /* handed over, not adopted yet */
    wsock_conn *ready;             /* woken by other threads */
    wsock_conn *released;          /* let go of, and now held by nobody */
    int stopping;

    /* the loop thread only */
    wsock_conn *local;             /* woken by this thread: served next round */
    wsock_conn *due;               /* this round's: last round's local ones,
                                    * then other threads' wake-ups */
    wsock_conn *conns;             /* every connection it owns */
    wsock_conn *current;           /* the one being served */
    wsock_buf rbuf;                /* lent to the one being read */
    wsock_conn **heap;             /* timers: min-heap on wc->due */
    int heap_n, heap_cap;
} wsock_loop;

static wsock_loop *loops;
static int nloops;
static apr_uint32_t next_loop;

/* A worker thread's slot (see the top of this file).  Its value, changed
 * atomically by the worker and the loop:
 *   0                the worker is back since its last hand-off;
 *   a wsock_conn *   the connection it handed over last, maybe still
 *                    written to by the MPM on the worker's side;
 *   SLOT_FREEING     the loop is freeing that connection;
 *   allocator | 1    it was freed before the worker came back: the detached
 *                    allocator of its pool, for the worker to destroy.
 * One per worker thread, made on its first hand-off and kept for the
 * child's life, all listed for the child's clean-up. */
typedef struct worker_slot {
    struct worker_slot *next;
    uintptr_t v;
} worker_slot;

#define SLOT_FREEING ((uintptr_t)2)
#define SLOT_ALLOCATOR 1u

static apr_thread_mutex_t *slots_mutex;
static apr_pool_t *slots_pool;
static worker_slot *slots;
static __thread worker_slot *my_slot;

/* ---- timers: a binary min-heap of connections keyed by wc->due ------- */

static void heap_set(wsock_loop *L, int i, wsock_conn *wc)
{
    L->heap[i] = wc;
    wc->heap_idx = i;
}

static void heap_up(wsock_loop *L, int i)
{
    wsock_conn *wc = L->heap[i];

    while (i > 0 && L->heap[(i - 1) / 2]->due > wc->due) {
        heap_set(L, i, L->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(L, i, wc);
}

static void heap_down(wsock_loop *L, int i)
{
    wsock_conn *wc = L->heap[i];

    for (;;) {
        int k = 2 * i + 1;
        if (k >= L->heap_n) {
            break;
        }
        if (k + 1 < L->heap_n && L->heap[k + 1]->due < L->heap[k]->due) {
            k++;
        }
        if (L->heap[k]->due >= wc->due) {
            break;
        }
        heap_set(L, i, L->heap[k]);
        i = k;
    }
    heap_set(L, i, wc);
}

static void timer_remove(wsock_loop *L, wsock_conn *wc)
{
    int i = wc->heap_idx;

    if (i < 0) {
        return;
    }
    wc->heap_idx = -1;
    if (--L->heap_n > i) {
        heap_set(L, i, L->heap[L->heap_n]);
        heap_up(L, i);
        heap_down(L, L->heap[i]->heap_idx);
    }
}

/* Arms wc's timer for due (0: none).  It may fire before due (see below),
 * so every phase's step checks the time itself. */
static void timer_set(wsock_loop *L, wsock_conn *wc, apr_time_t due)
{
    if (due == 0) {
        timer_remove(L, wc);
        return;
    }
    if (wc->heap_idx >= 0) {
        apr_time_t old = wc->due;

        /* A later time leaves the timer where it is: it then fires early,
         * and run() sets it again.  An active connection moves its time
         * on with every message; sifting the heap each time cost more
         * than one early wake-up per quiet spell. */
        if (due < old) {
            wc->due = due;
            heap_up(L, wc->heap_idx);
        }
        return;
    }
    if (L->heap_n == L->heap_cap) {
        int cap = L->heap_cap ? L->heap_cap * 2 : 256;
        wsock_conn **h = realloc(L->heap, (size_t)cap * sizeof(*h));
        if (h == NULL) {
            return;                 /* no timer: the next event serves it */
        }
        L->heap = h;
        L->heap_cap = cap;
    }
    wc->due = due;
    heap_set(L, L->heap_n++, wc);
    heap_up(L, wc->heap_idx);
}

/* ---- lists and wake-ups ---------------------------------------------- */

static void wake_loop(void *baton)
{
    wsock_conn *wc = baton;
    wsock_loop *L = wc->loop;
    int was_empty;

    /* Not adopted yet: its adoption serves it (anything queued before that
     * is flushed then; a waker reads the phase after queueing under the
     * connection's mutex, which adoption takes after setting it).  And a
     * connection the MPM never hands over must be on no list of ours. */
    if (__atomic_load_n(&wc->phase, __ATOMIC_ACQUIRE) == PHASE_HANDED) {
        return;
    }
    if (apr_atomic_read32(&wc->in_ready)) {
        return;                     /* already on a ready list */
    }
    if (apr_os_thread_equal(L->tid, apr_os_thread_current())) {
        if (apr_atomic_cas32(&wc->in_ready, 1, 0) != 0) {
            return;                 /* another thread listed it meanwhile */
        }
        wc->ready_next = L->local;  /* the loop itself: no lock, no wake-up */
        L->local = wc;
        return;
    }
    /* Set and listed in one hold of the mutex, which ready_unlink takes to
     * clear it: the flag never says "listed" for a connection that is not
     * (ready_unlink would clear it, the push would follow, and the
     * connection would be freed while still on the list). */
    apr_thread_mutex_lock(L->mutex);
    if (apr_atomic_cas32(&wc->in_ready, 1, 0) != 0) {
        apr_thread_mutex_unlock(L->mutex);
        return;
    }
    was_empty = (L->ready == NULL);
    wc->ready_next = L->ready;
    L->ready = wc;
    apr_thread_mutex_unlock(L->mutex);
    if (was_empty) {
        apr_pollset_wakeup(L->ps);
    }
}

void wsock_loop_touch(wsock_conn *wc)
{
    if (wc->loop && wc != wc->loop->current) {
        wake_loop(wc);
    }
}

int wsock_loop_must_queue(wsock_conn *wc)
{
    int queued;

    if (wc->loop == NULL || wc == wc->loop->current || wc->netout == NULL) {
        return 0;
    }
    if (wsock_output_backlog(wc) >= WSOCK_OUT_HIGH) {
        return 1;
    }
    apr_thread_mutex_lock(wc->mutex);
    queued = (wc->q_msgs != 0);
    apr_thread_mutex_unlock(wc->mutex);
    return queued;
}

/* Takes wc off whichever ready list holds it (the loop thread, as wc
 * ends).  Only the loop thread lists wc on its own lists (local, due), and
 * another thread sets the flag and lists wc on L->ready in one hold of the
 * mutex: so a flag seen set, and wc on neither of the loop's lists, means
 * wc is on L->ready, and a waker after the flag is cleared (a holder, while
 * wc lingers) lists it again with the flag set. */
static void ready_unlink(wsock_loop *L, wsock_conn *wc)
{
    wsock_conn **pp;

    if (!apr_atomic_read32(&wc->in_ready)) {
        return;
    }
    for (pp = &L->local; *pp && *pp != wc; pp = &(*pp)->ready_next) {
    }
    if (*pp == NULL) {
        for (pp = &L->due; *pp && *pp != wc; pp = &(*pp)->ready_next) {
        }
    }
    if (*pp) {
        *pp = wc->ready_next;
        apr_atomic_set32(&wc->in_ready, 0);
        return;
    }
    apr_thread_mutex_lock(L->mutex);
    for (pp = &L->ready; *pp && *pp != wc; pp = &(*pp)->ready_next) {
    }
    if (*pp) {
        *pp = wc->ready_next;
    }
    apr_atomic_set32(&wc->in_ready, 0);
    apr_thread_mutex_unlock(L->mutex);
}

/* Makes the pollset watch events (0: nothing) for wc. */
static void watch(wsock_loop *L, wsock_conn *wc, apr_int16_t events)
{
    if (events == wc->pfd.reqevents) {
        return;
    }
    if (wc->pfd.reqevents) {
        apr_pollset_remove(L->ps, &wc->pfd);
    }
    wc->pfd.reqevents = events;
    if (events && apr_pollset_add(L->ps, &wc->pfd) != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, wc->c,
                      WSOCKNO(0111) "cannot poll the WebSocket connection; closing");
        wc->pfd.reqevents = 0;
        wc->c->aborted = 1;
        wc->can_read = 1;           /* served once more, to end it */
        wake_loop(wc);
    }
}

/* ---- the life of one connection on the loop --------------------------- */

/* The last wsock_unref() of a connection the loop has let go of, on the
 * holder's thread: hands it back, and the loop frees it (free_conn).
 * Through a list of its own, not the ready list: the hand-back must not be
 * lost to a wake-up already pending. */
static void released_to_loop(wsock_conn *wc)
{
    wsock_loop *L = wc->loop;
    int was_empty;

    apr_thread_mutex_lock(L->mutex);
    was_empty = L->released == NULL;
    wc->release_next = L->released;
    L->released = wc;
    apr_thread_mutex_unlock(L->mutex);   /* the holder's last touch of wc */
    if (was_empty && !apr_os_thread_equal(L->tid, apr_os_thread_current())) {
        apr_pollset_wakeup(L->ps);
    }
}

static void free_conn(wsock_loop *L, wsock_conn *wc);
static void trim_memory(wsock_conn *wc);
static void slots_clear(void);

/* An ended connection that must wait for its last holder keeps no more
 * than its pool's first blocks meanwhile: nothing will be written to it or
 * read from it again (holders find it closing). */
static void release_memory(wsock_conn *wc)
{
    wc->obuf.len = wc->msg.len = 0;
    wsock_buf_release(&wc->msg);
    wsock_netout_release(wc->netout);
    trim_memory(wc);                /* the output buffer, queue arrays, blocks */
}

/* The connection is over: once nobody holds it any more, it is freed. */
static void destroy(wsock_loop *L, wsock_conn *wc, apr_time_t now)
{
    (void)now;
    watch(L, wc, 0);
    timer_remove(L, wc);
    wc->phase = PHASE_DEAD;
    if (wc->let_go || !wsock_conn_let_go(wc, released_to_loop)) {
        /* Held (a delivery in progress, a handler's wsock_ref): the
         * socket goes now, the memory when the last holder hands it back. */
        apr_socket_t *sock = ap_get_conn_socket(wc->c);
        if (sock && !wc->c->aborted) {
            apr_socket_shutdown(sock, APR_SHUTDOWN_READWRITE);
        }
        release_memory(wc);
        return;
    }
    free_conn(L, wc);
}

/* Destroys the pool of a connection whose worker may not be back from its
 * hand-off yet (see worker_slot): its cleanups run now, its blocks stay
 * mapped in the detached allocator until the worker has come back. */
static void destroy_pool(wsock_conn *wc)
{
    apr_pool_t *pool = wc->c->pool;
    worker_slot *slot = wc->slot;
    apr_allocator_t *a = apr_pool_allocator_get(pool);
    uintptr_t expect = (uintptr_t)wc;

    if (slot == NULL || apr_allocator_owner_get(a) != pool
        || !__atomic_compare_exchange_n(&slot->v, &expect, SLOT_FREEING, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        apr_pool_destroy(pool);     /* the worker is back: as the MPM would */
        return;
    }
    /* What a keeps is only the pool's own blocks: the free ones it holds
     * (the read block among them) go first. */
    trim_memory(wc);
    apr_allocator_owner_set(a, NULL);
    apr_allocator_max_free_set(a, APR_ALLOCATOR_MAX_FREE_UNLIMITED);
    apr_pool_destroy(pool);         /* cleanups run; the blocks go to a */
    expect = SLOT_FREEING;
    if (!__atomic_compare_exchange_n(&slot->v, &expect, (uintptr_t)a | SLOT_ALLOCATOR, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        apr_allocator_destroy(a);   /* it came back meanwhile */
    }
}

static void free_conn(wsock_loop *L, wsock_conn *wc)
{
    ready_unlink(L, wc);            /* a holder may have woken it meanwhile */
    if (wc->loop_prev) {
        wc->loop_prev->loop_next = wc->loop_next;
    }
    else {
        L->conns = wc->loop_next;
    }
    if (wc->loop_next) {
        wc->loop_next->loop_prev = wc->loop_prev;
    }
    if (wc->c->cs) {
        wc->c->cs->state = CONN_STATE_SUSPENDED;
    }
    destroy_pool(wc);               /* wc goes with it */
}

static void linger_step(wsock_loop *L, wsock_conn *wc, apr_time_t now)
{
    apr_socket_t *sock = ap_get_conn_socket(wc->c);

    /* What the client still sends is read and dropped until it closes its
     * side or LOOP_LINGER passes: closing with unread input would reset the
     * connection, and the client could lose our close frame. */
    for (int i = 0; i < 16; i++) {
        char buf[512];
        apr_size_t len = sizeof(buf);
        apr_status_t rv = apr_socket_recv(sock, buf, &len);

        if (APR_STATUS_IS_EAGAIN(rv) && now < wc->phase_deadline) {
            timer_set(L, wc, wc->phase_deadline);   /* it may have fired early */
            return;                 /* more may come: keep waiting */
        }
        if (rv != APR_SUCCESS || len == 0) {
            destroy(L, wc, now);
            return;
        }
    }
    if (now < wc->phase_deadline) {
        wake_loop(wc);              /* more to read: after the others' turns */
        return;
    }
    destroy(L, wc, now);
}

/* Logs the request that opened wc and frees its pool, once; the
 * connection stays suspended as far as the MPM is concerned. */
static void finish_request(wsock_conn *wc)
{
    if (wc->r) {
        wsock_reqlog_finish(wc->r);     /* logged; r is gone */
        wc->r = NULL;
    }
    if (wc->c->cs) {
        wc->c->cs->state = CONN_STATE_SUSPENDED;
    }
}

/* The output is written (or given up on): end the request and close. */
static void end_request(wsock_loop *L, wsock_conn *wc, apr_time_t now)
{
    conn_rec *c = wc->c;

    if (wsock_netout_pending(wc->netout)) {
        c->aborted = 1;             /* the client took too long to read */
    }
    finish_request(wc);
    if (c->aborted || ap_start_lingering_close(c)) {
        destroy(L, wc, now);
        return;
    }
    wc->phase = PHASE_LINGER;
    wc->phase_deadline = now + LOOP_LINGER;
    watch(L, wc, APR_POLLIN);
    timer_set(L, wc, wc->phase_deadline);
}

static void drain_step(wsock_loop *L, wsock_conn *wc, apr_time_t now)
{
    if (!wc->c->aborted && wsock_netout_pending(wc->netout)
        && APR_STATUS_IS_EAGAIN(wsock_netout_drain(wc->netout))
        && now < wc->phase_deadline) {
        watch(L, wc, APR_POLLOUT);
        timer_set(L, wc, wc->phase_deadline);
        return;
    }
    end_request(L, wc, now);
}

static void begin_end(wsock_loop *L, wsock_conn *wc, apr_time_t now)
{
    apr_interval_time_t grace = wc->set.close_timeout;

    wsock_live_remove(wc);
    wsock_conn_finish(wc);          /* on_close; leaves its rooms */
    ready_unlink(L, wc);            /* nobody can wake it any more */
    wc->phase = PHASE_DRAIN;
    wc->phase_deadline = now + (grace > apr_time_from_sec(1) ? grace : apr_time_from_sec(1));
    drain_step(L, wc, now);
}

/* Each read borrows a socket buffer from the connection's allocator (the
 * event MPM gives each connection one of its own), which keeps it once
 * freed.  Making the allocator keep nothing would cost an mmap and a munmap
 * per read (Debian's APR maps each block), and a munmap in a threaded
 * process stalls every core's TLB: 3x slower echo.  So an active connection
 * keeps its blocks and its output buffer from one message to the next, and
 * one that has gone quiet hands them back once: the buffers are freed, and
 * the kept blocks are taken and freed again while the allocator may keep
 * nothing. */
static void trim_memory(wsock_conn *wc)
{
    apr_allocator_t *a = apr_pool_allocator_get(wc->c->pool);
    apr_memnode_t *nodes[LOOP_TRIM_NODES + 1];
    int n;

    wc->trimmed = 1;
    wsock_buf_release(&wc->obuf);   /* empty between serves */
    wsock_buf_release(&wc->msg);    /* what assembled (or inflated) a message */
    wsock_output_trim(wc);          /* the queue's arrays, if empty */
    wsock_compress_trim(wc);        /* a deflate context kept for takeover */
    apr_allocator_max_free_set(a, 1);
    for (n = 0; n < LOOP_TRIM_NODES; n++) {
        /* The smallest size: the allocator hands out the smallest free
         * block that fits, so each call takes one of those it keeps. */
        if ((nodes[n] = apr_allocator_alloc(a, 1)) == NULL) {
            break;
        }
    }
    /* The read buffer is larger than the allocator's size classes: it sits
     * in the list of large blocks, which only a request as large searches.
     * Kept, it held 4-8 KB of touched pages per idle connection. */
    if (n == LOOP_TRIM_NODES && (nodes[n] = apr_allocator_alloc(a, WSOCK_READ_CHUNK)) != NULL) {
        n++;
    }
    while (n > 0) {
        apr_allocator_free(a, nodes[--n]);
    }
    apr_allocator_max_free_set(a, APR_ALLOCATOR_MAX_FREE_UNLIMITED);
}

static void run(wsock_loop *L, wsock_conn *wc, apr_time_t now)
{
    apr_status_t rv = APR_SUCCESS;
    apr_interval_time_t t;
    apr_time_t due, stop_cut_at = 0;
    apr_int16_t want;

    /* Reads, writes and wake-ups are activity; its own timer is not.  An
     * active connection keeps its buffers from one message to the next. */
    if (!wc->timer_fired) {
        wc->active_at = now;
        wc->trimmed = 0;
    }
    wc->timer_fired = 0;

    if (wc->can_write) {
        wc->can_write = 0;
        wc->wrote_at = now;
        wsock_netout_drain(wc->netout);
    }
    if (wc->can_read && wsock_output_backlog(wc) < WSOCK_OUT_HIGH) {
        /* One turn's input at most: a client that floods waits for the
         * others' turns (served again from the loop's own list), and one
         * whose output backs up is not read until it drains (POLLOUT). */
        wc->can_read = 0;
        rv = wsock_conn_read(wc);
        if (rv == APR_INCOMPLETE) {
            wc->can_read = 1;       /* more may be there, held by the filters */
        }
    }
    if (wc->state != WSOCK_STATE_DONE) {
        wsock_conn_tick(wc, now);   /* cheap when nothing is due */
    }
    /* Always: a close asked for by another thread (the server stopping, a
     * handler's thread) is taken here, backlog or not; the queue is only
     * taken below the mark (wsock_conn_flush). */
    wsock_conn_flush(wc);
    if (wc->state == WSOCK_STATE_CLOSING && wsock_output_backlog(wc) >= WSOCK_OUT_HIGH
        && wsock_live_is_stopping()) {
        /* The child is going away and this client's output is backed up:
         * its close frame waits behind it.  Once the client has taken
         * nothing for WSOCK_STOP_GRACE (its TCP acknowledgements, or the
         * socket's room where those are unknown), it does not read, and
         * the child does not wait WSockCloseTimeout for it; one that reads,
         * however slowly, gets its 1001 within that timeout. */
        apr_uint64_t acked = wsock_peer_acked(ap_get_conn_socket(wc->c));

        if (!wc->stop_progress_at || acked != wc->stop_acked
            || wc->wrote_at > wc->stop_progress_at) {
            wc->stop_progress_at = now;
            wc->stop_acked = acked;
        }
        stop_cut_at = wc->stop_progress_at + WSOCK_STOP_GRACE;
        if (now >= stop_cut_at) {
            wc->c->aborted = 1;
        }
    }
    if (wc->state != WSOCK_STATE_DONE) {
        wsock_output_writable_check(wc);
    }
    if (wc->c->aborted && wc->state != WSOCK_STATE_DONE) {
        wc->state = WSOCK_STATE_DONE;
        if (wc->close_code == 0) {
            wc->close_code = WSOCK_CLOSE_ABNORMAL;
        }
    }
    if (wc->state == WSOCK_STATE_DONE) {
        begin_end(L, wc, now);
        return;
    }
    want = wsock_netout_pending(wc->netout) ? APR_POLLOUT : 0;
    if (wsock_output_backlog(wc) < WSOCK_OUT_HIGH) {
        want |= APR_POLLIN;
        if (wc->can_read) {
            wake_loop(wc);          /* its next turn, after the others' */
        }
    }
    watch(L, wc, want);
    if (!wc->trimmed && now - wc->active_at >= LOOP_IDLE_TRIM) {
        trim_memory(wc);
    }
    t = wsock_conn_next_timeout(wc, now);
    due = t < 0 ? 0 : now + t;
    if (stop_cut_at && (!due || stop_cut_at < due)) {
        due = stop_cut_at;
    }
    if (!wc->trimmed) {
        /* Served again once quiet, to give its memory back (a pong to
         * the server's ping must not keep a socket buffer until the next
         * ping). */
        apr_time_t trim_at = wc->active_at + LOOP_IDLE_TRIM;
        due = due && due < trim_at ? due : trim_at;
    }
    timer_set(L, wc, due);
}

static void serve(wsock_loop *L, wsock_conn *wc, apr_time_t now)
{
    L->current = wc;
    switch (wc->phase) {
    case PHASE_RUN:
        run(L, wc, now);
        break;
    case PHASE_DRAIN:
        drain_step(L, wc, now);
        break;
    case PHASE_LINGER:
        linger_step(L, wc, now);
        break;
    case PHASE_DEAD:
        destroy(L, wc, now);
        break;
    default:
        break;                      /* not adopted yet: adoption serves it */
    }
    L->current = NULL;
}

static void adopted(wsock_conn *wc);

static void adopt(wsock_loop *L, wsock_conn *wc, apr_time_t now)
{
    __atomic_store_n(&wc->phase, PHASE_RUN, __ATOMIC_RELEASE);  /* see wake_loop */
    wc->loop_prev = NULL;
    wc->loop_next = L->conns;
    if (L->conns) {
        L->conns->loop_prev = wc;
    }
    L->conns = wc;
    wc->pfd.p = wc->pool;
    wc->pfd.desc_type = APR_POLL_SOCKET;
    wc->pfd.desc.s = ap_get_conn_socket(wc->c);
    wc->pfd.client_data = wc;
    wc->can_read = 1;               /* input may have come with the handshake */
    wc->shared_rbuf = &L->rbuf;
    wsock_buf_release(&wc->rbuf);
    wsock_ref(wc);                  /* serving may end it: still to be looked at */
    serve(L, wc, now);
    if (wc->phase == PHASE_RUN) {
        adopted(wc);
    }
    wsock_unref(wc);                /* freed now if it ended (free_conn) */
}

/* The connection runs on its loop: what the handshake left behind goes. */
static void adopted(wsock_conn *wc)
{
    if (wc->set.log_at_upgrade) {
        /* The access log line now, and the request's pool with it: the
         * handler's facts were copied into the connection's pool. */
        finish_request(wc);
    }
    else if (wc->r) {
        wc->r = wsock_reqlog_keep(wc);   /* the line at the end, 12 KiB less */
    }
    trim_memory(wc);                /* the handshake's buffers */
}

/* Serves L->due, taking each off it first: a connection still on it may
 * end (and be taken off it by ready_unlink) while others are served. */
static void serve_due(wsock_loop *L, apr_time_t now)
{
    while (L->due) {
        wsock_conn *wc = L->due;
        L->due = wc->ready_next;
        apr_atomic_set32(&wc->in_ready, 0);
        wsock_count_turn_late(apr_time_now() - now);
        serve(L, wc, now);
    }
}

static void *APR_THREAD_FUNC loop_main(apr_thread_t *thd, void *data)
{
    wsock_loop *L = data;
    const apr_pollfd_t *out;
    int stopping = 0;

    wsock_thread_name("wsock-loop");       /* top -H; the signal-mask test */
    while (!stopping) {
        apr_interval_time_t timeout = -1;
        apr_int32_t n = 0;
        wsock_conn *inbox, *ready, *released;
        apr_time_t now = apr_time_now();
        apr_status_t rv;

        /* Served this round: the connections this thread woke in the last
         * one (a flooder's next turn comes after everyone else's). */
        L->due = L->local;
        L->local = NULL;
        apr_thread_mutex_lock(L->mutex);
        stopping = L->stopping;
        if (L->ready || L->inbox || L->due || L->released || stopping) {
            timeout = 0;
        }
        apr_thread_mutex_unlock(L->mutex);
        if (timeout && L->heap_n) {
            timeout = L->heap[0]->due > now ? L->heap[0]->due - now : 0;
        }

        rv = apr_pollset_poll(L->ps, timeout, &n, &out);
        now = apr_time_now();
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EINTR(rv) && !APR_STATUS_IS_TIMEUP(rv)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, L->s,
                         WSOCKNO(0112) "WebSocket loop: poll failed");
            apr_sleep(apr_time_from_msec(10));
        }
        for (apr_int32_t i = 0; rv == APR_SUCCESS && i < n; i++) {
            wsock_conn *wc = out[i].client_data;
            if (out[i].rtnevents & (APR_POLLIN | APR_POLLHUP | APR_POLLERR)) {
                wc->can_read = 1;
            }
            if (out[i].rtnevents & (APR_POLLOUT | APR_POLLHUP | APR_POLLERR)) {
                wc->can_write = 1;
            }
            /* How long it waited behind the connections served before it
             * in this round (docs/operations.md). */
            wsock_count_turn_late(apr_time_now() - now);
            serve(L, wc, now);
        }

        apr_thread_mutex_lock(L->mutex);
        inbox = L->inbox;
        ready = L->ready;
        L->inbox = L->ready = NULL;
        apr_thread_mutex_unlock(L->mutex);
        /* Other threads' wake-ups join this round's list, where ready_unlink
         * finds them: a connection may be woken before it is adopted (a
         * close asked for at once), and end while it is adopted. */
        if (ready) {
            wsock_conn **tail = &L->due;
            while (*tail) {
                tail = &(*tail)->ready_next;
            }
            *tail = ready;
        }
        for (wsock_conn *wc = inbox, *next; wc; wc = next) {
            next = wc->inbox_next;
            adopt(L, wc, now);
        }
        serve_due(L, now);

        /* Last: what was served above may have been handed back. */
        apr_thread_mutex_lock(L->mutex);
        released = L->released;
        L->released = NULL;
        apr_thread_mutex_unlock(L->mutex);
        for (wsock_conn *wc = released, *next; wc; wc = next) {
            next = wc->release_next;
            free_conn(L, wc);
        }

        while (L->heap_n && L->heap[0]->due <= now) {
            wsock_conn *wc = L->heap[0];
            wsock_count_turn_late(apr_time_now() - wc->due);
            timer_remove(L, wc);
            wc->timer_fired = 1;
            serve(L, wc, now);
        }
    }
    /* The child is exiting (its stopping hook already asked every client
     * to close): push out what is written, without waiting for anyone. */
    for (wsock_conn *wc = L->conns; wc; wc = wc->loop_next) {
        if (wc->phase == PHASE_RUN) {
            wsock_conn_flush(wc);
        }
        wsock_netout_drain(wc->netout);
    }
    /* Returning ends the thread; apr_thread_exit() would pthread_exit()
     * from here, which ASan mistakes for a stack underflow. */
    (void)thd;
    return NULL;
}

/* ---- starting, handing over, stopping --------------------------------- */

static apr_status_t loops_stop(void *data)
{
    (void)data;
    for (int i = 0; i < nloops; i++) {
        apr_status_t rv;
        apr_thread_mutex_lock(loops[i].mutex);
        loops[i].stopping = 1;
        apr_thread_mutex_unlock(loops[i].mutex);
        apr_pollset_wakeup(loops[i].ps);
        apr_thread_join(&rv, loops[i].thread);
        free(loops[i].heap);
    }
    nloops = 0;
    loops = NULL;
    /* The MPM joined its workers before the child's pool goes: none of them
     * writes to a handed-over connection any more. */
    slots_clear();
    return APR_SUCCESS;
}

static int mpm_can_suspend(void)
{
    int async = 0;

    return ap_mpm_query(AP_MPMQ_IS_ASYNC, &async) == APR_SUCCESS && async;
}

/* The default loop-thread count: the CPUs this process may use, shared
 * among the children the MPM may run (more loop threads than usable cores
 * only add scheduler delay: on 2 cores, two children with two loops each
 * had 5x the p99 of one loop each; and a server pinned to one core with
 * the machine's count of loops had 6x the p99 of one loop). */
static int default_threads(wsock_cpus *cpus, int *children)
{
    int n;

    wsock_cpus_probe(cpus);
    if (ap_mpm_query(AP_MPMQ_MAX_DAEMONS, children) != APR_SUCCESS || *children < 1) {
        *children = 1;
    }
    n = (cpus->usable + *children - 1) / *children;
    return n > LOOP_MAX_THREADS ? LOOP_MAX_THREADS : n;
}

void wsock_loops_log_sizing(server_rec *s, int configured)
{
    wsock_cpus cpus;
    int children, n;

    if (!mpm_can_suspend()) {
        return;
    }
    n = default_threads(&cpus, &children);
    if (configured) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     WSOCKNO(0114) "%d WebSocket loop thread(s) per child (WSockLoopThreads); "
                     "%d CPU(s) usable here", configured, cpus.usable);
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 WSOCKNO(0115) "%d WebSocket loop thread(s) per child: %d CPU(s) usable "
                 "(%d online, %d in the affinity mask, cgroup quota %s%d) shared by up to "
                 "%d child process(es); WSockLoopThreads sets it", n, cpus.usable, cpus.online,
                 cpus.affinity, cpus.quota ? "" : "none: ", cpus.quota, children);
}

int wsock_loops_start(apr_pool_t *pchild, server_rec *s, int n)
{
    apr_pool_t *pool;

    nloops = 0;
    if (!mpm_can_suspend()) {
        return 0;
    }
    if (n <= 0) {
        wsock_cpus cpus;
        int children;

        n = default_threads(&cpus, &children);
    }
    apr_pool_create(&pool, pchild);
    slots = NULL;
    slots_pool = pool;
    if (apr_thread_mutex_create(&slots_mutex, APR_THREAD_MUTEX_DEFAULT, pool) != APR_SUCCESS) {
        slots_mutex = NULL;         /* then the old way: pools destroyed at once */
    }
    loops = apr_pcalloc(pool, (apr_size_t)n * sizeof(*loops));
    for (int i = 0; i < n; i++) {
        wsock_loop *L = &loops[i];
        apr_os_thread_t *tid = NULL;
        apr_status_t rv;

        L->pool = pool;
        L->s = s;
        wsock_buf_init(&L->rbuf, pool);
        rv = apr_thread_mutex_create(&L->mutex, APR_THREAD_MUTEX_DEFAULT, pool);
        if (rv == APR_SUCCESS) {
            rv = apr_pollset_create(&L->ps, LOOP_POLL_EVENTS, pool,
                                    APR_POLLSET_WAKEABLE | APR_POLLSET_NOCOPY);
        }
        if (rv == APR_SUCCESS) {
            rv = apr_thread_create(&L->thread, NULL, loop_main, L, pool);
        }
        if (rv == APR_SUCCESS) {
            rv = apr_os_thread_get(&tid, L->thread);
        }
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                         WSOCKNO(0113) "cannot start WebSocket loop thread %d of %d; "
                         "the blocking driver serves the rest", i + 1, n);
            if (L->thread) {
                nloops = i + 1;     /* joined by loops_stop */
            }
            break;
        }
        L->tid = *tid;
        nloops = i + 1;
    }
    /* Before pchild's subpools go: the loops use theirs until joined. */
    apr_pool_pre_cleanup_register(pchild, NULL, loops_stop);
    wsock_gauge_set(WSOCK_G_LOOP_THREADS, nloops);
    return nloops;
}

/* A pre-cleanup of the connection's pool.  The handler returned SUSPENDED,
 * yet the MPM may not hand the connection over and end it itself (seen
 * when a child stops at once while handshakes are under way): then what
 * accepting it did is undone before its pool goes.  Once a loop has
 * adopted it, the loop alone destroys the pool, and this does nothing. */
static apr_status_t never_adopted(void *data)
{
    wsock_conn *wc = data;

    if (__atomic_load_n(&wc->phase, __ATOMIC_ACQUIRE) == PHASE_HANDED) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, wc->f_server,
                     WSOCKNO(0116) "WebSocket %s from %s: the MPM ended the connection "
                     "before handing it over", wc->f_uri, wc->f_conn_id);
        wsock_live_remove(wc);
        wsock_conn_abandon(wc);     /* rooms, queue, counts, on_close, holders */
    }
    return APR_SUCCESS;
}

apr_status_t wsock_loop_prepare(wsock_conn *wc)
{
    conn_rec *c = wc->c;
    wsock_loop *L;

    if (nloops == 0 || c->cs == NULL || c->master != NULL) {
        return APR_ENOTIMPL;        /* not the event MPM, or an HTTP/2 stream */
    }
    wc->netout = wsock_netout_install(c);
    if (wc->netout == NULL) {
        return APR_ENOTIMPL;
    }
    wsock_netin_install(c, wc->bb_in);  /* plain connections: one recv per read */
    L = &loops[apr_atomic_inc32(&next_loop) % (apr_uint32_t)nloops];
    wc->heap_idx = -1;
    /* Set before anyone can send to it: wake-ups that come before the
     * loop adopts it do nothing, and adoption serves it. */
    __atomic_store_n(&wc->loop, L, __ATOMIC_RELEASE);  /* read by room deliveries */
    wsock_conn_set_wake(wc, wake_loop, wc);
    apr_pool_pre_cleanup_register(c->pool, wc, never_adopted);
    wsock_live_add(wc);
    /* The suspend_connection hook finds it there once the handler returned
     * SUSPENDED. */
    ap_set_module_config(c->conn_config, &wsock_module, wc);
    return APR_SUCCESS;
}

/* ---- the worker threads' slots ------------------------------------------ */

/* What a slot's value leaves to do once its worker is done with it. */
static void slot_done(uintptr_t v)
{
    if (v & SLOT_ALLOCATOR) {
        apr_allocator_destroy((apr_allocator_t *)(v & ~(uintptr_t)SLOT_ALLOCATOR));
    }
}

void wsock_loop_worker_visit(void)
{
    if (my_slot == NULL || __atomic_load_n(&my_slot->v, __ATOMIC_RELAXED) == 0) {
        return;
    }
    /* This thread returned to the MPM after its last hand-off and came
     * back: the MPM is done with that connection. */
    slot_done(__atomic_exchange_n(&my_slot->v, 0, __ATOMIC_ACQ_REL));
}

/* On the worker thread, in the suspend_connection hook (after the visit). */
static void worker_slot_take(wsock_conn *wc)
{
    if (slots_mutex == NULL) {
        return;
    }
    if (my_slot == NULL) {
        apr_thread_mutex_lock(slots_mutex);
        my_slot = apr_pcalloc(slots_pool, sizeof(*my_slot));
        my_slot->next = slots;
        slots = my_slot;
        apr_thread_mutex_unlock(slots_mutex);
    }
    wc->slot = my_slot;
    slot_done(__atomic_exchange_n(&my_slot->v, (uintptr_t)wc, __ATOMIC_ACQ_REL));
}

/* The child's clean-up, once the MPM has joined its workers and the loops
 * are joined: what no worker came back for. */
static void slots_clear(void)
{
    for (worker_slot *s = slots; s; s = s->next) {
        slot_done(__atomic_exchange_n(&s->v, 0, __ATOMIC_ACQ_REL));
    }
    slots = NULL;
}

static void loop_adopt(wsock_conn *wc)
{
    wsock_loop *L = wc->loop;
    int was_empty;

    /* The pool's memory waits for the MPM's own last stores: until this
     * thread comes back. */
    worker_slot_take(wc);
    /* The MPM clears this after the hook; nothing on the loop thread may
     * update this worker's scoreboard slot meanwhile. */
    wc->c->sbh = NULL;
    /* From now on the loop's thread is the owner: a send from this worker
     * thread (serving another request later) must queue, not write. */
    wsock_conn_set_owner(wc, L->tid);
    apr_thread_mutex_lock(L->mutex);
    was_empty = (L->inbox == NULL);
    wc->inbox_next = L->inbox;
    L->inbox = wc;
    apr_thread_mutex_unlock(L->mutex);
    if (was_empty) {
        apr_pollset_wakeup(L->ps);
    }
}

/* ---- the MPM's connection hooks ------------------------------------------ */

/* The MPM let go of a connection: a WebSocket the handler prepared goes to
 * its loop (this hook runs on the worker thread, before the MPM's own last
 * stores to the connection: see the top of this file).  The MPM runs this
 * hook for other transitions too (keep-alive), for which it is a visit. */
static void loop_suspend_connection(conn_rec *c, request_rec *r)
{
    wsock_conn *wc = ap_get_module_config(c->conn_config, &wsock_module);

    (void)r;
    wsock_loop_worker_visit();
    if (wc && c->cs && c->cs->state == CONN_STATE_SUSPENDED) {
        ap_set_module_config(c->conn_config, &wsock_module, NULL);
        loop_adopt(wc);
    }
}

/* A worker thread picks up a connection again, or starts a new one: it is
 * back from its last hand-off. */
static void loop_resume_connection(conn_rec *c, request_rec *r)
{
    (void)c;
    (void)r;
    wsock_loop_worker_visit();
}

static int loop_pre_connection(conn_rec *c, void *csd)
{
    (void)c;
    (void)csd;
    wsock_loop_worker_visit();
    return OK;
}

void wsock_loop_register_hooks(void)
{
    ap_hook_suspend_connection(loop_suspend_connection, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_resume_connection(loop_resume_connection, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_connection(loop_pre_connection, NULL, NULL, APR_HOOK_MIDDLE);
}
