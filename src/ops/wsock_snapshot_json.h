/*
 * wsock_snapshot_json.h — the dashboard's stream in JSON (jansson): a
 * snapshot of the server's counters and rooms, and the history of
 * samples.  The format is documented in docs/operations.md ("Live
 * dashboard"); both carry samples as rows of the same columns.
 */
#ifndef WSOCK_SNAPSHOT_JSON_H
#define WSOCK_SNAPSHOT_JSON_H

#include "wsock_counters.h"
#include "wsock_history.h"

/* {"type":"snapshot",...}: malloc'ed text (free() it) and its length in
 * *len; NULL when out of memory. */
char *wsock_snapshot_json(const wsock_counts *c, const wsock_room_size *rooms, int nrooms,
                          size_t *len);

/* {"type":"history","columns":[...],"rows":[[...],...]}, oldest first. */
char *wsock_history_json(const wsock_sample *s, int n, size_t *len);

#endif /* WSOCK_SNAPSHOT_JSON_H */
