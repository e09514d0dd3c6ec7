/*
 * wsock_live.c — the live connections of this child process.
 *
 * The owner of a connection adds it before its first callback and removes
 * it before freeing anything, both under the list's mutex; so whoever holds
 * the mutex may safely ask any listed connection to close (wsock_close
 * only queues the request and wakes the owner).
 */
#include <stdlib.h>

#include "wsock_live.h"
#include "wsock_slow.h"

static apr_thread_mutex_t *live_mutex;
static wsock_conn *live_head;
static int live_stopping;          /* atomic */

static const char going_away_reason[] = "server shutting down";

apr_status_t wsock_live_child_init(apr_pool_t *pchild)
{
    live_head = NULL;
    __atomic_store_n(&live_stopping, 0, __ATOMIC_RELEASE);
    return apr_thread_mutex_create(&live_mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
}

void wsock_live_add(wsock_conn *wc)
{
    int stopping;

    if (live_mutex == NULL) {
        return;                     /* child_init failed (logged): no list */
    }
    apr_thread_mutex_lock(live_mutex);
    wc->live_prev = NULL;
    wc->live_next = live_head;
    if (live_head) {
        live_head->live_prev = wc;
    }
    live_head = wc;
    stopping = __atomic_load_n(&live_stopping, __ATOMIC_ACQUIRE);
    apr_thread_mutex_unlock(live_mutex);

    if (stopping) {
        wsock_close(wc, WSOCK_CLOSE_GOING_AWAY, going_away_reason);
    }
}

void wsock_live_remove(wsock_conn *wc)
{
    if (live_mutex == NULL) {
        return;                     /* child_init failed (logged): no list */
    }
    apr_thread_mutex_lock(live_mutex);
    if (wc->live_prev) {
        wc->live_prev->live_next = wc->live_next;
    }
    else if (live_head == wc) {
        live_head = wc->live_next;
    }
    if (wc->live_next) {
        wc->live_next->live_prev = wc->live_prev;
    }
    wc->live_prev = wc->live_next = NULL;
    apr_thread_mutex_unlock(live_mutex);
}

void wsock_live_going_away(void)
{
    wsock_conn **all = NULL;
    apr_size_t n = 0, cap = 0, blocking = 0;

    if (live_mutex == NULL) {
        return;
    }
    /* Listed under the mutex, each with a reference; asked to close after
     * it is released (a close wakes the owner: a syscall per connection). */
    apr_thread_mutex_lock(live_mutex);
    __atomic_store_n(&live_stopping, 1, __ATOMIC_RELEASE);
    for (wsock_conn *wc = live_head; wc; wc = wc->live_next) {
        cap++;
    }
    if (cap && (all = malloc(cap * sizeof(*all))) != NULL) {
        for (wsock_conn *wc = live_head; wc; wc = wc->live_next) {
            wsock_ref(wc);
            all[n++] = wc;
        }
    }
    else {
        /* Out of memory: ask them here, the slow way, rather than not at all. */
        for (wsock_conn *wc = live_head; wc; wc = wc->live_next) {
            wsock_close(wc, WSOCK_CLOSE_GOING_AWAY, going_away_reason);
        }
    }
    apr_thread_mutex_unlock(live_mutex);
    for (apr_size_t i = 0; i < n; i++) {
        wsock_close(all[i], WSOCK_CLOSE_GOING_AWAY, going_away_reason);
        if (__atomic_load_n(&all[i]->loop, __ATOMIC_ACQUIRE) == NULL) {
            /* A thread of its own may be stuck writing to a client that
             * does not read, where it would not see the close until the
             * server's Timeout; a loop thread never blocks (its own stop
             * check ends such a connection, after WSOCK_STOP_GRACE).  Kept
             * at the front for the check below. */
            wsock_conn *own = all[i];

            all[i] = all[blocking];
            all[blocking++] = own;
        }
    }
    if (blocking) {
        wsock_slow_cut_stuck(all, blocking, WSOCK_STOP_GRACE);
    }
    for (apr_size_t i = 0; i < n; i++) {
        wsock_unref(all[i]);
    }
    free(all);
}

int wsock_live_is_stopping(void)
{
    return __atomic_load_n(&live_stopping, __ATOMIC_ACQUIRE);
}
