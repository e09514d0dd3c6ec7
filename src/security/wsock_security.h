/*
 * wsock_security.h — what a WebSocket handshake must pass before the 101,
 * after the RFC 6455 rules (src/handshake) and Apache's own authn/authz:
 * the Origin check (WSockAllowedOrigins).
 *
 * mod_wsock.c calls wsock_security_admit() from the upgrade handler; the
 * directives' setters live here so that the glue only lists them.
 */
#ifndef WSOCK_SECURITY_H
#define WSOCK_SECURITY_H

#include <httpd.h>
#include <http_config.h>

#include "wsock_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OK, or the HTTP status that refuses the handshake (logged). */
int wsock_security_admit(request_rec *r, const wsock_dir_conf *d);

/* WSockAllowedOrigins word... */
const char *wsock_cmd_allowed_origins(cmd_parms *cmd, void *conf, const char *word);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_SECURITY_H */
