/*
 * wsock_threads.c — see wsock_threads.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                 /* pthread_setname_np */
#endif
#include <pthread.h>

#include "wsock_threads.h"

void wsock_signals_hold(sigset_t *old)
{
    /* The signals a fault raises stay open, as APR's signal thread leaves
     * them: blocked, a crash would skip the handlers that report it (the
     * MPM's CoreDumpDirectory, ASan's report) and just kill the process. */
    static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS };
    sigset_t held;

    sigfillset(&held);
    for (unsigned i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        sigdelset(&held, faults[i]);
    }
    pthread_sigmask(SIG_BLOCK, &held, old);
}

void wsock_signals_release(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

void wsock_thread_name(const char *name)
{
#ifdef __linux__
    pthread_setname_np(pthread_self(), name);
#else
    (void)name;
#endif
}
