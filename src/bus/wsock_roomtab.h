/*
 * wsock_roomtab.h — how many members each room has in each child process,
 * in memory the processes share, so that a room's size is known server-wide
 * and a publisher knows whether any other process needs the message.  Pure
 * C, no locking: the caller holds the bus lock.
 *
 * Open addressing on a 64-bit hash of the room name; one slot per (room,
 * process).  A slot whose count drops to 0 is reused by the next insert
 * along its chain.  Probes are bounded, so a full table does not slow
 * anyone down: it is counted as overflow, and the bus then stops trusting
 * the counts (every message goes on the ring).
 */
#ifndef WSOCK_ROOMTAB_H
#define WSOCK_ROOMTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t hash;          /* 0: never used */
    int32_t pid;
    int32_t count;
} wsock_roomtab_slot;

typedef struct {
    uint32_t nslots;        /* a power of two */
    uint32_t overflow;      /* inserts that found no slot */
    wsock_roomtab_slot slots[];
} wsock_roomtab;

/* Bytes needed for nslots slots (a power of two). */
size_t wsock_roomtab_bytes(uint32_t nslots);

void wsock_roomtab_init(wsock_roomtab *t, uint32_t nslots);

/* The hash of a room name (never 0). */
uint64_t wsock_roomtab_hash(const char *room, size_t len);

/* Adds delta to the count of (hash, pid); never below 0.  0, or -1 when
 * no slot was free (t->overflow counts it). */
int wsock_roomtab_add(wsock_roomtab *t, uint64_t hash, int32_t pid, int delta);

/* Members of the room in every process; *elsewhere gets those outside pid. */
int wsock_roomtab_count(const wsock_roomtab *t, uint64_t hash, int32_t pid, int *elsewhere);

/* The processes other than except that have members in the room: up to
 * max of them into pids; returns how many there are (more than max: the
 * list is cut). */
int wsock_roomtab_holders(const wsock_roomtab *t, uint64_t hash, int32_t except, int32_t *pids,
                          int max);

/* Sets to 0 every count held by a process for which alive(pid) is false
 * (alive is asked once per slot).  Returns how many slots it cleared. */
int wsock_roomtab_sweep(wsock_roomtab *t, int (*alive)(int32_t pid, void *baton), void *baton);

/* Forgets every count of pid (a process that ends, or a new one that got
 * the pid of a dead one). */
void wsock_roomtab_forget(wsock_roomtab *t, int32_t pid);

#endif /* WSOCK_ROOMTAB_H */
