/*
 * test_bus.c — Check unit tests for the room bus's shared structures: the
 * message ring, the table of room sizes, and the cross-process lock and
 * wake-up (with a real second process).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
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

static unsigned char tab_mem[1 << 16] __attribute__((aligned(8)));

static int alive_odd(int32_t pid, void *baton)
{
    (void)baton;
    return pid % 2 == 1;
}

START_TEST(test_roomtab_counts)
{
    wsock_roomtab *t = (wsock_roomtab *)tab_mem;
    uint64_t a = wsock_roomtab_hash("a", 1), b = wsock_roomtab_hash("b", 1);
    int elsewhere;

    ck_assert(wsock_roomtab_bytes(256) <= sizeof(tab_mem));
    wsock_roomtab_init(t, 256);
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

    /* A process that is gone: the sweep forgets its members. */
    ck_assert_int_eq(wsock_roomtab_sweep(t, alive_odd, NULL), 1);   /* 104 */
    ck_assert_int_eq(wsock_roomtab_count(t, a, 0, NULL), 2);
    wsock_roomtab_forget(t, 103);
    ck_assert_int_eq(wsock_roomtab_count(t, b, 0, NULL), 0);
    ck_assert_uint_eq(t->overflow, 0);
}
END_TEST

/* Who holds a room: every other process with members, listed up to max,
 * counted beyond it. */
START_TEST(test_roomtab_holders)
{
    wsock_roomtab *t = (wsock_roomtab *)tab_mem;
    uint64_t a = wsock_roomtab_hash("a", 1), b = wsock_roomtab_hash("b", 1);
    int32_t pids[2];

    wsock_roomtab_init(t, 256);
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
    ck_assert_int_eq(wsock_roomtab_holders(t, wsock_roomtab_hash("c", 1), 0, pids, 2), 0);
}
END_TEST

/* alive for the wake-up words: every pid but the one baton points to. */
static int alive_but(int32_t pid, void *baton)
{
    return pid != *(int32_t *)baton;
}

/* Wake-up words: one slot per pid, found again; a slot of a process that
 * is gone is taken over, and the chain past it still leads to the others;
 * the first message marked says where to read from. */
START_TEST(test_wakers)
{
    wsock_waker w[8];
    wsock_waker *s1, *s9, *s17, *s25;
    int32_t dead = 0;

    memset(w, 0, sizeof(w));
    s1 = wsock_wakers_claim(w, 8, 1, alive_but, &dead);
    s9 = wsock_wakers_claim(w, 8, 9, alive_but, &dead);     /* same home as 1 */
    s17 = wsock_wakers_claim(w, 8, 17, alive_but, &dead);
    ck_assert_ptr_nonnull(s1);
    ck_assert(s1 != s9 && s9 != s17 && s1 != s17);
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 9), s9);
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 17), s17);
    ck_assert_ptr_null(wsock_wakers_find(w, 8, 25));
    ck_assert_ptr_eq(wsock_wakers_claim(w, 8, 9, alive_but, &dead), s9);  /* its own */
    /* the first mark wins until the child has read */
    wsock_wakers_mark(s17, 640, 10);
    wsock_wakers_mark(s17, 704, 11);
    ck_assert_uint_eq(s17->pending, 1);
    ck_assert_uint_eq(s17->from_pos, 640);
    ck_assert_uint_eq(s17->from_seq, 10);
    /* 9 dies asleep with a mark: 25 takes its slot, fresh; 17, further
     * along, is still found. */
    s9->asleep = 1;
    wsock_wakers_mark(s9, 64, 1);
    dead = 9;
    s25 = wsock_wakers_claim(w, 8, 25, alive_but, &dead);
    ck_assert_ptr_eq(s25, s9);
    ck_assert_int_eq(s25->pid, 25);
    ck_assert_uint_eq(s25->asleep, 0);
    ck_assert_uint_eq(s25->pending, 0);
    ck_assert_ptr_null(wsock_wakers_find(w, 8, 9));
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 17), s17);
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 25), s25);
    /* Full of live processes: none. */
    dead = 0;
    for (int32_t pid = 2; pid < 7; pid++) {
        ck_assert_ptr_nonnull(wsock_wakers_claim(w, 8, pid, alive_but, &dead));
    }
    ck_assert_ptr_null(wsock_wakers_claim(w, 8, 41, alive_but, &dead));
    ck_assert_ptr_eq(wsock_wakers_find(w, 8, 17), s17);
}
END_TEST

/* Colliding chains and a full table: counts stay exact as long as there
 * is room, and an insert that finds none is counted, not lost silently. */
START_TEST(test_roomtab_full)
{
    wsock_roomtab *t = (wsock_roomtab *)tab_mem;
    int total = 0;

    wsock_roomtab_init(t, 16);
    for (int32_t pid = 1; pid <= 16; pid++) {
        ck_assert_int_eq(wsock_roomtab_add(t, 7, pid, pid), 0);     /* one chain */
        total += pid;
    }
    ck_assert_int_eq(wsock_roomtab_count(t, 7, 0, NULL), total);
    ck_assert_int_eq(wsock_roomtab_add(t, 7, 99, 1), -1);
    ck_assert_uint_eq(t->overflow, 1);
    ck_assert_int_eq(wsock_roomtab_add(t, 7, 5, -5), 0);            /* frees a slot */
    ck_assert_int_eq(wsock_roomtab_add(t, 7, 99, 1), 0);
    ck_assert_int_eq(wsock_roomtab_count(t, 7, 0, NULL), total - 5 + 1);
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
    tcase_add_test(tc, test_roomtab_full);
    tcase_add_test(tc, test_roomtab_holders);
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
