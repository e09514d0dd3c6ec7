/*
 * wsock.h — the public API of mod_wsock for WebSocket handler plugins.
 *
 * A handler is a named table of callbacks (wsock_handler).  mod_wsock runs
 * the RFC 6455 handshake, the frame codec, ping/pong, limits and the close
 * handshake; a handler only ever sees whole messages.  The built-in
 * handlers (echo, ...) use nothing that is not in this file.
 *
 * Writing a plugin (see docs/plugins.md and examples/):
 *   1. #include "wsock.h" and define one
 *          WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = { ... };
 *      with .api_version = WSOCK_API_VERSION.
 *   2. Build it:  apxs -c my_plugin.c
 *   3. Load it:   WSockPlugin myname /path/to/.libs/my_plugin.so   (server config)
 *      Use it:    <Location /ws> WSockHandler myname [args...] </Location>
 *
 * Threading contract
 *  - create_config runs while the configuration is read (single thread,
 *    in the parent; also under `apachectl configtest`).
 *  - child_init runs once in each child process, before any connection;
 *    child_exit when that child ends.  child_init runs with every signal
 *    blocked but those a fault raises, and threads it starts inherit that
 *    mask: keep it so in any thread you start later (pthread_sigmask), or
 *    the MPM's SIGTERM may land in your thread and run the child's exit
 *    there.
 *  - on_open, on_message and on_close of a connection run on the thread
 *    that owns that connection's I/O at that moment, one at a time, never
 *    concurrently for the same connection.  They must not block on the
 *    network for long: under the event MPM one loop thread serves many
 *    connections, and a slow callback holds up all of them (under worker
 *    and prefork: one worker thread per connection).
 *  - wsock_send() and wsock_close() may be called from any thread while the
 *    connection is open (between on_open and the return of on_close).  From
 *    the owning thread they append to the connection's output; from other
 *    threads they put the message on the connection's bounded outbound
 *    queue and wake the owner, which writes it.  Never touch the
 *    connection's socket or filters yourself: OpenSSL connections are not
 *    safe for concurrent reads and writes.
 *  - The fact accessors (wsock_uri(), wsock_user(), ...) return strings
 *    that stay valid and unchanged for the whole life of the connection;
 *    they may be read from any thread while the connection is open.
 *
 * Lifetimes
 *  - The data passed to on_message is valid only during the call.
 *  - The config object returned by create_config lives in the config
 *    pool: until the next restart of the server.
 */
#ifndef WSOCK_H
#define WSOCK_H

#include <httpd.h>
#include <apr.h>
#include <apr_errno.h>
#include <apr_pools.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this API.  mod_wsock refuses (at configtest) a plugin
 * whose api_version differs: rebuild plugins against the new header. */
#define WSOCK_API_VERSION 2

/* Additions within one WSOCK_API_VERSION: a plugin built for an older
 * minor keeps working; one that uses a newer call needs a mod_wsock that
 * has it (#if WSOCK_API_MINOR >= n).
 *   1: wsock_send_try(), wsock_on_writable(), wsock_ref()/wsock_unref();
 *      wsock_join()/wsock_leave() from any thread; a connection holds at
 *      most WSOCK_MAX_ROOMS rooms.
 *   2: wsock_connection_id().
 *   3: wsock_make_addressable(), wsock_id_send(), wsock_id_close(),
 *      wsock_id_connected(), wsock_id_send_local(), wsock_id_close_local():
 *      a connection addressed by its id.
 *   4: wsock_refusal_body(). */
#define WSOCK_API_MINOR 4

/* The symbol mod_wsock looks up in a plugin .so. */
#define WSOCK_PLUGIN_SYMBOL "wsock_plugin"

#if defined(__GNUC__)
#define WSOCK_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define WSOCK_PLUGIN_EXPORT
#endif

typedef struct wsock_conn wsock_conn;

/* on_open results other than 0 (see below). */
#define WSOCK_IS_HTTP_STATUS(n) ((n) >= 400 && (n) <= 599)
#define WSOCK_IS_CLOSE_CODE(n)  ((n) >= 1000 && (n) <= 4999)

typedef struct wsock_handler {
    int api_version;   /* always WSOCK_API_VERSION */
    const char *name;  /* default name; WSockPlugin may register it under another */

    /* Builds the handler's per-location configuration from the arguments
     * after the name in "WSockHandler name arg1 arg2 ...".  Returns NULL on
     * success (with *cfg set, or left NULL), or an error message, which
     * makes the configuration (and configtest) fail.  argv lives only
     * during the call: copy what you keep into pool.  NULL callback: the
     * handler takes no arguments. */
    const char *(*create_config)(apr_pool_t *pool, int argc, char *const argv[],
                                 void **cfg);

    /* Once per child process, before any connection; and when it ends.
     * May be NULL. */
    void (*child_init)(apr_pool_t *pchild, server_rec *s);
    void (*child_exit)(server_rec *s);

    /* A client asks to connect; runs before the 101 is sent, so the request
     * facts are available and the connection can still be refused:
     *   0                      accept (messages sent here go out right
     *                          after the 101);
     *   an HTTP status 400-599 refuse with that status, no upgrade (the
     *                          rooms it joined are left, what it sent is
     *                          dropped, the HTTP connection closes);
     *   a close code 1000-4999 upgrade, then close at once with that code.
     * May be NULL (accept). */
    int (*on_open)(wsock_conn *wc);

    /* A whole message: is_text 1 for text (valid UTF-8), 0 for binary.
     * Return 0, or a close code (e.g. 1008, 1011) to close the connection
     * with it; the refusal is logged. */
    int (*on_message)(wsock_conn *wc, int is_text, const char *data, apr_size_t len);

    /* The connection ended (always called once after an accepted on_open):
     * code is what was sent or received (1006 if the TCP connection just
     * went away).  May be NULL. */
    void (*on_close)(wsock_conn *wc, int code, const char *reason);
} wsock_handler;

/* In on_open (on its thread), before it returns an HTTP status: the
 * refusal carries this body (copied; at most WSOCK_REFUSAL_BODY_MAX bytes)
 * with this Content-Type (NULL: text/plain; charset=utf-8) instead of
 * Apache's error page, e.g. what an application's backend answered.  No
 * effect if on_open accepts.  APR_SUCCESS; APR_EINVAL for a body too long,
 * a content type with control characters, or after the 101. */
#define WSOCK_REFUSAL_BODY_MAX 65536
apr_status_t wsock_refusal_body(wsock_conn *wc, const char *content_type, const void *body,
                                apr_size_t len);

/* ---- sending (any thread) --------------------------------------------- */

/* Queues a text (is_text = 1; data must be UTF-8) or binary message.  The
 * data is copied (or written) before the call returns.  APR_SUCCESS;
 * APR_EOF if the connection is closing; APR_ENOSPC if its outbound queue
 * is full: the message is dropped, and under WSockSendQueue's "close"
 * policy the connection is being closed with 1008; APR_EINVAL for text
 * that is not UTF-8. */
apr_status_t wsock_send(wsock_conn *wc, int is_text, const void *data, apr_size_t len);

/* Starts the close handshake with code and reason (reason may be NULL). */
void wsock_close(wsock_conn *wc, int code, const char *reason);

/* ---- flow control (any thread) ---------------------------------------- */

/* wsock_send() for a producer that can wait, such as a catch-up from a
 * history: when the connection has no room for the message now (its
 * outbound queue is at WSockSendQueue's bound, or what it has not written
 * yet is at its high-water mark), nothing is sent and nothing else happens
 * (no drop is counted, the "close" policy does not apply): APR_EAGAIN.
 * Then wait for wsock_on_writable().  Other results as wsock_send(). */
apr_status_t wsock_send_try(wsock_conn *wc, int is_text, const void *data, apr_size_t len);

/* Calls fn(wc, baton) once, on the connection's owning thread, when its
 * outbound queue is empty and what it has not written yet is below the
 * high-water mark (at once, if it is so now): wsock_send_try() then takes
 * a message; or when the connection ends first (before on_close; a
 * producer then learns from APR_EOF that it may stop).  One callback at a
 * time: a later call replaces an earlier one that has not run.  APR_EOF if
 * the connection is closing already (fn is not called).  fn must not
 * block. */
apr_status_t wsock_on_writable(wsock_conn *wc, void (*fn)(wsock_conn *wc, void *baton),
                               void *baton);

/* ---- keeping a connection object (any thread) -------------------------- */

/* wsock_ref() keeps wc's memory valid until the matching wsock_unref(),
 * even after the connection has ended: another thread may then still call
 * wsock_send*(), wsock_close() or wsock_on_writable() on it safely (they
 * return APR_EOF, or do nothing, once it is closing).  Take the reference
 * while the connection is open (in a callback, or under a lock that
 * on_close also takes), and drop it soon after the connection ends: the
 * connection's memory (and, for a refused on_open, the HTTP connection)
 * is only given back once every reference is dropped. */
void wsock_ref(wsock_conn *wc);
void wsock_unref(wsock_conn *wc);

/* ---- rooms ------------------------------------------------------------- */

/* A room is a name (1-128 bytes, no NUL; a first byte 0x01 is reserved for
 * the module: wsock_join() and wsock_publish*() refuse it) for a group of
 * connections that
 * wsock_publish() reaches together, whichever thread and whichever child
 * process of the server holds them (the in-server bus: docs/bus.md).  Each
 * receiver sees one publisher's messages in the order they were published. */

/* The most rooms one connection may be in at once. */
#define WSOCK_MAX_ROOMS 1024

/* Adds the connection to room (no effect if already in it), from any
 * thread while the connection is open.  APR_SUCCESS; APR_EINVAL for a bad
 * name; APR_ENOSPC when it is in WSOCK_MAX_ROOMS rooms already; APR_EOF
 * once it is ending (or its on_open refused it). */
apr_status_t wsock_join(wsock_conn *wc, const char *room);

/* Takes the connection out of room (any thread).  Connections leave all
 * their rooms by themselves when they end, and when on_open refuses them
 * after joining. */
void wsock_leave(wsock_conn *wc, const char *room);

/* Sends a message to every connection in room, in every child process of
 * the server, from any thread; a connection whose queue is full misses it
 * (as with wsock_send).  Returns how many connections of this child process
 * it was queued to (0 for text that is not UTF-8 or a bad room name). */
int wsock_publish(const char *room, int is_text, const void *data, apr_size_t len);

/* wsock_publish() to everyone in room but except (NULL: everyone), e.g. a
 * chat that does not echo a message to its sender. */
int wsock_publish_except(const char *room, const wsock_conn *except, int is_text,
                         const void *data, apr_size_t len);

/* wsock_publish_except() to the members held by this child process only:
 * for relays that run one subscriber per child process (each child's
 * subscriber delivers to its own child's members). */
int wsock_publish_local(const char *room, const wsock_conn *except, int is_text,
                        const void *data, apr_size_t len);

/* How many connections are in room, in all child processes of the server
 * (0 for a bad name). */
int wsock_room_count(const char *room);

/* How many connections of this child process are in room. */
int wsock_room_count_local(const char *room);

/* ---- a connection addressed by its id (API minor 3) ------------------ */

/* Makes the connection reachable by its wsock_connection_id() from any
 * thread of any child process of the server, from the publish endpoint
 * (POST/GET/DELETE ...?connection=ID, docs/publish.md) and, for servers
 * sharing a Redis, from the others.  Call it in on_open (or any time while
 * it is open); it lasts until the connection ends.  It costs one room of
 * the connection (of its WSOCK_MAX_ROOMS) and one slot of the bus's room
 * table (WSockBusRooms), which is why it is not done for every
 * connection: the backend handler does it always, other handlers where
 * the location says WSockAddressable on.  APR_SUCCESS (also if it is
 * already), APR_EOF once it is ending, APR_ENOSPC / APR_ENOMEM. */
apr_status_t wsock_make_addressable(wsock_conn *wc);

/* Sends a message to the addressable connection with that id, in whichever
 * child process of this server holds it (from any thread), as
 * wsock_send() would.  Returns 1 if a connection of this server has the
 * id, 0 if none does (or for text that is not UTF-8, a malformed id). */
int wsock_id_send(const char *connection_id, int is_text, const void *data, apr_size_t len);

/* Closes the addressable connection with that id, wherever on this server
 * it is, with code (1000, 1008 or 3000-4999) and reason (UTF-8, at most
 * 123 bytes, may be NULL).  Returns 1 if a connection of this server has
 * the id, 0 if none does or the code or reason is not allowed. */
int wsock_id_close(const char *connection_id, int code, const char *reason);

/* Whether an addressable connection with that id is open on this server
 * (any child process): 1 or 0. */
int wsock_id_connected(const char *connection_id);

/* wsock_id_send() and wsock_id_close() for the connections of this child
 * process only: for relays that run one subscriber per child process
 * (each child's subscriber serves its own child's connections).  1 if
 * this child holds the connection. */
int wsock_id_send_local(const char *connection_id, int is_text, const void *data,
                        apr_size_t len);
int wsock_id_close_local(const char *connection_id, int code, const char *reason);

/* ---- per-connection data ---------------------------------------------- */

void wsock_set_user_data(wsock_conn *wc, void *data);
void *wsock_get_user_data(const wsock_conn *wc);

/* The handler's per-location config (what create_config returned). */
void *wsock_handler_config(const wsock_conn *wc);

/* ---- facts of the request that opened the connection ------------------- */

const char *wsock_uri(const wsock_conn *wc);         /* path, e.g. "/chat" */
/* The path of the configuration section that holds the WSockHandler line
 * serving this connection: "/chat" for <Location /chat> (also for a request
 * to /chat/x, or one served by a nested section that inherits it), the
 * directory of a <Directory>, the pattern of a <LocationMatch>; "/" for a
 * WSockHandler in the server config or directly in a <VirtualHost>. */
const char *wsock_location(const wsock_conn *wc);
const char *wsock_query(const wsock_conn *wc);       /* raw query string or NULL */
/* The value of query argument name (URL-decoded), or NULL if absent. */
const char *wsock_query_arg(const wsock_conn *wc, const char *name);
const char *wsock_remote_ip(const wsock_conn *wc);   /* the client (after mod_remoteip) */
const char *wsock_user(const wsock_conn *wc);        /* r->user from Apache auth, or NULL */
const char *wsock_protocol(const wsock_conn *wc);    /* chosen subprotocol, or NULL */
/* A request header (case-insensitive name), or NULL. */
const char *wsock_header(const wsock_conn *wc, const char *name);
/* A log-friendly identifier of the connection (client address and port). */
const char *wsock_conn_id(const wsock_conn *wc);
/* The connection's id for applications: 32 random hex digits, unguessable
 * and unique across servers; what the publish endpoint's connection=ID and
 * the backend protocols name it by (docs/backend.md). */
const char *wsock_connection_id(const wsock_conn *wc);
/* Under WSockTokenAuth: the value of a top-level claim of the verified
 * token ("sub", "exp", ...) as text, if it is a string or a number; NULL
 * for any other claim, or without a token. */
const char *wsock_token_claim(const wsock_conn *wc, const char *name);

/* The Apache connection, for logging with ap_log_cerror() from the owning
 * thread (inside the callbacks).  Don't read from or write to it. */
conn_rec *wsock_connection(const wsock_conn *wc);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_H */
