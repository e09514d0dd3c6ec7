/*
 * wsock_roomtab.h — how many members each room has in each child process,
 * in memory the processes share, so that a room's size is known server-wide
 * and a publisher knows which other processes need the message.  Pure C,
 * no locking: the caller holds the bus lock.  Its size is fixed when it is
 * made (WSockBusRooms), whatever the traffic.
 *
 * Slots: one per (room, process) pair with members, open addressing on a
 * keyed hash of the room name.  The key (SipHash-2-4, wsock_keyhash.h) is
 * drawn at random when the table is made and kept in it, so every process
 * that maps the table hashes alike, and nobody outside can compute names
 * that pile up in one probe chain.  Probes are bounded (64), so a lookup
 * costs the same in a full table.  A slot whose count drops to 0 is reused
 * by the next insert along its chain.
 *
 * A pair that finds no slot in its chain is "outside" the table.  Its room
 * gets a mark (how many of its members are outside): such a room cannot
 * say which processes hold it nor its size, so it is served in broadcast
 * mode (every process is woken for it) and its count is "cannot tell";
 * rooms that did get their slots stay exact.  If even the marks are full,
 * every room is served in broadcast mode.  All of this follows the live
 * members: it clears as they leave.
 *
 * Each process's members outside the table are counted per process, so a
 * process that dies without leaving is taken out of the reckoning: its
 * slots are freed, its marks are cleared when it made them alone, and a
 * mark it shared with others is cleared as soon as no live process has
 * members outside the table (a killed process cannot say which shared
 * rooms its members were in; until then those rooms only stay in broadcast
 * mode, nothing is lost).
 */
#ifndef WSOCK_ROOMTAB_H
#define WSOCK_ROOMTAB_H

#include <stddef.h>
#include <stdint.h>

#include "wsock_keyhash.h"

#define WSOCK_ROOMTAB_MIN_SLOTS 16u
#define WSOCK_ROOMTAB_MAX_SLOTS (1u << 20)

typedef struct {
    uint64_t hash;          /* 0: never used (the end of a chain) */
    int32_t pid;
    int32_t count;          /* 0: free for the next insert along the chain */
} wsock_roomtab_slot;

/* A room with members outside the table. */
typedef struct {
    uint64_t hash;          /* 0: never used */
    uint32_t members;       /* 0: free */
    int32_t owner;          /* the one process whose members they are; -1: several */
} wsock_roomtab_mark;

/* A process with members outside the table. */
typedef struct {
    int32_t pid;            /* 0: free */
    uint32_t outside;
} wsock_roomtab_child;

typedef struct {
    wsock_hashkey key;      /* room names are hashed with it */
    uint32_t nslots;        /* a power of two */
    uint32_t nmarks;        /* a power of two: nslots / 4, at least 16 */
    uint32_t nchildren;     /* a power of two */
    uint32_t outside;       /* members outside the table, of every process */
    uint32_t unmarked;      /* of those, members of rooms that found no mark */
    uint32_t orphans;       /* of those, members of processes that found no record */
    uint32_t went_full;     /* times outside went from 0 to more (for the log) */
    uint32_t unused;
    wsock_roomtab_slot slots[];
    /* then nmarks marks and nchildren children */
} wsock_roomtab;

/* Bytes needed for nslots slots (a power of two from WSOCK_ROOMTAB_MIN_SLOTS
 * to WSOCK_ROOMTAB_MAX_SLOTS) and records for nchildren processes (a power
 * of two: more than can live at once, so that each finds one). */
size_t wsock_roomtab_bytes(uint32_t nslots, uint32_t nchildren);

void wsock_roomtab_init(wsock_roomtab *t, uint32_t nslots, uint32_t nchildren,
                        const wsock_hashkey *key);

/* The keyed hash of a room name (never 0). */
uint64_t wsock_roomtab_hash(const wsock_roomtab *t, const char *room, size_t len);

/* Adds delta to the members of (hash, pid); never below 0.  Returns 1 when
 * members were added outside the table (no slot in the chain), else 0. */
int wsock_roomtab_add(wsock_roomtab *t, uint64_t hash, int32_t pid, int delta);

/* Members of the room in every process, or -1 when the table cannot tell
 * (members of it are outside the table); *elsewhere gets those outside
 * pid. */
int wsock_roomtab_count(const wsock_roomtab *t, uint64_t hash, int32_t pid, int *elsewhere);

/* The processes other than except that have members in the room: up to
 * max of them into pids; returns how many there are (more than max: the
 * list is cut), or -1 when the table cannot tell (every process may). */
int wsock_roomtab_holders(const wsock_roomtab *t, uint64_t hash, int32_t except, int32_t *pids,
                          int max);

/* Members outside the table now (0: every room is exact). */
uint32_t wsock_roomtab_outside(const wsock_roomtab *t);

/* Forgets every member of pid (a process that ended, or a new one that got
 * the pid of a dead one).  Returns how many it forgot. */
int wsock_roomtab_forget(wsock_roomtab *t, int32_t pid);

/* For a sweep of processes that are gone: lists the processes with
 * members outside the table, and those holding slots among the next
 * window slots from *cursor (which moves on, wrapping), up to max pids
 * (a pid may come more than once).  Returns how many it listed. */
int wsock_roomtab_pids(const wsock_roomtab *t, uint32_t *cursor, uint32_t window, int32_t *pids,
                       int max);

#endif /* WSOCK_ROOMTAB_H */
