/*
 * wsock_h2.h — WebSockets over HTTP/2 (RFC 8441), which mod_wsock does not
 * serve yet: such a handshake is refused clearly (wsock_h2.c).
 */
#ifndef WSOCK_H2_H
#define WSOCK_H2_H

#include <httpd.h>

/* OK if r is not a WebSocket handshake over HTTP/2; else the refusal was
 * answered (501), logged and noted for counting (reason "protocol"), and
 * this is what the handler returns. */
int wsock_h2_refuse(request_rec *r);

#endif /* WSOCK_H2_H */
