/*
 * wsock_redis_held.c — the live messages of its room that a resuming
 * client keeps while it catches up (wsock_redis_catchup.c), bounded in
 * messages and bytes (the location's resume= and resume-bytes=).
 *
 * A message is copied once, whatever the number of clients that hold it
 * (a reference each); a client's list only links to it.  Beyond the
 * bound the oldest copies go: what a client keeps is always the newest
 * run of its room's messages, right before the live stream, and the id
 * of the newest one it lost says whether the loss matters (a copy up to
 * the end of what its catch-up reads from the stream does not).
 *
 * The lists are guarded by the caller (the relay's local mutex); making
 * and releasing a message is not, so that copying happens outside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>

#include "wsock_redis.h"

struct wsock_redis_held_node {
    wsock_redis_held_node *next;
    wsock_redis_held_msg *msg;
};

wsock_redis_held_msg *wsock_redis_held_make(const char *id, const char *json, apr_size_t len)
{
    wsock_redis_held_msg *m = malloc(sizeof(*m) + len);

    if (m) {
        m->refs = 1;
        snprintf(m->id, sizeof(m->id), "%s", id);
        m->len = len;
        memcpy(m->json, json, len);
    }
    return m;
}

void wsock_redis_held_release(wsock_redis_held_msg *m)
{
    if (m && apr_atomic_dec32(&m->refs) == 0) {
        free(m);
    }
}

void wsock_redis_held_init(wsock_redis_held_list *l, long max_n, apr_size_t max_bytes)
{
    memset(l, 0, sizeof(*l));
    l->tail = &l->head;
    l->max_n = max_n;
    l->max_bytes = max_bytes;
}

/* Whether a message with this id is still needed: ids up to after come
 * with the stream (a message without an id always is). */
static int needed(const wsock_redis_held_list *l, const char *id)
{
    return !*l->after || !*id || wsock_redis_id_cmp(id, l->after) > 0;
}

/* A needed message is not kept (the bound, or no memory). */
static void missed(wsock_redis_held_list *l, const char *id)
{
    snprintf(l->lost, sizeof(l->lost), "%s", *id ? id : "?");
}

/* Takes the oldest node off the list, giving its reference to the caller. */
static wsock_redis_held_msg *unlink_head(wsock_redis_held_list *l)
{
    wsock_redis_held_node *h = l->head;
    wsock_redis_held_msg *m;

    if (h == NULL) {
        return NULL;
    }
    l->head = h->next;
    if (l->head == NULL) {
        l->tail = &l->head;
    }
    l->n--;
    l->bytes -= h->msg->len;
    m = h->msg;
    free(h);
    return m;
}

/* The oldest copies go until the list is within its bound. */
static void enforce_bound(wsock_redis_held_list *l)
{
    while (l->head && (l->n > l->max_n || l->bytes > l->max_bytes)) {
        wsock_redis_held_msg *m = unlink_head(l);

        if (needed(l, m->id)) {
            /* ids only grow along the list: the last one dropped is the
             * newest lost */
            missed(l, m->id);
        }
        wsock_redis_held_release(m);
    }
}

void wsock_redis_held_add(wsock_redis_held_list *l, wsock_redis_held_msg *m, const char *id)
{
    wsock_redis_held_node *h;

    if (!needed(l, id)) {
        return;
    }
    if (m == NULL || (h = malloc(sizeof(*h))) == NULL) {
        missed(l, id);
        return;
    }
    apr_atomic_inc32(&m->refs);
    h->next = NULL;
    h->msg = m;
    *l->tail = h;
    l->tail = &h->next;
    l->n++;
    l->bytes += m->len;
    enforce_bound(l);
}

void wsock_redis_held_set_after(wsock_redis_held_list *l, const char *id)
{
    snprintf(l->after, sizeof(l->after), "%s", id);
    while (l->head && !needed(l, l->head->msg->id)) {
        wsock_redis_held_release(unlink_head(l));
    }
}

wsock_redis_held_msg *wsock_redis_held_take(wsock_redis_held_list *l)
{
    wsock_redis_held_msg *m;

    while ((m = unlink_head(l)) != NULL && !needed(l, m->id)) {
        wsock_redis_held_release(m);
    }
    return m;
}

void wsock_redis_held_put_back(wsock_redis_held_list *l, wsock_redis_held_msg *m)
{
    wsock_redis_held_node *h = malloc(sizeof(*h));

    if (h == NULL) {
        missed(l, m->id);
        wsock_redis_held_release(m);
        return;
    }
    h->msg = m;                     /* the caller's reference */
    h->next = l->head;
    if (l->head == NULL) {
        l->tail = &h->next;
    }
    l->head = h;
    l->n++;
    l->bytes += m->len;
    enforce_bound(l);
}

int wsock_redis_held_lost(const wsock_redis_held_list *l)
{
    return *l->lost && (!strcmp(l->lost, "?") || needed(l, l->lost));
}

void wsock_redis_held_clear(wsock_redis_held_list *l)
{
    while (l->head) {
        wsock_redis_held_release(unlink_head(l));
    }
}
