/*
 * wsock_bus.h — the in-server bus: delivers a room's messages to its
 * members in the other child processes of this server (docs/bus.md).
 *
 * A ring of messages in shared memory that every child maps, one lock and
 * one wake-up shared by all, one delivery thread per child, and a table of
 * how many members each room has in each child.  A publisher delivers to
 * its own child's members itself and puts the message on the ring only
 * when another child has members in the room.
 */
#ifndef WSOCK_BUS_H
#define WSOCK_BUS_H

#include <httpd.h>
#include <apr_pools.h>

#define WSOCK_BUS_DEFAULT_SIZE (8 * 1024 * 1024)
#define WSOCK_BUS_MIN_SIZE     (64 * 1024)
#define WSOCK_BUS_MAX_SIZE     (1024 * 1024 * 1024)

/* Parent, post_config: makes the shared memory once (it is kept across
 * graceful restarts, so children of the old and the new generation keep
 * talking).  size: WSockBusSize. */
apr_status_t wsock_bus_post_config(server_rec *s, apr_size_t size);

/* Child, before wsock_bus_child_init: what the delivery thread calls for
 * each message another child posted (pubsub registers its rooms' delivery
 * here; the bus knows nothing of rooms beyond their names). */
void wsock_bus_on_deliver(void (*deliver)(const char *room, int is_text, const void *data,
                                          apr_size_t len));

/* Child: starts this child's delivery thread. */
void wsock_bus_child_init(apr_pool_t *pchild, server_rec *s);

/* Parent, monitor hook: forgets members of child processes that are gone
 * (a crash does not run the child's own clean-up). */
void wsock_bus_monitor(server_rec *s);

/* Puts a message on the ring if a member of room lives in another child
 * process; any thread. */
void wsock_bus_post(const char *room, int is_text, const void *data, apr_size_t len);

/* This child's member count of room went up or down by delta. */
void wsock_bus_room_delta(const char *room, int delta);

/* Members of room in the whole server, or -1 when the bus cannot tell
 * (no bus, or its table overflowed). */
int wsock_bus_room_count(const char *room);

#endif /* WSOCK_BUS_H */
