/*
 * wsock_handshake.h — validation of the client's opening handshake and the
 * server's answer (RFC 6455 §4.2).
 *
 * Independent of request_rec: the caller copies the few facts it needs into
 * wsock_handshake_req, so the rules are unit-tested without a server.
 * SHA-1 and base64 come from apr-util.
 */
#ifndef WSOCK_HANDSHAKE_H
#define WSOCK_HANDSHAKE_H

#include <apr_pools.h>
#include <apr_tables.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Length of a Sec-WebSocket-Accept value plus its NUL. */
#define WSOCK_ACCEPT_SIZE 29

typedef struct {
    const char *method;      /* "GET" */
    int         proto_num;   /* HTTP version as major*1000+minor (1001 = 1.1) */
    const char *upgrade;     /* Upgrade header, NULL if absent */
    const char *connection;  /* Connection header, NULL if absent */
    const char *key;         /* Sec-WebSocket-Key */
    const char *version;     /* Sec-WebSocket-Version */
    const char *protocols;   /* Sec-WebSocket-Protocol (all values, comma-joined) */
} wsock_handshake_req;

typedef struct {
    int         status;      /* 0 = accept; else the HTTP status to answer */
    const char *reason;      /* why, for the error log (static text) */
    const char *protocol;    /* selected subprotocol, NULL for none */
} wsock_handshake_result;

/* 1 if the comma-separated header value holds token (case-insensitive,
 * optional whitespace around items). */
int wsock_token_list_has(const char *header, const char *token);

/* 1 if key is base64 that decodes to exactly 16 bytes. */
int wsock_key_is_valid(const char *key);

/* Writes the Sec-WebSocket-Accept value for key into out. */
void wsock_accept_value(const char *key, char out[WSOCK_ACCEPT_SIZE]);

/* The first protocol the client offered (in its order) that allowed holds
 * (exact, case-sensitive per RFC 6455 §4.1), or NULL.  allowed is an array
 * of const char *; pool holds the parse of the offer. */
const char *wsock_select_protocol(apr_pool_t *pool, const char *offered,
                                  const apr_array_header_t *allowed);

/* Applies every rule of §4.2.1 plus subprotocol policy:
 *   wrong method / HTTP version / Upgrade / Connection / key → 400
 *   no Upgrade at all (a plain request to a WebSocket URL)   → 426
 *   missing or unsupported Sec-WebSocket-Version            → 426
 *   require_protocol set and no offered protocol allowed    → 400
 * allowed may be NULL or empty (no subprotocols). */
void wsock_handshake_check(apr_pool_t *pool, const wsock_handshake_req *req,
                           const apr_array_header_t *allowed, int require_protocol,
                           wsock_handshake_result *res);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_HANDSHAKE_H */
