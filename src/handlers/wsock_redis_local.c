/*
 * wsock_redis_local.c — this child's side of the relay: its clients, the
 * rooms they are in (what the subscriber follows), the relay's state as
 * clients see it, and the hand-over of a resuming client to live delivery.
 *
 * One mutex guards the books (lists, rooms, held copies, state); nothing
 * is sent while it is held.  A thread that sends to clients (a delivery,
 * a welcome, the relay's state) takes a reference on each under the mutex
 * (wsock_redis_client_ref: the client and its connection stay valid even
 * if it ends meanwhile), lets go of the mutex, and sends.  Order:
 *  - what the relay tells a client (its welcome, then each change of the
 *    relay's state) goes out under the client's own tell_mx, so the
 *    welcome is first and changes arrive in order;
 *  - a client is put in its room by the thread that welcomed it, after
 *    the welcome, so no room message comes before it;
 *  - room messages are delivered by the subscriber thread alone, in the
 *    channel's order; a resuming client is joined to its room by that same
 *    thread, between two deliveries, once its held copies are sent: none
 *    is missed, none comes twice (docs/redis.md#resuming).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "wsock_json.h"
#include "wsock_redis.h"

typedef struct {
    char *name;
    int members;
    int ready;                  /* the subscriber confirmed its channel */
    char last_id[48];           /* of the last message delivered, with history */
} local_room;

static apr_thread_mutex_t *mutex;
static wsock_redis_client *clients;     /* doubly linked */
static wsock_redis_client *catching;    /* clients catching up */
static wsock_redis_client *handovers;   /* waiting for the subscriber */
static volatile apr_uint32_t n_catching;    /* read without the mutex */
static apr_hash_t *by_serial;           /* serial -> client */
static apr_hash_t *rooms;               /* name -> local_room (malloc'ed) */
static int relay_up;
static int relay_was_up;                /* since this child started */
static volatile apr_uint32_t told_state;    /* relay_up, for what clients are told */

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

/* ---- references ------------------------------------------------------- */

wsock_redis_client *wsock_redis_client_new(wsock_conn *wc)
{
    wsock_redis_client *cl = calloc(1, sizeof(*cl));

    if (cl == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&cl->tell_mx, NULL) != 0) {
        free(cl);
        return NULL;
    }
    cl->wc = wc;
    cl->refs = 1;
    return cl;
}

static void client_free(wsock_redis_client *cl)
{
    wsock_redis_held_clear(&cl->held);
    wsock_redis_catchup_free(cl->cu);
    pthread_mutex_destroy(&cl->tell_mx);
    free(cl);
}

void wsock_redis_client_ref(wsock_redis_client *cl)
{
    apr_atomic_inc32(&cl->refs);
    wsock_ref(cl->wc);
}

void wsock_redis_client_unref(wsock_redis_client *cl)
{
    wsock_conn *wc = cl->wc;

    if (apr_atomic_dec32(&cl->refs) == 0) {
        client_free(cl);
    }
    wsock_unref(wc);
}

void wsock_redis_client_release(wsock_redis_client *cl)
{
    if (apr_atomic_dec32(&cl->refs) == 0) {
        client_free(cl);
    }
}

/* ---- what clients are told ------------------------------------------- */

/* Sends the welcome, under cl's tell_mx. */
static void send_welcome(wsock_redis_client *cl, int up)
{
    char head[128], tail[512];
    apr_size_t len;
    char *msg;
    int n;

    snprintf(head, sizeof(head), "{\"type\":\"welcome\",\"member\":\"%s\",\"room\":\"",
             cl->member);
    n = snprintf(tail, sizeof(tail), "\",\"relay\":\"%s\"", up ? "up" : "down");
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
}

apr_status_t wsock_redis_local_greet(wsock_redis_client *cl, int join)
{
    pthread_mutex_lock(&cl->tell_mx);
    if (!cl->welcomed) {
        cl->told_up = (int)apr_atomic_read32(&told_state);
        send_welcome(cl, cl->told_up);
        cl->welcomed = 1;
    }
    pthread_mutex_unlock(&cl->tell_mx);
    return join ? wsock_join(cl->wc, cl->sel.room) : APR_SUCCESS;
}

/* Tells a welcomed client the relay's state if it was told another. */
static void tell_state(wsock_redis_client *cl)
{
    pthread_mutex_lock(&cl->tell_mx);
    if (cl->welcomed) {
        int up = (int)apr_atomic_read32(&told_state);

        if (up != cl->told_up) {
            wsock_send(cl->wc, 1, up ? state_up : state_down,
                       up ? sizeof(state_up) - 1 : sizeof(state_down) - 1);
            cl->told_up = up;
        }
    }
    pthread_mutex_unlock(&cl->tell_mx);
}

/* Under the mutex: a client that waits for its welcome (not catching up:
 * the resumer welcomes those), now to be welcomed by the caller. */
static int take_for_greeting(wsock_redis_client *cl)
{
    if (cl->greeting || cl->catching_up || cl->gone || cl->cu) {
        return 0;
    }
    cl->greeting = 1;
    return 1;
}

/* ---- clients and rooms ------------------------------------------------ */

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
    wsock_redis_held_clear(&cl->held);
    cl->catching_up = 0;
    apr_atomic_dec32(&n_catching);
}

int wsock_redis_local_add(wsock_redis_client *cl, long max_n, apr_size_t max_bytes)
{
    local_room *r;
    int flags = 0;

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
            flags |= WSOCK_REDIS_ROOMS_CHANGED;
        }
    }
    if (r) {
        r->members++;
    }
    if (cl->catching_up) {
        /* the resumer welcomes it; from now on it keeps its room's messages
         * after the id it resumes from (seen) */
        wsock_redis_held_init(&cl->held, max_n, max_bytes);
        wsock_redis_held_set_after(&cl->held, cl->seen);
        cl->next_catching = catching;
        catching = cl;
        apr_atomic_inc32(&n_catching);
    }
    /* Without a subscription the client would miss its room's messages:
     * it is welcomed once the subscriber has the room, or at once if the
     * relay is down (and the welcome says so). */
    else if ((!relay_up || r == NULL || r->ready) && take_for_greeting(cl)) {
        flags |= WSOCK_REDIS_GREET_NOW;
    }
    apr_thread_mutex_unlock(mutex);
    return flags;
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
    cl->gone = 1;
    end_catching(cl);
    r = apr_hash_get(rooms, cl->sel.room, APR_HASH_KEY_STRING);
    if (r && --r->members == 0) {
        apr_hash_set(rooms, r->name, APR_HASH_KEY_STRING, NULL);
        free(r->name);
        free(r);
        changed = WSOCK_REDIS_ROOMS_CHANGED;
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

/* Under the mutex: every client for which pick(cl, room) holds, with a
 * reference each, in a malloc'ed array (NULL if none or no memory). */
static wsock_redis_client **snapshot(int (*pick)(wsock_redis_client *cl, const char *room),
                                     const char *room, apr_size_t *n)
{
    wsock_redis_client **out = NULL;
    apr_size_t cap = 0;

    *n = 0;
    for (wsock_redis_client *cl = clients; cl; cl = cl->next) {
        if (!pick(cl, room)) {
            continue;
        }
        if (*n == cap) {
            wsock_redis_client **more = realloc(out, (cap ? cap * 2 : 16) * sizeof(*out));
            if (more == NULL) {
                break;
            }
            out = more;
            cap = cap ? cap * 2 : 16;
        }
        wsock_redis_client_ref(cl);
        out[(*n)++] = cl;
    }
    return out;
}

/* Outside the mutex: greets (join) or tells each, and lets go of them. */
static void greet_all(wsock_redis_client **list, apr_size_t n, int greet)
{
    for (apr_size_t i = 0; i < n; i++) {
        if (greet) {
            wsock_redis_local_greet(list[i], 1);
        }
        else {
            tell_state(list[i]);
        }
        wsock_redis_client_unref(list[i]);
    }
    free(list);
}

static int waits_in(wsock_redis_client *cl, const char *room)
{
    return strcmp(cl->sel.room, room) == 0 && take_for_greeting(cl);
}

void wsock_redis_local_room_ready(const char *room)
{
    wsock_redis_client **list = NULL;
    apr_size_t n = 0;
    local_room *r;

    apr_thread_mutex_lock(mutex);
    r = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    if (r && !r->ready) {
        r->ready = 1;
        list = snapshot(waits_in, room, &n);
    }
    apr_thread_mutex_unlock(mutex);
    if (r) {
        wsock_redis_catchup_recheck();
    }
    greet_all(list, n, 1);
}

int wsock_redis_local_room_state(const char *room)
{
    local_room *r;
    int state;

    /* A child that has just started may not have connected yet: worth
     * waiting for.  An outage is not. */
    apr_thread_mutex_lock(mutex);
    r = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    state = r && r->ready && relay_up ? 1 : !relay_up && relay_was_up ? -1 : 0;
    apr_thread_mutex_unlock(mutex);
    return state;
}

/* ---- delivery ----------------------------------------------------------- */

void wsock_redis_local_deliver(const char *room, apr_uint32_t except, const char *id,
                               const char *json, apr_size_t len)
{
    wsock_redis_held_msg *copy = NULL;
    wsock_conn *skip = NULL;
    wsock_redis_client *cl;
    local_room *r;
    int copied;

    /* One copy for the clients catching up, made outside the mutex.  (A
     * client that registers after this look did so after the subscriber
     * had the message: it is in the stream before its catch-up reads.) */
    if ((copied = id && apr_atomic_read32(&n_catching)) != 0) {
        copy = wsock_redis_held_make(id, json, len);
    }
    apr_thread_mutex_lock(mutex);
    if (id && (r = apr_hash_get(rooms, room, APR_HASH_KEY_STRING)) != NULL) {
        snprintf(r->last_id, sizeof(r->last_id), "%s", id);
    }
    for (cl = copied ? catching : NULL; cl; cl = cl->next_catching) {
        if (strcmp(cl->sel.room, room) == 0) {
            wsock_redis_held_add(&cl->held, copy, id);
        }
    }
    /* The sender stays valid (its connection cannot be reused by another
     * client) while it is the exception. */
    if (except && (cl = apr_hash_get(by_serial, &except, sizeof(except))) != NULL) {
        skip = cl->wc;
        wsock_ref(skip);
    }
    apr_thread_mutex_unlock(mutex);
    wsock_redis_held_release(copy);
    wsock_publish_local(room, skip, 1, json, len);
    if (skip) {
        wsock_unref(skip);
    }
}

/* ---- catching up (the resumer's side) ---------------------------------- */

void wsock_redis_local_synced(apr_uint32_t serial)
{
    wsock_redis_client *cl;

    apr_thread_mutex_lock(mutex);
    if ((cl = apr_hash_get(by_serial, &serial, sizeof(serial))) != NULL) {
        cl->synced = 1;
    }
    apr_thread_mutex_unlock(mutex);
    if (cl) {
        wsock_redis_catchup_recheck();
    }
}

int wsock_redis_local_is_synced(wsock_redis_client *cl, int *interrupted)
{
    int synced;

    apr_thread_mutex_lock(mutex);
    synced = cl->synced;
    *interrupted = cl->interrupted;
    apr_thread_mutex_unlock(mutex);
    return synced;
}

void wsock_redis_local_set_upto(wsock_redis_client *cl, const char *id)
{
    apr_thread_mutex_lock(mutex);
    if (cl->catching_up) {
        wsock_redis_held_set_after(&cl->held, id);
    }
    apr_thread_mutex_unlock(mutex);
}

void wsock_redis_local_set_seen(wsock_redis_client *cl, const char *id)
{
    apr_thread_mutex_lock(mutex);
    snprintf(cl->seen, sizeof(cl->seen), "%s", id);
    apr_thread_mutex_unlock(mutex);
}

void wsock_redis_local_seen(wsock_redis_client *cl, char *buf, apr_size_t n)
{
    local_room *r;

    apr_thread_mutex_lock(mutex);
    /* a resuming client has seen its room's messages once it went live */
    r = cl->cu && !cl->joined ? NULL : apr_hash_get(rooms, cl->sel.room,
                                                    APR_HASH_KEY_STRING);
    snprintf(buf, n, "%s", r && *r->last_id ? r->last_id : cl->seen);
    apr_thread_mutex_unlock(mutex);
}

int wsock_redis_local_gone(wsock_redis_client *cl)
{
    int gone;

    apr_thread_mutex_lock(mutex);
    gone = cl->gone;
    apr_thread_mutex_unlock(mutex);
    return gone;
}

void wsock_redis_local_abandon(wsock_redis_client *cl)
{
    apr_thread_mutex_lock(mutex);
    end_catching(cl);
    apr_thread_mutex_unlock(mutex);
}

void wsock_redis_local_hand_over(wsock_redis_client *cl)
{
    apr_thread_mutex_lock(mutex);
    cl->next_handover = handovers;
    handovers = cl;
    apr_thread_mutex_unlock(mutex);
    wsock_redis_sub_wake();
}

/* Under the mutex: the newest id cl got. */
static void note_seen(wsock_redis_client *cl, const char *id)
{
    if (*id) {
        snprintf(cl->seen, sizeof(cl->seen), "%s", id);
    }
}

/* Subscriber thread: sends cl's held copies after its catch-up, the
 * resumed notice, and joins it to its room.  No delivery can come in
 * between (this thread makes them), so the copies and the room meet
 * without a gap or an overlap.  0 if cl's connection has no room: the
 * resumer takes it back (and the rest is sent at the next hand-over). */
static int finish(wsock_redis_client *cl)
{
    char last[48] = "", notice[160];
    int sent = 0, count, complete, lost, gone;
    apr_status_t rv;

    for (;;) {
        wsock_redis_held_msg *m;

        apr_thread_mutex_lock(mutex);
        m = cl->gone ? NULL : wsock_redis_held_take(&cl->held);
        apr_thread_mutex_unlock(mutex);
        if (m == NULL) {
            break;
        }
        rv = wsock_send_try(cl->wc, 1, m->json, m->len);
        if (rv == APR_EAGAIN) {
            apr_thread_mutex_lock(mutex);
            wsock_redis_held_put_back(&cl->held, m);
            note_seen(cl, last);
            apr_thread_mutex_unlock(mutex);
            wsock_redis_catchup_bounce(cl, sent);
            return 0;
        }
        if (rv == APR_SUCCESS) {
            sent++;
            snprintf(last, sizeof(last), "%s", m->id);
        }
        wsock_redis_held_release(m);
    }
    apr_thread_mutex_lock(mutex);
    lost = wsock_redis_held_lost(&cl->held) || cl->interrupted;
    gone = cl->gone;
    note_seen(cl, last);
    apr_thread_mutex_unlock(mutex);
    if (!gone) {
        wsock_redis_catchup_result(cl, &count, &complete);
        snprintf(notice, sizeof(notice),
                 "{\"type\":\"resumed\",\"count\":%d,\"complete\":%s}", count + sent,
                 complete && !lost ? "true" : "false");
        if (wsock_send_try(cl->wc, 1, notice, strlen(notice)) == APR_EAGAIN) {
            wsock_redis_catchup_bounce(cl, sent);
            return 0;
        }
    }
    apr_thread_mutex_lock(mutex);
    cl->joined = !gone;
    end_catching(cl);
    apr_thread_mutex_unlock(mutex);
    if (!gone && (rv = wsock_join(cl->wc, cl->sel.room)) != APR_SUCCESS && rv != APR_EOF) {
        wsock_close(cl->wc, 1011, "server error");
    }
    return 1;
}

/* The hand-overs asked for: finished (run), or let go of (at stop). */
static void take_handovers(int run)
{
    wsock_redis_client *list;

    apr_thread_mutex_lock(mutex);
    list = handovers;
    handovers = NULL;
    apr_thread_mutex_unlock(mutex);
    while (list) {
        wsock_redis_client *cl = list;

        list = cl->next_handover;
        if (!run || finish(cl)) {
            wsock_redis_client_unref(cl);       /* the catch-up is over */
        }
    }
}

void wsock_redis_local_run_handovers(void)
{
    take_handovers(1);
}

void wsock_redis_local_drop_handovers(void)
{
    take_handovers(0);
}

/* ---- stream ids ---------------------------------------------------------- */

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

/* ---- the relay's state --------------------------------------------------- */

static int any_client(wsock_redis_client *cl, const char *room)
{
    (void)cl;
    (void)room;
    return 1;
}

static int waits_any(wsock_redis_client *cl, const char *room)
{
    (void)room;
    return take_for_greeting(cl);
}

int wsock_redis_local_set_up(int up)
{
    int changed;

    apr_thread_mutex_lock(mutex);
    changed = relay_up != up;
    if (changed) {
        relay_up = up;
        relay_was_up |= up;
        apr_atomic_set32(&told_state, (apr_uint32_t)up);
        /* A new connection re-subscribes every room before the relay is
         * up again: until then no room counts as subscribed.  A client
         * catching up may have missed what was published meanwhile. */
        for (apr_hash_index_t *hi = apr_hash_first(NULL, rooms); !up && hi;
             hi = apr_hash_next(hi)) {
            ((local_room *)apr_hash_this_val(hi))->ready = 0;
        }
        for (wsock_redis_client *cl = catching; cl && !up; cl = cl->next_catching) {
            cl->interrupted = 1;
        }
    }
    apr_thread_mutex_unlock(mutex);
    return changed;
}

void wsock_redis_local_tell_all(void)
{
    wsock_redis_client **told, **waiting = NULL;
    apr_size_t n_told, n_waiting = 0;

    apr_thread_mutex_lock(mutex);
    told = snapshot(any_client, NULL, &n_told);
    if (!relay_up) {
        /* waiting for a room that will not come now */
        waiting = snapshot(waits_any, NULL, &n_waiting);
    }
    apr_thread_mutex_unlock(mutex);
    greet_all(told, n_told, 0);
    greet_all(waiting, n_waiting, 1);
    wsock_redis_catchup_recheck();
}
