/*
 * fuzz_handshake.c — libFuzzer harness for the opening-handshake rules
 * (src/handshake).
 *
 * The input is read as an HTTP request head, as a client would send it:
 * "METHOD /path HTTP/x.y", then "Name: value" lines (CRLF or LF).  Headers
 * go into an APR table the way httpd keeps r->headers_in (case-insensitive
 * names, repeated headers joined with ", "), and the request's facts are
 * taken from it as mod_wsock.c does, then checked three ways: with no
 * subprotocols configured, with some allowed, and with them required.
 * The harness aborts when an invariant breaks:
 *   - the status is 0 (accept), 400 or 426;
 *   - an accepted request is a GET of HTTP/1.1 or later whose Upgrade names
 *     websocket, whose Connection holds upgrade, whose version is 13 and
 *     whose key is 16 bytes of base64; its Sec-WebSocket-Accept is 28
 *     characters of base64;
 *   - a chosen subprotocol is one the location allows and the client
 *     offered; none is chosen without an allowed list; requiring a
 *     protocol refuses exactly the requests that got none;
 *   - every refusal says why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "wsock_handshake.h"
#include "fuzz_check.h"

static apr_pool_t *root;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    apr_pool_create(&root, NULL);
    return 0;
}

/* The next line of the head (without its CR LF), or NULL at the end. */
static char *next_line(char **cursor)
{
    char *line = *cursor, *nl;

    if (line == NULL || *line == '\0') {
        return NULL;
    }
    nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
    }
    else {
        *cursor = NULL;
    }
    if (nl > line && nl[-1] == '\r') {
        nl[-1] = '\0';
    }
    return line;
}

/* "HTTP/1.1" -> 1001, as httpd's r->proto_num; anything else -> 0. */
static int proto_num(const char *v)
{
    int major, minor;
    char tail;

    if (v == NULL || sscanf(v, "HTTP/%d.%d%c", &major, &minor, &tail) != 2
        || major < 0 || major > 9 || minor < 0 || minor > 9) {
        return 0;
    }
    return major * 1000 + minor;
}

static void parse_head(apr_pool_t *p, const uint8_t *data, size_t size,
                       wsock_handshake_req *req)
{
    char *text = apr_pstrmemdup(p, (const char *)data, size);  /* stops at a NUL */
    char *cursor = text, *line;
    apr_table_t *h = apr_table_make(p, 8);

    memset(req, 0, sizeof(*req));
    if ((line = next_line(&cursor)) != NULL) {
        char *sp = strchr(line, ' ');                       /* METHOD path HTTP/x.y */
        req->method = line;
        if (sp) {
            *sp = '\0';
            req->proto_num = proto_num(strrchr(sp + 1, ' ') ? strrchr(sp + 1, ' ') + 1 : NULL);
        }
    }
    while ((line = next_line(&cursor)) != NULL && *line) {
        char *colon = strchr(line, ':');
        char *value;

        if (colon == NULL || colon == line) {
            continue;                                           /* httpd: 400 */
        }
        *colon = '\0';
        value = colon + 1;
        while (*value == ' ' || *value == '\t') {
            value++;
        }
        apr_table_mergen(h, line, value);
    }
    req->upgrade = apr_table_get(h, "Upgrade");
    req->connection = apr_table_get(h, "Connection");
    req->key = apr_table_get(h, "Sec-WebSocket-Key");
    req->version = apr_table_get(h, "Sec-WebSocket-Version");
    req->protocols = apr_table_get(h, "Sec-WebSocket-Protocol");
}

/* 1 if the comma/space separated offer holds exactly proto. */
static int offered(apr_pool_t *p, const char *offer, const char *proto)
{
    char *state, *tok;

    for (tok = apr_strtok(apr_pstrdup(p, offer), ", \t", &state); tok;
         tok = apr_strtok(NULL, ", \t", &state)) {
        if (strcmp(tok, proto) == 0) {
            return 1;
        }
    }
    return 0;
}

static void check_accepted(apr_pool_t *p, const wsock_handshake_req *req,
                           const wsock_handshake_result *res)
{
    char accept[WSOCK_ACCEPT_SIZE];

    CHECK(req->method && strcmp(req->method, "GET") == 0, "accepted a method other than GET");
    CHECK(req->proto_num >= 1001, "accepted HTTP/1.0");
    CHECK(wsock_token_list_has(req->upgrade, "websocket"), "accepted without websocket");
    CHECK(wsock_token_list_has(req->connection, "upgrade"), "accepted without upgrade token");
    CHECK(req->version && strcmp(req->version, "13") == 0, "accepted a version other than 13");
    CHECK(wsock_key_is_valid(req->key), "accepted a bad key");
    wsock_accept_value(req->key, accept);
    CHECK(strlen(accept) == 28 && accept[27] == '=', "Sec-WebSocket-Accept not 28 chars");
    if (res->protocol) {
        CHECK(req->protocols && offered(p, req->protocols, res->protocol),
              "chose a protocol the client did not offer");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    apr_array_header_t *allowed;
    wsock_handshake_req req;
    wsock_handshake_result none, some, required;

    apr_pool_create(&p, root);
    parse_head(p, data, size, &req);
    allowed = apr_array_make(p, 3, sizeof(const char *));
    APR_ARRAY_PUSH(allowed, const char *) = "chat";
    APR_ARRAY_PUSH(allowed, const char *) = "superchat";
    APR_ARRAY_PUSH(allowed, const char *) = "v2.json";

    wsock_handshake_check(p, &req, NULL, 0, &none);
    wsock_handshake_check(p, &req, allowed, 0, &some);
    wsock_handshake_check(p, &req, allowed, 1, &required);

    CHECK(none.status == 0 || none.status == 400 || none.status == 426, "status");
    CHECK(none.status == 0 || none.reason != NULL, "refusal without a reason");
    CHECK(none.protocol == NULL, "a protocol chosen with none allowed");
    CHECK(some.status == none.status, "allowed protocols changed the status");
    if (none.status == 0) {
        check_accepted(p, &req, &some);
        if (some.protocol) {
            int known = 0;
            for (int i = 0; i < allowed->nelts; i++) {
                known |= strcmp(APR_ARRAY_IDX(allowed, i, const char *), some.protocol) == 0;
            }
            CHECK(known, "chose a protocol the location does not allow");
            CHECK(required.status == 0 && required.protocol == some.protocol,
                  "requiring a protocol refused one that was offered");
        }
        else {
            CHECK(required.status == 400 && required.reason != NULL,
                  "requiring a protocol accepted a client that offered none");
        }
    }
    else {
        CHECK(required.status == none.status, "requirement changed an earlier refusal");
    }
    /* the token matcher on its own, on whatever the client sent */
    if (req.connection) {
        wsock_token_list_has(req.connection, req.upgrade ? req.upgrade : "");
    }
    apr_pool_destroy(p);
    return 0;
}
