/*
 * wsock_peer_acked.h — how much of what we sent the client has taken.
 */
#ifndef WSOCK_PEER_ACKED_H
#define WSOCK_PEER_ACKED_H

#include <apr_network_io.h>

/* The bytes the peer has acknowledged on this TCP socket so far (Linux's
 * TCP_INFO, since 4.1), or 0 where that is unknown.  With a full socket
 * the count moves only as the client reads: a stop tells a client that
 * reads slowly from one that does not read by it, where "the socket has
 * room again" can take seconds for the first (the kernel reports room only
 * once half of what it queued is gone, and a blocking writer refills it). */
apr_uint64_t wsock_peer_acked(apr_socket_t *sock);

#endif /* WSOCK_PEER_ACKED_H */
