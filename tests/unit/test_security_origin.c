/*
 * test_security_origin.c — Check unit tests for src/security/wsock_origin.c
 * (WSockAllowedOrigins: parsing the words, judging an Origin header
 * against the policy and against what the server is: its names, its
 * address and ports, never the request's Host header).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_fnmatch.h>
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

/* What the server is, as wsock_security.c would describe it. */
enum {
    S_NONE,         /* no description: nothing is same-origin */
    S_PLAIN,        /* ServerName example.com, on 192.0.2.10:80 */
    S_TLS,          /* the same over TLS, on :443 */
    S_TLS8443,      /* TLS on :8443 */
    S_ALIASES,      /* ServerName app.example, aliases and wildcards, on 10.0.0.5:8080 */
    S_PROXIED,      /* ServerName https://example.com, behind a TLS terminator: 127.0.0.1:8080 */
    S_NAMEPORT,     /* ServerName plain.example:80, behind a proxy: 127.0.0.1:8080 */
    S_LOOP,         /* ServerName 127.0.0.1, on 127.0.0.1:8080 (the tests' and the demo's) */
    S_LOOP6,        /* ServerName myhost, on [::1]:8080 */
    S_MAPPED,       /* on ::ffff:127.0.0.1 (a dual-stack listener) */
    S_UNNAMED,      /* no ServerName, no address */
    S_COUNT
};

/* Apache's matching of wildcard aliases, for the test: * and ?, no case. */
static int glob_match(const char *pattern, const char *host)
{
    return apr_fnmatch(pattern, host, APR_FNM_CASE_BLIND | APR_FNM_NOESCAPE) == APR_SUCCESS;
}

static apr_array_header_t *names_of(const char *const *names)
{
    apr_array_header_t *a = apr_array_make(pool, 2, sizeof(const char *));

    for (size_t i = 0; names[i]; i++) {
        APR_ARRAY_PUSH(a, const char *) = names[i];
    }
    return a;
}

static wsock_origin_self *self_of(int which)
{
    static const char *const aliases[] = { "alias.example", "WWW.App.Example", NULL };
    static const char *const wild[] = { "*.wild.example", "dev-??.example", NULL };
    wsock_origin_self *me = apr_pcalloc(pool, sizeof(*me));

    switch (which) {
    case S_NONE:
        return NULL;
    case S_PLAIN:
        *me = (wsock_origin_self){ 0, "example.com", NULL, NULL, NULL, "192.0.2.10", 80, 0 };
        break;
    case S_TLS:
        *me = (wsock_origin_self){ 1, "example.com", NULL, NULL, NULL, "192.0.2.10", 443, 0 };
        break;
    case S_TLS8443:
        *me = (wsock_origin_self){ 1, "example.com", NULL, NULL, NULL, "192.0.2.10", 8443, 0 };
        break;
    case S_ALIASES:
        *me = (wsock_origin_self){ 0, "app.example", names_of(aliases), names_of(wild),
                                   glob_match, "10.0.0.5", 8080, 0 };
        break;
    case S_PROXIED:
        *me = (wsock_origin_self){ 1, "example.com", NULL, NULL, NULL, "127.0.0.1", 8080, 443 };
        break;
    case S_NAMEPORT:
        *me = (wsock_origin_self){ 0, "plain.example", NULL, NULL, NULL, "127.0.0.1", 8080, 80 };
        break;
    case S_LOOP:
        *me = (wsock_origin_self){ 0, "127.0.0.1", NULL, NULL, NULL, "127.0.0.1", 8080, 0 };
        break;
    case S_LOOP6:
        *me = (wsock_origin_self){ 0, "myhost", NULL, NULL, NULL, "::1", 8080, 0 };
        break;
    case S_MAPPED:
        *me = (wsock_origin_self){ 0, "myhost", NULL, NULL, NULL, "::ffff:127.0.0.1", 8080, 0 };
        break;
    case S_UNNAMED:
        *me = (wsock_origin_self){ 0, NULL, NULL, NULL, NULL, NULL, 8080, 0 };
        break;
    }
    return me;
}

typedef struct {
    const char *const *words;   /* NULL: no directive at all */
    const char *origin;
    int self, allowed;
} origin_case;

static const origin_case origin_cases[] = {
    /* default (no directive) = same-origin; no Origin header passes */
    { NULL, NULL, S_PLAIN, 1 },
    { NULL, NULL, S_NONE, 1 },
    { NULL, "http://example.com", S_PLAIN, 1 },
    { NULL, "http://example.com:80", S_PLAIN, 1 },
    { NULL, "HTTP://EXAMPLE.COM", S_PLAIN, 1 },
    { NULL, "http://example.com.", S_PLAIN, 1 },            /* fully qualified */
    { NULL, "http://example.com..", S_PLAIN, 0 },
    { NULL, "http://192.0.2.10", S_PLAIN, 1 },              /* the address it arrived on */
    { NULL, "http://192.0.2.11", S_PLAIN, 0 },
    { NULL, "https://example.com", S_TLS, 1 },
    { NULL, "https://example.com:443", S_TLS, 1 },
    { NULL, "https://example.com:8443", S_TLS8443, 1 },
    { NULL, "https://example.com", S_TLS8443, 0 },
    { NULL, "http://example.com", S_TLS, 0 },               /* scheme of the request */
    { NULL, "https://example.com", S_PLAIN, 0 },
    { NULL, "http://example.com:8080", S_PLAIN, 0 },        /* not the port it arrived on */
    { NULL, "http://example.com", S_NONE, 0 },              /* nothing to match */
    { NULL, "http://example.com:8080", S_UNNAMED, 0 },
    { NULL, "http://localhost:8080", S_UNNAMED, 0 },
    /* DNS rebinding: the attacker's name, whatever the Host header said */
    { NULL, "http://evil.example", S_PLAIN, 0 },
    { NULL, "http://evil.example:8080", S_LOOP, 0 },
    { NULL, "http://example.com.evil.example", S_PLAIN, 0 },
    { NULL, "http://localhost.evil.example:8080", S_LOOP, 0 },
    /* ServerAlias, and wildcards as Apache matches them */
    { NULL, "http://app.example:8080", S_ALIASES, 1 },
    { NULL, "http://alias.example:8080", S_ALIASES, 1 },
    { NULL, "http://www.app.example:8080", S_ALIASES, 1 },
    { NULL, "http://a.wild.example:8080", S_ALIASES, 1 },
    { NULL, "http://a.b.wild.example:8080", S_ALIASES, 1 },  /* * spans dots */
    { NULL, "http://A.Wild.Example.:8080", S_ALIASES, 1 },
    { NULL, "http://wild.example:8080", S_ALIASES, 0 },
    { NULL, "http://awild.example:8080", S_ALIASES, 0 },
    { NULL, "http://dev-01.example:8080", S_ALIASES, 1 },
    { NULL, "http://dev-1.example:8080", S_ALIASES, 0 },
    { NULL, "http://10.0.0.5:8080", S_ALIASES, 1 },
    { NULL, "http://alias.example", S_ALIASES, 0 },        /* port 80: neither */
    { NULL, "http://alias.example:8081", S_ALIASES, 0 },
    { NULL, "http://localhost:8080", S_ALIASES, 0 },       /* not a loopback address */
    /* behind a proxy: the port ServerName names, or the one it arrived on */
    { NULL, "https://example.com", S_PROXIED, 1 },
    { NULL, "https://example.com:8080", S_PROXIED, 1 },
    { NULL, "https://example.com:8443", S_PROXIED, 0 },
    { NULL, "http://example.com", S_PROXIED, 0 },
    { NULL, "https://127.0.0.1:8080", S_PROXIED, 1 },
    { NULL, "http://plain.example", S_NAMEPORT, 1 },
    { NULL, "http://plain.example:8080", S_NAMEPORT, 1 },
    { NULL, "http://plain.example:81", S_NAMEPORT, 0 },
    { NULL, "http://127.0.0.1", S_NAMEPORT, 1 },          /* the address, ServerName's port */
    /* loopback: the address, and localhost */
    { NULL, "http://127.0.0.1:8080", S_LOOP, 1 },
    { NULL, "http://localhost:8080", S_LOOP, 1 },
    { NULL, "http://LOCALHOST.:8080", S_LOOP, 1 },
    { NULL, "http://localhost:8081", S_LOOP, 0 },
    { NULL, "http://127.0.0.2:8080", S_LOOP, 0 },
    { NULL, "http://[::1]:8080", S_LOOP, 0 },
    { NULL, "http://[::1]:8080", S_LOOP6, 1 },
    { NULL, "http://[0:0:0:0:0:0:0:1]:8080", S_LOOP6, 1 },
    { NULL, "http://localhost:8080", S_LOOP6, 1 },
    { NULL, "http://127.0.0.1:8080", S_LOOP6, 0 },
    { NULL, "http://127.0.0.1:8080", S_MAPPED, 1 },
    { NULL, "http://localhost:8080", S_MAPPED, 1 },
    { NULL, "http://[::ffff:127.0.0.1]:8080", S_MAPPED, 1 },
    /* not origins */
    { NULL, "null", S_PLAIN, 0 },
    { NULL, "", S_PLAIN, 0 },
    { NULL, "http://example.com/", S_PLAIN, 0 },
    { NULL, "http://user@example.com", S_PLAIN, 0 },
    { NULL, "http://example.com:", S_PLAIN, 0 },
    { NULL, "http://example.com:99999", S_PLAIN, 0 },
    { NULL, "http://exa mple.com", S_PLAIN, 0 },
    { NULL, "http://*.wild.example:8080", S_ALIASES, 0 },  /* no wildcard in a request */
    { w_default, "http://example.com", S_PLAIN, 1 },
    { w_same, "http://example.com", S_PLAIN, 1 },
    { w_same, "http://other.com", S_PLAIN, 0 },
    /* any */
    { w_any, "null", S_PLAIN, 1 },
    { w_any, "http://evil.example", S_PLAIN, 1 },
    { w_any, "garbage", S_NONE, 1 },
    /* a list, without same-origin */
    { w_list, "https://app.example.com", S_TLS, 1 },
    { w_list, "https://APP.example.COM:443", S_TLS, 1 },
    { w_list, "https://app.example.com:8443", S_TLS, 0 },
    { w_list, "http://app.example.com", S_TLS, 0 },
    { w_list, "https://app.example.com.evil", S_TLS, 0 },
    { w_list, "http://localhost:3000", S_NONE, 1 },
    { w_list, "http://localhost", S_NONE, 0 },
    { w_list, "https://a.example.org", S_NONE, 1 },
    { w_list, "https://a.b.c.example.org", S_NONE, 1 },
    { w_list, "https://example.org", S_NONE, 0 },
    { w_list, "https://evilexample.org", S_NONE, 0 },
    { w_list, "https://.example.org", S_NONE, 0 },
    { w_list, "https://a.example.org:443", S_NONE, 1 },
    { w_list, "https://a.example.org:444", S_NONE, 0 },
    { w_list, "chrome-extension://abcdef", S_NONE, 1 },
    { w_list, "chrome-extension://abcdeg", S_NONE, 0 },
    { w_list, "http://[::1]:8080", S_NONE, 1 },
    { w_list, "http://[::1]", S_NONE, 0 },
    { w_list, "http://example.com", S_PLAIN, 0 },          /* same-origin not listed */
    { w_same_plus, "http://example.com", S_PLAIN, 1 },
    { w_same_plus, "https://app.example.com", S_PLAIN, 1 },
    { w_same_plus, "https://b.example.com", S_PLAIN, 0 },
};

START_TEST(test_origin_table)
{
    const origin_case *c = &origin_cases[_i];
    wsock_origin_policy *p = c->words ? policy_of(c->words) : NULL;

    ck_assert_msg(wsock_origin_allowed(p, c->origin, self_of(c->self)) == c->allowed,
                  "case %d: origin '%s' server %d: expected %s", _i,
                  c->origin ? c->origin : "(none)", c->self,
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
    wsock_origin_self me = { 0, host, NULL, NULL, NULL, "127.0.0.1", 80, 0 };

    memset(host, 'a', 1000);
    host[1000] = '\0';
    snprintf(origin, sizeof(origin), "http://%.1000s", host);
    ck_assert_int_eq(wsock_origin_allowed(NULL, origin, &me), 0);
    snprintf(origin, sizeof(origin), "http://%.200s", host);
    host[200] = '\0';
    ck_assert_int_eq(wsock_origin_allowed(NULL, origin, &me), 1);
    snprintf(origin, sizeof(origin), "http://[%.200s]", "1111:2222:3333:4444:5555:6666:7777:"
             "8888:9999:aaaa:bbbb:cccc:dddd:eeee:ffff:1111:2222:3333:4444:5555:6666:7777");
    ck_assert_int_eq(wsock_origin_allowed(NULL, origin, &me), 0);
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
