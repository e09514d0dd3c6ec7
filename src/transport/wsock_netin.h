/*
 * wsock_netin.h — the network input filter of an asynchronously driven
 * plain (not TLS) connection (see wsock_netin.c).
 */
#ifndef WSOCK_NETIN_H
#define WSOCK_NETIN_H

#include <httpd.h>

/* Once, from register_hooks. */
void wsock_netin_register(void);

/* Puts the filter in place of the core input filter of c, keeping what the
 * core filter had already read (scratch: an empty brigade of c to read it
 * into, left empty).  0, or -1 if c is not a plain connection with a core
 * input filter (nothing changed then). */
int wsock_netin_install(conn_rec *c, apr_bucket_brigade *scratch);

#endif /* WSOCK_NETIN_H */
