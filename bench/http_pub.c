/*
 * http_pub.c — pipelined HTTP/1.1 POSTs on the benchmark clients' epoll
 * loop (see http_pub.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "http_pub.h"

void hp_parse_url(const char *url, wsc_target *t)
{
    char ws[600];

    if (strncmp(url, "http://", 7) != 0 || strlen(url) >= sizeof ws - 1) {
        fprintf(stderr, "publish URL must be http://127.0.0.1:PORT/PATH?QUERY: %s\n", url);
        exit(2);
    }
    /* The same rules as a ws:// URL (loopback only); the text stays. */
    snprintf(ws, sizeof ws, "ws://%s", url + 7);
    wsc_parse_url(ws, t);
    snprintf(t->url, sizeof t->url, "%s", url);
}

static void set_events(hp_conn *h)
{
    unsigned ev = EPOLLIN | (h->out_off < h->out_len ? (unsigned)EPOLLOUT : 0u);

    if (h->ws.ev != ev) {
        struct epoll_event e = { .events = ev, .data.ptr = &h->ws };
        epoll_ctl(h->ws.ep, EPOLL_CTL_MOD, h->ws.fd, &e);
        h->ws.ev = ev;
    }
}

static void flush(hp_conn *h)
{
    while (h->out_off < h->out_len) {
        ssize_t n = send(h->ws.fd, h->out + h->out_off, h->out_len - h->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n < 0) {
            wsc_end(&h->ws, WSC_END_PEER_CLOSED, strerror(errno));
            return;
        }
        h->out_off += (size_t)n;
        h->ws.traffic.wire_out += (uint64_t)n;
    }
    if (h->out_off == h->out_len) {
        h->out_off = h->out_len = 0;
    }
    set_events(h);
}

/* The value of header name in the head [p, end) (lines ending CRLF), or
 * NULL; *len its length. */
static const char *header(const char *p, const char *end, const char *name, size_t *len)
{
    size_t nl = strlen(name);

    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) {
            eol = end;
        }
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }
            *len = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Keeps the start of an answer's body for the report. */
static void keep_body(hp_conn *h, size_t *kept, const char *data, size_t len)
{
    size_t room = sizeof h->last_body - 1 - *kept;

    if (len > room) {
        len = room;
    }
    memcpy(h->last_body + *kept, data, len);
    *kept += len;
    h->last_body[*kept] = '\0';
}

/* A chunked body at [p, end): its length on the wire, 0 if not all there
 * yet, -1 if malformed. */
static long chunked(hp_conn *h, const char *p, const char *end)
{
    const char *start = p;
    size_t kept = 0;

    for (;;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        char *stop;
        unsigned long n;
        if (!eol) {
            return 0;
        }
        n = strtoul(p, &stop, 16);
        if (stop == p || n > HP_IN_BUF) {
            return -1;
        }
        p = eol + 2;
        if (n == 0) {                    /* last chunk; no trailers expected */
            if (end - p < 2) {
                return 0;
            }
            return p[0] == '\r' && p[1] == '\n' ? (long)(p + 2 - start) : -1;
        }
        if ((size_t)(end - p) < n + 2) {
            return 0;
        }
        keep_body(h, &kept, p, n);
        p += n + 2;
    }
}

/* Parses the first whole answer in h->in: 1 (consumed), 0 (incomplete),
 * -1 (the connection ended: a bad answer or Connection: close). */
static int parse_answer(hp_conn *h)
{
    const char *in = h->in, *end = h->in + h->in_len, *hend, *v;
    size_t vl, kept = 0;
    long body;
    int status, close_after;

    hend = memmem(in, h->in_len, "\r\n\r\n", 4);
    if (!hend) {
        if (h->in_len == sizeof h->in) {
            wsc_end(&h->ws, WSC_END_PROTOCOL, "an answer head larger than 64 KiB");
            return -1;
        }
        return 0;
    }
    if (sscanf(in, "HTTP/1.%*1d %3d", &status) != 1 || status < 100 || status > 599) {
        wsc_end(&h->ws, WSC_END_PROTOCOL, "not an HTTP/1.x answer");
        return -1;
    }
    hend += 2;                           /* header lines end with their CRLF */
    close_after = (v = header(in, hend, "Connection", &vl)) && vl == 5
                  && strncasecmp(v, "close", 5) == 0;
    if ((v = header(in, hend, "Transfer-Encoding", &vl)) && vl >= 7
        && strncasecmp(v + vl - 7, "chunked", 7) == 0) {
        body = chunked(h, hend + 2, end);
        if (body < 0) {
            wsc_end(&h->ws, WSC_END_PROTOCOL, "a malformed chunked answer");
            return -1;
        }
        if (body == 0) {
            return 0;
        }
    }
    else if ((v = header(in, hend, "Content-Length", &vl))) {
        body = strtol(v, NULL, 10);
        if (body < 0 || body > HP_IN_BUF) {
            wsc_end(&h->ws, WSC_END_PROTOCOL, "a bad Content-Length in an answer");
            return -1;
        }
        if (end - (hend + 2) < body) {
            return 0;
        }
        keep_body(h, &kept, hend + 2, (size_t)body);
    }
    else if (status == 204 || status == 304 || status < 200) {
        body = 0;
    }
    else {
        wsc_end(&h->ws, WSC_END_PROTOCOL, "an answer without a length");
        return -1;
    }
    if (status >= 100 && status < 200) {  /* 100 Continue: not the answer */
        body = 0;
    }
    else {
        h->answered++;
        if (status >= 300) {
            if (!h->failed++) {
                h->first_bad_status = status;
                wsc_diag("publish: answer %d: %s", status, h->last_body);
            }
        }
    }
    size_t used = (size_t)(hend + 2 - in) + (size_t)body;
    memmove(h->in, h->in + used, h->in_len - used);
    h->in_len -= used;
    if (close_after) {
        wsc_end(&h->ws, WSC_END_PEER_CLOSED,
                "the server ends the connection (Connection: close; MaxKeepAliveRequests?)");
        return -1;
    }
    return 1;
}

static void on_readable(hp_conn *h)
{
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(h->ws.fd, h->in + h->in_len, sizeof h->in - h->in_len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            wsc_end(&h->ws, WSC_END_PEER_CLOSED,
                    n == 0 ? "the server closed the connection" : strerror(errno));
            return;
        }
        h->in_len += (size_t)n;
        h->ws.traffic.wire_in += (uint64_t)n;
        int r;
        while ((r = parse_answer(h)) == 1) {
        }
        if (r < 0) {
            return;
        }
    }
}

static void on_event(wsc_conn *c, unsigned ev)
{
    hp_conn *h = (hp_conn *)c;           /* ws is the first member */

    if (c->state == WSC_CONNECTING) {
        if (wsc_connect_done(c) == 0) {
            c->state = WSC_OPEN;
            flush(h);
        }
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(h);
    }
    if (c->state != WSC_DONE && (ev & EPOLLOUT)) {
        flush(h);
    }
}

void hp_init(hp_conn *h, int ep, const char *url, const char *content_type,
             void (*on_end)(wsc_conn *c, wsc_end_reason why, const char *detail), void *ud,
             size_t out_max)
{
    memset(h, 0, sizeof *h);
    hp_parse_url(url, &h->target);
    h->ops.on_end = on_end;
    h->ops.on_event = on_event;
    h->content_type = content_type;
    h->out_max = out_max;
    wsc_init(&h->ws, ep, &h->target, &h->ops, ud, NULL, 1, 0);
}

void hp_connect(hp_conn *h)
{
    wsc_connect(&h->ws);
}

int hp_post(hp_conn *h, const uint8_t *body, size_t len)
{
    char head[1024];
    int hl;

    if (h->ws.state != WSC_OPEN) {
        return -1;
    }
    hl = snprintf(head, sizeof head,
                  "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\n\r\n", h->target.path, h->target.host,
                  h->content_type, len);
    if (h->out_len + (size_t)hl + len > h->out_max) {
        wsc_end(&h->ws, WSC_END_BACKLOG, "the publish endpoint does not read its requests");
        return -1;
    }
    if (h->out_len + (size_t)hl + len > h->out_cap) {
        size_t cap = h->out_cap ? h->out_cap : 64 * 1024;
        uint8_t *grown;
        while (cap < h->out_len + (size_t)hl + len) {
            cap *= 2;
        }
        if (!(grown = realloc(h->out, cap))) {
            wsc_end(&h->ws, WSC_END_ABORTED, "out of memory");
            return -1;
        }
        h->out = grown;
        h->out_cap = cap;
    }
    memcpy(h->out + h->out_len, head, (size_t)hl);
    memcpy(h->out + h->out_len + hl, body, len);
    h->out_len += (size_t)hl + len;
    h->posted++;
    flush(h);
    return h->ws.state == WSC_OPEN ? 0 : -1;
}

void hp_free(hp_conn *h)
{
    wsc_end(&h->ws, WSC_END_CLOSED, NULL);
    free(h->out);
    h->out = NULL;
    h->out_len = h->out_off = h->out_cap = 0;
}
