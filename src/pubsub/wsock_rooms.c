/*
 * wsock_rooms.c — rooms of this child process.
 *
 * One mutex guards the room table, every room's members and every
 * connection's list of rooms, and it is held only for memory work: looking
 * a room up, joining, leaving, and taking a snapshot of a room's members
 * for a delivery.  What a delivery does per member (serializing, queueing,
 * waking the owner, writing for members the publishing loop thread owns
 * itself, the slow-consumer policy with its log line) happens after the
 * mutex is released, so one large room, or one slow client, never holds up
 * publishers of other rooms.  The snapshot takes a reference on every
 * member (wsock_ref): a member that leaves meanwhile stays valid until the
 * delivery is done with it, and refuses the message as closing.
 *
 * Membership is an array per room and an array per connection, each entry
 * knowing its place in the other, so joining and leaving cost the same in
 * a room of ten members or of ten thousand; a connection is in at most
 * WSOCK_MAX_ROOMS rooms, and everything a room or a membership takes is
 * given back when it is left.  The table is keyed by a hash with a secret
 * drawn when the child starts (wsock_keyhash.h): room names are chosen by
 * clients, and must not be able to pile up in one bucket.
 *
 * Members in other child processes are reached through the bus
 * (src/bus): a publisher posts there, and each child's bus thread hands
 * what others posted to wsock_rooms_deliver().  Every change of this
 * child's member count is reported to the bus, under the mutex (so that
 * the bus sees a room's joins and leaves in the order they happened).
 */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "wsock_bus.h"
#include "wsock_connaddr.h"
#include "wsock_keyhash.h"
#include "wsock_log.h"
#include "wsock_output.h"
#include "wsock_rooms.h"
#include "wsock_counters.h"

APLOG_USE_MODULE(wsock);

#define WSOCK_ROOM_NAME_MAX WSOCK_ROOMS_NAME_MAX

/* A delivery's snapshot of a room is kept by its thread for the next
 * delivery, up to this many members' worth; a larger one is freed. */
#define SNAPSHOT_KEEP 8192

typedef struct {
    wsock_conn *wc;
    int mslot;                      /* its place in wc->joined */
} room_member;

/* malloc'ed, and freed when its last member leaves: memory follows the
 * rooms in use, however many names clients come up with over time. */
struct wsock_room {
    char *name;
    room_member *m;
    int n, cap;
};
typedef struct wsock_room room_t;

static apr_thread_mutex_t *rooms_mutex;
static apr_hash_t *rooms;          /* name -> room_t */
static wsock_hashkey room_key;

/* One delivery's members, per thread (see deliver_local). */
static __thread wsock_conn **snapshot;
static __thread size_t snapshot_cap;

static unsigned int room_hash(const char *key, apr_ssize_t *klen)
{
    if (*klen == APR_HASH_KEY_STRING) {
        *klen = (apr_ssize_t)strlen(key);
    }
    return (unsigned int)wsock_keyhash(&room_key, key, (size_t)*klen);
}

static apr_status_t free_rooms(void *data)
{
    (void)data;
    for (apr_hash_index_t *hi = apr_hash_first(NULL, rooms); hi; hi = apr_hash_next(hi)) {
        room_t *rm = apr_hash_this_val(hi);
        free(rm->m);
        free(rm->name);
        free(rm);
    }
    rooms = NULL;
    return APR_SUCCESS;
}

apr_status_t wsock_rooms_child_init(apr_pool_t *pchild)
{
    apr_status_t rv = wsock_hashkey_random(&room_key);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    rooms = apr_hash_make_custom(pchild, room_hash);
    apr_pool_cleanup_register(pchild, NULL, free_rooms, apr_pool_cleanup_null);
    wsock_bus_on_deliver(wsock_rooms_deliver);
    return apr_thread_mutex_create(&rooms_mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
}

static int valid_name(const char *room)
{
    size_t n = room ? strlen(room) : 0;
    return n > 0 && n <= WSOCK_ROOM_NAME_MAX;
}

/* Under rooms_mutex: wc's place in its list of rooms for rm, or -1. */
static int membership_of(const wsock_conn *wc, const room_t *rm)
{
    for (int k = 0; rm && k < wc->joined_n; k++) {
        if (wc->joined[k].room == rm) {
            return k;
        }
    }
    return -1;
}

/* Under rooms_mutex: grows an array of n elements of size bytes to hold
 * one more; 0 when out of memory. */
static int grow(void **array, int *cap, int n, size_t size)
{
    void *p;
    int want;

    if (n < *cap) {
        return 1;
    }
    want = *cap ? *cap * 2 : 4;
    if ((p = realloc(*array, (size_t)want * size)) == NULL) {
        return 0;
    }
    *array = p;
    *cap = want;
    return 1;
}

static void room_free(room_t *rm)
{
    wsock_gauge_add(WSOCK_G_ROOMS, -1);
    apr_hash_set(rooms, rm->name, APR_HASH_KEY_STRING, NULL);
    free(rm->m);
    free(rm->name);
    free(rm);
}

/* Under rooms_mutex: the room, created if need be (NULL: out of memory). */
static room_t *room_get(const char *room)
{
    room_t *rm = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);

    if (rm == NULL && (rm = calloc(1, sizeof(*rm))) != NULL) {
        if ((rm->name = strdup(room)) == NULL) {
            free(rm);
            return NULL;
        }
        apr_hash_set(rooms, rm->name, APR_HASH_KEY_STRING, rm);
        wsock_gauge_add(WSOCK_G_ROOMS, 1);
    }
    return rm;
}

/* Names starting with WSOCK_ROOM_RESERVED belong to the module (a
 * connection's private room, wsock_connaddr.c): wsock_join() and
 * wsock_publish*() refuse them. */
static int public_name(const char *room)
{
    return valid_name(room) && room[0] != WSOCK_ROOM_RESERVED;
}

static apr_status_t join_room(wsock_conn *wc, const char *room)
{
    apr_status_t rv = APR_SUCCESS;
    room_t *rm;

    if (!valid_name(room) || rooms_mutex == NULL) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(rooms_mutex);
    rm = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    if (wc->rooms_closed) {
        rv = APR_EOF;
    }
    else if (membership_of(wc, rm) >= 0) {
        rv = APR_SUCCESS;           /* in it already */
    }
    else if (wc->joined_n >= WSOCK_MAX_ROOMS) {
        rv = APR_ENOSPC;
    }
    else if ((rm = room_get(room)) == NULL
             || !grow((void **)&rm->m, &rm->cap, rm->n, sizeof(*rm->m))
             || !grow((void **)&wc->joined, &wc->joined_cap, wc->joined_n,
                      sizeof(*wc->joined))) {
        if (rm && rm->n == 0) {
            room_free(rm);
        }
        rv = APR_ENOMEM;
    }
    else {
        rm->m[rm->n].wc = wc;
        rm->m[rm->n].mslot = wc->joined_n;
        wc->joined[wc->joined_n].room = rm;
        wc->joined[wc->joined_n].slot = rm->n;
        rm->n++;
        wc->joined_n++;
        wsock_bus_room_delta(room, 1);
        wsock_gauge_add(WSOCK_G_MEMBERS, 1);
    }
    apr_thread_mutex_unlock(rooms_mutex);
    return rv;
}

apr_status_t wsock_join(wsock_conn *wc, const char *room)
{
    return public_name(room) ? join_room(wc, room) : APR_EINVAL;
}

apr_status_t wsock_rooms_join_reserved(wsock_conn *wc, const char *room)
{
    return room && room[0] == WSOCK_ROOM_RESERVED ? join_room(wc, room) : APR_EINVAL;
}

wsock_conn *wsock_rooms_member(const char *room)
{
    wsock_conn *wc = NULL;
    room_t *rm;

    if (!valid_name(room) || rooms_mutex == NULL) {
        return NULL;
    }
    apr_thread_mutex_lock(rooms_mutex);
    rm = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    if (rm && rm->n > 0) {
        wc = rm->m[0].wc;
        wsock_ref(wc);              /* valid until the caller is done */
    }
    apr_thread_mutex_unlock(rooms_mutex);
    return wc;
}

/* Under rooms_mutex: takes wc out of the room of its membership k. */
static void leave_locked(wsock_conn *wc, int k)
{
    room_t *rm = wc->joined[k].room;
    int s = wc->joined[k].slot;

    /* out of the room's array: its last member takes the place */
    rm->m[s] = rm->m[--rm->n];
    if (s < rm->n) {
        rm->m[s].wc->joined[rm->m[s].mslot].slot = s;
    }
    /* out of the connection's list: its last room takes the place */
    wc->joined[k] = wc->joined[--wc->joined_n];
    if (k < wc->joined_n) {
        wc->joined[k].room->m[wc->joined[k].slot].mslot = k;
    }
    wsock_bus_room_delta(rm->name, -1);
    wsock_gauge_add(WSOCK_G_MEMBERS, -1);
    if (rm->n == 0) {
        room_free(rm);
    }
}

void wsock_leave(wsock_conn *wc, const char *room)
{
    int k;

    if (!valid_name(room) || rooms_mutex == NULL) {
        return;
    }
    apr_thread_mutex_lock(rooms_mutex);
    k = membership_of(wc, apr_hash_get(rooms, room, APR_HASH_KEY_STRING));
    if (k >= 0) {
        leave_locked(wc, k);
    }
    apr_thread_mutex_unlock(rooms_mutex);
}

void wsock_rooms_leave_all(wsock_conn *wc)
{
    if (rooms_mutex == NULL) {
        return;
    }
    apr_thread_mutex_lock(rooms_mutex);
    while (wc->joined_n) {
        leave_locked(wc, wc->joined_n - 1);
    }
    free(wc->joined);
    wc->joined = NULL;
    wc->joined_cap = 0;
    wc->rooms_closed = 1;
    apr_thread_mutex_unlock(rooms_mutex);
}

int wsock_room_count_local(const char *room)
{
    room_t *rm;
    int n = 0;

    if (!valid_name(room) || rooms_mutex == NULL) {
        return 0;
    }
    apr_thread_mutex_lock(rooms_mutex);
    rm = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    n = rm ? rm->n : 0;
    apr_thread_mutex_unlock(rooms_mutex);
    return n;
}

typedef struct {
    char name[WSOCK_ROOM_NAME_MAX + 1];
    int members;
} top_entry;

int wsock_rooms_top(int n, void (*fn)(void *baton, const char *name, int members),
                    void *baton)
{
    top_entry top[WSOCK_ROOMS_TOP_MAX];
    int have = 0, scanned = 0, i;

    if (n > WSOCK_ROOMS_TOP_MAX) {
        n = WSOCK_ROOMS_TOP_MAX;
    }
    if (n <= 0 || rooms_mutex == NULL) {
        return 0;
    }
    apr_thread_mutex_lock(rooms_mutex);
    for (apr_hash_index_t *hi = apr_hash_first(NULL, rooms);
         hi && scanned < WSOCK_ROOMS_TOP_SCAN; hi = apr_hash_next(hi), scanned++) {
        const room_t *rm = apr_hash_this_val(hi);

        if (rm->name[0] == WSOCK_ROOM_RESERVED
            || (have == n && rm->n <= top[n - 1].members)) {
            continue;
        }
        /* insertion into the sorted list: the smallest falls off */
        i = have < n ? have++ : n - 1;
        while (i > 0 && top[i - 1].members < rm->n) {
            top[i] = top[i - 1];
            i--;
        }
        apr_cpystrn(top[i].name, rm->name, sizeof(top[i].name));
        top[i].members = rm->n;
    }
    apr_thread_mutex_unlock(rooms_mutex);
    for (i = 0; i < have; i++) {
        fn(baton, top[i].name, top[i].members);
    }
    return have;
}

/* Under rooms_mutex: room for n members in this thread's snapshot. */
static int snapshot_reserve(size_t n)
{
    wsock_conn **p;

    if (n <= snapshot_cap) {
        return 1;
    }
    if ((p = realloc(snapshot, n * sizeof(*p))) == NULL) {
        return 0;
    }
    snapshot = p;
    snapshot_cap = n;
    return 1;
}

/* Hands the message to every member of room in this child but except.
 * Members owned by other threads get the frames serialized once and shared
 * by reference (wsock_output_send_shared). */
static int deliver_local(const char *room, const wsock_conn *except, int is_text,
                         const void *data, apr_size_t len)
{
    apr_os_thread_t self = apr_os_thread_current();
    wsock_conn *own = NULL;
    wsock_shared shared;
    size_t n = 0;
    room_t *rm;
    int sent = 0;

    apr_thread_mutex_lock(rooms_mutex);
    rm = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    if (rm && snapshot_reserve((size_t)rm->n)) {
        for (int i = 0; i < rm->n; i++) {
            wsock_conn *m = rm->m[i].wc;

            if (m == except) {
                continue;
            }
            wsock_ref(m);           /* valid until this delivery is done */
            /* With the blocking driver a thread owns at most one
             * connection, and its sends block: its own goes last.  A loop
             * thread owns many, and never blocks on them. */
            if (apr_os_thread_equal(wsock_conn_owner(m), self)
                && __atomic_load_n(&m->loop, __ATOMIC_ACQUIRE) == NULL) {
                own = m;
            }
            else {
                snapshot[n++] = m;
            }
        }
    }
    apr_thread_mutex_unlock(rooms_mutex);

    wsock_shared_init(&shared, is_text, data, len);
    for (size_t i = 0; i < n; i++) {
        if (wsock_output_send_shared(snapshot[i], &shared) == APR_SUCCESS) {
            sent++;
        }
        if (i) {
            wsock_unref(snapshot[i]);
        }
    }
    if (n) {
        /* (Tests read this: a compressed broadcast is compressed once per
         * form, not once per member.) */
        ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, snapshot[0]->c,
                      WSOCKNO(1305) "room %s: a %" APR_SIZE_T_FMT "-byte message to %"
                      APR_SIZE_T_FMT " member(s), serialized in %d "
                      "shared form(s)", room, len, n, shared.n);
        wsock_unref(snapshot[0]);
    }
    wsock_shared_release(&shared);  /* the members hold their own references */
    if (own) {
        if (wsock_output_send(own, is_text, data, len) == APR_SUCCESS) {
            sent++;
        }
        wsock_unref(own);
    }
    if (snapshot_cap > SNAPSHOT_KEEP) {
        free(snapshot);             /* a rare huge room: give it back */
        snapshot = NULL;
        snapshot_cap = 0;
    }
    return sent;
}

int wsock_room_count(const char *room)
{
    int n = valid_name(room) ? wsock_bus_room_count(room) : 0;

    return n < 0 ? wsock_room_count_local(room) : n;
}

int wsock_publish(const char *room, int is_text, const void *data, apr_size_t len)
{
    return wsock_publish_except(room, NULL, is_text, data, len);
}

/* Checks what every publisher must get right, once, not per member. */
static int publishable(const char *room, int is_text, const void *data, apr_size_t len)
{
    return public_name(room) && rooms_mutex != NULL
           && (!is_text || wsock_utf8_valid(data, len));
}

int wsock_publish_except(const char *room, const wsock_conn *except, int is_text,
                         const void *data, apr_size_t len)
{
    if (!publishable(room, is_text, data, len)) {
        return 0;
    }
    /* Other children first: their delivery threads work while this one
     * serves its own members. */
    wsock_bus_post(room, is_text, data, len);
    return deliver_local(room, except, is_text, data, len);
}

int wsock_publish_local(const char *room, const wsock_conn *except, int is_text,
                        const void *data, apr_size_t len)
{
    return publishable(room, is_text, data, len)
           ? deliver_local(room, except, is_text, data, len) : 0;
}

int wsock_rooms_publish_reserved_local(const char *room, int is_text, const void *data,
                                       apr_size_t len)
{
    return room && room[0] == WSOCK_ROOM_RESERVED && valid_name(room) && rooms_mutex
           ? deliver_local(room, NULL, is_text, data, len) : 0;
}

void wsock_rooms_deliver(const char *room, int is_text, const void *data, apr_size_t len)
{
    if (room[0] == WSOCK_ROOM_RESERVED) {
        wsock_connaddr_deliver(room, data, len);    /* a connection's own */
    }
    else if (rooms_mutex != NULL) {
        deliver_local(room, NULL, is_text, data, len);
    }
}
