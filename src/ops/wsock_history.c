/*
 * wsock_history.c — the dashboard's shared memory (see wsock_history.h):
 *
 *   [head][WSOCK_HISTORY_SECONDS samples][room slot per child]...
 *
 * A sample's place is its second modulo WSOCK_HISTORY_SECONDS; the
 * compare-and-swap on head->claimed gives each second one writer, so two
 * writers of one place would have to be ten minutes apart.  Room slots are
 * claimed by pid as the counters' slots are (wsock_counters.c).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <apr_strings.h>

#include "wsock_history.h"
#include "wsock_log.h"
#include "wsock_retained_shm.h"

APLOG_USE_MODULE(wsock);

#define RETAINED_KEY "mod_wsock.history.2"    /* named for the layout */
#define LAYOUT 0x77736802u                      /* "wsh" 2 */
#define ROOMS_FRESH 3                           /* seconds a room list counts */
#define READ_TRIES 4                            /* a reader's retries per entry */

typedef struct {
    apr_uint64_t seq;               /* odd while being written */
    wsock_sample s;
} sample_entry;

typedef struct {
    apr_uint32_t pid;               /* 0: free */
    apr_uint32_t pad;
    apr_uint64_t seq;               /* odd while being written */
    apr_int64_t t;                  /* the second of the list */
    apr_uint64_t n;
    wsock_room_size room[WSOCK_HISTORY_ROOMS];
} __attribute__((aligned(64))) room_slot;

typedef struct {
    apr_uint32_t layout;
    apr_uint32_t nslots;
    apr_int64_t claimed;            /* the latest second a sample was claimed for */
} __attribute__((aligned(64))) history_head;

/* The room slots follow the samples: they must start on a cache line. */
_Static_assert((sizeof(history_head) + WSOCK_HISTORY_SECONDS * sizeof(sample_entry)) % 64 == 0,
               "room slots misaligned");

static history_head *head;          /* NULL: no history */
static sample_entry *samples;
static room_slot *slots;
static room_slot *mine;

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* Copies whole words with relaxed atomics: a seqlock's data may be read
 * while it is written; the sequence number says whether to keep the copy. */
static void copy_words(void *dst, const void *src, size_t bytes)
{
    apr_uint64_t *d = dst;
    const apr_uint64_t *s = src;

    for (size_t i = 0; i < bytes / sizeof(*d); i++) {
        STORE(&d[i], LOAD(&s[i]));
    }
}

static void seq_write(apr_uint64_t *seq, void *dst, const void *src, size_t bytes)
{
    apr_uint64_t v = LOAD(seq);

    STORE(seq, v + 1);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    copy_words(dst, src, bytes);
    __atomic_store_n(seq, v + 2, __ATOMIC_RELEASE);
}

/* 1 with a whole copy, 0 when the writer kept changing it. */
static int seq_read(const apr_uint64_t *seq, void *dst, const void *src, size_t bytes)
{
    for (int i = 0; i < READ_TRIES; i++) {
        apr_uint64_t before = __atomic_load_n(seq, __ATOMIC_ACQUIRE);

        if (before & 1) {
            continue;
        }
        copy_words(dst, src, bytes);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LOAD(seq) == before) {
            return 1;
        }
    }
    return 0;
}

void wsock_history_post_config(server_rec *s)
{
    apr_size_t bytes;
    apr_status_t rv;
    int fresh;
    apr_uint32_t n;

    n = wsock_retained_slots();
    bytes = sizeof(history_head) + WSOCK_HISTORY_SECONDS * sizeof(sample_entry)
            + n * sizeof(room_slot);
    head = wsock_retained_shm(RETAINED_KEY, bytes, s, &fresh, &rv);
    if (head == NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     WSOCKNO(1450) "cannot create %" APR_SIZE_T_FMT " bytes of shared "
                     "memory for the dashboard's history: wsock-status shows live "
                     "values only, and no room sizes", bytes);
        return;
    }
    if (fresh) {
        head->layout = LAYOUT;
        head->nslots = n;
    }
    samples = (sample_entry *)(head + 1);
    slots = (room_slot *)(samples + WSOCK_HISTORY_SECONDS);
}

void wsock_history_child_exited(pid_t pid)
{
    if (head == NULL || pid <= 0) {
        return;
    }
    for (apr_uint32_t i = 0; i < head->nslots; i++) {
        if (LOAD(&slots[i].pid) == (apr_uint32_t)pid) {
            STORE(&slots[i].t, 0);
            __atomic_store_n(&slots[i].pid, 0, __ATOMIC_RELEASE);
            return;
        }
    }
}

static apr_status_t history_child_exit(void *data)
{
    room_slot *sl = data;

    STORE(&sl->t, 0);               /* its rooms are gone with it */
    __atomic_store_n(&sl->pid, 0, __ATOMIC_RELEASE);
    mine = NULL;
    return APR_SUCCESS;
}

void wsock_history_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_uint32_t me = (apr_uint32_t)getpid();

    mine = NULL;
    if (head == NULL) {
        return;
    }
    for (apr_uint32_t i = 0; i < head->nslots && mine == NULL; i++) {
        apr_uint32_t free_pid = LOAD(&slots[i].pid) == me ? me : 0;

        if (__atomic_compare_exchange_n(&slots[i].pid, &free_pid, me, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            mine = &slots[i];
        }
    }
    if (mine == NULL) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     WSOCKNO(1451) "no dashboard room slot for this child (more "
                     "processes than ServerLimit): its rooms are not listed");
        return;
    }
    apr_pool_cleanup_register(pchild, mine, history_child_exit, apr_pool_cleanup_null);
}

int wsock_history_claim(apr_int64_t t)
{
    apr_int64_t last;

    if (head == NULL) {
        return 0;
    }
    last = LOAD(&head->claimed);
    /* A clock set back by more than the history: start again from now
     * (a small step back only skips the seconds already sampled). */
    while (last < t || last > t + WSOCK_HISTORY_SECONDS) {
        if (__atomic_compare_exchange_n(&head->claimed, &last, t, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            return 1;
        }
    }
    return 0;
}

void wsock_history_sample_of(wsock_sample *out, const wsock_counts *c, apr_int64_t t)
{
    memset(out, 0, sizeof(*out));
    out->t = t;
    out->children = c->children;
    out->rooms = c->gauge[WSOCK_G_ROOMS];
    out->members = c->gauge[WSOCK_G_MEMBERS];
    out->messages_in = c->hot[WSOCK_C_MSGS_IN];
    out->messages_out = c->hot[WSOCK_C_MSGS_OUT];
    out->bytes_in = c->hot[WSOCK_C_BYTES_IN];
    out->bytes_out = c->hot[WSOCK_C_BYTES_OUT];
    for (int i = 0; i < c->nlabels; i++) {
        out->open += c->label[i].open;
        for (int k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
            out->closed[k] += c->label[i].closed[k];
        }
    }
    for (int r = 0; r < WSOCK_R_COUNT; r++) {
        for (int k = 0; k < WSOCK_REFUSAL_STATUS_COUNT; k++) {
            out->refused[r] += c->refused[r][k];
        }
    }
}

void wsock_history_put(const wsock_sample *s)
{
    sample_entry *e;

    if (head == NULL) {
        return;
    }
    e = &samples[(apr_uint64_t)s->t % WSOCK_HISTORY_SECONDS];
    seq_write(&e->seq, &e->s, s, sizeof(*s));
}

int wsock_history_read(wsock_sample *out, apr_int64_t now)
{
    int n = 0;

    if (head == NULL) {
        return 0;
    }
    /* oldest first: the place after now's is the oldest second kept */
    for (apr_int64_t t = now - WSOCK_HISTORY_SECONDS + 1; t <= now; t++) {
        sample_entry *e = &samples[(apr_uint64_t)t % WSOCK_HISTORY_SECONDS];

        if (seq_read(&e->seq, &out[n], &e->s, sizeof(out[n])) && out[n].t == t) {
            n++;
        }
    }
    return n;
}

void wsock_history_rooms_put(const wsock_room_size *rooms, int n, apr_int64_t t)
{
    room_slot tmp;

    if (mine == NULL) {
        return;
    }
    if (n > WSOCK_HISTORY_ROOMS) {
        n = WSOCK_HISTORY_ROOMS;
    }
    memset(&tmp, 0, sizeof(tmp));
    tmp.t = t;
    tmp.n = (apr_uint64_t)n;
    memcpy(tmp.room, rooms, (size_t)n * sizeof(*rooms));
    /* the words from t on: the pid and the sequence stay as they are */
    seq_write(&mine->seq, &mine->t, &tmp.t, sizeof(tmp) - offsetof(room_slot, t));
}

static int by_members(const void *a, const void *b)
{
    const wsock_room_size *x = a, *y = b;

    return x->members < y->members ? 1 : x->members > y->members ? -1
           : strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const wsock_room_size *)a)->name, ((const wsock_room_size *)b)->name);
}

int wsock_history_rooms_read(wsock_room_size *out, int max, apr_int64_t now)
{
    room_slot *copy;
    wsock_room_size *all;
    size_t nall = 0, merged = 0;
    int n;

    if (head == NULL || max <= 0) {
        return 0;
    }
    copy = malloc(sizeof(*copy));
    all = malloc((size_t)head->nslots * WSOCK_HISTORY_ROOMS * sizeof(*all));
    if (copy == NULL || all == NULL) {
        free(copy);
        free(all);
        return 0;
    }
    for (apr_uint32_t i = 0; i < head->nslots; i++) {
        room_slot *sl = &slots[i];

        if (__atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE) == 0
            || !seq_read(&sl->seq, &copy->t, &sl->t, sizeof(*copy) - offsetof(room_slot, t))
            || copy->t < now - ROOMS_FRESH || copy->n > WSOCK_HISTORY_ROOMS) {
            continue;
        }
        for (apr_uint64_t k = 0; k < copy->n; k++) {
            all[nall] = copy->room[k];
            all[nall].name[WSOCK_HISTORY_ROOM_NAME - 1] = '\0';
            nall++;
        }
    }
    /* one room in several children: its counts add up */
    qsort(all, nall, sizeof(*all), by_name);
    for (size_t k = 0; k < nall; k++) {
        if (merged > 0 && strcmp(all[merged - 1].name, all[k].name) == 0) {
            all[merged - 1].members += all[k].members;
        }
        else {
            all[merged++] = all[k];
        }
    }
    qsort(all, merged, sizeof(*all), by_members);
    n = merged < (size_t)max ? (int)merged : max;
    memcpy(out, all, (size_t)n * sizeof(*out));
    free(all);
    free(copy);
    return n;
}
