/*
 * wsock_netout.h — the network output filter of an asynchronously driven
 * connection (see wsock_netout.c).
 */
#ifndef WSOCK_NETOUT_H
#define WSOCK_NETOUT_H

#include <httpd.h>

typedef struct wsock_netout wsock_netout;

/* Once, from register_hooks. */
void wsock_netout_register(void);

/* Puts the filter in place of the core output filter of c; NULL if c has
 * no core output filter to replace (nothing changed then). */
wsock_netout *wsock_netout_install(conn_rec *c);

/* Bytes accepted by the filter but not yet taken by the socket. */
apr_size_t wsock_netout_pending(const wsock_netout *no);

/* Writes what is pending, without blocking.  APR_SUCCESS once nothing is
 * left, APR_EAGAIN while the socket is full, an error (and c->aborted)
 * when the peer is gone. */
apr_status_t wsock_netout_drain(wsock_netout *no);

/* Drops what is pending and gives its buffer back (the connection is
 * over). */
void wsock_netout_release(wsock_netout *no);

#endif /* WSOCK_NETOUT_H */
