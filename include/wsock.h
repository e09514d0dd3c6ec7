/*
 * wsock.h — the public API of mod_wsock for WebSocket handler plugins.
 *
 * A handler is a named table of callbacks (wsock_handler).  The module runs
 * the RFC 6455 handshake, the frame codec, ping/pong, limits and the close
 * handshake; a handler only ever sees whole messages.
 *
 * Threading contract
 *  - Every callback of a connection runs on the thread that owns that
 *    connection's I/O at that moment.  Callbacks must not block on the
 *    network for long: they hold up that connection (and, under the
 *    blocking driver, a worker thread).
 *  - wsock_send() and wsock_close() may be called from any thread.  From
 *    the owning thread they append to the connection's output; from other
 *    threads they put the message on the connection's bounded outbound
 *    queue and wake the owner, which writes it.  Never write to the
 *    connection's socket or filters yourself: OpenSSL connections are not
 *    safe for concurrent reads and writes.
 *  - Data passed to on_message is valid only during the call.
 */
#ifndef WSOCK_H
#define WSOCK_H

#include <apr.h>
#include <apr_errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever wsock_handler or the functions below change in a way
 * that breaks plugins built against an older header. */
#define WSOCK_API_VERSION 1

typedef struct wsock_conn wsock_conn;

typedef struct wsock_handler {
    int api_version;   /* always WSOCK_API_VERSION */
    const char *name;  /* what WSockHandler names */

    /* After the 101 went out.  Return 0 to accept the connection, or a close
     * code (e.g. 1008) to refuse it.  May be NULL. */
    int (*on_open)(wsock_conn *wc);

    /* A whole message: is_text is 1 for text (valid UTF-8), 0 for binary. */
    void (*on_message)(wsock_conn *wc, int is_text, const char *data, apr_size_t len);

    /* The connection ended: code is what was sent or received (1006 if the
     * TCP connection just went away).  May be NULL. */
    void (*on_close)(wsock_conn *wc, int code, const char *reason);
} wsock_handler;

/* Queues a text (is_text = 1) or binary message.  APR_SUCCESS, APR_EOF if
 * the connection is closing, APR_ENOSPC if its outbound queue is full. */
apr_status_t wsock_send(wsock_conn *wc, int is_text, const void *data, apr_size_t len);

/* Starts the close handshake with code and reason (reason may be NULL). */
void wsock_close(wsock_conn *wc, int code, const char *reason);

/* Per-connection data for the handler's own use. */
void wsock_set_user_data(wsock_conn *wc, void *data);
void *wsock_get_user_data(const wsock_conn *wc);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_H */
