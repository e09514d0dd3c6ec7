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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "wsock_json.h"
#include "wsock_redis.h"

typedef struct {
    char *name;
    int members;
    int ready;                  /* the subscriber confirmed its channel */
} local_room;

static apr_thread_mutex_t *mutex;
static wsock_redis_client *clients;     /* doubly linked */
static apr_hash_t *by_serial;           /* serial -> client */
static apr_hash_t *rooms;               /* name -> local_room (malloc'ed) */
static int relay_up;

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
    return apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
}

/* Under the mutex. */
static void welcome(wsock_redis_client *cl)
{
    char head[128], tail[64];
    apr_size_t len;
    char *msg;

    snprintf(head, sizeof(head), "{\"type\":\"welcome\",\"member\":\"%s\",\"room\":\"",
             cl->member);
    snprintf(tail, sizeof(tail), "\",\"relay\":\"%s\"}", relay_up ? "up" : "down");
    if ((msg = wsock_json_wrap(head, cl->sel.label, strlen(cl->sel.label), tail, &len))
        != NULL) {
        wsock_send(cl->wc, 1, msg, len);
        free(msg);
    }
    cl->welcomed = 1;
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
    /* Without a subscription the client would miss its room's messages:
     * it is welcomed once the subscriber has the room, or at once if the
     * relay is down (and the welcome says so). */
    if (!relay_up || (r && r->ready) || r == NULL) {
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
            if (!cl->welcomed && strcmp(cl->sel.room, room) == 0) {
                welcome(cl);
            }
        }
    }
    apr_thread_mutex_unlock(mutex);
}

void wsock_redis_local_deliver(const char *room, apr_uint32_t except, const char *json,
                               apr_size_t len)
{
    wsock_redis_client *cl;

    if (except == 0) {
        wsock_publish_local(room, NULL, 1, json, len);
        return;
    }
    /* Held during the delivery: the sender cannot end (and its memory be
     * reused by another connection) while it is the exception. */
    apr_thread_mutex_lock(mutex);
    cl = apr_hash_get(by_serial, &except, sizeof(except));
    wsock_publish_local(room, cl ? cl->wc : NULL, 1, json, len);
    apr_thread_mutex_unlock(mutex);
}

int wsock_redis_local_set_up(int up)
{
    int changed;

    apr_thread_mutex_lock(mutex);
    changed = relay_up != up;
    if (changed) {
        relay_up = up;
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
            else {
                welcome(cl);        /* waiting for a room that will not come now */
            }
        }
    }
    apr_thread_mutex_unlock(mutex);
    return changed;
}

int wsock_redis_local_is_up(void)
{
    int up;

    apr_thread_mutex_lock(mutex);
    up = relay_up;
    apr_thread_mutex_unlock(mutex);
    return up;
}
