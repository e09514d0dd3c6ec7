/*
 * ws_pmd.c — permessage-deflate for the benchmark clients (see ws_pmd.h).
 *
 * Where zlib's streams live, so that a client of 1000 or 10,000
 * connections costs little:
 * - what we send, when the server asked for client_no_context_takeover,
 *   is compressed whole by one deflater of the thread, reset per message;
 *   with context takeover each connection has its own (allocated at its
 *   first compressed message);
 * - what we receive, when the server keeps no context and a message comes
 *   whole in one read, is inflated by one inflater of the thread (and its
 *   result may be reused: wsc_pmd_config.memo); a message split over reads,
 *   or any message of a server that keeps its context, goes through the
 *   connection's own inflater.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "ws_pmd.h"

static const uint8_t TAIL[4] = { 0x00, 0x00, 0xff, 0xff };   /* RFC 7692 §7.2.2 */

struct wsc_pmd_conn {
    z_stream inf, def;
    int      inf_ready, def_ready;
    uint8_t *gather;                /* memo: a message split over reads */
    size_t   gather_len, gather_cap;
};

/* Sets of MEMO_WAYS entries, the least recently used one replaced: a
 * fan-out keeps up to a window of messages (128) in flight, and every
 * receiver goes through them in the same order, so two messages of one
 * slot of a direct-mapped table would evict each other at every receiver. */
#define MEMO_SETS  1024
#define MEMO_WAYS  4
#define MEMO_MAX   (64 * 1024)      /* larger messages are not kept */

typedef struct {
    uint64_t hash, used;            /* used: when last found or put (t.clock) */
    size_t   zlen, len;
    uint8_t *z;                     /* the compressed bytes, then the inflated ones */
    int      utf8_ok;               /* the inflated bytes were checked as text */
} memo_entry;

/* What a thread shares between its connections. */
static _Thread_local struct {
    z_stream inf, def;
    int      inf_bits, def_bits;    /* window of each stream; 0: not set up */
    uint8_t *ibuf, *dbuf;           /* inflated message / compressed message */
    size_t   icap, dcap;
    memo_entry *memo;               /* MEMO_SETS x MEMO_WAYS, allocated at first use */
    uint64_t clock;
} t;

const char *wsc_pmd_offer_arg(const char *arg)
{
    if (strcmp(arg, "chromium") == 0) {
        return WSC_PMD_OFFER_CHROMIUM;
    }
    return strcmp(arg, "none") == 0 ? NULL : arg;
}

/* ---- the answer ---- */

/* The next ';'-separated token of [*s, end), trimmed; 0 at the end. */
static int token(const char **s, const char *end, const char **tok, size_t *len)
{
    const char *p = *s, *e;

    if (p >= end) {
        return 0;
    }
    e = memchr(p, ';', (size_t)(end - p));
    *s = e ? e + 1 : end;
    e = e ? e : end;
    while (p < e && (*p == ' ' || *p == '\t')) {
        p++;
    }
    while (e > p && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    *tok = p;
    *len = (size_t)(e - p);
    return 1;
}

/* "name" or "name=value" or name="value": 1 and the parts if tok is one. */
static int param(const char *tok, size_t len, size_t *nlen, int *val)
{
    const char *eq = memchr(tok, '=', len), *v, *ve = tok + len;

    *val = -1;
    *nlen = eq ? (size_t)(eq - tok) : len;
    if (!eq) {
        return 1;
    }
    v = eq + 1;
    if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
        v++;
        ve--;
    }
    if (ve - v < 1 || ve - v > 2) {
        return 0;
    }
    *val = 0;
    for (; v < ve; v++) {
        if (*v < '0' || *v > '9') {
            return 0;
        }
        *val = *val * 10 + (*v - '0');
    }
    return 1;
}

int wsc_pmd_answer(const char *offer, const char *value, size_t len, wsc_pmd_params *p,
                   const char **why)
{
    const char *s = value, *end = value + len, *tok;
    size_t tl, nl;
    int v, seen = 0;

    memset(p, 0, sizeof *p);
    if (!value) {
        *why = offer ? "the server declined permessage-deflate" : NULL;
        return offer ? -1 : 0;
    }
    if (!offer) {
        *why = "Sec-WebSocket-Extensions in the answer, but nothing was offered";
        return -1;
    }
    if (memchr(value, ',', len) || !token(&s, end, &tok, &tl) || tl != 18
        || strncasecmp(tok, "permessage-deflate", 18) != 0) {
        *why = "the answer is not one permessage-deflate";
        return -1;
    }
    p->on = 1;
    p->server_max_window_bits = p->client_max_window_bits = 15;
    while (token(&s, end, &tok, &tl)) {
        static const char *const names[] = { "server_no_context_takeover",
                                              "client_no_context_takeover",
                                              "server_max_window_bits",
                                              "client_max_window_bits" };
        int i;
        if (!param(tok, tl, &nl, &v)) {
            *why = "a parameter of the answer has a bad value";
            return -1;
        }
        for (i = 0; i < 4; i++) {
            if (nl == strlen(names[i]) && strncasecmp(tok, names[i], nl) == 0) {
                break;
            }
        }
        /* Each once; the flags without a value, the window sizes with one in
         * 8..15; client_max_window_bits only if we offered it (§7.1.2.2). */
        if (i == 4 || (seen & (1 << i)) || (i < 2 && v != -1)
            || (i >= 2 && (v < 8 || v > 15))
            || (i == 3 && !strstr(offer, "client_max_window_bits"))) {
            *why = "the answer has a parameter a client must refuse";
            return -1;
        }
        seen |= 1 << i;
        switch (i) {
        case 0: p->server_no_context_takeover = 1; break;
        case 1: p->client_no_context_takeover = 1; break;
        case 2: p->server_max_window_bits = v; break;
        default: p->client_max_window_bits = v; break;
        }
    }
    return 0;
}

/* ---- buffers ---- */

/* Makes *buf at least want bytes long; 0, or -1 out of memory. */
static int reserve(uint8_t **buf, size_t *cap, size_t want)
{
    size_t c = *cap ? *cap : 4096;
    uint8_t *p;

    if (want <= *cap) {
        return 0;
    }
    while (c < want) {
        c *= 2;
    }
    if (!(p = realloc(*buf, c))) {
        return -1;
    }
    *buf = p;
    *cap = c;
    return 0;
}

/* ---- sending ---- */

int wsc_pmd_deflate(wsc_conn *c, const uint8_t *in, size_t len, const uint8_t **out,
                    size_t *outlen)
{
    const wsc_pmd_params *p = &c->pmd;
    int bits = p->client_max_window_bits, keep = !p->client_no_context_takeover;
    z_stream *zs;
    size_t bound;

    /* zlib cannot write raw deflate for a 256-byte window (it would use
     * 512): with client_max_window_bits=8 everything goes as it is. */
    if (!p->on || len < c->pmd_cfg->compress_min || bits < 9) {
        return 0;
    }
    if (keep) {
        if (!c->z && !(c->z = calloc(1, sizeof *c->z))) {
            return -1;
        }
        zs = &c->z->def;
        if (!c->z->def_ready) {
            if (deflateInit2(zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8,
                             Z_DEFAULT_STRATEGY) != Z_OK) {
                return -1;
            }
            c->z->def_ready = 1;
        }
    }
    else {
        zs = &t.def;
        if (t.def_bits != bits) {
            if (t.def_bits) {
                deflateEnd(zs);
                t.def_bits = 0;
            }
            memset(zs, 0, sizeof *zs);
            if (deflateInit2(zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8,
                             Z_DEFAULT_STRATEGY) != Z_OK) {
                return -1;
            }
            t.def_bits = bits;
        }
        else if (deflateReset(zs) != Z_OK) {
            return -1;
        }
    }
    /* deflateBound leaves out the flush's empty block: 16 more. */
    bound = deflateBound(zs, (uLong)len) + 16;
    if (reserve(&t.dbuf, &t.dcap, bound) != 0) {
        return -1;
    }
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)len;
    zs->next_out = t.dbuf;
    zs->avail_out = (uInt)t.dcap;
    if (deflate(zs, Z_SYNC_FLUSH) != Z_OK || zs->avail_in != 0 || zs->avail_out == 0) {
        return -1;
    }
    *outlen = t.dcap - zs->avail_out;
    if (*outlen < 4 || memcmp(t.dbuf + *outlen - 4, TAIL, 4) != 0) {
        return -1;
    }
    *outlen -= 4;                    /* §7.2.1: the flush's tail is not sent */
    *out = t.dbuf;
    c->traffic.zmsgs_out++;
    return 1;
}

/* ---- receiving ---- */

/* The memo's set of a message: its length and its first and last 32
 * bytes (the first ones are mostly deflate's Huffman tables, alike between
 * similar messages; two messages alike in all of these are told apart by
 * the full comparison), mixed with murmur3's finalizer. */
static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n, w;
    size_t i, tail = n > 32 ? n - 32 : 0;

    for (i = 0; i + 8 <= n && i < 32; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
    }
    for (i = tail > i ? tail : i; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    }
    for (; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static memo_entry *memo_set(uint64_t h)
{
    if (!t.memo && !(t.memo = calloc(MEMO_SETS * MEMO_WAYS, sizeof *t.memo))) {
        return NULL;
    }
    return &t.memo[h % MEMO_SETS * MEMO_WAYS];
}

static memo_entry *memo_find(const uint8_t *z, size_t zlen, uint64_t h)
{
    memo_entry *set = memo_set(h);

    for (int i = 0; set && i < MEMO_WAYS; i++) {
        memo_entry *e = &set[i];
        if (e->z && e->hash == h && e->zlen == zlen && memcmp(e->z, z, zlen) == 0) {
            e->used = ++t.clock;
            return e;
        }
    }
    return NULL;
}

static void memo_put(const uint8_t *z, size_t zlen, uint64_t h, const uint8_t *plain,
                     size_t len, int utf8_ok)
{
    memo_entry *set = memo_set(h), *e;
    uint8_t *mem;

    if (!set || zlen > MEMO_MAX || len > MEMO_MAX || !(mem = malloc(zlen + len + 1))) {
        return;
    }
    e = set;
    for (int i = 1; i < MEMO_WAYS; i++) {
        if (set[i].used < e->used) {
            e = &set[i];
        }
    }
    free(e->z);
    memcpy(mem, z, zlen);
    memcpy(mem + zlen, plain, len);
    *e = (memo_entry){ h, ++t.clock, zlen, len, mem, utf8_ok };
}

/* An inflater for window bits: the thread's (reset), or c's. */
static z_stream *inflater(wsc_conn *c, int shared, int reset, int bits)
{
    z_stream *zs;
    int *ready;

    if (shared) {
        zs = &t.inf;
        if (t.inf_bits == bits) {
            return inflateReset(zs) == Z_OK ? zs : NULL;
        }
        if (t.inf_bits) {
            inflateEnd(zs);
            t.inf_bits = 0;
        }
        memset(zs, 0, sizeof *zs);
        if (inflateInit2(zs, -bits) != Z_OK) {
            return NULL;
        }
        t.inf_bits = bits;
        return zs;
    }
    if (!c->z && !(c->z = calloc(1, sizeof *c->z))) {
        return NULL;
    }
    zs = &c->z->inf;
    ready = &c->z->inf_ready;
    if (!*ready) {
        if (inflateInit2(zs, -bits) != Z_OK) {
            return NULL;
        }
        *ready = 1;
        return zs;
    }
    return !reset || inflateReset(zs) == Z_OK ? zs : NULL;
}

/* Inflates len bytes (and the tail, if last) into t.ibuf from 0; *outlen:
 * how many came out.  NULL, or why it failed. */
static const char *inflate_into(z_stream *zs, const uint8_t *in, size_t len, int last,
                                uint64_t room, size_t *outlen)
{
    int tail_fed = 0;
    size_t have = 0;

    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)len;
    for (;;) {
        int r;
        if (zs->avail_in == 0 && last && !tail_fed) {
            zs->next_in = (Bytef *)(uintptr_t)TAIL;
            zs->avail_in = 4;
            tail_fed = 1;
        }
        if (have == t.icap) {
            if (have > room) {
                return "the message inflates past its size limit";
            }
            if (reserve(&t.ibuf, &t.icap, have + 1) != 0) {
                return "out of memory";
            }
        }
        zs->next_out = t.ibuf + have;
        zs->avail_out = (uInt)(t.icap - have);
        r = inflate(zs, Z_SYNC_FLUSH);
        have = t.icap - zs->avail_out;
        if (have > room) {
            return "the message inflates past its size limit";
        }
        if (r == Z_STREAM_END) {
            break;                   /* a final block: nothing may follow */
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            return zs->msg ? zs->msg : "corrupt deflate data";
        }
        if (zs->avail_out != 0 && zs->avail_in == 0 && (tail_fed || !last)) {
            break;                   /* all in, and zlib had room for all out */
        }
    }
    *outlen = have;
    return NULL;
}

static int fail(wsc_conn *c, const char *why)
{
    wsc_end(c, WSC_END_PROTOCOL, why);
    return 1;
}

/* Hands inflated bytes to the tool, text checked as UTF-8 (unless checked
 * already: utf8_ok). */
static int deliver(wsc_conn *c, wsock_opcode op, const uint8_t *data, size_t len, int first,
                   int last, int utf8_ok)
{
    if (op == WSOCK_OP_TEXT && !utf8_ok) {
        if (first) {
            wsock_utf8_reset(&c->msg_utf8);
        }
        if (wsock_utf8_feed(&c->msg_utf8, data, len) == WSOCK_UTF8_INVALID
            || (last && c->msg_utf8.need != 0)) {
            return fail(c, "inflated text is not valid UTF-8");
        }
    }
    return c->ops->on_data(c, op, data, len, first, last);
}

int wsc_pmd_inflate(wsc_conn *c, wsock_opcode op, const uint8_t *data, size_t len,
                    int first, int last)
{
    int keep = !c->pmd.server_no_context_takeover;
    int whole = first && last && !keep;     /* the thread's inflater will do */
    uint64_t limit = c->parser.max_message_size, h = 0;
    size_t out;
    const char *why;
    z_stream *zs;

    if (first) {
        c->msg_inflated = 0;
        c->traffic.zmsgs_in++;
    }
    if (!keep && c->pmd_cfg->memo && !(first && last)) {
        /* Split over reads: gathered, so that it can come from the memo
         * too (its size is bounded by the parser's limit). */
        struct wsc_pmd_conn *z = c->z ? c->z : (c->z = calloc(1, sizeof *c->z));
        if (!z) {
            return fail(c, "out of memory");
        }
        if (first) {
            z->gather_len = 0;
        }
        if (reserve(&z->gather, &z->gather_cap, z->gather_len + len) != 0) {
            return fail(c, "out of memory");
        }
        memcpy(z->gather + z->gather_len, data, len);
        z->gather_len += len;
        if (!last) {
            return 0;
        }
        data = z->gather;
        len = z->gather_len;
        first = whole = 1;
    }
    if (whole && c->pmd_cfg->memo) {
        memo_entry *e = memo_find(data, len, h = hash_bytes(data, len));
        if (e) {
            c->traffic.memo_hits++;
            return deliver(c, op, e->z + e->zlen, e->len, 1, 1,
                           e->utf8_ok && op == WSOCK_OP_TEXT);
        }
    }
    if (!(zs = inflater(c, whole, first && !keep, c->pmd.server_max_window_bits))) {
        return fail(c, "zlib could not set up an inflater");
    }
    why = inflate_into(zs, data, len, last, limit ? limit - c->msg_inflated : UINT64_MAX,
                       &out);
    if (why) {
        return fail(c, why);
    }
    c->msg_inflated += out;
    if (out == 0 && !first && !last) {
        return 0;                    /* nothing new for the tool yet */
    }
    if (whole && c->pmd_cfg->memo) {
        /* Text is checked once, here, for every later delivery of the same
         * bytes (the tool gets them only if they pass). */
        int utf8_ok = op == WSOCK_OP_TEXT && wsock_utf8_valid(t.ibuf, out);
        if (op == WSOCK_OP_TEXT && !utf8_ok) {
            return fail(c, "inflated text is not valid UTF-8");
        }
        memo_put(data, len, h, t.ibuf, out, utf8_ok);
        return deliver(c, op, t.ibuf, out, 1, 1, utf8_ok);
    }
    /* "first" for the tool is the first chunk it gets of the message. */
    return deliver(c, op, t.ibuf, out, first, last, 0);
}

void wsc_pmd_conn_free(wsc_conn *c)
{
    if (c->z) {
        if (c->z->inf_ready) {
            inflateEnd(&c->z->inf);
        }
        if (c->z->def_ready) {
            deflateEnd(&c->z->def);
        }
        free(c->z->gather);
        free(c->z);
        c->z = NULL;
    }
}

void wsc_thread_done(void)
{
    if (t.inf_bits) {
        inflateEnd(&t.inf);
    }
    if (t.def_bits) {
        deflateEnd(&t.def);
    }
    if (t.memo) {
        for (size_t i = 0; i < MEMO_SETS * MEMO_WAYS; i++) {
            free(t.memo[i].z);
        }
    }
    free(t.memo);
    free(t.ibuf);
    free(t.dbuf);
    memset(&t, 0, sizeof t);
}
