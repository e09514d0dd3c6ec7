/*
 * ws_pmd.h — permessage-deflate for the benchmark clients (RFC 7692), the
 * part of the client library that ws_client.c calls; tools use the
 * wsc_pmd_* settings of ws_client.h.
 *
 * zlib directly, not the module's src/codec/wsock_deflate.c: the clients
 * check the server's compression with an implementation of their own.
 */
#ifndef WS_PMD_H
#define WS_PMD_H

#include "ws_client.h"

/* Checks the server's Sec-WebSocket-Extensions answer (value/len; value
 * NULL: the header is absent) against offer (NULL: nothing offered) and
 * fills *p.  0, or -1 with *why when the answer is not one a client may
 * accept (or the server declined what we offered). */
int wsc_pmd_answer(const char *offer, const char *value, size_t len, wsc_pmd_params *p,
                   const char **why);

/* One outgoing message of c: 1 with *out and *outlen (in a buffer of the
 * thread, valid until its next call) if it goes compressed, 0 if it goes
 * as it is, -1 if zlib failed. */
int wsc_pmd_deflate(wsc_conn *c, const uint8_t *in, size_t len, const uint8_t **out,
                    size_t *outlen);

/* A chunk of a compressed message (as the parser's on_data): inflates it,
 * checks the result (size limit, UTF-8 of text) and hands it to the tool's
 * on_data.  Nonzero: stop (the connection has ended). */
int wsc_pmd_inflate(wsc_conn *c, wsock_opcode op, const uint8_t *data, size_t len,
                    int first, int last);

/* Frees c's zlib streams (the connection has ended). */
void wsc_pmd_conn_free(wsc_conn *c);

#endif /* WS_PMD_H */
