/*
 * http_pub.h — a publisher over HTTP for the benchmark clients (fanout -p):
 * POST requests pipelined on one keep-alive HTTP/1.1 connection, driven
 * by the same epoll loop as the WebSockets (ws_client.h, wsc_ops.on_event).
 *
 * Each hp_post() queues one request (the message as the body) and writes
 * what the socket takes; the answers come back in order (HTTP/1.1
 * pipelining), are parsed (Content-Length or chunked) and counted: a
 * non-2xx answer, a connection the server ends, or an answer that cannot
 * be parsed count as failures.  Requests leave in the order they were
 * posted and the server handles a connection's requests one after the
 * other, so the messages are published in order.  Loopback targets only
 * (wsc_parse_url).
 */
#ifndef HTTP_PUB_H
#define HTTP_PUB_H

#include <stddef.h>
#include <stdint.h>

#include "ws_client.h"

#define HP_IN_BUF (64 * 1024)       /* one answer (head + body) must fit */

typedef struct {
    wsc_conn ws;                    /* the loop's handle: fd, state, on_end */
    wsc_ops  ops;
    wsc_target target;
    const char *content_type;
    uint8_t *out;                   /* requests queued for the socket */
    size_t   out_len, out_off, out_cap, out_max;
    char     in[HP_IN_BUF];         /* answers received, not yet parsed */
    size_t   in_len;
    uint64_t posted, answered;      /* requests */
    uint64_t failed;                /* answers that were not 2xx */
    int      first_bad_status;      /* for the diagnostics */
    char     last_body[256];        /* the last answer's body (truncated) */
} hp_conn;

/* http://127.0.0.1:PORT/PATH?QUERY into t (t->path holds path and query);
 * anything else: a message and exit(2). */
void hp_parse_url(const char *url, wsc_target *t);

/* Prepares h on epoll set ep for the target url (hp_parse_url); the
 * requests carry content_type (kept by reference).  on_end and ud as for
 * a wsc_conn (h->ws.ud = ud); out_max: the most bytes queued before the
 * server counts as stuck. */
void hp_init(hp_conn *h, int ep, const char *url, const char *content_type,
             void (*on_end)(wsc_conn *c, wsc_end_reason why, const char *detail), void *ud,
             size_t out_max);

/* Starts a non-blocking connect; h->ws.state is WSC_OPEN once connected. */
void hp_connect(hp_conn *h);

/* Queues one POST with body and writes what the socket takes; 0, or -1 if
 * the connection has ended. */
int hp_post(hp_conn *h, const uint8_t *body, size_t len);

/* Ends the connection (if it is not yet) and frees what h holds. */
void hp_free(hp_conn *h);

/* Requests posted and not answered yet. */
static inline uint64_t hp_outstanding(const hp_conn *h)
{
    return h->posted - h->answered;
}

#endif /* HTTP_PUB_H */
