/*
 * wsock_wakers.c — per-child wake-up words of the bus (see wsock_wakers.h).
 */
#include <stddef.h>

#include "wsock_wakers.h"

static uint32_t home(int32_t pid, uint32_t n)
{
    return (uint32_t)pid % n;
}

wsock_waker *wsock_wakers_claim(wsock_waker *w, uint32_t n, int32_t pid)
{
    wsock_waker *free_slot = NULL;

    /* Its own slot may lie beyond a released one: look for it first, so
     * that a pid never holds two slots. */
    for (uint32_t i = 0; i < n; i++) {
        wsock_waker *s = &w[(home(pid, n) + i) % n];

        if (s->pid == pid) {
            free_slot = s;
            break;
        }
        if (s->pid == WSOCK_WAKER_RELEASED && free_slot == NULL) {
            free_slot = s;
        }
        if (s->pid == 0) {
            free_slot = free_slot ? free_slot : s;
            break;
        }
    }
    if (free_slot) {
        free_slot->pid = pid;
        free_slot->pending = 0;
        __atomic_store_n(&free_slot->asleep, 0, __ATOMIC_SEQ_CST);
    }
    return free_slot;
}

int wsock_wakers_release(wsock_waker *w, uint32_t n, int32_t pid)
{
    wsock_waker *s = wsock_wakers_find(w, n, pid);

    if (s == NULL) {
        return 0;
    }
    s->pid = WSOCK_WAKER_RELEASED;
    s->pending = 0;
    return 1;
}

wsock_waker *wsock_wakers_find(wsock_waker *w, uint32_t n, int32_t pid)
{
    for (uint32_t i = 0; pid > 0 && i < n; i++) {
        wsock_waker *s = &w[(home(pid, n) + i) % n];

        if (s->pid == pid) {
            return s;
        }
        if (s->pid == 0) {
            return NULL;
        }
    }
    return NULL;
}

int wsock_wakers_pids(const wsock_waker *w, uint32_t n, int32_t *pids, int max)
{
    int found = 0;

    for (uint32_t i = 0; i < n && found < max; i++) {
        if (w[i].pid > 0) {
            pids[found++] = w[i].pid;
        }
    }
    return found;
}

void wsock_wakers_mark(wsock_waker *w, uint64_t pos, uint32_t seq)
{
    if (!w->pending) {
        w->pending = 1;
        w->from_pos = pos;
        w->from_seq = seq;
    }
}
