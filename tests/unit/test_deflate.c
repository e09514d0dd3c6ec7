/*
 * test_deflate.c — Check unit tests for src/codec/wsock_deflate (the
 * permessage-deflate stage, RFC 7692 §7.2).
 *
 * What the stage writes is checked by plain zlib (an inflate of our
 * output with the tail put back), what it reads is written by plain zlib
 * and copied from RFC 7692 §7.2.3, so a bug on both sides cannot cancel
 * out.  zlib's memory is counted with a counting zalloc.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "wsock_deflate.h"

#include "test_util.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* =====================================================================
 * Helpers
 * ================================================================== */

/* A sink that records what it gets and may stop after some calls. */
typedef struct {
    tu_buf   bytes;
    unsigned calls;
    unsigned stop_after;   /* 0: never stop */
    size_t   max_chunk;
} rec_sink;

static int rec_put(void *ud, const uint8_t *data, size_t len)
{
    rec_sink *r = ud;

    TU_CHECK(len > 0 && len <= WSOCK_INFLATE_CHUNK, "sink chunk of %zu bytes", len);
    tu_buf_put(&r->bytes, data, len);
    r->calls++;
    if (len > r->max_chunk) {
        r->max_chunk = len;
    }
    return r->stop_after && r->calls >= r->stop_after;
}

/* Feeds a message's payload in chunks of chunk bytes (0: whole), last on
 * the final one; the sink's bytes must add up to *total. */
static wsock_inflate_result inflate_msg(wsock_inflater *inf, const uint8_t *in, size_t len,
                                        size_t chunk, uint64_t limit, rec_sink *r,
                                        uint64_t *total)
{
    wsock_inflate_result res = WSOCK_INFLATE_OK;
    size_t off = 0, before = r->bytes.len;

    *total = 0;
    if (chunk == 0) {
        chunk = len ? len : 1;
    }
    do {
        size_t n = len - off < chunk ? len - off : chunk;

        res = wsock_inflate(inf, in + off, n, off + n == len, limit, total, rec_put, r);
        off += n;
    } while (res == WSOCK_INFLATE_OK && off < len);
    TU_CHECK(r->bytes.len - before == *total, "sink got %zu bytes, *total says %llu",
             r->bytes.len - before, (unsigned long long)*total);
    TU_CHECK(!limit || *total <= limit, "total %llu over the limit %llu",
             (unsigned long long)*total, (unsigned long long)limit);
    return res;
}

/* One message through wsock_deflate_message, into exactly
 * wsock_deflate_bound(len) bytes (so a bound too small fails). */
static tu_buf deflate_msg(wsock_deflater *d, const uint8_t *in, size_t len, int keep)
{
    tu_buf b = { 0 };
    size_t outlen = 0, cap = wsock_deflate_bound(len);

    tu_buf_reserve(&b, cap);
    TU_CHECK(wsock_deflate_message(d, in, len, keep, b.p, cap, &outlen) == 0,
             "deflate of %zu bytes failed (level %d, window %d, mem %d)", len, d->level,
             d->window_bits, d->mem_level);
    TU_CHECK(outlen <= cap, "outlen %zu over the cap %zu", outlen, cap);
    b.len = outlen;
    return b;
}

/* One message on its own, through a deflater of its own (15 bits,
 * mem_level 8). */
static tu_buf deflate_alone(const uint8_t *in, size_t len, int level)
{
    wsock_deflater d;
    tu_buf c;

    wsock_deflater_init(&d, level, 15, 8);
    c = deflate_msg(&d, in, len, 0);
    wsock_deflater_free(&d);
    return c;
}

/* Plain zlib, raw deflate, one sync-flushed message, tail removed: an
 * encoder independent of the one under test.  z: a caller's stream
 * (context kept across calls) or NULL for a fresh one. */
static tu_buf zlib_deflate(z_stream *z, const uint8_t *in, size_t len, int level, int wb,
                           int flush)
{
    z_stream local;
    tu_buf b = { 0 };
    int rc;

    if (!z) {
        memset(&local, 0, sizeof(local));
        ck_assert_int_eq(deflateInit2(&local, level, Z_DEFLATED, -wb, 8, Z_DEFAULT_STRATEGY),
                         Z_OK);
        z = &local;
    }
    tu_buf_reserve(&b, len + len / 8 + 64);
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)len;
    do {
        tu_buf_reserve(&b, 4096);
        z->next_out = b.p + b.len;
        z->avail_out = (uInt)(b.cap - b.len);
        rc = deflate(z, flush);
        ck_assert(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR);
        b.len = b.cap - z->avail_out;
    } while (z->avail_out == 0);
    if (flush == Z_SYNC_FLUSH) {
        ck_assert_uint_ge(b.len, 4);
        ck_assert(memcmp(b.p + b.len - 4, "\x00\x00\xff\xff", 4) == 0);
        b.len -= 4;
    }
    if (z == &local) {
        deflateEnd(&local);
    }
    return b;
}

/* Plain zlib inflate of a payload with the tail put back (RFC 7692
 * §7.2.2): the decoder independent of the one under test. */
static tu_buf zlib_inflate(z_stream *z, const uint8_t *in, size_t len, int wb)
{
    z_stream local;
    tu_buf b = { 0 }, src = { 0 };
    int rc;

    if (!z) {
        memset(&local, 0, sizeof(local));
        ck_assert_int_eq(inflateInit2(&local, -wb), Z_OK);
        z = &local;
    }
    tu_buf_put(&src, in, len);
    tu_buf_put(&src, "\x00\x00\xff\xff", 4);
    z->next_in = src.p;
    z->avail_in = (uInt)src.len;
    do {
        tu_buf_reserve(&b, 64 * KIB);
        z->next_out = b.p + b.len;
        z->avail_out = (uInt)(b.cap - b.len);
        rc = inflate(z, Z_SYNC_FLUSH);
        ck_assert_msg(rc == Z_OK || rc == Z_BUF_ERROR, "zlib inflate: %d", rc);
        b.len = b.cap - z->avail_out;
    } while (z->avail_in > 0 || z->avail_out == 0);
    if (z == &local) {
        inflateEnd(&local);
    }
    tu_buf_free(&src);
    return b;
}

static void fill_random(tu_rng *rng, uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)tu_rand(rng);
    }
}

/* Chat-like text: words from a small vocabulary, so it compresses. */
static void fill_text(tu_rng *rng, uint8_t *p, size_t len)
{
    static const char *const words[] = {
        "{\"room\":", "\"lobby\"", ",\"user\":", "\"alice\"", "\"bob\"", ",\"text\":",
        "hello", "world", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
        " ", " ", ", ", ".", "}\n", "\xc3\xa9t\xc3\xa9", "\xe2\x82\xac", "42"
    };
    size_t i = 0;

    while (i < len) {
        const char *w = words[tu_rand(rng) % TU_ARRAY_SIZE(words)];
        for (size_t j = 0; w[j] && i < len; j++) {
            p[i++] = (uint8_t)w[j];
        }
    }
}

enum { DATA_TEXT, DATA_BINARY, DATA_RANDOM, DATA_KINDS };

/* len bytes of one kind: text, binary with structure (repeats, zeros,
 * counters), or incompressible random. */
static uint8_t *make_data(int kind, size_t len, uint64_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    tu_rng rng;

    ck_assert_ptr_nonnull(p);
    tu_rng_seed(&rng, seed);
    switch (kind) {
    case DATA_TEXT:
        fill_text(&rng, p, len);
        break;
    case DATA_BINARY:
        for (size_t i = 0; i < len; i++) {
            p[i] = (i / 64) % 3 == 0 ? 0 : (uint8_t)(i * 7 + (i >> 9));
        }
        break;
    default:
        fill_random(&rng, p, len);
        break;
    }
    return p;
}

/* Counting zalloc: bytes zlib holds now and at most, an optional budget. */
typedef struct {
    size_t live, peak, budget;  /* budget 0: none */
    unsigned failed;
} zcount;

static voidpf count_alloc(voidpf opaque, uInt items, uInt size)
{
    zcount *c = opaque;
    size_t n = (size_t)items * size;
    size_t *p;

    if (c->budget && c->live + n > c->budget) {
        c->failed++;
        return Z_NULL;
    }
    p = malloc(sizeof(size_t) + n);
    if (!p) {
        return Z_NULL;
    }
    *p = n;
    c->live += n;
    if (c->live > c->peak) {
        c->peak = c->live;
    }
    return p + 1;
}

static void count_free(voidpf opaque, voidpf ptr)
{
    zcount *c = opaque;
    size_t *p = (size_t *)ptr - 1;

    c->live -= *p;
    free(p);
}

static void count_zlib(z_stream *zs, zcount *c)
{
    zs->zalloc = count_alloc;
    zs->zfree = count_free;
    zs->opaque = c;
}

static void assert_bytes(const tu_buf *got, const uint8_t *want, size_t len, const char *what)
{
    TU_CHECK(got->len == len, "%s: %zu bytes, want %zu", what, got->len, len);
    TU_CHECK(len == 0 || memcmp(got->p, want, len) == 0, "%s: bytes differ", what);
}

/* =====================================================================
 * Round trips
 * ================================================================== */

static const size_t rt_sizes[] = {
    0, 1, 2, 3, 4, 5, 7, 8, 13, 100, 127, 128, 129, 255, 256, 1000, 4095, 4096,
    16383, 16384, 16385, 65535, 65536, 65537, 100000, 262144, MIB
};

/* _i: kind * sizes + size index.  Through our deflater and inflater, and
 * our deflater's output through plain zlib. */
START_TEST(test_roundtrip_sizes)
{
    int kind = _i / (int)TU_ARRAY_SIZE(rt_sizes);
    size_t len = rt_sizes[_i % (int)TU_ARRAY_SIZE(rt_sizes)];
    uint8_t *data = make_data(kind, len, 1000u + (unsigned)_i);
    wsock_inflater inf;
    rec_sink r = { 0 };
    uint64_t total;
    tu_buf c = deflate_alone(data, len, 1), z;

    wsock_inflater_init(&inf, 15);
    if (len == 0) {
        ck_assert_uint_eq(c.len, 1);   /* RFC 7692 §7.2.3.6 */
        ck_assert_uint_eq(c.p[0], 0x00);
    }
    if (kind == DATA_TEXT && len >= 1000) {
        ck_assert_msg(c.len < len / 2, "text of %zu bytes compressed to %zu", len, c.len);
    }
    /* limit = the exact size: fits */
    ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, 0, len ? len : 1, &r, &total),
                     WSOCK_INFLATE_OK);
    assert_bytes(&r.bytes, data, len, "round trip");
    ck_assert_uint_le(r.max_chunk, WSOCK_INFLATE_CHUNK);
    z = zlib_inflate(NULL, c.p, c.len, 15);
    assert_bytes(&z, data, len, "plain zlib inflate of our output");
    wsock_inflater_end_message(&inf, 0);
    ck_assert_int_eq(inf.ready, 0);
    wsock_inflater_free(&inf);
    tu_buf_free(&c);
    tu_buf_free(&z);
    tu_buf_free(&r.bytes);
    free(data);
}
END_TEST

/* Every chunking 1..17 of small messages, with and without a separate
 * empty last chunk, gives the same bytes. */
START_TEST(test_chunked_input)
{
    static const size_t lens[] = { 0, 1, 5, 64, 300, 1500 };

    for (int kind = 0; kind < DATA_KINDS; kind++) {
        for (size_t li = 0; li < TU_ARRAY_SIZE(lens); li++) {
            size_t len = lens[li];
            uint8_t *data = make_data(kind, len, 77u + li);
            tu_buf c = deflate_alone(data, len, 6);

            for (size_t chunk = 1; chunk <= 17; chunk++) {
                for (int empty_last = 0; empty_last < 2; empty_last++) {
                    wsock_inflater inf;
                    rec_sink r = { 0 };
                    uint64_t total = 0;
                    wsock_inflate_result res = WSOCK_INFLATE_OK;

                    wsock_inflater_init(&inf, 15);
                    for (size_t off = 0; off < c.len && res == WSOCK_INFLATE_OK; off += chunk) {
                        size_t n = c.len - off < chunk ? c.len - off : chunk;
                        res = wsock_inflate(&inf, c.p + off, n, !empty_last && off + n == c.len,
                                            0, &total, rec_put, &r);
                    }
                    if (empty_last && res == WSOCK_INFLATE_OK) {
                        res = wsock_inflate(&inf, NULL, 0, 1, 0, &total, rec_put, &r);
                    }
                    TU_CHECK(res == WSOCK_INFLATE_OK, "kind %d len %zu chunk %zu: result %d",
                             kind, len, chunk, res);
                    assert_bytes(&r.bytes, data, len, "chunked inflate");
                    TU_CHECK(total == len, "total %llu", (unsigned long long)total);
                    wsock_inflater_free(&inf);
                    tu_buf_free(&r.bytes);
                }
            }
            tu_buf_free(&c);
            free(data);
        }
    }
}
END_TEST

/* Many messages on one pair of streams, mixed with empty ones. */
static void run_conversation(int keep, int level, int wb_out, int wb_in, int mem)
{
    wsock_deflater d;
    wsock_inflater inf;
    tu_rng rng;

    wsock_deflater_init(&d, level, wb_out, mem);
    wsock_inflater_init(&inf, wb_in);
    tu_rng_seed(&rng, (uint64_t)(keep * 1000 + level * 100 + wb_out * 10 + mem));
    for (int m = 0; m < 12; m++) {
        size_t len = m % 4 == 3 ? 0 : tu_rand_range(&rng, 1, 3000);
        uint8_t *data = make_data(m % 3 == 2 ? DATA_BINARY : DATA_TEXT, len, tu_rand(&rng) % 8);
        rec_sink r = { 0 };
        uint64_t total;
        tu_buf c = deflate_msg(&d, data, len, keep);
        wsock_inflate_result res = inflate_msg(&inf, c.p, c.len, 0, 0, &r, &total);

        TU_CHECK(res == WSOCK_INFLATE_OK, "keep %d level %d window %d->%d mem %d msg %d: %d",
                 keep, level, wb_out, wb_in, mem, m, res);
        assert_bytes(&r.bytes, data, len, "conversation");
        wsock_inflater_end_message(&inf, keep);
        TU_CHECK(keep || inf.ready == 0, "no context: zlib state freed");
        tu_buf_free(&c);
        tu_buf_free(&r.bytes);
        free(data);
    }
    wsock_inflater_free(&inf);
    wsock_deflater_free(&d);
}

/* Window bits 9..15, deflated and inflated at the same and at larger
 * windows, with and without context takeover. _i: window bits - 9. */
START_TEST(test_window_bits)
{
    int wb = 9 + _i;
    static const int levels[] = { 0, 1, 9 };
    static const int mems[] = { 1, 8, 9 };

    for (int keep = 0; keep < 2; keep++) {
        for (size_t li = 0; li < TU_ARRAY_SIZE(levels); li++) {
            for (size_t mi = 0; mi < TU_ARRAY_SIZE(mems); mi++) {
                run_conversation(keep, levels[li], wb, wb, mems[mi]);
            }
        }
        for (int in_wb = wb + 1; in_wb <= 15; in_wb++) {
            run_conversation(keep, 6, wb, in_wb, 8);
        }
    }
}
END_TEST

/* zlib resolves a reference from its window or from what the same call
 * wrote: 20000 bytes back is beyond a 16 KiB chunk and a 512-byte
 * window, so the inflater does not read past the window it was given.
 * (Nearer references within one chunk are resolved whatever the window:
 * the window is memory, not a check of the peer.) */
START_TEST(test_window_too_small_is_corrupt)
{
    size_t len = 40000;
    uint8_t *data = make_data(DATA_RANDOM, len, 5);
    wsock_inflater inf;
    rec_sink r = { 0 };
    uint64_t total;
    tu_buf c;

    memcpy(data + 20000, data, 20000);   /* second half repeats the first */
    c = deflate_alone(data, len, 6);
    ck_assert_uint_lt(c.len, 25000);     /* the repeat was found */
    wsock_inflater_init(&inf, 9);
    ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, 0, 0, &r, &total), WSOCK_INFLATE_CORRUPT);
    wsock_inflater_free(&inf);
    tu_buf_free(&c);
    tu_buf_free(&r.bytes);
    free(data);
}
END_TEST

/* A peer that agreed to a 256-byte window and deflates with zlib asks
 * for 512 bytes (zlib has no raw deflate with 8 bits), yet never refers
 * further back than 250: an inflater at 8 bits reads it. */
START_TEST(test_window_8_peer)
{
    size_t len = 40000;
    uint8_t *near = make_data(DATA_RANDOM, len, 6);
    wsock_inflater inf;
    rec_sink r = { 0 };
    uint64_t total;
    tu_buf c;

    for (size_t i = 400; i < len; i++) {
        near[i] = near[i - 200];   /* repeats 200 bytes back */
    }
    c = zlib_deflate(NULL, near, len, 6, 9, Z_SYNC_FLUSH);
    ck_assert_uint_lt(c.len, 1000);
    wsock_inflater_init(&inf, 8);
    ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, 0, 0, &r, &total), WSOCK_INFLATE_OK);
    assert_bytes(&r.bytes, near, len, "window 8 peer");
    wsock_inflater_free(&inf);
    tu_buf_free(&c);
    tu_buf_free(&r.bytes);
    free(near);
}
END_TEST

/* With context takeover a repeated message costs a few bytes; without,
 * each message is compressed alone, and an inflater that drops its
 * context refuses a message that refers to the previous one. */
START_TEST(test_context_takeover)
{
    size_t len = 2000;
    uint8_t *data = make_data(DATA_TEXT, len, 9);
    wsock_deflater on, off;
    wsock_inflater keep, drop;
    tu_buf a1, a2, b1, b2;
    rec_sink r = { 0 };
    uint64_t total;

    wsock_deflater_init(&on, 1, 15, 8);
    wsock_deflater_init(&off, 1, 15, 8);
    a1 = deflate_msg(&on, data, len, 1);
    a2 = deflate_msg(&on, data, len, 1);
    b1 = deflate_msg(&off, data, len, 0);
    b2 = deflate_msg(&off, data, len, 0);
    ck_assert_msg(a2.len * 4 < a1.len, "takeover: %zu then %zu", a1.len, a2.len);
    ck_assert_uint_eq(b1.len, b2.len);
    ck_assert(memcmp(b1.p, b2.p, b1.len) == 0);
    ck_assert(a1.len == b1.len && memcmp(a1.p, b1.p, a1.len) == 0);

    /* takeover on both sides */
    wsock_inflater_init(&keep, 15);
    ck_assert_int_eq(inflate_msg(&keep, a1.p, a1.len, 0, 0, &r, &total), WSOCK_INFLATE_OK);
    wsock_inflater_end_message(&keep, 1);
    ck_assert_int_ne(keep.ready, 0);
    ck_assert_int_eq(inflate_msg(&keep, a2.p, a2.len, 3, 0, &r, &total), WSOCK_INFLATE_OK);
    ck_assert_uint_eq(total, len);
    ck_assert_uint_eq(r.bytes.len, 2 * len);
    ck_assert(memcmp(r.bytes.p + len, data, len) == 0);
    wsock_inflater_end_message(&keep, 1);

    /* a receiver without context cannot read the second message */
    wsock_inflater_init(&drop, 15);
    ck_assert_int_eq(inflate_msg(&drop, a1.p, a1.len, 0, 0, &r, &total), WSOCK_INFLATE_OK);
    wsock_inflater_end_message(&drop, 0);
    ck_assert_int_eq(drop.ready, 0);
    ck_assert_int_eq(inflate_msg(&drop, a2.p, a2.len, 0, 0, &r, &total),
                     WSOCK_INFLATE_CORRUPT);
    wsock_inflater_end_message(&drop, 0);

    /* a reset inflater keeps its memory, but nothing of the last peer's
     * message is reachable: one inflater serves a thread's connections */
    {
        wsock_inflater shared;

        wsock_inflater_init(&shared, 15);
        ck_assert_int_eq(inflate_msg(&shared, a1.p, a1.len, 0, 0, &r, &total),
                         WSOCK_INFLATE_OK);
        wsock_inflater_reset(&shared);
        ck_assert_int_ne(shared.ready, 0);
        ck_assert_int_eq(inflate_msg(&shared, a2.p, a2.len, 0, 0, &r, &total),
                         WSOCK_INFLATE_CORRUPT);
        wsock_inflater_reset(&shared);
        r.bytes.len = 0;
        ck_assert_int_eq(inflate_msg(&shared, b2.p, b2.len, 0, 0, &r, &total),
                         WSOCK_INFLATE_OK);
        assert_bytes(&r.bytes, data, len, "after a reset");
        wsock_inflater_free(&shared);
        wsock_inflater_reset(&shared);          /* harmless once freed */
    }

    /* ... but it reads messages compressed without takeover */
    for (int m = 0; m < 3; m++) {
        r.bytes.len = 0;
        ck_assert_int_eq(inflate_msg(&drop, b2.p, b2.len, 0, 0, &r, &total), WSOCK_INFLATE_OK);
        assert_bytes(&r.bytes, data, len, "no takeover");
        wsock_inflater_end_message(&drop, 0);
        ck_assert_int_eq(drop.ready, 0);
    }

    /* plain zlib reads the takeover stream too */
    {
        z_stream z;
        tu_buf o1, o2;

        memset(&z, 0, sizeof(z));
        ck_assert_int_eq(inflateInit2(&z, -15), Z_OK);
        o1 = zlib_inflate(&z, a1.p, a1.len, 15);
        o2 = zlib_inflate(&z, a2.p, a2.len, 15);
        assert_bytes(&o1, data, len, "zlib, first");
        assert_bytes(&o2, data, len, "zlib, second");
        inflateEnd(&z);
        tu_buf_free(&o1);
        tu_buf_free(&o2);
    }
    wsock_inflater_free(&keep);
    wsock_inflater_free(&drop);
    wsock_deflater_free(&on);
    wsock_deflater_free(&off);
    tu_buf_free(&a1);
    tu_buf_free(&a2);
    tu_buf_free(&b1);
    tu_buf_free(&b2);
    tu_buf_free(&r.bytes);
    free(data);
}
END_TEST

/* =====================================================================
 * Input from independent encoders
 * ================================================================== */

typedef struct {
    const char *name;
    const char *hex;   /* payloads of one connection, "|" between messages */
    const char *text;  /* what they inflate to, "|" between messages */
    int keep;          /* context takeover */
} rfc_case;

/* RFC 7692 §7.2.3 */
static const rfc_case rfc_cases[] = {
    { "7.2.3.1 one block", "f248cdc9c90700", "Hello", 0 },
    { "7.2.3.2 shared window", "f248cdc9c90700|f200110000", "Hello|Hello", 1 },
    { "7.2.3.3 BFINAL set", "f348cdc9c9070000", "Hello", 0 },
    { "7.2.3.3 BFINAL, then more", "f348cdc9c9070000|f248cdc9c90700", "Hello|Hello", 1 },
    { "7.2.3.4 two blocks", "f248050000 00ffffcac9c90700", "Hello", 0 },
    { "7.2.3.5 no compression", "000500faff48656c6c6f00", "Hello", 0 },
    { "7.2.3.6 empty", "00", "", 0 },
    { "empty payload", "", "", 0 },
    { "empty payloads among others", "|f248cdc9c90700||f200110000|", "|Hello||Hello|", 1 },
    /* a sender that kept the tail (websockets, when a message's last
     * frame compresses to nothing) */
    { "tail kept", "f248cdc9c9070000 00ffff", "Hello", 0 },
    { "tail kept, takeover", "f248cdc9c907000000ffff|f200110000", "Hello|Hello", 1 },
    /* a final stored block the tail completes */
    { "BFINAL stored block", "000500faff48656c6c6f01", "Hello", 0 },
    /* BFINAL without the 0x00 of §7.2.3.3 */
    { "BFINAL, no pad", "f348cdc9c90700", "Hello", 0 },
};

static void split_hex(tu_buf *out, const char *hex)
{
    char tmp[256];
    size_t n = 0;

    for (const char *p = hex; *p; p++) {
        if (*p != ' ') {
            tmp[n++] = *p;
        }
    }
    tmp[n] = '\0';
    tu_buf_hex(out, tmp);
}

START_TEST(test_rfc_examples)
{
    const rfc_case *tc = &rfc_cases[_i];
    char hexes[256], texts[256];
    char *hs = hexes, *ts = texts;
    wsock_inflater inf;
    int m = 0;

    snprintf(hexes, sizeof(hexes), "%s", tc->hex);
    snprintf(texts, sizeof(texts), "%s", tc->text);
    wsock_inflater_init(&inf, 15);
    for (;;) {
        /* strsep keeps empty fields (empty messages) */
        char *h = strsep(&hs, "|"), *t = strsep(&ts, "|");
        tu_buf in = { 0 };
        rec_sink r = { 0 };
        uint64_t total;

        if (!h || !t) {
            ck_assert_msg(!h && !t, "%s: case table mismatch", tc->name);
            break;
        }
        split_hex(&in, h);
        for (size_t chunk = 0; chunk <= 3; chunk++) {
            /* the same message in several chunkings needs its own stream
             * unless the context is dropped anyway */
            if (chunk > 0 && tc->keep) {
                break;
            }
            r.bytes.len = 0;
            ck_assert_msg(inflate_msg(&inf, in.p, in.len, chunk, 0, &r, &total)
                              == WSOCK_INFLATE_OK,
                          "%s: message %d (chunk %zu) refused", tc->name, m, chunk);
            assert_bytes(&r.bytes, (const uint8_t *)t, strlen(t), tc->name);
            wsock_inflater_end_message(&inf, tc->keep);
        }
        tu_buf_free(&in);
        tu_buf_free(&r.bytes);
        m++;
    }
    wsock_inflater_free(&inf);
}
END_TEST

/* Plain zlib writes (levels, windows, with and without takeover, one
 * message in several sync-flushed pieces as a fragmenting sender does,
 * final blocks from Z_FINISH); we read. */
START_TEST(test_plain_zlib_encoder)
{
    for (int wb = 9; wb <= 15; wb += 3) {
        for (int level = 0; level <= 9; level += 3) {
            for (int keep = 0; keep < 2; keep++) {
                z_stream z;
                wsock_inflater inf;

                memset(&z, 0, sizeof(z));
                ck_assert_int_eq(deflateInit2(&z, level, Z_DEFLATED, -wb, 8,
                                              Z_DEFAULT_STRATEGY), Z_OK);
                wsock_inflater_init(&inf, wb);
                for (int m = 0; m < 6; m++) {
                    size_t len = 500u + 700u * (unsigned)m;
                    uint8_t *data = make_data(m % 2 ? DATA_BINARY : DATA_TEXT, len, 3);
                    tu_buf c = { 0 };
                    rec_sink r = { 0 };
                    uint64_t total;

                    if (m == 4) {
                        /* fragments, each flushed, the last one empty */
                        tu_buf a = zlib_deflate(&z, data, len / 2, level, wb, Z_SYNC_FLUSH);
                        tu_buf b = zlib_deflate(&z, data + len / 2, len - len / 2, level, wb,
                                                Z_SYNC_FLUSH);
                        tu_buf_put(&c, a.p, a.len);
                        tu_buf_put(&c, "\x00\x00\xff\xff", 4);
                        tu_buf_put(&c, b.p, b.len);
                        tu_buf_put(&c, "\x00\x00\xff\xff", 4);
                        tu_buf_free(&a);
                        tu_buf_free(&b);
                    }
                    else if (m == 5) {
                        /* Z_FINISH: a final block; the stream is done */
                        c = zlib_deflate(&z, data, len, level, wb, Z_FINISH);
                        tu_buf_byte(&c, 0x00);   /* RFC 7692 §7.2.3.3 */
                    }
                    else {
                        c = zlib_deflate(&z, data, len, level, wb, Z_SYNC_FLUSH);
                    }
                    TU_CHECK(inflate_msg(&inf, c.p, c.len, m == 2 ? 7 : 0, len, &r, &total)
                                 == WSOCK_INFLATE_OK,
                             "window %d level %d keep %d message %d", wb, level, keep, m);
                    assert_bytes(&r.bytes, data, len, "plain zlib encoder");
                    wsock_inflater_end_message(&inf, keep);
                    if (!keep) {
                        deflateReset(&z);
                    }
                    tu_buf_free(&c);
                    tu_buf_free(&r.bytes);
                    free(data);
                }
                deflateEnd(&z);
                wsock_inflater_free(&inf);
            }
        }
    }
}
END_TEST

/* =====================================================================
 * The limit
 * ================================================================== */

/* 64 MiB of zeros (about 64 KiB compressed), from a small buffer. */
static tu_buf make_bomb(size_t inflated)
{
    static const uint8_t zeros[64 * 1024];
    z_stream z;
    tu_buf b = { 0 };

    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    for (size_t done = 0; done < inflated; done += sizeof(zeros)) {
        int flush = done + sizeof(zeros) >= inflated ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        z.next_in = (Bytef *)zeros;
        z.avail_in = sizeof(zeros);
        do {
            tu_buf_reserve(&b, 4096);
            z.next_out = b.p + b.len;
            z.avail_out = (uInt)(b.cap - b.len);
            ck_assert_int_eq(deflate(&z, flush), Z_OK);
            b.len = b.cap - z.avail_out;
        } while (z.avail_out == 0);
    }
    deflateEnd(&z);
    ck_assert(memcmp(b.p + b.len - 4, "\x00\x00\xff\xff", 4) == 0);
    b.len -= 4;
    return b;
}

static int count_only(void *ud, const uint8_t *data, size_t len)
{
    uint64_t *n = ud;

    for (size_t i = 0; i < len; i++) {
        TU_CHECK(data[i] == 0, "bomb byte %zu is %u", i, data[i]);
    }
    *n += len;
    return 0;
}

/* A deflate bomb, limit 1 MiB. _i: whole, in 4 KiB frames, in 100-byte
 * frames. */
START_TEST(test_bomb)
{
    static const size_t chunks[] = { 0, 4096, 100 };
    size_t bomb_size = 64 * MIB;
    tu_buf bomb = make_bomb(bomb_size);
    size_t chunk = chunks[_i] ? chunks[_i] : bomb.len;
    wsock_inflater inf;
    uint64_t total = 0, sunk = 0;
    wsock_inflate_result res = WSOCK_INFLATE_OK;

    ck_assert_uint_lt(bomb.len, 128 * KIB);
    wsock_inflater_init(&inf, 15);
    for (size_t off = 0; off < bomb.len && res == WSOCK_INFLATE_OK; off += chunk) {
        size_t n = bomb.len - off < chunk ? bomb.len - off : chunk;
        res = wsock_inflate(&inf, bomb.p + off, n, off + n == bomb.len, MIB, &total,
                            count_only, &sunk);
    }
    ck_assert_int_eq(res, WSOCK_INFLATE_TOO_BIG);
    ck_assert_uint_le(sunk, MIB);
    ck_assert_uint_eq(sunk, total);
    /* zlib was given room for one byte past the limit, no more */
    ck_assert_uint_le(inf.zs.total_out, MIB + 1);
    ck_assert_uint_gt(inf.zs.total_out, MIB);
    /* and read a little of the bomb, not all of it */
    ck_assert_uint_lt(inf.zs.total_in, bomb.len / 2);
    wsock_inflater_end_message(&inf, 0);
    ck_assert_int_eq(inf.ready, 0);

    /* without a limit it is a valid 64 MiB message */
    if (_i == 0) {
        total = sunk = 0;
        ck_assert_int_eq(wsock_inflate(&inf, bomb.p, bomb.len, 1, 0, &total, count_only, &sunk),
                         WSOCK_INFLATE_OK);
        ck_assert_uint_eq(total, bomb_size);
        ck_assert_uint_eq(sunk, bomb_size);
        /* with the limit at its exact size, still */
        wsock_inflater_end_message(&inf, 0);
        total = sunk = 0;
        ck_assert_int_eq(wsock_inflate(&inf, bomb.p, bomb.len, 1, bomb_size, &total,
                                       count_only, &sunk), WSOCK_INFLATE_OK);
        ck_assert_uint_eq(total, bomb_size);
    }
    wsock_inflater_free(&inf);
    tu_buf_free(&bomb);
}
END_TEST

/* The limit is exact: size fits, size - 1 does not, for every chunking
 * of the input and sizes around the 16 KiB chunk. */
START_TEST(test_limit_exact)
{
    static const size_t lens[] = { 1, 100, 16383, 16384, 16385, 40000 };

    for (size_t li = 0; li < TU_ARRAY_SIZE(lens); li++) {
        size_t len = lens[li];
        uint8_t *data = make_data(DATA_TEXT, len, li);
        tu_buf c;

        c = deflate_alone(data, len, 1);
        for (size_t chunk = 0; chunk <= 5; chunk++) {
            wsock_inflater inf;
            rec_sink r = { 0 };
            uint64_t total;

            wsock_inflater_init(&inf, 15);
            ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, chunk, len, &r, &total),
                             WSOCK_INFLATE_OK);
            assert_bytes(&r.bytes, data, len, "limit = size");
            wsock_inflater_end_message(&inf, 0);
            r.bytes.len = 0;
            ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, chunk, len - 1 ? len - 1 : 1 , &r,
                                         &total),
                             len - 1 ? WSOCK_INFLATE_TOO_BIG : WSOCK_INFLATE_OK);
            /* what the sink got is a prefix of the message */
            ck_assert(r.bytes.len == 0 || memcmp(r.bytes.p, data, r.bytes.len) == 0);
            wsock_inflater_free(&inf);
            tu_buf_free(&r.bytes);
        }
        /* the limit counts the whole message across calls: a total
         * already at the limit takes no more */
        {
            wsock_inflater inf;
            uint64_t total = len;
            rec_sink r = { 0 };

            wsock_inflater_init(&inf, 15);
            ck_assert_int_eq(wsock_inflate(&inf, c.p, c.len, 1, len, &total, rec_put, &r),
                             WSOCK_INFLATE_TOO_BIG);
            ck_assert_uint_eq(r.bytes.len, 0);
            wsock_inflater_free(&inf);
        }
        tu_buf_free(&c);
        free(data);
    }
}
END_TEST

/* =====================================================================
 * Corrupt input
 * ================================================================== */

static wsock_inflate_result inflate_hex(const char *hex, size_t chunk)
{
    wsock_inflater inf;
    tu_buf in = { 0 };
    rec_sink r = { 0 };
    uint64_t total;
    wsock_inflate_result res;

    split_hex(&in, hex);
    wsock_inflater_init(&inf, 15);
    res = inflate_msg(&inf, in.p, in.len, chunk, 0, &r, &total);
    wsock_inflater_end_message(&inf, 0);
    ck_assert_int_eq(inf.ready, 0);
    tu_buf_free(&in);
    tu_buf_free(&r.bytes);
    return res;
}

static const struct {
    const char *name, *hex;
} corrupt_cases[] = {
    { "invalid block type 3", "06" },
    { "invalid block type 3, final", "07" },
    { "stored LEN/NLEN mismatch", "000500fbff48656c6c6f00" },
    { "distance too far back", "4a044200" },
    { "BFINAL, then a byte", "f348cdc9c9070041" },
    { "BFINAL, then 00 00", "f348cdc9c907000000" },
    { "BFINAL, then a message", "f348cdc9c90700 f248cdc9c90700" },
    { "truncated mid-block", "f248cdc9" },
    { "truncated stored block", "000500faff4865" },
    { "dynamic block, bad code lengths", "04ffffffff" },
};

START_TEST(test_corrupt_cases)
{
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        ck_assert_msg(inflate_hex(corrupt_cases[_i].hex, chunk) == WSOCK_INFLATE_CORRUPT,
                      "%s (chunk %zu) not refused", corrupt_cases[_i].name, chunk);
    }
}
END_TEST

/* A real message cut short anywhere before its last two bytes. */
START_TEST(test_truncated)
{
    size_t len = 3000;
    uint8_t *data = make_data(DATA_TEXT, len, 11);
    tu_buf c;

    c = deflate_alone(data, len, 6);
    for (size_t cut = 1; cut + 2 <= c.len; cut++) {
        wsock_inflater inf;
        rec_sink r = { 0 };
        uint64_t total;
        wsock_inflate_result res;

        wsock_inflater_init(&inf, 15);
        res = inflate_msg(&inf, c.p, cut, 0, 0, &r, &total);
        TU_CHECK(res == WSOCK_INFLATE_CORRUPT, "cut at %zu of %zu: result %d", cut, c.len,
                 res);
        wsock_inflater_free(&inf);
        tu_buf_free(&r.bytes);
    }
    tu_buf_free(&c);
    free(data);
}
END_TEST

/* Garbage and flipped bits: never a crash (sanitizers watch), never a
 * result other than OK or CORRUPT, the sink in step with *total. */
START_TEST(test_garbage)
{
    tu_rng rng;
    size_t len = 2000, corrupt = 0, runs = 0;
    uint8_t *data = make_data(DATA_TEXT, len, 12);
    tu_buf c;

    tu_rng_seed(&rng, 1234);
    c = deflate_alone(data, len, 6);
    for (int i = 0; i < 3000; i++) {
        tu_buf in = { 0 };
        wsock_inflater inf;
        rec_sink r = { 0 };
        uint64_t total;
        wsock_inflate_result res;

        if (i % 2) {
            size_t n = tu_rand_range(&rng, 1, 400);
            tu_buf_reserve(&in, n);
            fill_random(&rng, in.p, n);
            in.len = n;
        }
        else {
            tu_buf_put(&in, c.p, c.len);
            in.p[tu_rand(&rng) % in.len] ^= (uint8_t)(1u << (tu_rand(&rng) % 8));
        }
        wsock_inflater_init(&inf, (int)tu_rand_range(&rng, 8, 15));
        res = inflate_msg(&inf, in.p, in.len, tu_rand_range(&rng, 0, 50), 64 * KIB, &r,
                          &total);
        TU_CHECK(res == WSOCK_INFLATE_OK || res == WSOCK_INFLATE_CORRUPT
                     || res == WSOCK_INFLATE_TOO_BIG, "garbage %d: result %d", i, res);
        corrupt += res == WSOCK_INFLATE_CORRUPT;
        runs++;
        wsock_inflater_end_message(&inf, 0);
        TU_CHECK(inf.ready == 0, "ready after end_message(0)");
        tu_buf_free(&in);
        tu_buf_free(&r.bytes);
    }
    /* random bytes are rarely a complete deflate stream */
    ck_assert_uint_gt(corrupt, runs / 2);
    tu_buf_free(&c);
    free(data);
}
END_TEST

/* =====================================================================
 * Sink, memory, lifetime
 * ================================================================== */

START_TEST(test_sink_stops)
{
    size_t len = 100000;
    uint8_t *data = make_data(DATA_TEXT, len, 13);
    wsock_inflater inf;
    rec_sink r = { 0 };
    uint64_t total;
    tu_buf c;

    c = deflate_alone(data, len, 1);
    wsock_inflater_init(&inf, 15);
    r.stop_after = 2;
    ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, 0, 0, &r, &total), WSOCK_INFLATE_STOPPED);
    ck_assert_uint_eq(r.calls, 2);
    ck_assert_uint_eq(total, 2 * WSOCK_INFLATE_CHUNK);
    ck_assert(memcmp(r.bytes.p, data, r.bytes.len) == 0);
    /* the message is abandoned; with the context kept, the stream starts
     * over and the next whole message inflates */
    wsock_inflater_end_message(&inf, 1);
    r.bytes.len = 0;
    r.stop_after = 0;
    ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, 0, 0, &r, &total), WSOCK_INFLATE_OK);
    assert_bytes(&r.bytes, data, len, "after a stop");
    wsock_inflater_free(&inf);
    tu_buf_free(&c);
    tu_buf_free(&r.bytes);
    free(data);
}
END_TEST

/* What zlib holds, counted: nothing until a message needs it, nothing
 * after end_message(0) or free; figures bounded generously. */
START_TEST(test_memory)
{
    size_t len = 50000;
    uint8_t *data = make_data(DATA_TEXT, len, 14);
    static const struct {
        int wb, mem;
        size_t max;
    } dcases[] = {
        /* measured 262, 390, 264 and 8.8 KiB */
        { 15, 8, 400 * KIB }, { 15, 9, 600 * KIB }, { 9, 9, 400 * KIB }, { 9, 1, 16 * KIB },
    };
    zcount ci = { 0 };
    wsock_inflater inf;
    rec_sink r = { 0 };
    uint64_t total;
    tu_buf c = { 0 };

    for (size_t i = 0; i < TU_ARRAY_SIZE(dcases); i++) {
        zcount cd = { 0 };
        wsock_deflater d;
        tu_buf e;

        wsock_deflater_init(&d, 1, dcases[i].wb, dcases[i].mem);
        count_zlib(&d.zs, &cd);
        e = deflate_msg(&d, data, 0, 0);   /* empty: no zlib */
        ck_assert_uint_eq(cd.peak, 0);
        tu_buf_free(&e);
        e = deflate_msg(&d, data, len, 0);
        ck_assert_uint_gt(cd.live, 0);
        ck_assert_msg(cd.peak <= dcases[i].max, "deflate %d/%d: %zu bytes", dcases[i].wb,
                      dcases[i].mem, cd.peak);
        /* reset, not freed: the caller decides when */
        ck_assert_uint_eq(cd.live, cd.peak);
        if (i == 0) {
            c = e;
        }
        else {
            tu_buf_free(&e);
        }
        wsock_deflater_free(&d);
        ck_assert_uint_eq(cd.live, 0);
        wsock_deflater_free(&d);   /* twice is harmless */
    }

    wsock_inflater_init(&inf, 15);
    count_zlib(&inf.zs, &ci);
    ck_assert_int_eq(inflate_msg(&inf, (const uint8_t *)"", 0, 0, 0, &r, &total),
                     WSOCK_INFLATE_OK);
    ck_assert_uint_eq(ci.peak, 0);   /* an empty payload wakes nothing */
    ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, 0, 0, &r, &total), WSOCK_INFLATE_OK);
    ck_assert_uint_gt(ci.live, 32 * KIB);   /* the window */
    ck_assert_msg(ci.peak <= 48 * KIB, "inflate 15: %zu bytes", ci.peak);   /* 39928 */
    wsock_inflater_end_message(&inf, 1);
    ck_assert_uint_gt(ci.live, 32 * KIB);   /* kept for the next message */
    wsock_inflater_end_message(&inf, 0);
    ck_assert_int_eq(inf.ready, 0);
    ck_assert_uint_eq(ci.live, 0);
    /* a message abandoned mid-way, then freed */
    ck_assert_int_eq(wsock_inflate(&inf, c.p, c.len / 2, 0, 0, &total, rec_put, &r),
                     WSOCK_INFLATE_OK);
    ck_assert_uint_gt(ci.live, 0);
    wsock_inflater_free(&inf);
    ck_assert_uint_eq(ci.live, 0);
    ck_assert_int_eq(inf.ready, 0);

    /* a small window costs less */
    {
        zcount c9 = { 0 };
        wsock_inflater small;

        wsock_inflater_init(&small, 9);
        count_zlib(&small.zs, &c9);
        r.bytes.len = 0;
        ck_assert_int_eq(inflate_msg(&small, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00",
                                     7, 0, 0, &r, &total), WSOCK_INFLATE_OK);
        ck_assert_msg(c9.peak <= 12 * KIB, "inflate 9: %zu bytes", c9.peak);   /* 7672 */
        wsock_inflater_free(&small);
        ck_assert_uint_eq(c9.live, 0);
    }
    tu_buf_free(&c);
    tu_buf_free(&r.bytes);
    free(data);
}
END_TEST

START_TEST(test_free_unused)
{
    wsock_inflater inf;
    wsock_deflater d;

    wsock_inflater_init(&inf, 15);
    wsock_inflater_free(&inf);
    wsock_inflater_free(&inf);
    wsock_inflater_end_message(&inf, 0);
    wsock_inflater_end_message(&inf, 1);
    ck_assert_int_eq(inf.ready, 0);
    wsock_deflater_init(&d, 1, 15, 8);
    wsock_deflater_free(&d);
    wsock_deflater_free(&d);
    ck_assert_int_eq(d.ready, 0);
}
END_TEST

/* zlib out of memory: NOMEM / -1, and everything works once memory is
 * back. */
START_TEST(test_out_of_memory)
{
    zcount c = { .budget = 1 };
    wsock_inflater inf;
    wsock_deflater d;
    rec_sink r = { 0 };
    uint64_t total;
    uint8_t out[64];
    size_t outlen;

    wsock_inflater_init(&inf, 15);
    count_zlib(&inf.zs, &c);
    ck_assert_int_eq(inflate_msg(&inf, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7, 0,
                                 0, &r, &total), WSOCK_INFLATE_NOMEM);
    ck_assert_int_eq(inf.ready, 0);
    /* the state fits, the window does not */
    c.budget = 10 * KIB;
    ck_assert_int_eq(inflate_msg(&inf, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7, 0,
                                 0, &r, &total), WSOCK_INFLATE_NOMEM);
    wsock_inflater_end_message(&inf, 0);
    ck_assert_uint_eq(c.live, 0);
    c.budget = 0;
    r.bytes.len = 0;
    ck_assert_int_eq(inflate_msg(&inf, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7, 0,
                                 0, &r, &total), WSOCK_INFLATE_OK);
    assert_bytes(&r.bytes, (const uint8_t *)"Hello", 5, "after NOMEM");
    wsock_inflater_free(&inf);

    c.budget = 1;
    wsock_deflater_init(&d, 1, 15, 8);
    count_zlib(&d.zs, &c);
    ck_assert_int_eq(wsock_deflate_message(&d, (const uint8_t *)"Hello", 5, 0, out, sizeof(out),
                                           &outlen), -1);
    ck_assert_int_eq(d.ready, 0);
    c.budget = 0;
    ck_assert_int_eq(wsock_deflate_message(&d, (const uint8_t *)"Hello", 5, 0, out, sizeof(out),
                                           &outlen), 0);
    wsock_deflater_free(&d);
    ck_assert_uint_eq(c.live, 0);
    tu_buf_free(&r.bytes);
}
END_TEST

/* =====================================================================
 * Deflating
 * ================================================================== */

/* The bound holds for incompressible data of many sizes at every level
 * and mem_level 1, 2, 3, 8, 9 (deflate_msg gives zlib exactly the bound).
 * A 512-byte window with mem_level 3 is where stored blocks become
 * impossible and random data grows by ~6%, past zlib's 4% bound for
 * stored blocks.  _i: mem_level index. */
START_TEST(test_bound_random)
{
    static const int mems[] = { 1, 2, 3, 8, 9 };
    static const int levels[] = { 0, 1, 4, 6, 9 };
    static const int windows[] = { 9, 10, 12, 15 };
    int mem = mems[_i];
    size_t maxlen = 300000;
    uint8_t *data = make_data(DATA_RANDOM, maxlen, 15);
    tu_rng rng;

    tu_rng_seed(&rng, 16 + (unsigned)_i);
    for (size_t wi = 0; wi < TU_ARRAY_SIZE(windows); wi++) {
        for (size_t li = 0; li < TU_ARRAY_SIZE(levels); li++) {
            wsock_deflater d;
            int prev_keep = 0;

            wsock_deflater_init(&d, levels[li], windows[wi], mem);
            for (int k = 0; k < 24; k++) {
                /* small sizes one by one, then spread up to 300000 */
                size_t len = k < 12 ? (size_t)k * 23 : tu_rand_range(&rng, 1, k < 20 ? 20000
                                                                               : maxlen);
                int keep = k % 3 == 0;
                tu_buf c = deflate_msg(&d, data, len, keep);
                tu_buf z;

                if (k % 5 == 0 && !prev_keep) {
                    /* what zlib made of it is right, too */
                    z = zlib_inflate(NULL, c.p, c.len, windows[wi]);
                    assert_bytes(&z, data, len, "bound round trip");
                    tu_buf_free(&z);
                }
                tu_buf_free(&c);
                prev_keep = keep;
            }
            wsock_deflater_free(&d);
        }
    }
    free(data);
}
END_TEST

/* Too little room: -1, and the next messages still inflate right at a
 * peer that kept its context. */
START_TEST(test_deflate_out_too_small)
{
    size_t len = 5000;
    uint8_t *data = make_data(DATA_RANDOM, len, 17);
    uint8_t *text = make_data(DATA_TEXT, len, 18);
    wsock_deflater d;
    wsock_inflater inf;
    rec_sink r = { 0 };
    uint64_t total;
    uint8_t small[100];
    size_t outlen;
    tu_buf c;

    wsock_deflater_init(&d, 1, 15, 8);
    wsock_inflater_init(&inf, 15);
    c = deflate_msg(&d, text, len, 1);
    ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, 0, 0, &r, &total), WSOCK_INFLATE_OK);
    wsock_inflater_end_message(&inf, 1);
    tu_buf_free(&c);
    ck_assert_int_eq(wsock_deflate_message(&d, data, len, 1, small, sizeof(small), &outlen),
                     -1);
    for (int m = 0; m < 3; m++) {
        c = deflate_msg(&d, text, len, 1);
        r.bytes.len = 0;
        ck_assert_int_eq(inflate_msg(&inf, c.p, c.len, 0, 0, &r, &total), WSOCK_INFLATE_OK);
        assert_bytes(&r.bytes, text, len, "after a failed deflate");
        wsock_inflater_end_message(&inf, 1);
        tu_buf_free(&c);
    }
    /* zlib cannot write raw deflate with a 256-byte window */
    {
        wsock_deflater d8;

        wsock_deflater_init(&d8, 1, 8, 8);
        ck_assert_int_eq(wsock_deflate_message(&d8, text, 10, 0, small, sizeof(small),
                                               &outlen), -1);
        wsock_deflater_free(&d8);
    }
    wsock_deflater_free(&d);
    wsock_inflater_free(&inf);
    tu_buf_free(&r.bytes);
    free(data);
    free(text);
}
END_TEST

/* Our output for an empty message is zlib's own; RFC 7692 §7.2.3.1's
 * "Hello" is what zlib writes. */
START_TEST(test_deflate_known_bytes)
{
    wsock_deflater d;
    tu_buf c, z;

    wsock_deflater_init(&d, 6, 15, 8);
    c = deflate_msg(&d, (const uint8_t *)"", 0, 1);
    z = zlib_deflate(NULL, (const uint8_t *)"", 0, 6, 15, Z_SYNC_FLUSH);
    ck_assert_uint_eq(c.len, z.len);
    ck_assert(memcmp(c.p, z.p, c.len) == 0);
    tu_buf_free(&c);
    tu_buf_free(&z);
    c = deflate_msg(&d, (const uint8_t *)"Hello", 5, 1);
    ck_assert_uint_eq(c.len, 7);
    ck_assert(memcmp(c.p, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7) == 0);
    tu_buf_free(&c);
    /* §7.2.3.2: the same again, with the window shared */
    c = deflate_msg(&d, (const uint8_t *)"Hello", 5, 1);
    ck_assert_uint_eq(c.len, 5);
    ck_assert(memcmp(c.p, "\xf2\x00\x11\x00\x00", 5) == 0);
    tu_buf_free(&c);
    /* an empty message between takeover messages changes nothing */
    c = deflate_msg(&d, (const uint8_t *)"", 0, 1);
    ck_assert_uint_eq(c.len, 1);
    tu_buf_free(&c);
    c = deflate_msg(&d, (const uint8_t *)"Hello", 5, 0);
    ck_assert_uint_lt(c.len, 7);    /* still with the context */
    tu_buf_free(&c);
    c = deflate_msg(&d, (const uint8_t *)"Hello", 5, 0);
    ck_assert_uint_eq(c.len, 7);    /* reset: on its own again */
    tu_buf_free(&c);
    wsock_deflater_free(&d);
}
END_TEST

/* =====================================================================
 * Suites
 * ================================================================== */

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    /* generous: 64 MiB bombs and 1 MiB messages under sanitizers */
    tcase_set_timeout(tc, 300);
    return tc;
}

static Suite *deflate_suite(void)
{
    Suite *s = suite_create("deflate");
    TCase *tc = tcase("round trips");

    tcase_add_loop_test(tc, test_roundtrip_sizes, 0,
                        DATA_KINDS * (int)TU_ARRAY_SIZE(rt_sizes));
    tcase_add_test(tc, test_chunked_input);
    tcase_add_loop_test(tc, test_window_bits, 0, 7);
    tcase_add_test(tc, test_window_too_small_is_corrupt);
    tcase_add_test(tc, test_window_8_peer);
    tcase_add_test(tc, test_context_takeover);
    suite_add_tcase(s, tc);

    tc = tcase("independent encoders");
    tcase_add_loop_test(tc, test_rfc_examples, 0, (int)TU_ARRAY_SIZE(rfc_cases));
    tcase_add_test(tc, test_plain_zlib_encoder);
    suite_add_tcase(s, tc);

    tc = tcase("limit");
    tcase_add_loop_test(tc, test_bomb, 0, 3);
    tcase_add_test(tc, test_limit_exact);
    suite_add_tcase(s, tc);

    tc = tcase("corrupt");
    tcase_add_loop_test(tc, test_corrupt_cases, 0, (int)TU_ARRAY_SIZE(corrupt_cases));
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_garbage);
    suite_add_tcase(s, tc);

    tc = tcase("lifetime");
    tcase_add_test(tc, test_sink_stops);
    tcase_add_test(tc, test_memory);
    tcase_add_test(tc, test_free_unused);
    tcase_add_test(tc, test_out_of_memory);
    suite_add_tcase(s, tc);

    tc = tcase("deflate");
    tcase_add_loop_test(tc, test_bound_random, 0, 5);
    tcase_add_test(tc, test_deflate_out_too_small);
    tcase_add_test(tc, test_deflate_known_bytes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { deflate_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
