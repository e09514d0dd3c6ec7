/*
 * wsock_sampler.h — each child's dashboard sampler: a thread that wakes
 * once a second to write the history sample (if this child claims the
 * second), this child's largest rooms, and, when this child holds
 * dashboard WebSockets, publishes a snapshot to them.
 */
#ifndef WSOCK_SAMPLER_H
#define WSOCK_SAMPLER_H

#include <httpd.h>
#include <apr_pools.h>

/* The room of this child's dashboard WebSockets: one of the module's own
 * (WSOCK_ROOM_RESERVED, wsock_rooms.h), which no client or plugin can join
 * or publish to. */
#define WSOCK_STATUS_ROOM "\001wsock-status"
#define WSOCK_STATUS_ROOMS_SHOWN 20     /* rooms a snapshot lists */

/* child_init (after the rooms): start the thread; it stops when pchild
 * is cleaned up. */
void wsock_sampler_start(apr_pool_t *pchild, server_rec *s);

/* The snapshot JSON of this moment (malloc'ed; free() it), or NULL. */
char *wsock_sampler_snapshot(size_t *len);

#endif /* WSOCK_SAMPLER_H */
