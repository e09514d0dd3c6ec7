/*
 * wsock_handshake.c — the opening-handshake rules of RFC 6455 §4.2.
 */
#include <string.h>

#include <apr_base64.h>
#include <apr_lib.h>
#include <apr_sha1.h>
#include <apr_strings.h>

#include "wsock_handshake.h"

/* The GUID every server appends to the key (RFC 6455 §1.3). */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int wsock_token_list_has(const char *header, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = header;

    if (header == NULL) {
        return 0;
    }
    while (*p) {
        const char *start, *end;

        while (is_ows(*p) || *p == ',') {
            p++;
        }
        start = p;
        while (*p && *p != ',') {
            p++;
        }
        end = p;
        while (end > start && is_ows(end[-1])) {
            end--;
        }
        if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0) {
            return 1;
        }
    }
    return 0;
}

int wsock_key_is_valid(const char *key)
{
    /* 16 bytes encode to exactly 22 base64 characters plus "==".  The
     * character check comes first because apr_base64_decode skips nothing
     * and stops silently at the first invalid character. */
    unsigned char raw[32];
    size_t i;

    if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=') {
        return 0;
    }
    for (i = 0; i < 22; i++) {
        unsigned char c = (unsigned char)key[i];
        if (!(apr_isalnum(c) || c == '+' || c == '/')) {
            return 0;
        }
    }
    /* The last character before "==" carries 2 data bits and 4 padding
     * bits that must be zero in canonical base64 (RFC 4648 §3.5): only
     * A, Q, g and w qualify. */
    if (strchr("AQgw", key[21]) == NULL) {
        return 0;
    }
    if (apr_base64_decode_len(key) > (int)sizeof(raw)) {
        return 0;
    }
    return apr_base64_decode((char *)raw, key) == 16;
}

void wsock_accept_value(const char *key, char out[WSOCK_ACCEPT_SIZE])
{
    apr_sha1_ctx_t sha;
    unsigned char digest[APR_SHA1_DIGESTSIZE];

    apr_sha1_init(&sha);
    apr_sha1_update(&sha, key, (unsigned int)strlen(key));
    apr_sha1_update(&sha, ws_guid, (unsigned int)(sizeof(ws_guid) - 1));
    apr_sha1_final(digest, &sha);
    apr_base64_encode(out, (const char *)digest, APR_SHA1_DIGESTSIZE);
}

const char *wsock_select_protocol(apr_pool_t *pool, const char *offered,
                                  const apr_array_header_t *allowed)
{
    char *list, *tok, *state;

    if (offered == NULL || allowed == NULL || allowed->nelts == 0) {
        return NULL;
    }
    list = apr_pstrdup(pool, offered);
    for (tok = apr_strtok(list, ", \t", &state); tok != NULL;
         tok = apr_strtok(NULL, ", \t", &state)) {
        for (int i = 0; i < allowed->nelts; i++) {
            const char *a = APR_ARRAY_IDX(allowed, i, const char *);
            if (strcmp(tok, a) == 0) {
                return a;
            }
        }
    }
    return NULL;
}

static void reject(wsock_handshake_result *res, int status, const char *reason)
{
    res->status = status;
    res->reason = reason;
}

void wsock_handshake_check(apr_pool_t *pool, const wsock_handshake_req *req,
                           const apr_array_header_t *allowed, int require_protocol,
                           wsock_handshake_result *res)
{
    memset(res, 0, sizeof(*res));

    if (req->upgrade == NULL) {
        reject(res, 426, "not a WebSocket upgrade request");
        return;
    }
    if (req->method == NULL || strcmp(req->method, "GET") != 0) {
        reject(res, 400, "WebSocket upgrade with a method other than GET");
        return;
    }
    if (req->proto_num < 1001) {
        reject(res, 400, "WebSocket upgrade needs HTTP/1.1 or later");
        return;
    }
    if (!wsock_token_list_has(req->upgrade, "websocket")) {
        reject(res, 400, "Upgrade header does not name websocket");
        return;
    }
    if (!wsock_token_list_has(req->connection, "upgrade")) {
        reject(res, 400, "Connection header does not hold the upgrade token");
        return;
    }
    if (req->version == NULL || strcmp(req->version, "13") != 0) {
        reject(res, 426, "missing or unsupported Sec-WebSocket-Version");
        return;
    }
    if (!wsock_key_is_valid(req->key)) {
        reject(res, 400, "Sec-WebSocket-Key missing or not 16 bytes of base64");
        return;
    }
    res->protocol = wsock_select_protocol(pool, req->protocols, allowed);
    if (res->protocol == NULL && require_protocol) {
        reject(res, 400, "no offered subprotocol is allowed here");
        return;
    }
}
