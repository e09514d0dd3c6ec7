/*
 * wsock_roomsel.h — how chat-like handlers (chat, redis) pick the room of
 * a connection: "room=location" (the configuration section) or
 * "room=query" (the room query argument, under its section).  The rules
 * are documented in docs/chat.md#rooms.
 */
#ifndef WSOCK_ROOMSEL_H
#define WSOCK_ROOMSEL_H

#include "wsock.h"

#define WSOCK_ROOMSEL_ARG_MAX 64    /* the room query argument */
#define WSOCK_ROOMSEL_KEY_MAX 128   /* a room name of the API */

typedef struct {
    char room[WSOCK_ROOMSEL_KEY_MAX + 1];   /* the room's name in the API */
    const char *label;                      /* the room as clients know it (in room) */
} wsock_roomsel;

/* Whether s is a good room query argument: 1-64 of A-Z a-z 0-9 _ . - */
int wsock_roomsel_valid_arg(const char *s);

/* "on"/"off" (any case) into *flag; 0 if it is neither. */
int wsock_arg_onoff(const char *v, int *flag);

/* Whether the raw query q has an argument name: wsock_query_arg() leaves
 * out one it cannot decode (room=a%00b), which must not count as absent. */
int wsock_query_names(const char *q, const char *name);

/* A handler argument: 0 if it is not "room=...", 1 if it is and sets
 * *from_query, -1 for a bad value. */
int wsock_roomsel_arg(const char *arg, int *from_query);

/* Picks the room of a new connection (on_open) without joining it: 0, or
 * the HTTP status to refuse it with, after a log line naming handler. */
int wsock_roomsel_pick(wsock_conn *wc, const char *handler, int from_query,
                       wsock_roomsel *sel);

/* Logs that sel's room cannot be joined (its name is too long); 500. */
int wsock_roomsel_too_long(wsock_conn *wc, const char *handler, const wsock_roomsel *sel);

/* Picks the room of a new connection (on_open) and joins it: 0, or the
 * HTTP status to refuse it with (400 for a bad room argument, 500 when the
 * section path is too long), after a log line naming handler. */
int wsock_roomsel_join(wsock_conn *wc, const char *handler, int from_query,
                       wsock_roomsel *sel);

#endif /* WSOCK_ROOMSEL_H */
