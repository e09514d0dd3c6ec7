/*
 * test_security_origin.c — Check unit tests for src/security/wsock_origin.c
 * (WSockAllowedOrigins: parsing the words, judging an Origin header).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "wsock_origin.h"

#include "test_pool.h"
#include "test_util.h"

/* A policy from a NULL-terminated list of words; NULL list: the default. */
static wsock_origin_policy *policy_of(const char *const *words)
{
    wsock_origin_policy *p = NULL;

    for (size_t i = 0; words && words[i]; i++) {
        const char *err = wsock_origin_policy_add(pool, &p, words[i]);
        ck_assert_msg(err == NULL, "'%s': %s", words[i], err);
    }
    return p;
}

static const char *const w_default[] = { NULL };
static const char *const w_same[] = { "same-origin", NULL };
static const char *const w_any[] = { "any", NULL };
static const char *const w_list[] = { "https://App.Example.com", "http://localhost:3000",
                                      "https://*.example.org", "chrome-extension://abcdef",
                                      "http://[::1]:8080", NULL };
static const char *const w_same_plus[] = { "https://app.example.com", "same-origin", NULL };

typedef struct {
    const char *const *words;   /* NULL: no directive at all */
    const char *origin, *host;
    int https, allowed;
} origin_case;

static const origin_case origin_cases[] = {
    /* default (no directive) = same-origin; no Origin header passes */
    { NULL, NULL, "example.com", 0, 1 },
    { NULL, NULL, NULL, 0, 1 },
    { NULL, "http://example.com", "example.com", 0, 1 },
    { NULL, "http://example.com:80", "example.com", 0, 1 },
    { NULL, "http://example.com", "example.com:80", 0, 1 },
    { NULL, "HTTP://EXAMPLE.COM", "Example.Com", 0, 1 },
    { NULL, "https://example.com", "example.com", 1, 1 },
    { NULL, "https://example.com:443", "example.com:443", 1, 1 },
    { NULL, "https://example.com:8443", "example.com:8443", 1, 1 },
    { NULL, "http://[::1]:8080", "[::1]:8080", 0, 1 },
    { NULL, "http://example.com", "example.com", 1, 0 },     /* scheme of the connection */
    { NULL, "https://example.com", "example.com", 0, 0 },
    { NULL, "http://example.com:8080", "example.com", 0, 0 },
    { NULL, "http://example.com", "example.com:8080", 0, 0 },
    { NULL, "http://evil.example", "example.com", 0, 0 },
    { NULL, "http://example.com", NULL, 0, 0 },              /* no Host: nothing to match */
    { NULL, "null", "example.com", 0, 0 },
    { NULL, "", "example.com", 0, 0 },
    { NULL, "http://example.com/", "example.com", 0, 0 },
    { NULL, "http://user@example.com", "example.com", 0, 0 },
    { NULL, "http://example.com:", "example.com", 0, 0 },
    { NULL, "http://example.com:99999", "example.com", 0, 0 },
    { NULL, "http://exa mple.com", "exa mple.com", 0, 0 },
    { NULL, "http://*.example.com", "*.example.com", 0, 0 },  /* no wildcard in a request */
    { NULL, "http://example.com", "example.com/x", 0, 0 },
    { w_default, "http://example.com", "example.com", 0, 1 },
    { w_same, "http://example.com", "example.com", 0, 1 },
    { w_same, "http://other.com", "example.com", 0, 0 },
    /* any */
    { w_any, "null", "example.com", 0, 1 },
    { w_any, "http://evil.example", "example.com", 0, 1 },
    { w_any, "garbage", NULL, 0, 1 },
    /* a list, without same-origin */
    { w_list, "https://app.example.com", "example.com", 1, 1 },
    { w_list, "https://APP.example.COM:443", "example.com", 1, 1 },
    { w_list, "https://app.example.com:8443", "example.com", 1, 0 },
    { w_list, "http://app.example.com", "example.com", 1, 0 },
    { w_list, "https://app.example.com.evil", "example.com", 1, 0 },
    { w_list, "http://localhost:3000", "x", 0, 1 },
    { w_list, "http://localhost", "x", 0, 0 },
    { w_list, "https://a.example.org", "x", 0, 1 },
    { w_list, "https://a.b.c.example.org", "x", 0, 1 },
    { w_list, "https://example.org", "x", 0, 0 },
    { w_list, "https://evilexample.org", "x", 0, 0 },
    { w_list, "https://.example.org", "x", 0, 0 },
    { w_list, "https://a.example.org:443", "x", 0, 1 },
    { w_list, "https://a.example.org:444", "x", 0, 0 },
    { w_list, "chrome-extension://abcdef", "x", 0, 1 },
    { w_list, "chrome-extension://abcdeg", "x", 0, 0 },
    { w_list, "http://[::1]:8080", "x", 0, 1 },
    { w_list, "http://[::1]", "x", 0, 0 },
    { w_list, "http://example.com", "example.com", 0, 0 },   /* same-origin not listed */
    { w_same_plus, "http://example.com", "example.com", 0, 1 },
    { w_same_plus, "https://app.example.com", "example.com", 0, 1 },
    { w_same_plus, "https://b.example.com", "example.com", 0, 0 },
};

START_TEST(test_origin_table)
{
    const origin_case *c = &origin_cases[_i];
    wsock_origin_policy *p = c->words ? policy_of(c->words) : NULL;

    ck_assert_msg(wsock_origin_allowed(p, c->origin, c->host, c->https) == c->allowed,
                  "case %d: origin '%s' host '%s' https %d: expected %s", _i,
                  c->origin ? c->origin : "(none)", c->host ? c->host : "(none)", c->https,
                  c->allowed ? "allowed" : "refused");
}
END_TEST

static const char *const bad_words[] = {
    "", "example.com", "https://", "https://example.com/", "https://example.com/x",
    "https://*", "https://*.", "https://*..com", "https://a.*.example.com",
    "https://*example.com", "https://example.com:0", "https://example.com:65536",
    "https://example.com:12345678", "https://example.com:8a", "https://user@example.com",
    "://example.com", "1http://example.com", "ht tp://example.com", "https://[::1",
    "https://[zz]:80", "https://exa$mple.com",
};

START_TEST(test_bad_words)
{
    wsock_origin_policy *p = NULL;
    const char *err = wsock_origin_policy_add(pool, &p, bad_words[_i]);

    ck_assert_msg(err != NULL, "'%s' was accepted", bad_words[_i]);
    ck_assert_msg(strstr(err, "is not an origin") != NULL, "%s", err);
}
END_TEST

START_TEST(test_any_stands_alone)
{
    wsock_origin_policy *p = NULL;

    ck_assert_ptr_null(wsock_origin_policy_add(pool, &p, "ANY"));
    ck_assert_ptr_nonnull(wsock_origin_policy_add(pool, &p, "same-origin"));
    p = NULL;
    ck_assert_ptr_null(wsock_origin_policy_add(pool, &p, "https://a.example"));
    ck_assert_ptr_nonnull(wsock_origin_policy_add(pool, &p, "any"));
}
END_TEST

/* Bounded: a host longer than any real one is refused, not overflowed. */
START_TEST(test_long_host)
{
    char origin[1100], host[1100];

    memset(host, 'a', 1000);
    host[1000] = '\0';
    snprintf(origin, sizeof(origin), "http://%.1000s", host);
    ck_assert_int_eq(wsock_origin_allowed(NULL, origin, host, 0), 0);
    snprintf(origin, sizeof(origin), "http://%.200s", host);
    host[200] = '\0';
    ck_assert_int_eq(wsock_origin_allowed(NULL, origin, host, 0), 1);
}
END_TEST

static Suite *origin_suite(void)
{
    Suite *s = suite_create("origin");
    TCase *tc = tcase_create("origins");

    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_loop_test(tc, test_origin_table, 0, (int)TU_ARRAY_SIZE(origin_cases));
    tcase_add_loop_test(tc, test_bad_words, 0, (int)TU_ARRAY_SIZE(bad_words));
    tcase_add_test(tc, test_any_stands_alone);
    tcase_add_test(tc, test_long_host);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { origin_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
