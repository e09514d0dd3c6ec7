/*
 * limit-echo.c — a minimal single-threaded WebSocket echo server in C: the
 * machine's limit reference for the echo and idle benchmarks (issue 7).
 *
 *   limit-echo PORT          (PORT 0 = any free port; binds 127.0.0.1)
 *
 * One epoll loop, non-blocking sockets, nothing else: no threads, no
 * filters, no pools, no logging.  It does what an RFC 6455 echo server must
 * and no more: the handshake (Sec-WebSocket-Accept with OpenSSL's SHA-1 and
 * base64, via ws_client.c), frames with the project's codec (server role:
 * client frames must be masked, UTF-8 of text checked, 64 MiB message
 * limit), every data message sent back whole with its opcode, pings
 * answered, the close handshake completed.  Anything wrong closes the
 * connection.  Prints "listening PORT" once it accepts; stops on SIGTERM.
 *
 * What it leaves out on purpose is what a production server needs and costs
 * CPU or memory: per-connection pools, logging, timeouts, TLS, config.  The
 * gap between it and a real server is what those cost on this machine.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ws_client.h"

#define MAX_MESSAGE (64u << 20)     /* as Node's maxPayload in the benchmark */
#define REQ_MAX     8192            /* the upgrade request must fit */
#define RBUF        (64 * 1024)

typedef struct {
    int      fd, open, closing;
    unsigned ev;
    wsock_parser parser;
    uint8_t *req;                   /* request so far, until the upgrade */
    size_t   req_len;
    uint8_t *msg;                   /* the message being received */
    size_t   msg_len, msg_cap;
    uint8_t *out;                   /* bytes the socket has not taken yet */
    size_t   out_len, out_off, out_cap;
} client;

static int g_ep;
static volatile sig_atomic_t g_stop;

static void drop(client *c)
{
    close(c->fd);
    free(c->req);
    free(c->msg);
    free(c->out);
    free(c);
}

static void watch(client *c, unsigned ev)
{
    if (c->ev != ev) {
        struct epoll_event e = { .events = ev, .data.ptr = c };
        epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &e);
        c->ev = ev;
    }
}

/* Sends a + b (either may be empty); what the socket does not take now is
 * kept and sent on EPOLLOUT.  -1 if the connection is broken. */
static int emit(client *c, const void *a, size_t alen, const void *b, size_t blen)
{
    size_t done = 0, total = alen + blen;

    if (c->out_off == c->out_len) {         /* nothing queued: write directly */
        struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
        done = n > 0 ? (size_t)n : 0;
        if (done == total) {
            return 0;
        }
        c->out_len = c->out_off = 0;
    }
    if (c->out_len + total - done > c->out_cap) {
        size_t cap = (c->out_len + total - done) * 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p) {
            return -1;
        }
        c->out = p;
        c->out_cap = cap;
    }
    for (int i = 0; i < 2; i++) {           /* the unsent rest of a, then of b */
        const uint8_t *s = i ? b : a;
        size_t len = i ? blen : alen, skip = done > len ? len : done;
        memcpy(c->out + c->out_len, s + skip, len - skip);
        c->out_len += len - skip;
        done -= skip;
    }
    watch(c, EPOLLIN | EPOLLOUT);
    return 0;
}

static int flush_out(client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        if (n < 0) {
            return -1;
        }
        c->out_off += (size_t)n;
    }
    watch(c, EPOLLIN);
    return c->closing ? -1 : 0;             /* our close is out: done */
}

static int send_frame(client *c, wsock_opcode op, const uint8_t *payload, size_t len)
{
    uint8_t hdr[WSOCK_MAX_HEADER_SIZE];
    size_t hl = wsock_frame_header_write(hdr, 1, op, len, NULL);
    return emit(c, hdr, hl, payload, len);
}

/* ---- frames ---- */

static int on_data(void *ud, wsock_opcode op, const uint8_t *data, size_t len,
                   int first, int last)
{
    client *c = ud;

    if (first && last) {                    /* the common case: echo in place */
        return send_frame(c, op, data, len) != 0;
    }
    if (first) {
        c->msg_len = 0;
    }
    if (c->msg_len + len > c->msg_cap) {
        size_t cap = (c->msg_len + len) * 2;
        uint8_t *p = realloc(c->msg, cap);
        if (!p) {
            return 1;
        }
        c->msg = p;
        c->msg_cap = cap;
    }
    memcpy(c->msg + c->msg_len, data, len);
    c->msg_len += len;
    return last ? send_frame(c, op, c->msg, c->msg_len) != 0 : 0;
}

static int on_control(void *ud, wsock_opcode op, unsigned code, const uint8_t *payload,
                      size_t len)
{
    client *c = ud;
    uint8_t reply[WSOCK_MAX_CONTROL_PAYLOAD];

    if (op == WSOCK_OP_PING) {
        return send_frame(c, WSOCK_OP_PONG, payload, len) != 0;
    }
    if (op != WSOCK_OP_CLOSE) {
        return 0;
    }
    /* Answer with the same code, then end once it is written. */
    c->closing = 1;
    if (code == WSOCK_CLOSE_NO_STATUS) {
        code = WSOCK_CLOSE_NORMAL;
    }
    send_frame(c, WSOCK_OP_CLOSE, reply, wsock_close_payload(reply, code, NULL, 0));
    return 1;
}

static const wsock_parser_sink sink = { on_data, on_control };

/* ---- handshake ---- */

/* 1: upgraded (rest of the request bytes are frames), 0: need more, -1: bad. */
static int on_request_bytes(client *c, const uint8_t *buf, size_t len, size_t *used)
{
    char *end, accept[32], resp[256];
    const char *key;
    size_t klen, keep = len;

    if (!c->req && !(c->req = malloc(REQ_MAX + 1))) {
        return -1;
    }
    if (keep > REQ_MAX - c->req_len) {
        return -1;
    }
    memcpy(c->req + c->req_len, buf, keep);
    c->req_len += keep;
    c->req[c->req_len] = '\0';
    if (!(end = strstr((char *)c->req, "\r\n\r\n"))) {
        *used = len;
        return 0;
    }
    /* Bytes after the request belong to the frames: give them back. */
    *used = len - (c->req_len - ((size_t)(end - (char *)c->req) + 4));
    end[2] = '\0';
    key = wsc_header((char *)c->req, "Sec-WebSocket-Key", &klen);
    if (strncmp((char *)c->req, "GET ", 4) != 0 || !key || klen != 24) {
        return -1;
    }
    char k[25];
    memcpy(k, key, 24);
    k[24] = '\0';
    wsc_accept_for(k, accept);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    free(c->req);
    c->req = NULL;
    c->open = 1;
    return emit(c, resp, (size_t)n, NULL, 0) == 0 ? 1 : -1;
}

/* Reads what there is; -1 when the connection must go. */
static int on_readable(client *c)
{
    static uint8_t buf[RBUF];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        size_t off = 0, used;
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        if (n <= 0) {
            return -1;
        }
        if (!c->open) {
            int r = on_request_bytes(c, buf, (size_t)n, &used);
            if (r < 0) {
                return -1;
            }
            off = used;
        }
        while (c->open && !c->closing && off < (size_t)n) {
            wsock_parse_result r = wsock_parser_feed(&c->parser, buf + off, (size_t)n - off,
                                                     &sink, c, &used);
            if (r == WSOCK_PARSE_ERROR) {
                return -1;
            }
            off += used;
            if (r == WSOCK_PARSE_STOPPED && !c->closing) {
                return -1;                  /* a write failed */
            }
        }
        if (c->closing) {
            return flush_out(c);
        }
        if ((size_t)n < sizeof buf) {
            return 0;
        }
    }
}

static void on_accept(int lfd)
{
    for (;;) {
        int one = 1, fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;                         /* EAGAIN, or out of fds: try later */
        }
        client *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->ev = EPOLLIN;
        wsock_parser_init(&c->parser, WSOCK_ROLE_SERVER, MAX_MESSAGE);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            drop(c);
        }
    }
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof a;
    struct epoll_event evs[256], le = { .events = EPOLLIN, .data.ptr = NULL };
    int one = 1, lfd;

    wsc_set_prog("limit-echo");
    if (argc != 2) {
        fprintf(stderr, "usage: limit-echo PORT\n");
        return 2;
    }
    a.sin_port = htons((uint16_t)wsc_num_arg(argv[1], 0, 65535, "PORT"));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    wsc_raise_nofile(1 << 20);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || g_ep < 0
        || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
        || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0
        || getsockname(lfd, (struct sockaddr *)&a, &alen) != 0
        || epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &le) != 0) {
        perror("limit-echo");
        return 1;
    }
    printf("listening %u\n", ntohs(a.sin_port));
    fflush(stdout);
    while (!g_stop) {
        int n = epoll_wait(g_ep, evs, 256, 500);
        for (int i = 0; i < n; i++) {
            client *c = evs[i].data.ptr;
            if (!c) {
                on_accept(lfd);
                continue;
            }
            if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && on_readable(c) != 0) {
                drop(c);
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && flush_out(c) != 0) {
                drop(c);
            }
        }
    }
    return 0;
}
