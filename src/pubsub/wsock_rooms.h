/*
 * wsock_rooms.h — rooms: named groups of connections that wsock_publish()
 * reaches together, in this child process and, through the bus
 * (src/bus), in the others (see wsock.h).
 */
#ifndef WSOCK_ROOMS_H
#define WSOCK_ROOMS_H

#include "wsock_conn.h"

/* One room a connection is in: the room, and the connection's place in
 * its member array (so that leaving costs the same in any room size). */
typedef struct wsock_membership {
    struct wsock_room *room;
    int slot;
} wsock_membership;

/* Room names that start with this byte are the module's own (a
 * connection's private room, wsock_connaddr.c): no client or plugin can
 * join or publish to them through wsock.h. */
#define WSOCK_ROOM_RESERVED '\x01'

/* wsock_join() for a reserved name (APR_EINVAL for any other). */
apr_status_t wsock_rooms_join_reserved(wsock_conn *wc, const char *room);

/* wsock_publish_local() to a reserved room (0 for any other name): the
 * module's own messages, e.g. the dashboard's snapshots (src/ops). */
int wsock_rooms_publish_reserved_local(const char *room, int is_text, const void *data,
                                       apr_size_t len);

/* A member of room in this child, with a reference (wsock_unref() it when
 * done), or NULL: for rooms of one member. */
wsock_conn *wsock_rooms_member(const char *room);

/* Once per child, before any connection. */
apr_status_t wsock_rooms_child_init(apr_pool_t *pchild);

/* Takes the connection out of every room, and refuses it any room from
 * now on; called once when it ends (or on_open refused it), before
 * anything of it is freed. */
void wsock_rooms_leave_all(wsock_conn *wc);

/* Hands a message another child process published (from the bus) to
 * this child's members of room: no checks, the publisher made them. */
void wsock_rooms_deliver(const char *room, int is_text, const void *data, apr_size_t len);

/* The n rooms of this child with the most members (n at most
 * WSOCK_ROOMS_TOP_MAX; the module's own, reserved rooms are not among
 * them), largest first, handed to fn after the rooms mutex
 * is released (fn may take its time).  Read-only; under the mutex it only
 * compares counts and copies names, of at most WSOCK_ROOMS_TOP_SCAN rooms
 * (beyond that, in table order, the rest are not looked at).  Returns how
 * many rooms fn was given. */
#define WSOCK_ROOMS_TOP_MAX 64
#define WSOCK_ROOMS_TOP_SCAN 65536
#define WSOCK_ROOMS_NAME_MAX 128
int wsock_rooms_top(int n, void (*fn)(void *baton, const char *name, int members),
                    void *baton);

#endif /* WSOCK_ROOMS_H */
