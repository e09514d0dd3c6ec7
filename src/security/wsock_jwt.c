/*
 * wsock_jwt.c — HS256 JWT verification.
 *
 * Order of the checks: size, shape, header (alg), signature, and only then
 * the payload's claims, so that nothing of an unsigned payload is trusted.
 * The signature covers the token's own bytes up to the second dot, as
 * sent (RFC 7515 §5.2).
 */
#include <string.h>

#include <apr_base64.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "wsock_jwt.h"

#define HS256_SIZE 32

/* base64url without padding (RFC 7515 §2) to bytes in pool; NULL if s
 * holds anything else.  APR decodes the standard alphabet: translate. */
static unsigned char *b64url_decode(apr_pool_t *pool, const char *s, apr_size_t len,
                                    apr_size_t *out_len)
{
    apr_size_t padded = (len + 3) / 4 * 4, i;
    char *std;
    unsigned char *out;

    if (len % 4 == 1) {
        return NULL;                /* no 6-bit tail encodes whole bytes */
    }
    std = apr_palloc(pool, padded + 1);
    for (i = 0; i < len; i++) {
        char c = s[i];

        if (c == '-') {
            c = '+';
        }
        else if (c == '_') {
            c = '/';
        }
        else if (!apr_isalnum(c)) {
            return NULL;
        }
        std[i] = c;
    }
    memset(std + len, '=', padded - len);
    std[padded] = '\0';
    out = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(std) + 1);
    *out_len = (apr_size_t)apr_base64_decode_binary(out, std);
    out[*out_len] = '\0';
    return out;
}

/* One base64url part holding a JSON object (NULL if it does not).
 * Duplicate names are refused: two "exp" would let the reader and the
 * issuer see different tokens. */
static json_t *decode_object(apr_pool_t *pool, const char *s, apr_size_t len)
{
    apr_size_t n;
    unsigned char *raw = b64url_decode(pool, s, len, &n);
    json_t *obj;

    if (raw == NULL) {
        return NULL;
    }
    obj = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

static wsock_jwt_status check_header(json_t *header)
{
    const char *alg = json_string_value(json_object_get(header, "alg"));

    /* Only what the key is for: "none", RS256 with our secret as a public
     * key, and headers with extensions we would not honour are refused. */
    if (alg == NULL || strcmp(alg, "HS256") != 0 || json_object_get(header, "crit")) {
        return WSOCK_JWT_BAD_ALG;
    }
    return WSOCK_JWT_OK;
}

static wsock_jwt_status check_signature(apr_pool_t *pool, const char *token,
                                        apr_size_t signed_len, const char *sig,
                                        apr_size_t sig_len, const wsock_jwt_params *params)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    apr_size_t got_len;
    unsigned char *got = b64url_decode(pool, sig, sig_len, &got_len);

    if (got == NULL) {
        return WSOCK_JWT_MALFORMED;
    }
    if (HMAC(EVP_sha256(), params->key, (int)params->key_len, (const unsigned char *)token,
             signed_len, mac, &mac_len) == NULL || mac_len != HS256_SIZE) {
        return WSOCK_JWT_BAD_SIGNATURE;
    }
    if (got_len != HS256_SIZE || CRYPTO_memcmp(got, mac, HS256_SIZE) != 0) {
        return WSOCK_JWT_BAD_SIGNATURE;
    }
    return WSOCK_JWT_OK;
}

static int audience_matches(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), want) == 0;
    }
    if (json_is_array(aud)) {
        json_array_foreach(aud, i, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), want) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

static wsock_jwt_status check_claims(json_t *claims, const wsock_jwt_params *params)
{
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *aud = json_object_get(claims, "aud");
    double now = (double)params->now, leeway = (double)params->leeway;

    if (!json_is_number(exp)) {
        return exp ? WSOCK_JWT_MALFORMED : WSOCK_JWT_NO_EXP;
    }
    /* RFC 7519 §4.1.4: the current time must be before exp. */
    if (now >= json_number_value(exp) + leeway) {
        return WSOCK_JWT_EXPIRED;
    }
    if (nbf && !json_is_number(nbf)) {
        return WSOCK_JWT_MALFORMED;
    }
    if (nbf && now + leeway < json_number_value(nbf)) {
        return WSOCK_JWT_NOT_YET_VALID;
    }
    if (params->audience ? !audience_matches(aud, params->audience) : aud != NULL) {
        return WSOCK_JWT_BAD_AUDIENCE;
    }
    return WSOCK_JWT_OK;
}

static apr_table_t *claims_table(apr_pool_t *pool, json_t *claims)
{
    apr_table_t *t = apr_table_make(pool, (int)json_object_size(claims));
    const char *name;
    json_t *v;

    json_object_foreach(claims, name, v) {
        if (json_is_string(v)) {
            apr_table_set(t, name, json_string_value(v));
        }
        else if (json_is_integer(v)) {
            apr_table_set(t, name, apr_psprintf(pool, "%" APR_INT64_T_FMT,
                                                 (apr_int64_t)json_integer_value(v)));
        }
        else if (json_is_real(v)) {
            apr_table_set(t, name, apr_psprintf(pool, "%.17g", json_real_value(v)));
        }
    }
    return t;
}

wsock_jwt_status wsock_jwt_verify(apr_pool_t *pool, const char *token,
                                  const wsock_jwt_params *params, apr_table_t **claims)
{
    const char *dot1, *dot2;
    apr_size_t len;
    json_t *header, *payload;
    wsock_jwt_status st;

    if (token == NULL) {
        return WSOCK_JWT_MALFORMED;
    }
    len = strnlen(token, WSOCK_JWT_MAX_LEN + 1);
    if (len > WSOCK_JWT_MAX_LEN) {
        return WSOCK_JWT_TOO_LONG;
    }
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', (apr_size_t)(token + len - dot1 - 1)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', (apr_size_t)(token + len - dot2 - 1))) {
        return WSOCK_JWT_MALFORMED;
    }

    header = decode_object(pool, token, (apr_size_t)(dot1 - token));
    if (header == NULL) {
        return WSOCK_JWT_MALFORMED;
    }
    st = check_header(header);
    json_decref(header);
    if (st == WSOCK_JWT_OK) {
        st = check_signature(pool, token, (apr_size_t)(dot2 - token), dot2 + 1,
                             (apr_size_t)(token + len - dot2 - 1), params);
    }
    if (st != WSOCK_JWT_OK) {
        return st;
    }

    payload = decode_object(pool, dot1 + 1, (apr_size_t)(dot2 - dot1 - 1));
    if (payload == NULL) {
        return WSOCK_JWT_MALFORMED;
    }
    st = check_claims(payload, params);
    if (st == WSOCK_JWT_OK && claims) {
        *claims = claims_table(pool, payload);
    }
    json_decref(payload);
    return st;
}

const char *wsock_jwt_status_text(wsock_jwt_status status)
{
    switch (status) {
    case WSOCK_JWT_OK:            return "valid";
    case WSOCK_JWT_TOO_LONG:      return "longer than 8192 bytes";
    case WSOCK_JWT_MALFORMED:     return "malformed (not three base64url parts of JSON "
                                         "objects, or a claim of the wrong type)";
    case WSOCK_JWT_BAD_ALG:       return "algorithm is not HS256";
    case WSOCK_JWT_BAD_SIGNATURE: return "bad signature";
    case WSOCK_JWT_NO_EXP:        return "no exp claim";
    case WSOCK_JWT_EXPIRED:       return "expired";
    case WSOCK_JWT_NOT_YET_VALID: return "not valid yet (nbf)";
    case WSOCK_JWT_BAD_AUDIENCE:  return "audience does not match WSockTokenAudience";
    }
    return "invalid";
}
