/*
 * wsock_socket.h — gives an upgraded connection a socket descriptor of its
 * own for the life of the WebSocket, so that the MPM's forced close on
 * "apachectl stop" cannot cut the TCP connection before the client has
 * been told "going away" (1001).
 */
#ifndef WSOCK_SOCKET_H
#define WSOCK_SOCKET_H

#include <httpd.h>

typedef struct wsock_socket_swap wsock_socket_swap;

/* Points the connection's core filters at a duplicate of its socket.
 * Returns NULL (and changes nothing) where that is not possible; the
 * connection then simply keeps its original socket. */
wsock_socket_swap *wsock_socket_own(conn_rec *c);

/* Gives the connection back to the MPM as it was: the original socket in
 * the filters, the duplicate closed — or, if the MPM closed its
 * descriptor meanwhile, the duplicate handed to it so that its own close
 * path ends the connection normally. */
void wsock_socket_restore(wsock_socket_swap *sw);

#endif /* WSOCK_SOCKET_H */
