/*
 * slow_lock.c — an LD_PRELOAD shim for test_wake_race.py: in every thread
 * but the module's loop threads ("wsock-loop"), one pthread_mutex_lock in
 * SLOW_LOCK_EVERY (default 4) first sleeps SLOW_LOCK_USEC (default 300)
 * microseconds.  It stretches what a thread does just before it takes a
 * lock, such as a waker between marking a connection ready and listing it
 * under the loop's mutex, so that the loop's own steps land in between.
 * Correct locking only gets slower with it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

static int (*real_lock)(pthread_mutex_t *);
static __thread unsigned calls;

static int is_loop_thread(void)
{
    char name[17] = { 0 };

    /* read each time: a thread names itself after it starts */
    prctl(PR_GET_NAME, name, 0, 0, 0);
    return strncmp(name, "wsock-loop", 10) == 0;
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    static unsigned every, usec;

    if (real_lock == NULL) {
        const char *e = getenv("SLOW_LOCK_EVERY"), *u = getenv("SLOW_LOCK_USEC");

        every = e ? (unsigned)atoi(e) : 4;
        usec = u ? (unsigned)atoi(u) : 300;
        real_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    }
    if (every && ++calls % every == 0 && !is_loop_thread()) {
        struct timespec ts = { 0, (long)usec * 1000 };
        nanosleep(&ts, NULL);
    }
    return real_lock(m);
}
