/*
 * wsock_slow.h — what happens to a connection whose outbound queue is full
 * (WSockSendQueue's policy): see wsock_slow.c.
 */
#ifndef WSOCK_SLOW_H
#define WSOCK_SLOW_H

#include "wsock_conn.h"

/* What the sender must do once it has released the connection's mutex. */
typedef struct {
    wsock_frames **discard;         /* queued messages to release, and */
    apr_size_t discard_n;           /* how many (the array is freed too) */
    int log;                        /* 0, or which line to log */
    int cut;                        /* end the connection if it is stuck */
    apr_size_t msgs, bytes;         /* the queue when it was full, for the log */
} wsock_slow_action;

/* Under wc->mutex, from a thread other than the owner: a message did not
 * fit into the queue.  Counts it and applies the location's policy. */
void wsock_slow_full_locked(wsock_conn *wc, wsock_slow_action *a);

/* Under wc->mutex: a message came for a connection that no longer queues
 * anything; if it is closing as a slow consumer, check it again. */
void wsock_slow_refused_locked(wsock_conn *wc, wsock_slow_action *a);

/* After the mutex is released: frees, logs and cuts as decided above. */
void wsock_slow_act(wsock_conn *wc, wsock_slow_action *a);

/* Any thread: shuts the connection's socket down for writing if it cannot
 * take a byte now, so that an owner blocked writing to a client that does
 * not read fails at once instead of after the server's Timeout (logged,
 * WSOCK0603). */
void wsock_slow_cut_if_stuck(wsock_conn *wc);

/* Any thread, for many connections at once (a stop): waits up to `grace`
 * for their sockets to take a byte, and cuts those that never do and
 * whose client took nothing meanwhile (see WSOCK_STOP_GRACE).  The caller
 * holds a reference on each. */
void wsock_slow_cut_stuck(wsock_conn **wcs, apr_size_t n, apr_interval_time_t grace);

/* The owner, when the connection ends (before on_close): the total of
 * dropped messages in the log; on_close sees 1008 for a slow consumer. */
void wsock_slow_report(wsock_conn *wc);

#endif /* WSOCK_SLOW_H */
