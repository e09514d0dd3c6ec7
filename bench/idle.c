/*
 * idle.c — many idle WebSockets: can the server hold them, and do they all
 * still answer?  (RFC 6455 client; issue 7.)
 *
 *   idle -u ws://127.0.0.1:PORT/echo [-c conns=10000] [-b batch=200]
 *        [-s bytes=16] [-H hold=120] [-e echo_timeout=5] [-z offer [-Z min]]
 *        [-k warm=0]
 *
 * 1. Opens N connections to an echo endpoint, at most `batch` handshakes
 *    at a time (so the listen backlog never overflows into SYN retries).
 *    With -z they offer permessage-deflate (-z chromium: Chromium's offer;
 *    the server must accept it; they compress what they send from -Z bytes
 *    on, default 0: every message, as browsers do).  With -k, every connection then sends K
 *    JSON chat messages of 200..400 bytes (chatmsg.c), one after the other,
 *    each echo checked (compressed both ways with -z: they are above
 *    mod_wsock's default threshold), as a client does before it idles.
 *    Then it prints "OPEN n" on stdout.
 * 2. Holds them idle until a line arrives on stdin (the caller measures the
 *    server's memory and threads meanwhile) or `hold` seconds pass.
 * 3. Every connection sends one message at the same moment; each echo must
 *    come back whole and unchanged within `echo_timeout` seconds.  Counts
 *    the echoes that fail (wrong, late, or the connection is gone) and the
 *    round-trip times of the others.
 * 4. Closes everything with a close handshake (bounded).
 *
 * Output: a human summary and one line "RESULT key=value ...".  Exit status
 * 1 if any connection failed to open or any echo failed.  Loopback only;
 * every wait is bounded.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "chatmsg.h"
#include "ws_client.h"

#define NS            1000000000ull
#define BATCH_TIMEOUT 30          /* s: one batch of handshakes */
#define CLOSE_TIMEOUT 5           /* s: close handshakes */
#define WARM_TIMEOUT  60          /* s: the warm-up messages of all connections */
#define WARM_MIN      200         /* their sizes (above mod_wsock's threshold) */
#define WARM_MAX      400

static struct {
    wsc_target target;
    int    conns, batch, hold, echo_timeout;
    size_t size;
    int    warm;
    wsc_pmd_config pmd;
} cfg = { .conns = 10000, .batch = 200, .hold = 120, .echo_timeout = 5, .size = 16 };

typedef struct {
    uint64_t connect_failed, dropped, echo_ok, echo_failed, warm_ok;
} counters;

typedef struct {
    wsc_conn ws;
    int      id, waiting;      /* waiting: the echo has not come back yet */
    int      warm;             /* warm-up messages echoed so far */
    size_t   got;
    uint64_t sent_at;
} iconn;

static counters g_c;
static wsc_hist g_h;
static int g_live, g_waiting;
static uint8_t *g_expect;      /* the message; its first bytes name the conn */
static uint8_t *g_msg;         /* the message to send */
static size_t g_msg_cap;       /* of both */

/* The message connection c sends next and must get back: its warm-up chat
 * message number c->warm while it has some to send, else the echo check's
 * ("%08x" of the id, then a..z).  Sets *op; returns its length. */
static size_t fill(uint8_t *buf, const iconn *c, wsock_opcode *op)
{
    char tag[12];

    if (c->warm < cfg.warm) {
        *op = WSOCK_OP_TEXT;
        return chatmsg_make((char *)buf, g_msg_cap,
                            (uint64_t)c->id * (uint64_t)cfg.warm + (uint64_t)c->warm + 1, 0,
                            WARM_MIN, WARM_MAX);
    }
    *op = WSOCK_OP_BINARY;
    for (size_t i = 0; i < cfg.size; i++) {
        buf[i] = (uint8_t)('a' + i % 26);
    }
    snprintf(tag, sizeof tag, "%08x", (unsigned)c->id);
    memcpy(buf, tag, cfg.size < 8 ? cfg.size : 8);
    return cfg.size;
}

/* Sends c's next message; its echo is awaited. */
static void send_msg(iconn *c)
{
    wsock_opcode op;
    size_t n = fill(g_msg, c, &op);

    c->waiting = 1;
    c->got = 0;
    g_waiting++;
    c->sent_at = wsc_now_ns();
    wsc_send(&c->ws, op, g_msg, n);
}

static void echo_failed(iconn *c, const char *why)
{
    if (c->waiting) {
        c->warm = cfg.warm;        /* no more warm-up on a failed connection */
        c->waiting = 0;
        g_waiting--;
        g_c.echo_failed++;
        wsc_diag("connection %d: %s", c->id, why);
    }
}

static void on_open(wsc_conn *ws)
{
    (void)ws;
}

static int on_data(wsc_conn *ws, wsock_opcode op, const uint8_t *data, size_t len,
                   int first, int last)
{
    iconn *c = ws->ud;
    (void)first;

    if (!c->waiting) {
        wsc_diag("connection %d: a message nobody asked for", c->id);
        g_c.echo_failed++;
        return 0;
    }
    wsock_opcode want;
    size_t n = fill(g_expect, c, &want);
    if (op != want || c->got + len > n || memcmp(g_expect + c->got, data, len) != 0) {
        echo_failed(c, "wrong echo");
        return 0;
    }
    c->got += len;
    if (last) {
        if (c->got != n) {
            echo_failed(c, "short echo");
            return 0;
        }
        c->waiting = 0;
        g_waiting--;
        if (c->warm < cfg.warm) {
            g_c.warm_ok++;
            if (++c->warm < cfg.warm) {
                send_msg(c);
            }
            return 0;
        }
        g_c.echo_ok++;
        wsc_hist_add(&g_h, wsc_now_ns() - c->sent_at);
    }
    return 0;
}

static void on_end(wsc_conn *ws, wsc_end_reason why, const char *detail)
{
    iconn *c = ws->ud;

    g_live--;
    echo_failed(c, detail ? detail : "connection ended");
    if (why == WSC_END_CONNECT_FAILED) {
        g_c.connect_failed++;
    }
    else if (why != WSC_END_CLOSED) {
        g_c.dropped++;
    }
    if (why != WSC_END_CLOSED) {
        wsc_diag("connection %d: %s", c->id, detail ? detail : "ended");
    }
}

static const wsc_ops ops = { on_open, on_data, on_end, NULL };

static int none_waiting(void *arg)
{
    (void)arg;
    return g_waiting == 0;
}

static int none_live(void *arg)
{
    (void)arg;
    return g_live == 0;
}

/* 1 once a line (or EOF) arrives on stdin, 0 after timeout_s. */
static int wait_stdin(int timeout_s)
{
    struct pollfd p = { .fd = 0, .events = POLLIN };
    char line[64];

    if (poll(&p, 1, timeout_s * 1000) <= 0) {
        return 0;
    }
    if (read(0, line, sizeof line) < 0) {
        return 0;
    }
    return 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: idle -u ws://127.0.0.1:PORT/PATH [-c conns=10000] [-b batch=200]\n"
            "            [-s bytes=16] [-H hold=120] [-e echo_timeout=5]\n"
            "            [-z offer [-Z min=0]] [-k warm=0]\n"
            "  -z  offer permessage-deflate (chromium: Chromium's offer, or the header\n"
            "      value); -Z: compress messages from that many bytes on (0: all)\n"
            "  -k  JSON messages each connection sends (echo checked) before it idles\n"
            "Loopback targets only.\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int opt, have_url = 0, ep, open = 0;
    iconn *conns;
    wsc_conn **list;
    uint64_t rng;

    wsc_set_prog("idle");
    while ((opt = getopt(argc, argv, "u:c:b:s:H:e:z:Z:k:h")) != -1) {
        switch (opt) {
        case 'u': wsc_parse_url(optarg, &cfg.target); have_url = 1; break;
        case 'c': cfg.conns = (int)wsc_num_arg(optarg, 1, 1000000, "-c"); break;
        case 'b': cfg.batch = (int)wsc_num_arg(optarg, 1, 100000, "-b"); break;
        case 's': cfg.size = (size_t)wsc_num_arg(optarg, 1, 1 << 20, "-s"); break;
        case 'H': cfg.hold = (int)wsc_num_arg(optarg, 0, 3600, "-H"); break;
        case 'e': cfg.echo_timeout = (int)wsc_num_arg(optarg, 1, 600, "-e"); break;
        case 'z': cfg.pmd.offer = wsc_pmd_offer_arg(optarg); break;
        case 'Z': cfg.pmd.compress_min = (size_t)wsc_num_arg(optarg, 0, 1 << 20, "-Z"); break;
        case 'k': cfg.warm = (int)wsc_num_arg(optarg, 0, 1000, "-k"); break;
        default: usage();
        }
    }
    if (!have_url || optind != argc) {
        usage();
    }
    if (wsc_raise_nofile(cfg.conns + 64) < cfg.conns + 16) {
        fprintf(stderr, "idle: the file descriptor limit is too low for %d connections\n",
                cfg.conns);
        return 2;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)cfg.conns, sizeof *conns);
    list = calloc((size_t)cfg.conns, sizeof *list);
    g_msg_cap = (cfg.size > WARM_MAX ? cfg.size : WARM_MAX) + 1;
    g_msg = malloc(g_msg_cap);
    g_expect = malloc(g_msg_cap);
    if (ep < 0 || !conns || !list || !g_msg || !g_expect
        || RAND_bytes((unsigned char *)&rng, sizeof rng) != 1) {
        fprintf(stderr, "idle: out of memory or no randomness\n");
        return 2;
    }
    for (int i = 0; i < cfg.conns; i++) {
        conns[i].id = i;
        /* Only one small message and control frames ever go out. */
        wsc_init(&conns[i].ws, ep, &cfg.target, &ops, &conns[i], &rng, g_msg_cap,
                 g_msg_cap + 4096);
        wsc_set_pmd(&conns[i].ws, &cfg.pmd);
        list[i] = &conns[i].ws;
    }
    g_live = cfg.conns;
    double cpu0 = wsc_cpu_seconds();

    /* 1. Open them, a batch at a time. */
    uint64_t t0 = wsc_now_ns();
    for (int i = 0; i < cfg.conns; i += cfg.batch) {
        int n = cfg.conns - i < cfg.batch ? cfg.conns - i : cfg.batch;
        open += wsc_connect_all(ep, list + i, n, BATCH_TIMEOUT);
    }
    double connect_s = (double)(wsc_now_ns() - t0) / 1e9;
    /* The warm-up messages, K per connection, all connections at once. */
    if (cfg.warm) {
        for (int i = 0; i < cfg.conns; i++) {
            if (conns[i].ws.state == WSC_OPEN) {
                send_msg(&conns[i]);
            }
        }
        wsc_loop(ep, wsc_now_ns() + WARM_TIMEOUT * NS, none_waiting, NULL, NULL, 100);
        for (int i = 0; i < cfg.conns; i++) {
            echo_failed(&conns[i], "no warm-up echo in time");
        }
    }
    printf("OPEN %d\n", open);
    fflush(stdout);

    /* 2. Idle until told (the server keeps answering pings meanwhile). */
    uint64_t hold_start = wsc_now_ns();
    int told = wait_stdin(cfg.hold);
    wsc_loop(ep, wsc_now_ns() + NS / 10, NULL, NULL, NULL, 100);   /* pending pings */
    double held_s = (double)(wsc_now_ns() - hold_start) / 1e9;
    int open_after = 0;
    for (int i = 0; i < cfg.conns; i++) {
        open_after += conns[i].ws.state == WSC_OPEN;
    }

    /* 3. One message on every connection at once; each must come back. */
    uint64_t t1 = wsc_now_ns();
    for (int i = 0; i < cfg.conns; i++) {
        iconn *c = &conns[i];
        if (c->ws.state != WSC_OPEN) {
            continue;
        }
        send_msg(c);
    }
    wsc_loop(ep, t1 + (uint64_t)cfg.echo_timeout * NS, none_waiting, NULL, NULL, 100);
    double echo_s = (double)(wsc_now_ns() - t1) / 1e9;
    for (int i = 0; i < cfg.conns; i++) {
        echo_failed(&conns[i], "no echo in time");
    }

    /* 4. Close. */
    for (int i = 0; i < cfg.conns; i++) {
        wsc_close(&conns[i].ws);
    }
    wsc_loop(ep, wsc_now_ns() + CLOSE_TIMEOUT * NS, none_live, NULL, NULL, 100);
    for (int i = 0; i < cfg.conns; i++) {
        wsc_end(&conns[i].ws, WSC_END_CLOSED, NULL);
    }
    double cpu = wsc_cpu_seconds() - cpu0;

    uint64_t failed = (uint64_t)(cfg.conns - open) + g_c.echo_failed;
    int ok = failed == 0 && g_c.dropped == 0 && g_c.echo_ok == (uint64_t)cfg.conns
             && g_c.warm_ok == (uint64_t)cfg.warm * (uint64_t)cfg.conns;
    double p50 = wsc_hist_percentile(&g_h, 50) / 1e3, p99 = wsc_hist_percentile(&g_h, 99) / 1e3;
    double max = (double)g_h.max / 1e3;

    printf("idle: %s  %d connections, opened %d in %.1f s (%d at a time)\n",
           cfg.target.url, cfg.conns, open, connect_s, cfg.batch);
    printf("  held idle    %.1f s (%s), %d still open\n", held_s,
           told ? "until told" : "hold time ran out", open_after);
    printf("  echo check   %" PRIu64 " ok, %" PRIu64 " failed (one %zu-byte message on "
           "every connection at once; all back in %.2f s)\n",
           g_c.echo_ok, g_c.echo_failed, cfg.size, echo_s);
    printf("  echo RTT us  p50 %.1f  p99 %.1f  max %.1f\n", p50, p99, max);
    if (cfg.warm) {
        printf("  warm-up      %" PRIu64 " of %d JSON messages echoed before idling\n",
               g_c.warm_ok, cfg.warm * cfg.conns);
    }
    /* Every message was echoed once, warm-up included. */
    wsc_traffic traffic = { 0 };
    char traffic_kv[512];
    for (int i = 0; i < cfg.conns; i++) {
        wsc_add_counts((uint64_t *)&traffic, (const uint64_t *)&conns[i].ws.traffic,
                       WSC_TRAFFIC_N);
    }
    wsc_traffic_report(&traffic, g_c.warm_ok + g_c.echo_ok + g_c.echo_failed,
                       g_c.warm_ok + g_c.echo_ok, traffic_kv, sizeof traffic_kv);
    printf("  client CPU   %.1f s\n", cpu);
    printf("RESULT url=%s conns=%d opened=%d connect_s=%.2f held_s=%.1f open_after_hold=%d "
           "echo_ok=%" PRIu64 " echo_failed=%" PRIu64 " echo_all_s=%.3f p50_us=%.1f "
           "p99_us=%.1f max_us=%.1f connect_failed=%" PRIu64 " dropped=%" PRIu64
           " client_cpu_s=%.2f pmd=%d warm=%d warm_ok=%" PRIu64 " %s errors=%" PRIu64
           " ok=%d\n",
           cfg.target.url, cfg.conns, open, connect_s, held_s, open_after, g_c.echo_ok,
           g_c.echo_failed, echo_s, p50, p99, max, g_c.connect_failed, g_c.dropped, cpu,
           cfg.pmd.offer != NULL, cfg.warm, g_c.warm_ok, traffic_kv, failed + g_c.dropped, ok);
    close(ep);
    free(conns);
    free(list);
    free(g_msg);
    wsc_thread_done();
    free(g_expect);
    return ok ? 0 : 1;
}
