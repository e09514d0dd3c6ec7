/*
 * wsock_history.h — what the live dashboard shows of the past: one sample
 * of the server's counters per second for the last WSOCK_HISTORY_SECONDS,
 * and each child's largest rooms, in shared memory of its own
 * (docs/operations.md, "Live dashboard").
 *
 * Every child runs a sampler (wsock_sampler.c) that wakes once a second;
 * the first child to claim a second (an atomic compare-and-swap, no lock)
 * reads the counters (wsock_counters_read, which sums all children) and
 * writes that second's sample, so the history is there for a page opened
 * just now and does not depend on which children live.  Every child writes
 * its own largest rooms into a slot of its own; readers merge them by
 * name.  Entries are written under a sequence number (a seqlock: odd while
 * being written), copied word by word with atomics, so a reader never sees
 * half a sample and a writer never waits for a reader.
 */
#ifndef WSOCK_HISTORY_H
#define WSOCK_HISTORY_H

#include <httpd.h>
#include <apr_pools.h>

#include "wsock_counters.h"

#define WSOCK_HISTORY_SECONDS 600   /* samples kept: ten minutes */
#define WSOCK_HISTORY_ROOMS 16      /* rooms each child reports, largest first */
#define WSOCK_SAMPLE_ROOMS 8        /* rooms a sample keeps, largest first */
#define WSOCK_HISTORY_ROOM_NAME 136 /* bytes of a name kept, NUL included (128 + 1, padded) */

/* A room and its members (in one child, or merged over all). */
typedef struct {
    apr_uint64_t members;
    char name[WSOCK_HISTORY_ROOM_NAME];
} wsock_room_size;

/* One second of the whole server: totals as they were then (rates are
 * differences of neighbours), gauges as they were. */
typedef struct {
    apr_int64_t t;                          /* the second (Unix time) */
    apr_int64_t children;
    apr_int64_t open;                       /* WebSockets open (every location) */
    apr_int64_t rooms, members;             /* the gauges, summed over children */
    apr_uint64_t messages_in, messages_out, bytes_in, bytes_out;
    apr_uint64_t closed[WSOCK_CLOSE_CODE_COUNT];    /* by wsock_close_codes, "other" last */
    apr_uint64_t refused[WSOCK_R_COUNT];            /* by reason, every status */
    apr_uint64_t nrooms;                            /* the largest rooms then: */
    wsock_room_size room[WSOCK_SAMPLE_ROOMS];       /* merged over the children */
} wsock_sample;

/* The parent (post_config): make the memory once; it lives across
 * restarts.  On failure the dashboard shows live values only (logged). */
void wsock_history_post_config(server_rec *s);
/* The parent: a child ended; its room slot is free again. */
void wsock_history_child_exited(pid_t pid);
/* The child: claim a room slot (given back when pchild ends). */
void wsock_history_child_init(apr_pool_t *pchild, server_rec *s);

/* Whether this process is the one to write second t's sample (once per
 * second across all children); 0 when history is off. */
int wsock_history_claim(apr_int64_t t);
/* The sample of c, taken at second t (its rooms: none; see
 * wsock_history_rooms_read). */
void wsock_history_sample_of(wsock_sample *out, const wsock_counts *c, apr_int64_t t);
/* Stores a sample that wsock_history_claim gave this process. */
void wsock_history_put(const wsock_sample *s);
/* The samples of the last WSOCK_HISTORY_SECONDS before now, oldest first,
 * into out (room for WSOCK_HISTORY_SECONDS); how many. */
int wsock_history_read(wsock_sample *out, apr_int64_t now);

/* This child's largest rooms at second t (n at most WSOCK_HISTORY_ROOMS). */
void wsock_history_rooms_put(const wsock_room_size *rooms, int n, apr_int64_t t);
/* Every live child's rooms merged by name, largest first, at most max
 * (out has room for max); how many.  A child's list older than a few
 * seconds (a child that hangs or died unseen) is left out. */
int wsock_history_rooms_read(wsock_room_size *out, int max, apr_int64_t now);

#endif /* WSOCK_HISTORY_H */
