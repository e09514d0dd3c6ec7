/*
 * fanout.c — one sender, R receivers in one room: delivered messages/s and
 * delivery latency of a broadcast (RFC 6455 client; issue 4).
 *
 *   fanout -u ws://127.0.0.1:PORT/PATH [-c receivers=1000] [-s bytes=16 | -j min[-max]]
 *          [-d secs=10] [-w warmup=2] [-W window=128] [-r rate=0] [-t threads=1]
 *          [-z offer [-Z min]] [-p http://127.0.0.1:PORT/PUB?QUERY]
 *
 * R receivers connect first; then the sender connects and sends "hello"
 * messages (sequence 0) every 100 ms until every receiver has one, so the
 * run starts only when all of them are in the room.  Then the sender sends
 * binary messages 1, 2, 3, ... each carrying its sequence number and the
 * time it was sent (CLOCK_MONOTONIC, ns) in its first 16 bytes, the rest a
 * fixed pattern.  The server must relay each message to every receiver and
 * not back to the sender.
 *
 * With -j, the messages are JSON chat messages of min..max bytes instead
 * (text; chatmsg.c: seq and send time in their first fields, the rest drawn
 * from seq), checked whole by making the expected message again.  With -z
 * every connection offers permessage-deflate (-z chromium: Chromium's
 * offer; the server must accept it), the sender compresses from -Z bytes
 * on (default 0: every message, as browsers do), the receivers inflate.
 * The wire bytes per message sent and per delivery are reported.
 *
 * With -p URL the sender is not a WebSocket: it publishes each message
 * (hellos too) with an HTTP POST to URL, e.g. mod_wsock's publish endpoint
 * (docs/publish.md: http://127.0.0.1:PORT/pub?location=/fanout), the body
 * being the message (application/octet-stream, or application/json with
 * -j), pipelined on one keep-alive HTTP/1.1 connection (http_pub.c), so
 * they are published in the order sent.  The receivers still connect to
 * -u.  Requests in flight are bounded by the window too; every answer must
 * be 2xx, and every request must be answered by the end.
 *
 * Pace: at most W messages may be in flight (sent, not yet received by every
 * receiver).  With -r 0 the sender sends whenever the window allows: the
 * server's delivery rate is the limit (saturation).  With -r N it sends N
 * messages per second (never more than the window allows): latency at a
 * given load.  W keeps every receiver's backlog in the server below W
 * messages, so a server's per-connection queue limit (mod_wsock's
 * WSockSendQueue, 1024 messages by default) is never what is measured.
 * The default, 128, is where both servers' delivery rate stopped growing
 * with W on the 2-core test machine (bench/README.md), well below 1024.
 *
 * Each receiver checks every message: length, pattern, and sequence.  It
 * counts every message exactly once: in order (seq = last + 1), out of order
 * (a seq it had skipped arrives later), duplicated (a seq it already had),
 * corrupt; at the end (once what was in flight has arrived, or nothing
 * more arrived for 5 s, or after 60 s) every message sent and not received
 * is lost.
 * Deliveries (messages x receivers) arriving inside the measured window
 * count for the rate; every delivery's latency (arrival - send time) inside
 * the window goes to the histogram.
 *
 * Every wait is bounded; loopback targets only.  Output: a human summary and
 * one line "RESULT key=value ...".  Exit status 1 on any loss, duplicate,
 * reordering, corruption, failed connection or message to the sender.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "chatmsg.h"
#include "http_pub.h"
#include "ws_client.h"

#define HDR           16          /* seq (8, LE) + send time (8, LE) */
#define SETUP_TIMEOUT 30          /* s: connect + handshake of all receivers */
#define SYNC_TIMEOUT  10          /* s: until every receiver had a hello */
#define DRAIN_TIMEOUT 5           /* s: after the window, for what is in flight, */
#define DRAIN_MAX     60          /* while it moves (a slow server drains a full
                                   * window for long: 128 x 1000 deliveries) */
#define CLOSE_TIMEOUT 3           /* s: close handshakes */
#define RING          8192        /* in-flight bookkeeping; W <= RING / 2 */
#define MAX_WINDOW    (RING / 2)
#define MISS_MAX      64          /* skipped seqs a receiver remembers */
#define NS            1000000000ull
#define CACHE         256         /* expected JSON messages a thread keeps */

enum phase { P_CONNECT, P_SYNC, P_RUN, P_DRAIN, P_CLOSE };

static struct {
    wsc_target target;
    int    receivers, threads, window, rate;
    size_t size;
    int    duration, warmup;
    int    json;                /* -j: JSON chat messages of jmin..size bytes */
    size_t jmin;
    wsc_pmd_config pmd;
    const char *pub_url;        /* -p: publish over HTTP to this URL */
} cfg = { .receivers = 1000, .threads = 1, .window = 128, .size = 16, .duration = 10,
          .warmup = 2 };

typedef struct {               /* uint64_t only: see wsc_add_counts */
    uint64_t deliveries;       /* in the window */
    uint64_t out_of_order, duplicated, corrupt, lost, to_sender;
    uint64_t connect_failed, dropped; /* connections: never opened / ended early */
    uint64_t received;         /* data messages the receivers got, all of the run */
    uint64_t publish_failed, publish_unanswered;   /* -p: answers not 2xx, missing */
} counters;

struct worker;

typedef struct peer {
    wsc_conn ws;
    struct worker *w;
    int      id, is_sender, synced;
    uint64_t last;             /* highest seq received */
    uint8_t  hdr[HDR];         /* the message's first bytes, gathered */
    size_t   msg_len;          /* bytes of the current message so far */
    int      bad;              /* current message failed the pattern check */
    uint64_t missing[MISS_MAX];
    int      nmissing;
    uint8_t *jbuf;             /* -j: a message split over reads, gathered */
} peer;

/* -j: the expected messages a thread made last (by seq % CACHE): the 1000
 * receivers of a thread check the same message against one making of it. */
typedef struct {
    uint64_t seq, ts;
    size_t   len;
    char    *msg;              /* cfg.size + 1 bytes */
} expected;

typedef struct worker {
    pthread_t thr;
    int      index, ep;
    peer    *peers;            /* this thread's receivers */
    wsc_conn **list;           /* the same, for wsc_connect_all */
    int      npeers, live, closing;
    uint64_t close_deadline, rng;
    counters c;
    wsc_hist h;
    expected *cache;           /* -j: CACHE entries */
} worker;

/* Shared between the threads. */
static _Atomic int g_phase = P_CONNECT;
static atomic_int g_ready_threads, g_synced, g_open_receivers;
static _Atomic uint32_t g_got[RING];          /* receivers that have seq i % RING */
static _Atomic uint64_t g_sent;               /* highest seq sent */
/* The measured window: written by thread 0 before P_RUN, read by all. */
static _Atomic uint64_t g_window_start, g_window_end;
static uint8_t *g_pattern;                    /* expected bytes after the header */

/* Sender state: thread 0 only. */
static peer     g_sender;
static hp_conn  g_pub;                        /* -p: the sender is this */
static uint64_t g_done;                       /* all seqs <= g_done fully delivered */
static uint64_t g_phase_deadline, g_last_hello, g_run_start, g_sent_in_window;
static uint64_t g_msgs_sent;                  /* hellos included */
static uint64_t g_drain_end;                  /* the drain's last moment */
static uint8_t *g_msg;

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* ---- receiving ---- */

static void on_open(wsc_conn *ws)
{
    peer *p = ws->ud;
    if (!p->is_sender) {
        atomic_fetch_add(&g_open_receivers, 1);
    }
}

/* A whole message with sequence seq and send time sent_ns has arrived. */
static void on_message(peer *p, uint64_t seq, uint64_t sent_ns)
{
    worker *w = p->w;

    if (seq == 0) {                          /* hello */
        if (p->last != 0) {
            w->c.out_of_order++;
            wsc_diag("receiver %d: hello after message %" PRIu64, p->id, p->last);
        }
        else if (!p->synced) {
            p->synced = 1;
            atomic_fetch_add(&g_synced, 1);
        }
        return;
    }
    if (seq > atomic_load_explicit(&g_sent, memory_order_acquire)) {
        w->c.corrupt++;
        wsc_diag("receiver %d: message %" PRIu64 " was never sent", p->id, seq);
        return;
    }
    if (seq <= p->last) {
        for (int i = 0; i < p->nmissing; i++) {
            if (p->missing[i] == seq) {
                p->missing[i] = p->missing[--p->nmissing];
                w->c.out_of_order++;
                goto deliver;
            }
        }
        w->c.duplicated++;
        wsc_diag("receiver %d: message %" PRIu64 " again", p->id, seq);
        return;
    }
    if (seq != p->last + 1) {
        wsc_diag("receiver %d: message %" PRIu64 " after %" PRIu64, p->id, seq, p->last);
        for (uint64_t s = p->last + 1; s < seq; s++) {
            if (p->nmissing < MISS_MAX) {
                p->missing[p->nmissing++] = s;
            }
            else {
                w->c.lost++;                 /* too many gaps to track: lost */
            }
        }
    }
    p->last = seq;
deliver:
    atomic_fetch_add_explicit(&g_got[seq % RING], 1, memory_order_release);
    uint64_t t = wsc_now_ns();
    if (t >= atomic_load_explicit(&g_window_start, memory_order_relaxed)
        && t < atomic_load_explicit(&g_window_end, memory_order_relaxed)) {
        w->c.deliveries++;
        wsc_hist_add(&w->h, t > sent_ns ? t - sent_ns : 0);
    }
}

/* -j: 1 if msg is the chat message seq stamped ts, byte for byte. */
static int json_expected(worker *w, uint64_t seq, uint64_t ts, const uint8_t *msg, size_t len)
{
    expected *e = &w->cache[seq % CACHE];

    if (!e->msg || e->seq != seq || e->ts != ts) {
        if (!e->msg && !(e->msg = malloc(cfg.size + 1))) {
            return 0;
        }
        e->seq = seq;
        e->ts = ts;
        e->len = chatmsg_make(e->msg, cfg.size + 1, seq, ts, cfg.jmin, cfg.size);
    }
    return e->len == len && memcmp(e->msg, msg, len) == 0;
}

/* -j: a chunk of a JSON message; the whole message is checked at its end. */
static void on_json_data(peer *p, wsock_opcode op, const uint8_t *data, size_t len,
                         int first, int last)
{
    uint64_t seq, ts;

    if (first) {
        p->msg_len = 0;
        p->bad = op != WSOCK_OP_TEXT;
    }
    if (!(first && last)) {          /* split over reads: gather it */
        if (p->msg_len + len > cfg.size
            || (!p->jbuf && !(p->jbuf = malloc(cfg.size)))) {
            p->bad = 1;
        }
        else {
            memcpy(p->jbuf + p->msg_len, data, len);
        }
        p->msg_len += len;
        if (!last) {
            return;
        }
        data = p->jbuf;
        len = p->msg_len;
    }
    if (p->bad || !chatmsg_parse(data, len, &seq, &ts)
        || !json_expected(p->w, seq, ts, data, len)) {
        p->w->c.corrupt++;
        wsc_diag("receiver %d: corrupt message (%zu bytes)", p->id, len);
        return;
    }
    on_message(p, seq, ts);
}

static int on_data(wsc_conn *ws, wsock_opcode op, const uint8_t *data, size_t len,
                   int first, int last)
{
    peer *p = ws->ud;

    if (p->is_sender) {
        p->w->c.to_sender++;
        wsc_diag("the sender received a message (it must not)");
        return 0;
    }
    p->w->c.received += last;
    if (cfg.json) {
        on_json_data(p, op, data, len, first, last);
        return 0;
    }
    if (first) {
        p->msg_len = 0;
        p->bad = op != WSOCK_OP_BINARY;
    }
    /* Header bytes are gathered, the rest compared with the pattern, even
     * when the message comes in several chunks. */
    for (size_t i = 0; i < len && p->msg_len + i < HDR; i++) {
        p->hdr[p->msg_len + i] = data[i];
    }
    if (p->msg_len + len > HDR && !p->bad) {
        size_t skip = p->msg_len < HDR ? HDR - p->msg_len : 0;
        size_t at = p->msg_len + skip;
        if (at + (len - skip) > cfg.size
            || memcmp(g_pattern + (at - HDR), data + skip, len - skip) != 0) {
            p->bad = 1;
        }
    }
    p->msg_len += len;
    if (!last) {
        return 0;
    }
    if (p->bad || p->msg_len != cfg.size) {
        p->w->c.corrupt++;
        wsc_diag("receiver %d: corrupt message (%zu bytes)", p->id, p->msg_len);
        return 0;
    }
    on_message(p, get64(p->hdr), get64(p->hdr + 8));
    return 0;
}

static void on_end(wsc_conn *ws, wsc_end_reason why, const char *detail)
{
    peer *p = ws->ud;
    worker *w = p->w;

    w->live--;
    if (why == WSC_END_CLOSED) {
        return;
    }
    if (why == WSC_END_CONNECT_FAILED) {
        w->c.connect_failed++;
    }
    else {
        w->c.dropped++;
    }
    wsc_diag("%s %d: %s", p->is_sender ? "sender" : "receiver", p->id,
             detail ? detail : "ended");
}

static const wsc_ops ops = { on_open, on_data, on_end, NULL };

/* ---- sending (thread 0) ---- */

/* The sender's connection: a WebSocket, or with -p the HTTP one. */
static wsc_conn *sender(void)
{
    return cfg.pub_url ? &g_pub.ws : &g_sender.ws;
}

static void send_seq(uint64_t seq)
{
    uint64_t now = wsc_now_ns();
    size_t len = cfg.size;

    if (cfg.json) {
        len = chatmsg_make((char *)g_msg, cfg.size + 1, seq, now, cfg.jmin, cfg.size);
    }
    else {
        put64(g_msg, seq);
        put64(g_msg + 8, now);
    }
    if (seq) {
        atomic_store_explicit(&g_sent, seq, memory_order_release);
    }
    g_msgs_sent++;
    if (cfg.pub_url) {
        hp_post(&g_pub, g_msg, len);
    }
    else {
        wsc_send(&g_sender.ws, cfg.json ? WSOCK_OP_TEXT : WSOCK_OP_BINARY, g_msg, len);
    }
}

/* Advances g_done over the messages every open receiver has. */
static void advance_done(void)
{
    uint32_t need = (uint32_t)atomic_load(&g_open_receivers);
    uint64_t sent = atomic_load(&g_sent);

    while (g_done < sent && atomic_load_explicit(&g_got[(g_done + 1) % RING],
                                                 memory_order_acquire) >= need) {
        atomic_store(&g_got[(g_done + 1) % RING], 0);   /* reused for seq + RING */
        g_done++;
    }
}

/* Sends what the window (and the rate, if any) allows. */
static void pump(uint64_t now)
{
    uint64_t seq = atomic_load(&g_sent);

    while (sender()->state == WSC_OPEN && seq - g_done < (uint64_t)cfg.window
           && (!cfg.pub_url || hp_outstanding(&g_pub) < (uint64_t)cfg.window)) {
        if (cfg.rate && (seq * NS) / (uint64_t)cfg.rate > now - g_run_start) {
            break;                           /* not due yet */
        }
        send_seq(++seq);
        if (now >= g_window_start) {
            g_sent_in_window++;
        }
    }
}

/* ---- phases ---- */

static void begin_close(worker *w)
{
    w->closing = 1;
    w->close_deadline = wsc_now_ns() + CLOSE_TIMEOUT * NS;
    for (int i = 0; i < w->npeers; i++) {
        wsc_close(&w->peers[i].ws);
    }
    if (w->index == 0 && cfg.pub_url) {
        wsc_end(&g_pub.ws, WSC_END_CLOSED, NULL);  /* every answer is in, or never comes */
    }
    else if (w->index == 0) {
        wsc_close(&g_sender.ws);
    }
}

/* Thread 0 moves the run from phase to phase. */
static void drive(worker *w)
{
    uint64_t now = wsc_now_ns();

    switch (atomic_load(&g_phase)) {
    case P_CONNECT:
        if (atomic_load(&g_ready_threads) == cfg.threads && sender()->fd < 0
            && sender()->state == WSC_CONNECTING) {
            if (cfg.pub_url) {
                hp_connect(&g_pub);
            }
            else {
                wsc_connect(&g_sender.ws);
            }
            g_phase_deadline = now + SETUP_TIMEOUT * NS;
        }
        if (sender()->state == WSC_OPEN) {
            atomic_store(&g_phase, P_SYNC);
            g_phase_deadline = now + SYNC_TIMEOUT * NS;
        }
        else if (sender()->state == WSC_DONE
                 || (g_phase_deadline && now > g_phase_deadline)) {
            wsc_diag("the sender could not connect");
            atomic_store(&g_phase, P_CLOSE);
        }
        break;
    case P_SYNC:
        if (atomic_load(&g_synced) >= atomic_load(&g_open_receivers)
            && atomic_load(&g_open_receivers) > 0) {
            g_run_start = now;
            atomic_store(&g_window_start, now + (uint64_t)cfg.warmup * NS);
            atomic_store(&g_window_end, now + (uint64_t)(cfg.warmup + cfg.duration) * NS);
            atomic_store(&g_phase, P_RUN);   /* publishes the window to the others */
            pump(now);
        }
        else if (now > g_phase_deadline || sender()->state != WSC_OPEN) {
            wsc_diag("only %d of %d receivers joined the room within %d s",
                     atomic_load(&g_synced), atomic_load(&g_open_receivers), SYNC_TIMEOUT);
            atomic_store(&g_phase, P_CLOSE);
        }
        else if (now - g_last_hello > NS / 10) {
            g_last_hello = now;
            send_seq(0);
        }
        break;
    case P_RUN:
        advance_done();
        if (now >= g_window_end || sender()->state != WSC_OPEN) {
            atomic_store(&g_phase, P_DRAIN);
            g_phase_deadline = now + DRAIN_TIMEOUT * NS;
            g_drain_end = now + DRAIN_MAX * NS;
        }
        else {
            pump(now);
        }
        break;
    case P_DRAIN: {
        uint64_t before = g_done;
        advance_done();
        if (g_done != before && now + DRAIN_TIMEOUT * NS < g_drain_end) {
            g_phase_deadline = now + DRAIN_TIMEOUT * NS;    /* still moving */
        }
        if ((g_done == atomic_load(&g_sent)
             && (!cfg.pub_url || hp_outstanding(&g_pub) == 0 || sender()->state != WSC_OPEN))
            || now > g_phase_deadline) {
            atomic_store(&g_phase, P_CLOSE);
        }
        break;
    }
    case P_CLOSE:
        break;
    }
    (void)w;
}

static void after_batch(void *arg)
{
    worker *w = arg;

    if (w->index == 0) {
        drive(w);
    }
    if (!w->closing && atomic_load(&g_phase) == P_CLOSE) {
        begin_close(w);
    }
}

static int finished(void *arg)
{
    worker *w = arg;

    if (!w->closing) {
        return 0;
    }
    if (w->live == 0 || wsc_now_ns() > w->close_deadline) {
        return 1;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    uint64_t limit;

    wsc_connect_all(w->ep, w->list, w->npeers, SETUP_TIMEOUT);
    atomic_fetch_add(&g_ready_threads, 1);

    /* Everything else is driven from after_batch; the overall bound is the
     * sum of all phase bounds. */
    limit = wsc_now_ns() + (SETUP_TIMEOUT + SYNC_TIMEOUT + DRAIN_MAX + CLOSE_TIMEOUT + 5
                            + (uint64_t)cfg.warmup + (uint64_t)cfg.duration) * NS;
    wsc_loop(w->ep, limit, finished, after_batch, w, w->index == 0 ? 1 : 10);
    for (int i = 0; i < w->npeers; i++) {
        wsc_end(&w->peers[i].ws, WSC_END_CLOSED, NULL);   /* close not answered: fine */
    }
    if (w->index == 0) {
        wsc_end(sender(), WSC_END_CLOSED, NULL);
    }
    wsc_thread_done();
    return NULL;
}

/* ---- command line ---- */

/* -j MIN or -j MIN-MAX */
static void json_arg(char *arg)
{
    char *dash = strchr(arg, '-');

    if (dash) {
        *dash = '\0';
    }
    cfg.jmin = (size_t)wsc_num_arg(arg, CHATMSG_MIN, CHATMSG_MAX, "-j");
    cfg.size = dash ? (size_t)wsc_num_arg(dash + 1, (long)cfg.jmin, CHATMSG_MAX, "-j")
                    : cfg.jmin;
    cfg.json = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fanout -u ws://127.0.0.1:PORT/PATH [-c receivers=1000]\n"
            "              [-s bytes=16 | -j min[-max]] [-d seconds=10] [-w warmup=2]\n"
            "              [-W window=128] [-r rate=0] [-t threads=1] [-z offer [-Z min=0]]\n"
            "              [-p http://127.0.0.1:PORT/PATH?QUERY]\n"
            "  -j  JSON chat messages of min..max bytes (text) instead of binary ones\n"
            "  -z  offer permessage-deflate (chromium: Chromium's offer, or the header\n"
            "      value); -Z: the sender compresses messages from that many bytes on\n"
            "  -W  messages in flight (sent, not yet at every receiver), 1..%d\n"
            "  -r  messages per second to send (0: as fast as the window allows)\n"
            "  -p  publish each message with an HTTP POST to this URL (pipelined on one\n"
            "      keep-alive connection) instead of sending it on a WebSocket\n"
            "Loopback targets only.\n", MAX_WINDOW);
    exit(2);
}

int main(int argc, char **argv)
{
    int opt, have_url = 0;
    worker *ws;
    peer *peers;
    counters tot = { 0 };
    wsc_hist *h;
    uint64_t sender_rng;

    wsc_set_prog("fanout");
    while ((opt = getopt(argc, argv, "u:c:s:j:d:w:W:r:t:z:Z:p:h")) != -1) {
        switch (opt) {
        case 'u': wsc_parse_url(optarg, &cfg.target); have_url = 1; break;
        case 'c': cfg.receivers = (int)wsc_num_arg(optarg, 1, 100000, "-c"); break;
        case 's': cfg.size = (size_t)wsc_num_arg(optarg, HDR, 1 << 20, "-s"); break;
        case 'j': json_arg(optarg); break;
        case 'z': cfg.pmd.offer = wsc_pmd_offer_arg(optarg); break;
        case 'Z': cfg.pmd.compress_min = (size_t)wsc_num_arg(optarg, 0, 1 << 20, "-Z"); break;
        case 'd': cfg.duration = (int)wsc_num_arg(optarg, 1, 3600, "-d"); break;
        case 'w': cfg.warmup = (int)wsc_num_arg(optarg, 0, 3600, "-w"); break;
        case 'W': cfg.window = (int)wsc_num_arg(optarg, 1, MAX_WINDOW, "-W"); break;
        case 'r': cfg.rate = (int)wsc_num_arg(optarg, 0, 10000000, "-r"); break;
        case 't': cfg.threads = (int)wsc_num_arg(optarg, 1, 64, "-t"); break;
        case 'p': cfg.pub_url = optarg; break;
        default: usage();
        }
    }
    if (!have_url || optind != argc) {
        usage();
    }
    /* The receivers of a broadcast compressed once get the same bytes:
     * each thread inflates them once (ws_client.h, memo). */
    cfg.pmd.memo = 1;
    if (cfg.threads > cfg.receivers) {
        cfg.threads = cfg.receivers;
    }
    if (wsc_raise_nofile(cfg.receivers + 64) < cfg.receivers + 16) {
        fprintf(stderr, "fanout: the file descriptor limit is too low for %d receivers\n",
                cfg.receivers);
        return 2;
    }

    ws = calloc((size_t)cfg.threads, sizeof *ws);
    peers = calloc((size_t)cfg.receivers, sizeof *peers);
    g_pattern = malloc(cfg.size);
    g_msg = malloc(cfg.size + 1);
    h = calloc(1, sizeof *h);
    if (!ws || !peers || !g_pattern || !g_msg || !h
        || RAND_bytes((unsigned char *)&sender_rng, sizeof sender_rng) != 1) {
        fprintf(stderr, "fanout: out of memory or no randomness\n");
        return 2;
    }
    for (size_t i = 0; i < cfg.size; i++) {
        g_pattern[i] = (uint8_t)('a' + i % 26);
    }
    memcpy(g_msg + HDR, g_pattern, cfg.size - HDR);

    for (int t = 0; t < cfg.threads; t++) {
        worker *w = &ws[t];
        w->index = t;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->peers = peers + (size_t)t * (size_t)cfg.receivers / (size_t)cfg.threads;
        w->npeers = (int)((size_t)(t + 1) * (size_t)cfg.receivers / (size_t)cfg.threads
                          - (size_t)t * (size_t)cfg.receivers / (size_t)cfg.threads);
        w->live = w->npeers + (t == 0);
        w->list = calloc((size_t)w->npeers + 1, sizeof *w->list);
        w->cache = cfg.json ? calloc(CACHE, sizeof *w->cache) : NULL;
        if (!w->list || (cfg.json && !w->cache) || w->ep < 0 || RAND_bytes((unsigned char *)&w->rng, sizeof w->rng) != 1) {
            fprintf(stderr, "fanout: epoll/RAND_bytes failed\n");
            return 2;
        }
        for (int i = 0; i < w->npeers; i++) {
            peer *p = &w->peers[i];
            p->w = w;
            p->id = (int)(p - peers);
            /* Receivers only send control frames.  The size limit is also
             * that of a message after inflating (ws_pmd.c); the few bytes more
             * let through a small message that compressing made longer. */
            wsc_init(&p->ws, w->ep, &cfg.target, &ops, p, &w->rng, cfg.size + 64, 64 * 1024);
            wsc_set_pmd(&p->ws, &cfg.pmd);
            w->list[i] = &p->ws;
        }
    }
    g_sender.w = &ws[0];
    g_sender.is_sender = 1;
    g_sender.id = -1;
    /* The sender queues at most a window of messages (plus hellos). */
    wsc_init(&g_sender.ws, ws[0].ep, &cfg.target, &ops, &g_sender, &sender_rng, 1,
             (size_t)(cfg.window + 200) * (cfg.size + WSOCK_MAX_HEADER_SIZE) + 64 * 1024);
    wsc_set_pmd(&g_sender.ws, &cfg.pmd);
    if (cfg.pub_url) {
        /* Each request's head is under 1 KiB. */
        hp_init(&g_pub, ws[0].ep, cfg.pub_url,
                cfg.json ? "application/json" : "application/octet-stream", ops.on_end,
                &g_sender, (size_t)(cfg.window + 200) * (cfg.size + 1024) + 64 * 1024);
    }

    double cpu0 = wsc_cpu_seconds();
    uint64_t t0 = wsc_now_ns();
    for (int t = 0; t < cfg.threads; t++) {
        pthread_create(&ws[t].thr, NULL, worker_main, &ws[t]);
    }
    for (int t = 0; t < cfg.threads; t++) {
        worker *w = &ws[t];
        pthread_join(w->thr, NULL);
        wsc_add_counts((uint64_t *)&tot, (const uint64_t *)&w->c,
                       sizeof tot / sizeof(uint64_t));
        wsc_hist_merge(h, &w->h);
    }
    double cpu = wsc_cpu_seconds() - cpu0;
    double wall = (double)(wsc_now_ns() - t0) / 1e9;

    if (cfg.pub_url) {
        tot.publish_failed = g_pub.failed;
        tot.publish_unanswered = hp_outstanding(&g_pub);
    }
    /* Lost: every message sent that a receiver that joined never got. */
    uint64_t sent = atomic_load(&g_sent);
    int joined = 0;
    for (int i = 0; i < cfg.receivers; i++) {
        if (peers[i].synced) {
            joined++;
            tot.lost += (uint64_t)peers[i].nmissing + (sent - peers[i].last);
        }
    }
    int ran = g_window_end != 0;
    double seconds = ran ? cfg.duration : 1;
    double dps = (double)tot.deliveries / seconds;
    double mps = (double)g_sent_in_window / seconds;
    double p50 = wsc_hist_percentile(h, 50) / 1e3, p90 = wsc_hist_percentile(h, 90) / 1e3;
    double p99 = wsc_hist_percentile(h, 99) / 1e3, max = (double)h->max / 1e3;
    uint64_t errors = tot.out_of_order + tot.duplicated + tot.corrupt + tot.lost
                      + tot.to_sender + tot.connect_failed + tot.dropped
                      + tot.publish_failed + tot.publish_unanswered
                      + (uint64_t)(cfg.receivers - joined);
    int ok = ran && errors == 0 && tot.deliveries > 0;
    /* The wire: what the sender sent per message, what a receiver got per
     * delivery (hellos, warm-up and drain included, both). */
    wsc_traffic traffic = { 0 };
    char traffic_kv[512], kind[64];
    for (int i = 0; i < cfg.receivers; i++) {
        wsc_add_counts((uint64_t *)&traffic, (const uint64_t *)&peers[i].ws.traffic,
                       WSC_TRAFFIC_N);
    }
    traffic.wire_out = sender()->traffic.wire_out;     /* -p: HTTP requests, heads included */
    traffic.zmsgs_out = sender()->traffic.zmsgs_out;
    if (cfg.json) {
        snprintf(kind, sizeof kind, "%zu..%zu-byte JSON", cfg.jmin, cfg.size);
    }
    else {
        snprintf(kind, sizeof kind, "%zu-byte binary", cfg.size);
    }

    printf("fanout: %s  1 sender -> %d receivers, %s messages, window %d, "
           "%s, %d thread(s), %d s warm-up + %d s measured\n",
           cfg.target.url, cfg.receivers, kind, cfg.window,
           cfg.rate ? "paced" : "as fast as delivered", cfg.threads, cfg.warmup,
           cfg.duration);
    if (cfg.rate) {
        printf("  pace         %d msgs/s asked\n", cfg.rate);
    }
    if (cfg.pub_url) {
        printf("  publisher    POST %s: %" PRIu64 " requests, %" PRIu64 " answered, %" PRIu64
               " not 2xx (first: %d); last answer: %s\n", cfg.pub_url, g_pub.posted,
               g_pub.answered, g_pub.failed, g_pub.first_bad_status,
               g_pub.last_body[0] ? g_pub.last_body : "-");
    }
    printf("  delivered    %.0f deliveries/s  (%" PRIu64 " in the window; "
           "%.1f msgs/s sent x %d receivers)\n", dps, tot.deliveries, mps, joined);
    printf("  latency (us) p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  (send -> arrival)\n",
           p50, p90, p99, max);
    printf("  errors       lost %" PRIu64 "  duplicated %" PRIu64 "  out_of_order %" PRIu64
           "  corrupt %" PRIu64 "  to_sender %" PRIu64 "  connect_failed %" PRIu64
           "  dropped %" PRIu64 "  not_joined %d  publish_failed %" PRIu64
           "  publish_unanswered %" PRIu64 "\n",
           tot.lost, tot.duplicated, tot.out_of_order, tot.corrupt, tot.to_sender,
           tot.connect_failed, tot.dropped, cfg.receivers - joined, tot.publish_failed,
           tot.publish_unanswered);
    wsc_traffic_report(&traffic, g_msgs_sent, tot.received, traffic_kv, sizeof traffic_kv);
    printf("  client CPU   %.0f%% of one core (%.1f s)\n", 100.0 * cpu / wall, cpu);
    printf("RESULT url=%s receivers=%d joined=%d size=%zu json=%d jmin=%zu pmd=%d window=%d "
           "rate=%d threads=%d publisher=%s "
           "warmup=%d duration=%d sent=%" PRIu64 " msgs_per_sec=%.1f deliveries=%" PRIu64
           " deliveries_per_sec=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f "
           "lost=%" PRIu64 " duplicated=%" PRIu64 " out_of_order=%" PRIu64 " corrupt=%" PRIu64
           " to_sender=%" PRIu64 " connect_failed=%" PRIu64 " dropped=%" PRIu64
           " publish_failed=%" PRIu64 " publish_unanswered=%" PRIu64 " client_cpu_pct=%.0f %s errors=%" PRIu64 " ok=%d\n",
           cfg.target.url, cfg.receivers, joined, cfg.size, cfg.json, cfg.jmin,
           cfg.pmd.offer != NULL, cfg.window, cfg.rate,
           cfg.threads, cfg.pub_url ? "http" : "ws", cfg.warmup, cfg.duration, sent, mps, tot.deliveries, dps, p50, p90,
           p99, max, tot.lost, tot.duplicated, tot.out_of_order, tot.corrupt, tot.to_sender,
           tot.connect_failed, tot.dropped, tot.publish_failed, tot.publish_unanswered,
           100.0 * cpu / wall, traffic_kv, errors, ok);
    for (int t = 0; t < cfg.threads; t++) {
        close(ws[t].ep);
        free(ws[t].list);
        for (int i = 0; ws[t].cache && i < CACHE; i++) {
            free(ws[t].cache[i].msg);
        }
        free(ws[t].cache);
    }
    for (int i = 0; i < cfg.receivers; i++) {
        free(peers[i].jbuf);
    }
    if (cfg.pub_url) {
        hp_free(&g_pub);
    }
    free(ws);
    free(peers);
    free(g_pattern);
    free(g_msg);
    free(h);
    return ok ? 0 : 1;
}
