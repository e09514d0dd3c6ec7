/*
 * wsock_roomtab.c — server-wide room sizes (see wsock_roomtab.h).
 */
#include <string.h>

#include "wsock_roomtab.h"

/* Longest chain looked at: an insert beyond it counts as overflow. */
#define MAX_PROBE 64

size_t wsock_roomtab_bytes(uint32_t nslots)
{
    return sizeof(wsock_roomtab) + (size_t)nslots * sizeof(wsock_roomtab_slot);
}

void wsock_roomtab_init(wsock_roomtab *t, uint32_t nslots)
{
    t->nslots = nslots;
    t->overflow = 0;
    memset(t->slots, 0, (size_t)nslots * sizeof(wsock_roomtab_slot));
}

uint64_t wsock_roomtab_hash(const char *room, size_t len)
{
    uint64_t h = 14695981039346656037ull;   /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)room[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

static uint32_t probe_len(const wsock_roomtab *t)
{
    return t->nslots < MAX_PROBE ? t->nslots : MAX_PROBE;
}

int wsock_roomtab_add(wsock_roomtab *t, uint64_t hash, int32_t pid, int delta)
{
    uint32_t mask = t->nslots - 1, n = probe_len(t);
    wsock_roomtab_slot *free_slot = NULL;

    for (uint32_t i = 0; i < n; i++) {
        wsock_roomtab_slot *s = &t->slots[(hash + i) & mask];

        if (s->hash == hash && s->pid == pid) {
            s->count = s->count + delta > 0 ? s->count + delta : 0;
            return 0;
        }
        if (s->count == 0 && free_slot == NULL) {
            free_slot = s;          /* reusable, but look on for (hash, pid) */
        }
        if (s->hash == 0) {
            break;                  /* the end of the chain */
        }
    }
    if (delta <= 0) {
        return 0;                   /* nothing to take away */
    }
    if (free_slot == NULL) {
        t->overflow++;
        return -1;
    }
    free_slot->hash = hash;
    free_slot->pid = pid;
    free_slot->count = delta;
    return 0;
}

int wsock_roomtab_count(const wsock_roomtab *t, uint64_t hash, int32_t pid, int *elsewhere)
{
    uint32_t mask = t->nslots - 1, n = probe_len(t);
    int total = 0, other = 0;

    for (uint32_t i = 0; i < n; i++) {
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
    uint32_t mask = t->nslots - 1, n = probe_len(t);
    int found = 0;

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

int wsock_roomtab_sweep(wsock_roomtab *t, int (*alive)(int32_t pid, void *baton), void *baton)
{
    int cleared = 0;

    for (uint32_t i = 0; i < t->nslots; i++) {
        wsock_roomtab_slot *s = &t->slots[i];

        if (s->count > 0 && !alive(s->pid, baton)) {
            s->count = 0;
            cleared++;
        }
    }
    return cleared;
}

void wsock_roomtab_forget(wsock_roomtab *t, int32_t pid)
{
    for (uint32_t i = 0; i < t->nslots; i++) {
        if (t->slots[i].pid == pid) {
            t->slots[i].count = 0;
        }
    }
}
