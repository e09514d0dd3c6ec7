/*
 * fuzz_inflate.c — libFuzzer harness for the permessage-deflate stage
 * (src/codec/wsock_deflate).
 *
 * Input: 4 settings bytes, then the payloads of one connection's
 * messages, separated by "MSG|".
 *   byte 0  bits 0-2  the inflaters' window bits - 8 (8..15)
 *           bits 3-4  the limit: 64, 1000, 20000 or 1 MiB
 *           bit  5    context takeover (kept between messages)
 *           bits 6-7  the round trip's level: 0, 1, 6 or 9
 *   byte 1  the round trip's mem_level (1..9) and window bits (9..15)
 *   bytes 2-3 seed the chunking
 * Each payload is inflated twice, whole and in chunks of pseudo-random
 * sizes (empty ones too, each chunk in a heap block of exactly its size so
 * AddressSanitizer sees any read past it), and the harness aborts when an
 * invariant breaks:
 *   - both runs end alike, and what their sinks got agrees (the same bytes
 *     on OK, one a prefix of the other otherwise); except that with a
 *     window under 15 bits one run may be CORRUPT where the other is not:
 *     zlib resolves a reference from its window or from what the same
 *     call wrote, so a peer that refers further back than its window is
 *     read or refused depending on how its bytes arrive (after such a
 *     difference the connection would be closed: the next messages are
 *     not compared);
 *   - *total never passes the limit, the sink got exactly *total bytes in
 *     chunks of at most WSOCK_INFLATE_CHUNK, a result is one of the enum;
 *   - end_message(…, 0) gives back zlib's state (ready 0);
 * and each payload, taken as plain text, must survive a round trip:
 * deflate (within wsock_deflate_bound) then inflate with the limit at its
 * exact size gives it back, one byte less of limit is TOO_BIG.
 */
#define _GNU_SOURCE  /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsock_deflate.h"
#include "fuzz_check.h"

#define SEP "MSG|"
#define SEP_LEN 4

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int chunk_too_big;
} sinkbuf;

static int put(void *ud, const uint8_t *data, size_t len)
{
    sinkbuf *b = ud;

    if (len == 0 || len > WSOCK_INFLATE_CHUNK) {
        b->chunk_too_big = 1;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len) {
            cap *= 2;
        }
        b->p = realloc(b->p, cap);
        CHECK(b->p != NULL, "out of memory");
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void check_run(wsock_inflate_result r, uint64_t total, uint64_t limit, const sinkbuf *b)
{
    CHECK(r == WSOCK_INFLATE_OK || r == WSOCK_INFLATE_TOO_BIG || r == WSOCK_INFLATE_CORRUPT,
          "result is OK, TOO_BIG or CORRUPT");
    CHECK(total <= limit, "total within the limit");
    CHECK(b->len == total, "the sink got *total bytes");
    CHECK(!b->chunk_too_big, "sink chunks of 1..WSOCK_INFLATE_CHUNK bytes");
}

/* The same payload whole (a) and in chunks (b); 0 when the runs may
 * differ from here on. */
static int inflate_both(wsock_inflater *a, wsock_inflater *b, const uint8_t *in, size_t len,
                        uint64_t limit, uint64_t *seed, int keep)
{
    sinkbuf wa = { 0 }, wb = { 0 };
    uint64_t ta = 0, tb = 0;
    wsock_inflate_result ra, rb = WSOCK_INFLATE_OK;
    size_t off = 0;
    int last = 0;

    ra = wsock_inflate(a, in, len, 1, limit, &ta, put, &wa);
    check_run(ra, ta, limit, &wa);
    while (!last && rb == WSOCK_INFLATE_OK) {
        size_t n = (size_t)(next_rand(seed) % (len / 3 + 2));
        uint8_t *chunk;

        if (n > len - off) {
            n = len - off;
        }
        /* sometimes the last chunk is an empty one of its own */
        last = off + n == len && (n > 0 || next_rand(seed) % 2);
        chunk = malloc(n ? n : 1);
        CHECK(chunk != NULL, "out of memory");
        memcpy(chunk, in + off, n);
        rb = wsock_inflate(b, n ? chunk : NULL, n, last, limit, &tb, put, &wb);
        free(chunk);
        off += n;
    }
    check_run(rb, tb, limit, &wb);
    CHECK(ra == rb || (a->window_bits < 15 && (ra == WSOCK_INFLATE_CORRUPT
                                               || rb == WSOCK_INFLATE_CORRUPT)),
          "whole and chunked runs end alike");
    if (ra == WSOCK_INFLATE_OK && rb == WSOCK_INFLATE_OK) {
        CHECK(wa.len == wb.len && (wa.len == 0 || memcmp(wa.p, wb.p, wa.len) == 0),
              "whole and chunked runs inflate the same bytes");
    }
    else {
        size_t n = wa.len < wb.len ? wa.len : wb.len;
        CHECK(n == 0 || memcmp(wa.p, wb.p, n) == 0, "one run's bytes a prefix of the other's");
    }
    wsock_inflater_end_message(a, ra == WSOCK_INFLATE_OK && keep);
    wsock_inflater_end_message(b, rb == WSOCK_INFLATE_OK && keep);
    CHECK((ra == WSOCK_INFLATE_OK && keep) || a->ready == 0, "end_message(0) frees zlib");
    CHECK((rb == WSOCK_INFLATE_OK && keep) || b->ready == 0, "end_message(0) frees zlib");
    free(wa.p);
    free(wb.p);
    return ra == rb;
}

/* The payload as plain text: deflate, inflate with the exact limit. */
static void round_trip(wsock_deflater *d, wsock_inflater *inf, const uint8_t *in, size_t len,
                       int keep)
{
    size_t cap = wsock_deflate_bound(len), outlen = 0;
    uint8_t *out = malloc(cap ? cap : 1);
    sinkbuf got = { 0 };
    uint64_t total = 0;

    CHECK(out != NULL, "out of memory");
    CHECK(cap >= len, "the bound is at least the input");
    CHECK(wsock_deflate_message(d, in, len, keep, out, cap, &outlen) == 0,
          "deflate within wsock_deflate_bound");
    CHECK(outlen <= cap, "outlen within the cap");
    CHECK(wsock_inflate(inf, out, outlen, 1, len ? len : 1, &total, put, &got)
              == WSOCK_INFLATE_OK, "our own output inflates within its exact size");
    CHECK(got.len == len && (len == 0 || memcmp(got.p, in, len) == 0),
          "the round trip gives the input back");
    wsock_inflater_end_message(inf, keep);
    if (!keep && len > 0) {
        wsock_inflater fresh;
        sinkbuf cut = { 0 };

        total = 0;
        wsock_inflater_init(&fresh, inf->window_bits);
        CHECK(wsock_inflate(&fresh, out, outlen, 1, len - 1 ? len - 1 : 0, &total, put, &cut)
                  == (len - 1 ? WSOCK_INFLATE_TOO_BIG : WSOCK_INFLATE_OK),
              "one byte less of limit is TOO_BIG");
        wsock_inflater_free(&fresh);
        free(cut.p);
    }
    free(got.p);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t limits[] = { 64, 1000, 20000, 1024 * 1024 };
    static const int levels[] = { 0, 1, 6, 9 };
    wsock_inflater a, b, rt_in;
    wsock_deflater rt_out;
    uint64_t seed, limit;
    int wb, keep, level, mem, dwb;
    const uint8_t *p, *end;

    if (size < 4) {
        return 0;
    }
    wb = 8 + (data[0] & 7);
    limit = limits[(data[0] >> 3) & 3];
    keep = (data[0] >> 5) & 1;
    level = levels[data[0] >> 6];
    mem = 1 + data[1] % 9;
    dwb = 9 + (data[1] >> 4) % 7;
    seed = ((uint64_t)data[2] << 8 | data[3]) * 0x9E3779B97F4A7C15ULL + 1;
    wsock_inflater_init(&a, wb);
    wsock_inflater_init(&b, wb);
    wsock_deflater_init(&rt_out, level, dwb, mem);
    wsock_inflater_init(&rt_in, dwb);

    p = data + 4;
    end = data + size;
    for (int m = 0, same = 1; m < 16; m++) {
        const uint8_t *sep = memmem(p, (size_t)(end - p), SEP, SEP_LEN);
        const uint8_t *stop = sep ? sep : end;
        size_t len = (size_t)(stop - p);

        if (same) {
            same = inflate_both(&a, &b, p, len, limit, &seed, keep);
        }
        round_trip(&rt_out, &rt_in, p, len < 8192 ? len : 8192, keep);
        if (!sep) {
            break;
        }
        p = sep + SEP_LEN;
    }
    wsock_inflater_free(&a);
    wsock_inflater_free(&b);
    wsock_inflater_free(&rt_in);
    wsock_deflater_free(&rt_out);
    CHECK(a.ready == 0 && b.ready == 0 && rt_in.ready == 0 && rt_out.ready == 0,
          "free gives back zlib's state");
    return 0;
}
