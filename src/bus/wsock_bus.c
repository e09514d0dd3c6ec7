/*
 * wsock_bus.c — the in-server bus (see wsock_bus.h and docs/bus.md).
 *
 * Shared memory, made once by the parent and kept in its retained data:
 *
 *   [bus_shm: lock, wake-up word, counters][wake-up words per child]
 *   [room table][message ring]
 *
 * Publishing takes the lock once: it asks the room table which other
 * children have members in the room and, if any, appends to the ring and
 * marks and wakes those children only (wsock_wakers.h).  Each child's
 * delivery thread sleeps on its own word (a futex); woken, it skips what
 * was posted since it last caught up and was not for it, copies the rest
 * under the lock, and delivers it outside the lock to its own members
 * through their outbound queues (so WSockSendQueue applies to bus traffic
 * as to any other).  A child that found no word of its own (more than
 * WAKERS children) sleeps on the shared word, which every post bumps, and
 * reads everything.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_shm.h>
#include <apr_thread_proc.h>

#include "wsock_bus.h"
#include "wsock_log.h"
#include "wsock_ring.h"
#include "wsock_roomtab.h"
#include "wsock_shmsync.h"
#include "wsock_wakers.h"

APLOG_USE_MODULE(wsock);

#define ROOM_SLOTS 16384            /* (room, child) pairs: 256 KiB */
#define ROOM_MAX 128                /* as wsock_rooms.c */
#define BATCH_MIN (64 * 1024)       /* a delivery thread's copy buffer */
#define BATCH_KEEP (1024 * 1024)    /* shrunk back to BATCH_MIN above this */
#define WAIT_MS 1000                /* a missed wake-up costs at most this */
#define WAKERS 1024                 /* children with a wake-up word of their own */
#define TARGETS 64                  /* more children in one room: wake them all */
/* Named for the layout of the shared memory: after an upgrade, a graceful
 * restart must not hand the new code memory laid out by the old one (a new
 * bus is made; the old one goes at the next full restart). */
#define RETAINED_KEY "mod_wsock.bus.2"

typedef struct {
    pthread_mutex_t lock;
    uint32_t gen;                   /* futex word: bumped by every post */
    uint32_t waiters;               /* delivery threads asleep on gen */
    uint64_t too_large;             /* messages the ring could not take */
    size_t wakers_off, tab_off, ring_off;   /* from the start of this struct */
} bus_shm;

typedef struct {
    apr_shm_t *shm;
    apr_size_t ring_size;
} bus_retained;

/* Set in the parent by post_config; children inherit them. */
static bus_shm *bus;
static wsock_waker *wakers;
static wsock_roomtab *tab;
static wsock_ring *ring;

/* This child's delivery thread. */
static apr_thread_t *deliverer;
static volatile int stopping;
static int32_t my_pid;
static wsock_waker *my_waker;       /* NULL: this child sleeps on bus->gen */
static server_rec *main_server;
static void (*deliver_fn)(const char *room, int is_text, const void *data, apr_size_t len);

void wsock_bus_on_deliver(void (*deliver)(const char *room, int is_text, const void *data,
                                          apr_size_t len))
{
    deliver_fn = deliver;
}

/* Takes the bus lock; says so once if a process died holding it. */
static void bus_lock(void)
{
    if (wsock_shmlock_lock(&bus->lock)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                     WSOCKNO(0506) "a process died holding the room bus lock; "
                     "messages it was posting may be lost");
    }
}

apr_status_t wsock_bus_post_config(server_rec *s, apr_size_t size)
{
    bus_retained *kept = ap_retained_data_get(RETAINED_KEY);
    apr_size_t head, total;
    apr_status_t rv;

    main_server = s;
    if (kept == NULL) {
        kept = ap_retained_data_create(RETAINED_KEY, sizeof(*kept));
    }
    if (kept->shm != NULL) {
        if (kept->ring_size != size) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         WSOCKNO(0502) "WSockBusSize %" APR_SIZE_T_FMT " takes effect "
                         "after a full restart; the bus keeps %" APR_SIZE_T_FMT " bytes",
                         size, kept->ring_size);
        }
    }
    else {
        head = APR_ALIGN(sizeof(bus_shm), 64) + APR_ALIGN(WAKERS * sizeof(wsock_waker), 64);
        total = head + APR_ALIGN(wsock_roomtab_bytes(ROOM_SLOTS), 64) + size;
        /* The process pool: the bus outlives every generation of children. */
        rv = apr_shm_create(&kept->shm, total, NULL, s->process->pool);
        if (rv == APR_SUCCESS) {
            bus_shm *b = apr_shm_baseaddr_get(kept->shm);
            memset(b, 0, head);     /* the header and the wake-up words */
            rv = wsock_shmlock_init(&b->lock);
            b->wakers_off = APR_ALIGN(sizeof(bus_shm), 64);
            b->tab_off = head;
            b->ring_off = head + APR_ALIGN(wsock_roomtab_bytes(ROOM_SLOTS), 64);
            wsock_roomtab_init((wsock_roomtab *)((char *)b + b->tab_off), ROOM_SLOTS);
            wsock_ring_init((wsock_ring *)((char *)b + b->ring_off), size);
            if (rv != 0) {
                apr_shm_destroy(kept->shm);
            }
        }
        if (rv != APR_SUCCESS) {
            kept->shm = NULL;
            bus = NULL;
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                         WSOCKNO(0501) "cannot create the room bus (%" APR_SIZE_T_FMT
                         " bytes of shared memory); rooms reach one child process only",
                         total);
            return rv;
        }
        kept->ring_size = size;
    }
    bus = apr_shm_baseaddr_get(kept->shm);
    wakers = (wsock_waker *)((char *)bus + bus->wakers_off);
    tab = (wsock_roomtab *)((char *)bus + bus->tab_off);
    ring = (wsock_ring *)((char *)bus + bus->ring_off);
    return APR_SUCCESS;
}

/* ---- posting ----------------------------------------------------------- */

/* Bumps a wake-up word, and wakes whoever sleeps on it. */
static void wake(uint32_t *gen, uint32_t *asleep)
{
    __atomic_add_fetch(gen, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(asleep, __ATOMIC_SEQ_CST)) {
        wsock_futex_wake_all(gen);
    }
}

/* Under the lock, for a record just put at pos with number seq: marks the
 * children that hold the room (pids, holders of them: all children when
 * the list was cut or the room table cannot say), and lists them in
 * targets; returns how many (-1: all). */
static int mark_targets(const int32_t *pids, int holders, uint64_t pos, uint32_t seq,
                        wsock_waker **targets)
{
    int n = 0;

    if (tab->overflow || holders > TARGETS) {
        for (uint32_t i = 0; i < WAKERS; i++) {
            if (wakers[i].pid != 0 && wakers[i].pid != my_pid) {
                wsock_wakers_mark(&wakers[i], pos, seq);
            }
        }
        return -1;
    }
    for (int i = 0; i < holders; i++) {
        if ((targets[n] = wsock_wakers_find(wakers, WAKERS, pids[i])) != NULL) {
            wsock_wakers_mark(targets[n++], pos, seq);
        }
    }
    return n;
}

void wsock_bus_post(const char *room, int is_text, const void *data, apr_size_t len)
{
    size_t room_len = strlen(room);
    uint64_t hash = wsock_roomtab_hash(room, room_len), pos;
    wsock_waker *targets[TARGETS];
    int32_t pids[TARGETS];
    uint32_t seq;
    int holders, n = 0, posted = 0, too_large = 0;

    if (bus == NULL || deliverer == NULL) {
        return;
    }
    bus_lock();
    holders = wsock_roomtab_holders(tab, hash, my_pid, pids, TARGETS);
    if (holders > 0 || tab->overflow) {
        pos = ring->head;           /* the record's, or a pad in front of it */
        seq = (uint32_t)ring->records;
        if (wsock_ring_put(ring, (uint32_t)my_pid, is_text ? WSOCK_RING_TEXT : 0,
                           room, room_len, data, len) == 0) {
            posted = 1;
            n = mark_targets(pids, holders, pos, seq, targets);
        }
        else {
            too_large = 1;
            bus->too_large++;
        }
    }
    wsock_shmlock_unlock(&bus->lock);
    if (posted) {
        /* After the unlock: a woken thread goes straight for the lock. */
        if (n < 0) {
            for (uint32_t i = 0; i < WAKERS; i++) {
                if (wakers[i].pid != 0 && wakers[i].pid != my_pid) {
                    wake(&wakers[i].gen, &wakers[i].asleep);
                }
            }
        }
        for (int i = 0; i < n; i++) {
            wake(&targets[i]->gen, &targets[i]->asleep);
        }
        wake(&bus->gen, &bus->waiters);     /* children without a word */
    }
    if (too_large) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                     WSOCKNO(0504) "a %" APR_SIZE_T_FMT "-byte message to room '%s' is "
                     "larger than the room bus takes (%" APR_SIZE_T_FMT " bytes: half of "
                     "WSockBusSize); members in other child processes miss it",
                     len, room, wsock_ring_max_message(ring) - room_len);
    }
}

/* ---- room sizes -------------------------------------------------------- */

void wsock_bus_room_delta(const char *room, int delta)
{
    int full;

    if (bus == NULL || my_pid == 0) {
        return;
    }
    bus_lock();
    full = wsock_roomtab_add(tab, wsock_roomtab_hash(room, strlen(room)), my_pid, delta) != 0
           && tab->overflow == 1;
    wsock_shmlock_unlock(&bus->lock);
    if (full) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                     WSOCKNO(0507) "the room bus's table of rooms is full (%d rooms x "
                     "child processes): room sizes are no longer exact, and every "
                     "message now goes through the bus", ROOM_SLOTS);
    }
}

int wsock_bus_room_count(const char *room)
{
    int n;

    if (bus == NULL || my_pid == 0) {
        return -1;
    }
    bus_lock();
    n = tab->overflow ? -1 : wsock_roomtab_count(tab, wsock_roomtab_hash(room, strlen(room)),
                                                 my_pid, NULL);
    wsock_shmlock_unlock(&bus->lock);
    return n;
}

/* ---- delivery ---------------------------------------------------------- */

static int process_alive(int32_t pid, void *baton)
{
    (void)baton;
    return kill(pid, 0) == 0 || errno != ESRCH;
}

static void deliver_batch(const unsigned char *batch, size_t len, uint32_t *next_seq)
{
    wsock_ring_msg m;
    size_t off = 0;
    uint32_t lost = 0;

    while (wsock_ring_next(batch, len, &off, &m)) {
        char room[ROOM_MAX + 1];

        lost += m.seq - *next_seq;  /* records overwritten before we read them */
        *next_seq = m.seq + 1;
        if ((int32_t)m.origin == my_pid || m.room_len == 0 || m.room_len > ROOM_MAX) {
            continue;               /* our own: delivered when posted */
        }
        memcpy(room, m.room, m.room_len);
        room[m.room_len] = '\0';
        if (deliver_fn) {
            deliver_fn(room, (m.flags & WSOCK_RING_TEXT) != 0, m.payload, m.len);
        }
    }
    if (lost) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                     WSOCKNO(0505) "this child's room bus delivery fell behind by more "
                     "than WSockBusSize: %u message(s) lost for its members", lost);
    }
}

static void *APR_THREAD_FUNC deliver_main(apr_thread_t *thd, void *data)
{
    uint64_t pos = ((uint64_t *)data)[0];
    uint32_t next_seq = (uint32_t)((uint64_t *)data)[1];
    size_t cap = BATCH_MIN;
    unsigned char *buf = malloc(cap);
    wsock_waker *w = my_waker;
    uint32_t *word = w ? &w->gen : &bus->gen;
    uint32_t *asleep = w ? &w->asleep : &bus->waiters;
    int caught_up = 1;              /* it starts at the head */

    while (!stopping && buf) {
        size_t len, need;
        int lapped = 0;
        uint32_t gen;

        bus_lock();
        if (w && caught_up) {
            /* What was posted since it caught up and is not for it is
             * skipped: it would be read for nothing, and delivered to
             * members who joined after it was posted. */
            if (w->pending && w->from_pos > pos) {
                pos = w->from_pos;
                next_seq = w->from_seq;
            }
            else if (!w->pending) {
                pos = ring->head;
                next_seq = (uint32_t)ring->records;
            }
            w->pending = 0;
        }
        len = wsock_ring_copy(ring, &pos, buf, cap, &lapped, &need);
        gen = __atomic_load_n(word, __ATOMIC_SEQ_CST);
        wsock_shmlock_unlock(&bus->lock);
        if (need) {                 /* one record larger than buf */
            unsigned char *bigger = realloc(buf, need);
            if (bigger) {
                buf = bigger;
                cap = need;
                continue;
            }
        }
        caught_up = len == 0 && !need;
        if (len == 0) {
            __atomic_add_fetch(asleep, 1, __ATOMIC_SEQ_CST);
            if (!stopping) {
                wsock_futex_wait(word, gen, WAIT_MS);
            }
            __atomic_sub_fetch(asleep, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        deliver_batch(buf, len, &next_seq);
        if (cap > BATCH_KEEP) {     /* a rare big message: give it back */
            unsigned char *smaller = realloc(buf, BATCH_MIN);
            if (smaller) {
                buf = smaller;
                cap = BATCH_MIN;
            }
        }
    }
    free(buf);
    (void)thd;
    return NULL;                    /* see wsock_loop.c: no apr_thread_exit */
}

static apr_status_t bus_child_stop(void *data)
{
    apr_status_t rv;

    (void)data;
    if (deliverer) {
        stopping = 1;
        wsock_futex_wake_all(my_waker ? &my_waker->gen : &bus->gen);
        apr_thread_join(&rv, deliverer);
        deliverer = NULL;
    }
    bus_lock();
    wsock_roomtab_forget(tab, my_pid);
    wsock_shmlock_unlock(&bus->lock);
    return APR_SUCCESS;
}

void wsock_bus_child_init(apr_pool_t *pchild, server_rec *s)
{
    uint64_t *start;
    apr_status_t rv;

    main_server = s;
    if (bus == NULL) {
        return;
    }
    my_pid = (int32_t)getpid();
    stopping = 0;
    start = apr_palloc(pchild, 2 * sizeof(*start));
    bus_lock();
    wsock_roomtab_forget(tab, my_pid);  /* a dead child's pid, reused */
    my_waker = wsock_wakers_claim(wakers, WAKERS, my_pid, process_alive, NULL);
    start[0] = ring->head;              /* only what is posted from now on */
    start[1] = ring->records;
    wsock_shmlock_unlock(&bus->lock);
    rv = apr_thread_create(&deliverer, NULL, deliver_main, start, pchild);
    if (rv != APR_SUCCESS) {
        deliverer = NULL;
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     WSOCKNO(0503) "cannot start this child's room bus thread; its "
                     "clients get room messages from this child only");
        return;
    }
    /* Before pchild's subpools go: rooms deliver into them. */
    apr_pool_pre_cleanup_register(pchild, NULL, bus_child_stop);
}

/* ---- the parent ---------------------------------------------------- */

void wsock_bus_monitor(server_rec *s)
{
    int cleared;

    if (bus == NULL) {
        return;
    }
    main_server = s;
    bus_lock();
    cleared = wsock_roomtab_sweep(tab, process_alive, NULL);
    wsock_shmlock_unlock(&bus->lock);
    if (cleared) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     WSOCKNO(0508) "room bus: forgot the members of %d room(s) held by "
                     "child processes that are gone", cleared);
    }
}
