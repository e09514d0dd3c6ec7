/*
 * wsock_shmsync.c — cross-process lock and wake-up (see wsock_shmsync.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wsock_shmsync.h"

int wsock_shmlock_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rv = pthread_mutexattr_init(&a);

    if (rv == 0) {
        rv = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    }
    if (rv == 0) {
        rv = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    }
    if (rv == 0) {
        rv = pthread_mutex_init(m, &a);
    }
    pthread_mutexattr_destroy(&a);
    return rv;
}

int wsock_shmlock_lock(pthread_mutex_t *m)
{
    if (pthread_mutex_lock(m) == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        return 1;
    }
    return 0;
}

void wsock_shmlock_unlock(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
}

/* Not FUTEX_PRIVATE: the word is in memory other processes map. */
void wsock_futex_wait(uint32_t *word, uint32_t expected, int timeout_ms)
{
    struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };

    syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

void wsock_futex_wake_all(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
