/*
 * wsock_bus.c — the in-server bus (see wsock_bus.h and docs/bus.md).
 *
 * Shared memory, made once by the parent and kept in its retained data:
 *
 *   [bus_shm: lock, wake-up word, counters][wake-up words per child]
 *   [room table (WSockBusRooms)][message ring (WSockBusSize)]
 *
 * Publishing takes the lock once: it asks the room table which other
 * children have members in the room and, if any, appends to the ring and
 * marks and wakes those children only (wsock_wakers.h); a room the table
 * cannot tell about (members of it did not fit) wakes every child.  Each
 * child's delivery thread sleeps on its own word (a futex); woken, it
 * skips what was posted since it last caught up and was not for it,
 * copies the rest under the lock, and delivers it outside the lock to its
 * own members through their outbound queues (so WSockSendQueue applies to
 * bus traffic as to any other).  A child that found no word of its own
 * (more than WAKERS children) sleeps on the shared word, which every post
 * bumps, and reads everything.
 *
 * Nothing slow happens under the lock: no log line, no system call but the
 * futex wake-ups after it.  What the lock holders notice (a lock recovered
 * from a dead process, the room table filling up) is counted in the shared
 * memory and logged by the parent's monitor; a dead child is forgotten
 * when the MPM reports it (child_status), and a sweep that checks pids
 * outside the lock is only the safety net.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <apr_shm.h>
#include <apr_thread_proc.h>

#include "wsock_bus.h"
#include "wsock_keyhash.h"
#include "wsock_log.h"
#include "wsock_ring.h"
#include "wsock_roomtab.h"
#include "wsock_shmsync.h"
#include "wsock_threads.h"
#include "wsock_wakers.h"
#include "wsock_counters.h"

APLOG_USE_MODULE(wsock);

#define ROOM_MAX 128                /* as wsock_rooms.c */
#define BATCH_MIN (64 * 1024)       /* a delivery thread's copy buffer */
#define BATCH_KEEP (1024 * 1024)    /* shrunk back to BATCH_MIN above this */
#define WAIT_MS 1000                /* a missed wake-up costs at most this */
#define WAKERS 1024                 /* children with a wake-up word of their own */
#define TARGETS 64                  /* more children in one room: wake them all */
#define SWEEP_WINDOW 4096           /* room table slots the monitor looks at per run */
/* Named for the layout of the shared memory: after an upgrade, a restart
 * must not hand the new code memory laid out by the old one (a new bus is
 * made; the old one goes when the server stops).  3: the room table's key,
 * marks and records of processes, the counters said by the monitor. */
#define RETAINED_KEY "mod_wsock.bus.3"

typedef struct {
    pthread_mutex_t lock;
    uint32_t gen;                   /* futex word: bumped by every post */
    uint32_t waiters;               /* delivery threads asleep on gen */
    uint64_t too_large;             /* messages the ring could not take */
    /* What lock holders notice, counted under the lock and logged after it
     * by whoever takes the lock next outside the rooms' mutex (a delivery
     * thread, the monitor): once, by the first. */
    uint32_t owner_died;            /* times the lock was taken from a dead owner */
    uint32_t owner_died_said;
    uint32_t went_full_said;        /* the room table's went_full last said */
    uint32_t full_said;             /* the room table was said to be full */
    size_t wakers_off, tab_off, ring_off;   /* from the start of this struct */
} bus_shm;

/* Kept by the parent across restarts: the shared memory, and where its
 * sweep goes on. */
typedef struct {
    apr_shm_t *shm;
    apr_size_t ring_size;
    apr_uint32_t room_slots;
    int32_t *pids;                  /* the sweep's list (parent memory) */
    int pids_max;
    uint32_t cursor;                /* where the sweep goes on in the room table */
} bus_retained;

/* What the lock holders noticed since it was last said (see bus_shm). */
typedef struct {
    uint32_t owner_died;            /* new times the lock was recovered */
    int full;                       /* the room table became full */
    int room_again;                 /* it has room again */
    uint32_t outside, unmarked;     /* members outside it; of them, unmarked */
} bus_news;

/* Set in the parent by post_config; children inherit them. */
static bus_retained *kept;
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

/* Takes the bus lock.  A process that died holding it is only counted
 * here (the parent's monitor reports it): callers may hold the child-wide
 * rooms mutex, where nothing may log. */
static void bus_lock(void)
{
    if (wsock_shmlock_lock(&bus->lock)) {
        bus->owner_died++;
    }
}

/* Under the lock: what is to be said, marked as said (memory only). */
static void take_news(bus_news *n)
{
    n->outside = wsock_roomtab_outside(tab);
    n->unmarked = tab->unmarked;
    n->owner_died = bus->owner_died - bus->owner_died_said;
    bus->owner_died_said = bus->owner_died;
    n->full = n->room_again = 0;
    if (!bus->full_said && (n->outside > 0 || tab->went_full != bus->went_full_said)) {
        n->full = bus->full_said = 1;
    }
    else if (bus->full_said && n->outside == 0) {
        n->room_again = 1;
        bus->full_said = 0;
    }
    bus->went_full_said = tab->went_full;
}

/* After the lock: says it. */
static void tell_news(const bus_news *n)
{
    if (n->owner_died) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                     WSOCKNO(0506) "a process died holding the room bus lock (%u time(s)); "
                     "messages it was posting may be lost", n->owner_died);
    }
    if (n->full) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server,
                     WSOCKNO(0507) "the room bus's table is full (WSockBusRooms %u (room, "
                     "child process) pairs): %u member(s) did not fit; their rooms wake "
                     "every child and their sizes are per child until they are left%s; "
                     "raise WSockBusRooms", tab->nslots, n->outside,
                     n->unmarked ? ", and some rooms found no mark either, so every room "
                                   "does" : "");
    }
    if (n->room_again) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, main_server,
                     WSOCKNO(0509) "the room bus's table has room again: every room's "
                     "size is exact");
    }
}

/* Records for more child processes than the MPM can run at once, so that
 * each one finds a record even while dead ones are still being forgotten. */
static uint32_t children_records(void)
{
    int limit = 0;
    uint32_t n = 64;

    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS || limit < 1) {
        limit = 256;
    }
    while (n < 2u * (uint32_t)limit && n < (1u << 20)) {
        n <<= 1;
    }
    return n;
}

/* Lays the bus out over new shared memory; 0 or an error. */
static apr_status_t bus_init(bus_shm *b, apr_size_t head, apr_size_t tab_bytes,
                             uint32_t slots, uint32_t nchildren, apr_size_t size)
{
    wsock_hashkey key;
    apr_status_t rv = wsock_hashkey_random(&key);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    memset(b, 0, head);             /* the header and the wake-up words */
    b->wakers_off = APR_ALIGN(sizeof(bus_shm), 64);
    b->tab_off = head;
    b->ring_off = head + tab_bytes;
    /* One key for the life of the memory: every child and every
     * generation that maps it hashes room names alike. */
    wsock_roomtab_init((wsock_roomtab *)((char *)b + b->tab_off), slots, nchildren, &key);
    wsock_ring_init((wsock_ring *)((char *)b + b->ring_off), size);
    return wsock_shmlock_init(&b->lock);
}

apr_status_t wsock_bus_post_config(server_rec *s, apr_size_t size, apr_uint32_t rooms)
{
    apr_size_t head, tab_bytes, total;
    uint32_t nchildren;
    apr_status_t rv;

    main_server = s;
    kept = ap_retained_data_get(RETAINED_KEY);
    if (kept == NULL) {
        kept = ap_retained_data_create(RETAINED_KEY, sizeof(*kept));
    }
    if (kept->shm != NULL) {
        if (kept->ring_size != size) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         WSOCKNO(0502) "WSockBusSize %" APR_SIZE_T_FMT " takes effect "
                         "when the server is stopped and started (restarts keep the "
                         "bus); it keeps %" APR_SIZE_T_FMT " bytes",
                         size, kept->ring_size);
        }
        if (kept->room_slots != rooms) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         WSOCKNO(0510) "WSockBusRooms %u takes effect when the server "
                         "is stopped and started (restarts keep the bus); it keeps %u",
                         rooms, kept->room_slots);
        }
    }
    else {
        nchildren = children_records();
        head = APR_ALIGN(sizeof(bus_shm), 64) + APR_ALIGN(WAKERS * sizeof(wsock_waker), 64);
        tab_bytes = APR_ALIGN(wsock_roomtab_bytes(rooms, nchildren), 64);
        total = head + tab_bytes + size;
        /* The process pool: the bus outlives every generation of children. */
        rv = apr_shm_create(&kept->shm, total, NULL, s->process->pool);
        if (rv == APR_SUCCESS) {
            rv = bus_init(apr_shm_baseaddr_get(kept->shm), head, tab_bytes, rooms, nchildren,
                          size);
            if (rv != APR_SUCCESS) {
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
        kept->room_slots = rooms;
        kept->pids_max = (int)(WAKERS + nchildren + SWEEP_WINDOW);
        kept->pids = apr_palloc(s->process->pool, (apr_size_t)kept->pids_max * sizeof(int32_t));
        kept->cursor = 0;
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
 * the list was cut or the room table cannot say, -1), and lists them in
 * targets; returns how many (-1: all). */
static int mark_targets(const int32_t *pids, int holders, uint64_t pos, uint32_t seq,
                        wsock_waker **targets)
{
    int n = 0;

    if (holders < 0 || holders > TARGETS) {
        for (uint32_t i = 0; i < WAKERS; i++) {
            if (wakers[i].pid > 0 && wakers[i].pid != my_pid) {
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
    uint64_t hash, pos;
    wsock_waker *targets[TARGETS];
    int32_t pids[TARGETS];
    uint32_t seq;
    int holders, n = 0, posted = 0, too_large = 0;

    if (bus == NULL || deliverer == NULL) {
        return;
    }
    hash = wsock_roomtab_hash(tab, room, room_len);     /* before the lock */
    bus_lock();
    holders = wsock_roomtab_holders(tab, hash, my_pid, pids, TARGETS);
    if (holders != 0) {
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
                if (wakers[i].pid > 0 && wakers[i].pid != my_pid) {
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
        wsock_count(WSOCK_C_BUS_TOO_LARGE, 1);
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
    uint64_t hash;

    if (bus == NULL || my_pid == 0) {
        return;
    }
    hash = wsock_roomtab_hash(tab, room, strlen(room));
    bus_lock();
    /* A pair that does not fit is counted in the table (went_full, its
     * room's mark): a delivery thread, or the parent's monitor, says so
     * after taking the lock, since no log line may be written here. */
    wsock_roomtab_add(tab, hash, my_pid, delta);
    wsock_shmlock_unlock(&bus->lock);
}

int wsock_bus_room_count(const char *room)
{
    uint64_t hash;
    int n;

    if (bus == NULL || my_pid == 0) {
        return -1;
    }
    hash = wsock_roomtab_hash(tab, room, strlen(room));
    bus_lock();
    n = wsock_roomtab_count(tab, hash, my_pid, NULL);
    wsock_shmlock_unlock(&bus->lock);
    return n;
}

/* ---- delivery ---------------------------------------------------------- */

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
        wsock_count(WSOCK_C_BUS_LAPS, 1);
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

    wsock_thread_name("wsock-bus");       /* top -H; the signal-mask test */
    while (!stopping && buf) {
        size_t len, need;
        int lapped = 0;
        uint32_t gen;
        bus_news news;

        bus_lock();
        /* At least once every WAIT_MS: what the rooms' threads, which may
         * not log, counted under the lock. */
        take_news(&news);
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
        tell_news(&news);
        if (need) {                 /* one record larger than buf */
            unsigned char *bigger = realloc(buf, need);
            if (bigger) {
                buf = bigger;
                cap = need;
                /* That record is still to be read, at pos: not caught up,
                 * or the next round would skip it to the head. */
                caught_up = 0;
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
    wsock_wakers_release(wakers, WAKERS, my_pid);
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
    /* The hash's first use fetches OpenSSL's SipHash: here, not under the
     * rooms' mutex in the first join. */
    wsock_roomtab_hash(tab, "", 0);
    start = apr_palloc(pchild, 2 * sizeof(*start));
    bus_lock();
    wsock_roomtab_forget(tab, my_pid);  /* a dead child's pid, reused */
    my_waker = wsock_wakers_claim(wakers, WAKERS, my_pid);
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

/* Forgets what a child process that is gone held: its room counts and its
 * wake-up word. */
static void forget_child(server_rec *s, int32_t pid, const char *how)
{
    int forgotten;

    bus_lock();
    forgotten = wsock_roomtab_forget(tab, pid);
    wsock_wakers_release(wakers, WAKERS, pid);
    wsock_shmlock_unlock(&bus->lock);
    if (forgotten) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     WSOCKNO(0508) "room bus: forgot %d room member(s) of child process %ld, "
                     "which ended without leaving (%s)", forgotten, (long)pid, how);
    }
}

void wsock_bus_child_exited(server_rec *s, pid_t pid)
{
    if (bus != NULL && pid > 0) {
        forget_child(s, (int32_t)pid, "reported by the MPM");
    }
}

static int process_alive(int32_t pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

static int by_pid(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void wsock_bus_monitor(server_rec *s)
{
    bus_news news;
    int n, m;

    if (bus == NULL) {
        return;
    }
    main_server = s;
    /* Under the lock: memory only.  The pids are checked after it. */
    bus_lock();
    n = wsock_wakers_pids(wakers, WAKERS, kept->pids, kept->pids_max);
    n += wsock_roomtab_pids(tab, &kept->cursor, SWEEP_WINDOW, kept->pids + n,
                            kept->pids_max - n);
    take_news(&news);               /* if no delivery thread said it */
    wsock_shmlock_unlock(&bus->lock);

    tell_news(&news);
    /* The safety net: children the MPM did not report gone (the parent is
     * the only one to start children, and it is here, so a pid found dead
     * cannot be a new child's before it is forgotten). */
    qsort(kept->pids, (size_t)n, sizeof(int32_t), by_pid);
    for (int i = 0; i < n; i = m) {
        for (m = i + 1; m < n && kept->pids[m] == kept->pids[i]; m++) {
        }
        if (kept->pids[i] > 0 && !process_alive(kept->pids[i])) {
            forget_child(s, kept->pids[i], "found by the sweep");
        }
    }
}

/* ---- usage (server-status, wsock-metrics) ----------------------------- */

#define PEEK(p) __atomic_load_n((p), __ATOMIC_RELAXED)

void wsock_bus_usage_read(wsock_bus_usage *u)
{
    uint64_t head, tail;
    uint32_t i, used = 0;

    memset(u, 0, sizeof(*u));
    if (bus == NULL) {
        return;
    }
    /* Without the lock, on purpose: a report must not make publishers
     * wait, and a figure that is one post stale is still right for it.
     * Each field is read whole (relaxed atomic loads), but the fields are
     * not one snapshot: used is capped at the ring's size for that. */
    u->on = 1;
    u->ring_size = ring->size;
    head = PEEK(&ring->head);
    tail = PEEK(&ring->tail);
    u->ring_used = head > tail ? head - tail : 0;
    if (u->ring_used > u->ring_size) {
        u->ring_used = u->ring_size;
    }
    u->ring_records = PEEK(&ring->records);
    u->room_slots = tab->nslots;
    for (i = 0; i < tab->nslots; i++) {
        if (PEEK(&tab->slots[i].count) != 0) {
            used++;
        }
    }
    u->room_slots_used = used;
    u->members_outside = PEEK(&tab->outside);
}
