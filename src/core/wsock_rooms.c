/*
 * wsock_rooms.c — rooms of this child process.
 *
 * One mutex guards every room and every connection's room list.  A
 * connection leaves its rooms under that mutex before anything of it is
 * freed, so a publisher holding the mutex may hand each member a message
 * with wsock_send(): that only queues it (and wakes the owner) for members
 * other threads own.  The publisher's own connection is served after the
 * mutex is released, because on the owning thread a send may write, and a
 * write to a slow client must never hold up every other publisher.
 *
 * Membership is an array per room (swap-remove) plus the list of room
 * names on the connection, so leaving is O(rooms joined x room size);
 * fine for rooms of thousands.
 *
 * Members in other child processes are reached through the bus
 * (src/bus): a publisher posts there, and each child's bus thread hands
 * what others posted to wsock_rooms_deliver().  Every change of this
 * child's member count is reported to the bus, which knows the room sizes
 * of the whole server.
 */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "wsock_bus.h"
#include "wsock_output.h"
#include "wsock_rooms.h"

#define WSOCK_ROOM_NAME_MAX 128

/* malloc'ed, and freed when its last member leaves: memory follows the
 * rooms in use, however many names clients come up with over time. */
typedef struct {
    char *name;
    wsock_conn **m;
    int n, cap;
} room_t;

static apr_thread_mutex_t *rooms_mutex;
static apr_hash_t *rooms;          /* name -> room_t */

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
    rooms = apr_hash_make(pchild);
    apr_pool_cleanup_register(pchild, NULL, free_rooms, apr_pool_cleanup_null);
    return apr_thread_mutex_create(&rooms_mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
}

static int valid_name(const char *room)
{
    size_t n = room ? strlen(room) : 0;
    return n > 0 && n <= WSOCK_ROOM_NAME_MAX;
}

static int find_member(const room_t *rm, const wsock_conn *wc)
{
    for (int i = 0; i < rm->n; i++) {
        if (rm->m[i] == wc) {
            return i;
        }
    }
    return -1;
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
    }
    return rm;
}

apr_status_t wsock_join(wsock_conn *wc, const char *room)
{
    apr_status_t rv = APR_SUCCESS;
    room_t *rm;

    if (!valid_name(room) || rooms_mutex == NULL) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(rooms_mutex);
    rm = room_get(room);
    if (rm == NULL) {
        rv = APR_ENOMEM;
    }
    else if (find_member(rm, wc) < 0) {
        if (rm->n == rm->cap) {
            int cap = rm->cap ? rm->cap * 2 : 8;
            wsock_conn **m = realloc(rm->m, (size_t)cap * sizeof(*m));
            if (m == NULL) {
                rv = APR_ENOMEM;
                goto out;
            }
            rm->m = m;
            rm->cap = cap;
        }
        rm->m[rm->n++] = wc;
        wsock_bus_room_delta(room, 1);
        if (wc->rooms == NULL) {
            wc->rooms = apr_array_make(wc->pool, 2, sizeof(const char *));
        }
        /* The connection's pool keeps its own copy of the name: the room
         * itself may be freed while the name is still being compared. */
        APR_ARRAY_PUSH(wc->rooms, const char *) = apr_pstrdup(wc->pool, room);
    }
out:
    apr_thread_mutex_unlock(rooms_mutex);
    return rv;
}

/* Under rooms_mutex. */
static void leave_locked(wsock_conn *wc, const char *room)
{
    room_t *rm = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    int i;

    if (rm && (i = find_member(rm, wc)) >= 0) {
        rm->m[i] = rm->m[--rm->n];
        wsock_bus_room_delta(room, -1);
        if (rm->n == 0) {
            apr_hash_set(rooms, rm->name, APR_HASH_KEY_STRING, NULL);
            free(rm->m);
            free(rm->name);
            free(rm);
        }
    }
    for (i = 0; wc->rooms && i < wc->rooms->nelts; i++) {
        const char **r = (const char **)wc->rooms->elts;
        if (strcmp(r[i], room) == 0) {
            r[i] = r[--wc->rooms->nelts];
            break;
        }
    }
}

void wsock_leave(wsock_conn *wc, const char *room)
{
    if (!valid_name(room) || rooms_mutex == NULL) {
        return;
    }
    apr_thread_mutex_lock(rooms_mutex);
    leave_locked(wc, room);
    apr_thread_mutex_unlock(rooms_mutex);
}

void wsock_rooms_leave_all(wsock_conn *wc)
{
    if (rooms_mutex == NULL || wc->rooms == NULL) {
        return;
    }
    apr_thread_mutex_lock(rooms_mutex);
    while (wc->rooms->nelts) {
        leave_locked(wc, APR_ARRAY_IDX(wc->rooms, 0, const char *));
    }
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

/* Hands the message to every member of room in this child but except.
 * Members owned by other threads get the frames serialized once and shared
 * by reference (wsock_output_send_shared). */
static int deliver_local(const char *room, const wsock_conn *except, int is_text,
                         const void *data, apr_size_t len)
{
    apr_os_thread_t self = apr_os_thread_current();
    wsock_conn *own = NULL;
    wsock_frames *shared = NULL;
    room_t *rm;
    int sent = 0;

    apr_thread_mutex_lock(rooms_mutex);
    rm = apr_hash_get(rooms, room, APR_HASH_KEY_STRING);
    for (int i = 0; rm && i < rm->n; i++) {
        if (rm->m[i] == except) {
            continue;
        }
        /* With the blocking driver a thread owns at most one connection,
         * and its sends may block.  A loop thread owns many, and never
         * blocks on them: its own members are served right here. */
        if (apr_os_thread_equal(rm->m[i]->owner, self) && rm->m[i]->loop == NULL) {
            own = rm->m[i];         /* served below, without the mutex */
        }
        else if (wsock_output_send_shared(rm->m[i], &shared, is_text, data, len)
                 == APR_SUCCESS) {
            sent++;
        }
    }
    apr_thread_mutex_unlock(rooms_mutex);
    wsock_frames_release(shared);   /* the members hold their own references */
    /* Still a member: only its own thread could take it out, and that
     * thread is this one. */
    if (own && wsock_output_send(own, is_text, data, len) == APR_SUCCESS) {
        sent++;
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
    return valid_name(room) && rooms_mutex != NULL
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

void wsock_rooms_deliver(const char *room, int is_text, const void *data, apr_size_t len)
{
    if (rooms_mutex != NULL) {
        deliver_local(room, NULL, is_text, data, len);
    }
}
