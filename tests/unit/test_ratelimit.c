/*
 * test_ratelimit.c — Check unit tests for the token buckets behind
 * WSockRateLimit (src/session/wsock_ratelimit.c).  The time is passed in, so
 * every case states exactly when each take happens.
 */
#include <stdint.h>
#include <stdlib.h>

#include "wsock_ratelimit.h"

#include "test_util.h"

#define SEC 1000000LL   /* one second in microseconds */
#define T0 1700000000LL * SEC

START_TEST(starts_full_and_runs_out)
{
    wsock_bucket b;

    wsock_bucket_init(&b, 10, 5, T0);
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(wsock_bucket_take(&b, 1, T0), "take %d of a full burst of 5", i);
    }
    ck_assert(!wsock_bucket_take(&b, 1, T0));
    ck_assert_uint_eq(wsock_bucket_available(&b, T0), 0);
}
END_TEST

START_TEST(refills_at_the_rate)
{
    wsock_bucket b;

    wsock_bucket_init(&b, 10, 5, T0);
    ck_assert(wsock_bucket_take(&b, 5, T0));
    /* 10 per second: one token every 100 ms, not a microsecond earlier */
    ck_assert(!wsock_bucket_take(&b, 1, T0 + SEC / 10 - 1));
    ck_assert(wsock_bucket_take(&b, 1, T0 + SEC / 10));
    ck_assert(!wsock_bucket_take(&b, 1, T0 + SEC / 10));
    /* 250 ms later: 2.5 tokens earned, 2 whole ones usable */
    ck_assert_uint_eq(wsock_bucket_available(&b, T0 + SEC / 10 + SEC / 4), 2);
    ck_assert(wsock_bucket_take(&b, 2, T0 + SEC / 10 + SEC / 4));
    ck_assert(!wsock_bucket_take(&b, 1, T0 + SEC / 10 + SEC / 4));
    /* the half token left over is not lost */
    ck_assert(wsock_bucket_take(&b, 1, T0 + SEC / 10 + SEC / 4 + SEC / 20));
}
END_TEST

START_TEST(never_more_than_the_burst)
{
    wsock_bucket b;

    wsock_bucket_init(&b, 1000, 3, T0);
    ck_assert(wsock_bucket_take(&b, 3, T0));
    /* a long pause fills the bucket, but only to its burst */
    ck_assert_uint_eq(wsock_bucket_available(&b, T0 + 3600 * SEC), 3);
    ck_assert(wsock_bucket_take(&b, 3, T0 + 3600 * SEC));
    ck_assert(!wsock_bucket_take(&b, 1, T0 + 3600 * SEC));
}
END_TEST

START_TEST(more_than_the_burst_never_fits)
{
    wsock_bucket b;

    wsock_bucket_init(&b, 100, 50, T0);
    ck_assert(!wsock_bucket_take(&b, 51, T0 + 1000 * SEC));
    /* a refused take leaves the bucket as it was */
    ck_assert(wsock_bucket_take(&b, 50, T0 + 1000 * SEC));
}
END_TEST

START_TEST(refused_take_costs_nothing)
{
    wsock_bucket b;

    wsock_bucket_init(&b, 1, 10, T0);
    ck_assert(wsock_bucket_take(&b, 7, T0));
    ck_assert(!wsock_bucket_take(&b, 4, T0));
    ck_assert(wsock_bucket_take(&b, 3, T0));
}
END_TEST

START_TEST(no_limit_when_rate_is_zero)
{
    wsock_bucket b;

    wsock_bucket_init(&b, 0, 1, T0);
    for (int i = 0; i < 1000; i++) {
        ck_assert(wsock_bucket_take(&b, (uint64_t)1 << 50, T0));
    }
    ck_assert_uint_eq(wsock_bucket_available(&b, T0), UINT64_MAX);
}
END_TEST

START_TEST(clock_going_back_adds_nothing)
{
    wsock_bucket b;

    wsock_bucket_init(&b, 10, 10, T0);
    ck_assert(wsock_bucket_take(&b, 10, T0));
    ck_assert(!wsock_bucket_take(&b, 1, T0 - 60 * SEC));
    /* time resumes from the newest stamp: 100 ms after T0 earns one */
    ck_assert(wsock_bucket_take(&b, 1, T0 + SEC / 10));
}
END_TEST

START_TEST(burst_at_least_one_and_clamped)
{
    wsock_bucket b;

    wsock_bucket_init(&b, 5, 0, T0);
    ck_assert_uint_eq(b.burst, 1);
    ck_assert(wsock_bucket_take(&b, 1, T0));
    wsock_bucket_init(&b, UINT64_MAX, UINT64_MAX, T0);
    ck_assert_uint_eq(b.rate, WSOCK_BUCKET_MAX);
    ck_assert_uint_eq(b.burst, WSOCK_BUCKET_MAX);
}
END_TEST

/* The largest values, after the longest pauses: nothing overflows, and a
 * bucket emptied at the largest rate is full again one second later. */
START_TEST(largest_values_do_not_overflow)
{
    wsock_bucket b;

    wsock_bucket_init(&b, WSOCK_BUCKET_MAX, WSOCK_BUCKET_MAX, T0);
    ck_assert(wsock_bucket_take(&b, WSOCK_BUCKET_MAX, T0));
    ck_assert(!wsock_bucket_take(&b, 1, T0));
    ck_assert_uint_eq(wsock_bucket_available(&b, T0 + SEC / 2), WSOCK_BUCKET_MAX / 2);
    ck_assert_uint_eq(wsock_bucket_available(&b, T0 + SEC), WSOCK_BUCKET_MAX);
    ck_assert(wsock_bucket_take(&b, WSOCK_BUCKET_MAX, INT64_MAX));
    ck_assert_uint_eq(wsock_bucket_available(&b, INT64_MAX), 0);

    wsock_bucket_init(&b, 1, WSOCK_BUCKET_MAX, INT64_MIN);
    ck_assert(wsock_bucket_take(&b, WSOCK_BUCKET_MAX, INT64_MIN));
    ck_assert_uint_eq(wsock_bucket_available(&b, INT64_MAX), WSOCK_BUCKET_MAX);
}
END_TEST

/* Long-run rate: a client taking one token whenever one is there gets
 * burst + rate * seconds of them, whatever the step between attempts. */
START_TEST(long_run_matches_rate)
{
    static const int64_t steps[] = { 1, 999, 12345, SEC / 3, SEC + 7 };
    int64_t step = steps[_i];
    wsock_bucket b;
    uint64_t got = 0;
    int64_t end = T0 + 60 * SEC;

    wsock_bucket_init(&b, 50, 100, T0);
    for (int64_t t = T0; t <= end; t += step) {
        while (wsock_bucket_take(&b, 1, t)) {
            got++;
        }
    }
    /* every attempt at or before `end`; what was earned after the last
     * attempt is missing, at most one step's worth */
    ck_assert_msg(got <= 100 + 50 * 60, "step %lld: %llu tokens", (long long)step,
                  (unsigned long long)got);
    ck_assert_msg(got + (uint64_t)(50 * step / SEC) + 1 >= 100 + 50 * 60,
                  "step %lld: only %llu tokens", (long long)step, (unsigned long long)got);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("bucket");

    tcase_add_test(tc, starts_full_and_runs_out);
    tcase_add_test(tc, refills_at_the_rate);
    tcase_add_test(tc, never_more_than_the_burst);
    tcase_add_test(tc, more_than_the_burst_never_fits);
    tcase_add_test(tc, refused_take_costs_nothing);
    tcase_add_test(tc, no_limit_when_rate_is_zero);
    tcase_add_test(tc, clock_going_back_adds_nothing);
    tcase_add_test(tc, burst_at_least_one_and_clamped);
    tcase_add_test(tc, largest_values_do_not_overflow);
    tcase_add_loop_test(tc, long_run_matches_rate, 0, 5);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { ratelimit_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
