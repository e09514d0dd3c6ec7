/*
 * wsock_rooms.h — rooms: named groups of this child's connections that
 * wsock_publish() reaches together (see wsock.h).
 */
#ifndef WSOCK_ROOMS_H
#define WSOCK_ROOMS_H

#include "wsock_conn.h"

/* Once per child, before any connection. */
apr_status_t wsock_rooms_child_init(apr_pool_t *pchild);

/* Takes the connection out of every room; called once when it ends,
 * before anything of it is freed. */
void wsock_rooms_leave_all(wsock_conn *wc);

#endif /* WSOCK_ROOMS_H */
