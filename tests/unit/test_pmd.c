/*
 * test_pmd.c — Check unit tests for src/handshake/wsock_pmd.c: negotiation
 * of permessage-deflate (RFC 7692 §5, §7.1) on the grammar of
 * Sec-WebSocket-Extensions (RFC 6455 §9.1).
 *
 * The offers of real clients, Autobahn's section 13, every reason to
 * decline an offer and every grammar error, with the exact answers; then
 * random offers against an oracle that knows what it generated.
 */
#define _GNU_SOURCE                 /* strcasestr */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsock_pmd.h"

#include "test_util.h"

/* The module's defaults (docs: WSockCompression on) and variations. */
static const wsock_pmd_policy POL_DEFAULT = { 1, 1, 15, 15 };
static const wsock_pmd_policy POL_OPEN = { 0, 0, 15, 15 };     /* asks nothing */
static const wsock_pmd_policy POL_SMALL = { 0, 0, 10, 9 };
static const wsock_pmd_policy POL_MIN = { 1, 1, 9, 8 };
static const wsock_pmd_policy POL_SERVER_NCT = { 1, 0, 15, 15 };
static const wsock_pmd_policy POL_CLIENT_NCT = { 0, 1, 15, 15 };
static const wsock_pmd_policy POL_OUT_OF_RANGE = { 0, 0, 20, 3 }; /* clamped to 15, 8 */

static wsock_pmd_outcome negotiate(const char *header, const wsock_pmd_policy *pol,
                                   wsock_pmd_agreed *agreed, char *response, const char **why)
{
    memset(agreed, 0x5a, sizeof(*agreed));
    memset(response, 'Z', WSOCK_PMD_RESPONSE_MAX);
    *why = "(not set)";
    return wsock_pmd_negotiate(header, pol, agreed, response, why);
}

/* The answer, negotiated again as if it were an offer under a policy that
 * asks nothing, gives itself and the same agreement: it holds one
 * permessage-deflate element whose parameters are all known, valid and
 * single, and it states every value both sides follow. */
static void check_fixed_point(const char *name, const char *response,
                              const wsock_pmd_agreed *agreed)
{
    wsock_pmd_agreed again;
    char resp2[WSOCK_PMD_RESPONSE_MAX];
    const char *why;

    TU_CHECK(strchr(response, ',') == NULL, "%s: answer holds a list: %s", name, response);
    TU_CHECK(negotiate(response, &POL_OPEN, &again, resp2, &why) == WSOCK_PMD_ACCEPTED,
             "%s: answer \"%s\" does not negotiate: %s", name, response, why);
    TU_CHECK(strcmp(resp2, response) == 0, "%s: answer \"%s\" renegotiates to \"%s\"", name,
             response, resp2);
    TU_CHECK(memcmp(&again, agreed, sizeof(again)) == 0,
             "%s: answer \"%s\" states other values than were agreed", name, response);
}

/* =====================================================================
 * Accepted offers: exact answers and agreements
 * ================================================================== */

typedef struct {
    const char             *name;
    const char             *header;
    const wsock_pmd_policy *policy;
    const char             *response;
    wsock_pmd_agreed        agreed;
} accept_case;

#define CHROMIUM_OFFER "permessage-deflate; client_max_window_bits"
static const accept_case accept_cases[] = {
    /* Chromium's offer; Node ws (perMessageDeflate: true) and Python
     * websockets 10 (its default) send exactly the same. */
    { "chromium, defaults", CHROMIUM_OFFER, &POL_DEFAULT,
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
      { 1, 1, 15, 15 } },
    { "chromium, open policy", CHROMIUM_OFFER, &POL_OPEN, "permessage-deflate",
      { 0, 0, 15, 15 } },
    { "chromium, small windows", CHROMIUM_OFFER, &POL_SMALL,
      "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
      { 0, 0, 10, 9 } },
    { "python websockets, smallest windows", CHROMIUM_OFFER, &POL_MIN,
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
      "server_max_window_bits=9; client_max_window_bits=8",
      { 1, 1, 9, 8 } },
    { "node ws, server nct only", CHROMIUM_OFFER, &POL_SERVER_NCT,
      "permessage-deflate; server_no_context_takeover", { 1, 0, 15, 15 } },
    { "node ws, client nct only", CHROMIUM_OFFER, &POL_CLIENT_NCT,
      "permessage-deflate; client_no_context_takeover", { 0, 1, 15, 15 } },
    /* Firefox offers the bare name: the client may not be asked for a
     * smaller window (§7.1.2.2), whatever the policy */
    { "firefox, defaults", "permessage-deflate", &POL_DEFAULT,
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
      { 1, 1, 15, 15 } },
    { "firefox, small windows", "permessage-deflate", &POL_SMALL,
      "permessage-deflate; server_max_window_bits=10", { 0, 0, 10, 15 } },
    { "firefox, smallest windows", "permessage-deflate", &POL_MIN,
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
      "server_max_window_bits=9",
      { 1, 1, 9, 15 } },
    /* Autobahn section 13's offers */
    { "13: client nct + cmwb", "permessage-deflate; client_no_context_takeover; "
      "client_max_window_bits", &POL_OPEN, "permessage-deflate; client_no_context_takeover",
      { 0, 1, 15, 15 } },
    { "13: server nct", "permessage-deflate; server_no_context_takeover", &POL_OPEN,
      "permessage-deflate; server_no_context_takeover", { 1, 0, 15, 15 } },
    { "13: cmwb=8", "permessage-deflate; client_max_window_bits=8", &POL_OPEN,
      "permessage-deflate; client_max_window_bits=8", { 0, 0, 15, 8 } },
    { "13: cmwb=15", "permessage-deflate; client_max_window_bits=15", &POL_OPEN,
      "permessage-deflate; client_max_window_bits=15", { 0, 0, 15, 15 } },
    { "13: cmwb=15 small policy", "permessage-deflate; client_max_window_bits=15", &POL_SMALL,
      "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
      { 0, 0, 10, 9 } },
    { "13: cmwb=12 small policy", "permessage-deflate; client_max_window_bits=12", &POL_SMALL,
      "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
      { 0, 0, 10, 9 } },
    { "13: cmwb=8 small policy", "permessage-deflate; client_max_window_bits=8", &POL_SMALL,
      "permessage-deflate; server_max_window_bits=10; client_max_window_bits=8",
      { 0, 0, 10, 8 } },
    { "13: smwb=8", "permessage-deflate; client_max_window_bits; server_max_window_bits=8",
      &POL_OPEN, "permessage-deflate; server_max_window_bits=8", { 0, 0, 8, 15 } },
    { "13: smwb=9", "permessage-deflate; client_max_window_bits; server_max_window_bits=9",
      &POL_OPEN, "permessage-deflate; server_max_window_bits=9", { 0, 0, 9, 15 } },
    { "13: smwb=10", "permessage-deflate; server_max_window_bits=10", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=10", { 0, 0, 10, 15 } },
    { "13: smwb=11", "permessage-deflate; server_max_window_bits=11", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=11", { 0, 0, 11, 15 } },
    { "13: smwb=12", "permessage-deflate; server_max_window_bits=12", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=12", { 0, 0, 12, 15 } },
    { "13: smwb=13", "permessage-deflate; server_max_window_bits=13", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=13", { 0, 0, 13, 15 } },
    { "13: smwb=14", "permessage-deflate; server_max_window_bits=14", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=14", { 0, 0, 14, 15 } },
    /* an offered value is answered even when it is the largest */
    { "13: smwb=15", "permessage-deflate; server_max_window_bits=15", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=15", { 0, 0, 15, 15 } },
    { "13: smwb=15 default policy", "permessage-deflate; server_max_window_bits=15",
      &POL_DEFAULT, "permessage-deflate; server_no_context_takeover; "
      "client_no_context_takeover; server_max_window_bits=15", { 1, 1, 15, 15 } },
    { "13: smwb=12 small policy", "permessage-deflate; server_max_window_bits=12", &POL_SMALL,
      "permessage-deflate; server_max_window_bits=10", { 0, 0, 10, 15 } },
    { "13: smwb=9 small policy", "permessage-deflate; server_max_window_bits=9", &POL_SMALL,
      "permessage-deflate; server_max_window_bits=9", { 0, 0, 9, 15 } },
    { "13: smwb=8 smallest policy", "permessage-deflate; server_max_window_bits=8", &POL_MIN,
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
      "server_max_window_bits=8", { 1, 1, 8, 15 } },
    { "13: everything", "permessage-deflate; server_no_context_takeover; "
      "client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9",
      &POL_OPEN, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
      "server_max_window_bits=10; client_max_window_bits=9", { 1, 1, 10, 9 } },
    { "13: everything, other order", "permessage-deflate; client_max_window_bits=9; "
      "server_max_window_bits=10; client_no_context_takeover; server_no_context_takeover",
      &POL_OPEN, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
      "server_max_window_bits=10; client_max_window_bits=9", { 1, 1, 10, 9 } },
    /* several offers: the first acceptable one wins, in the client's order */
    { "13: first of two", "permessage-deflate; client_max_window_bits=8, permessage-deflate",
      &POL_OPEN, "permessage-deflate; client_max_window_bits=8", { 0, 0, 15, 8 } },
    { "13: first of three", "permessage-deflate; server_max_window_bits=9; "
      "client_no_context_takeover, permessage-deflate; server_max_window_bits=11, "
      "permessage-deflate", &POL_OPEN,
      "permessage-deflate; client_no_context_takeover; server_max_window_bits=9",
      { 0, 1, 9, 15 } },
    { "fallback after an invalid value", "permessage-deflate; server_max_window_bits=7, "
      "permessage-deflate; server_max_window_bits=9", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=9", { 0, 0, 9, 15 } },
    { "fallback after two declines", "permessage-deflate; foo, permessage-deflate; "
      "client_max_window_bits=16, permessage-deflate; client_max_window_bits=10",
      &POL_OPEN, "permessage-deflate; client_max_window_bits=10", { 0, 0, 15, 10 } },
    { "a later bad offer is not looked at", "permessage-deflate, permessage-deflate; foo",
      &POL_OPEN, "permessage-deflate", { 0, 0, 15, 15 } },
    /* other extensions are skipped */
    { "after another extension", "x-webkit-deflate-frame, " CHROMIUM_OFFER, &POL_OPEN,
      "permessage-deflate", { 0, 0, 15, 15 } },
    { "after one with parameters", "foo; bar=\"baz\"; qux, permessage-deflate; "
      "client_max_window_bits=11", &POL_OPEN, "permessage-deflate; client_max_window_bits=11",
      { 0, 0, 15, 11 } },
    { "before another extension", "permessage-deflate; server_max_window_bits=11, "
      "mux; quota=1", &POL_OPEN, "permessage-deflate; server_max_window_bits=11",
      { 0, 0, 11, 15 } },
    { "unknown parameters of another extension", "foo; server_max_window_bits=99; foo; x, "
      "permessage-deflate", &POL_OPEN, "permessage-deflate", { 0, 0, 15, 15 } },
    /* quoted values (RFC 6455 §9.1: a token once unescaped) */
    { "quoted smwb", "permessage-deflate; server_max_window_bits=\"10\"", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=10", { 0, 0, 10, 15 } },
    { "quoted cmwb", "permessage-deflate; client_max_window_bits=\"8\"", &POL_OPEN,
      "permessage-deflate; client_max_window_bits=8", { 0, 0, 15, 8 } },
    { "quoted with escapes", "permessage-deflate; client_max_window_bits=\"\\1\\1\"", &POL_OPEN,
      "permessage-deflate; client_max_window_bits=11", { 0, 0, 15, 11 } },
    { "quoted other extension", "foo; a=\"b\\c\", permessage-deflate", &POL_OPEN,
      "permessage-deflate", { 0, 0, 15, 15 } },
    /* case */
    { "name in capitals", "PERMESSAGE-DEFLATE", &POL_OPEN, "permessage-deflate",
      { 0, 0, 15, 15 } },
    { "mixed case everywhere", "PerMessage-Deflate; Client_Max_Window_Bits=10; "
      "SERVER_NO_CONTEXT_TAKEOVER", &POL_OPEN,
      "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
      { 1, 0, 15, 10 } },
    /* optional whitespace around every separator, empty list elements */
    { "whitespace", "  permessage-deflate ;\tclient_max_window_bits = 10 ;"
      "server_max_window_bits= \"11\"  ,  ", &POL_OPEN,
      "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10",
      { 0, 0, 11, 10 } },
    { "no whitespace", "permessage-deflate;server_no_context_takeover;"
      "client_max_window_bits=9", &POL_OPEN,
      "permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
      { 1, 0, 15, 9 } },
    { "empty elements", ", ,permessage-deflate,,", &POL_OPEN, "permessage-deflate",
      { 0, 0, 15, 15 } },
    { "tabs only", "\tpermessage-deflate\t", &POL_OPEN, "permessage-deflate",
      { 0, 0, 15, 15 } },
    /* a policy outside its ranges is clamped (the directive's parser keeps
     * it inside; this only bounds what a mistake could write) */
    { "policy clamped", CHROMIUM_OFFER, &POL_OUT_OF_RANGE,
      "permessage-deflate; client_max_window_bits=8", { 0, 0, 15, 8 } },
};

START_TEST(test_accept)
{
    const accept_case *c = &accept_cases[_i];
    wsock_pmd_agreed agreed;
    char response[WSOCK_PMD_RESPONSE_MAX];
    const char *why;
    wsock_pmd_outcome out = negotiate(c->header, c->policy, &agreed, response, &why);

    ck_assert_msg(out == WSOCK_PMD_ACCEPTED, "%s: outcome %d (%s)", c->name, out, why);
    ck_assert_msg(strcmp(response, c->response) == 0, "%s: answered \"%s\", expected \"%s\"",
                  c->name, response, c->response);
    ck_assert_msg(agreed.server_no_context_takeover == c->agreed.server_no_context_takeover
                  && agreed.client_no_context_takeover == c->agreed.client_no_context_takeover
                  && agreed.server_max_window_bits == c->agreed.server_max_window_bits
                  && agreed.client_max_window_bits == c->agreed.client_max_window_bits,
                  "%s: agreed {%d,%d,%d,%d}, expected {%d,%d,%d,%d}", c->name,
                  agreed.server_no_context_takeover, agreed.client_no_context_takeover,
                  agreed.server_max_window_bits, agreed.client_max_window_bits,
                  c->agreed.server_no_context_takeover, c->agreed.client_no_context_takeover,
                  c->agreed.server_max_window_bits, c->agreed.client_max_window_bits);
    ck_assert_msg(why == NULL, "%s: why set on acceptance", c->name);
    /* §7.1.2.2: never ask a client for a window it did not offer to limit */
    if (strcasestr(c->header, "client_max_window_bits") == NULL) {
        ck_assert_msg(strstr(response, "client_max_window_bits") == NULL, "%s", c->name);
    }
    check_fixed_point(c->name, response, &agreed);
    /* why may be NULL */
    ck_assert_int_eq(wsock_pmd_negotiate(c->header, c->policy, &agreed, response, NULL),
                     WSOCK_PMD_ACCEPTED);
}
END_TEST

/* The longest answer there is fits, with room to spare. */
START_TEST(test_longest_answer)
{
    wsock_pmd_agreed agreed;
    char response[WSOCK_PMD_RESPONSE_MAX + 16];
    const char *why;

    memset(response, 0x55, sizeof(response));
    ck_assert_int_eq(wsock_pmd_negotiate("permessage-deflate; server_no_context_takeover; "
                                         "client_no_context_takeover; server_max_window_bits=15; "
                                         "client_max_window_bits=15", &POL_DEFAULT, &agreed,
                                         response, &why), WSOCK_PMD_ACCEPTED);
    ck_assert_str_eq(response, "permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover; server_max_window_bits=15; "
                     "client_max_window_bits=15");
    ck_assert_uint_eq(strlen(response), 128);          /* documented in wsock_pmd.h */
    ck_assert_uint_lt(strlen(response), WSOCK_PMD_RESPONSE_MAX);
    for (size_t i = strlen(response) + 1; i < sizeof(response); i++) {
        ck_assert_uint_eq((unsigned char)response[i], 0x55);
    }
}
END_TEST

/* =====================================================================
 * Declined offers (RFC 7692 §5): unknown, repeated, invalid
 * ================================================================== */

typedef struct {
    const char *offer;
    const char *why;          /* a part of the reason given */
} decline_case;

static const decline_case decline_cases[] = {
    { "permessage-deflate; foo", "unknown" },
    { "permessage-deflate; foo=1", "unknown" },
    { "permessage-deflate; x-webkit-deflate-frame", "unknown" },
    { "permessage-deflate; max_window_bits=10", "unknown" },
    { "permessage-deflate; server_no_context_takeover_", "unknown" },
    { "permessage-deflate; client_max_window_bit", "unknown" },
    { "permessage-deflate; server_no_context_takeover; foo; client_no_context_takeover",
      "unknown" },
    { "permessage-deflate; server_no_context_takeover; server_no_context_takeover", "repeated" },
    { "permessage-deflate; client_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER", "repeated" },
    { "permessage-deflate; client_max_window_bits; client_max_window_bits=10", "repeated" },
    { "permessage-deflate; client_max_window_bits=10; client_max_window_bits", "repeated" },
    { "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", "repeated" },
    { "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11", "repeated" },
    { "permessage-deflate; server_no_context_takeover=true", "has a value" },
    { "permessage-deflate; server_no_context_takeover=1", "has a value" },
    { "permessage-deflate; client_no_context_takeover=\"x\"", "has a value" },
    { "permessage-deflate; server_max_window_bits", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=7", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=16", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=0", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=08", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=015", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=1e1", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=80", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=9a", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=1", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=+9", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=-8", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=10.0", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=0xf", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=abc", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=4294967306", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=\"7\"", "server_max_window_bits" },
    { "permessage-deflate; server_max_window_bits=\"1\\0\\0\"", "server_max_window_bits" },
    { "permessage-deflate; client_max_window_bits=7", "client_max_window_bits" },
    { "permessage-deflate; client_max_window_bits=16", "client_max_window_bits" },
    { "permessage-deflate; client_max_window_bits=08", "client_max_window_bits" },
    { "permessage-deflate; client_max_window_bits=0", "client_max_window_bits" },
    { "permessage-deflate; client_max_window_bits=99", "client_max_window_bits" },
    { "permessage-deflate; client_max_window_bits=150", "client_max_window_bits" },
    { "permessage-deflate; client_max_window_bits=\"16\"", "client_max_window_bits" },
    { "permessage-deflate; client_max_window_bits=true", "client_max_window_bits" },
};

/* Alone, the offer gives nothing and says why; before an acceptable offer,
 * that one is taken instead (the answer differs from what accepting the
 * bad offer would give, so a rule that stopped declining fails here). */
START_TEST(test_decline)
{
    const decline_case *c = &decline_cases[_i];
    wsock_pmd_agreed agreed;
    char response[WSOCK_PMD_RESPONSE_MAX], both[256];
    const char *why;

    ck_assert_msg(negotiate(c->offer, &POL_OPEN, &agreed, response, &why) == WSOCK_PMD_NONE,
                  "%s: not declined (answered \"%s\")", c->offer, response);
    ck_assert_msg(why != NULL && strstr(why, "declined") && strstr(why, c->why),
                  "%s: why \"%s\", expected \"%s\"", c->offer, why ? why : "(null)", c->why);
    ck_assert_msg(response[0] == '\0', "%s: an answer on a decline", c->offer);

    snprintf(both, sizeof(both), "%s, permessage-deflate; server_max_window_bits=12", c->offer);
    ck_assert_msg(negotiate(both, &POL_OPEN, &agreed, response, &why) == WSOCK_PMD_ACCEPTED,
                  "%s: the next offer was not tried (%s)", both, why);
    ck_assert_str_eq(response, "permessage-deflate; server_max_window_bits=12");
    ck_assert_int_eq(agreed.server_max_window_bits, 12);
}
END_TEST

/* The reason given is the first declined offer's. */
START_TEST(test_decline_first_reason)
{
    wsock_pmd_agreed agreed;
    char response[WSOCK_PMD_RESPONSE_MAX];
    const char *why;

    ck_assert_int_eq(negotiate("permessage-deflate; foo, permessage-deflate; "
                               "server_max_window_bits=1", &POL_OPEN, &agreed, response, &why),
                     WSOCK_PMD_NONE);
    ck_assert_ptr_nonnull(strstr(why, "unknown"));
    ck_assert_int_eq(negotiate("permessage-deflate; server_max_window_bits=1, "
                               "permessage-deflate; foo", &POL_OPEN, &agreed, response, &why),
                     WSOCK_PMD_NONE);
    ck_assert_ptr_nonnull(strstr(why, "server_max_window_bits"));
}
END_TEST

/* =====================================================================
 * No offer at all
 * ================================================================== */

static const char *const none_cases[] = {
    "", " ", "\t", "  \t ", ",", ", ,", " , \t, ",
    "x-webkit-deflate-frame",
    "foo; bar=1, baz",
    "permessage-deflatex",                 /* names are compared whole */
    "permessage-deflat",
    "permessage_deflate",
    "x-permessage-deflate; client_max_window_bits",
    "deflate-frame; permessage-deflate",   /* a parameter of another extension */
};

START_TEST(test_none)
{
    const char *header = none_cases[_i];
    wsock_pmd_agreed agreed, before;
    char response[WSOCK_PMD_RESPONSE_MAX];
    const char *why;

    ck_assert_msg(negotiate(header, &POL_DEFAULT, &agreed, response, &why) == WSOCK_PMD_NONE,
                  "\"%s\": not NONE", header);
    ck_assert_msg(why != NULL && strcmp(why, "no permessage-deflate offer") == 0,
                  "\"%s\": why \"%s\"", header, why ? why : "(null)");
    ck_assert_msg(response[0] == '\0', "\"%s\": an answer", header);
    memset(&before, 0x5a, sizeof(before));
    ck_assert_msg(memcmp(&agreed, &before, sizeof(agreed)) == 0, "\"%s\": *agreed written",
                  header);
}
END_TEST

START_TEST(test_none_null)
{
    wsock_pmd_agreed agreed;
    char response[WSOCK_PMD_RESPONSE_MAX];
    const char *why;

    ck_assert_int_eq(negotiate(NULL, &POL_DEFAULT, &agreed, response, &why), WSOCK_PMD_NONE);
    ck_assert_str_eq(why, "no permessage-deflate offer");
    ck_assert_str_eq(response, "");
    ck_assert_int_eq(wsock_pmd_negotiate(NULL, &POL_DEFAULT, &agreed, response, NULL),
                     WSOCK_PMD_NONE);
}
END_TEST

/* =====================================================================
 * Malformed headers (RFC 6455 §9.1's grammar): 400
 * ================================================================== */

typedef struct {
    const char *element;
    const char *why;          /* a part of the reason given */
} malformed_case;

static const malformed_case malformed_cases[] = {
    { ";", "extension name" },
    { "; server_no_context_takeover", "extension name" },
    { "=10", "extension name" },
    { "\"permessage-deflate\"", "extension name" },
    { "permessage-deflate;", "parameter name" },
    { "permessage-deflate; ", "parameter name" },
    { "permessage-deflate;;server_no_context_takeover", "parameter name" },
    { "permessage-deflate; =10", "parameter name" },
    { "permessage-deflate; \"server_no_context_takeover\"", "parameter name" },
    { "permessage-deflate; server_max_window_bits=", "no value" },
    { "permessage-deflate; server_max_window_bits= ;client_no_context_takeover", "no value" },
    { "permessage-deflate; \tx=\t", "no value" },
    { "permessage-deflate; x==1", "no value" },
    { "permessage-deflate; server_max_window_bits=\"10", "not terminated" },
    { "permessage-deflate; server_max_window_bits=\"10\\", "not terminated" },
    { "permessage-deflate; server_max_window_bits=\"", "not terminated" },
    { "permessage-deflate; server_max_window_bits=\"1 0\"", "not a token" },
    { "permessage-deflate; server_max_window_bits=\" 10\"", "not a token" },
    { "permessage-deflate; x=\"a\\\"b\"", "not a token" },
    { "permessage-deflate; x=\"a,b\"", "not a token" },
    { "permessage-deflate; x=\"a;b\"", "not a token" },
    { "permessage-deflate; x=\"\\ \"", "not a token" },
    { "permessage-deflate; x=\"\xc3\xa9\"", "not a token" },
    { "permessage-deflate; x=\"\"", "empty" },
    { "permessage deflate", "neither" },
    { "permessage-deflate server_no_context_takeover", "neither" },
    { "permessage-deflate; server_max_window_bits=1 0", "neither" },
    { "permessage-deflate; a=b=c", "neither" },
    { "permessage-deflate/2", "neither" },
    { "permessage-deflate; x=(y)", "no value" },
    { "permessage-deflate; client_max_window_bits=\"10\"x", "neither" },
    { "permessage-deflat\xc3\xa9", "neither" },
    { "permessage-deflate\r", "neither" },
    { "permessage-deflate; server_no_context_takeover\x01", "neither" },
    { "x-foo; y=\"unterminated", "not terminated" },
    { "foo bar", "neither" },
    { "\x7f", "extension name" },
};

/* Alone, after an acceptable offer and before one: a syntax error
 * anywhere makes the whole header malformed. */
START_TEST(test_malformed)
{
    const malformed_case *c = &malformed_cases[_i];
    wsock_pmd_agreed agreed;
    char response[WSOCK_PMD_RESPONSE_MAX], header[256];
    const char *why;
    const char *forms[] = { "%s", "permessage-deflate, %s", "%s, permessage-deflate",
                            CHROMIUM_OFFER ", %s, permessage-deflate" };

    for (size_t f = 0; f < TU_ARRAY_SIZE(forms); f++) {
        snprintf(header, sizeof(header), forms[f], c->element);
        ck_assert_msg(negotiate(header, &POL_DEFAULT, &agreed, response, &why)
                      == WSOCK_PMD_MALFORMED, "\"%s\": not malformed (answered \"%s\")", header,
                      response);
        /* the reason, where the element ends the header (a quoted value
         * left open would take in the rest) */
        ck_assert_msg(why != NULL && (f > 1 || strstr(why, c->why) != NULL),
                      "\"%s\": why \"%s\", expected \"%s\"", header, why ? why : "(null)",
                      c->why);
        ck_assert_msg(response[0] == '\0', "\"%s\": an answer", header);
    }
}
END_TEST

/* =====================================================================
 * Long headers cost linear time and give the same answer
 * ================================================================== */

START_TEST(test_long_header)
{
    static const char declined[] = "permessage-deflate; foo, ";
    size_t n = 4000, len = n * (sizeof(declined) - 1);
    char *header = malloc(len + 64);
    wsock_pmd_agreed agreed;
    char response[WSOCK_PMD_RESPONSE_MAX];
    const char *why;

    ck_assert_ptr_nonnull(header);
    for (size_t i = 0; i < n; i++) {
        memcpy(header + i * (sizeof(declined) - 1), declined, sizeof(declined) - 1);
    }
    strcpy(header + len, "permessage-deflate; server_max_window_bits=9");
    ck_assert_int_eq(negotiate(header, &POL_OPEN, &agreed, response, &why), WSOCK_PMD_ACCEPTED);
    ck_assert_str_eq(response, "permessage-deflate; server_max_window_bits=9");
    strcpy(header + len, "permessage-deflate; server_max_window_bits=9;");
    ck_assert_int_eq(negotiate(header, &POL_OPEN, &agreed, response, &why), WSOCK_PMD_MALFORMED);
    free(header);
}
END_TEST

/* =====================================================================
 * Random offers against an oracle that knows what it wrote
 * ================================================================== */

typedef struct {
    char   text[1024];
    size_t len;
} gen_buf;

static void gen_put(gen_buf *b, const char *s)
{
    size_t n = strlen(s);

    ck_assert_uint_lt(b->len + n, sizeof(b->text));
    memcpy(b->text + b->len, s, n + 1);
    b->len += n;
}

/* Optional whitespace: none, a space, a tab, or both. */
static void gen_ows(gen_buf *b, tu_rng *r)
{
    static const char *const ows[] = { "", "", " ", "\t", " \t " };

    gen_put(b, ows[tu_rand_range(r, 0, TU_ARRAY_SIZE(ows) - 1)]);
}

/* name with each letter's case drawn at random. */
static void gen_name(gen_buf *b, tu_rng *r, const char *name)
{
    char tmp[64];
    size_t i;

    for (i = 0; name[i] && i < sizeof(tmp) - 1; i++) {
        tmp[i] = (tu_rand(r) & 3) == 0 && name[i] >= 'a' && name[i] <= 'z'
                 ? (char)(name[i] - 'a' + 'A') : name[i];
    }
    tmp[i] = '\0';
    gen_put(b, tmp);
}

/* A value in 8..15, as a token or a quoted-string with or without escapes. */
static void gen_bits(gen_buf *b, tu_rng *r, int bits)
{
    char digits[4], tmp[16];

    snprintf(digits, sizeof(digits), "%d", bits);
    switch (tu_rand_range(r, 0, 2)) {
    case 0:
        gen_put(b, digits);
        break;
    case 1:
        snprintf(tmp, sizeof(tmp), "\"%s\"", digits);
        gen_put(b, tmp);
        break;
    default:
        if (digits[1]) {
            snprintf(tmp, sizeof(tmp), "\"\\%c%c\"", digits[0], digits[1]);
        }
        else {
            snprintf(tmp, sizeof(tmp), "\"\\%c\"", digits[0]);
        }
        gen_put(b, tmp);
        break;
    }
}

static void gen_param(gen_buf *b, tu_rng *r, const char *name, int bits)
{
    gen_ows(b, r);
    gen_put(b, ";");
    gen_ows(b, r);
    gen_name(b, r, name);
    if (bits) {
        gen_ows(b, r);
        gen_put(b, "=");
        gen_ows(b, r);
        gen_bits(b, r, bits);
    }
}

/* One acceptable offer, its parameters in a random order.  o holds what
 * was offered: no-context flags, smwb (0 = absent), cmwb (-1 = absent,
 * 0 = without a value). */
typedef struct {
    int snct, cnct, smwb, cmwb;
} gen_offer;

static void gen_good_offer(gen_buf *b, tu_rng *r, gen_offer *o)
{
    int order[4] = { 0, 1, 2, 3 };

    o->snct = (int)tu_rand_range(r, 0, 1);
    o->cnct = (int)tu_rand_range(r, 0, 1);
    o->smwb = tu_rand_range(r, 0, 1) ? (int)tu_rand_range(r, 8, 15) : 0;
    o->cmwb = (int)tu_rand_range(r, 0, 2) - 1;
    if (o->cmwb > 0) {
        o->cmwb = (int)tu_rand_range(r, 8, 15);
    }
    for (int i = 3; i > 0; i--) {
        int j = (int)tu_rand_range(r, 0, (size_t)i), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    gen_name(b, r, "permessage-deflate");
    for (int i = 0; i < 4; i++) {
        switch (order[i]) {
        case 0:
            if (o->snct) {
                gen_param(b, r, "server_no_context_takeover", 0);
            }
            break;
        case 1:
            if (o->cnct) {
                gen_param(b, r, "client_no_context_takeover", 0);
            }
            break;
        case 2:
            if (o->smwb) {
                gen_param(b, r, "server_max_window_bits", o->smwb);
            }
            break;
        default:
            if (o->cmwb >= 0) {
                gen_param(b, r, "client_max_window_bits", o->cmwb);
            }
            break;
        }
    }
}

/* An offer that must be declined. */
static void gen_bad_offer(gen_buf *b, tu_rng *r)
{
    gen_name(b, r, "permessage-deflate");
    switch (tu_rand_range(r, 0, 3)) {
    case 0:
        gen_param(b, r, "client_no_context_takeover", 0);
        gen_param(b, r, "client_no_context_takeover", 0);
        break;
    case 1:
        gen_param(b, r, "server_max_window_bits", 0);
        break;
    case 2:
        gen_param(b, r, "unknown_param", 0);
        break;
    default:
        gen_ows(b, r);
        gen_put(b, "; client_max_window_bits=");
        gen_put(b, tu_rand_range(r, 0, 1) ? "16" : "7");
        break;
    }
}

static int expect_min(int a, int b)
{
    return a < b ? a : b;
}

START_TEST(test_random_offers)
{
    static const wsock_pmd_policy *const policies[] = {
        &POL_DEFAULT, &POL_OPEN, &POL_SMALL, &POL_MIN, &POL_SERVER_NCT, &POL_CLIENT_NCT
    };
    tu_rng r;

    tu_rng_seed(&r, 7692);
    for (int iter = 0; iter < 20000; iter++) {
        const wsock_pmd_policy *pol = policies[tu_rand_range(&r, 0, TU_ARRAY_SIZE(policies) - 1)];
        gen_buf b = { "", 0 };
        gen_offer o;
        wsock_pmd_agreed agreed, want;
        char response[WSOCK_PMD_RESPONSE_MAX], expect[WSOCK_PMD_RESPONSE_MAX];
        const char *why;
        size_t n;

        /* other extensions and declined offers before, more after */
        for (size_t k = tu_rand_range(&r, 0, 3); k > 0; k--) {
            if (tu_rand_range(&r, 0, 1)) {
                gen_bad_offer(&b, &r);
            }
            else {
                gen_put(&b, "x-other; a=\"b\"");
            }
            gen_ows(&b, &r);
            gen_put(&b, ",");
            gen_ows(&b, &r);
        }
        gen_good_offer(&b, &r, &o);
        if (tu_rand_range(&r, 0, 1)) {
            gen_ows(&b, &r);
            gen_put(&b, ",");
            gen_ows(&b, &r);
            gen_good_offer(&b, &r, &(gen_offer){ 0, 0, 0, 0 });
        }

        want.server_no_context_takeover = o.snct || pol->server_no_context_takeover;
        want.client_no_context_takeover = o.cnct || pol->client_no_context_takeover;
        want.server_max_window_bits = expect_min(o.smwb ? o.smwb : 15,
                                                 pol->server_max_window_bits);
        want.client_max_window_bits = o.cmwb < 0 ? 15
                                      : expect_min(o.cmwb ? o.cmwb : 15,
                                                   pol->client_max_window_bits);
        n = (size_t)snprintf(expect, sizeof(expect), "permessage-deflate");
        if (want.server_no_context_takeover) {
            n += (size_t)snprintf(expect + n, sizeof(expect) - n, "; server_no_context_takeover");
        }
        if (want.client_no_context_takeover) {
            n += (size_t)snprintf(expect + n, sizeof(expect) - n, "; client_no_context_takeover");
        }
        if (o.smwb || want.server_max_window_bits < 15) {
            n += (size_t)snprintf(expect + n, sizeof(expect) - n, "; server_max_window_bits=%d",
                                  want.server_max_window_bits);
        }
        if (o.cmwb > 0 || (o.cmwb == 0 && want.client_max_window_bits < 15)) {
            snprintf(expect + n, sizeof(expect) - n, "; client_max_window_bits=%d",
                     want.client_max_window_bits);
        }

        TU_CHECK(negotiate(b.text, pol, &agreed, response, &why) == WSOCK_PMD_ACCEPTED,
                 "iteration %d: \"%s\" not accepted: %s", iter, b.text, why);
        TU_CHECK(strcmp(response, expect) == 0, "iteration %d: \"%s\" answered \"%s\", "
                 "expected \"%s\"", iter, b.text, response, expect);
        TU_CHECK(memcmp(&agreed, &want, sizeof(want)) == 0, "iteration %d: \"%s\": agreed "
                 "{%d,%d,%d,%d}", iter, b.text, agreed.server_no_context_takeover,
                 agreed.client_no_context_takeover, agreed.server_max_window_bits,
                 agreed.client_max_window_bits);
        check_fixed_point(b.text, response, &agreed);

        /* a stray separator at the end breaks the grammar */
        gen_put(&b, tu_rand_range(&r, 0, 1) ? ";" : "=");
        TU_CHECK(negotiate(b.text, pol, &agreed, response, &why) == WSOCK_PMD_MALFORMED,
                 "iteration %d: \"%s\" not malformed", iter, b.text);
    }
}
END_TEST

static Suite *pmd_suite(void)
{
    Suite *s = suite_create("permessage-deflate negotiation");
    TCase *tc = tcase_create("accept");

    tcase_add_loop_test(tc, test_accept, 0, (int)TU_ARRAY_SIZE(accept_cases));
    tcase_add_test(tc, test_longest_answer);
    suite_add_tcase(s, tc);

    tc = tcase_create("decline");
    tcase_add_loop_test(tc, test_decline, 0, (int)TU_ARRAY_SIZE(decline_cases));
    tcase_add_test(tc, test_decline_first_reason);
    suite_add_tcase(s, tc);

    tc = tcase_create("none");
    tcase_add_loop_test(tc, test_none, 0, (int)TU_ARRAY_SIZE(none_cases));
    tcase_add_test(tc, test_none_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_loop_test(tc, test_malformed, 0, (int)TU_ARRAY_SIZE(malformed_cases));
    tcase_add_test(tc, test_long_header);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_random_offers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { pmd_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
