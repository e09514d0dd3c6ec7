/*
 * wsock_threads.h — what the module's own threads start with: every
 * signal blocked but those a fault raises (child_init holds them), and a
 * name.
 *
 * Why: a child's SIGTERM must reach the MPM's own thread.  Until the MPM
 * blocks signals for good, its handler (just_die) runs the child's whole
 * exit on whichever thread the kernel picks; after, the event MPM counts
 * on it to wake its main thread.  A thread inherits its creator's mask, so
 * one we start with SIGTERM open can take that signal: the child's exit
 * then runs on a thread its cleanup joins, or the child stops late.  httpd
 * releases differ in whether child_init runs before or after the MPM
 * blocks signals (Debian's 2.4.71 blocks all but SIGPIPE first), so we do
 * not count on it.  Holding the signals across our child_init means:
 *  - threads started in it (ours, and plugins' from their child_init) are
 *    born with them blocked;
 *  - a signal that came meanwhile is delivered when the mask is given
 *    back, once our state is whole rather than half built.
 */
#ifndef WSOCK_THREADS_H
#define WSOCK_THREADS_H

#include <signal.h>

/* Blocks, in the calling thread, every signal but those a fault raises;
 * *old gets the mask it had. */
void wsock_signals_hold(sigset_t *old);

/* Gives the calling thread back the mask wsock_signals_hold saved. */
void wsock_signals_release(const sigset_t *old);

/* Names the calling thread (at most 15 characters), so that its cost shows
 * in `top -H` and /proc, and the test of signal masks finds it. */
void wsock_thread_name(const char *name);

#endif /* WSOCK_THREADS_H */
