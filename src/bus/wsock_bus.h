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

#include <sys/types.h>

#include <httpd.h>
#include <apr_pools.h>

#define WSOCK_BUS_DEFAULT_SIZE (8 * 1024 * 1024)
#define WSOCK_BUS_MIN_SIZE     (64 * 1024)
#define WSOCK_BUS_MAX_SIZE     (1024 * 1024 * 1024)
/* (room, child process) pairs the room table counts (WSockBusRooms) */
#define WSOCK_BUS_DEFAULT_ROOMS 16384
#define WSOCK_BUS_MIN_ROOMS     16
#define WSOCK_BUS_MAX_ROOMS     (1024 * 1024)

/* Parent, post_config: makes the shared memory once (it is kept across
 * restarts, so children of the old and the new generation keep talking;
 * new sizes wait for a stop and start).  size: WSockBusSize; rooms:
 * WSockBusRooms. */
apr_status_t wsock_bus_post_config(server_rec *s, apr_size_t size, apr_uint32_t rooms);

/* Child, before wsock_bus_child_init: what the delivery thread calls for
 * each message another child posted (pubsub registers its rooms' delivery
 * here; the bus knows nothing of rooms beyond their names). */
void wsock_bus_on_deliver(void (*deliver)(const char *room, int is_text, const void *data,
                                          apr_size_t len));

/* Child: starts this child's delivery thread. */
void wsock_bus_child_init(apr_pool_t *pchild, server_rec *s);

/* Parent, child_status hook (MPM_CHILD_EXITED): forgets what the child
 * held in the bus (a crash does not run the child's own clean-up). */
void wsock_bus_child_exited(server_rec *s, pid_t pid);

/* Parent, monitor hook (Apache runs it about every ten seconds): says what
 * no delivery thread has said yet (the room table filling up or having
 * room again, a lock recovered from a dead process), and sweeps, as a
 * safety net, for child processes gone without the MPM reporting it. */
void wsock_bus_monitor(server_rec *s);

/* Puts a message on the ring if a member of room lives in another child
 * process; any thread. */
void wsock_bus_post(const char *room, int is_text, const void *data, apr_size_t len);

/* This child's member count of room went up or down by delta.  Memory
 * work only (no log, no system call but the bus lock): rooms call it under
 * their child-wide mutex. */
void wsock_bus_room_delta(const char *room, int delta);

/* Members of room in the whole server, or -1 when the bus cannot tell
 * (no bus, or members of the room did not fit in its table). */
int wsock_bus_room_count(const char *room);

/* How full the bus is, for server-status and wsock-metrics (src/ops). */
typedef struct {
    int on;                         /* 0: no bus (the rest is 0) */
    apr_uint64_t ring_size;         /* bytes of the message ring (WSockBusSize) */
    apr_uint64_t ring_used;         /* bytes between its oldest record and its head */
    apr_uint64_t ring_records;      /* records ever put on it */
    apr_uint64_t room_slots;        /* (room, child) slots of the room table */
    apr_uint64_t room_slots_used;   /* of them, holding members now */
    apr_uint64_t members_outside;   /* members that found no slot */
} wsock_bus_usage;

/* Reads the figures above without the bus lock: any process, any thread.
 * Costs one pass over the room table (WSockBusRooms slots). */
void wsock_bus_usage_read(wsock_bus_usage *u);

#endif /* WSOCK_BUS_H */
