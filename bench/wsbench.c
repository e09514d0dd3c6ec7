/*
 * wsbench.c — closed-loop WebSocket echo load generator (RFC 6455 client).
 *
 *   wsbench -u ws://127.0.0.1:PORT/echo [-c conns] [-s bytes] [-d secs]
 *           [-w warmup secs] [-t threads] [-T] [-z offer [-Z min]]
 *           [-F flooders [-f flood bytes] [-N] [-n nice]] [-D drain secs]
 *           [-i interval ms]
 *
 * Opens N connections (its own handshake: checks the 101 and the
 * Sec-WebSocket-Accept), then every connection repeats: send one masked
 * message, wait for the whole echo, compare it byte for byte, record the
 * round trip.  Only echoes completed inside the measured window (after the
 * warm-up) count.  At the end the in-flight echoes are awaited (bounded),
 * then every connection is closed with a close handshake.
 *
 * With -z, the measured connections offer permessage-deflate (-z chromium:
 * Chromium's offer; the server must accept it), compress what they send
 * from -Z bytes on (default 0: every message, as browsers do) and inflate
 * what comes back compressed before comparing it.  The wire bytes per
 * message each way are reported (wire_*).
 *
 * With -F, that many more connections flood the same endpoint beside the
 * measured ones, on a thread of their own: each sends binary messages of
 * -f bytes (default 64 KiB) as fast as its socket takes them, and reads the
 * echoes (discarding them) or, with -N, never reads at all.  A flooder the
 * server closes is reconnected (after 100 ms).  The figures stay those of
 * the measured connections: how much a flooding neighbour costs them
 * (bench/fairness.sh).  The flood thread runs at nice -n (default 10) so
 * that, on a small machine, its own CPU does not delay the measured
 * connections' client side; what it pushed is reported (flood_*).
 *
 * Framing uses the project's own codec (src/codec, client role) so the
 * benchmark exercises the same frame rules the module enforces.  Targets are
 * restricted to loopback: this is a benchmark, not a load tool for others'
 * servers.  Every wait is bounded, so the program always ends by itself.
 *
 * With -i MS the loop is open instead: every connection sends a message
 * every MS ms whether its echoes came back or not (at most PACE_MAX in
 * flight; the pace waits beyond that), and checks the echoes as they come,
 * in order (each is the message it sent next); the round trip is from each
 * message's sending.  For clients of a slow backend, whose messages queue
 * up in the server (bench/backend-sleep.sh -i).
 *
 * -D sets how long the echoes in flight when the window closes are awaited
 * (default 2 s): longer for an echo that is slow on purpose, e.g. through
 * a backend that sleeps (bench/backend-sleep.sh).
 *
 * Output: human-readable text, then one line
 *   RESULT key=value ...
 * for scripts (see bench/run.sh).  Exit status 0 only if nothing went wrong
 * (no failed connection, no wrong, lost or cut-off echo).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "ws_client.h"

/* Bounds on every wait (seconds). */
#define SETUP_TIMEOUT 10   /* connect + handshake of all connections */
#define DRAIN_TIMEOUT 2    /* in-flight echoes after the window closes */
#define CLOSE_TIMEOUT 2    /* close handshakes */
#define MAX_CONNS     10000
#define MAX_SIZE      (64u << 20)
#define MAX_SECONDS   3600
#define MAX_FLOODERS  64
#define FLOOD_RECONNECT_NS 100000000ull   /* a closed flooder comes back after */
#define PACE_MAX      256  /* -i: messages in flight per connection, at most */

/* ------------------------------------------------------------------ */
/* Settings and shared state                                           */
/* ------------------------------------------------------------------ */

static struct {
    wsc_target target;
    int      conns, threads, text;
    size_t   size;
    int      duration, warmup;
    int      flooders, flood_read, flood_nice;
    size_t   flood_size;
    wsc_pmd_config pmd;
    int      drain;                /* -D: seconds for the echoes in flight */
    int      interval;             /* -i: ms between a connection's messages (0: closed loop) */
} cfg = { .conns = 50, .threads = 1, .size = 16, .duration = 10, .warmup = 2,
          .flood_read = 1, .flood_nice = 10, .flood_size = 64 * 1024, .drain = DRAIN_TIMEOUT };

/* Start of the measured window and its end, set once all threads are ready. */
static uint64_t g_window_start, g_window_end;
static pthread_barrier_t g_barrier;

typedef struct {               /* uint64_t only: see wsc_add_counts */
    uint64_t completed;        /* echoes completed inside the window */
    uint64_t connect_failed;   /* connect or handshake failed */
    uint64_t mismatched;       /* wrong echo content/opcode, or protocol error */
    uint64_t unexpected_close; /* server closed (or reset) before we did */
    uint64_t lost;             /* sent, never echoed */
    uint64_t close_timeout;    /* our close was not answered (not an error) */
} counters;

struct worker;

typedef struct conn {
    wsc_conn ws;
    struct worker *w;
    int      id;
    uint8_t *expect;           /* payload of the echo being received */
    size_t   got;              /* echo bytes verified so far */
    uint64_t in_flight;        /* sent, echo not complete (closed loop: 0 or 1) */
    uint64_t seq, acked;       /* last sent, last echoed */
    uint64_t sent_at[PACE_MAX];/* by seq % PACE_MAX */
    uint64_t next_send;        /* -i: when the next message is due */
} conn;

typedef struct worker {
    pthread_t thr;
    int       ep;
    conn     *conns;
    wsc_conn **list;           /* the same, for wsc_connect_all */
    int       nconns, live;    /* connections, and those not yet ended */
    int       sending;         /* 0 once the window has closed */
    uint64_t  rng;
    const uint8_t *pattern;    /* shared: 'a'..'z' repeated, size + 26 long */
    uint8_t  *scratch;         /* the message being sent */
    counters  c;
    wsc_hist  h;
} worker;

/* A connection went wrong in a way the library cannot see. */
static void conn_mismatch(conn *c, const char *why)
{
    c->w->c.mismatched++;
    wsc_diag("connection %d: %s", c->id, why);
    wsc_end(&c->ws, WSC_END_ABORTED, NULL);
}

/* Message seq of connection c into buf (cfg.size bytes).  Its content names
 * the connection and the sequence number, so a reordered or cross-wired echo
 * cannot pass; the rest is ASCII so the same bytes are valid as text. */
static void make_message(const conn *c, uint64_t seq, uint8_t *buf)
{
    char tag[20];
    size_t n = cfg.size;

    memcpy(buf, c->w->pattern + seq % 26, n);
    snprintf(tag, sizeof tag, "%08" PRIx32 "%08x", (uint32_t)seq, (unsigned)c->id);
    memcpy(buf, tag, n < 16 ? n : 16);
}

/* Next message of the loop. */
static void send_next(conn *c)
{
    c->seq++;
    make_message(c, c->seq, c->w->scratch);
    c->in_flight++;
    c->sent_at[c->seq % PACE_MAX] = wsc_now_ns();
    wsc_send(&c->ws, cfg.text ? WSOCK_OP_TEXT : WSOCK_OP_BINARY, c->w->scratch, cfg.size);
}

/* -i: sends what is due on every open connection (after each batch of
 * events). */
static void pace(void *arg)
{
    worker *w = arg;
    uint64_t now = wsc_now_ns(), step = (uint64_t)cfg.interval * 1000000u;

    if (!w->sending) {
        return;
    }
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        while (c->ws.state == WSC_OPEN && now >= c->next_send) {
            if (c->in_flight >= PACE_MAX) {
                c->next_send = now + step;   /* the pace waits for the echoes */
                break;
            }
            send_next(c);
            c->next_send += step;
        }
    }
}

/* ---- connection callbacks ---- */

static void on_open(wsc_conn *ws)
{
    (void)ws;                  /* the loop starts for all at once, see worker_main */
}

static int on_data(wsc_conn *ws, wsock_opcode op, const uint8_t *data, size_t len,
                   int first, int last)
{
    conn *c = ws->ud;
    worker *w = c->w;
    (void)first;

    if (!c->in_flight) {
        conn_mismatch(c, "data frame while no echo was expected");
        return 1;
    }
    if (c->got == 0) {
        make_message(c, c->acked + 1, c->expect);   /* echoes come in order */
    }
    if (op != (cfg.text ? WSOCK_OP_TEXT : WSOCK_OP_BINARY)) {
        conn_mismatch(c, "echo has the wrong opcode");
        return 1;
    }
    if (c->got + len > cfg.size || memcmp(c->expect + c->got, data, len) != 0) {
        conn_mismatch(c, "echo content differs from what was sent");
        return 1;
    }
    c->got += len;
    if (!last) {
        return 0;
    }
    if (c->got != cfg.size) {
        conn_mismatch(c, "echo is shorter than what was sent");
        return 1;
    }
    uint64_t t = wsc_now_ns();
    c->acked++;
    c->in_flight--;
    c->got = 0;
    if (t >= g_window_start && t < g_window_end) {
        w->c.completed++;
        wsc_hist_add(&w->h, t - c->sent_at[c->acked % PACE_MAX]);
    }
    if (w->sending && !cfg.interval) {
        send_next(c);
    }
    return 0;
}

/* Counts how the connection ended; an echo still awaited is lost. */
static void on_end(wsc_conn *ws, wsc_end_reason why, const char *detail)
{
    conn *c = ws->ud;
    counters *k = &c->w->c;

    c->w->live--;
    if (c->in_flight) {
        k->lost += c->in_flight;
        c->in_flight = 0;
    }
    switch (why) {
    case WSC_END_CLOSED:
    case WSC_END_ABORTED:
        return;
    case WSC_END_CONNECT_FAILED:
        k->connect_failed++;
        break;
    case WSC_END_PROTOCOL:
        k->mismatched++;
        break;
    case WSC_END_PEER_CLOSED:
    case WSC_END_BACKLOG:
        k->unexpected_close++;
        break;
    }
    wsc_diag("connection %d: %s", c->id, detail ? detail : "ended");
}

static const wsc_ops ops = { on_open, on_data, on_end, NULL };

/* ---- flooders ---- */

typedef struct {
    uint64_t sent;             /* messages queued inside the window */
    uint64_t sent_all;         /* messages queued in the whole run */
    uint64_t echoed;           /* echoes completely received inside the window */
    uint64_t connected;        /* handshakes completed (first ones and reconnects) */
    uint64_t connect_failed;
    uint64_t ended;            /* ended early: closed or reset by the server, or
                                * what it sent broke the protocol */
    uint64_t reconnects;
} flood_counters;

typedef struct flooder {
    wsc_conn ws;
    struct flood_thread *ft;
    int      id;
    uint64_t ended_at;         /* when the connection last ended; 0: open */
} flooder;

typedef struct flood_thread {
    pthread_t thr;
    int       ep;
    flooder  *f;
    wsc_conn **list;
    uint64_t  rng;
    uint8_t  *msg;             /* the payload every flood message carries */
    flood_counters c;
} flood_thread;

static flood_thread g_flood;

static int in_window(uint64_t t)
{
    return t >= g_window_start && t < g_window_end;
}

static void flood_on_open(wsc_conn *ws)
{
    flooder *f = ws->ud;

    f->ft->c.connected++;
    ws->want_write = 1;        /* topped up from flood_top_up on every EPOLLOUT */
    ws->no_read = !cfg.flood_read;
}

static int flood_on_data(wsc_conn *ws, wsock_opcode op, const uint8_t *data, size_t len,
                         int first, int last)
{
    flooder *f = ws->ud;
    (void)data;
    (void)len;
    (void)first;

    /* Whatever comes back must be our echoes; their bytes are not compared
     * (that would cost the flood thread CPU), their framing the codec checks. */
    if (op != WSOCK_OP_BINARY) {
        wsc_end(ws, WSC_END_PROTOCOL, "flood echo has the wrong opcode");
        return 1;
    }
    if (last && in_window(wsc_now_ns())) {
        f->ft->c.echoed++;
    }
    return 0;
}

static void flood_on_end(wsc_conn *ws, wsc_end_reason why, const char *detail)
{
    flooder *f = ws->ud;

    f->ended_at = wsc_now_ns();
    if (why == WSC_END_CONNECT_FAILED) {
        f->ft->c.connect_failed++;
        wsc_diag("flooder %d: %s", f->id, detail ? detail : "connect failed");
    }
    else if (why != WSC_END_ABORTED && why != WSC_END_CLOSED) {
        f->ft->c.ended++;
    }
}

static const wsc_ops flood_ops = { flood_on_open, flood_on_data, flood_on_end, NULL };

static void flooder_connect(flooder *f)
{
    flood_thread *ft = f->ft;

    /* An echo is as large as a flood message.  A message is queued only
     * once the last one is written (flood_top_up): the queue never holds
     * more than one and a few control frames. */
    wsc_init(&f->ws, ft->ep, &cfg.target, &flood_ops, f, &ft->rng, cfg.flood_size,
             2 * (cfg.flood_size + 64));
    f->ended_at = 0;
    wsc_connect(&f->ws);
}

/* After every batch of events: queue one more message on every flooder
 * whose socket has taken what it had, and bring back the ones the server
 * closed.  Messages go out as fast as each socket drains. */
static void flood_top_up(void *arg)
{
    flood_thread *ft = arg;
    uint64_t t = wsc_now_ns();

    for (int i = 0; i < cfg.flooders; i++) {
        flooder *f = &ft->f[i];
        wsc_conn *ws = &f->ws;
        if (ws->state == WSC_DONE && t < g_window_end
            && t - f->ended_at >= FLOOD_RECONNECT_NS) {
            ft->c.reconnects++;
            flooder_connect(f);
            continue;
        }
        if (ws->state == WSC_OPEN && ws->out_off == ws->out_len
            && wsc_send(ws, WSOCK_OP_BINARY, ft->msg, cfg.flood_size) == 0) {
            ft->c.sent_all++;
            ft->c.sent += in_window(t);
        }
    }
}

static void *flood_main(void *arg)
{
    flood_thread *ft = arg;

    /* Lower priority than the measured connections' threads: see the top. */
    if (cfg.flood_nice && setpriority(PRIO_PROCESS, (id_t)gettid(), cfg.flood_nice) != 0) {
        wsc_diag("flood thread: setpriority: %s", strerror(errno));
    }
    for (int i = 0; i < cfg.flooders; i++) {
        ft->f[i].ft = ft;
        ft->f[i].id = i;
        flooder_connect(&ft->f[i]);
        ft->list[i] = &ft->f[i].ws;
    }
    wsc_connect_all(ft->ep, ft->list, cfg.flooders, SETUP_TIMEOUT);
    pthread_barrier_wait(&g_barrier);
    pthread_barrier_wait(&g_barrier);
    flood_top_up(ft);
    wsc_loop(ft->ep, g_window_end, NULL, flood_top_up, ft, 10);
    /* Done: drop them (a flooder that does not read cannot close politely). */
    for (int i = 0; i < cfg.flooders; i++) {
        wsc_end(&ft->f[i].ws, WSC_END_ABORTED, NULL);
    }
    wsc_thread_done();
    return NULL;
}

/* ---- the run ---- */

static int none_in_flight(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->nconns; i++) {
        if (w->conns[i].in_flight && w->conns[i].ws.state != WSC_DONE) {
            return 0;
        }
    }
    return 1;
}

static int all_done(void *arg)
{
    return ((worker *)arg)->live == 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;

    /* 1. Connect and handshake every connection of this thread. */
    wsc_connect_all(w->ep, w->list, w->nconns, SETUP_TIMEOUT);

    /* 2. Wait for the other threads; main sets the window meanwhile. */
    pthread_barrier_wait(&g_barrier);
    pthread_barrier_wait(&g_barrier);

    /* 3. Closed loop until the window ends, then await what is in flight. */
    w->sending = 1;
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (cfg.interval) {
            /* spread over the interval, so they do not all send at once */
            c->next_send = wsc_now_ns()
                           + (uint64_t)cfg.interval * 1000000u * (uint64_t)i / (uint64_t)w->nconns;
        }
        else if (c->ws.state == WSC_OPEN) {
            send_next(c);
        }
    }
    if (cfg.interval) {
        wsc_loop(w->ep, g_window_end, NULL, pace, w, cfg.interval < 10 ? 1 : 10);
    }
    else {
        wsc_loop(w->ep, g_window_end, NULL, NULL, w, 100);
    }
    w->sending = 0;
    wsc_loop(w->ep, wsc_now_ns() + (uint64_t)cfg.drain * 1000000000ull, none_in_flight, NULL, w,
             100);

    /* 4. Close handshake; an echo still missing now is lost. */
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->ws.state != WSC_OPEN) {
            continue;
        }
        if (c->in_flight) {
            w->c.lost += c->in_flight;
            c->in_flight = 0;
            wsc_diag("connection %d: echo not received within %d s", c->id, cfg.drain);
        }
        wsc_close(&c->ws);
    }
    wsc_loop(w->ep, wsc_now_ns() + CLOSE_TIMEOUT * 1000000000ull, all_done, NULL, w, 100);
    for (int i = 0; i < w->nconns; i++) {
        if (w->conns[i].ws.state != WSC_DONE) {
            w->c.close_timeout++;
            wsc_end(&w->conns[i].ws, WSC_END_CLOSED, NULL);
        }
    }
    wsc_thread_done();
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
            "               [-z offer [-Z min=0]]\n"
            "               [-F flooders=0 [-f flood-bytes=65536] [-N] [-n nice=10]]\n"
            "               [-D drain-seconds=2] [-i interval-ms]\n"
            "  -T  send text messages (default: binary)\n"
            "  -z  offer permessage-deflate (chromium: Chromium's offer, or the header\n"
            "      value); -Z: compress messages from that many bytes on (0: all)\n"
            "  -F  that many more connections flood the endpoint with -f-byte binary\n"
            "      messages beside the measured ones, on a thread at nice -n;\n"
            "      -N: the flooders never read\n"
            "  -D  seconds to await the echoes in flight when the window closes\n"
            "  -i  open loop: each connection sends a message every that many ms,\n"
            "      whether its echoes came back or not (at most %d in flight)\n"
            "Loopback targets only.\n", PACE_MAX);
    exit(2);
}

int main(int argc, char **argv)
{
    int opt, have_url = 0;
    worker *ws;
    conn *conns;
    uint8_t *pattern;
    counters tot = { 0 };
    wsc_hist *h;

    wsc_set_prog("wsbench");
    while ((opt = getopt(argc, argv, "u:c:s:d:w:t:Tz:Z:F:f:Nn:D:i:h")) != -1) {
        switch (opt) {
        case 'u': wsc_parse_url(optarg, &cfg.target); have_url = 1; break;
        case 'c': cfg.conns = (int)wsc_num_arg(optarg, 1, MAX_CONNS, "-c"); break;
        case 's': cfg.size = (size_t)wsc_num_arg(optarg, 0, MAX_SIZE, "-s"); break;
        case 'd': cfg.duration = (int)wsc_num_arg(optarg, 1, MAX_SECONDS, "-d"); break;
        case 'w': cfg.warmup = (int)wsc_num_arg(optarg, 0, MAX_SECONDS, "-w"); break;
        case 't': cfg.threads = (int)wsc_num_arg(optarg, 1, 64, "-t"); break;
        case 'T': cfg.text = 1; break;
        case 'z': cfg.pmd.offer = wsc_pmd_offer_arg(optarg); break;
        case 'Z': cfg.pmd.compress_min = (size_t)wsc_num_arg(optarg, 0, MAX_SIZE, "-Z"); break;
        case 'F': cfg.flooders = (int)wsc_num_arg(optarg, 0, MAX_FLOODERS, "-F"); break;
        case 'f': cfg.flood_size = (size_t)wsc_num_arg(optarg, 1, MAX_SIZE, "-f"); break;
        case 'N': cfg.flood_read = 0; break;
        case 'n': cfg.flood_nice = (int)wsc_num_arg(optarg, 0, 19, "-n"); break;
        case 'D': cfg.drain = (int)wsc_num_arg(optarg, 1, 600, "-D"); break;
        case 'i': cfg.interval = (int)wsc_num_arg(optarg, 0, 60000, "-i"); break;
        default: usage();
        }
    }
    if (!have_url || optind != argc) {
        usage();
    }
    if (cfg.threads > cfg.conns) {
        cfg.threads = cfg.conns;
    }
    wsc_raise_nofile(cfg.conns + cfg.flooders + 64);   /* one fd per connection + a little */

    ws = calloc((size_t)cfg.threads, sizeof *ws);
    conns = calloc((size_t)cfg.conns, sizeof *conns);
    pattern = malloc(cfg.size + 26);
    h = calloc(1, sizeof *h);
    if (!ws || !conns || !pattern || !h) {
        fprintf(stderr, "wsbench: out of memory\n");
        return 2;
    }
    for (size_t i = 0; i < cfg.size + 26; i++) {
        pattern[i] = (uint8_t)('a' + i % 26);
    }

    /* Connections go round-robin to threads; each thread owns its own. */
    for (int t = 0; t < cfg.threads; t++) {
        worker *w = &ws[t];
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->pattern = pattern;
        w->conns = conns + (size_t)t * (size_t)cfg.conns / (size_t)cfg.threads;
        w->nconns = (int)((size_t)(t + 1) * (size_t)cfg.conns / (size_t)cfg.threads
                          - (size_t)t * (size_t)cfg.conns / (size_t)cfg.threads);
        w->live = w->nconns;
        w->list = calloc((size_t)w->nconns + 1, sizeof *w->list);
        w->scratch = malloc(cfg.size ? cfg.size : 1);
        if (!w->list || !w->scratch || w->ep < 0
            || RAND_bytes((unsigned char *)&w->rng, sizeof w->rng) != 1) {
            fprintf(stderr, "wsbench: epoll/RAND_bytes failed\n");
            return 2;
        }
        for (int i = 0; i < w->nconns; i++) {
            conn *c = &w->conns[i];
            c->w = w;
            c->id = (int)(c - conns);
            c->expect = malloc(cfg.size ? cfg.size : 1);
            if (!c->expect) {
                fprintf(stderr, "wsbench: out of memory\n");
                return 2;
            }
            /* A closed loop queues one message plus a few control frames
             * (an open one up to PACE_MAX messages); anything beyond that
             * means the peer stopped reading. */
            wsc_init(&c->ws, w->ep, &cfg.target, &ops, c, &w->rng, cfg.size,
                     (cfg.interval ? PACE_MAX : 1) * (cfg.size + WSOCK_MAX_HEADER_SIZE)
                     + 64 * 1024);
            wsc_set_pmd(&c->ws, &cfg.pmd);
            w->list[i] = &c->ws;
        }
    }

    if (cfg.flooders) {
        flood_thread *ft = &g_flood;
        ft->ep = epoll_create1(EPOLL_CLOEXEC);
        ft->f = calloc((size_t)cfg.flooders, sizeof *ft->f);
        ft->list = calloc((size_t)cfg.flooders, sizeof *ft->list);
        ft->msg = malloc(cfg.flood_size);
        if (ft->ep < 0 || !ft->f || !ft->list || !ft->msg
            || RAND_bytes((unsigned char *)&ft->rng, sizeof ft->rng) != 1) {
            fprintf(stderr, "wsbench: cannot set up the flooders\n");
            return 2;
        }
        memset(ft->msg, 'F', cfg.flood_size);
    }

    pthread_barrier_init(&g_barrier, NULL, (unsigned)cfg.threads + 1 + (cfg.flooders > 0));
    for (int t = 0; t < cfg.threads; t++) {
        pthread_create(&ws[t].thr, NULL, worker_main, &ws[t]);
    }
    if (cfg.flooders) {
        pthread_create(&g_flood.thr, NULL, flood_main, &g_flood);
    }
    pthread_barrier_wait(&g_barrier);           /* all connected */
    uint64_t t0 = wsc_now_ns();
    double cpu0 = wsc_cpu_seconds();
    g_window_start = t0 + (uint64_t)cfg.warmup * 1000000000ull;
    g_window_end = g_window_start + (uint64_t)cfg.duration * 1000000000ull;
    pthread_barrier_wait(&g_barrier);           /* go */

    for (int t = 0; t < cfg.threads; t++) {
        worker *w = &ws[t];
        pthread_join(w->thr, NULL);
        wsc_add_counts((uint64_t *)&tot, (const uint64_t *)&w->c,
                       sizeof tot / sizeof(uint64_t));
        wsc_hist_merge(h, &w->h);
    }
    if (cfg.flooders) {
        pthread_join(g_flood.thr, NULL);
    }
    const flood_counters *fc = &g_flood.c;
    /* What the measured connections sent and received, warm-up included. */
    wsc_traffic traffic = { 0 };
    uint64_t msgs_out = 0;
    char traffic_kv[512];
    for (int i = 0; i < cfg.conns; i++) {
        wsc_add_counts((uint64_t *)&traffic, (const uint64_t *)&conns[i].ws.traffic,
                       WSC_TRAFFIC_N);
        msgs_out += conns[i].seq;
    }

    /* Client CPU over warm-up + window (+ drain/close, which are short). */
    double cpu = wsc_cpu_seconds() - cpu0;
    double wall = (double)(wsc_now_ns() - t0) / 1e9;
    double rate = (double)tot.completed / cfg.duration;
    double p50 = wsc_hist_percentile(h, 50) / 1e3, p90 = wsc_hist_percentile(h, 90) / 1e3;
    double p99 = wsc_hist_percentile(h, 99) / 1e3, p999 = wsc_hist_percentile(h, 99.9) / 1e3;
    double max = (double)h->max / 1e3;
    /* A flooder that never connected leaves nothing measured about flooding. */
    uint64_t errors = tot.connect_failed + tot.mismatched + tot.unexpected_close + tot.lost
                      + (cfg.flooders && fc->connected == 0 ? 1 : 0);
    /* A run without a single echo measured nothing: that is a failure too. */
    int ok = errors == 0 && tot.completed > 0;

    printf("wsbench: %s  %d connections, %zu-byte %s messages, %d thread(s), "
           "%d s warm-up + %d s measured\n",
           cfg.target.url, cfg.conns, cfg.size, cfg.text ? "text" : "binary", cfg.threads,
           cfg.warmup, cfg.duration);
    if (cfg.interval) {
        printf("  open loop    a message every %d ms per connection\n", cfg.interval);
    }
    printf("  throughput   %.0f msgs/s  (%" PRIu64 " echoes)\n", rate, tot.completed);
    printf("  RTT (us)     p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
           p50, p90, p99, p999, max);
    printf("  errors       connect_failed %" PRIu64 "  mismatched %" PRIu64
           "  unexpected_close %" PRIu64 "  lost %" PRIu64 "\n",
           tot.connect_failed, tot.mismatched, tot.unexpected_close, tot.lost);
    printf("  close        %" PRIu64 " connection(s) did not answer our close in %d s\n",
           tot.close_timeout, CLOSE_TIMEOUT);
    /* Every echo that came back whole was a message in. */
    wsc_traffic_report(&traffic, msgs_out, msgs_out - tot.lost, traffic_kv, sizeof traffic_kv);
    if (cfg.flooders) {
        printf("  flooders     %d x %zu-byte binary, %s, nice %d: sent %.0f msgs/s, "
               "echoed %.0f msgs/s (%" PRIu64 " sent in all, warm-up included)\n"
               "               %" PRIu64 " handshakes, %" PRIu64 " failed, %" PRIu64
               " ended early, %" PRIu64 " reconnects\n",
               cfg.flooders, cfg.flood_size, cfg.flood_read ? "reading" : "not reading",
               cfg.flood_nice, (double)fc->sent / cfg.duration,
               (double)fc->echoed / cfg.duration, fc->sent_all, fc->connected,
               fc->connect_failed, fc->ended, fc->reconnects);
    }
    printf("  client CPU   %.0f%% of one core\n", 100.0 * cpu / wall);
    printf("RESULT url=%s conns=%d size=%zu type=%s threads=%d warmup=%d duration=%d "
           "interval_ms=%d msgs=%" PRIu64 " msgs_per_sec=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f connect_failed=%" PRIu64 " mismatched=%" PRIu64
           " unexpected_close=%" PRIu64 " lost=%" PRIu64 " close_timeout=%" PRIu64
           " client_cpu_pct=%.0f flooders=%d flood_size=%zu flood_read=%d"
           " flood_sent_per_sec=%.0f flood_echoed_per_sec=%.0f flood_connected=%" PRIu64
           " flood_ended=%" PRIu64 " pmd=%d %s errors=%" PRIu64 " ok=%d\n",
           cfg.target.url, cfg.conns, cfg.size, cfg.text ? "text" : "binary", cfg.threads,
           cfg.warmup, cfg.duration, cfg.interval, tot.completed, rate, p50, p90, p99, p999, max,
           tot.connect_failed, tot.mismatched, tot.unexpected_close, tot.lost,
           tot.close_timeout, 100.0 * cpu / wall, cfg.flooders, cfg.flood_size,
           cfg.flood_read, (double)fc->sent / cfg.duration, (double)fc->echoed / cfg.duration,
           fc->connected, fc->ended, cfg.pmd.offer != NULL, traffic_kv, errors, ok);
    for (int t = 0; t < cfg.threads; t++) {
        close(ws[t].ep);
        free(ws[t].list);
        free(ws[t].scratch);
    }
    for (int i = 0; i < cfg.conns; i++) {
        free(conns[i].expect);
    }
    if (cfg.flooders) {
        close(g_flood.ep);
        free(g_flood.f);
        free(g_flood.list);
        free(g_flood.msg);
    }
    free(conns);
    free(ws);
    free(pattern);
    free(h);
    return ok ? 0 : 1;
}
