/*
 * wsock_redis_local.c — this child's side of the relay: its clients, the
 * rooms they are in (what the subscriber follows), and the relay's state
 * as clients see it.
 *
 * One mutex guards all of it.  A client is in the list from on_open until
 * on_close, so a thread holding the mutex may send to it: this is how the
 * relay threads welcome clients, tell them of state changes, and keep a
 * sender (echo=off) out of its own message without the connection being
 * freed under them.  The mutex is never taken under the rooms' own lock,
 * so delivering (wsock_publish_local) while holding it cannot deadlock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "wsock_json.h"
#include "wsock_redis.h"

typedef struct {
    char *name;
    int members;
    int ready;                  /* the subscriber confirmed its channel */
    char last_id[48];           /* of the last message delivered, with history */
} local_room;

#define HELD_MAX 10000                  /* messages held for a client catching up */

static apr_thread_mutex_t *mutex;
static apr_thread_cond_t *news;         /* a room ready, the relay's state, a sync */
static wsock_redis_client *clients;     /* doubly linked */
static wsock_redis_client *catching;    /* clients catching up (few, briefly) */
static apr_hash_t *by_serial;           /* serial -> client */
static apr_hash_t *rooms;               /* name -> local_room (malloc'ed) */
static int relay_up;
static int relay_was_up;                /* since this child started */

static const char state_up[] = "{\"type\":\"relay\",\"state\":\"up\"}";
static const char state_down[] = "{\"type\":\"relay\",\"state\":\"down\"}";

static apr_status_t free_rooms(void *data)
{
    (void)data;
    for (apr_hash_index_t *hi = apr_hash_first(NULL, rooms); hi; hi = apr_hash_next(hi)) {
        local_room *r = apr_hash_this_val(hi);
        free(r->name);
        free(r);
    }
    rooms = NULL;
    return APR_SUCCESS;
}

apr_status_t wsock_redis_local_init(apr_pool_t *pchild)
{
    by_serial = apr_hash_make(pchild);
    rooms = apr_hash_make(pchild);
    apr_pool_cleanup_register(pchild, NULL, free_rooms, apr_pool_cleanup_null);
    if (apr_thread_cond_create(&news, pchild) != APR_SUCCESS) {
        return APR_ENOMEM;
    }
    return apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
}

/* Under the mutex. */
static void welcome(wsock_redis_client *cl)
{
    char head[128], tail[512];
    apr_size_t len;
    char *msg;
    int n;

    snprintf(head, sizeof(head), "{\"type\":\"welcome\",\"member\":\"%s\",\"room\":\"",
             cl->member);
    n = snprintf(tail, sizeof(tail), "\",\"relay\":\"%s\"", relay_up ? "up" : "down");
    if (*cl->session) {
        n += snprintf(tail + n, sizeof(tail) - (apr_size_t)n, ",\"session\":\"%s\"",
                      cl->session);
    }
    if (*cl->name) {
        n += snprintf(tail + n, sizeof(tail) - (apr_size_t)n, ",\"name\":\"");
        n += (int)wsock_json_escape(tail + n, cl->name, strlen(cl->name));
        n += snprintf(tail + n, sizeof(tail) - (apr_size_t)n, "\"");
    }
    snprintf(tail + n, sizeof(tail) - (apr_size_t)n, "}");
    if ((msg = wsock_json_wrap(head, cl->sel.label, strlen(cl->sel.label), tail, &len))
        != NULL) {
        wsock_send(cl->wc, 1, msg, len);
        free(msg);
    }
    cl->welcomed = 1;
}

/* Under the mutex: cl no longer catches up; what it held is freed. */
static void end_catching(wsock_redis_client *cl)
{
    if (!cl->catching_up) {
        return;
    }
    for (wsock_redis_client **p = &catching; *p; p = &(*p)->next_catching) {
        if (*p == cl) {
            *p = cl->next_catching;
            break;
        }
    }
    while (cl->held) {
        wsock_redis_held *h = cl->held;
        cl->held = h->next;
        free(h);
    }
    cl->catching_up = 0;
}

int wsock_redis_local_add(wsock_redis_client *cl)
{
    local_room *r;
    int changed = 0;

    apr_thread_mutex_lock(mutex);
    cl->prev = NULL;
    cl->next = clients;
    if (clients) {
        clients->prev = cl;
    }
    clients = cl;
    apr_hash_set(by_serial, &cl->serial, sizeof(cl->serial), cl);
    r = apr_hash_get(rooms, cl->sel.room, APR_HASH_KEY_STRING);
    if (r == NULL && (r = calloc(1, sizeof(*r))) != NULL) {
        if ((r->name = strdup(cl->sel.room)) == NULL) {
            free(r);
            r = NULL;
        }
        else {
            apr_hash_set(rooms, r->name, APR_HASH_KEY_STRING, r);
            changed = 1;
        }
    }
    if (r) {
        r->members++;
    }
    if (cl->catching_up) {
        /* wsock_redis_history_resume welcomes it, before the catching up */
        cl->held_tail = &cl->held;
        cl->next_catching = catching;
        catching = cl;
    }
    /* Without a subscription the client would miss its room's messages:
     * it is welcomed once the subscriber has the room, or at once if the
     * relay is down (and the welcome says so). */
    else if (!relay_up || (r && r->ready) || r == NULL) {
        welcome(cl);
    }
    apr_thread_mutex_unlock(mutex);
    return changed;
}

int wsock_redis_local_remove(wsock_redis_client *cl)
{
    local_room *r;
    int changed = 0;

    apr_thread_mutex_lock(mutex);
    if (cl->prev) {
        cl->prev->next = cl->next;
    }
    else {
        clients = cl->next;
    }
    if (cl->next) {
        cl->next->prev = cl->prev;
    }
    apr_hash_set(by_serial, &cl->serial, sizeof(cl->serial), NULL);
    end_catching(cl);
    r = apr_hash_get(rooms, cl->sel.room, APR_HASH_KEY_STRING);
    if (r && --r->members == 0) {
        apr_hash_set(rooms, r->name, APR_HASH_KEY_STRING, NULL);
        free(r->name);
        free(r);
        changed = 1;
    }
    apr_thread_mutex_unlock(mutex);
    return changed;
}

apr_array_header_t *wsock_redis_local_rooms(apr_pool_t *pool)
{
    apr_array_header_t *out;

    apr_thread_mutex_lock(mutex);
    out = apr_array_make(pool, (int)apr_hash_count(rooms) + 1, sizeof(const char *));
    for (apr_hash_index_t *hi = apr_hash_first(pool, rooms); hi; hi = apr_hash_next(hi)) {
        const local_room *r = apr_hash_this_val(hi);
        APR_ARRAY_PUSH(out, const char *) = apr_pstrdup(pool, r->name);
    }
    apr_thread_mutex_unlock(mutex);
    return out;
}

void wsock_redis_local_room_ready(const char *room)
{
    local_room *r;

    apr_thread_mutex_lock(mutex);
    r = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    if (r && !r->ready) {
        r->ready = 1;
        for (wsock_redis_client *cl = clients; cl; cl = cl->next) {
            if (!cl->welcomed && !cl->catching_up && strcmp(cl->sel.room, room) == 0) {
                welcome(cl);
            }
        }
        apr_thread_cond_broadcast(news);
    }
    apr_thread_mutex_unlock(mutex);
}

/* Under the mutex: keeps a copy for every client of room catching up. */
static void hold_for_catching(const char *room, const char *id, const char *json,
                              apr_size_t len)
{
    for (wsock_redis_client *cl = catching; cl; cl = cl->next_catching) {
        wsock_redis_held *h;

        if (strcmp(cl->sel.room, room) != 0) {
            continue;
        }
        if (cl->held_n >= HELD_MAX || (h = malloc(sizeof(*h) + len)) == NULL) {
            cl->held_lost++;
            continue;
        }
        h->next = NULL;
        snprintf(h->id, sizeof(h->id), "%s", id ? id : "");
        h->len = len;
        memcpy(h->json, json, len);
        *cl->held_tail = h;
        cl->held_tail = &h->next;
        cl->held_n++;
    }
}

void wsock_redis_local_deliver(const char *room, apr_uint32_t except, const char *id,
                               const char *json, apr_size_t len)
{
    wsock_redis_client *cl;
    local_room *r;

    /* Held during the delivery: the sender cannot end (and its memory be
     * reused by another connection) while it is the exception, and a
     * client cannot finish catching up half-way through a message. */
    apr_thread_mutex_lock(mutex);
    if (id && (r = apr_hash_get(rooms, room, APR_HASH_KEY_STRING)) != NULL) {
        snprintf(r->last_id, sizeof(r->last_id), "%s", id);
    }
    if (catching) {
        hold_for_catching(room, id, json, len);
    }
    cl = except ? apr_hash_get(by_serial, &except, sizeof(except)) : NULL;
    wsock_publish_local(room, cl ? cl->wc : NULL, 1, json, len);
    apr_thread_mutex_unlock(mutex);
}

int wsock_redis_local_wait_ready(const char *room, apr_interval_time_t timeout)
{
    apr_time_t deadline = apr_time_now() + timeout;
    local_room *r;
    int ready;

    /* A child that has just started may not have connected yet: worth
     * waiting for.  An outage is not. */
    apr_thread_mutex_lock(mutex);
    while ((r = apr_hash_get(rooms, room, APR_HASH_KEY_STRING)) != NULL && !r->ready
           && (relay_up || !relay_was_up) && apr_time_now() < deadline) {
        apr_thread_cond_timedwait(news, mutex, deadline - apr_time_now());
    }
    ready = r && r->ready && relay_up;
    apr_thread_mutex_unlock(mutex);
    return ready;
}

void wsock_redis_local_welcome(wsock_redis_client *cl)
{
    apr_thread_mutex_lock(mutex);
    welcome(cl);
    apr_thread_mutex_unlock(mutex);
}

void wsock_redis_local_synced(apr_uint32_t serial)
{
    wsock_redis_client *cl;

    apr_thread_mutex_lock(mutex);
    if ((cl = apr_hash_get(by_serial, &serial, sizeof(serial))) != NULL) {
        cl->synced = 1;
        apr_thread_cond_broadcast(news);
    }
    apr_thread_mutex_unlock(mutex);
}

int wsock_redis_local_wait_synced(wsock_redis_client *cl, apr_interval_time_t timeout)
{
    apr_time_t deadline = apr_time_now() + timeout;
    int synced;

    apr_thread_mutex_lock(mutex);
    while (!cl->synced && relay_up && apr_time_now() < deadline) {
        apr_thread_cond_timedwait(news, mutex, deadline - apr_time_now());
    }
    synced = cl->synced;
    apr_thread_mutex_unlock(mutex);
    return synced;
}

int wsock_redis_local_catch_finish(wsock_redis_client *cl, const char *after, int *sent)
{
    int lost;

    apr_thread_mutex_lock(mutex);
    for (wsock_redis_held *h = cl->held; h; h = h->next) {
        if (after == NULL || !*h->id || wsock_redis_id_cmp(h->id, after) > 0) {
            wsock_send(cl->wc, 1, h->json, h->len);
            (*sent)++;
        }
    }
    /* Joined under the mutex: every message the subscriber delivers from
     * now on reaches the client through the room, none was missed. */
    lost = wsock_join(cl->wc, cl->sel.room) == APR_SUCCESS ? cl->held_lost : -1;
    end_catching(cl);
    apr_thread_mutex_unlock(mutex);
    return lost;
}

int wsock_redis_parse_id(const char *id, apr_uint64_t *ms, apr_uint64_t *seq)
{
    char *end;

    if (id == NULL || *id < '0' || *id > '9') {
        return 0;
    }
    errno = 0;
    *ms = apr_strtoi64(id, &end, 10);
    *seq = 0;
    if (*end == '-') {
        const char *s = end + 1;
        if (*s < '0' || *s > '9') {
            return 0;
        }
        *seq = apr_strtoi64(s, &end, 10);
    }
    return *end == '\0' && errno != ERANGE;
}

int wsock_redis_id_cmp(const char *a, const char *b)
{
    apr_uint64_t am = 0, as = 0, bm = 0, bs = 0;

    wsock_redis_parse_id(a, &am, &as);
    wsock_redis_parse_id(b, &bm, &bs);
    if (am != bm) {
        return am < bm ? -1 : 1;
    }
    return as < bs ? -1 : as > bs;
}

char *wsock_redis_with_id(const char *json, apr_size_t len, const char *id,
                          apr_size_t *outlen)
{
    static const char head[] = "{\"type\":\"message\",";
    apr_size_t hl = sizeof(head) - 1, il = strlen(id);
    char *out;

    if (len < hl || memcmp(json, head, hl) != 0
        || (out = malloc(len + il + 8)) == NULL) {
        return NULL;
    }
    memcpy(out, head, hl);
    memcpy(out + hl, "\"id\":\"", 6);
    memcpy(out + hl + 6, id, il);
    memcpy(out + hl + 6 + il, "\",", 2);
    memcpy(out + hl + 8 + il, json + hl, len - hl);
    *outlen = len + il + 8;
    return out;
}

int wsock_redis_local_set_up(int up)
{
    int changed;

    apr_thread_mutex_lock(mutex);
    changed = relay_up != up;
    if (changed) {
        relay_up = up;
        relay_was_up |= up;
        /* A new connection re-subscribes every room before the relay is
         * up again: until then no room counts as subscribed. */
        for (apr_hash_index_t *hi = apr_hash_first(NULL, rooms); !up && hi;
             hi = apr_hash_next(hi)) {
            ((local_room *)apr_hash_this_val(hi))->ready = 0;
        }
        for (wsock_redis_client *cl = clients; cl; cl = cl->next) {
            if (cl->welcomed) {
                wsock_send(cl->wc, 1, up ? state_up : state_down,
                           up ? sizeof(state_up) - 1 : sizeof(state_down) - 1);
            }
            else if (!cl->catching_up) {
                welcome(cl);        /* waiting for a room that will not come now */
            }
        }
        apr_thread_cond_broadcast(news);
    }
    apr_thread_mutex_unlock(mutex);
    return changed;
}

void wsock_redis_local_last_id(const char *room, char *buf, apr_size_t n)
{
    local_room *r;

    apr_thread_mutex_lock(mutex);
    r = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    snprintf(buf, n, "%s", r ? r->last_id : "");
    apr_thread_mutex_unlock(mutex);
}

int wsock_redis_local_is_up(void)
{
    int up;

    apr_thread_mutex_lock(mutex);
    up = relay_up;
    apr_thread_mutex_unlock(mutex);
    return up;
}
