/*
 * wsock_connaddr.h — addressing one connection by its id
 * (wsock_connection_id()) from any thread of any child process of the
 * server: the public calls are in wsock.h (wsock_make_addressable(),
 * wsock_id_send(), wsock_id_close(), wsock_id_connected()); the publish
 * endpoint (wsock_publish_http.c) and the Redis relay use them.
 *
 * An addressable connection is the only member of a private room named
 * WSOCK_ROOM_RESERVED "c" ID, so the bus (src/bus) knows which child holds
 * it and carries messages for it there.  What travels on that room is one
 * tagged message: 'T' text, 'B' binary, 'C' a close (code in two bytes,
 * big-endian, then the reason).
 */
#ifndef WSOCK_CONNADDR_H
#define WSOCK_CONNADDR_H

#include "wsock.h"

#define WSOCK_CONNADDR_ID_LEN 32            /* hex digits of wsock_connection_id() */

/* Whether id has the form of a connection id (32 lowercase hex digits). */
int wsock_connaddr_valid_id(const char *id);

/* The private room of id into room (WSOCK_CONNADDR_ID_LEN + 3 bytes). */
void wsock_connaddr_room(char *room, const char *id);

/* The bus delivered a tagged message of a private room to this child. */
void wsock_connaddr_deliver(const char *room, const void *data, apr_size_t len);

/* Before on_open of a location with WSockAddressable on (addressable):
 * makes wc addressable.  0, or 503 after a log line. */
int wsock_connaddr_open(wsock_conn *wc, int addressable);

/* A close code an application may ask for: 1000, 1008, 3000-4999. */
int wsock_connaddr_valid_code(int code);

#endif /* WSOCK_CONNADDR_H */
