/*
 * wsock_loop.h — the asynchronous driver: a few loop threads per child
 * process own every WebSocket of that child, so an idle connection holds
 * no worker thread (event MPM only; see docs/drivers.md).
 */
#ifndef WSOCK_LOOP_H
#define WSOCK_LOOP_H

#include "wsock_conn.h"

/* child_init: starts n loop threads (n <= 0: the CPUs the process may use
 * shared among the MPM's children, at most 8) when the MPM can suspend
 * connections.  Returns how many run (0: the blocking driver serves every
 * connection). */
int wsock_loops_start(apr_pool_t *pchild, server_rec *s, int n);

/* post_config: says in the error log how many loop threads each child
 * runs and why (configured: WSockLoopThreads, 0 if unset). */
void wsock_loops_log_sizing(server_rec *s, int configured);

/* The handler, after the 101: prepares wc for a loop (non-blocking network
 * output, wake-up, the live list).  APR_SUCCESS: return SUSPENDED, and the
 * suspend_connection hook hands it over to the loop.  Anything else:
 * nothing changed, use the blocking driver. */
apr_status_t wsock_loop_prepare(wsock_conn *wc);

/* From register_hooks: the MPM's connection hooks (suspend, resume,
 * pre_connection) that take connections over and see worker threads come
 * back from a hand-off. */
void wsock_loop_register_hooks(void);

/* Every hook of mod_wsock that a worker thread runs calls this first: the
 * thread is back from its last hand-off (see wsock_loop.c). */
void wsock_loop_worker_visit(void);


/* The owning loop wrote to wc's output outside of wc's own turn (another
 * connection's callback sent to it): make sure the loop flushes it. */
void wsock_loop_touch(wsock_conn *wc);

/* On wc's loop thread, for a connection other than the one being served:
 * true when a message for it must take the outbound queue (its client is
 * behind, or the queue already holds messages that must go first). */
int wsock_loop_must_queue(wsock_conn *wc);

#endif /* WSOCK_LOOP_H */
