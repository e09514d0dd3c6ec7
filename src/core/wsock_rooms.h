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

/* Hands a message another child process published (from the bus) to
 * this child's members of room: no checks, the publisher made them. */
void wsock_rooms_deliver(const char *room, int is_text, const void *data, apr_size_t len);

#endif /* WSOCK_ROOMS_H */
