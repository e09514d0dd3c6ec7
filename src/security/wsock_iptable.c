/*
 * wsock_iptable.c — the shared per-address connection counts (see the
 * header for the layout).  Every operation is bounded by the table's
 * size: the address table is never more than half full, so a probe always
 * ends at an empty entry.
 */
#include <string.h>

#include "wsock_iptable.h"

typedef struct {
    unsigned char ip[16];
    apr_uint32_t count;             /* 0: empty entry */
} ip_entry;

typedef struct {
    apr_int32_t pid;                /* 0: free slot */
    unsigned char ip[16];
} conn_slot;

struct wsock_iptable {
    apr_uint32_t nconns;
    apr_uint32_t nips;              /* a power of two, at least 2 * nconns */
    apr_uint32_t seed;
    apr_uint32_t free_hint;         /* where the next free slot probably is */
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
    return sizeof(wsock_iptable) + ips_for(conns) * sizeof(ip_entry)
           + conns * sizeof(conn_slot);
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

wsock_iptable *wsock_iptable_init(void *mem, apr_uint32_t conns, apr_uint32_t seed)
{
    wsock_iptable *t = mem;

    memset(mem, 0, wsock_iptable_size(conns));
    t->nconns = conns;
    t->nips = ips_for(conns);
    t->seed = seed;
    return t;
}

/* FNV-1a, started from the seed. */
static apr_uint32_t home(const wsock_iptable *t, const unsigned char ip[16])
{
    apr_uint32_t h = 2166136261u ^ t->seed;

    for (int i = 0; i < 16; i++) {
        h = (h ^ ip[i]) * 16777619u;
    }
    return h & (t->nips - 1);
}

/* The entry of ip, or the empty one where it would go (*found 0). */
static apr_uint32_t probe(const wsock_iptable *t, const unsigned char ip[16], int *found)
{
    const ip_entry *e = entries(t);
    apr_uint32_t i = home(t, ip);

    while (e[i].count != 0) {
        if (memcmp(e[i].ip, ip, 16) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & (t->nips - 1);
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
        k = home(t, e[j].ip);
        /* j may stay where it is if its home lies cyclically in (i, j] */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
            continue;
        }
        e[i] = e[j];
        i = j;
    }
    e[i].count = 0;
}

int wsock_iptable_acquire(wsock_iptable *t, const unsigned char ip[16], apr_uint32_t limit,
                          apr_int32_t pid)
{
    ip_entry *e = entries(t);
    conn_slot *s = slots(t);
    int found;
    apr_uint32_t i = probe(t, ip, &found), n, slot = t->free_hint;

    if (found && limit && e[i].count >= limit) {
        return WSOCK_IPTABLE_OVER;
    }
    for (n = 0; n < t->nconns && s[slot].pid != 0; n++) {
        slot = slot + 1 < t->nconns ? slot + 1 : 0;
    }
    if (n == t->nconns) {
        return WSOCK_IPTABLE_FULL;
    }
    if (!found) {
        memcpy(e[i].ip, ip, 16);
        e[i].count = 0;
    }
    e[i].count++;
    s[slot].pid = pid;
    memcpy(s[slot].ip, ip, 16);
    t->free_hint = slot + 1 < t->nconns ? slot + 1 : 0;
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
    i = probe(t, s[slot].ip, &found);
    if (found && --e[i].count == 0) {
        remove_entry(t, i);
    }
    s[slot].pid = 0;
}

apr_uint32_t wsock_iptable_reap(wsock_iptable *t, int (*alive)(apr_int32_t pid, void *baton),
                                void *baton)
{
    conn_slot *s = slots(t);
    apr_uint32_t n = 0;
    apr_int32_t known_alive = 0;    /* most slots belong to a few processes */

    for (apr_uint32_t i = 0; i < t->nconns; i++) {
        if (s[i].pid == 0 || s[i].pid == known_alive) {
            continue;
        }
        if (alive(s[i].pid, baton)) {
            known_alive = s[i].pid;
            continue;
        }
        wsock_iptable_release(t, (int)i);
        n++;
    }
    return n;
}

apr_uint32_t wsock_iptable_count(const wsock_iptable *t, const unsigned char ip[16])
{
    int found;
    apr_uint32_t i = probe(t, ip, &found);

    return found ? entries(t)[i].count : 0;
}
