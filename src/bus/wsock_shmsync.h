/*
 * wsock_shmsync.h — a lock and a wake-up that work between processes
 * mapping the same memory (Linux: a robust process-shared pthread mutex,
 * and a futex).
 *
 * Robust: if a process dies holding the lock (a crashed child), the next
 * locker gets it anyway and is told, instead of every child hanging.
 */
#ifndef WSOCK_SHMSYNC_H
#define WSOCK_SHMSYNC_H

#include <pthread.h>
#include <stdint.h>

/* 0, or an errno value. */
int wsock_shmlock_init(pthread_mutex_t *m);

/* 0; 1 when the previous owner died holding it (the lock is now held and
 * consistent again; what it guards may be half-updated). */
int wsock_shmlock_lock(pthread_mutex_t *m);

void wsock_shmlock_unlock(pthread_mutex_t *m);

/* Sleeps while *word == expected, at most timeout_ms (spurious wake-ups
 * happen: callers re-check). */
void wsock_futex_wait(uint32_t *word, uint32_t expected, int timeout_ms);

/* Wakes every process and thread sleeping on word. */
void wsock_futex_wake_all(uint32_t *word);

#endif /* WSOCK_SHMSYNC_H */
