/*
 * ws_client.h — what the benchmark clients (wsbench, fanout, idle) share:
 * a non-blocking RFC 6455 client connection driven by epoll, its handshake,
 * masked framing with the project's codec, a latency histogram, and the
 * small helpers around them (loopback URL, clock, bounded diagnostics).
 *
 * A tool embeds a wsc_conn in its own per-connection struct, gives it a
 * wsc_ops table and runs wsc_loop() on its epoll set.  The library answers
 * pings, completes a close handshake the tool started with wsc_close(), and
 * ends a connection (closing its fd) exactly once, telling the tool why
 * through ops->on_end.  Targets are restricted to loopback: these are
 * benchmarks, not load tools for others' servers.
 *
 * A tool may offer permessage-deflate (RFC 7692, wsc_set_pmd): the library
 * then compresses what the tool sends and inflates what it receives with
 * zlib (ws_pmd.c), so the tool sees plain messages either way.
 */
#ifndef WS_CLIENT_H
#define WS_CLIENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "wsock_codec.h"

#define WSC_HS_BUF   4096          /* the 101 response must fit in this */
#define WSC_RECV_BUF (64 * 1024)   /* one per thread, see wsc_loop */

/* ---- small helpers ---- */

uint64_t wsc_now_ns(void);          /* CLOCK_MONOTONIC */

/* Prints "PROG: message" on stderr for the first 20 calls of the process
 * only: a thousand failing connections should not flood the terminal, the
 * counters tell the rest.  PROG is set with wsc_set_prog. */
void wsc_set_prog(const char *prog);
void wsc_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Integer command-line argument in [lo, hi], else a message and exit(2). */
long wsc_num_arg(const char *s, long lo, long hi, const char *what);

/* Raises the soft RLIMIT_NOFILE to at least want (capped at the hard limit);
 * returns the soft limit now in force. */
long wsc_raise_nofile(long want);

/* splitmix64: mask keys must be unpredictable to intermediaries, not
 * cryptographically strong per frame; seed *state from RAND_bytes. */
uint32_t wsc_rng_next(uint64_t *state);

/* into[i] += from[i] for n counters: the tools keep their per-thread
 * counters in structs of uint64_t only and add them up with this. */
void wsc_add_counts(uint64_t *into, const uint64_t *from, size_t n);

/* CPU seconds (user + system) this process has used so far. */
double wsc_cpu_seconds(void);

/* ---- target ---- */

typedef struct {
    char url[512];
    char host[256];                 /* as written in the URL, for Host: */
    char path[256];
    struct sockaddr_in addr;
} wsc_target;

/* ws://HOST[:PORT][/PATH] with HOST 127.x.x.x or localhost; anything else:
 * a message on stderr and exit(2) (for command-line arguments). */
void wsc_parse_url(const char *url, wsc_target *t);

/* ---- handshake pieces (also for the limit server) ---- */

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (SHA-1 + base64, OpenSSL). */
void wsc_accept_for(const char *key, char out[32]);

/* The trimmed value of header `name` (case-insensitive) in headers, which
 * start with the request or status line and whose every line ends with
 * CRLF; NULL if absent. */
const char *wsc_header(const char *headers, const char *name, size_t *len);

/* ---- latency histogram: log-linear, 64 sub-buckets per power of two, so
 * memory is fixed and every reported value is within 1.6 % of the truth ---- */

#define WSC_HIST_SUB_BITS 6
#define WSC_HIST_BUCKETS  ((1u << WSC_HIST_SUB_BITS) * (65 - WSC_HIST_SUB_BITS))

typedef struct {
    uint64_t n[WSC_HIST_BUCKETS];
    uint64_t count, max;
} wsc_hist;

void wsc_hist_add(wsc_hist *h, uint64_t v);
void wsc_hist_merge(wsc_hist *into, const wsc_hist *from);
double wsc_hist_percentile(const wsc_hist *h, double p);

/* ---- connection ---- */

typedef enum {
    WSC_CONNECTING, WSC_HANDSHAKE, WSC_OPEN, WSC_CLOSING, WSC_DONE
} wsc_state;

/* Why a connection ended (ops->on_end). */
typedef enum {
    WSC_END_CLOSED,         /* our close handshake completed (or the server
                             * dropped the connection while we were closing) */
    WSC_END_CONNECT_FAILED, /* connect or handshake failed */
    WSC_END_PEER_CLOSED,    /* the server closed or reset first */
    WSC_END_PROTOCOL,       /* the server broke RFC 6455 (codec error) */
    WSC_END_BACKLOG,        /* our output exceeded out_max: peer not reading */
    WSC_END_ABORTED         /* the tool ended it (wsc_end) */
} wsc_end_reason;

typedef struct wsc_conn wsc_conn;

/* ---- permessage-deflate (RFC 7692), the client side ---- */

/* The offer of Chromium (and of Node ws's client, by default):
 * permessage-deflate with room for the server to limit our window. */
#define WSC_PMD_OFFER_CHROMIUM "permessage-deflate; client_max_window_bits"

typedef struct {
    /* Sec-WebSocket-Extensions to send (NULL: none).  When set, the
     * server must accept it: a 101 without permessage-deflate fails the
     * connection (a benchmark of compression must compress). */
    const char *offer;
    /* Messages of at least this many bytes go out compressed, the others
     * as they are (0: every message, as browsers do).  Compressed as
     * Chromium does: zlib's default level, memLevel 8, the agreed window. */
    size_t compress_min;
    /* Inflate each distinct compressed message once per thread: a message
     * byte-identical to one inflated before (a broadcast compressed once
     * reaches every receiver as the same bytes) gets that result again.
     * Used only while the server keeps no context (server_no_context_takeover),
     * where inflating is a function of the message's bytes alone. */
    int memo;
} wsc_pmd_config;

/* What the server agreed to (set when the connection opens). */
typedef struct {
    int on;                          /* permessage-deflate is in use */
    int server_no_context_takeover, client_no_context_takeover;
    int server_max_window_bits, client_max_window_bits;   /* 8..15 */
} wsc_pmd_params;

/* An -z argument: "chromium" for WSC_PMD_OFFER_CHROMIUM, "none" for
 * NULL, anything else is the offer itself. */
const char *wsc_pmd_offer_arg(const char *arg);

struct wsc_pmd_conn;                 /* zlib streams of one connection (ws_pmd.c) */

/* What went over a connection, counted by the library (uint64_t only: the
 * tools add them up with wsc_add_counts). */
typedef struct {
    uint64_t wire_in, wire_out;     /* frame bytes after the 101: received, queued */
    uint64_t zmsgs_in, zmsgs_out;   /* compressed messages received, sent */
    uint64_t memo_hits;             /* received ones whose inflating the memo saved */
} wsc_traffic;
#define WSC_TRAFFIC_N (sizeof(wsc_traffic) / sizeof(uint64_t))

/* Prints the "  wire ..." line of a tool's summary for t, the traffic of
 * connections that sent msgs_out and received msgs_in data messages, and
 * writes the same as RESULT keys (wire_out_per_msg=... zmsgs_in=...) into
 * kv. */
void wsc_traffic_report(const wsc_traffic *t, uint64_t msgs_out, uint64_t msgs_in, char *kv,
                        size_t cap);

typedef struct {
    /* The 101 was checked; the connection is open. */
    void (*on_open)(wsc_conn *c);
    /* A chunk of a data message, as wsock_parser_sink.on_data.  Return
     * nonzero after ending the connection. */
    int (*on_data)(wsc_conn *c, wsock_opcode op, const uint8_t *data, size_t len,
                   int first, int last);
    /* The connection has ended (its fd is closed); called once.  detail says
     * more for the diagnostics (may be NULL). */
    void (*on_end)(wsc_conn *c, wsc_end_reason why, const char *detail);
    /* Optional: a connection that speaks another protocol on its socket
     * (http_pub.c): wsc_connect opens it, and from then on every epoll
     * event goes here instead of the WebSocket code (on_open and on_data
     * are not used; wsc_end still ends it). */
    void (*on_event)(wsc_conn *c, unsigned ev);
} wsc_ops;

struct wsc_conn {
    int      fd, ep;
    wsc_state state;
    unsigned ev;                    /* epoll events currently registered */
    const wsc_ops *ops;
    const wsc_target *target;
    uint64_t *rng;                  /* the owning thread's mask-key generator */
    void    *ud;                    /* the tool's connection */
    wsock_parser parser;
    uint8_t *out;                   /* bytes queued for the socket */
    size_t   out_len, out_off, out_cap, out_max;
    char    *hs;                    /* handshake response so far (freed when open) */
    size_t   hs_len;
    char     accept[32];            /* expected Sec-WebSocket-Accept */
    /* Set by a tool once the connection is open (they take effect at the
     * next write): no_read, never read again (a client that does not read:
     * only errors and hang-ups are still reported); want_write, keep
     * waking for EPOLLOUT even with nothing queued, so that a tool that
     * writes as fast as the socket takes can queue more from wsc_loop's
     * `after` callback. */
    int      no_read, want_write;

    /* permessage-deflate: the tool's settings (wsc_set_pmd), what the
     * server agreed to, the zlib streams kept per connection (allocated
     * when needed), the message being received. */
    const wsc_pmd_config *pmd_cfg;
    wsc_pmd_params pmd;
    struct wsc_pmd_conn *z;
    int      msg_z;                 /* it came compressed */
    uint64_t msg_inflated;          /* its bytes after inflating, so far */
    wsock_utf8_state msg_utf8;      /* text: checked after inflating */

    wsc_traffic traffic;            /* for the tools' reports */
};

/* Prepares c (no socket yet).  max_message: the largest message the server
 * may send (the codec fails the connection beyond it); out_max: the most
 * bytes we queue before declaring the peer stuck. */
void wsc_init(wsc_conn *c, int ep, const wsc_target *t, const wsc_ops *ops, void *ud,
              uint64_t *rng, uint64_t max_message, size_t out_max);

/* Offers permessage-deflate with cfg (kept by reference) on c's next
 * connect; call after wsc_init. */
void wsc_set_pmd(wsc_conn *c, const wsc_pmd_config *cfg);

/* Frees what the library keeps per thread (zlib streams shared by the
 * thread's connections, the memo); each thread that ran connections calls
 * it once at its end. */
void wsc_thread_done(void);

/* Starts a non-blocking connect and the handshake (ends with
 * WSC_END_CONNECT_FAILED on immediate failure). */
void wsc_connect(wsc_conn *c);

/* The first event of a connection still connecting (wsc_connect): 0 if the
 * TCP connect succeeded, else -1 after ending it (WSC_END_CONNECT_FAILED).
 * For a tool's own protocol (wsc_ops.on_event). */
int wsc_connect_done(wsc_conn *c);

/* Queues one masked frame and writes what the socket takes; 0, or -1 if the
 * connection has ended. */
int wsc_send(wsc_conn *c, wsock_opcode op, const uint8_t *payload, size_t len);

/* Starts our close handshake (1000); the connection ends when the server
 * answers, or when wsc_end is called after a bounded wait. */
void wsc_close(wsc_conn *c);

/* Ends the connection now (closes the fd, calls on_end once). */
void wsc_end(wsc_conn *c, wsc_end_reason why, const char *detail);

/* Runs the epoll loop of ep until until_ns, or until done(arg) holds (checked
 * before each wait; NULL: never).  after(arg), if given, runs after every
 * batch of events.  Waits are at most max_wait_ms long. */
void wsc_loop(int ep, uint64_t until_ns, int (*done)(void *), void (*after)(void *),
              void *arg, int max_wait_ms);

/* Connects every one of the n connections in conns (all on epoll set ep)
 * and runs the loop until each is open or has failed, for at most
 * timeout_s; the ones still not open then end as WSC_END_CONNECT_FAILED.
 * Returns how many are open. */
int wsc_connect_all(int ep, wsc_conn *const *conns, int n, int timeout_s);

#endif /* WS_CLIENT_H */
