/*
 * ws_client.c — the shared client side of the benchmarks (see ws_client.h).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/tcp.h>
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

#include "ws_client.h"
#include "ws_pmd.h"

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static const char *g_prog = "ws_client";
static atomic_int g_diag_budget = 20;

uint64_t wsc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void wsc_set_prog(const char *prog)
{
    g_prog = prog;
}

void wsc_diag(const char *fmt, ...)
{
    va_list ap;
    if (atomic_fetch_sub(&g_diag_budget, 1) <= 0) {
        return;
    }
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

long wsc_num_arg(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s: %s must be an integer in [%ld, %ld]\n", g_prog, what, lo, hi);
        exit(2);
    }
    return v;
}

long wsc_raise_nofile(long want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -1;
    }
    if (rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

uint32_t wsc_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

void wsc_add_counts(uint64_t *into, const uint64_t *from, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        into[i] += from[i];
    }
}

double wsc_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec
           + ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

void wsc_traffic_report(const wsc_traffic *t, uint64_t msgs_out, uint64_t msgs_in, char *kv,
                        size_t cap)
{
    double out = msgs_out ? (double)t->wire_out / (double)msgs_out : 0;
    double in = msgs_in ? (double)t->wire_in / (double)msgs_in : 0;

    printf("  wire         out %.1f B/msg (%" PRIu64 " msgs, %" PRIu64 " compressed), "
           "in %.1f B/msg (%" PRIu64 " msgs, %" PRIu64 " compressed, %" PRIu64
           " inflated from the memo)\n", out, msgs_out, t->zmsgs_out, in, msgs_in,
           t->zmsgs_in, t->memo_hits);
    snprintf(kv, cap, "msgs_out=%" PRIu64 " msgs_in=%" PRIu64 " wire_out=%" PRIu64
             " wire_in=%" PRIu64 " wire_out_per_msg=%.1f wire_in_per_msg=%.1f zmsgs_out=%"
             PRIu64 " zmsgs_in=%" PRIu64 " memo_hits=%" PRIu64, msgs_out, msgs_in,
             t->wire_out, t->wire_in, out, in, t->zmsgs_out, t->zmsgs_in, t->memo_hits);
}

void wsc_parse_url(const char *url, wsc_target *t)
{
    char host[256];
    const char *p, *slash, *colon;
    long port = 80;
    size_t hl;

    memset(t, 0, sizeof *t);
    if (strncmp(url, "ws://", 5) != 0) {
        fprintf(stderr, "%s: only ws:// URLs are supported\n", g_prog);
        exit(2);
    }
    p = url + 5;
    slash = strchr(p, '/');
    if (!slash) {
        slash = p + strlen(p);
    }
    colon = memchr(p, ':', (size_t)(slash - p));
    hl = (size_t)((colon ? colon : slash) - p);
    if (hl == 0 || hl >= sizeof host || strlen(slash) >= sizeof t->path
        || strlen(url) >= sizeof t->url) {
        fprintf(stderr, "%s: bad URL %s\n", g_prog, url);
        exit(2);
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    if (colon) {
        char pbuf[8];
        size_t pl = (size_t)(slash - colon - 1);
        if (pl == 0 || pl >= sizeof pbuf) {
            fprintf(stderr, "%s: bad port in %s\n", g_prog, url);
            exit(2);
        }
        memcpy(pbuf, colon + 1, pl);
        pbuf[pl] = '\0';
        port = wsc_num_arg(pbuf, 1, 65535, "port");
    }
    snprintf(t->url, sizeof t->url, "%s", url);
    snprintf(t->host, sizeof t->host, "%.*s", (int)(slash - p), p);
    snprintf(t->path, sizeof t->path, "%s", *slash ? slash : "/");
    t->addr.sin_family = AF_INET;
    t->addr.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    if (inet_pton(AF_INET, host, &t->addr.sin_addr) != 1
        || (ntohl(t->addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "%s: host must be a loopback address (127.x.x.x)\n", g_prog);
        exit(2);
    }
}

/* ------------------------------------------------------------------ */
/* Histogram                                                            */
/* ------------------------------------------------------------------ */

#define SUB      (1u << WSC_HIST_SUB_BITS)

static unsigned hist_index(uint64_t v)
{
    if (v < SUB) {
        return (unsigned)v;
    }
    unsigned k = 63u - (unsigned)__builtin_clzll(v);   /* k >= SUB_BITS */
    return SUB + (k - WSC_HIST_SUB_BITS) * SUB
           + (unsigned)((v >> (k - WSC_HIST_SUB_BITS)) & (SUB - 1));
}

/* Midpoint of a bucket's range. */
static double hist_value(unsigned i)
{
    if (i < SUB) {
        return i;
    }
    unsigned k = (i - SUB) / SUB + WSC_HIST_SUB_BITS, sub = (i - SUB) % SUB;
    double width = (double)(1ull << (k - WSC_HIST_SUB_BITS));
    return (double)(SUB + sub) * width + width / 2;
}

void wsc_hist_add(wsc_hist *h, uint64_t v)
{
    h->n[hist_index(v)]++;
    h->count++;
    if (v > h->max) {
        h->max = v;
    }
}

void wsc_hist_merge(wsc_hist *into, const wsc_hist *from)
{
    for (unsigned i = 0; i < WSC_HIST_BUCKETS; i++) {
        into->n[i] += from->n[i];
    }
    into->count += from->count;
    if (from->max > into->max) {
        into->max = from->max;
    }
}

double wsc_hist_percentile(const wsc_hist *h, double p)
{
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count), seen = 0;
    if (h->count == 0) {
        return 0;
    }
    if (rank < 1) {
        rank = 1;
    }
    for (unsigned i = 0; i < WSC_HIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return v < (double)h->max ? v : (double)h->max;
        }
    }
    return (double)h->max;
}

/* ------------------------------------------------------------------ */
/* Connection                                                           */
/* ------------------------------------------------------------------ */

void wsc_init(wsc_conn *c, int ep, const wsc_target *t, const wsc_ops *ops, void *ud,
              uint64_t *rng, uint64_t max_message, size_t out_max)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->ep = ep;
    c->target = t;
    c->ops = ops;
    c->ud = ud;
    c->rng = rng;
    c->out_max = out_max;
    c->state = WSC_CONNECTING;
    /* The client role makes the codec reject masked server frames; the size
     * limit catches a runaway message early. */
    wsock_parser_init(&c->parser, WSOCK_ROLE_CLIENT, max_message ? max_message : 1);
}

void wsc_set_pmd(wsc_conn *c, const wsc_pmd_config *cfg)
{
    c->pmd_cfg = cfg;
}

void wsc_end(wsc_conn *c, wsc_end_reason why, const char *detail)
{
    if (c->state == WSC_DONE) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);          /* also removes it from the epoll set */
        c->fd = -1;
    }
    c->state = WSC_DONE;
    free(c->out);
    free(c->hs);
    wsc_pmd_conn_free(c);
    c->out = NULL;
    c->hs = NULL;
    c->out_len = c->out_off = c->out_cap = 0;
    c->ops->on_end(c, why, detail);
}

static void ep_set(wsc_conn *c, unsigned ev)
{
    if (c->ev != ev) {
        struct epoll_event e = { .events = ev, .data.ptr = c };
        epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &e);
        c->ev = ev;
    }
}

static int out_reserve(wsc_conn *c, size_t more)
{
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    else if (c->out_off > c->out_cap / 2) {
        /* Keep the buffer from creeping: slide the unsent rest down. */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + more > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 256;
        while (cap < c->out_len + more) {
            cap *= 2;
        }
        if (c->out_len + more > c->out_max) {
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

/* The events to wait for: input unless the tool stopped reading, output
 * while something is queued or the tool wants to write more. */
static void ep_update(wsc_conn *c, int pending)
{
    ep_set(c, (c->no_read ? 0u : (unsigned)EPOLLIN)
              | (pending || c->want_write ? (unsigned)EPOLLOUT : 0u));
}

/* Writes what is queued; waits for EPOLLOUT only while something is left
 * (or while the tool asks for it, want_write). */
static void flush(wsc_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ep_update(c, 1);
            return;
        }
        if (n < 0) {
            wsc_end(c, c->state == WSC_HANDSHAKE ? WSC_END_CONNECT_FAILED
                       : c->state == WSC_CLOSING ? WSC_END_CLOSED : WSC_END_PEER_CLOSED,
                    strerror(errno));
            return;
        }
        c->out_off += (size_t)n;
    }
    ep_update(c, 0);
}

/* Queues one masked frame (a fresh key per frame, RFC 6455 §5.3); rsv: its
 * RSV bits (0x40: a compressed message). */
static int queue_frame(wsc_conn *c, wsock_opcode op, unsigned rsv, const uint8_t *payload,
                       size_t len)
{
    size_t at;
    uint32_t r = wsc_rng_next(c->rng);
    uint8_t key[4];

    memcpy(key, &r, 4);
    if (out_reserve(c, WSOCK_MAX_HEADER_SIZE + len) != 0) {
        wsc_end(c, WSC_END_BACKLOG, "output backlog: the server stopped reading");
        return -1;
    }
    at = c->out_len;
    c->out_len += wsock_frame_header_write(c->out + c->out_len, 1, op, len, key);
    c->out[at] |= (uint8_t)rsv;
    if (c->state != WSC_HANDSHAKE) {
        c->traffic.wire_out += c->out_len - at + len;
    }
    memcpy(c->out + c->out_len, payload, len);
    wsock_mask(c->out + c->out_len, len, key, 0);
    c->out_len += len;
    return 0;
}

int wsc_send(wsc_conn *c, wsock_opcode op, const uint8_t *payload, size_t len)
{
    unsigned rsv = 0;

    if (c->state != WSC_OPEN && !(c->state == WSC_CLOSING && op == WSOCK_OP_PONG)) {
        return -1;
    }
    if (!(op & 0x8)) {
        int z = wsc_pmd_deflate(c, payload, len, &payload, &len);
        if (z < 0) {
            wsc_end(c, WSC_END_ABORTED, "zlib failed to compress a message");
            return -1;
        }
        rsv = z ? 0x40 : 0;
    }
    if (queue_frame(c, op, rsv, payload, len) != 0) {
        return -1;
    }
    flush(c);
    return c->state == WSC_DONE ? -1 : 0;
}

void wsc_close(wsc_conn *c)
{
    uint8_t payload[WSOCK_MAX_CONTROL_PAYLOAD];

    if (c->state != WSC_OPEN) {
        return;
    }
    c->state = WSC_CLOSING;
    if (queue_frame(c, WSOCK_OP_CLOSE, 0, payload,
                    wsock_close_payload(payload, WSOCK_CLOSE_NORMAL, "bye", 3)) == 0) {
        flush(c);
    }
}

/* ---- parser sink ---- */

static int on_data(void *ud, wsock_opcode op, const uint8_t *data, size_t len,
                   int first, int last)
{
    wsc_conn *c = ud;

    if (c->state == WSC_CLOSING) {
        return 0;              /* late data after our close: the tool is done */
    }
    if (first) {
        c->msg_z = c->pmd.on && c->parser.msg_compressed;
    }
    if (c->msg_z) {
        return wsc_pmd_inflate(c, op, data, len, first, last) || c->state == WSC_DONE;
    }
    return c->ops->on_data(c, op, data, len, first, last) || c->state == WSC_DONE;
}

static int on_control(void *ud, wsock_opcode op, unsigned code,
                      const uint8_t *payload, size_t len)
{
    wsc_conn *c = ud;
    char why[160];

    if (op == WSOCK_OP_PING) {
        wsc_send(c, WSOCK_OP_PONG, payload, len);
        return c->state == WSC_DONE;
    }
    if (op != WSOCK_OP_CLOSE) {
        return 0;              /* unsolicited pong: ignore */
    }
    if (c->state == WSC_CLOSING) {
        wsc_end(c, WSC_END_CLOSED, NULL);   /* the answer to our close */
        return 1;
    }
    snprintf(why, sizeof why, "server closed with %u %.*s", code, (int)len,
             (const char *)payload);
    /* Answer it (best effort) so the server sees a clean close handshake. */
    if (queue_frame(c, WSOCK_OP_CLOSE, 0, payload, 0) == 0) {
        flush(c);
    }
    wsc_end(c, WSC_END_PEER_CLOSED, why);
    return 1;
}

static const wsock_parser_sink sink = { on_data, on_control };

/* ---- handshake ---- */

void wsc_accept_for(const char *key, char out[32])
{
    char buf[96];              /* 24-char key + 36-char GUID */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
    EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

static void start_handshake(wsc_conn *c)
{
    unsigned char raw[16];
    char key[32];
    const char *offer = c->pmd_cfg ? c->pmd_cfg->offer : NULL;
    int n;

    RAND_bytes(raw, sizeof raw);
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    wsc_accept_for(key, c->accept);
    c->hs = malloc(WSC_HS_BUF);
    if (!c->hs || out_reserve(c, 1024) != 0) {
        wsc_end(c, WSC_END_CONNECT_FAILED, "out of memory");
        return;
    }
    n = snprintf((char *)c->out, c->out_cap,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "%s%s%s"
                 "\r\n", c->target->path, c->target->host, key,
                 offer ? "Sec-WebSocket-Extensions: " : "", offer ? offer : "",
                 offer ? "\r\n" : "");
    c->out_len = (size_t)n;
    c->state = WSC_HANDSHAKE;
    flush(c);
}

const char *wsc_header(const char *headers, const char *name, size_t *len)
{
    size_t nl = strlen(name);
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
            *len = (size_t)(e - v);
            return v;
        }
    }
    return NULL;
}

/* 1 if the response has header `name` whose value equals want
 * (case-insensitively if nocase). */
static int header_is(const char *headers, const char *name, const char *want, int nocase)
{
    size_t len, wl = strlen(want);
    const char *v = wsc_header(headers, name, &len);

    return v && len == wl && (nocase ? strncasecmp(v, want, wl) : strncmp(v, want, wl)) == 0;
}

static void feed(wsc_conn *c, uint8_t *buf, size_t len);

/* Gathers the 101 response; any bytes after it are already frames. */
static void on_handshake_bytes(wsc_conn *c, const uint8_t *buf, size_t len)
{
    char *end, *hs = c->hs;
    size_t hdr_len, extra;
    uint8_t rest[WSC_HS_BUF];

    if (len > WSC_HS_BUF - 1 - c->hs_len) {
        wsc_end(c, WSC_END_CONNECT_FAILED, "handshake response too long");
        return;
    }
    memcpy(hs + c->hs_len, buf, len);
    c->hs_len += len;
    hs[c->hs_len] = '\0';
    if (!(end = strstr(hs, "\r\n\r\n"))) {
        return;
    }
    hdr_len = (size_t)(end - hs) + 4;
    extra = c->hs_len - hdr_len;
    end[2] = '\0';             /* headers end with their last CRLF */
    if (strncmp(hs, "HTTP/1.1 101", 12) != 0) {
        *strstr(hs, "\r\n") = '\0';
        wsc_end(c, WSC_END_CONNECT_FAILED, hs);
        return;
    }
    if (!header_is(hs, "Upgrade", "websocket", 1)) {
        wsc_end(c, WSC_END_CONNECT_FAILED, "101 without Upgrade: websocket");
        return;
    }
    if (!header_is(hs, "Sec-WebSocket-Accept", c->accept, 0)) {
        wsc_end(c, WSC_END_CONNECT_FAILED, "wrong or missing Sec-WebSocket-Accept");
        return;
    }
    {
        size_t len = 0;
        const char *v = wsc_header(hs, "Sec-WebSocket-Extensions", &len), *why;
        if (wsc_pmd_answer(c->pmd_cfg ? c->pmd_cfg->offer : NULL, v, len, &c->pmd,
                           &why) != 0) {
            wsc_end(c, WSC_END_CONNECT_FAILED, why);
            return;
        }
        /* RSV1 marks a compressed message (RFC 7692 §6). */
        c->parser.allowed_rsv = c->pmd.on ? 0x40 : 0;
    }
    /* Open: the response buffer is not needed any more (idle connections
     * should cost the client little). */
    memcpy(rest, hs + hdr_len, extra);
    free(c->hs);
    c->hs = NULL;
    c->state = WSC_OPEN;
    c->traffic.wire_in += extra;
    c->ops->on_open(c);
    if (extra && c->state == WSC_OPEN) {
        feed(c, rest, extra);
    }
}

/* Hands received frame bytes to the codec. */
static void feed(wsc_conn *c, uint8_t *buf, size_t len)
{
    size_t used;

    while (len && c->state != WSC_DONE) {
        wsock_parse_result r = wsock_parser_feed(&c->parser, buf, len, &sink, c, &used);
        if (r == WSOCK_PARSE_ERROR) {
            wsc_end(c, WSC_END_PROTOCOL, c->parser.error_reason);
            return;
        }
        buf += used;
        len -= used;
    }
}

static _Thread_local uint8_t rbuf[WSC_RECV_BUF];

static void on_readable(wsc_conn *c)
{
    for (int i = 0; i < 16 && c->state != WSC_DONE; i++) {   /* fairness between conns */
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            const char *why = n == 0 ? "connection closed without a close frame"
                                     : strerror(errno);
            wsc_end(c, c->state == WSC_HANDSHAKE ? WSC_END_CONNECT_FAILED
                       : c->state == WSC_CLOSING ? WSC_END_CLOSED : WSC_END_PEER_CLOSED, why);
            return;
        }
        if (c->state == WSC_HANDSHAKE) {
            on_handshake_bytes(c, rbuf, (size_t)n);
        }
        else {
            c->traffic.wire_in += (uint64_t)n;
            feed(c, rbuf, (size_t)n);
        }
        if ((size_t)n < sizeof rbuf) {
            return;
        }
    }
}

int wsc_connect_done(wsc_conn *c)
{
    int err = 0;
    socklen_t l = sizeof err;

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
        wsc_end(c, WSC_END_CONNECT_FAILED, strerror(err));
        return -1;
    }
    return 0;
}

static void on_event(wsc_conn *c, unsigned ev)
{
    if (c->ops->on_event) {             /* not a WebSocket: the tool's own */
        c->ops->on_event(c, ev);
        return;
    }
    if (c->state == WSC_CONNECTING) {
        if (wsc_connect_done(c) == 0) {
            start_handshake(c);
        }
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(c);
    }
    if (c->state != WSC_DONE && (ev & EPOLLOUT)) {
        flush(c);
    }
}

void wsc_connect(wsc_conn *c)
{
    int one = 1;
    struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        wsc_end(c, WSC_END_CONNECT_FAILED, strerror(errno));
        return;
    }
    /* Small request/response messages: do not let Nagle delay them. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ev = EPOLLOUT;
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->fd, &e) != 0
        || (connect(c->fd, (const struct sockaddr *)&c->target->addr,
                    sizeof c->target->addr) != 0 && errno != EINPROGRESS)) {
        wsc_end(c, WSC_END_CONNECT_FAILED, strerror(errno));
    }
}

void wsc_loop(int ep, uint64_t until_ns, int (*done)(void *), void (*after)(void *),
              void *arg, int max_wait_ms)
{
    struct epoll_event evs[256];

    while (!(done && done(arg))) {
        uint64_t t = wsc_now_ns();
        if (t >= until_ns) {
            return;
        }
        uint64_t ms = (until_ns - t) / 1000000u + 1;
        int n = epoll_wait(ep, evs, 256, ms > (uint64_t)max_wait_ms ? max_wait_ms : (int)ms);
        for (int i = 0; i < n; i++) {
            on_event(evs[i].data.ptr, evs[i].events);
        }
        if (after) {
            after(arg);
        }
    }
}

typedef struct {
    wsc_conn *const *conns;
    int n;
} conn_list;

static int none_pending(void *arg)
{
    const conn_list *l = arg;
    for (int i = 0; i < l->n; i++) {
        if (l->conns[i]->state == WSC_CONNECTING || l->conns[i]->state == WSC_HANDSHAKE) {
            return 0;
        }
    }
    return 1;
}

int wsc_connect_all(int ep, wsc_conn *const *conns, int n, int timeout_s)
{
    conn_list l = { conns, n };
    int open = 0;

    for (int i = 0; i < n; i++) {
        wsc_connect(conns[i]);
    }
    wsc_loop(ep, wsc_now_ns() + (uint64_t)timeout_s * 1000000000u, none_pending, NULL, &l,
             100);
    for (int i = 0; i < n; i++) {
        if (conns[i]->state == WSC_CONNECTING || conns[i]->state == WSC_HANDSHAKE) {
            wsc_end(conns[i], WSC_END_CONNECT_FAILED, "connect/handshake timed out");
        }
        open += conns[i]->state == WSC_OPEN;
    }
    return open;
}
