/*
 * wsock_wakers.c — per-child wake-up words of the bus (see wsock_wakers.h).
 */
#include <stddef.h>

#include "wsock_wakers.h"

static uint32_t home(int32_t pid, uint32_t n)
{
    return (uint32_t)pid % n;
}

wsock_waker *wsock_wakers_claim(wsock_waker *w, uint32_t n, int32_t pid,
                                int (*alive)(int32_t pid, void *baton), void *baton)
{
    wsock_waker *gone = NULL;

    /* Its own slot may lie beyond a dead one: look for it first, so that a
     * pid never holds two slots. */
    for (uint32_t i = 0; i < n; i++) {
        wsock_waker *s = &w[(home(pid, n) + i) % n];

        if (s->pid == pid) {
            gone = s;
            break;
        }
        if (s->pid == 0) {
            gone = gone ? gone : s;
            break;
        }
        if (gone == NULL && !alive(s->pid, baton)) {
            gone = s;
        }
    }
    if (gone) {
        gone->pid = pid;
        gone->pending = 0;
        __atomic_store_n(&gone->asleep, 0, __ATOMIC_SEQ_CST);
    }
    return gone;
}

wsock_waker *wsock_wakers_find(wsock_waker *w, uint32_t n, int32_t pid)
{
    for (uint32_t i = 0; i < n; i++) {
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

void wsock_wakers_mark(wsock_waker *w, uint64_t pos, uint32_t seq)
{
    if (!w->pending) {
        w->pending = 1;
        w->from_pos = pos;
        w->from_seq = seq;
    }
}
