/*
 * test_security_jwt.c — Check unit tests for src/security/wsock_jwt.c
 * (HS256 JWT verification): RFC 7515's own example, signatures, algorithm
 * confusion, time claims, audience, malformed input, size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_base64.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "wsock_jwt.h"

#include "test_pool.h"
#include "test_util.h"

/* ---- building tokens (independently of the code under test) ---------- */

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef-test-key";
#define KEY_LEN (sizeof(KEY) - 1)
#define NOW ((apr_int64_t)1700000000)

static const char *b64url(const void *data, size_t len)
{
    char *s = apr_palloc(pool, (apr_size_t)apr_base64_encode_len((int)len));
    char *p;

    apr_base64_encode(s, data, (int)len);
    for (p = s; *p; p++) {
        if (*p == '+') {
            *p = '-';
        }
        else if (*p == '/') {
            *p = '_';
        }
        else if (*p == '=') {
            *p = '\0';
            break;
        }
    }
    return s;
}

static const char *b64url_str(const char *s)
{
    return b64url(s, strlen(s));
}

static const char *sign(const char *signing_input, const unsigned char *key, size_t key_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)key_len,
                               (const unsigned char *)signing_input, strlen(signing_input),
                               mac, &n));
    return apr_pstrcat(pool, signing_input, ".", b64url(mac, n), NULL);
}

static const char *token_with(const char *header, const char *payload)
{
    return sign(apr_pstrcat(pool, b64url_str(header), ".", b64url_str(payload), NULL),
                KEY, KEY_LEN);
}

static const char *token(const char *payload)
{
    return token_with("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
}

static wsock_jwt_params params(const char *audience)
{
    wsock_jwt_params p = { KEY, KEY_LEN, audience, NOW, 0 };
    return p;
}

static wsock_jwt_status verify(const char *tok, const char *audience, apr_table_t **claims)
{
    wsock_jwt_params p = params(audience);
    return wsock_jwt_verify(pool, tok, &p, claims);
}

#define FUTURE "1700003600"

/* ---- RFC 7515 appendix A.1, verified as printed there ------------------ */

START_TEST(test_rfc7515_example)
{
    static const char tok[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    /* the JWK "k" of the example, decoded */
    static const unsigned char k[64] = {
        0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65, 0x77, 0x7b,
        0xa6, 0x8f, 0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28, 0xa9, 0x0f, 0x84, 0xb2,
        0xd2, 0x50, 0x2e, 0xbf, 0xd3, 0xfb, 0x5a, 0x92, 0xd2, 0x06, 0x47, 0xef, 0x96, 0x8a,
        0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22, 0x3d, 0x2e, 0x21, 0x72, 0x05, 0x2e, 0x4f, 0x08,
        0xc0, 0xcd, 0x9a, 0xf5, 0x67, 0xd0, 0x80, 0xa3 };
    wsock_jwt_params p = { k, sizeof(k), NULL, 1300819379, 0 };
    apr_table_t *claims = NULL;

    ck_assert_int_eq(wsock_jwt_verify(pool, tok, &p, &claims), WSOCK_JWT_OK);
    ck_assert_str_eq(apr_table_get(claims, "iss"), "joe");
    ck_assert_str_eq(apr_table_get(claims, "exp"), "1300819380");
    ck_assert_ptr_null(apr_table_get(claims, "http://example.com/is_root"));   /* a boolean */

    p.now = 1300819380;             /* exp itself is already too late */
    ck_assert_int_eq(wsock_jwt_verify(pool, tok, &p, NULL), WSOCK_JWT_EXPIRED);
    p.leeway = 30;
    p.now = 1300819409;
    ck_assert_int_eq(wsock_jwt_verify(pool, tok, &p, NULL), WSOCK_JWT_OK);
    p.now = 1300819410;
    ck_assert_int_eq(wsock_jwt_verify(pool, tok, &p, NULL), WSOCK_JWT_EXPIRED);
    p.now = 1300819379;
    p.key_len--;
    ck_assert_int_eq(wsock_jwt_verify(pool, tok, &p, NULL), WSOCK_JWT_BAD_SIGNATURE);
}
END_TEST

/* ---- good tokens and their claims ------------------------------------- */

START_TEST(test_good_token_and_claims)
{
    apr_table_t *claims = NULL;
    const char *tok = token("{\"sub\":\"alice\",\"exp\":" FUTURE ",\"n\":-42,\"r\":1.5,"
                            "\"obj\":{\"a\":1},\"arr\":[1],\"t\":true,\"nul\":null,"
                            "\"uni\":\"\\u00e9\\ud83d\\ude00\"}");

    ck_assert_int_eq(verify(tok, NULL, &claims), WSOCK_JWT_OK);
    ck_assert_ptr_nonnull(claims);
    ck_assert_str_eq(apr_table_get(claims, "sub"), "alice");
    ck_assert_str_eq(apr_table_get(claims, "exp"), FUTURE);
    ck_assert_str_eq(apr_table_get(claims, "n"), "-42");
    ck_assert_str_eq(apr_table_get(claims, "r"), "1.5");
    ck_assert_str_eq(apr_table_get(claims, "uni"), "\xc3\xa9\xf0\x9f\x98\x80");
    ck_assert_ptr_null(apr_table_get(claims, "obj"));
    ck_assert_ptr_null(apr_table_get(claims, "arr"));
    ck_assert_ptr_null(apr_table_get(claims, "t"));
    ck_assert_ptr_null(apr_table_get(claims, "nul"));
    ck_assert_ptr_null(apr_table_get(claims, "missing"));
    /* typ is optional; other header fields are ignored */
    ck_assert_int_eq(verify(token_with("{\"alg\":\"HS256\",\"kid\":\"k1\"}",
                                       "{\"exp\":" FUTURE "}"), NULL, NULL), WSOCK_JWT_OK);
    /* exp may be a fraction */
    ck_assert_int_eq(verify(token("{\"exp\":1700000000.5}"), NULL, NULL), WSOCK_JWT_OK);
}
END_TEST

/* ---- signatures -------------------------------------------------------- */

START_TEST(test_bad_signatures)
{
    const char *payload = "{\"sub\":\"alice\",\"exp\":" FUTURE "}";
    const char *good = token(payload);
    const char *signing = apr_pstrndup(pool, good, (apr_size_t)(strrchr(good, '.') - good));
    const char *sig = strrchr(good, '.') + 1;
    static const unsigned char other_key[] = "another key of more than 32 bytes, surely";
    char *flipped = apr_pstrdup(pool, good);
    size_t n = strlen(flipped);

    flipped[n - 2] = flipped[n - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(flipped, NULL, NULL), WSOCK_JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify(sign(signing, other_key, sizeof(other_key) - 1), NULL, NULL),
                     WSOCK_JWT_BAD_SIGNATURE);
    /* another payload under the first token's signature */
    ck_assert_int_eq(verify(apr_pstrcat(pool, b64url_str("{\"alg\":\"HS256\"}"), ".",
                                        b64url_str("{\"sub\":\"admin\",\"exp\":" FUTURE "}"),
                                        ".", sig, NULL), NULL, NULL),
                     WSOCK_JWT_BAD_SIGNATURE);
    /* empty, short and long signatures */
    ck_assert_int_eq(verify(apr_pstrcat(pool, signing, ".", NULL), NULL, NULL),
                     WSOCK_JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify(apr_pstrndup(pool, good, n - 3), NULL, NULL),
                     WSOCK_JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify(apr_pstrcat(pool, good, "AAAA", NULL), NULL, NULL),
                     WSOCK_JWT_BAD_SIGNATURE);
}
END_TEST

/* ---- algorithm confusion ----------------------------------------------- */

static const char *const bad_headers[] = {
    "{\"alg\":\"none\"}",
    "{\"alg\":\"None\"}",
    "{\"alg\":\"hs256\"}",
    "{\"alg\":\"HS384\"}",
    "{\"alg\":\"HS512\"}",
    "{\"alg\":\"RS256\"}",
    "{\"alg\":\"ES256\"}",
    "{\"alg\":\"\"}",
    "{\"alg\":256}",
    "{\"alg\":null}",
    "{\"alg\":[\"HS256\"]}",
    "{\"typ\":\"JWT\"}",
    "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
};

START_TEST(test_bad_alg)
{
    const char *payload = "{\"exp\":" FUTURE "}";
    const char *h = bad_headers[_i];
    const char *unsigned_tok = apr_pstrcat(pool, b64url_str(h), ".", b64url_str(payload), ".",
                                           NULL);

    /* correctly HMAC-signed with our key, and unsigned ("alg":"none" style) */
    ck_assert_int_eq(verify(token_with(h, payload), NULL, NULL), WSOCK_JWT_BAD_ALG);
    ck_assert_int_eq(verify(unsigned_tok, NULL, NULL), WSOCK_JWT_BAD_ALG);
}
END_TEST

/* ---- time claims -------------------------------------------------------- */

START_TEST(test_time_claims)
{
    wsock_jwt_params p = params(NULL);

#define V(payload) wsock_jwt_verify(pool, token(payload), &p, NULL)
    ck_assert_int_eq(V("{\"sub\":\"x\"}"), WSOCK_JWT_NO_EXP);
    ck_assert_int_eq(V("{\"exp\":\"1700003600\"}"), WSOCK_JWT_MALFORMED);
    ck_assert_int_eq(V("{\"exp\":null}"), WSOCK_JWT_MALFORMED);
    ck_assert_int_eq(V("{\"exp\":1700000001}"), WSOCK_JWT_OK);
    ck_assert_int_eq(V("{\"exp\":1700000000}"), WSOCK_JWT_EXPIRED);
    ck_assert_int_eq(V("{\"exp\":1699999999}"), WSOCK_JWT_EXPIRED);
    ck_assert_int_eq(V("{\"exp\":0}"), WSOCK_JWT_EXPIRED);
    ck_assert_int_eq(V("{\"exp\":-1e300}"), WSOCK_JWT_EXPIRED);
    ck_assert_int_eq(V("{\"exp\":" FUTURE ",\"nbf\":1700000000}"), WSOCK_JWT_OK);
    ck_assert_int_eq(V("{\"exp\":" FUTURE ",\"nbf\":1700000001}"), WSOCK_JWT_NOT_YET_VALID);
    ck_assert_int_eq(V("{\"exp\":" FUTURE ",\"nbf\":\"0\"}"), WSOCK_JWT_MALFORMED);
    p.leeway = 60;
    ck_assert_int_eq(V("{\"exp\":1699999941}"), WSOCK_JWT_OK);
    ck_assert_int_eq(V("{\"exp\":1699999940}"), WSOCK_JWT_EXPIRED);
    ck_assert_int_eq(V("{\"exp\":" FUTURE ",\"nbf\":1700000060}"), WSOCK_JWT_OK);
    ck_assert_int_eq(V("{\"exp\":" FUTURE ",\"nbf\":1700000061}"), WSOCK_JWT_NOT_YET_VALID);
#undef V
}
END_TEST

/* ---- audience ----------------------------------------------------------- */

typedef struct {
    const char *aud_json;   /* NULL: no aud claim */
    const char *audience;   /* WSockTokenAudience, NULL: unset */
    wsock_jwt_status want;
} aud_case;

static const aud_case aud_cases[] = {
    { "\"chat\"", "chat", WSOCK_JWT_OK },
    { "[\"x\",\"chat\"]", "chat", WSOCK_JWT_OK },
    { "[\"chat\"]", "chat", WSOCK_JWT_OK },
    { "\"Chat\"", "chat", WSOCK_JWT_BAD_AUDIENCE },
    { "\"chatx\"", "chat", WSOCK_JWT_BAD_AUDIENCE },
    { "[]", "chat", WSOCK_JWT_BAD_AUDIENCE },
    { "[1,{\"chat\":1}]", "chat", WSOCK_JWT_BAD_AUDIENCE },
    { "42", "chat", WSOCK_JWT_BAD_AUDIENCE },
    { NULL, "chat", WSOCK_JWT_BAD_AUDIENCE },
    { NULL, NULL, WSOCK_JWT_OK },
    { "\"chat\"", NULL, WSOCK_JWT_BAD_AUDIENCE },   /* RFC 7519 §4.1.3 */
};

START_TEST(test_audience)
{
    const aud_case *c = &aud_cases[_i];
    const char *payload = c->aud_json
        ? apr_psprintf(pool, "{\"exp\":" FUTURE ",\"aud\":%s}", c->aud_json)
        : "{\"exp\":" FUTURE "}";

    ck_assert_int_eq(verify(token(payload), c->audience, NULL), c->want);
}
END_TEST

/* ---- malformed input ----------------------------------------------------- */

START_TEST(test_malformed)
{
    const char *h = b64url_str("{\"alg\":\"HS256\"}");
    const char *p = b64url_str("{\"exp\":" FUTURE "}");
    const char *good = token("{\"exp\":" FUTURE "}");
    const char *cases[] = {
        "", ".", "..", "...", "abc", "a.b", "a.b.c.d",
        apr_pstrcat(pool, good, ".", NULL),
        apr_pstrcat(pool, ".", p, ".sig", NULL),
        apr_pstrcat(pool, h, "=.", p, ".sig", NULL),          /* padding */
        sign(apr_pstrcat(pool, h, ".", p, "==", NULL), KEY, KEY_LEN),
        apr_pstrcat(pool, "e+J.", p, ".sig", NULL),           /* standard alphabet */
        apr_pstrcat(pool, h, ".", p, ".s/g", NULL),
        apr_pstrcat(pool, h, ".", p, ".si=", NULL),
        sign(apr_pstrcat(pool, h, ".", p, " ", NULL), KEY, KEY_LEN),
        sign(apr_pstrcat(pool, h, ".", p, "+", NULL), KEY, KEY_LEN),
        apr_pstrcat(pool, "eyJhbGciOiJIUzI1NiJ9X.", p, ".sig", NULL),  /* 4n+1 chars */
        sign(apr_pstrcat(pool, h, ".", p, "X", NULL), KEY, KEY_LEN),
    };

    for (size_t i = 0; i < TU_ARRAY_SIZE(cases); i++) {
        ck_assert_msg(verify(cases[i], NULL, NULL) == WSOCK_JWT_MALFORMED, "case %zu: %s", i,
                      cases[i]);
    }
    ck_assert_int_eq(verify(NULL, NULL, NULL), WSOCK_JWT_MALFORMED);
}
END_TEST

/* Signed correctly, but the JSON inside is not an object, or not JSON. */
static const char *const bad_json[][2] = {
    { "not json", "{\"exp\":" FUTURE "}" },
    { "[\"HS256\"]", "{\"exp\":" FUTURE "}" },
    { "\"HS256\"", "{\"exp\":" FUTURE "}" },
    { "{\"alg\":\"HS256\"", "{\"exp\":" FUTURE "}" },
    { "{\"alg\":\"HS256\"} x", "{\"exp\":" FUTURE "}" },
    { "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"exp\":" FUTURE "}" },  /* duplicate */
    { "{\"alg\":\"HS256\"}", "" },
    { "{\"alg\":\"HS256\"}", "null" },
    { "{\"alg\":\"HS256\"}", "[{\"exp\":" FUTURE "}]" },
    { "{\"alg\":\"HS256\"}", "{\"exp\":" FUTURE "," },
    { "{\"alg\":\"HS256\"}", "{\"exp\":1,\"exp\":" FUTURE "}" },         /* duplicate */
    { "{\"alg\":\"HS256\"}", "{\"exp\":" FUTURE ",\"s\":\"\\u0000\"}" },   /* NUL */
    { "{\"alg\":\"HS256\"}", "{\"exp\":" FUTURE ",\"s\":\"\xff\"}" },      /* not UTF-8 */
    { "{\"alg\":\"HS256\"}", "{\"exp\":99999999999999999999999}" },       /* too big */
};

START_TEST(test_bad_json)
{
    const char *tok = token_with(bad_json[_i][0], bad_json[_i][1]);
    wsock_jwt_status st = verify(tok, NULL, NULL);

    ck_assert_msg(st == WSOCK_JWT_MALFORMED, "case %d: status %d", _i, (int)st);
}
END_TEST

/* ---- size ----------------------------------------------------------------- */

START_TEST(test_size_limit)
{
    /* Pad a claim until the token is just at, then just over, the limit. */
    const char *base = token("{\"exp\":" FUTURE ",\"pad\":\"\"}");
    size_t room = WSOCK_JWT_MAX_LEN - strlen(base);
    size_t pad = room / 4 * 3;          /* base64 grows 3 bytes into 4 characters */
    char *filler = apr_palloc(pool, pad + 8);
    const char *tok;

    memset(filler, 'p', pad + 8);
    filler[pad] = '\0';
    tok = token(apr_psprintf(pool, "{\"exp\":" FUTURE ",\"pad\":\"%s\"}", filler));
    ck_assert_uint_le(strlen(tok), WSOCK_JWT_MAX_LEN);
    ck_assert_uint_gt(strlen(tok), WSOCK_JWT_MAX_LEN - 4);
    ck_assert_int_eq(verify(tok, NULL, NULL), WSOCK_JWT_OK);

    filler[pad] = 'p';              /* 6 more bytes: 8 more characters */
    filler[pad + 6] = '\0';
    tok = token(apr_psprintf(pool, "{\"exp\":" FUTURE ",\"pad\":\"%s\"}", filler));
    ck_assert_uint_gt(strlen(tok), WSOCK_JWT_MAX_LEN);
    ck_assert_int_eq(verify(tok, NULL, NULL), WSOCK_JWT_TOO_LONG);
}
END_TEST

START_TEST(test_status_texts)
{
    for (int s = WSOCK_JWT_OK; s <= WSOCK_JWT_BAD_AUDIENCE; s++) {
        const char *t = wsock_jwt_status_text((wsock_jwt_status)s);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_gt(strlen(t), 3);
    }
}
END_TEST

static Suite *jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("hs256");

    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, test_rfc7515_example);
    tcase_add_test(tc, test_good_token_and_claims);
    tcase_add_test(tc, test_bad_signatures);
    tcase_add_loop_test(tc, test_bad_alg, 0, (int)TU_ARRAY_SIZE(bad_headers));
    tcase_add_test(tc, test_time_claims);
    tcase_add_loop_test(tc, test_audience, 0, (int)TU_ARRAY_SIZE(aud_cases));
    tcase_add_test(tc, test_malformed);
    tcase_add_loop_test(tc, test_bad_json, 0, (int)TU_ARRAY_SIZE(bad_json));
    tcase_add_test(tc, test_size_limit);
    tcase_add_test(tc, test_status_texts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { jwt_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
