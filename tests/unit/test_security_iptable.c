/*
 * test_security_iptable.c — Check unit tests for src/security/wsock_iptable.c
 * (per-address WebSocket counts shared by the server's children): the key
 * an address counts under (IPv6 per /64), limits, release, a full table
 * and how often it is reported, reaping a dead process in chunks, the
 * keyed hash, and a long random run against a simple model, on small
 * tables where probes collide and wrap (also with every address hashed
 * alike, the worst a flood could do).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsock_iptable.h"

#include "test_util.h"

static void ip_of(unsigned n, unsigned char ip[16])
{
    memset(ip, 0, 16);
    ip[10] = ip[11] = 0xff;
    ip[12] = 10;
    ip[13] = (unsigned char)(n >> 16);
    ip[14] = (unsigned char)(n >> 8);
    ip[15] = (unsigned char)n;
}

static wsock_iptable *new_table(apr_uint32_t conns, unsigned seed)
{
    void *mem = malloc(wsock_iptable_size(conns));
    wsock_hashkey key;

    ck_assert_ptr_nonnull(mem);
    for (size_t i = 0; i < sizeof(key.k); i++) {
        key.k[i] = (unsigned char)(seed * 31u + i);
    }
    return wsock_iptable_init(mem, conns, &key);
}

/* The calls as wsock_ipcap.c makes them: hashed with the table's key. */
static int acquire(wsock_iptable *t, const unsigned char ip[16], apr_uint32_t limit,
                   apr_int32_t pid)
{
    return wsock_iptable_acquire(t, ip, wsock_iptable_hash(t, ip), limit, pid);
}

static apr_uint32_t count(const wsock_iptable *t, const unsigned char ip[16])
{
    return wsock_iptable_count(t, ip, wsock_iptable_hash(t, ip));
}

static apr_uint32_t reap_all(wsock_iptable *t, apr_int32_t pid, apr_uint32_t chunk)
{
    apr_uint32_t from = 0, n = 0, rounds = 0;

    while (from < wsock_iptable_conns(t)) {
        n += wsock_iptable_reap(t, pid, &from, chunk);
        ck_assert_uint_le(++rounds, wsock_iptable_conns(t) / chunk + 1);
    }
    return n;
}

START_TEST(test_keys)
{
    static const unsigned char v4[4] = { 192, 0, 2, 7 };
    static const unsigned char v4_mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                                                 192, 0, 2, 7 };
    static const unsigned char v4_other[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                                                192, 0, 2, 8 };
    static const unsigned char a1[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2,
                                          0x12, 0x34, 0, 0, 0, 0, 0, 1 };
    static const unsigned char a2[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2,
                                          0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };
    static const unsigned char b1[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 3,
                                          0x12, 0x34, 0, 0, 0, 0, 0, 1 };
    unsigned char k1[16], k2[16];
    wsock_iptable *t = new_table(16, 3);

    /* IPv4, plain or mapped into IPv6: the same key, per address */
    wsock_iptable_key(k1, v4, 0);
    wsock_iptable_key(k2, v4_mapped, 1);
    ck_assert_mem_eq(k1, v4_mapped, 16);
    ck_assert_mem_eq(k2, v4_mapped, 16);
    wsock_iptable_key(k2, v4_other, 1);
    ck_assert(memcmp(k1, k2, 16) != 0);
    /* IPv6: two addresses of one /64 share a key, another /64 does not */
    wsock_iptable_key(k1, a1, 1);
    wsock_iptable_key(k2, a2, 1);
    ck_assert_mem_eq(k1, k2, 16);
    ck_assert_int_ge(acquire(t, k1, 2, 100), 0);
    ck_assert_int_ge(acquire(t, k2, 2, 100), 0);
    ck_assert_int_eq(acquire(t, k2, 2, 100), WSOCK_IPTABLE_OVER);
    wsock_iptable_key(k2, b1, 1);
    ck_assert(memcmp(k1, k2, 16) != 0);
    ck_assert_int_ge(acquire(t, k2, 2, 100), 0);
    /* an IPv6 key never collides with a mapped IPv4 one */
    wsock_iptable_key(k1, v4, 0);
    ck_assert(memcmp(k1, k2, 16) != 0);
    free(t);
}
END_TEST

START_TEST(test_limit_and_release)
{
    wsock_iptable *t = new_table(16, 1);
    unsigned char a[16], b[16];
    int s[4];

    ip_of(1, a);
    ip_of(2, b);
    for (int i = 0; i < 3; i++) {
        s[i] = acquire(t, a, 3, 100);
        ck_assert_int_ge(s[i], 0);
    }
    ck_assert_uint_eq(count(t, a), 3);
    ck_assert_int_eq(acquire(t, a, 3, 100), WSOCK_IPTABLE_OVER);
    ck_assert_int_ge(acquire(t, a, 4, 100), 0);   /* another location's limit */
    ck_assert_int_eq(acquire(t, a, 4, 100), WSOCK_IPTABLE_OVER);
    /* another address is not affected */
    s[3] = acquire(t, b, 1, 101);
    ck_assert_int_ge(s[3], 0);
    ck_assert_int_eq(acquire(t, b, 1, 101), WSOCK_IPTABLE_OVER);
    /* a closed connection frees its place, once */
    wsock_iptable_release(t, s[0]);
    wsock_iptable_release(t, s[0]);
    ck_assert_uint_eq(count(t, a), 3);
    ck_assert_int_ge(acquire(t, a, 4, 100), 0);
    wsock_iptable_release(t, s[3]);
    ck_assert_uint_eq(count(t, b), 0);
    /* out-of-range slots are ignored */
    wsock_iptable_release(t, -1);
    wsock_iptable_release(t, 16);
    wsock_iptable_release(t, 1 << 30);
    /* limit 0: counted, never refused */
    ck_assert_int_ge(acquire(t, b, 0, 101), 0);
    free(t);
}
END_TEST

START_TEST(test_full_table)
{
    wsock_iptable *t = new_table(8, 2);
    unsigned char ip[16];
    int first = -1;

    for (unsigned i = 0; i < 8; i++) {
        int s;

        ip_of(i, ip);
        s = acquire(t, ip, 0, 7);
        ck_assert_int_ge(s, 0);
        if (first < 0) {
            first = s;
        }
    }
    ck_assert_uint_eq(wsock_iptable_used(t), 8);
    ip_of(99, ip);
    ck_assert_int_eq(acquire(t, ip, 0, 7), WSOCK_IPTABLE_FULL);
    ck_assert_uint_eq(count(t, ip), 0);
    /* an address at its limit is still told so first */
    ip_of(0, ip);
    ck_assert_int_eq(acquire(t, ip, 1, 7), WSOCK_IPTABLE_OVER);
    ip_of(99, ip);
    wsock_iptable_release(t, first);
    wsock_iptable_release(t, first);    /* once only */
    ck_assert_uint_eq(wsock_iptable_used(t), 7);
    ck_assert_int_eq(acquire(t, ip, 0, 7), first);
    ck_assert_int_eq(acquire(t, ip, 0, 7), WSOCK_IPTABLE_FULL);
    ck_assert_uint_eq(count(t, ip), 1);
    free(t);
}
END_TEST

START_TEST(test_reap_dead_process)
{
    wsock_iptable *t = new_table(32, 3);
    unsigned char a[16], b[16];
    apr_uint32_t from = 40;

    ip_of(1, a);
    ip_of(2, b);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_ge(acquire(t, a, 0, 666), 0);
        ck_assert_int_ge(acquire(t, a, 0, 777), 0);
    }
    ck_assert_int_ge(acquire(t, b, 0, 666), 0);
    ck_assert_uint_eq(wsock_iptable_used(t), 11);
    ck_assert_uint_eq(reap_all(t, 666, 5), 6);      /* in chunks of 5 slots */
    ck_assert_uint_eq(count(t, a), 5);
    ck_assert_uint_eq(count(t, b), 0);
    ck_assert_uint_eq(wsock_iptable_used(t), 5);
    ck_assert_uint_eq(reap_all(t, 666, 7), 0);
    ck_assert_uint_eq(reap_all(t, 0, 32), 0);       /* 0 is "free", never a process */
    ck_assert_uint_eq(wsock_iptable_used(t), 5);
    /* past the end: nothing, and done */
    ck_assert_uint_eq(wsock_iptable_reap(t, 777, &from, 8), 0);
    ck_assert_uint_eq(from, 32);
    ck_assert_uint_eq(reap_all(t, 777, 32), 5);
    ck_assert_uint_eq(wsock_iptable_used(t), 0);
    free(t);
}
END_TEST

/* A full table is reported at once, then at most once per interval with
 * how many were refused meanwhile. */
START_TEST(test_full_reports)
{
    wsock_iptable *t = new_table(4, 5);
    const apr_time_t sec = APR_USEC_PER_SEC, every = 60 * sec, t0 = 1000 * sec;

    ck_assert_uint_eq(wsock_iptable_note_full(t, t0, every), 1);
    for (int i = 1; i <= 1000; i++) {
        ck_assert_uint_eq(wsock_iptable_note_full(t, t0 + i * 10000, every), 0);
    }
    ck_assert_uint_eq(wsock_iptable_note_full(t, t0 + 59 * sec, every), 0);
    ck_assert_uint_eq(wsock_iptable_note_full(t, t0 + 60 * sec, every), 1002);
    ck_assert_uint_eq(wsock_iptable_note_full(t, t0 + 61 * sec, every), 0);
    /* quiet for a while: the next one is said at once, alone */
    ck_assert_uint_eq(wsock_iptable_note_full(t, t0 + 3600 * sec, every), 2);
    ck_assert_uint_eq(wsock_iptable_note_full(t, t0 + 7200 * sec, every), 1);
    free(t);
}
END_TEST

/* Where an address lands depends on the table's random key: addresses
 * that share a home under one key (what a flood would need) are spread
 * under another. */
/* The key of /64 number a of 2001:db8::/32. */
static void v6_of(apr_uint32_t a, unsigned char ip[16])
{
    unsigned char addr[16] = { 0x20, 0x01, 0x0d, 0xb8, (unsigned char)(a >> 24),
                               (unsigned char)(a >> 16), (unsigned char)(a >> 8),
                               (unsigned char)a };

    wsock_iptable_key(ip, addr, 1);
}

START_TEST(test_keyed_hash)
{
    enum { CONNS = 1024, ADDRS = 1u << 18, GROUP = 64 };
    wsock_iptable *t1 = new_table(CONNS, 1), *t2 = new_table(CONNS, 2);
    apr_uint32_t mask = 2 * CONNS - 1, home = 0, same[GROUP], n = 0, most = 0;
    static apr_uint32_t buckets[2 * CONNS];
    unsigned char ip[16];

    /* /64s that land where the first does under t1's key */
    for (apr_uint32_t a = 0; a < ADDRS && n < GROUP; a++) {
        v6_of(a, ip);
        if (a == 0) {
            home = wsock_iptable_hash(t1, ip) & mask;
        }
        if ((wsock_iptable_hash(t1, ip) & mask) == home) {
            same[n++] = a;
        }
    }
    ck_assert_uint_eq(n, GROUP);
    memset(buckets, 0, sizeof(buckets));
    for (apr_uint32_t i = 0; i < n; i++) {
        apr_uint32_t b;

        v6_of(same[i], ip);
        b = wsock_iptable_hash(t2, ip) & mask;
        if (++buckets[b] > most) {
            most = buckets[b];
        }
    }
    /* 64 random picks of 2048 homes: 5 in one has a chance below 1e-6 */
    ck_assert_uint_le(most, 4);
    free(t1);
    free(t2);
}
END_TEST

/* The table's size: what the documentation says a connection costs. */
START_TEST(test_size)
{
    ck_assert_uint_eq(wsock_iptable_size(32768) - wsock_iptable_size(0) + 2 * 24,
                      32768 * 28 + 65536 * 24);
    ck_assert_uint_le(wsock_iptable_size(WSOCK_IPTABLE_MAX_CONNS), 400u * 1024 * 1024);
    for (apr_uint32_t n = 1; n < 5000; n += 7) {
        ck_assert_uint_ge(wsock_iptable_size(n), wsock_iptable_size(0) + 76u * n - 48);
        ck_assert_uint_le(wsock_iptable_size(n), wsock_iptable_size(0) + 124u * n);
    }
}
END_TEST

/* A long random run of acquires and releases on a small table against a
 * model: counts stay exact however entries collide, wrap and move back. */
/* _i: 0-3 the keyed hash under four keys; 4: every address hashed alike
 * (one probe run holds them all); 5: three hashes (runs that overlap). */
static apr_uint32_t model_hash(const wsock_iptable *t, const unsigned char ip[16], int mode)
{
    if (mode == 4) {
        return 7;
    }
    if (mode == 5) {
        return (apr_uint32_t)ip[15] % 3 * 41;
    }
    return wsock_iptable_hash(t, ip);
}

START_TEST(test_random_against_model)
{
    enum { CONNS = 64, ADDRS = 40, LIMIT = 5, STEPS = 200000 };
    wsock_iptable *t = new_table(CONNS, (unsigned)_i * 7919u);
    int slot_addr[CONNS], held[CONNS], nheld = 0;
    unsigned model[ADDRS] = { 0 };
    unsigned char ip[16];
    tu_rng rng;

    tu_rng_seed(&rng, (uint64_t)_i + 11);
    for (int step = 0; step < STEPS; step++) {
        if (nheld > 0 && (nheld == CONNS || tu_rand(&rng) % 2)) {
            int k = (int)tu_rand_range(&rng, 0, (size_t)nheld - 1), s = held[k];

            wsock_iptable_release(t, s);
            model[slot_addr[s]]--;
            held[k] = held[--nheld];
        }
        else {
            unsigned a = (unsigned)tu_rand_range(&rng, 0, ADDRS - 1);
            int s;

            ip_of(a * 4099u, ip);       /* spread over the hash, with repeats */
            s = wsock_iptable_acquire(t, ip, model_hash(t, ip, _i), LIMIT, 1);
            if (model[a] >= LIMIT) {
                TU_CHECK(s == WSOCK_IPTABLE_OVER, "step %d: over the limit, got %d", step, s);
                continue;
            }
            TU_CHECK(s >= 0 && s < CONNS, "step %d: got %d", step, s);
            TU_CHECK(wsock_iptable_used(t) == (apr_uint32_t)nheld + 1, "step %d: used %u",
                     step, wsock_iptable_used(t));
            slot_addr[s] = (int)a;
            held[nheld++] = s;
            model[a]++;
        }
        if (step % 97 == 0) {
            for (unsigned a = 0; a < ADDRS; a++) {
                ip_of(a * 4099u, ip);
                apr_uint32_t c = wsock_iptable_count(t, ip, model_hash(t, ip, _i));

                TU_CHECK(c == model[a], "step %d addr %u: %u != %u", step, a, c, model[a]);
            }
        }
    }
    free(t);
}
END_TEST

static Suite *iptable_suite(void)
{
    Suite *s = suite_create("iptable");
    TCase *tc = tcase_create("counts");

    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_limit_and_release);
    tcase_add_test(tc, test_full_table);
    tcase_add_test(tc, test_reap_dead_process);
    tcase_add_test(tc, test_full_reports);
    tcase_add_test(tc, test_keyed_hash);
    tcase_add_test(tc, test_size);
    tcase_add_loop_test(tc, test_random_against_model, 0, 6);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { iptable_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
