/*
 * wsock_counters.c — the whole server's counters in shared memory (see
 * wsock_counters.h for the model).
 *
 *   [head: layout, start time, label names][slot 0][slot 1]...[spill slot]
 *
 * A slot is written by one process only, with relaxed atomic additions;
 * the spill slot takes the children that found no slot of their own (more
 * processes than ServerLimit during a restart) and is shared by them, which
 * the atomics allow: only its gauges cannot be zeroed when one of them
 * ends, so they are not counted from it.
 */
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <apr_strings.h>

#include "wsock_counters.h"
#include "wsock_log.h"
#include "wsock_retained_shm.h"

APLOG_USE_MODULE(wsock);

#define STRIPES 8                   /* per-thread copies of the hot counters */
/* Named for the layout: after an upgrade, a restart must not hand new
 * code memory laid out by the old one. */
#define RETAINED_KEY "mod_wsock.counters.3"
#define LAYOUT 0x77736303u          /* "wsc" 3 */

const int wsock_refusal_statuses[WSOCK_REFUSAL_STATUS_COUNT - 1] = WSOCK_REFUSAL_STATUSES;
const int wsock_close_codes[WSOCK_CLOSE_CODE_COUNT - 1] = WSOCK_CLOSE_CODES;
const apr_uint32_t wsock_late_bounds_us[WSOCK_LATE_BUCKETS - 1] = WSOCK_LATE_BOUNDS_US;
const char *const wsock_refusal_names[WSOCK_R_COUNT] = {
    "bad_request", "origin", "auth", "token", "ip_cap", "protocol", "handler", "other"
};
const char *const wsock_hot_counter_names[WSOCK_C_HOT_COUNT] = {
    "messages_in", "bytes_in", "messages_out", "bytes_out",
    "deflate_raw_bytes", "deflate_wire_bytes", "inflate_wire_bytes", "inflate_raw_bytes"
};
const char *const wsock_counter_names[WSOCK_C_COUNT] = {
    "queue_drops", "slow_closes", "rate_limit_closes", "bus_laps", "bus_too_large",
    "redis_reconnects", "redis_published", "redis_dropped", "published", "publish_refused",
    "backend_requests", "backend_failed"
};
const char *const wsock_gauge_names[WSOCK_G_COUNT] = {
    "rooms", "room_members", "loop_threads", "redis_links", "redis_queue",
    "redis_queue_bytes"
};

typedef struct {
    apr_uint64_t v[WSOCK_C_HOT_COUNT];
} __attribute__((aligned(64))) hot_stripe;

typedef struct {
    apr_int64_t open;
    apr_uint64_t opened;
    apr_uint64_t closed[WSOCK_CLOSE_CODE_COUNT];
    apr_uint64_t refused[WSOCK_R_COUNT];
} label_slot;

typedef struct {
    volatile apr_uint32_t pid;      /* 0: free */
    hot_stripe hot[STRIPES];
    apr_uint64_t total[WSOCK_C_COUNT];
    apr_int64_t gauge[WSOCK_G_COUNT];
    apr_uint64_t refused[WSOCK_R_COUNT][WSOCK_REFUSAL_STATUS_COUNT];
    apr_uint64_t late[WSOCK_LATE_BUCKETS];
    apr_uint64_t late_sum_us;
    label_slot label[WSOCK_LABELS_MAX + 1];     /* the last: WSOCK_LABEL_OTHER */
} __attribute__((aligned(64))) counter_slot;

typedef struct {
    char location[WSOCK_LABEL_NAME];
    char handler[WSOCK_LABEL_HANDLER];
} label_name;

typedef struct {
    apr_uint32_t layout;
    apr_uint32_t nslots;            /* own slots; the spill slot follows them */
    apr_time_t since;
    apr_uint32_t nlabels;           /* names in use, in order */
    label_name names[WSOCK_LABELS_MAX];
} __attribute__((aligned(64))) counters_head;

static counters_head *head;         /* NULL: not counting */
static counter_slot *slots;         /* nslots + 1 (the spill slot) */
static counter_slot *mine;          /* this child's slot (or the spill slot) */

/* This reading of the configuration: its labels, and where they are in
 * the shared table (the parent fills it; children inherit it). */
static struct {
    const char *location;
    const char *handler;
} cfg_label[WSOCK_LABELS_MAX];
static int cfg_nlabels;
static int label_at[WSOCK_LABELS_MAX];


#define ADD(p, n) __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

void wsock_counters_pre_config(void)
{
    cfg_nlabels = 0;
}

int wsock_counters_label(const char *location, const char *handler)
{
    int i;

    for (i = 0; i < cfg_nlabels; i++) {
        if (strcmp(cfg_label[i].location, location) == 0
            && strcmp(cfg_label[i].handler, handler) == 0) {
            return i;
        }
    }
    if (cfg_nlabels == WSOCK_LABELS_MAX) {
        return WSOCK_LABEL_NONE;
    }
    /* The strings live in the configuration pool, as long as the reading. */
    cfg_label[cfg_nlabels].location = location;
    cfg_label[cfg_nlabels].handler = handler;
    return cfg_nlabels++;
}

/* Where (location, handler) is in the shared table, entered if new;
 * -1 when the table is full. */
static int label_find_or_add(const char *location, const char *handler)
{
    apr_uint32_t i;
    label_name *n;

    for (i = 0; i < head->nlabels; i++) {
        n = &head->names[i];
        if (strncmp(n->location, location, sizeof(n->location) - 1) == 0
            && strncmp(n->handler, handler, sizeof(n->handler) - 1) == 0) {
            return (int)i;
        }
    }
    if (head->nlabels == WSOCK_LABELS_MAX) {
        return -1;
    }
    n = &head->names[head->nlabels];
    apr_cpystrn(n->location, location, sizeof(n->location));
    apr_cpystrn(n->handler, handler, sizeof(n->handler));
    /* Readers in children read nlabels then the names: publish after. */
    __atomic_store_n(&head->nlabels, head->nlabels + 1, __ATOMIC_RELEASE);
    return (int)i;
}

void wsock_counters_post_config(server_rec *s)
{
    apr_uint32_t n = wsock_retained_slots();
    apr_size_t bytes = sizeof(counters_head) + ((apr_size_t)n + 1) * sizeof(counter_slot);
    apr_status_t rv;
    int i, fresh;

    /* Kept across restarts: the totals go on.  A bigger ServerLimit (a full
     * stop) gets memory of its own, and the totals start again. */
    head = wsock_retained_shm(RETAINED_KEY, bytes, s, &fresh, &rv);
    if (head == NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     WSOCKNO(1401) "cannot create %" APR_SIZE_T_FMT " bytes of shared "
                     "memory for the counters; server-status, wsock-metrics and "
                     "wsock-status report nothing", bytes);
        return;
    }
    if (fresh) {
        head->layout = LAYOUT;
        head->nslots = n;
        head->since = apr_time_now();
    }
    slots = (counter_slot *)(head + 1);
    for (i = 0; i < cfg_nlabels; i++) {
        label_at[i] = label_find_or_add(cfg_label[i].location, cfg_label[i].handler);
        if (label_at[i] < 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         WSOCKNO(1402) "more than %d WebSocket locations since the server "
                         "started: %s (%s) is counted under the location \"" WSOCK_LABEL_OTHER
                         "\"",
                         WSOCK_LABELS_MAX, cfg_label[i].location, cfg_label[i].handler);
        }
    }
}

static void slot_zero_gauges(counter_slot *sl)
{
    int i;

    for (i = 0; i < WSOCK_G_COUNT; i++) {
        __atomic_store_n(&sl->gauge[i], 0, __ATOMIC_RELAXED);
    }
    for (i = 0; i <= WSOCK_LABELS_MAX; i++) {
        __atomic_store_n(&sl->label[i].open, 0, __ATOMIC_RELAXED);
    }
}

void wsock_counters_child_exited(pid_t pid)
{
    apr_uint32_t i;

    if (head == NULL || pid <= 0) {
        return;
    }
    for (i = 0; i < head->nslots; i++) {
        if (LOAD(&slots[i].pid) == (apr_uint32_t)pid) {
            slot_zero_gauges(&slots[i]);
            __atomic_store_n(&slots[i].pid, 0, __ATOMIC_RELEASE);
            return;
        }
    }
}

static apr_status_t counters_child_exit(void *data)
{
    counter_slot *sl = data;

    /* Ending cleanly: the gauges of this process go now (the parent does
     * it again when it reaps us, harmlessly). */
    if (sl != &slots[head->nslots]) {
        slot_zero_gauges(sl);
    }
    return APR_SUCCESS;
}

void wsock_counters_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_uint32_t i, me = (apr_uint32_t)getpid();

    if (head == NULL) {
        return;
    }
    mine = &slots[head->nslots];            /* the spill slot, unless one is free */
    for (i = 0; i < head->nslots; i++) {
        apr_uint32_t free_pid = 0;

        /* A pid left by a child the parent did not reap as ours (a
         * previous server) would block a slot: a dead one is taken. */
        if (LOAD(&slots[i].pid) == me) {
            free_pid = me;
        }
        if (__atomic_compare_exchange_n(&slots[i].pid, &free_pid, me, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            mine = &slots[i];
            slot_zero_gauges(mine);
            break;
        }
    }
    if (mine == &slots[head->nslots]) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     WSOCKNO(1403) "no counter slot of its own for this child (more "
                     "processes than ServerLimit): its gauges are not reported");
    }
    apr_pool_cleanup_register(pchild, mine, counters_child_exit, apr_pool_cleanup_null);
}

#ifndef WSOCK_NO_COUNTERS
static apr_uint32_t stripe_next;
static _Thread_local int my_stripe = -1;

static int stripe(void)
{
    if (my_stripe < 0) {
        my_stripe = (int)(ADD(&stripe_next, 1) % STRIPES);
    }
    return my_stripe;
}

void wsock_count_hot(wsock_hot_counter c, apr_uint64_t n)
{
    if (mine) {
        ADD(&mine->hot[stripe()].v[c], n);
    }
}

void wsock_count(wsock_counter c, apr_uint64_t n)
{
    if (mine) {
        ADD(&mine->total[c], n);
    }
}

void wsock_gauge_add(wsock_gauge g, apr_int64_t delta)
{
    if (mine) {
        ADD(&mine->gauge[g], delta);
    }
}

void wsock_gauge_set(wsock_gauge g, apr_int64_t value)
{
    if (mine) {
        __atomic_store_n(&mine->gauge[g], value, __ATOMIC_RELAXED);
    }
}

static label_slot *label_of(int label)
{
    if (mine == NULL) {
        return NULL;
    }
    if (label < 0 || label >= cfg_nlabels || label_at[label] < 0) {
        return &mine->label[WSOCK_LABELS_MAX];      /* "(other)" */
    }
    return &mine->label[label_at[label]];
}

void wsock_count_opened(int label)
{
    label_slot *l = label_of(label);

    if (l) {
        ADD(&l->open, 1);
        ADD(&l->opened, 1);
    }
}

static int index_of(const int *list, int n, int v)
{
    int i;

    for (i = 0; i < n; i++) {
        if (list[i] == v) {
            return i;
        }
    }
    return n;                       /* "other" */
}

void wsock_count_closed(int label, int code)
{
    label_slot *l = label_of(label);

    if (l) {
        ADD(&l->open, -1);
        ADD(&l->closed[index_of(wsock_close_codes, WSOCK_CLOSE_CODE_COUNT - 1, code)], 1);
    }
}

void wsock_count_refused(int label, wsock_refusal why, int status)
{
    label_slot *l = label_of(label);

    if (l && why >= 0 && why < WSOCK_R_COUNT) {
        ADD(&mine->refused[why][index_of(wsock_refusal_statuses,
                                         WSOCK_REFUSAL_STATUS_COUNT - 1, status)], 1);
        ADD(&l->refused[why], 1);
    }
}

void wsock_count_turn_late(apr_interval_time_t late)
{
    apr_uint64_t us = late > 0 ? (apr_uint64_t)late : 0;
    int b = 0;

    if (mine == NULL) {
        return;
    }
    while (b < WSOCK_LATE_BUCKETS - 1 && us > wsock_late_bounds_us[b]) {
        b++;
    }
    ADD(&mine->late[b], 1);
    ADD(&mine->late_sum_us, us);
}

#endif /* WSOCK_NO_COUNTERS */

/* Adds one slot's counts of a label into o (gauges of live children only). */
static void label_add(wsock_label_counts *o, label_slot *l, int own)
{
    int k;

    if (own) {
        o->open += LOAD(&l->open);
    }
    o->opened += LOAD(&l->opened);
    for (k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
        o->closed[k] += LOAD(&l->closed[k]);
    }
    for (k = 0; k < WSOCK_R_COUNT; k++) {
        o->refused[k] += LOAD(&l->refused[k]);
    }
}

static int label_used(const wsock_label_counts *o)
{
    int k;

    if (o->open || o->opened) {
        return 1;
    }
    for (k = 0; k < WSOCK_R_COUNT; k++) {
        if (o->refused[k]) {
            return 1;
        }
    }
    return 0;
}

void wsock_counters_read(wsock_counts *out)
{
    apr_uint32_t i, n;
    int j, k;

    memset(out, 0, sizeof(*out));
    out->now = apr_time_now();
    if (head == NULL) {
        return;
    }
    out->on = 1;
    out->since = head->since;
    n = __atomic_load_n(&head->nlabels, __ATOMIC_ACQUIRE);
    for (j = 0; j < (int)n; j++) {
        memcpy(out->label[j].location, head->names[j].location, WSOCK_LABEL_NAME);
        memcpy(out->label[j].handler, head->names[j].handler, WSOCK_LABEL_HANDLER);
    }
    for (i = 0; i <= head->nslots; i++) {
        counter_slot *sl = &slots[i];
        int own = i < head->nslots;

        if (own && LOAD(&sl->pid) != 0) {
            out->children++;
        }
        for (k = 0; k < STRIPES; k++) {
            for (j = 0; j < WSOCK_C_HOT_COUNT; j++) {
                out->hot[j] += LOAD(&sl->hot[k].v[j]);
            }
        }
        for (j = 0; j < WSOCK_C_COUNT; j++) {
            out->total[j] += LOAD(&sl->total[j]);
        }
        for (j = 0; own && j < WSOCK_G_COUNT; j++) {
            out->gauge[j] += LOAD(&sl->gauge[j]);
        }
        for (j = 0; j < WSOCK_R_COUNT; j++) {
            for (k = 0; k < WSOCK_REFUSAL_STATUS_COUNT; k++) {
                out->refused[j][k] += LOAD(&sl->refused[j][k]);
            }
        }
        for (j = 0; j < WSOCK_LATE_BUCKETS; j++) {
            out->late[j] += LOAD(&sl->late[j]);
        }
        out->late_sum_us += LOAD(&sl->late_sum_us);
        for (j = 0; j < (int)n; j++) {
            label_add(&out->label[j], &sl->label[j], own);
        }
        /* what did not fit the table of names goes after the named ones */
        label_add(&out->label[n], &sl->label[WSOCK_LABELS_MAX], own);
    }
    out->nlabels = (int)n;
    if (label_used(&out->label[n])) {
        apr_cpystrn(out->label[n].location, WSOCK_LABEL_OTHER, WSOCK_LABEL_NAME);
        apr_cpystrn(out->label[n].handler, WSOCK_LABEL_OTHER, WSOCK_LABEL_HANDLER);
        out->nlabels++;
    }
    /* A gauge read between a connection's open and its close in two
     * stripes' worth of reads may be briefly off by one; never below 0. */
    for (j = 0; j < out->nlabels; j++) {
        if (out->label[j].open < 0) {
            out->label[j].open = 0;
        }
    }
}
