/*
 * wsbench.c — closed-loop WebSocket echo load generator (RFC 6455 client).
 *
 *   wsbench -u ws://127.0.0.1:PORT/echo [-c conns] [-s bytes] [-d secs]
 *           [-w warmup secs] [-t threads] [-T]
 *
 * Opens N connections (its own handshake: checks the 101 and the
 * Sec-WebSocket-Accept), then every connection repeats: send one masked
 * message, wait for the whole echo, compare it byte for byte, record the
 * round trip.  Only echoes completed inside the measured window (after the
 * warm-up) count.  At the end the in-flight echoes are awaited (bounded),
 * then every connection is closed with a close handshake.
 *
 * Framing uses the project's own codec (src/codec, client role) so the
 * benchmark exercises the same frame rules the module enforces.  Targets are
 * restricted to loopback: this is a benchmark, not a load tool for others'
 * servers.  Every wait is bounded, so the program always ends by itself.
 *
 * Output: human-readable text, then one line
 *   RESULT key=value ...
 * for scripts (see bench/run.sh).  Exit status 0 only if nothing went wrong
 * (no failed connection, no wrong, lost or cut-off echo).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "wsock_codec.h"

/* Bounds on every wait (seconds). */
#define SETUP_TIMEOUT 10   /* connect + handshake of all connections */
#define DRAIN_TIMEOUT 2    /* in-flight echoes after the window closes */
#define CLOSE_TIMEOUT 2    /* close handshakes */
#define MAX_CONNS     10000
#define MAX_SIZE      (64u << 20)
#define MAX_SECONDS   3600
#define RECV_BUF      (64 * 1024)
#define HS_BUF        4096

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ------------------------------------------------------------------ */
/* Settings and shared state                                           */
/* ------------------------------------------------------------------ */

static struct {
    char     url[512];
    char     host[256];        /* as written in the URL, for the Host header */
    char     path[256];
    struct sockaddr_in addr;
    int      conns, threads, text;
    size_t   size;
    int      duration, warmup;
} cfg = { .conns = 50, .threads = 1, .size = 16, .duration = 10, .warmup = 2 };

/* Start of the measured window and its end, set once all threads are ready. */
static uint64_t g_window_start, g_window_end;
static pthread_barrier_t g_barrier;
static atomic_int g_diag_budget = 20; /* diagnostic lines printed, at most */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Prints the first few problems only: 50 failing connections should not
 * flood the terminal, the counters tell the rest. */
static void diag(const char *fmt, ...)
{
    va_list ap;
    if (atomic_fetch_sub(&g_diag_budget, 1) <= 0) {
        return;
    }
    va_start(ap, fmt);
    fputs("wsbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Latency histogram: log-linear, 64 sub-buckets per power of two, so   */
/* memory is fixed and every reported value is within 1.6% of the truth */
/* ------------------------------------------------------------------ */

#define SUB_BITS 6
#define SUB      (1u << SUB_BITS)
#define NBUCKETS (SUB + (64 - SUB_BITS) * SUB)

typedef struct {
    uint64_t n[NBUCKETS];
    uint64_t count, max;
} histogram;

static unsigned hist_index(uint64_t v)
{
    if (v < SUB) {
        return (unsigned)v;
    }
    unsigned k = 63u - (unsigned)__builtin_clzll(v);   /* k >= SUB_BITS */
    return SUB + (k - SUB_BITS) * SUB + (unsigned)((v >> (k - SUB_BITS)) & (SUB - 1));
}

/* Midpoint of a bucket's range. */
static double hist_value(unsigned i)
{
    if (i < SUB) {
        return i;
    }
    unsigned k = (i - SUB) / SUB + SUB_BITS, sub = (i - SUB) % SUB;
    double width = (double)(1ull << (k - SUB_BITS));
    return (double)(SUB + sub) * width + width / 2;
}

static void hist_add(histogram *h, uint64_t v)
{
    h->n[hist_index(v)]++;
    h->count++;
    if (v > h->max) {
        h->max = v;
    }
}

static double hist_percentile(const histogram *h, double p)
{
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count), seen = 0;
    if (h->count == 0) {
        return 0;
    }
    if (rank < 1) {
        rank = 1;
    }
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return v < (double)h->max ? v : (double)h->max;
        }
    }
    return (double)h->max;
}

/* ------------------------------------------------------------------ */
/* Connections and threads                                              */
/* ------------------------------------------------------------------ */

enum conn_state { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE };

typedef struct {
    uint64_t completed;        /* echoes completed inside the window */
    uint64_t connect_failed;   /* connect or handshake failed */
    uint64_t mismatched;       /* wrong echo content/opcode, or protocol error */
    uint64_t unexpected_close; /* server closed (or reset) before we did */
    uint64_t lost;             /* sent, never echoed */
    uint64_t close_timeout;    /* our close was not answered (not an error) */
} counters;

struct worker;

typedef struct conn {
    struct worker *w;
    int      fd, id;
    enum conn_state state;
    unsigned ev;               /* epoll events currently registered */
    wsock_parser parser;
    uint8_t *out;              /* bytes queued for the socket */
    size_t   out_len, out_off, out_cap;
    uint8_t *expect;           /* payload of the message in flight */
    size_t   got;              /* echo bytes verified so far */
    int      in_flight;
    uint64_t seq, sent_at;
    char     hs[HS_BUF];       /* handshake response gathered so far */
    size_t   hs_len;
    char     accept[32];       /* expected Sec-WebSocket-Accept */
} conn;

typedef struct worker {
    pthread_t thr;
    int       ep, index;
    conn     *conns;
    int       nconns, live;    /* connections, and those not yet DONE */
    int       sending;         /* 0 once the window has closed */
    uint64_t  rng;
    const uint8_t *pattern;    /* shared: 'a'..'z' repeated, size + 26 long */
    uint8_t   rbuf[RECV_BUF];
    counters  c;
    histogram h;
} worker;

/* splitmix64: mask keys need to be unpredictable to intermediaries, not
 * cryptographically strong per frame; seeded from RAND_bytes per thread. */
static uint32_t rng_next(worker *w)
{
    uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static void ep_set(conn *c, unsigned ev)
{
    if (c->ev != ev) {
        struct epoll_event e = { .events = ev, .data.ptr = c };
        epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &e);
        c->ev = ev;
    }
}

/* Ends a connection: the fd is closed, an echo still awaited is lost. */
static void conn_finish(conn *c)
{
    if (c->state == ST_DONE) {
        return;
    }
    if (c->in_flight) {
        c->w->c.lost++;
        c->in_flight = 0;
    }
    close(c->fd);              /* also removes it from the epoll set */
    c->fd = -1;
    c->state = ST_DONE;
    c->w->live--;
}

/* A connection went wrong; *counter says how. */
static void conn_fail(conn *c, uint64_t *counter, const char *why)
{
    if (c->state == ST_DONE) {
        return;
    }
    (*counter)++;
    diag("connection %d: %s", c->id, why);
    conn_finish(c);
}

static int out_reserve(conn *c, size_t more)
{
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    if (c->out_len + more > c->out_cap) {
        /* One message plus a few control frames is all a closed loop ever
         * queues; anything beyond that means the peer stopped reading. */
        size_t cap = c->out_len + more;
        if (cap > cfg.size + 64 * 1024) {
            return -1;
        }
        uint8_t *p = realloc(c->out, cap);
        if (!p) {
            return -1;
        }
        c->out = p;
        c->out_cap = cap;
    }
    return 0;
}

/* Writes what is queued; waits for EPOLLOUT only while something is left. */
static void conn_flush(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ep_set(c, EPOLLIN | EPOLLOUT);
            return;
        }
        if (n < 0) {
            conn_fail(c, c->state == ST_HANDSHAKE ? &c->w->c.connect_failed
                                                  : &c->w->c.unexpected_close,
                      strerror(errno));
            return;
        }
        c->out_off += (size_t)n;
    }
    ep_set(c, EPOLLIN);
}

/* Queues one masked frame (a fresh key per frame, RFC 6455 §5.3). */
static int queue_frame(conn *c, wsock_opcode op, const uint8_t *payload, size_t len)
{
    uint32_t r = rng_next(c->w);
    uint8_t key[4];

    memcpy(key, &r, 4);
    if (out_reserve(c, WSOCK_MAX_HEADER_SIZE + len) != 0) {
        conn_fail(c, &c->w->c.unexpected_close, "output backlog: peer stopped reading");
        return -1;
    }
    c->out_len += wsock_frame_header_write(c->out + c->out_len, 1, op, len, key);
    memcpy(c->out + c->out_len, payload, len);
    wsock_mask(c->out + c->out_len, len, key, 0);
    c->out_len += len;
    return 0;
}

/* Next message of the closed loop.  Its content names the connection and the
 * sequence number, so a reordered or cross-wired echo cannot pass; the rest is
 * ASCII so the same bytes are valid as text. */
static void send_next(conn *c)
{
    char tag[20];
    size_t n = cfg.size;

    c->seq++;
    memcpy(c->expect, c->w->pattern + c->seq % 26, n);
    snprintf(tag, sizeof tag, "%08" PRIx32 "%08x", (uint32_t)c->seq, (unsigned)c->id);
    memcpy(c->expect, tag, n < 16 ? n : 16);
    c->got = 0;
    c->in_flight = 1;
    c->sent_at = now_ns();
    if (queue_frame(c, cfg.text ? WSOCK_OP_TEXT : WSOCK_OP_BINARY, c->expect, n) == 0) {
        conn_flush(c);
    }
}

/* ---- parser sink ---- */

static int on_data(void *ud, wsock_opcode op, const uint8_t *data, size_t len,
                   int first, int last)
{
    conn *c = ud;
    worker *w = c->w;
    (void)first;

    if (c->state == ST_CLOSING) {
        return 0;              /* a late echo, already counted as lost */
    }
    if (!c->in_flight) {
        conn_fail(c, &w->c.mismatched, "data frame while no echo was expected");
        return 1;
    }
    if (op != (cfg.text ? WSOCK_OP_TEXT : WSOCK_OP_BINARY)) {
        conn_fail(c, &w->c.mismatched, "echo has the wrong opcode");
        return 1;
    }
    if (c->got + len > cfg.size || memcmp(c->expect + c->got, data, len) != 0) {
        conn_fail(c, &w->c.mismatched, "echo content differs from what was sent");
        return 1;
    }
    c->got += len;
    if (!last) {
        return 0;
    }
    if (c->got != cfg.size) {
        conn_fail(c, &w->c.mismatched, "echo is shorter than what was sent");
        return 1;
    }
    uint64_t t = now_ns();
    c->in_flight = 0;
    if (t >= g_window_start && t < g_window_end) {
        w->c.completed++;
        hist_add(&w->h, t - c->sent_at);
    }
    if (w->sending) {
        send_next(c);
    }
    return c->state == ST_DONE;    /* the send may have failed */
}

static int on_control(void *ud, wsock_opcode op, unsigned code,
                      const uint8_t *payload, size_t len)
{
    conn *c = ud;

    if (op == WSOCK_OP_PING) {
        if (queue_frame(c, WSOCK_OP_PONG, payload, len) == 0) {
            conn_flush(c);
        }
        return c->state == ST_DONE;
    }
    if (op != WSOCK_OP_CLOSE) {
        return 0;              /* unsolicited pong: ignore */
    }
    if (c->state == ST_CLOSING) {
        conn_finish(c);        /* the answer to our close: done */
        return 1;
    }
    diag("connection %d: server closed with %u %.*s", c->id, code, (int)len,
         (const char *)payload);
    c->w->c.unexpected_close++;
    /* Answer it (best effort) so the server sees a clean close handshake. */
    if (queue_frame(c, WSOCK_OP_CLOSE, payload, 0) == 0) {
        conn_flush(c);
    }
    conn_finish(c);
    return 1;
}

static const wsock_parser_sink sink = { on_data, on_control };

/* ---- handshake ---- */

static void b64_sha1_accept(const char *key, char out[32])
{
    char buf[96];              /* 24-char key + 36-char GUID */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
    EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

static void start_handshake(conn *c)
{
    unsigned char raw[16];
    char key[32];
    int n;

    RAND_bytes(raw, sizeof raw);
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    b64_sha1_accept(key, c->accept);
    if (out_reserve(c, 512) != 0) {
        conn_fail(c, &c->w->c.connect_failed, "out of memory");
        return;
    }
    n = snprintf((char *)c->out, c->out_cap,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "\r\n", cfg.path, cfg.host, key);
    c->out_len = (size_t)n;
    c->state = ST_HANDSHAKE;
    conn_flush(c);
}

/* 1 if the response has header `name` (case-insensitive) whose trimmed value
 * equals want (case-insensitively if nocase).  headers ends with a CRLF. */
static int header_is(const char *headers, const char *name, const char *want, int nocase)
{
    size_t nl = strlen(name), wl = strlen(want);
    for (const char *line = strstr(headers, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
                e--;
            }
            return (size_t)(e - v) == wl
                   && (nocase ? strncasecmp(v, want, wl) : strncmp(v, want, wl)) == 0;
        }
    }
    return 0;
}

static void feed(conn *c, uint8_t *buf, size_t len);

/* Gathers the 101 response; any bytes after it are already frames. */
static void on_handshake_bytes(conn *c, const uint8_t *buf, size_t len)
{
    char *end;
    size_t hdr_len, extra;

    if (len > HS_BUF - 1 - c->hs_len) {
        conn_fail(c, &c->w->c.connect_failed, "handshake response too long");
        return;
    }
    memcpy(c->hs + c->hs_len, buf, len);
    c->hs_len += len;
    c->hs[c->hs_len] = '\0';
    if (!(end = strstr(c->hs, "\r\n\r\n"))) {
        return;
    }
    hdr_len = (size_t)(end - c->hs) + 4;
    extra = c->hs_len - hdr_len;
    end[2] = '\0';             /* headers end with their last CRLF */
    if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
        char *eol = strstr(c->hs, "\r\n");
        *eol = '\0';
        conn_fail(c, &c->w->c.connect_failed, c->hs);
        return;
    }
    if (!header_is(c->hs, "Upgrade", "websocket", 1)) {
        conn_fail(c, &c->w->c.connect_failed, "101 without Upgrade: websocket");
        return;
    }
    if (!header_is(c->hs, "Sec-WebSocket-Accept", c->accept, 0)) {
        conn_fail(c, &c->w->c.connect_failed, "wrong or missing Sec-WebSocket-Accept");
        return;
    }
    c->state = ST_OPEN;
    if (extra) {
        feed(c, (uint8_t *)c->hs + hdr_len, extra);
    }
}

/* Hands received frame bytes to the codec. */
static void feed(conn *c, uint8_t *buf, size_t len)
{
    size_t used;

    while (len && c->state != ST_DONE) {
        wsock_parse_result r = wsock_parser_feed(&c->parser, buf, len, &sink, c, &used);
        if (r == WSOCK_PARSE_ERROR) {
            conn_fail(c, &c->w->c.mismatched, c->parser.error_reason);
            return;
        }
        buf += used;
        len -= used;
    }
}

static void on_readable(conn *c)
{
    worker *w = c->w;

    for (int i = 0; i < 16 && c->state != ST_DONE; i++) {   /* fairness between conns */
        ssize_t n = recv(c->fd, w->rbuf, sizeof w->rbuf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            const char *why = n == 0 ? "connection closed without a close frame"
                                     : strerror(errno);
            if (c->state == ST_HANDSHAKE) {
                conn_fail(c, &w->c.connect_failed, why);
            }
            else if (c->state == ST_CLOSING) {
                conn_finish(c);          /* fine: we were closing anyway */
            }
            else {
                conn_fail(c, &w->c.unexpected_close, why);
            }
            return;
        }
        if (c->state == ST_HANDSHAKE) {
            on_handshake_bytes(c, w->rbuf, (size_t)n);
        }
        else {
            feed(c, w->rbuf, (size_t)n);
        }
        if ((size_t)n < sizeof w->rbuf) {
            return;
        }
    }
}

static void on_event(conn *c, unsigned ev)
{
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            conn_fail(c, &c->w->c.connect_failed, strerror(err));
            return;
        }
        start_handshake(c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(c);
    }
    if (c->state != ST_DONE && (ev & EPOLLOUT)) {
        conn_flush(c);
    }
}

/* Runs the event loop until until_ns, or until done(w) holds. */
static void loop(worker *w, uint64_t until_ns, int (*done)(worker *))
{
    struct epoll_event evs[256];

    while (!done(w)) {
        uint64_t t = now_ns();
        if (t >= until_ns) {
            return;
        }
        uint64_t ms = (until_ns - t) / 1000000u + 1;
        int n = epoll_wait(w->ep, evs, 256, ms > 100 ? 100 : (int)ms);
        for (int i = 0; i < n; i++) {
            on_event(evs[i].data.ptr, evs[i].events);
        }
    }
}

static int all_ready(worker *w)
{
    for (int i = 0; i < w->nconns; i++) {
        if (w->conns[i].state == ST_CONNECTING || w->conns[i].state == ST_HANDSHAKE) {
            return 0;
        }
    }
    return 1;
}

static int never(worker *w)
{
    (void)w;
    return 0;
}

static int none_in_flight(worker *w)
{
    for (int i = 0; i < w->nconns; i++) {
        if (w->conns[i].in_flight && w->conns[i].state != ST_DONE) {
            return 0;
        }
    }
    return 1;
}

static int all_done(worker *w)
{
    return w->live == 0;
}

static void open_conn(conn *c)
{
    int one = 1;
    struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->state = ST_DONE;
        c->w->live--;
        c->w->c.connect_failed++;
        diag("socket: %s", strerror(errno));
        return;
    }
    /* Small request/response messages: do not let Nagle delay them. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ev = EPOLLOUT;
    epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &e);
    if (connect(c->fd, (struct sockaddr *)&cfg.addr, sizeof cfg.addr) != 0
        && errno != EINPROGRESS) {
        conn_fail(c, &c->w->c.connect_failed, strerror(errno));
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;

    /* 1. Connect and handshake every connection of this thread. */
    for (int i = 0; i < w->nconns; i++) {
        open_conn(&w->conns[i]);
    }
    loop(w, now_ns() + SETUP_TIMEOUT * 1000000000ull, all_ready);
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
            conn_fail(c, &w->c.connect_failed, "connect/handshake timed out");
        }
    }

    /* 2. Wait for the other threads; main sets the window meanwhile. */
    pthread_barrier_wait(&g_barrier);
    pthread_barrier_wait(&g_barrier);

    /* 3. Closed loop until the window ends, then await what is in flight. */
    w->sending = 1;
    for (int i = 0; i < w->nconns; i++) {
        if (w->conns[i].state == ST_OPEN) {
            send_next(&w->conns[i]);
        }
    }
    loop(w, g_window_end, never);
    w->sending = 0;
    loop(w, now_ns() + DRAIN_TIMEOUT * 1000000000ull, none_in_flight);

    /* 4. Close handshake; an echo still missing now is lost. */
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        uint8_t payload[WSOCK_MAX_CONTROL_PAYLOAD];
        if (c->state != ST_OPEN) {
            continue;
        }
        if (c->in_flight) {
            w->c.lost++;
            c->in_flight = 0;
            diag("connection %d: echo not received within %d s", c->id, DRAIN_TIMEOUT);
        }
        c->state = ST_CLOSING;
        if (queue_frame(c, WSOCK_OP_CLOSE, payload,
                        wsock_close_payload(payload, WSOCK_CLOSE_NORMAL, "bye", 3)) == 0) {
            conn_flush(c);
        }
    }
    loop(w, now_ns() + CLOSE_TIMEOUT * 1000000000ull, all_done);
    for (int i = 0; i < w->nconns; i++) {
        if (w->conns[i].state != ST_DONE) {
            w->c.close_timeout++;
            conn_finish(&w->conns[i]);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Command line                                                        */
/* ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: wsbench -u ws://127.0.0.1:PORT/PATH [-c conns=50] [-s bytes=16]\n"
            "               [-d seconds=10] [-w warmup=2] [-t threads=1] [-T]\n"
            "  -T  send text messages (default: binary)\n"
            "Loopback targets only.\n");
    exit(2);
}

static long num_arg(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "wsbench: %s must be an integer in [%ld, %ld]\n", what, lo, hi);
        exit(2);
    }
    return v;
}

/* ws://HOST[:PORT][/PATH]; HOST must be 127.x.x.x or localhost. */
static void parse_url(const char *url)
{
    char host[256];
    const char *p, *slash, *colon;
    long port = 80;
    size_t hl;

    if (strncmp(url, "ws://", 5) != 0) {
        fprintf(stderr, "wsbench: only ws:// URLs are supported\n");
        exit(2);
    }
    p = url + 5;
    slash = strchr(p, '/');
    if (!slash) {
        slash = p + strlen(p);
    }
    colon = memchr(p, ':', (size_t)(slash - p));
    hl = (size_t)((colon ? colon : slash) - p);
    if (hl == 0 || hl >= sizeof host || strlen(slash) >= sizeof cfg.path) {
        usage();
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    if (colon) {
        char pbuf[8];
        size_t pl = (size_t)(slash - colon - 1);
        if (pl == 0 || pl >= sizeof pbuf) {
            usage();
        }
        memcpy(pbuf, colon + 1, pl);
        pbuf[pl] = '\0';
        port = num_arg(pbuf, 1, 65535, "port");
    }
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    snprintf(cfg.host, sizeof cfg.host, "%.*s", (int)(slash - p), p);
    snprintf(cfg.path, sizeof cfg.path, "%s", *slash ? slash : "/");
    cfg.addr.sin_family = AF_INET;
    cfg.addr.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    if (inet_pton(AF_INET, host, &cfg.addr.sin_addr) != 1
        || (ntohl(cfg.addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "wsbench: host must be a loopback address (127.x.x.x)\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    int opt, have_url = 0;
    worker *ws;
    conn *conns;
    uint8_t *pattern;
    counters tot = { 0 };
    histogram *h;
    struct rusage ru;
    struct rlimit rl;

    while ((opt = getopt(argc, argv, "u:c:s:d:w:t:Th")) != -1) {
        switch (opt) {
        case 'u': parse_url(optarg); have_url = 1; break;
        case 'c': cfg.conns = (int)num_arg(optarg, 1, MAX_CONNS, "-c"); break;
        case 's': cfg.size = (size_t)num_arg(optarg, 0, MAX_SIZE, "-s"); break;
        case 'd': cfg.duration = (int)num_arg(optarg, 1, MAX_SECONDS, "-d"); break;
        case 'w': cfg.warmup = (int)num_arg(optarg, 0, MAX_SECONDS, "-w"); break;
        case 't': cfg.threads = (int)num_arg(optarg, 1, 64, "-t"); break;
        case 'T': cfg.text = 1; break;
        default: usage();
        }
    }
    if (!have_url || optind != argc) {
        usage();
    }
    if (cfg.threads > cfg.conns) {
        cfg.threads = cfg.conns;
    }
    /* One fd per connection plus a little: raise the soft limit if needed. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)cfg.conns + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)cfg.conns + 64 ? rl.rlim_max : (rlim_t)cfg.conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    ws = calloc((size_t)cfg.threads, sizeof *ws);
    conns = calloc((size_t)cfg.conns, sizeof *conns);
    pattern = malloc(cfg.size + 26);
    if (!ws || !conns || !pattern) {
        fprintf(stderr, "wsbench: out of memory\n");
        return 2;
    }
    for (size_t i = 0; i < cfg.size + 26; i++) {
        pattern[i] = (uint8_t)('a' + i % 26);
    }

    /* Connections go round-robin to threads; each thread owns its own. */
    for (int t = 0; t < cfg.threads; t++) {
        worker *w = &ws[t];
        w->index = t;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->pattern = pattern;
        w->conns = conns + (size_t)t * (size_t)cfg.conns / (size_t)cfg.threads;
        w->nconns = (int)((size_t)(t + 1) * (size_t)cfg.conns / (size_t)cfg.threads
                          - (size_t)t * (size_t)cfg.conns / (size_t)cfg.threads);
        w->live = w->nconns;
        if (w->ep < 0 || RAND_bytes((unsigned char *)&w->rng, sizeof w->rng) != 1) {
            fprintf(stderr, "wsbench: epoll/RAND_bytes failed\n");
            return 2;
        }
        for (int i = 0; i < w->nconns; i++) {
            conn *c = &w->conns[i];
            c->w = w;
            c->id = (int)(c - conns);
            c->fd = -1;
            c->expect = malloc(cfg.size ? cfg.size : 1);
            if (!c->expect) {
                fprintf(stderr, "wsbench: out of memory\n");
                return 2;
            }
            /* The client role makes the codec reject masked server frames;
             * the size limit catches a runaway echo early. */
            wsock_parser_init(&c->parser, WSOCK_ROLE_CLIENT, cfg.size ? cfg.size : 1);
        }
    }

    pthread_barrier_init(&g_barrier, NULL, (unsigned)cfg.threads + 1);
    for (int t = 0; t < cfg.threads; t++) {
        pthread_create(&ws[t].thr, NULL, worker_main, &ws[t]);
    }
    pthread_barrier_wait(&g_barrier);           /* all connected */
    uint64_t t0 = now_ns();
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    g_window_start = t0 + (uint64_t)cfg.warmup * 1000000000ull;
    g_window_end = g_window_start + (uint64_t)cfg.duration * 1000000000ull;
    pthread_barrier_wait(&g_barrier);           /* go */

    h = calloc(1, sizeof *h);
    for (int t = 0; t < cfg.threads; t++) {
        worker *w = &ws[t];
        pthread_join(w->thr, NULL);
        tot.completed += w->c.completed;
        tot.connect_failed += w->c.connect_failed;
        tot.mismatched += w->c.mismatched;
        tot.unexpected_close += w->c.unexpected_close;
        tot.lost += w->c.lost;
        tot.close_timeout += w->c.close_timeout;
        for (unsigned i = 0; i < NBUCKETS; i++) {
            h->n[i] += w->h.n[i];
        }
        h->count += w->h.count;
        if (w->h.max > h->max) {
            h->max = w->h.max;
        }
    }

    /* Client CPU over warm-up + window (+ drain/close, which are short). */
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec)
                 + (double)(ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec)
                 + (double)(ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6
                 + (double)(ru.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double wall = (double)(now_ns() - t0) / 1e9;
    double rate = (double)tot.completed / cfg.duration;
    double p50 = hist_percentile(h, 50) / 1e3, p90 = hist_percentile(h, 90) / 1e3;
    double p99 = hist_percentile(h, 99) / 1e3, p999 = hist_percentile(h, 99.9) / 1e3;
    double max = (double)h->max / 1e3;
    uint64_t errors = tot.connect_failed + tot.mismatched + tot.unexpected_close + tot.lost;
    /* A run without a single echo measured nothing: that is a failure too. */
    int ok = errors == 0 && tot.completed > 0;

    printf("wsbench: %s  %d connections, %zu-byte %s messages, %d thread(s), "
           "%d s warm-up + %d s measured\n",
           cfg.url, cfg.conns, cfg.size, cfg.text ? "text" : "binary", cfg.threads,
           cfg.warmup, cfg.duration);
    printf("  throughput   %.0f msgs/s  (%" PRIu64 " echoes)\n", rate, tot.completed);
    printf("  RTT (us)     p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
           p50, p90, p99, p999, max);
    printf("  errors       connect_failed %" PRIu64 "  mismatched %" PRIu64
           "  unexpected_close %" PRIu64 "  lost %" PRIu64 "\n",
           tot.connect_failed, tot.mismatched, tot.unexpected_close, tot.lost);
    printf("  close        %" PRIu64 " connection(s) did not answer our close in %d s\n",
           tot.close_timeout, CLOSE_TIMEOUT);
    printf("  client CPU   %.0f%% of one core\n", 100.0 * cpu / wall);
    printf("RESULT url=%s conns=%d size=%zu type=%s threads=%d warmup=%d duration=%d "
           "msgs=%" PRIu64 " msgs_per_sec=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f connect_failed=%" PRIu64 " mismatched=%" PRIu64
           " unexpected_close=%" PRIu64 " lost=%" PRIu64 " close_timeout=%" PRIu64
           " client_cpu_pct=%.0f errors=%" PRIu64 " ok=%d\n",
           cfg.url, cfg.conns, cfg.size, cfg.text ? "text" : "binary", cfg.threads,
           cfg.warmup, cfg.duration, tot.completed, rate, p50, p90, p99, p999, max,
           tot.connect_failed, tot.mismatched, tot.unexpected_close, tot.lost,
           tot.close_timeout, 100.0 * cpu / wall, errors, ok);
    return ok ? 0 : 1;
}
