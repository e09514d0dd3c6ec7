/*
 * wsock_redis_publish.h — the publish endpoint's way through this child's
 * Redis relay (wsock_redis_publish.c): the only part of the redis handler
 * that src/pubsub/wsock_publish_http.c calls.
 */
#ifndef WSOCK_REDIS_PUBLISH_H
#define WSOCK_REDIS_PUBLISH_H

#include <apr.h>
#include <apr_errno.h>

#include "wsock.h"

/* The channel (after WSockRedisPrefix) of messages for one connection:
 * the connection id (32 hex digits), then a tagged message
 * (wsock_connaddr.h). */
#define WSOCK_REDIS_CONN_CHANNEL "\x01" "conn"

/* The redis handler's table, to tell its locations. */
extern const wsock_handler wsock_redis_handler;

typedef struct {
    long long count;            /* PUBLISH's answer: subscribed child processes */
    char id[48];                /* the stream id with history, else "" */
} wsock_redis_sent;

/* Whether cfg (a redis location's) takes rooms from the query. */
int wsock_redis_room_from_query(const void *cfg);

/* Whether this server runs the relay (a redis location, or WSockRedis). */
int wsock_redis_publish_in_use(void);

/* Publishes text to room of a redis location (cfg: its handler config) as
 * the server, and waits for Redis (WSockRedisTimeout): APR_SUCCESS;
 * APR_EAGAIN: the relay is down; APR_ENOSPC: its queue is full;
 * APR_TIMEUP: no answer in time (it may still be published);
 * APR_ECONNRESET: the connection dropped before the answer (likewise);
 * APR_EGENERAL: Redis refused it. */
apr_status_t wsock_redis_publish_room(const void *cfg, const char *room, const char *text,
                                      apr_size_t len, wsock_redis_sent *out);

/* Sends a tagged message for the connection id to every server sharing
 * the Redis; the same results. */
apr_status_t wsock_redis_publish_conn(const char *id, const void *tagged, apr_size_t len,
                                      wsock_redis_sent *out);

#endif /* WSOCK_REDIS_PUBLISH_H */
