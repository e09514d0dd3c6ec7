/*
 * test_handshake.c — Check unit tests for src/handshake (RFC 6455 §4.2
 * opening-handshake validation).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_base64.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "wsock_handshake.h"

#include "test_pool.h"
#include "test_util.h"


/* An apr array of const char * from a NULL-terminated list (NULL list:
 * NULL array). */
static apr_array_header_t *str_array(const char *const *list)
{
    apr_array_header_t *a;

    if (list == NULL) {
        return NULL;
    }
    a = apr_array_make(pool, 4, sizeof(const char *));
    for (size_t i = 0; list[i] != NULL; i++) {
        APR_ARRAY_PUSH(a, const char *) = list[i];
    }
    return a;
}

/* =====================================================================
 * Sec-WebSocket-Accept
 * ================================================================== */

/* RFC 6455 §1.3's example; the expected value was also computed
 * independently: printf '%s' 'dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-
 * 95CA-C5AB0DC85B11' | openssl sha1 -binary | base64 */
START_TEST(test_accept_rfc_example)
{
    char out[WSOCK_ACCEPT_SIZE + 4];

    memset(out, 0x55, sizeof(out));
    wsock_accept_value("dGhlIHNhbXBsZSBub25jZQ==", out);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ck_assert_uint_eq(strlen(out) + 1, WSOCK_ACCEPT_SIZE);
    /* nothing written past the documented size */
    for (size_t i = WSOCK_ACCEPT_SIZE; i < sizeof(out); i++) {
        ck_assert_uint_eq((unsigned char)out[i], 0x55);
    }
}
END_TEST

/* More keys, values computed with openssl as above. */
START_TEST(test_accept_other_keys)
{
    static const struct { const char *key, *accept; } cases[] = {
        { "AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI=" },
        { "x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk=" },
    };
    char out[WSOCK_ACCEPT_SIZE];

    for (size_t i = 0; i < TU_ARRAY_SIZE(cases); i++) {
        wsock_accept_value(cases[i].key, out);
        ck_assert_str_eq(out, cases[i].accept);
    }
}
END_TEST

/* =====================================================================
 * Token lists
 * ================================================================== */

typedef struct {
    const char *header;
    const char *token;
    int         expect;
} token_case;

static const token_case token_cases[] = {
    { "Upgrade", "upgrade", 1 },
    { "upgrade", "upgrade", 1 },
    { "UPGRADE", "upgrade", 1 },
    { "UpGrAdE", "upgrade", 1 },
    { "keep-alive, Upgrade", "upgrade", 1 },
    { "Upgrade, keep-alive", "upgrade", 1 },
    { "keep-alive,Upgrade", "upgrade", 1 },
    { "  Upgrade  ", "upgrade", 1 },
    { "\tUpgrade\t", "upgrade", 1 },
    { "keep-alive ,\t upgrade \t, close", "upgrade", 1 },
    { ",,upgrade,,", "upgrade", 1 },
    { "websocket", "websocket", 1 },
    { "WebSocket", "websocket", 1 },
    { "h2c, websocket", "websocket", 1 },
    /* no substring or prefix matches */
    { "upgradex", "upgrade", 0 },
    { "xupgrade", "upgrade", 0 },
    { "upgrad", "upgrade", 0 },
    { "keep-alive, upgrades", "upgrade", 0 },
    { "keep-alive upgrade", "upgrade", 0 },   /* one item, not two */
    { "websocket2", "websocket", 0 },
    { "web socket", "websocket", 0 },
    { "keep-alive", "upgrade", 0 },
    { "", "upgrade", 0 },
    { " , ,", "upgrade", 0 },
    { NULL, "upgrade", 0 },
};

START_TEST(test_token_list_has)
{
    const token_case *c = &token_cases[_i];

    ck_assert_msg(wsock_token_list_has(c->header, c->token) == c->expect,
                  "\"%s\" has \"%s\": expected %d", c->header ? c->header : "(null)", c->token,
                  c->expect);
}
END_TEST

/* =====================================================================
 * Sec-WebSocket-Key
 * ================================================================== */

typedef struct {
    const char *name;
    const char *key;
    int         expect;
} key_case;

static const key_case key_cases[] = {
    { "RFC example", "dGhlIHNhbXBsZSBub25jZQ==", 1 },
    { "all zero bytes", "AAAAAAAAAAAAAAAAAAAAAA==", 1 },
    { "all 0xff bytes", "/////////////////////w==", 1 },
    { "+ and /", "+/+/+/+/+/+/+/+/+/+/+w==", 1 },
    { "last char Q", "x3JJHMbDL1EzLkh9GBhXDQ==", 1 },
    { "last char g", "x3JJHMbDL1EzLkh9GBhXDg==", 1 },
    { "NULL", NULL, 0 },
    { "empty", "", 0 },
    { "23 chars", "dGhlIHNhbXBsZSBub25jZQ=", 0 },
    { "25 chars", "dGhlIHNhbXBsZSBub25jZQ===", 0 },
    { "no padding", "dGhlIHNhbXBsZSBub25jZQ", 0 },
    { "15 bytes", "AAAAAAAAAAAAAAAAAAAA", 0 },
    { "15 bytes, padded to 24", "AAAAAAAAAAAAAAAAAAAA====", 0 },
    { "17 bytes", "AAAAAAAAAAAAAAAAAAAAAAA=", 0 },
    { "18 bytes", "AAAAAAAAAAAAAAAAAAAAAAAA", 0 },
    { "url-safe -", "dGhlIHNhbXBsZSBub25jZ-==", 0 },
    { "url-safe _", "_GhlIHNhbXBsZSBub25jZQ==", 0 },
    { "space inside", "dGhlIHNhbXBs ZSBub25jZQ==", 0 },
    { "leading space", " dGhlIHNhbXBsZSBub25jZQ=", 0 },
    { "= inside", "dGhlIHNhbX=sZSBub25jZQ==", 0 },
    { "non-ASCII", "dGhlIHNhbXBsZSBub25jZ\xc3\xa9=", 0 },
    /* apr_base64_decode stops at the first non-base64 character, so
     * anything but "==" after 22 good characters would still decode to 16
     * bytes: only the explicit padding check rejects these */
    { "junk instead of padding", "dGhlIHNhbXBsZSBub25jZQ!!", 0 },
    { "padding then junk", "dGhlIHNhbXBsZSBub25jZQ=A", 0 },
    { "spaces instead of padding", "dGhlIHNhbXBsZSBub25jZQ  ", 0 },
    { "non-canonical R", "dGhlIHNhbXBsZSBub25jZR==", 0 },
    { "non-canonical B", "AAAAAAAAAAAAAAAAAAAAAB==", 0 },
    { "non-canonical /", "AAAAAAAAAAAAAAAAAAAAA/==", 0 },
};

START_TEST(test_key_table)
{
    const key_case *c = &key_cases[_i];

    ck_assert_msg(wsock_key_is_valid(c->key) == c->expect, "%s: \"%s\" expected %d", c->name,
                  c->key ? c->key : "(null)", c->expect);
}
END_TEST

/* The character before "==" carries 4 padding bits that must be zero:
 * of the 64 base64 characters exactly A, Q, g and w are allowed there. */
START_TEST(test_key_padding_bits)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[25] = "dGhlIHNhbXBsZSBub25jZQ==";

    for (size_t i = 0; i < 64; i++) {
        int want = strchr("AQgw", b64[i]) != NULL;
        key[21] = b64[i];
        ck_assert_msg(wsock_key_is_valid(key) == want, "last char '%c'", b64[i]);
    }
}
END_TEST

/* Random 16-byte nonces, as a browser sends them, are all accepted; the
 * same with a byte more or less never is. */
START_TEST(test_key_random_nonces)
{
    tu_rng rng;

    tu_rng_seed(&rng, 16);
    for (int n = 0; n < 500; n++) {
        unsigned char raw[18];
        char enc[32];

        for (size_t i = 0; i < sizeof(raw); i++) {
            raw[i] = (unsigned char)tu_rand(&rng);
        }
        ck_assert_int_le(apr_base64_encode_len(16), (int)sizeof(enc));
        apr_base64_encode(enc, (const char *)raw, 16);
        ck_assert_msg(wsock_key_is_valid(enc), "\"%s\" rejected", enc);
        apr_base64_encode(enc, (const char *)raw, 15);
        ck_assert_msg(!wsock_key_is_valid(enc), "15 bytes \"%s\" accepted", enc);
        apr_base64_encode(enc, (const char *)raw, 17);
        ck_assert_msg(!wsock_key_is_valid(enc), "17 bytes \"%s\" accepted", enc);
    }
}
END_TEST

/* =====================================================================
 * Subprotocol selection
 * ================================================================== */

/* 1 if tok is exactly (case-sensitively) one of the offered protocols. */
static int offered_has(const char *offered, const char *tok)
{
    size_t tlen = strlen(tok);
    const char *p = offered;

    while (p && *p) {
        size_t n;
        p += strspn(p, ", \t");
        n = strcspn(p, ", \t");
        if (n == tlen && strncmp(p, tok, n) == 0) {
            return 1;
        }
        p += n;
    }
    return 0;
}

typedef struct {
    const char *name;
    const char *offered;
    const char *allowed[4];   /* NULL-terminated */
    int         allowed_null; /* pass a NULL array instead */
    const char *expect;       /* selected protocol or NULL */
} proto_case;

static const proto_case proto_cases[] = {
    { "single match", "chat", { "chat" }, 0, "chat" },
    { "client order wins", "chat, superchat", { "superchat", "chat" }, 0, "chat" },
    { "client order wins, reversed", "superchat, chat", { "chat", "superchat" }, 0,
      "superchat" },
    { "first offered not allowed", "v1.x, v2.json", { "v2.json", "v3" }, 0, "v2.json" },
    { "case-sensitive", "Chat", { "chat" }, 0, NULL },
    { "case-sensitive, second offer matches", "CHAT, chat", { "chat" }, 0, "chat" },
    { "whitespace and empty items", " ,\tfoo ,  chat\t,", { "chat" }, 0, "chat" },
    { "no substring match", "superchat", { "chat" }, 0, NULL },
    { "no prefix match", "chat", { "chatty" }, 0, NULL },
    { "none offered", NULL, { "chat" }, 0, NULL },
    { "empty offer", "", { "chat" }, 0, NULL },
    { "none allowed (empty)", "chat", { NULL }, 0, NULL },
    { "none allowed (NULL)", "chat", { NULL }, 1, NULL },
    { "no overlap", "a, b", { "c", "d" }, 0, NULL },
};

START_TEST(test_select_protocol)
{
    const proto_case *c = &proto_cases[_i];
    const apr_array_header_t *allowed = c->allowed_null ? NULL : str_array(c->allowed);
    const char *got = wsock_select_protocol(pool, c->offered, allowed);

    if (c->expect == NULL) {
        ck_assert_msg(got == NULL, "%s: selected \"%s\"", c->name, got);
    }
    else {
        ck_assert_msg(got != NULL && strcmp(got, c->expect) == 0, "%s: selected \"%s\"",
                      c->name, got ? got : "(none)");
        ck_assert_msg(offered_has(c->offered, got), "%s: \"%s\" was not offered", c->name, got);
    }
}
END_TEST

/* =====================================================================
 * The whole check
 * ================================================================== */

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* Each row is the valid request below with at most two fields changed. */
enum { H_NONE, H_METHOD, H_UPGRADE, H_CONNECTION, H_KEY, H_VERSION, H_PROTOCOLS };

typedef struct {
    const char *name;
    int         proto_num;    /* 0: 1001 (HTTP/1.1) */
    struct {
        int         field;    /* H_* */
        const char *value;
    } change[2];
    const char *allowed[4];   /* NULL-terminated; allowed[0] NULL = empty list */
    int         allowed_null; /* pass a NULL array instead */
    int         require;
    int         status;       /* 0, 400 or 426 */
    const char *protocol;     /* when status is 0 */
} hs_case;

static const hs_case hs_cases[] = {
    { "valid", 0, { { H_PROTOCOLS, NULL } },
      { NULL }, 0, 0, 0, NULL },
    { "valid, HTTP/1.1 browser headers", 0,
      { { H_CONNECTION, "keep-alive, Upgrade" }, { H_UPGRADE, "websocket" } },
      { NULL }, 0, 0, 0, NULL },
    { "valid, case-insensitive tokens", 0,
      { { H_CONNECTION, "UPGRADE" }, { H_UPGRADE, "WebSocket" } },
      { NULL }, 0, 0, 0, NULL },
    { "POST", 0, { { H_METHOD, "POST" } },
      { NULL }, 0, 0, 400, NULL },
    { "HEAD", 0, { { H_METHOD, "HEAD" } },
      { NULL }, 0, 0, 400, NULL },
    { "lower-case get", 0, { { H_METHOD, "get" } },
      { NULL }, 0, 0, 400, NULL },
    { "no method", 0, { { H_METHOD, NULL } },
      { NULL }, 0, 0, 400, NULL },
    { "HTTP/1.0", 1000, { { H_NONE, NULL } },
      { NULL }, 0, 0, 400, NULL },
    { "HTTP/0.9", 9, { { H_NONE, NULL } },
      { NULL }, 0, 0, 400, NULL },
    { "no Upgrade", 0, { { H_UPGRADE, NULL } },
      { NULL }, 0, 0, 426, NULL },
    { "no Upgrade, POST", 0, { { H_UPGRADE, NULL }, { H_METHOD, "POST" } },
      { NULL }, 0, 0, 426, NULL },
    { "no Upgrade, no version", 0, { { H_UPGRADE, NULL }, { H_VERSION, NULL } },
      { NULL }, 0, 0, 426, NULL },
    { "Upgrade h2c", 0, { { H_UPGRADE, "h2c" } },
      { NULL }, 0, 0, 400, NULL },
    { "Upgrade websocketx", 0, { { H_UPGRADE, "websocketx" } },
      { NULL }, 0, 0, 400, NULL },
    { "Upgrade empty", 0, { { H_UPGRADE, "" } },
      { NULL }, 0, 0, 400, NULL },
    { "Upgrade list with websocket", 0, { { H_UPGRADE, "foo/1, websocket" } },
      { NULL }, 0, 0, 0, NULL },
    { "no Connection", 0, { { H_CONNECTION, NULL } },
      { NULL }, 0, 0, 400, NULL },
    { "Connection keep-alive", 0, { { H_CONNECTION, "keep-alive" } },
      { NULL }, 0, 0, 400, NULL },
    { "Connection upgradex", 0, { { H_CONNECTION, "upgradex" } },
      { NULL }, 0, 0, 400, NULL },
    { "Connection close", 0, { { H_CONNECTION, "close" } },
      { NULL }, 0, 0, 400, NULL },
    { "no version", 0, { { H_VERSION, NULL } },
      { NULL }, 0, 0, 426, NULL },
    { "version 8", 0, { { H_VERSION, "8" } },
      { NULL }, 0, 0, 426, NULL },
    { "version 14", 0, { { H_VERSION, "14" } },
      { NULL }, 0, 0, 426, NULL },
    { "version 13x", 0, { { H_VERSION, "13x" } },
      { NULL }, 0, 0, 426, NULL },
    { "version empty", 0, { { H_VERSION, "" } },
      { NULL }, 0, 0, 426, NULL },
    { "no key", 0, { { H_KEY, NULL } },
      { NULL }, 0, 0, 400, NULL },
    { "short key", 0, { { H_KEY, "dGhlIHNhbXBsZSBub25jZQ" } },
      { NULL }, 0, 0, 400, NULL },
    { "17-byte key", 0, { { H_KEY, "AAAAAAAAAAAAAAAAAAAAAAA=" } },
      { NULL }, 0, 0, 400, NULL },
    { "non-canonical key", 0, { { H_KEY, "dGhlIHNhbXBsZSBub25jZR==" } },
      { NULL }, 0, 0, 400, NULL },
    { "protocol, client order", 0, { { H_PROTOCOLS, "chat, superchat" } },
      { "superchat", "chat" }, 0, 0, 0, "chat" },
    { "protocol required and chosen", 0, { { H_PROTOCOLS, "v2, v1" } },
      { "v1" }, 0, 1, 0, "v1" },
    { "protocol case-sensitive", 0, { { H_PROTOCOLS, "Chat" } },
      { "chat" }, 0, 0, 0, NULL },
    { "protocol case-sensitive, required", 0, { { H_PROTOCOLS, "Chat" } },
      { "chat" }, 0, 1, 400, NULL },
    { "protocol none offered", 0, { { H_PROTOCOLS, NULL } },
      { "chat" }, 0, 0, 0, NULL },
    { "protocol none offered, required", 0, { { H_PROTOCOLS, NULL } },
      { "chat" }, 0, 1, 400, NULL },
    { "protocol offered, none configured", 0, { { H_PROTOCOLS, "chat" } },
      { NULL }, 1, 0, 0, NULL },
    { "protocol offered, empty list", 0, { { H_PROTOCOLS, "chat" } },
      { NULL }, 0, 0, 0, NULL },
    { "protocol required, no list", 0, { { H_PROTOCOLS, "chat" } },
      { NULL }, 1, 1, 400, NULL },
    { "protocol no overlap, required", 0, { { H_PROTOCOLS, "a, b" } },
      { "c" }, 0, 1, 400, NULL },
    { "protocol no substring", 0, { { H_PROTOCOLS, "superchat" } },
      { "chat" }, 0, 0, 0, NULL },
    { "bad key beats protocol", 0, { { H_KEY, "x" }, { H_PROTOCOLS, "chat" } },
      { "chat" }, 0, 1, 400, NULL },
};

static void build_req(const hs_case *c, wsock_handshake_req *req)
{
    req->method = "GET";
    req->proto_num = c->proto_num ? c->proto_num : 1001;
    req->upgrade = "websocket";
    req->connection = "Upgrade";
    req->key = KEY;
    req->version = "13";
    req->protocols = NULL;
    for (size_t i = 0; i < TU_ARRAY_SIZE(c->change); i++) {
        const char *v = c->change[i].value;
        switch (c->change[i].field) {
        case H_METHOD:
            req->method = v;
            break;
        case H_UPGRADE:
            req->upgrade = v;
            break;
        case H_CONNECTION:
            req->connection = v;
            break;
        case H_KEY:
            req->key = v;
            break;
        case H_VERSION:
            req->version = v;
            break;
        case H_PROTOCOLS:
            req->protocols = v;
            break;
        }
    }
}

START_TEST(test_handshake_check)
{
    const hs_case *c = &hs_cases[_i];
    const apr_array_header_t *allowed = c->allowed_null ? NULL : str_array(c->allowed);
    wsock_handshake_req req;
    wsock_handshake_result res;

    build_req(c, &req);

    memset(&res, 0x5A, sizeof(res)); /* the check must fill in every field */
    wsock_handshake_check(pool, &req, allowed, c->require, &res);
    ck_assert_msg(res.status == c->status, "%s: status %d (%s), expected %d", c->name,
                  res.status, res.status ? res.reason : "accepted", c->status);
    if (c->status != 0) {
        ck_assert_msg(res.reason != NULL && res.reason[0] != '\0', "%s: no reason", c->name);
        ck_assert_msg(res.protocol == NULL, "%s: protocol set on a rejection", c->name);
        return;
    }
    if (c->protocol == NULL) {
        ck_assert_msg(res.protocol == NULL, "%s: selected \"%s\"", c->name, res.protocol);
    }
    else {
        ck_assert_msg(res.protocol != NULL && strcmp(res.protocol, c->protocol) == 0,
                      "%s: selected \"%s\", expected \"%s\"", c->name,
                      res.protocol ? res.protocol : "(none)", c->protocol);
    }
    /* never a protocol the client did not offer */
    if (res.protocol != NULL) {
        ck_assert_msg(req.protocols != NULL && offered_has(req.protocols, res.protocol),
                      "%s: \"%s\" was not offered", c->name, res.protocol);
    }
}
END_TEST

static Suite *handshake_suite(void)
{
    Suite *s = suite_create("handshake");
    TCase *tc = tcase_create("accept");

    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, test_accept_rfc_example);
    tcase_add_test(tc, test_accept_other_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("token lists");
    tcase_add_loop_test(tc, test_token_list_has, 0, (int)TU_ARRAY_SIZE(token_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_loop_test(tc, test_key_table, 0, (int)TU_ARRAY_SIZE(key_cases));
    tcase_add_test(tc, test_key_padding_bits);
    tcase_add_test(tc, test_key_random_nonces);
    suite_add_tcase(s, tc);

    tc = tcase_create("subprotocols");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_loop_test(tc, test_select_protocol, 0, (int)TU_ARRAY_SIZE(proto_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("request check");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_loop_test(tc, test_handshake_check, 0, (int)TU_ARRAY_SIZE(hs_cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { handshake_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
