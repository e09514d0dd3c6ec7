/*
 * wsock_security.h — what a WebSocket handshake must pass before the 101,
 * after the RFC 6455 rules (src/handshake) and Apache's own authn/authz:
 * the Origin (WSockAllowedOrigins), a signed token (WSockTokenAuth) and
 * the client's number of open WebSockets (WSockMaxConnectionsPerIP).
 *
 * mod_wsock.c calls wsock_security_admit() from the upgrade handler; the
 * directives' setters live in the files of each check.
 */
#ifndef WSOCK_SECURITY_H
#define WSOCK_SECURITY_H

#include <httpd.h>
#include <http_config.h>

#include "wsock_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the checks found, for the connection once it exists. */
typedef struct {
    apr_table_t *claims;        /* the verified token's claims, or NULL */
    apr_time_t token_expires;   /* close the WebSocket then (1008); 0: never */
    struct wsock_ipcap_hold *ip_hold;   /* counted for WSockMaxConnectionsPerIP */
} wsock_admission;

/* OK, or the HTTP status that refuses the handshake (logged).  *protocol
 * is the subprotocol chosen so far (may be set: see wsock_token_check). */
int wsock_security_admit(request_rec *r, const wsock_dir_conf *d, const char **protocol,
                         wsock_admission *adm);

/* The connection was created: hands it what the checks found (the
 * connection holds the per-IP count from now on). */
void wsock_security_attach(wsock_conn *wc, wsock_admission *adm);

/* The connection ended (or was refused): gives back what it holds. */
void wsock_security_conn_end(wsock_conn *wc);

/* Admitted, but refused later (the handler's on_open, an error): undoes
 * what admission holds. */
void wsock_security_refused(wsock_admission *adm);

/* The hooks of the checks that need them (the per-IP table). */
void wsock_security_register_hooks(void);

/* WSockAllowedOrigins word... */
const char *wsock_cmd_allowed_origins(cmd_parms *cmd, void *conf, const char *word);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_SECURITY_H */
