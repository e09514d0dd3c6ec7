/*
 * wsock_roomtab.c — server-wide room sizes (see wsock_roomtab.h).
 *
 * Why each room that does not fit is sure to be served: every member
 * outside the table is counted in its room's mark or, when no mark was
 * free, in unmarked (which puts every room in broadcast mode).  A member
 * leaving takes one from its room's mark if it has one, else from
 * unmarked; so a room with members outside the table has a mark or
 * unmarked is above 0, whatever the order of joins and leaves.  Members of
 * a dead process may stay counted in a shared mark ("too many": the room
 * stays in broadcast mode a little longer, never too few) until no live
 * process has members outside the table, when the marks are cleared.
 */
#include <string.h>

#include "wsock_roomtab.h"

/* Longest chain looked at, in the slots and in the marks: beyond it a
 * pair is outside the table (or its room unmarked). */
#define MAX_PROBE 64

static uint32_t marks_for(uint32_t nslots)
{
    return nslots / 4 > 16 ? nslots / 4 : 16;
}

static wsock_roomtab_mark *marks_of(const wsock_roomtab *t)
{
    return (wsock_roomtab_mark *)(void *)((char *)(void *)t + sizeof(*t)
                                          + (size_t)t->nslots * sizeof(wsock_roomtab_slot));
}

static wsock_roomtab_child *children_of(const wsock_roomtab *t)
{
    return (wsock_roomtab_child *)(void *)(marks_of(t) + t->nmarks);
}

static uint32_t probe_len(uint32_t n)
{
    return n < MAX_PROBE ? n : MAX_PROBE;
}

size_t wsock_roomtab_bytes(uint32_t nslots, uint32_t nchildren)
{
    return sizeof(wsock_roomtab) + (size_t)nslots * sizeof(wsock_roomtab_slot)
           + (size_t)marks_for(nslots) * sizeof(wsock_roomtab_mark)
           + (size_t)nchildren * sizeof(wsock_roomtab_child);
}

void wsock_roomtab_init(wsock_roomtab *t, uint32_t nslots, uint32_t nchildren,
                        const wsock_hashkey *key)
{
    memset(t, 0, wsock_roomtab_bytes(nslots, nchildren));
    t->key = *key;
    t->nslots = nslots;
    t->nmarks = marks_for(nslots);
    t->nchildren = nchildren;
}

uint64_t wsock_roomtab_hash(const wsock_roomtab *t, const char *room, size_t len)
{
    return wsock_keyhash(&t->key, room, len);
}

/* ---- the records of processes with members outside the table ----------
 * Open addressing on the pid, emptied by shifting back (no tombstones), so
 * a lookup stops at the first free record. */

static wsock_roomtab_child *child_of(wsock_roomtab *t, int32_t pid, int create)
{
    wsock_roomtab_child *cs = children_of(t);
    uint32_t mask = t->nchildren - 1;

    for (uint32_t i = 0; i < t->nchildren; i++) {
        wsock_roomtab_child *c = &cs[((uint32_t)pid + i) & mask];

        if (c->pid == pid) {
            return c;
        }
        if (c->pid == 0) {
            if (!create) {
                return NULL;
            }
            c->pid = pid;
            c->outside = 0;
            return c;
        }
    }
    return NULL;
}

static void child_remove(wsock_roomtab *t, wsock_roomtab_child *c)
{
    wsock_roomtab_child *cs = children_of(t);
    uint32_t mask = t->nchildren - 1, hole = (uint32_t)(c - cs), j = hole;

    for (uint32_t n = 0; n < t->nchildren; n++) {
        uint32_t home;

        j = (j + 1) & mask;
        if (cs[j].pid == 0) {
            break;
        }
        home = (uint32_t)cs[j].pid & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            cs[hole] = cs[j];       /* the hole lies on its chain: it moves up */
            hole = j;
        }
    }
    cs[hole].pid = 0;
    cs[hole].outside = 0;
}

/* ---- marks: rooms with members outside the table ----------------------- */

static wsock_roomtab_mark *mark_of(const wsock_roomtab *t, uint64_t hash, int create)
{
    wsock_roomtab_mark *ms = marks_of(t), *free_mark = NULL;
    uint32_t mask = t->nmarks - 1, n = probe_len(t->nmarks);

    for (uint32_t i = 0; i < n; i++) {
        wsock_roomtab_mark *m = &ms[((uint32_t)(hash >> 32) + i) & mask];

        if (m->hash == hash) {
            return m;
        }
        if (m->members == 0 && free_mark == NULL) {
            free_mark = m;
        }
        if (m->hash == 0) {
            break;
        }
    }
    if (!create || free_mark == NULL) {
        return NULL;
    }
    free_mark->hash = hash;
    free_mark->members = 0;
    return free_mark;
}

/* Nothing live is outside the table: what marks still hold is members of
 * dead processes. */
static void clear_marks(wsock_roomtab *t)
{
    memset(marks_of(t), 0, (size_t)t->nmarks * sizeof(wsock_roomtab_mark));
    t->unmarked = 0;
}

static void outside_add(wsock_roomtab *t, uint64_t hash, int32_t pid, uint32_t n)
{
    wsock_roomtab_child *c = child_of(t, pid, 1);
    wsock_roomtab_mark *m = mark_of(t, hash, 1);

    if (t->outside == 0) {
        t->went_full++;
    }
    t->outside += n;
    if (c) {
        c->outside += n;
    }
    else {
        t->orphans += n;            /* more processes than records: see forget */
    }
    if (m) {
        m->owner = m->members == 0 || m->owner == pid ? pid : -1;
        m->members += n;
    }
    else {
        t->unmarked += n;
    }
}

static uint32_t at_most(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

static void outside_remove(wsock_roomtab *t, uint64_t hash, int32_t pid, uint32_t n)
{
    wsock_roomtab_child *c = child_of(t, pid, 0);
    wsock_roomtab_mark *m;

    n = at_most(n, c ? c->outside : t->orphans);
    if (n == 0) {
        return;                     /* it has none outside: nothing to take */
    }
    if (c) {
        c->outside -= n;
        if (c->outside == 0) {
            child_remove(t, c);
        }
    }
    else {
        t->orphans -= n;
    }
    t->outside -= at_most(n, t->outside);
    if ((m = mark_of(t, hash, 0)) != NULL && m->members > 0) {
        uint32_t k = at_most(n, m->members);
        m->members -= k;
        n -= k;
    }
    t->unmarked -= at_most(n, t->unmarked);
    if (t->outside == 0) {
        clear_marks(t);
    }
}

/* ---- slots --------------------------------------------------------------- */

/* The slot of (hash, pid) along the chain, or NULL; *free_slot gets the
 * first reusable one. */
static wsock_roomtab_slot *slot_of(const wsock_roomtab *t, uint64_t hash, int32_t pid,
                                   wsock_roomtab_slot **free_slot)
{
    wsock_roomtab_slot *slots = (wsock_roomtab_slot *)(void *)t->slots;
    uint32_t mask = t->nslots - 1, n = probe_len(t->nslots);

    *free_slot = NULL;
    for (uint32_t i = 0; i < n; i++) {
        wsock_roomtab_slot *s = &slots[(hash + i) & mask];

        if (s->hash == hash && s->pid == pid) {
            return s;
        }
        if (s->count == 0 && *free_slot == NULL) {
            *free_slot = s;         /* reusable, but look on for (hash, pid) */
        }
        if (s->hash == 0) {
            break;                  /* the end of the chain */
        }
    }
    return NULL;
}

int wsock_roomtab_add(wsock_roomtab *t, uint64_t hash, int32_t pid, int delta)
{
    wsock_roomtab_slot *free_slot, *s = slot_of(t, hash, pid, &free_slot);
    uint32_t n;

    if (delta > 0) {
        if (s == NULL && (s = free_slot) != NULL) {
            s->hash = hash;
            s->pid = pid;
            s->count = 0;
        }
        if (s == NULL) {
            outside_add(t, hash, pid, (uint32_t)delta);
            return 1;
        }
        s->count += delta;
        return 0;
    }
    /* Leaving: from its slot first, then from outside the table (a pair
     * can be in both, when a slot freed up after members went outside). */
    n = delta < 0 ? (uint32_t)-(int64_t)delta : 0;
    if (s && s->count > 0) {
        uint32_t k = at_most(n, (uint32_t)s->count);
        s->count -= (int32_t)k;
        n -= k;
    }
    if (n > 0) {
        outside_remove(t, hash, pid, n);
    }
    return 0;
}

/* The room has members outside the table, or some room has and found no
 * mark: it cannot be told from the slots. */
static int inexact(const wsock_roomtab *t, uint64_t hash)
{
    const wsock_roomtab_mark *m;

    if (t->unmarked > 0) {
        return 1;
    }
    m = mark_of(t, hash, 0);
    return m != NULL && m->members > 0;
}

int wsock_roomtab_count(const wsock_roomtab *t, uint64_t hash, int32_t pid, int *elsewhere)
{
    uint32_t mask = t->nslots - 1, n = probe_len(t->nslots);
    int total = 0, other = 0;

    if (inexact(t, hash)) {
        total = other = -1;
    }
    for (uint32_t i = 0; total >= 0 && i < n; i++) {
        const wsock_roomtab_slot *s = &t->slots[(hash + i) & mask];

        if (s->hash == 0) {
            break;
        }
        if (s->hash == hash) {
            total += s->count;
            if (s->pid != pid) {
                other += s->count;
            }
        }
    }
    if (elsewhere) {
        *elsewhere = other;
    }
    return total;
}

int wsock_roomtab_holders(const wsock_roomtab *t, uint64_t hash, int32_t except, int32_t *pids,
                          int max)
{
    uint32_t mask = t->nslots - 1, n = probe_len(t->nslots);
    int found = 0;

    if (inexact(t, hash)) {
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const wsock_roomtab_slot *s = &t->slots[(hash + i) & mask];

        if (s->hash == 0) {
            break;
        }
        if (s->hash == hash && s->pid != except && s->count > 0) {
            if (found < max) {
                pids[found] = s->pid;
            }
            found++;
        }
    }
    return found;
}

uint32_t wsock_roomtab_outside(const wsock_roomtab *t)
{
    return t->outside;
}

int wsock_roomtab_forget(wsock_roomtab *t, int32_t pid)
{
    wsock_roomtab_child *cs = children_of(t), *c = child_of(t, pid, 0);
    wsock_roomtab_mark *ms = marks_of(t);
    uint32_t outside = t->orphans;
    int forgotten = 0;

    for (uint32_t i = 0; i < t->nslots; i++) {
        wsock_roomtab_slot *s = &t->slots[i];

        if (s->pid == pid && s->count > 0) {
            forgotten += s->count;
            s->count = 0;
        }
    }
    if (c) {
        forgotten += (int)c->outside;
        child_remove(t, c);
        for (uint32_t i = 0; i < t->nmarks; i++) {
            if (ms[i].owner == pid) {
                ms[i].members = 0;  /* all of them its own: they go with it */
            }
        }
    }
    /* Counted again rather than taken from: a process killed in the middle
     * of an update (the lock is robust) cannot leave the total wrong. */
    for (uint32_t i = 0; i < t->nchildren; i++) {
        outside += cs[i].outside;
    }
    t->outside = outside;
    if (outside == 0) {
        clear_marks(t);
    }
    return forgotten;
}

int wsock_roomtab_pids(const wsock_roomtab *t, uint32_t *cursor, uint32_t window, int32_t *pids,
                       int max)
{
    const wsock_roomtab_child *cs = children_of(t);
    int n = 0;

    for (uint32_t i = 0; i < t->nchildren && n < max; i++) {
        if (cs[i].pid != 0) {
            pids[n++] = cs[i].pid;
        }
    }
    for (uint32_t i = 0; i < window && i < t->nslots && n < max; i++) {
        const wsock_roomtab_slot *s = &t->slots[*cursor];

        if (s->count > 0) {
            pids[n++] = s->pid;
        }
        *cursor = (*cursor + 1) & (t->nslots - 1);
    }
    return n;
}
