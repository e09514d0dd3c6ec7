/*
 * wsock_live.h — this child's list of live WebSocket connections, so that
 * a stopping server can tell every client "going away" (close 1001).
 */
#ifndef WSOCK_LIVE_H
#define WSOCK_LIVE_H

#include "wsock_conn.h"

/* Once per child, before any connection. */
apr_status_t wsock_live_child_init(apr_pool_t *pchild);

void wsock_live_add(wsock_conn *wc);
void wsock_live_remove(wsock_conn *wc);

/* Starts the close handshake with 1001 on every live connection, and on
 * any that registers later.  Safe from any thread. */
void wsock_live_going_away(void);

/* 1 once wsock_live_going_away() ran. */
int wsock_live_is_stopping(void);

/* How long a stop waits for a client whose socket is full to take any of
 * what it was sent, before the connection is cut as one that does not
 * read.  A socket full at one instant may belong to a client that reads,
 * but is sent more than it has read yet (a busy echo): it deserves its
 * 1001.  One that does not read must not hold the child much longer. */
#define WSOCK_STOP_GRACE apr_time_from_sec(1)

#endif /* WSOCK_LIVE_H */
