/*
 * test_security_iptable.c — Check unit tests for src/security/wsock_iptable.c
 * (per-address WebSocket counts shared by the server's children): the key
 * an address counts under (IPv6 per /64), limits, release, a full table,
 * reaping dead processes, and a long random run against a simple model, on
 * small tables where probes collide and wrap.
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

static wsock_iptable *new_table(apr_uint32_t conns, apr_uint32_t seed)
{
    void *mem = malloc(wsock_iptable_size(conns));

    ck_assert_ptr_nonnull(mem);
    return wsock_iptable_init(mem, conns, seed);
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
    ck_assert_int_ge(wsock_iptable_acquire(t, k1, 2, 100), 0);
    ck_assert_int_ge(wsock_iptable_acquire(t, k2, 2, 100), 0);
    ck_assert_int_eq(wsock_iptable_acquire(t, k2, 2, 100), WSOCK_IPTABLE_OVER);
    wsock_iptable_key(k2, b1, 1);
    ck_assert(memcmp(k1, k2, 16) != 0);
    ck_assert_int_ge(wsock_iptable_acquire(t, k2, 2, 100), 0);
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
        s[i] = wsock_iptable_acquire(t, a, 3, 100);
        ck_assert_int_ge(s[i], 0);
    }
    ck_assert_uint_eq(wsock_iptable_count(t, a), 3);
    ck_assert_int_eq(wsock_iptable_acquire(t, a, 3, 100), WSOCK_IPTABLE_OVER);
    ck_assert_int_ge(wsock_iptable_acquire(t, a, 4, 100), 0);   /* another location's limit */
    ck_assert_int_eq(wsock_iptable_acquire(t, a, 4, 100), WSOCK_IPTABLE_OVER);
    /* another address is not affected */
    s[3] = wsock_iptable_acquire(t, b, 1, 101);
    ck_assert_int_ge(s[3], 0);
    ck_assert_int_eq(wsock_iptable_acquire(t, b, 1, 101), WSOCK_IPTABLE_OVER);
    /* a closed connection frees its place, once */
    wsock_iptable_release(t, s[0]);
    wsock_iptable_release(t, s[0]);
    ck_assert_uint_eq(wsock_iptable_count(t, a), 3);
    ck_assert_int_ge(wsock_iptable_acquire(t, a, 4, 100), 0);
    wsock_iptable_release(t, s[3]);
    ck_assert_uint_eq(wsock_iptable_count(t, b), 0);
    /* out-of-range slots are ignored */
    wsock_iptable_release(t, -1);
    wsock_iptable_release(t, 16);
    wsock_iptable_release(t, 1 << 30);
    /* limit 0: counted, never refused */
    ck_assert_int_ge(wsock_iptable_acquire(t, b, 0, 101), 0);
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
        s = wsock_iptable_acquire(t, ip, 0, 7);
        ck_assert_int_ge(s, 0);
        if (first < 0) {
            first = s;
        }
    }
    ip_of(99, ip);
    ck_assert_int_eq(wsock_iptable_acquire(t, ip, 0, 7), WSOCK_IPTABLE_FULL);
    ck_assert_uint_eq(wsock_iptable_count(t, ip), 0);
    wsock_iptable_release(t, first);
    ck_assert_int_ge(wsock_iptable_acquire(t, ip, 0, 7), 0);
    free(t);
}
END_TEST

static int alive_unless_666(apr_int32_t pid, void *baton)
{
    (*(int *)baton)++;
    return pid != 666;
}

START_TEST(test_reap_dead_process)
{
    wsock_iptable *t = new_table(32, 3);
    unsigned char a[16], b[16];
    int calls = 0;

    ip_of(1, a);
    ip_of(2, b);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_ge(wsock_iptable_acquire(t, a, 0, 666), 0);
        ck_assert_int_ge(wsock_iptable_acquire(t, a, 0, 777), 0);
    }
    ck_assert_int_ge(wsock_iptable_acquire(t, b, 0, 666), 0);
    ck_assert_uint_eq(wsock_iptable_reap(t, alive_unless_666, &calls), 6);
    ck_assert_uint_eq(wsock_iptable_count(t, a), 5);
    ck_assert_uint_eq(wsock_iptable_count(t, b), 0);
    calls = 0;
    ck_assert_uint_eq(wsock_iptable_reap(t, alive_unless_666, &calls), 0);
    ck_assert_int_eq(calls, 1);         /* five slots of one live pid: asked once */
    free(t);
}
END_TEST

/* A long random run of acquires and releases on a small table against a
 * model: counts stay exact however entries collide, wrap and move back. */
START_TEST(test_random_against_model)
{
    enum { CONNS = 64, ADDRS = 40, LIMIT = 5, STEPS = 200000 };
    wsock_iptable *t = new_table(CONNS, (apr_uint32_t)_i * 7919u);
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
            s = wsock_iptable_acquire(t, ip, LIMIT, 1);
            if (model[a] >= LIMIT) {
                TU_CHECK(s == WSOCK_IPTABLE_OVER, "step %d: over the limit, got %d", step, s);
                continue;
            }
            TU_CHECK(s >= 0 && s < CONNS, "step %d: got %d", step, s);
            slot_addr[s] = (int)a;
            held[nheld++] = s;
            model[a]++;
        }
        if (step % 97 == 0) {
            for (unsigned a = 0; a < ADDRS; a++) {
                ip_of(a * 4099u, ip);
                TU_CHECK(wsock_iptable_count(t, ip) == model[a], "step %d addr %u: %u != %u",
                         step, a, wsock_iptable_count(t, ip), model[a]);
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
    tcase_add_loop_test(tc, test_random_against_model, 0, 4);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { iptable_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
