/*
 * test_util.h — helpers shared by the Check unit tests of mod_wsock.
 *
 * Everything here is static inline so that a test file that uses only part
 * of it compiles warning-free.  The generic part (byte buffers, a seeded
 * PRNG, the suite runner) is always available; the codec part (an
 * independent frame builder, a recording sink and a driver that feeds a
 * stream in any chunking) is compiled only when wsock_codec.h was included
 * first, so test_handshake.c does not depend on the codec's header.
 */
#ifndef WSOCK_TEST_UTIL_H
#define WSOCK_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#define TU_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* An assertion for hot loops.  Every passing ck_assert* records its
 * location (_mark_point, a message to the runner), which makes millions
 * of them slow and, under ASan, memory-hungry; this one costs nothing
 * until it fails. */
#define TU_CHECK(cond, ...)                                                                   \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            ck_abort_msg(__VA_ARGS__);                                                        \
        }                                                                                     \
    } while (0)

/* ---------------------------------------------------------------------
 * Suite runner
 * ------------------------------------------------------------------ */

/* Runs the suites, prints Check's summary line, returns the exit status. */
static inline int tu_run_suites(Suite **suites, size_t n)
{
    SRunner *sr = srunner_create(suites[0]);
    int failed;

    for (size_t i = 1; i < n; i++) {
        srunner_add_suite(sr, suites[i]);
    }
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---------------------------------------------------------------------
 * Seeded PRNG (xorshift64*): the same seed gives the same splits on every
 * machine, so a failure names a reproducible case.
 * ------------------------------------------------------------------ */

typedef struct {
    uint64_t s;
} tu_rng;

static inline void tu_rng_seed(tu_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    if (r->s == 0) {
        r->s = 1;
    }
}

static inline uint64_t tu_rand(tu_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

/* Uniform-enough integer in [lo, hi]. */
static inline size_t tu_rand_range(tu_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(tu_rand(r) % (uint64_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------------
 * Growable byte buffer
 * ------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t   len, cap;
    unsigned nframes;   /* frames built into it (picks the next mask key) */
} tu_buf;

static inline void tu_buf_free(tu_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Makes room for more bytes; p is never NULL afterwards. */
static inline void tu_buf_reserve(tu_buf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 64;

    TU_CHECK(more <= SIZE_MAX / 4 - b->len, "buffer size overflow");
    while (cap < b->len + more) {
        cap *= 2;
    }
    if (cap != b->cap || b->p == NULL) {
        b->p = realloc(b->p, cap);
        TU_CHECK(b->p != NULL, "out of memory");
        b->cap = cap;
    }
}

static inline void tu_buf_put(tu_buf *b, const void *data, size_t len)
{
    tu_buf_reserve(b, len);
    if (len) {
        memcpy(b->p + b->len, data, len);
        b->len += len;
    }
}

static inline void tu_buf_byte(tu_buf *b, uint8_t c)
{
    tu_buf_put(b, &c, 1);
}

/* Appends bytes written as hex digits; spaces are ignored. */
static inline void tu_buf_hex(tu_buf *b, const char *hex)
{
    int hi = -1;

    for (const char *s = hex; *s; s++) {
        int v;
        if (*s == ' ') {
            continue;
        }
        if (*s >= '0' && *s <= '9') {
            v = *s - '0';
        }
        else if (*s >= 'a' && *s <= 'f') {
            v = *s - 'a' + 10;
        }
        else if (*s >= 'A' && *s <= 'F') {
            v = *s - 'A' + 10;
        }
        else {
            ck_abort_msg("bad hex digit '%c' in \"%s\"", *s, hex);
            return;
        }
        if (hi < 0) {
            hi = v;
        }
        else {
            tu_buf_byte(b, (uint8_t)(hi << 4 | v));
            hi = -1;
        }
    }
    ck_assert_msg(hi < 0, "odd number of hex digits in \"%s\"", hex);
}

/* Formats up to max bytes as hex into out (for failure messages). */
static inline const char *tu_hexdump(char *out, size_t outsz, const uint8_t *p, size_t len)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < len && o + 4 < outsz; i++) {
        o += (size_t)snprintf(out + o, outsz - o, "%02x ", p[i]);
    }
    if (o + 4 >= outsz && len) {
        snprintf(out + outsz - 4, 4, "..");
    }
    return out;
}

/* ---------------------------------------------------------------------
 * Codec helpers
 * ------------------------------------------------------------------ */
#ifdef WSOCK_CODEC_H

#define TU_FIN  0x80
#define TU_RSV1 0x40
#define TU_RSV2 0x20
#define TU_RSV3 0x10

/* Length encodings for tu_frame_ex: minimal, or forced (possibly
 * non-minimal) 7-bit, 16-bit or 64-bit. */
enum { TU_LEN_MIN = 0, TU_LEN_7 = 7, TU_LEN_16 = 16, TU_LEN_64 = 64 };

/* Mask keys the builder cycles through (none is all zeros, which would
 * make masking an identity and hide unmasking bugs). */
static inline const uint8_t *tu_key(unsigned i)
{
    static const uint8_t keys[][4] = {
        { 0x37, 0xfa, 0x21, 0x3d },
        { 0x01, 0x02, 0x03, 0x04 },
        { 0xff, 0x00, 0xaa, 0x55 },
        { 0x80, 0x7f, 0xc3, 0x3c },
        { 0xde, 0xad, 0xbe, 0xef },
    };
    return keys[i % TU_ARRAY_SIZE(keys)];
}

/* Appends a frame header, written byte by byte from RFC 6455 §5.2 without
 * using the code under test.  b0 is the first byte (FIN, RSV, opcode). */
static inline void tu_header(tu_buf *b, uint8_t b0, const uint8_t *key, uint64_t len,
                             int len_form)
{
    uint8_t mbit = key ? 0x80 : 0x00;

    if (len_form == TU_LEN_MIN) {
        len_form = len <= 125 ? TU_LEN_7 : len <= 0xFFFF ? TU_LEN_16 : TU_LEN_64;
    }
    tu_buf_byte(b, b0);
    if (len_form == TU_LEN_7) {
        ck_assert_msg(len <= 125, "7-bit form cannot hold %llu", (unsigned long long)len);
        tu_buf_byte(b, (uint8_t)(mbit | len));
    }
    else if (len_form == TU_LEN_16) {
        ck_assert_msg(len <= 0xFFFF, "16-bit form cannot hold %llu", (unsigned long long)len);
        tu_buf_byte(b, mbit | 126);
        tu_buf_byte(b, (uint8_t)(len >> 8));
        tu_buf_byte(b, (uint8_t)len);
    }
    else {
        tu_buf_byte(b, mbit | 127);
        for (int sh = 56; sh >= 0; sh -= 8) {
            tu_buf_byte(b, (uint8_t)(len >> sh));
        }
    }
    if (key) {
        tu_buf_put(b, key, 4);
    }
}

/* Appends a whole frame; the payload is masked with a naive byte loop. */
static inline void tu_frame_ex(tu_buf *b, uint8_t b0, const uint8_t *key,
                               const void *payload, size_t len, int len_form)
{
    const uint8_t *pl = payload;

    tu_header(b, b0, key, len, len_form);
    tu_buf_reserve(b, len);
    for (size_t i = 0; i < len; i++) {
        b->p[b->len + i] = key ? (uint8_t)(pl[i] ^ key[i % 4]) : pl[i];
    }
    b->len += len;
    b->nframes++;
}

/* Appends a frame as a peer of a parser in this role sends it: masked
 * (with the next key of the cycle) for a SERVER parser, plain for CLIENT. */
static inline void tu_frame(tu_buf *b, wsock_role role, uint8_t b0, const void *payload,
                            size_t len)
{
    tu_frame_ex(b, b0, role == WSOCK_ROLE_SERVER ? tu_key(b->nframes) : NULL, payload, len,
                TU_LEN_MIN);
}

static inline void tu_frame_str(tu_buf *b, wsock_role role, uint8_t b0, const char *s)
{
    tu_frame(b, role, b0, s, strlen(s));
}

/* Appends a close frame with code (0: empty payload) and reason bytes. */
static inline void tu_close_frame(tu_buf *b, wsock_role role, unsigned code,
                                  const void *reason, size_t rlen)
{
    uint8_t pl[256];

    ck_assert(rlen + 2 <= sizeof(pl));
    if (code == 0) {
        tu_frame(b, role, TU_FIN | WSOCK_OP_CLOSE, NULL, 0);
        return;
    }
    pl[0] = (uint8_t)(code >> 8);
    pl[1] = (uint8_t)code;
    if (rlen) {
        memcpy(pl + 2, reason, rlen);
    }
    tu_frame(b, role, TU_FIN | WSOCK_OP_CLOSE, pl, rlen + 2);
}

/* --- recording sink -------------------------------------------------- */

/* What a stream means, independent of how it was chunked: whole data
 * messages (the concatenation of their chunks) and control frames, in
 * order.  A control frame records whether it arrived inside a fragmented
 * message and how many payload bytes of that message preceded it. */
enum { TU_EV_MSG = 1, TU_EV_CTRL = 2 };

typedef struct {
    int          kind;
    wsock_opcode op;
    unsigned     code;
    size_t       off, len;  /* payload, in tu_rec.bytes */
    int          in_msg;    /* CTRL: a message was open */
    size_t       at;        /* CTRL: bytes of the open message before it */
} tu_event;

#define TU_MAX_EVENTS 64
#define TU_MAX_CHUNKS 16

typedef struct {
    tu_event ev[TU_MAX_EVENTS];
    size_t   nev;
    tu_buf   bytes;         /* payloads of the events */
    tu_buf   cur;           /* the open message so far */
    int      open;
    wsock_opcode open_op;

    /* Raw chunk log (first TU_MAX_CHUNKS on_data calls): depends on the
     * chunking, so only used by whole-buffer tests. */
    struct {
        size_t len;
        int first, last;
        const uint8_t *ptr;
    } chunk[TU_MAX_CHUNKS];
    size_t ndata, nctrl;

    size_t stop_at;         /* return nonzero from callback number stop_at (1-based) */
    size_t calls;

    int  nviolations;       /* broken sink contract (flags, opcodes, lengths) */
    char violation[160];
} tu_rec;

static inline void tu_rec_init(tu_rec *r)
{
    memset(r, 0, sizeof(*r));
}

static inline void tu_rec_free(tu_rec *r)
{
    tu_buf_free(&r->bytes);
    tu_buf_free(&r->cur);
}

static inline void tu_rec_violation(tu_rec *r, const char *what)
{
    if (r->nviolations++ == 0) {
        snprintf(r->violation, sizeof(r->violation), "%s (event %zu)", what, r->nev);
    }
}

static inline tu_event *tu_rec_push(tu_rec *r, int kind, wsock_opcode op, unsigned code,
                                    const void *data, size_t len)
{
    tu_event *e;

    if (r->nev == TU_MAX_EVENTS) {
        tu_rec_violation(r, "too many events for the recorder");
        return NULL;
    }
    e = &r->ev[r->nev++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->op = op;
    e->code = code;
    e->off = r->bytes.len;
    e->len = len;
    tu_buf_put(&r->bytes, data, len);
    return e;
}

/* Expected events, for comparison with a recorded run. */
static inline void tu_expect_msg(tu_rec *r, wsock_opcode op, const void *data, size_t len)
{
    tu_rec_push(r, TU_EV_MSG, op, 0, data, len);
}

static inline void tu_expect_ctrl(tu_rec *r, wsock_opcode op, unsigned code, const void *data,
                                  size_t len, int in_msg, size_t at)
{
    tu_event *e = tu_rec_push(r, TU_EV_CTRL, op, code, data, len);
    if (e) {
        e->in_msg = in_msg;
        e->at = at;
    }
}

static inline int tu_on_data(void *ud, wsock_opcode op, const uint8_t *data, size_t len,
                             int first, int last)
{
    tu_rec *r = ud;

    if (r->ndata < TU_MAX_CHUNKS) {
        r->chunk[r->ndata].len = len;
        r->chunk[r->ndata].first = first;
        r->chunk[r->ndata].last = last;
        r->chunk[r->ndata].ptr = data;
    }
    r->ndata++;
    if (op != WSOCK_OP_TEXT && op != WSOCK_OP_BINARY) {
        tu_rec_violation(r, "on_data with an opcode other than TEXT/BINARY");
    }
    if (len && data == NULL) {
        tu_rec_violation(r, "on_data with NULL data");
    }
    if (first) {
        if (r->open) {
            tu_rec_violation(r, "first chunk while a message is open");
        }
        r->open = 1;
        r->open_op = op;
        r->cur.len = 0;
    }
    else {
        if (!r->open) {
            tu_rec_violation(r, "non-first chunk with no message open");
        }
        if (op != r->open_op) {
            tu_rec_violation(r, "opcode changed within a message");
        }
        if (len == 0 && !last) {
            tu_rec_violation(r, "empty chunk that neither opens nor closes a message");
        }
    }
    tu_buf_put(&r->cur, data, len);
    if (last) {
        tu_rec_push(r, TU_EV_MSG, op, 0, r->cur.p, r->cur.len);
        r->open = 0;
        r->cur.len = 0;
    }
    return r->stop_at && ++r->calls == r->stop_at;
}

static inline int tu_on_control(void *ud, wsock_opcode op, unsigned code,
                                const uint8_t *payload, size_t len)
{
    tu_rec *r = ud;
    tu_event *e;

    r->nctrl++;
    if (op != WSOCK_OP_CLOSE && op != WSOCK_OP_PING && op != WSOCK_OP_PONG) {
        tu_rec_violation(r, "on_control with a non-control opcode");
    }
    if (op != WSOCK_OP_CLOSE && code != 0) {
        tu_rec_violation(r, "PING/PONG with a nonzero code");
    }
    if (len > (op == WSOCK_OP_CLOSE ? 123u : 125u)) {
        tu_rec_violation(r, "control payload too long");
    }
    if (len && payload == NULL) {
        tu_rec_violation(r, "on_control with NULL payload");
    }
    e = tu_rec_push(r, TU_EV_CTRL, op, code, payload, len);
    if (e) {
        e->in_msg = r->open;
        e->at = r->open ? r->cur.len : 0;
    }
    return r->stop_at && ++r->calls == r->stop_at;
}

static inline const wsock_parser_sink *tu_sink(void)
{
    static const wsock_parser_sink sink = { tu_on_data, tu_on_control };
    return &sink;
}

/* 1 if both hold the same events; else 0 and a description in why. */
static inline int tu_rec_same(const tu_rec *a, const tu_rec *b, char *why, size_t whysz)
{
    if (a->nev != b->nev) {
        snprintf(why, whysz, "%zu events, expected %zu", a->nev, b->nev);
        return 0;
    }
    for (size_t i = 0; i < a->nev; i++) {
        const tu_event *x = &a->ev[i], *y = &b->ev[i];
        if (x->kind != y->kind || x->op != y->op || x->code != y->code) {
            snprintf(why, whysz, "event %zu: kind/op/code %d/%d/%u, expected %d/%d/%u", i,
                     x->kind, (int)x->op, x->code, y->kind, (int)y->op, y->code);
            return 0;
        }
        if (x->len != y->len || memcmp(a->bytes.p + x->off, b->bytes.p + y->off, x->len)) {
            snprintf(why, whysz, "event %zu: payload differs (%zu bytes, expected %zu)", i,
                     x->len, y->len);
            return 0;
        }
        if (x->in_msg != y->in_msg || x->at != y->at) {
            snprintf(why, whysz, "event %zu: control at %d/%zu, expected %d/%zu", i,
                     x->in_msg, x->at, y->in_msg, y->at);
            return 0;
        }
    }
    return 1;
}

/* --- driver: feed a stream in a chosen chunking ------------------------ */

typedef struct {
    wsock_role role;
    uint64_t   max;         /* max_message_size */
    uint8_t    rsv;         /* allowed_rsv */
} tu_cfg;

/* Chunkings: the whole stream in one call, one byte per call, or random
 * chunk sizes (zero-length calls included) from a seed >= 1. */
enum { TU_SPLIT_WHOLE = -1, TU_SPLIT_BYTES = 0 };

typedef struct {
    wsock_parse_result rc;  /* OK (all fed) or ERROR */
    unsigned error_code;
    size_t   err_pos;       /* absolute stream offset consumed when it failed */
    size_t   err_chunk_start, err_chunk_end; /* the feed call that failed */
    size_t   consumed;      /* total bytes consumed */
    size_t   nstops;        /* STOPPED returns (resumed by the driver) */
    size_t   stop_pos[8];   /* absolute offsets consumed at the first stops */
    int      in_message;    /* wsock_parser_in_message at the end */
    tu_rec   rec;
    int      nviolations;   /* broken parser contract (consumed counts etc.) */
    char     violation[160];
} tu_run;

static inline void tu_run_free(tu_run *run)
{
    tu_rec_free(&run->rec);
}

static inline void tu_run_violation(tu_run *run, const char *what)
{
    if (run->nviolations++ == 0) {
        snprintf(run->violation, sizeof(run->violation), "%s", what);
    }
}

static inline size_t tu_next_chunk(long split, tu_rng *rng, size_t left)
{
    size_t n;

    if (split == TU_SPLIT_WHOLE) {
        return left;
    }
    if (split == TU_SPLIT_BYTES) {
        return left ? 1 : 0;
    }
    switch (tu_rand(rng) % 10) {
    case 0:
        n = 0;
        break;
    case 1: case 2: case 3: case 4: case 5:
        n = tu_rand_range(rng, 1, 8);
        break;
    case 6: case 7: case 8:
        n = tu_rand_range(rng, 1, 200);
        break;
    default:
        n = tu_rand_range(rng, 1, left ? left : 1);
        break;
    }
    return n < left ? n : left;
}

/* Parses the stream with a fresh parser, each chunk copied into its own
 * heap block of exactly its size (so a sanitizer sees any read or write
 * past the chunk).  STOPPED is resumed from where it stopped; the run ends
 * at the end of the stream or at the first error, after checking that the
 * failed parser stays failed.  stop_at is passed to the recorder. */
static inline void tu_parse_stop(const tu_cfg *cfg, const uint8_t *stream, size_t len,
                                 long split, size_t stop_at, tu_run *run)
{
    wsock_parser p;
    tu_rng rng;
    size_t pos = 0;
    /* Every call makes progress except random zero-length ones, which are
     * bounded by the PRNG's distribution; this cap only guards the test. */
    size_t calls_left = 4 * len + 1000;

    memset(run, 0, sizeof(*run));
    tu_rec_init(&run->rec);
    run->rec.stop_at = stop_at;
    tu_rng_seed(&rng, (uint64_t)(split > 0 ? split : 0));
    wsock_parser_init(&p, cfg->role, cfg->max);
    p.allowed_rsv = cfg->rsv;
    run->rc = WSOCK_PARSE_OK;

    for (;;) {
        size_t n = tu_next_chunk(split, &rng, len - pos);
        size_t off = 0;
        uint8_t *chunk = malloc(n ? n : 1);

        TU_CHECK(chunk != NULL, "out of memory");
        if (n) {
            memcpy(chunk, stream + pos, n);
        }
        /* A chunk is fed until consumed; STOPPED returns resume it. */
        for (;;) {
            size_t used = (size_t)-1;
            wsock_parse_result rc;

            if (calls_left == 0) {
                tu_run_violation(run, "parser makes no progress");
                free(chunk);
                goto done;
            }
            calls_left--;
            rc = wsock_parser_feed(&p, chunk + off, n - off, tu_sink(), &run->rec, &used);
            if (used > n - off) {
                tu_run_violation(run, "consumed more than was fed");
                used = n - off;
            }
            off += used;
            if (rc == WSOCK_PARSE_ERROR) {
                size_t again = (size_t)-1;
                run->rc = rc;
                run->error_code = p.error_code;
                run->err_pos = pos + off;
                run->err_chunk_start = pos;
                run->err_chunk_end = pos + n;
                if (p.error_reason == NULL) {
                    tu_run_violation(run, "error without a reason");
                }
                /* A failed parser stays failed and consumes nothing. */
                if (wsock_parser_feed(&p, chunk + off, n - off, tu_sink(), &run->rec, &again)
                        != WSOCK_PARSE_ERROR || again != 0 || p.error_code != run->error_code) {
                    tu_run_violation(run, "parser did not stay failed");
                }
                free(chunk);
                goto done;
            }
            if (rc == WSOCK_PARSE_STOPPED) {
                if (run->nstops < TU_ARRAY_SIZE(run->stop_pos)) {
                    run->stop_pos[run->nstops] = pos + off;
                }
                run->nstops++;
                continue;
            }
            if (rc != WSOCK_PARSE_OK) {
                tu_run_violation(run, "unknown parse result");
            }
            if (off != n) {
                tu_run_violation(run, "OK without consuming the whole input");
            }
            break;
        }
        free(chunk);
        pos += n;
        if (pos == len) {
            break;
        }
    }
done:
    run->consumed = run->rc == WSOCK_PARSE_ERROR ? run->err_pos : pos;
    run->in_message = wsock_parser_in_message(&p);
}

static inline void tu_parse(const tu_cfg *cfg, const uint8_t *stream, size_t len, long split,
                            tu_run *run)
{
    tu_parse_stop(cfg, stream, len, split, 0, run);
}

/* Number of random chunkings every stream is tried with. */
#define TU_RANDOM_SPLITS 24

/* Feeds the stream whole, a byte at a time and in TU_RANDOM_SPLITS random
 * chunkings and asserts that every run ends the same way and yields the
 * same events: those of expect if it is given, else those of the whole
 * run.  expect_code 0 means the stream must parse cleanly; otherwise the
 * run must fail with that code, and, when err_pos is not SIZE_MAX, having
 * consumed exactly err_pos bytes (a rule decided from a header does not
 * depend on the chunking).  Events completed before an error are compared
 * too.  Returns nothing; fails the test with the split that broke. */
static inline void tu_check_splits(const tu_cfg *cfg, const uint8_t *stream, size_t len,
                                   const tu_rec *expect, unsigned expect_code, size_t err_pos,
                                   const char *name)
{
    tu_run ref;
    char why[200];

    tu_parse(cfg, stream, len, TU_SPLIT_WHOLE, &ref);
    for (long split = TU_SPLIT_WHOLE; split <= TU_RANDOM_SPLITS; split++) {
        tu_run run;
        const tu_rec *want = expect ? expect : &ref.rec;

        tu_parse(cfg, stream, len, split, &run);
        ck_assert_msg(run.nviolations == 0, "%s, split %ld: %s", name, split, run.violation);
        ck_assert_msg(run.rec.nviolations == 0, "%s, split %ld: sink contract: %s", name, split,
                      run.rec.violation);
        if (expect_code == 0) {
            ck_assert_msg(run.rc == WSOCK_PARSE_OK,
                          "%s, split %ld: error %u (%s) at %zu, expected success", name, split,
                          run.error_code, run.rc == WSOCK_PARSE_ERROR ? "parse error" : "?",
                          run.err_pos);
            ck_assert_msg(run.consumed == len, "%s, split %ld: consumed %zu of %zu", name,
                          split, run.consumed, len);
        }
        else {
            ck_assert_msg(run.rc == WSOCK_PARSE_ERROR && run.error_code == expect_code,
                          "%s, split %ld: rc %d code %u, expected error %u", name, split,
                          (int)run.rc, run.error_code, expect_code);
            if (err_pos != SIZE_MAX) {
                ck_assert_msg(run.err_pos == err_pos,
                              "%s, split %ld: failed having consumed %zu, expected %zu", name,
                              split, run.err_pos, err_pos);
            }
        }
        ck_assert_msg(tu_rec_same(&run.rec, want, why, sizeof(why)), "%s, split %ld: %s", name,
                      split, why);
        tu_run_free(&run);
    }
    tu_run_free(&ref);
}

#endif /* WSOCK_CODEC_H */
#endif /* WSOCK_TEST_UTIL_H */
