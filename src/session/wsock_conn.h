/*
 * wsock_conn.h — one upgraded WebSocket connection: its state machine and
 * its output.  Private to the module; plugins see only wsock.h.
 *
 * Data flow: a driver reads bytes through the connection's input filters
 * and hands them to wsock_conn_input(); the codec turns them into messages
 * and control frames; messages go to the handler; what the handler (or
 * another thread) sends is written by wsock_conn_flush() through the output
 * filters, so mod_ssl and friends keep working.
 *
 * The driver's thread owns the connection.  Other threads only touch the
 * outbound queue and the pending-close request, under the mutex, and wake
 * the owner through the driver's wake callback.
 */
#ifndef WSOCK_CONN_H
#define WSOCK_CONN_H

#include <httpd.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_portable.h>
#include <apr_thread_proc.h>
#include <apr_poll.h>

#include "wsock.h"
#include "wsock_codec.h"
#include "wsock_config.h"
#include "wsock_log.h"
#include "wsock_ratelimit.h"

/* How much one non-blocking read asks the filters for: a 64 KiB message
 * with its frame header in one read, and one turn's input on a loop thread
 * (see wsock_conn_read).  On plain connections WSOCK_NETIN takes a buffer
 * of this size from the connection's allocator for each read (see
 * trim_memory in wsock_loop.c).  Measured (bench/fairness.sh): with 256 KiB
 * turns, 50 small echoes beside 2 clients flooding 64 KiB messages had 10x
 * their p99 alone; with 65 KiB, 1.9x, and the 64 KiB echo is as fast. */
#define WSOCK_READ_CHUNK (65 * 1024)

/* The high-water mark of what a connection has produced but the socket
 * has not taken yet (its output buffer and the network filter's backlog):
 * at or above it the connection is not read (its echoes would pile up),
 * its outbound queue is not taken, and wsock_send_try() says APR_EAGAIN.
 * What one read can add on top (a read's worth of echoes, or one message
 * up to WSockMaxMessageSize) bounds a connection's output memory. */
#define WSOCK_OUT_HIGH (256 * 1024)

typedef enum {
    WSOCK_STATE_OPEN = 0, /* messages flow both ways */
    WSOCK_STATE_CLOSING,  /* we sent a close, waiting for the peer's */
    WSOCK_STATE_DONE      /* nothing more to do: the driver ends */
} wsock_state;

/* One message serialized as frames, shared by every connection it is
 * queued to (a room's broadcast is serialized once): freed by the last
 * wsock_frames_release(). */
typedef struct wsock_frames {
    apr_uint32_t refs;
    apr_size_t frag;               /* the WSockFragmentSize it was cut for */
    int form;                      /* the extension stage's form (WSOCK_FORM_*) */
    wsock_opcode deflate_op;       /* 0: bytes are frames; TEXT/BINARY: bytes are
                                    * a payload its owner thread deflates with
                                    * the connection's context, then frames */
    apr_size_t len;
    uint8_t bytes[];
} wsock_frames;

/* A growable byte buffer that is reused, not freed, between uses. */
typedef struct {
    uint8_t *data;
    apr_size_t len, cap;
} wsock_buf;

struct wsock_conn {
    conn_rec *c;
    request_rec *r;
    apr_pool_t *pool;              /* lives as long as the connection */
    wsock_settings set;
    void *user_data;
    void *handler_cfg;             /* the handler's per-location config */
    apr_os_thread_t owner;         /* atomic: wsock_conn_owner() */

    /* facts of the opening request (wsock_facts.c), immutable once set */
    const char *f_uri, *f_query, *f_remote_ip, *f_user, *f_protocol, *f_conn_id;
    char f_app_id[33];             /* wsock_connection_id(): 16 random bytes, hex */
    const char *refusal_type;      /* wsock_refusal_body(): what a refusing */
    const char *refusal_body;      /* on_open's status carries, or NULL */
    apr_size_t refusal_len;
    const char *f_location;        /* section of the WSockHandler line */
    apr_table_t *f_claims;         /* the verified token's claims, or NULL */
    server_rec *f_server;          /* for log lines from other threads */
    apr_table_t *f_query_args, *f_headers;         /* the thread that runs the driver */

    int upgraded;                  /* the 101 is out: output may be written */
    const uint8_t *delivering;     /* the message on_message holds now (text */
    apr_size_t delivering_len;     /* already checked by the codec), owner only */
    wsock_state state;
    int close_code;                /* what ended it, for on_close and the log */
    const char *close_reason;
    int opened;                    /* on_open accepted: on_close is due */
    int counted;                   /* upgraded: its end is still to be counted */

    /* input */
    int input_buffers;             /* a filter (mod_ssl) may hold input the
                                    * socket won't signal: read until empty */
    wsock_parser parser;
    apr_bucket_brigade *bb_in;
    wsock_buf rbuf;                /* bytes read, unmasked in place */
    wsock_buf *shared_rbuf;        /* instead of rbuf: its loop thread's */
    wsock_buf msg;                 /* fragments of the message being assembled */
    apr_time_t last_rx;            /* last time the peer sent anything */
    apr_time_t last_ping;
    apr_time_t close_deadline;     /* when CLOSING gives up on the peer */
    apr_time_t token_expires;      /* its token's exp (WSockTokenAuth): closed
                                    * with 1008 then; 0 = never */
    struct wsock_ipcap_hold *ip_hold; /* its WSockMaxConnectionsPerIP count,
                                    * given back when it ends */

    /* abuse limits (WSockRateLimit, WSockFrameTimeout; docs/limits.md) */
    wsock_bucket rl_msgs, rl_bytes;
    apr_time_t partial_since;      /* first byte of an unfinished frame or
                                    * fragmented message; 0 = none */

    /* permessage-deflate (wsock_compress.c); NULL when not negotiated */
    struct wsock_pmd_state *pmd;

    /* output written by the owner */
    apr_bucket_brigade *bb_out;
    wsock_buf obuf;                /* serialized frames waiting for flush */

    /* shared with other threads, under mutex */
    apr_thread_mutex_t *mutex;
    wsock_frames **q;              /* queued messages, oldest first */
    apr_size_t q_cap;              /* grows to the burst, kept for the next */
    apr_size_t q_msgs, q_bytes;
    wsock_frames **q_spare;        /* the owner's: swapped with q to flush */
    apr_size_t q_spare_cap;
    apr_size_t q_dropped;          /* messages refused because the queue was full */
    apr_size_t q_discarded;        /* queued messages thrown away on a slow close */
    int q_drop_logged;             /* "dropping" was logged (once per connection) */
    int q_slow;                    /* closing as a slow consumer (wsock_slow.c) */
    int q_cut;                     /* ... and its socket was shut down */
    int q_closed;                  /* a close was sent: nothing more is queued */
    int pending_close;             /* close requested from another thread */
    int pending_code;
    char pending_reason[WSOCK_MAX_CONTROL_PAYLOAD];

    /* the rooms joined (src/pubsub/wsock_rooms.c, under its mutex):
     * malloc'ed, at most WSOCK_MAX_ROOMS; rooms_closed once it left them
     * all for good */
    struct wsock_membership *joined;
    int joined_n, joined_cap;
    int rooms_closed;

    /* membership of this child's list of live connections (wsock_live.c) */
    struct wsock_conn *live_prev, *live_next;

    /* the asynchronous driver (wsock_loop.c); unused by the blocking one */
    struct wsock_loop *loop;       /* the loop that owns it */
    struct wsock_netout *netout;   /* its non-blocking network output */
    struct wsock_conn *inbox_next; /* handed to the loop, under its mutex */
    struct wsock_conn *ready_next; /* on a ready list of the loop */
    apr_uint32_t in_ready;         /* atomic: on a ready list */
    struct wsock_conn *loop_prev, *loop_next; /* the loop's connections */
    apr_pollfd_t pfd;              /* what the loop's pollset watches */
    int can_read, can_write;       /* what the last poll said */
    apr_time_t wrote_at;           /* the socket last took bytes (POLLOUT) */
    apr_time_t stop_progress_at;   /* a stop: when the client last took bytes */
    apr_uint64_t stop_acked;       /* a stop: its TCP bytes acked then */
    int phase;                     /* handed, running, draining, lingering */
    apr_time_t due;                /* when its timer fires */
    int heap_idx;                  /* its place in the timer heap, -1: none */
    apr_time_t phase_deadline;     /* end of draining or lingering */
    struct wsock_conn *release_next; /* handed back to the loop to be freed */
    struct worker_slot *slot;      /* of the worker thread that handed it over */
    apr_time_t active_at;          /* last served for I/O, not by its timer */
    int trimmed;                   /* memory given back since then */
    int timer_fired;               /* this serve comes from its timer */

    /* the driver's wake-up, callable from any thread; set and read under
     * mutex (a driver sets it once it takes the connection) */
    void (*wake)(void *baton);
    void *wake_baton;

    /* wsock_on_writable(), under mutex */
    void (*writable_fn)(struct wsock_conn *wc, void *baton);
    void *writable_baton;

    /* references (wsock_ref): 1 for the owner until it lets go, and one per
     * holder; the last one out hands the connection back to its owner,
     * which frees it (wsock_conn_let_go) */
    apr_uint32_t refs;
    void (*on_released)(struct wsock_conn *wc);
    apr_thread_cond_t *released_cond;  /* a blocking owner waits on it */
    int released;                      /* under mutex */
    int let_go;                        /* the owner has let go */
};

/* The thread that owns wc's I/O now (it changes once, when a loop thread
 * takes the connection over, while other threads may be asking). */
static inline apr_os_thread_t wsock_conn_owner(const wsock_conn *wc)
{
    return __atomic_load_n(&wc->owner, __ATOMIC_ACQUIRE);
}

static inline void wsock_conn_set_owner(wsock_conn *wc, apr_os_thread_t t)
{
    __atomic_store_n(&wc->owner, t, __ATOMIC_RELEASE);
}

/* Creates the connection state in pool (the request's connection pool). */
wsock_conn *wsock_conn_create(request_rec *r, const wsock_settings *set);

/* Sets the owner's wake-up (any thread may call it from then on). */
void wsock_conn_set_wake(wsock_conn *wc, void (*wake)(void *baton), void *baton);

/* Calls the owner's wake-up as set now. */
void wsock_conn_wake(wsock_conn *wc);

/* The owner is done with wc (it has left its rooms and refuses new
 * messages) and drops its own reference.  1: nobody else holds wc, free
 * it now.  0: released(wc) is called by the last wsock_unref(), from
 * that thread; free it then (not in released itself). */
int wsock_conn_let_go(wsock_conn *wc, void (*released)(wsock_conn *wc));

/* wsock_conn_let_go() for an owner that can wait: returns once nobody
 * holds wc any more. */
void wsock_conn_let_go_wait(wsock_conn *wc);

/* on_open refused wc with an HTTP status: undoes what accepting did
 * (rooms joined, messages queued), waits for every reference to go, and
 * makes the HTTP connection close after the answer, so that what the
 * attempt took from the connection's pool goes with it. */
void wsock_conn_refused(wsock_conn *wc);

/* Copies what handlers may read about the request into the connection. */
void wsock_facts_capture(wsock_conn *wc, request_rec *r, const char *protocol,
                         void *handler_cfg, const char *location);

/* Calls the handler's on_open, before the 101.  Returns 0 (accepted), an
 * HTTP status to refuse with, or a close code to close with right after
 * the 101 (the close is already started). */
int wsock_conn_open(wsock_conn *wc);

/* Reads what the input filters have now, without blocking, and runs it
 * through the codec, one turn's worth at most.  Returns APR_SUCCESS when
 * they are drained, APR_INCOMPLETE when it stopped early (the turn's input
 * was taken, or the output backlog reached WSOCK_OUT_HIGH): call again once
 * the others had their turn, or once output drained below the mark, without
 * waiting for the socket (mod_ssl may hold decrypted bytes the socket won't
 * signal); APR_EOF or an error when the peer is gone (state DONE). */
apr_status_t wsock_conn_read(wsock_conn *wc);

/* Writes what the owner produced and what other threads queued, and
 * applies a close requested from another thread. */
apr_status_t wsock_conn_flush(wsock_conn *wc);

/* How long the driver may sleep before wsock_conn_tick() has work (-1 for
 * no limit). */
apr_interval_time_t wsock_conn_next_timeout(const wsock_conn *wc, apr_time_t now);

/* Runs the timers: ping, idle timeout, close timeout. */
void wsock_conn_tick(wsock_conn *wc, apr_time_t now);

/* Starts the close handshake from the owning thread.  A code no peer may
 * receive becomes 1011 (logged).  Returns the code sent, 0 if the
 * connection was no longer open. */
int wsock_conn_start_close(wsock_conn *wc, int code, const char *reason);

/* The connection is being freed without ever having been driven (the MPM
 * ended it before handing it over): leaves its rooms, refuses messages,
 * gives back its counts, runs on_close (1006), and waits for every holder.
 * No I/O. */
void wsock_conn_abandon(wsock_conn *wc);

/* Ends the connection: on_close, log, and make sure nothing more is
 * written to it.  Called once by the driver. */
void wsock_conn_finish(wsock_conn *wc);

#endif /* WSOCK_CONN_H */
