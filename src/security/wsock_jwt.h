/*
 * wsock_jwt.h — verification of an HS256 JSON Web Token (RFC 7519, JWS
 * compact serialization of RFC 7515): signature (HMAC-SHA256, compared in
 * constant time), then the time claims exp and nbf and the audience.
 *
 * Pure: OpenSSL for the HMAC, APR for base64, jansson for JSON; no
 * Apache, unit-tested on its own (tests/unit/test_security_jwt.c).
 */
#ifndef WSOCK_JWT_H
#define WSOCK_JWT_H

#include <apr_pools.h>
#include <apr_tables.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest token looked at; longer ones are refused unread. */
#define WSOCK_JWT_MAX_LEN 8192

typedef enum {
    WSOCK_JWT_OK = 0,
    WSOCK_JWT_TOO_LONG,
    WSOCK_JWT_MALFORMED,       /* not three base64url parts of JSON objects */
    WSOCK_JWT_BAD_ALG,         /* header: alg is not HS256 (none, RS256...), or crit */
    WSOCK_JWT_BAD_SIGNATURE,
    WSOCK_JWT_NO_EXP,          /* a token that never expires is not accepted */
    WSOCK_JWT_EXPIRED,
    WSOCK_JWT_NOT_YET_VALID,   /* nbf in the future */
    WSOCK_JWT_BAD_AUDIENCE
} wsock_jwt_status;

typedef struct {
    const unsigned char *key;  /* the HS256 secret */
    apr_size_t key_len;
    const char *audience;      /* aud must be (or hold) it; NULL: a token
                                * that has an aud is refused (RFC 7519 §4.1.3) */
    apr_int64_t now;           /* seconds since the epoch */
    apr_int64_t leeway;        /* seconds of clock skew allowed on exp and nbf */
} wsock_jwt_params;

/* Verifies token.  On WSOCK_JWT_OK *claims (when claims is not NULL) holds
 * every top-level claim whose value is a string or a number, as text, in
 * pool. */
wsock_jwt_status wsock_jwt_verify(apr_pool_t *pool, const char *token,
                                  const wsock_jwt_params *params, apr_table_t **claims);

/* Why, in a few words, for the error log. */
const char *wsock_jwt_status_text(wsock_jwt_status status);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_JWT_H */
