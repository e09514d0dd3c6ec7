/*
 * wsock_wakers.h — one wake-up word per child process, in the memory the
 * processes share, so that a message for a room wakes only the children
 * that have members in it (the room table says which), not every child's
 * delivery thread.  A child that is not woken does not read the records
 * it was not woken for: the first message for it since it last caught up
 * says where in the ring to start (pending, from_pos, from_seq).  Pure C,
 * no locking: the caller holds the bus lock to claim, release, look up and
 * mark; gen and asleep are atomics and gen a futex.
 *
 * Open addressing on the pid.  A child claims a slot when it starts and it
 * is released when the child ends (by the child, or by the parent when the
 * MPM reports it gone, or by the parent's sweep): no liveness check, no
 * system call, under the lock.  A released slot stays part of its chain
 * (WSOCK_WAKER_RELEASED) until it is claimed again, so a lookup can stop at
 * the first never-used slot.
 */
#ifndef WSOCK_WAKERS_H
#define WSOCK_WAKERS_H

#include <stdint.h>

#define WSOCK_WAKER_RELEASED (-1)

typedef struct {
    int32_t pid;        /* 0: never used; WSOCK_WAKER_RELEASED: free again */
    uint32_t gen;       /* futex word: bumped for every message for this child */
    uint32_t asleep;    /* its delivery thread waits on gen */
    uint32_t pending;   /* a message for it came since it last caught up */
    uint64_t from_pos;  /* with pending: the ring position of the first one */
    uint32_t from_seq;  /* and its sequence number */
    uint32_t unused;
} wsock_waker;

/* The slot pid is to wait on: its own (a pid used again), else a released
 * or never-used one (reset); NULL when all n are held. */
wsock_waker *wsock_wakers_claim(wsock_waker *w, uint32_t n, int32_t pid);

/* Gives pid's slot back (the child ended); 1 if it had one. */
int wsock_wakers_release(wsock_waker *w, uint32_t n, int32_t pid);

/* pid's slot, or NULL if it has none. */
wsock_waker *wsock_wakers_find(wsock_waker *w, uint32_t n, int32_t pid);

/* Lists the pids holding slots, up to max; returns how many. */
int wsock_wakers_pids(const wsock_waker *w, uint32_t n, int32_t *pids, int max);

/* A message at ring position pos, number seq, is for w's child: the first
 * since it caught up says where it is to read from. */
void wsock_wakers_mark(wsock_waker *w, uint64_t pos, uint32_t seq);

#endif /* WSOCK_WAKERS_H */
