/*
 * wsock_iptable.c — the shared per-address connection counts (see the
 * header for the layout).  Every operation is bounded: the address table
 * is never more than half full, so a probe always ends at an empty entry,
 * and free connection slots are a list.
 */
#include <string.h>

#include "wsock_iptable.h"

#define NO_SLOT 0xffffffffu         /* the end of the free list */

typedef struct {
    unsigned char ip[16];
    apr_uint32_t hash;              /* wsock_iptable_hash(ip) */
    apr_uint32_t count;             /* 0: empty entry */
} ip_entry;

typedef struct {
    unsigned char ip[16];
    apr_uint32_t hash;
    apr_int32_t pid;                /* 0: free slot */
    apr_uint32_t next_free;         /* a free slot: the next free one */
} conn_slot;

struct wsock_iptable {
    wsock_hashkey key;
    apr_uint32_t nconns;
    apr_uint32_t nips;              /* a power of two, at least 2 * nconns */
    apr_uint32_t used;              /* slots held */
    apr_uint32_t free_head;         /* the first free slot, or NO_SLOT */
    apr_uint32_t full_refused;      /* refused since full_reported */
    apr_time_t full_reported;       /* 0: never */
    /* followed by ip_entry[nips], then conn_slot[nconns] */
};

static apr_uint32_t ips_for(apr_uint32_t conns)
{
    apr_uint32_t n = 2;

    while (n < 2 * conns) {
        n <<= 1;
    }
    return n;
}

static ip_entry *entries(const wsock_iptable *t)
{
    return (ip_entry *)(void *)((char *)(void *)(wsock_iptable *)t + sizeof(*t));
}

static conn_slot *slots(const wsock_iptable *t)
{
    return (conn_slot *)(void *)(entries(t) + t->nips);
}

apr_size_t wsock_iptable_size(apr_uint32_t conns)
{
    return sizeof(wsock_iptable) + (apr_size_t)ips_for(conns) * sizeof(ip_entry)
           + (apr_size_t)conns * sizeof(conn_slot);
}

void wsock_iptable_key(unsigned char key[16], const unsigned char *addr, int ipv6)
{
    static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    if (ipv6 && memcmp(addr, v4_mapped, sizeof(v4_mapped)) != 0) {
        memcpy(key, addr, 8);
        memset(key + 8, 0, 8);
        return;
    }
    memcpy(key, v4_mapped, sizeof(v4_mapped));
    memcpy(key + 12, ipv6 ? addr + 12 : addr, 4);
}

wsock_iptable *wsock_iptable_init(void *mem, apr_uint32_t conns, const wsock_hashkey *key)
{
    wsock_iptable *t = mem;
    conn_slot *s;

    memset(mem, 0, wsock_iptable_size(conns));
    t->key = *key;
    t->nconns = conns;
    t->nips = ips_for(conns);
    s = slots(t);
    for (apr_uint32_t i = 0; i < conns; i++) {
        s[i].next_free = i + 1 < conns ? i + 1 : NO_SLOT;
    }
    t->free_head = conns ? 0 : NO_SLOT;
    return t;
}

apr_uint32_t wsock_iptable_conns(const wsock_iptable *t)
{
    return t->nconns;
}

apr_uint32_t wsock_iptable_used(const wsock_iptable *t)
{
    return t->used;
}

apr_uint32_t wsock_iptable_hash(const wsock_iptable *t, const unsigned char ip[16])
{
    return (apr_uint32_t)wsock_keyhash(&t->key, ip, 16);
}

/* The entry of ip, or the empty one where it would go (*found 0). */
static apr_uint32_t probe(const wsock_iptable *t, const unsigned char ip[16], apr_uint32_t hash,
                          int *found)
{
    const ip_entry *e = entries(t);
    apr_uint32_t mask = t->nips - 1, i = hash & mask;

    while (e[i].count != 0) {
        if (e[i].hash == hash && memcmp(e[i].ip, ip, 16) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
    *found = 0;
    return i;
}

/* Empties entry i and moves later entries of its probe run back into the
 * gap, so that every entry stays reachable from its home. */
static void remove_entry(wsock_iptable *t, apr_uint32_t i)
{
    ip_entry *e = entries(t);
    apr_uint32_t mask = t->nips - 1, j = i;

    for (;;) {
        apr_uint32_t k;

        j = (j + 1) & mask;
        if (e[j].count == 0) {
            break;
        }
        k = e[j].hash & mask;
        /* j may stay where it is if its home lies cyclically in (i, j] */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
            continue;
        }
        e[i] = e[j];
        i = j;
    }
    e[i].count = 0;
}

int wsock_iptable_acquire(wsock_iptable *t, const unsigned char ip[16], apr_uint32_t hash,
                          apr_uint32_t limit, apr_int32_t pid)
{
    ip_entry *e = entries(t);
    conn_slot *s = slots(t);
    int found;
    apr_uint32_t i = probe(t, ip, hash, &found), slot = t->free_head;

    if (found && limit && e[i].count >= limit) {
        return WSOCK_IPTABLE_OVER;
    }
    if (slot == NO_SLOT) {
        return WSOCK_IPTABLE_FULL;
    }
    if (!found) {
        memcpy(e[i].ip, ip, 16);
        e[i].hash = hash;
        e[i].count = 0;
    }
    e[i].count++;
    t->free_head = s[slot].next_free;
    s[slot].pid = pid;
    s[slot].hash = hash;
    memcpy(s[slot].ip, ip, 16);
    t->used++;
    return (int)slot;
}

void wsock_iptable_release(wsock_iptable *t, int slot)
{
    conn_slot *s = slots(t);
    ip_entry *e = entries(t);
    int found;
    apr_uint32_t i;

    if (slot < 0 || (apr_uint32_t)slot >= t->nconns || s[slot].pid == 0) {
        return;
    }
    i = probe(t, s[slot].ip, s[slot].hash, &found);
    if (found && --e[i].count == 0) {
        remove_entry(t, i);
    }
    s[slot].pid = 0;
    s[slot].next_free = t->free_head;
    t->free_head = (apr_uint32_t)slot;
    t->used--;
}

apr_uint32_t wsock_iptable_reap(wsock_iptable *t, apr_int32_t pid, apr_uint32_t *from,
                                apr_uint32_t max)
{
    const conn_slot *s = slots(t);
    apr_uint32_t n = 0, i = *from < t->nconns ? *from : t->nconns,
                 end = max < t->nconns - i ? i + max : t->nconns;

    for (; i < end; i++) {
        if (s[i].pid == pid && pid != 0) {
            wsock_iptable_release(t, (int)i);
            n++;
        }
    }
    *from = end;
    return n;
}

apr_uint32_t wsock_iptable_count(const wsock_iptable *t, const unsigned char ip[16],
                                 apr_uint32_t hash)
{
    int found;
    apr_uint32_t i = probe(t, ip, hash, &found);

    return found ? entries(t)[i].count : 0;
}

apr_uint32_t wsock_iptable_note_full(wsock_iptable *t, apr_time_t now, apr_time_t every)
{
    apr_uint32_t n;

    t->full_refused++;
    if (t->full_reported != 0 && now - t->full_reported < every) {
        return 0;
    }
    n = t->full_refused;
    t->full_refused = 0;
    t->full_reported = now;
    return n;
}
