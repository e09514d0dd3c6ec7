/*
 * wsock_token.h — WSockTokenAuth: a WebSocket handshake must carry a valid
 * HS256 JWT (wsock_jwt.c) in its subprotocol offer, a query argument or a
 * cookie; its claims are kept for the handler (wsock_token_claim()).
 */
#ifndef WSOCK_TOKEN_H
#define WSOCK_TOKEN_H

#include <httpd.h>
#include <http_config.h>

#include "wsock.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The subprotocol that comes before the token in the client's offer:
 * "Sec-WebSocket-Protocol: access_token, <jwt>". */
#define WSOCK_TOKEN_PROTOCOL "access_token"

typedef struct wsock_token_conf wsock_token_conf;

/* Directives (the conf argument is the section's wsock_dir_conf). */
const char *wsock_cmd_token_auth(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_token_source(cmd_parms *cmd, void *conf, const char *where,
                                   const char *name);
const char *wsock_cmd_token_audience(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_token_leeway(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_token_expiry(cmd_parms *cmd, void *conf, const char *arg);

/* The per-directory merge: each setting inherited unless set in add. */
wsock_token_conf *wsock_token_conf_merge(apr_pool_t *pool, const wsock_token_conf *base,
                                         const wsock_token_conf *add);

/* OK (no token needed here, or a valid one: *claims set), or 401 with
 * WWW-Authenticate set and the reason logged.  When the token comes in the
 * subprotocol offer and no other subprotocol was chosen, *protocol becomes
 * "access_token" (browsers fail a handshake that offered subprotocols and
 * got none back); the token itself is never chosen.  *expires: when the
 * WebSocket must be closed because its token expired (exp plus the
 * leeway; WSockTokenExpiry close), or 0 for never. */
int wsock_token_check(request_rec *r, const wsock_token_conf *conf, const char **protocol,
                      apr_table_t **claims, apr_time_t *expires);

/* Keeps the claims with the connection, for wsock_token_claim(), and when
 * it must close (expires, from wsock_token_check). */
void wsock_token_attach(wsock_conn *wc, const apr_table_t *claims, apr_time_t expires);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_TOKEN_H */
