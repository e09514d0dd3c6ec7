/*
 * test_bus.c — Check unit tests for the room bus's shared structures: the
 * message ring, the table of room sizes, and the cross-process lock and
 * wake-up (with a real second process).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "wsock_fnv1a.h"
#include "wsock_ring.h"
#include "wsock_roomtab.h"
#include "wsock_wakers.h"
#include "wsock_shmsync.h"

/* ---- ring -------------------------------------------------------------- */

#define RING_BYTES 4096

static unsigned char ring_mem[RING_BYTES] __attribute__((aligned(8)));
static unsigned char batch[RING_BYTES];

static wsock_ring *new_ring(void)
{
    wsock_ring *r = (wsock_ring *)ring_mem;
    wsock_ring_init(r, sizeof(ring_mem));
    return r;
}

/* Payload i: its number, then 'a'.. up to len bytes. */
static void fill(unsigned char *p, size_t len, uint32_t i)
{
    for (size_t k = 0; k < len; k++) {
        p[k] = k < sizeof(i) ? (unsigned char)(i >> (8 * k)) : (unsigned char)('a' + k % 26);
    }
}

static uint32_t number_of(const wsock_ring_msg *m)
{
    uint32_t i = 0;
    for (size_t k = 0; k < sizeof(i) && k < m->len; k++) {
        i |= (uint32_t)m->payload[k] << (8 * k);
    }
    return i;
}

START_TEST(test_ring_round_trip)
{
    wsock_ring *r = new_ring();
    uint64_t pos = r->head;
    size_t len, need, off = 0;
    int lapped = 0;
    wsock_ring_msg m;

    ck_assert_int_eq(wsock_ring_put(r, 42, WSOCK_RING_TEXT, "lobby", 5, "hello", 5), 0);
    ck_assert_int_eq(wsock_ring_put(r, 43, 0, "x", 1, "", 0), 0);
    ck_assert(wsock_ring_pending(r, pos) > 0);
    len = wsock_ring_copy(r, &pos, batch, sizeof(batch), &lapped, &need);
    ck_assert_int_eq(lapped, 0);
    ck_assert_uint_eq(pos, r->head);
    ck_assert_uint_eq(wsock_ring_pending(r, pos), 0);

    ck_assert(wsock_ring_next(batch, len, &off, &m));
    ck_assert_uint_eq(m.origin, 42);
    ck_assert_uint_eq(m.flags, WSOCK_RING_TEXT);
    ck_assert_uint_eq(m.seq, 0);
    ck_assert_uint_eq(m.room_len, 5);
    ck_assert(memcmp(m.room, "lobby", 5) == 0);
    ck_assert_uint_eq(m.len, 5);
    ck_assert(memcmp(m.payload, "hello", 5) == 0);

    ck_assert(wsock_ring_next(batch, len, &off, &m));
    ck_assert_uint_eq(m.origin, 43);
    ck_assert_uint_eq(m.flags, 0);
    ck_assert_uint_eq(m.seq, 1);
    ck_assert_uint_eq(m.len, 0);
    ck_assert(!wsock_ring_next(batch, len, &off, &m));
}
END_TEST

/* Many records of many sizes through a small ring, read by a reader that
 * keeps up: every record, in order, intact, across many wrap-arounds. */
START_TEST(test_ring_wraps_in_order)
{
    wsock_ring *r = new_ring();
    uint64_t pos = r->head;
    unsigned char p[600];
    uint32_t written = 0, read = 0;

    for (int round = 0; round < 500; round++) {
        for (int k = 0; k < 1 + round % 3; k++) {
            size_t len = (size_t)((written * 37) % sizeof(p));
            fill(p, len, written);
            ck_assert_int_eq(wsock_ring_put(r, 1, 0, "room", 4, p, len), 0);
            written++;
        }
        for (;;) {
            size_t need, off = 0;
            int lapped = 0;
            size_t len = wsock_ring_copy(r, &pos, batch, 700, &lapped, &need);
            wsock_ring_msg m;

            ck_assert_int_eq(lapped, 0);
            ck_assert_uint_eq(need, 0);
            if (len == 0) {
                break;
            }
            while (wsock_ring_next(batch, len, &off, &m)) {
                size_t want = (size_t)((read * 37) % sizeof(p));
                fill(p, want, read);
                TU_CHECK(m.seq == read, "seq %u, expected %u", m.seq, read);
                TU_CHECK(m.len == want && memcmp(m.payload, p, want) == 0,
                         "record %u damaged", read);
                read++;
            }
        }
    }
    ck_assert_uint_eq(read, written);
    ck_assert(r->head > 10 * r->size);      /* it did wrap, many times */
}
END_TEST

/* A reader that falls behind is moved to the oldest record still whole,
 * told, and the sequence numbers show how many it lost. */
START_TEST(test_ring_lapped_reader)
{
    wsock_ring *r = new_ring();
    uint64_t pos = r->head;
    unsigned char p[500];
    size_t len, need, off = 0;
    int lapped = 0;
    wsock_ring_msg m;
    uint32_t last = 0, first;

    for (uint32_t i = 0; i < 40; i++) {
        fill(p, sizeof(p), i);
        ck_assert_int_eq(wsock_ring_put(r, 1, 0, "r", 1, p, sizeof(p)), 0);
    }
    len = wsock_ring_copy(r, &pos, batch, sizeof(batch), &lapped, &need);
    ck_assert_int_eq(lapped, 1);
    ck_assert(wsock_ring_next(batch, len, &off, &m));
    first = m.seq;
    ck_assert(first > 0);                   /* the first ones are gone */
    ck_assert_uint_eq(number_of(&m), first);
    last = first;
    while (wsock_ring_next(batch, len, &off, &m)) {
        ck_assert_uint_eq(m.seq, last + 1);
        last = m.seq;
    }
    ck_assert_uint_eq(last, 39);            /* the newest ones are all there */
}
END_TEST

START_TEST(test_ring_too_large)
{
    wsock_ring *r = new_ring();
    static unsigned char p[RING_BYTES];
    size_t max = wsock_ring_max_message(r);

    ck_assert(max < RING_BYTES / 2);
    ck_assert_int_eq(wsock_ring_put(r, 1, 0, "r", 1, p, max), -1);
    ck_assert_int_eq(wsock_ring_put(r, 1, 0, "r", 1, p, max - 1), 0);
    ck_assert_int_eq(wsock_ring_put(r, 1, 0, "r", 1, p, max - 1), 0);
    ck_assert_int_eq(wsock_ring_put(r, 1, 0, "r", 1, p, max - 1), 0);
}
END_TEST

/* A buffer too small for the next record: nothing copied, the size needed
 * is told, and the position stays. */
START_TEST(test_ring_small_buffer)
{
    wsock_ring *r = new_ring();
    unsigned char p[1000] = { 0 };
    uint64_t pos = r->head, before;
    size_t need;
    int lapped = 0;

    ck_assert_int_eq(wsock_ring_put(r, 1, 0, "r", 1, p, sizeof(p)), 0);
    before = pos;
    ck_assert_uint_eq(wsock_ring_copy(r, &pos, batch, 100, &lapped, &need), 0);
    ck_assert_uint_eq(pos, before);
    ck_assert(need >= sizeof(p));
    ck_assert(wsock_ring_copy(r, &pos, batch, need, &lapped, &need) > 0);
}
END_TEST

/* ---- room table ---------------------------------------------------- */

static const wsock_hashkey key_a = { { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } };
static const wsock_hashkey key_b = { { 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 } };

/* A table of nslots slots with records for nchildren processes; free()d by
 * the caller. */
static wsock_roomtab *new_tab(uint32_t nslots, uint32_t nchildren, const wsock_hashkey *key)
{
    wsock_roomtab *t = malloc(wsock_roomtab_bytes(nslots, nchildren));

    ck_assert_ptr_nonnull(t);
    wsock_roomtab_init(t, nslots, nchildren, key);
    return t;
}

static uint64_t h(const wsock_roomtab *t, const char *room)
{
    return wsock_roomtab_hash(t, room, strlen(room));
}

START_TEST(test_roomtab_counts)
{
    wsock_roomtab *t = new_tab(256, 64, &key_a);
    uint64_t a = h(t, "a"), b = h(t, "b");
    int32_t pids[64];
    uint32_t cursor = 0;
    int elsewhere;

    ck_assert(a != b && a != 0);
    ck_assert_int_eq(wsock_roomtab_add(t, a, 101, 1), 0);
    ck_assert_int_eq(wsock_roomtab_add(t, a, 101, 1), 0);
    ck_assert_int_eq(wsock_roomtab_add(t, a, 102, 1), 0);
    ck_assert_int_eq(wsock_roomtab_add(t, b, 103, 5), 0);

    ck_assert_int_eq(wsock_roomtab_count(t, a, 101, &elsewhere), 3);
    ck_assert_int_eq(elsewhere, 1);
    ck_assert_int_eq(wsock_roomtab_count(t, a, 102, &elsewhere), 3);
    ck_assert_int_eq(elsewhere, 2);
    ck_assert_int_eq(wsock_roomtab_count(t, b, 101, &elsewhere), 5);

    /* Leaving: never below zero; a freed slot is reused. */
    ck_assert_int_eq(wsock_roomtab_add(t, a, 102, -1), 0);
    ck_assert_int_eq(wsock_roomtab_add(t, a, 102, -1), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, a, 101, &elsewhere), 2);
    ck_assert_int_eq(elsewhere, 0);
    ck_assert_int_eq(wsock_roomtab_add(t, a, 104, 1), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, a, 101, &elsewhere), 3);

    /* The sweep's list: every pid holding a slot, in a window that wraps. */
    ck_assert_int_eq(wsock_roomtab_pids(t, &cursor, 256, pids, 64), 3);
    ck_assert_uint_eq(cursor, 0);
    /* A process that is gone is forgotten. */
    ck_assert_int_eq(wsock_roomtab_forget(t, 104), 1);
    ck_assert_int_eq(wsock_roomtab_count(t, a, 0, NULL), 2);
    ck_assert_int_eq(wsock_roomtab_forget(t, 103), 5);
    ck_assert_int_eq(wsock_roomtab_count(t, b, 0, NULL), 0);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 0);
    free(t);
}
END_TEST

/* Who holds a room: every other process with members, listed up to max,
 * counted beyond it. */
START_TEST(test_roomtab_holders)
{
    wsock_roomtab *t = new_tab(256, 64, &key_a);
    uint64_t a = h(t, "a"), b = h(t, "b");
    int32_t pids[2];

    wsock_roomtab_add(t, a, 101, 2);
    wsock_roomtab_add(t, a, 102, 1);
    wsock_roomtab_add(t, a, 103, 1);
    wsock_roomtab_add(t, b, 104, 1);
    ck_assert_int_eq(wsock_roomtab_holders(t, a, 101, pids, 2), 2);
    ck_assert((pids[0] == 102 && pids[1] == 103) || (pids[0] == 103 && pids[1] == 102));
    ck_assert_int_eq(wsock_roomtab_holders(t, a, 0, pids, 2), 3);     /* cut at 2 */
    ck_assert_int_eq(wsock_roomtab_holders(t, a, 0, NULL, 0), 3);     /* only counted */
    wsock_roomtab_add(t, a, 103, -1);                                   /* left */
    ck_assert_int_eq(wsock_roomtab_holders(t, a, 101, pids, 2), 1);
    ck_assert_int_eq(pids[0], 102);
    ck_assert_int_eq(wsock_roomtab_holders(t, b, 104, pids, 2), 0);
    ck_assert_int_eq(wsock_roomtab_holders(t, h(t, "c"), 0, pids, 2), 0);
    free(t);
}
END_TEST

#define COLLIDING 80
#define BIG_TABLE 16384

/* Names chosen so that FNV-1a puts them all at one home slot of a
 * BIG_TABLE-slot table (anyone can compute them: this is the attack). */
static void colliding_names(char names[COLLIDING][16])
{
    uint32_t want = 0;
    int n = 0;

    for (uint32_t i = 0; n < COLLIDING && i < 100000000u; i++) {
        char name[16];
        uint32_t home;

        snprintf(name, sizeof(name), "/chat?c%u", i);
        home = (uint32_t)wsock_fnv1a(name, strlen(name)) & (BIG_TABLE - 1);
        if (n == 0) {
            want = home;
        }
        if (home == want) {
            memcpy(names[n++], name, sizeof(name));
        }
    }
    ck_assert_int_eq(n, COLLIDING);
}

/* Keyed slots: names that share one FNV-1a chain (more than its 64 probes)
 * overflow the table under FNV-1a, and not under the keyed hash; the key
 * decides where a name goes (two keys, two places), and one key always
 * puts a name in the same place (every process that maps the table). */
START_TEST(test_roomtab_keyed)
{
    static char names[COLLIDING][16];
    wsock_roomtab *t = new_tab(BIG_TABLE, 64, &key_a);
    wsock_roomtab *other = new_tab(BIG_TABLE, 64, &key_b);
    uint64_t lobby = h(t, "/chat?lobby"), last;
    int moved = 0, outside = 0;

    colliding_names(names);
    wsock_roomtab_add(t, lobby, 7, 1);
    wsock_roomtab_add(t, lobby, 8, 1);
    for (int i = 0; i < COLLIDING; i++) {
        uint64_t x = h(t, names[i]);

        ck_assert_uint_eq(x, wsock_roomtab_hash(t, names[i], strlen(names[i])));
        moved += (x & (BIG_TABLE - 1)) != (h(other, names[i]) & (BIG_TABLE - 1));
        outside += wsock_roomtab_add(t, x, 100, 1);
    }
    ck_assert_int_eq(outside, 0);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 0);
    ck_assert_int_ge(moved, COLLIDING - 2);
    ck_assert_int_eq(wsock_roomtab_count(t, lobby, 7, NULL), 2);

    /* The same attack on the unkeyed hash: the chain fills, only its rooms
     * go outside, and a room elsewhere stays exact. */
    wsock_roomtab_init(t, BIG_TABLE, 64, &key_a);
    wsock_roomtab_add(t, lobby, 7, 1);
    wsock_roomtab_add(t, lobby, 8, 1);
    outside = 0;
    for (int i = 0; i < COLLIDING; i++) {
        outside += wsock_roomtab_add(t, wsock_fnv1a(names[i], strlen(names[i])), 100, 1);
    }
    ck_assert_int_ge(outside, COLLIDING - 64);
    last = wsock_fnv1a(names[COLLIDING - 1], strlen(names[COLLIDING - 1]));
    ck_assert_int_eq(wsock_roomtab_count(t, last, 100, NULL), -1);
    ck_assert_int_eq(wsock_roomtab_count(t, wsock_fnv1a(names[0], strlen(names[0])), 100, NULL),
                     1);
    ck_assert_int_eq(wsock_roomtab_count(t, lobby, 7, NULL), 2);
    free(t);
    free(other);
}
END_TEST

/* A full table: rooms that got their slots stay exact (counts, holders);
 * rooms with a pair that did not fit cannot tell, and only they; as their
 * members leave, the table is exact again, with no restart. */
START_TEST(test_roomtab_full_recovers)
{
    wsock_roomtab *t = new_tab(16, 64, &key_a);
    int32_t pids[8];
    uint64_t fit[8], over = h(t, "over"), late = h(t, "late");

    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof(name), "fit%d", i);
        fit[i] = h(t, name);
        ck_assert_int_eq(wsock_roomtab_add(t, fit[i], 1, 1), 0);
        ck_assert_int_eq(wsock_roomtab_add(t, fit[i], 2, 1), 0);
    }
    ck_assert_uint_eq(t->went_full, 0);
    /* 16 pairs: full.  More members in a pair that has its slot: exact. */
    ck_assert_int_eq(wsock_roomtab_add(t, fit[0], 1, 1), 0);
    ck_assert_int_eq(wsock_roomtab_add(t, over, 1, 1), 1);
    ck_assert_int_eq(wsock_roomtab_add(t, over, 2, 2), 1);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 3);
    ck_assert_uint_eq(t->went_full, 1);
    ck_assert_int_eq(wsock_roomtab_count(t, over, 1, NULL), -1);
    ck_assert_int_eq(wsock_roomtab_holders(t, over, 1, pids, 8), -1);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(wsock_roomtab_count(t, fit[i], 1, NULL), i == 0 ? 3 : 2);
        ck_assert_int_eq(wsock_roomtab_holders(t, fit[i], 1, pids, 8), 1);
        ck_assert_int_eq(pids[0], 2);
    }
    /* A slot frees up: a new pair takes it, "over" still cannot tell (its
     * members outside are still there). */
    ck_assert_int_eq(wsock_roomtab_add(t, fit[7], 2, -1), 0);
    ck_assert_int_eq(wsock_roomtab_add(t, late, 2, 1), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, late, 2, NULL), 1);
    ck_assert_int_eq(wsock_roomtab_add(t, fit[7], 1, -1), 0);
    ck_assert_int_eq(wsock_roomtab_add(t, over, 1, 1), 0);     /* this one fits */
    ck_assert_int_eq(wsock_roomtab_count(t, over, 1, NULL), -1);
    /* Its members leave (from the slot first): exact again, no mark left. */
    ck_assert_int_eq(wsock_roomtab_add(t, over, 2, -2), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, over, 1, NULL), -1);
    ck_assert_int_eq(wsock_roomtab_add(t, over, 1, -1), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, over, 1, NULL), -1);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 1);
    ck_assert_int_eq(wsock_roomtab_add(t, over, 1, -1), 0);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, over, 1, NULL), 0);
    ck_assert_int_eq(wsock_roomtab_holders(t, over, 1, pids, 8), 0);
    /* Leaving more than there is takes nothing from anyone. */
    ck_assert_int_eq(wsock_roomtab_add(t, over, 1, -1), 0);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 0);
    /* Full again later: counted as a new time. */
    ck_assert_int_eq(wsock_roomtab_add(t, fit[7], 3, 1), 0);   /* the last free slot */
    ck_assert_int_eq(wsock_roomtab_add(t, over, 3, 1), 1);
    ck_assert_uint_eq(t->went_full, 2);
    ck_assert_int_eq(wsock_roomtab_add(t, over, 3, -1), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, fit[0], 1, NULL), 3);
    free(t);
}
END_TEST

/* More rooms outside than marks: every room cannot tell (nothing is lost)
 * until enough of them are left. */
START_TEST(test_roomtab_marks_full)
{
    wsock_roomtab *t = new_tab(16, 64, &key_a);     /* 16 marks */
    uint64_t fit = h(t, "fit");
    char name[16];
    int i;

    wsock_roomtab_add(t, fit, 1, 1);
    for (i = 0; i < 15; i++) {
        snprintf(name, sizeof(name), "pad%d", i);
        wsock_roomtab_add(t, h(t, name), 1, 1);
    }
    for (i = 0; i < 40 && t->unmarked == 0; i++) {
        snprintf(name, sizeof(name), "out%d", i);
        ck_assert_int_eq(wsock_roomtab_add(t, h(t, name), 2, 1), 1);
    }
    ck_assert_uint_eq(t->unmarked, 1);
    ck_assert_int_eq(wsock_roomtab_count(t, fit, 2, NULL), -1);
    /* the unmarked one leaves: every room that fit is exact again */
    snprintf(name, sizeof(name), "out%d", i - 1);
    wsock_roomtab_add(t, h(t, name), 2, -1);
    ck_assert_uint_eq(t->unmarked, 0);
    ck_assert_int_eq(wsock_roomtab_count(t, fit, 2, NULL), 1);
    snprintf(name, sizeof(name), "out%d", 0);
    ck_assert_int_eq(wsock_roomtab_count(t, h(t, name), 2, NULL), -1);
    free(t);
}
END_TEST

/* A process that dies without leaving: its slots are freed at once, and so
 * are the rooms it alone had outside the table; a room it shared outside
 * the table with a live process stays "cannot tell" until no live process
 * has members outside the table. */
START_TEST(test_roomtab_forget_dead)
{
    wsock_roomtab *t = new_tab(16, 64, &key_a);
    uint64_t own = h(t, "own"), shared = h(t, "shared"), fit = h(t, "fit0");
    char name[16];

    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "fit%d", i);
        wsock_roomtab_add(t, h(t, name), 10, 1);
        wsock_roomtab_add(t, h(t, name), 20, 1);
    }
    ck_assert_int_eq(wsock_roomtab_add(t, own, 10, 2), 1);
    ck_assert_int_eq(wsock_roomtab_add(t, shared, 10, 1), 1);
    ck_assert_int_eq(wsock_roomtab_add(t, shared, 20, 1), 1);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 4);

    /* 10 dies: 8 slots and 3 members outside */
    ck_assert_int_eq(wsock_roomtab_forget(t, 10), 11);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 1);
    ck_assert_int_eq(wsock_roomtab_count(t, fit, 20, NULL), 1);
    ck_assert_int_eq(wsock_roomtab_count(t, own, 20, NULL), 0);      /* its own: gone */
    ck_assert_int_eq(wsock_roomtab_count(t, shared, 20, NULL), -1);  /* 20 is still out */
    ck_assert_int_eq(wsock_roomtab_forget(t, 10), 0);                /* twice: nothing */
    /* 20's member leaves: nothing live is outside, the marks go */
    wsock_roomtab_add(t, shared, 20, -1);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, shared, 20, NULL), 0);

    /* The same with 20 dying last, and a total left wrong by a process
     * killed in the middle of an update: recounted. */
    ck_assert_int_eq(wsock_roomtab_add(t, shared, 30, 1), 0);    /* 8 slots were freed */
    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof(name), "new%d", i);
        wsock_roomtab_add(t, h(t, name), 30, 1);
    }
    ck_assert_int_eq(wsock_roomtab_add(t, shared, 20, 1), 1);
    t->outside += 5;
    ck_assert_int_eq(wsock_roomtab_forget(t, 20), 8 + 1);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, shared, 30, NULL), 1);
    free(t);
}
END_TEST

/* More processes with members outside the table than records: counted
 * all the same, and taken back as they leave. */
START_TEST(test_roomtab_orphans)
{
    wsock_roomtab *t = new_tab(16, 2, &key_a);
    uint64_t over = h(t, "over");
    char name[16];

    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof(name), "fit%d", i);
        wsock_roomtab_add(t, h(t, name), 1, 1);
    }
    for (int32_t pid = 2; pid < 6; pid++) {
        ck_assert_int_eq(wsock_roomtab_add(t, over, pid, 1), 1);
    }
    ck_assert_uint_eq(t->orphans, 2);
    ck_assert_int_eq(wsock_roomtab_count(t, over, 2, NULL), -1);
    for (int32_t pid = 2; pid < 6; pid++) {
        wsock_roomtab_add(t, over, pid, -1);
    }
    ck_assert_uint_eq(t->orphans, 0);
    ck_assert_uint_eq(wsock_roomtab_outside(t), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, over, 2, NULL), 0);
    free(t);
}
END_TEST

/* Wake-up words: one slot per pid, found again; a released slot is taken
 * again and the chain past it still leads to the others; the first
 * message marked says where to read from. */
START_TEST(test_wakers)
{
    wsock_waker w[8];
    wsock_waker *s1, *s9, *s17, *s25;
    int32_t pids[8];

    memset(w, 0, sizeof(w));
    s1 = wsock_wakers_claim(w, 8, 1);
    s9 = wsock_wakers_claim(w, 8, 9);       /* same home as 1 */
    s17 = wsock_wakers_claim(w, 8, 17);
    ck_assert_ptr_nonnull(s1);
    ck_assert(s1 != s9 && s9 != s17 && s1 != s17);
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 9), s9);
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 17), s17);
    ck_assert_ptr_null(wsock_wakers_find(w, 8, 25));
    ck_assert_ptr_eq(wsock_wakers_claim(w, 8, 9), s9);  /* its own */
    ck_assert_int_eq(wsock_wakers_pids(w, 8, pids, 8), 3);
    /* the first mark wins until the child has read */
    wsock_wakers_mark(s17, 640, 10);
    wsock_wakers_mark(s17, 704, 11);
    ck_assert_uint_eq(s17->pending, 1);
    ck_assert_uint_eq(s17->from_pos, 640);
    ck_assert_uint_eq(s17->from_seq, 10);
    /* 9 ends asleep with a mark, released: 25 takes its slot, fresh; 17,
     * further along, is still found. */
    s9->asleep = 1;
    wsock_wakers_mark(s9, 64, 1);
    ck_assert_int_eq(wsock_wakers_release(w, 8, 9), 1);
    ck_assert_int_eq(wsock_wakers_release(w, 8, 9), 0);
    ck_assert_ptr_null(wsock_wakers_find(w, 8, 9));
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 17), s17);
    ck_assert_int_eq(wsock_wakers_pids(w, 8, pids, 8), 2);
    s25 = wsock_wakers_claim(w, 8, 25);
    ck_assert_ptr_eq(s25, s9);
    ck_assert_int_eq(s25->pid, 25);
    ck_assert_uint_eq(s25->asleep, 0);
    ck_assert_uint_eq(s25->pending, 0);
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 17), s17);
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 25), s25);
    /* 17 claims again after a released slot before its own: still its own */
    ck_assert_int_eq(wsock_wakers_release(w, 8, 1), 1);
    ck_assert_ptr_eq(wsock_wakers_claim(w, 8, 17), s17);
    ck_assert_ptr_eq(wsock_wakers_claim(w, 8, 1), s1);
    /* Full: none. */
    for (int32_t pid = 2; pid < 7; pid++) {
        ck_assert_ptr_nonnull(wsock_wakers_claim(w, 8, pid));
    }
    ck_assert_ptr_null(wsock_wakers_claim(w, 8, 41));
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 17), s17);
}
END_TEST

/* ---- across processes -------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    uint32_t gen;
    uint32_t pad;
    unsigned char ring[RING_BYTES];
} shared_t;

/* A child process posts records under the shared lock and wakes the
 * parent through the futex; the parent sleeps on it and reads them all. */
START_TEST(test_cross_process)
{
    shared_t *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    wsock_ring *r;
    uint64_t pos;
    uint32_t got = 0, n = 200;
    pid_t pid;
    int status, rounds = 0;

    ck_assert_ptr_ne(sh, MAP_FAILED);
    ck_assert_int_eq(wsock_shmlock_init(&sh->lock), 0);
    r = (wsock_ring *)sh->ring;
    wsock_ring_init(r, sizeof(sh->ring));
    pos = r->head;

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        for (uint32_t i = 0; i < n; i++) {
            unsigned char p[64];
            fill(p, sizeof(p), i);
            wsock_shmlock_lock(&sh->lock);
            wsock_ring_put(r, (uint32_t)getpid(), 0, "x", 1, p, sizeof(p));
            __atomic_add_fetch(&sh->gen, 1, __ATOMIC_SEQ_CST);
            wsock_shmlock_unlock(&sh->lock);
            wsock_futex_wake_all(&sh->gen);
            if (i % 10 == 0) {
                usleep(1000);       /* let the reader sleep now and then */
            }
        }
        _exit(0);
    }
    while (got < n && rounds++ < 10000) {
        size_t len, need, off = 0;
        int lapped = 0;
        uint32_t gen;
        wsock_ring_msg m;

        wsock_shmlock_lock(&sh->lock);
        len = wsock_ring_copy(r, &pos, batch, sizeof(batch), &lapped, &need);
        gen = __atomic_load_n(&sh->gen, __ATOMIC_SEQ_CST);
        wsock_shmlock_unlock(&sh->lock);
        ck_assert_int_eq(lapped, 0);
        if (len == 0) {
            wsock_futex_wait(&sh->gen, gen, 100);
            continue;
        }
        while (wsock_ring_next(batch, len, &off, &m)) {
            TU_CHECK(number_of(&m) == got && (pid_t)m.origin == pid, "record %u", got);
            got++;
        }
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_uint_eq(got, n);
    munmap(sh, sizeof(*sh));
}
END_TEST

/* A process that dies holding the lock does not block the others. */
START_TEST(test_lock_owner_dies)
{
    shared_t *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pid;
    int status;

    ck_assert_ptr_ne(sh, MAP_FAILED);
    ck_assert_int_eq(wsock_shmlock_init(&sh->lock), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        wsock_shmlock_lock(&sh->lock);
        _exit(0);                   /* never unlocks */
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(wsock_shmlock_lock(&sh->lock), 1);    /* told */
    wsock_shmlock_unlock(&sh->lock);
    ck_assert_int_eq(wsock_shmlock_lock(&sh->lock), 0);    /* and usable */
    wsock_shmlock_unlock(&sh->lock);
    munmap(sh, sizeof(*sh));
}
END_TEST

static Suite *bus_suite(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("ring");

    tcase_add_test(tc, test_ring_round_trip);
    tcase_add_test(tc, test_ring_wraps_in_order);
    tcase_add_test(tc, test_ring_lapped_reader);
    tcase_add_test(tc, test_ring_too_large);
    tcase_add_test(tc, test_ring_small_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("room table");
    tcase_add_test(tc, test_roomtab_counts);
    tcase_add_test(tc, test_roomtab_holders);
    tcase_add_test(tc, test_roomtab_keyed);
    tcase_add_test(tc, test_roomtab_full_recovers);
    tcase_add_test(tc, test_roomtab_marks_full);
    tcase_add_test(tc, test_roomtab_forget_dead);
    tcase_add_test(tc, test_roomtab_orphans);
    tcase_add_test(tc, test_wakers);
    suite_add_tcase(s, tc);

    tc = tcase_create("processes");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_cross_process);
    tcase_add_test(tc, test_lock_owner_dies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { bus_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
