/*
 * wsock_sampler.c — the dashboard's per-child sampler thread (see
 * wsock_sampler.h).  It waits on a condition variable with a timeout to
 * the next second (and is woken at once to stop); each turn is a bounded
 * amount of memory work: the counters' sum (wsock_counters_read), this
 * child's top rooms (wsock_rooms_top, a short hold of the rooms mutex),
 * and, only while someone watches, one JSON snapshot handed to the room.
 */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "wsock.h"
#include "wsock_counters.h"
#include "wsock_history.h"
#include "wsock_log.h"
#include "wsock_rooms.h"
#include "wsock_sampler.h"
#include "wsock_snapshot_json.h"
#include "wsock_threads.h"

APLOG_USE_MODULE(wsock);

static struct {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    apr_thread_t *thread;
    int stop;                       /* under mutex */
} smp;

typedef struct {
    wsock_room_size room[WSOCK_HISTORY_ROOMS];
    int n;
} top_rooms;

static void add_room(void *baton, const char *name, int members)
{
    top_rooms *t = baton;

    if (t->n < WSOCK_HISTORY_ROOMS) {
        apr_cpystrn(t->room[t->n].name, name, sizeof(t->room[t->n].name));
        t->room[t->n].members = (apr_uint64_t)members;
        t->n++;
    }
}

char *wsock_sampler_snapshot(size_t *len)
{
    wsock_counts *c = malloc(sizeof(*c));
    wsock_room_size *rooms = malloc(WSOCK_STATUS_ROOMS_SHOWN * sizeof(*rooms));
    char *json = NULL;
    int n;

    if (c && rooms) {
        wsock_counters_read(c);
        n = wsock_history_rooms_read(rooms, WSOCK_STATUS_ROOMS_SHOWN,
                                     (apr_int64_t)apr_time_sec(c->now));
        json = wsock_snapshot_json(c, rooms, n, len);
    }
    free(rooms);
    free(c);
    return json;
}

static void sample_turn(wsock_counts *c, apr_int64_t sec)
{
    top_rooms *top = malloc(sizeof(*top));
    wsock_sample s;
    char *json;
    size_t len;

    if (top) {
        top->n = 0;
        wsock_rooms_top(WSOCK_HISTORY_ROOMS, add_room, top);
        wsock_history_rooms_put(top->room, top->n, sec);
        free(top);
    }
    if (wsock_history_claim(sec)) {
        wsock_counters_read(c);
        wsock_history_sample_of(&s, c, sec);
        /* the others' lists may be a second old: they tick at the same time */
        s.nrooms = (apr_uint64_t)wsock_history_rooms_read(s.room, WSOCK_SAMPLE_ROOMS, sec);
        wsock_history_put(&s);
    }
    if (wsock_room_count_local(WSOCK_STATUS_ROOM) > 0
        && (json = wsock_sampler_snapshot(&len)) != NULL) {
        wsock_rooms_publish_reserved_local(WSOCK_STATUS_ROOM, 1, json, len);
        free(json);
    }
}

static void *APR_THREAD_FUNC sampler_main(apr_thread_t *th, void *data)
{
    wsock_counts *c = malloc(sizeof(*c));   /* ~10 KiB: not on the stack */
    apr_time_t now, next;

    (void)data;
    wsock_thread_name("wsock-sampler");       /* top -H; the signal-mask test */
    apr_thread_mutex_lock(smp.mutex);
    while (c && !smp.stop) {
        now = apr_time_now();
        next = apr_time_from_sec(apr_time_sec(now) + 1);
        while (!smp.stop && now < next) {
            apr_thread_cond_timedwait(smp.cond, smp.mutex, next - now);
            now = apr_time_now();
        }
        if (smp.stop) {
            break;
        }
        apr_thread_mutex_unlock(smp.mutex);
        sample_turn(c, (apr_int64_t)apr_time_sec(now));
        apr_thread_mutex_lock(smp.mutex);
    }
    apr_thread_mutex_unlock(smp.mutex);
    free(c);
    apr_thread_exit(th, APR_SUCCESS);
    return NULL;
}

static apr_status_t sampler_stop(void *data)
{
    apr_status_t rv;

    (void)data;
    apr_thread_mutex_lock(smp.mutex);
    smp.stop = 1;
    apr_thread_cond_signal(smp.cond);
    apr_thread_mutex_unlock(smp.mutex);
    apr_thread_join(&rv, smp.thread);
    smp.thread = NULL;
    return APR_SUCCESS;
}

void wsock_sampler_start(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    smp.stop = 0;
    rv = apr_thread_mutex_create(&smp.mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&smp.cond, pchild);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&smp.thread, NULL, sampler_main, NULL, pchild);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     WSOCKNO(1452) "cannot start the dashboard's sampler thread: this "
                     "child writes no history and its dashboards get no updates");
        return;
    }
    /* Before pchild's sub-pools (the thread's) go, and, registered after
     * the loop threads' and the bus's, before they stop. */
    apr_pool_pre_cleanup_register(pchild, NULL, sampler_stop);
}
