/*
 * fuzz_frame_parser.c — libFuzzer harness for the incremental frame parser
 * (src/codec) and the UTF-8 validator it uses.
 *
 * Input: byte 0 chooses the parser's settings, bytes 1-2 seed the chunking,
 * the rest is the byte stream a peer sends.
 *   bit 0     role: 0 server (peer frames masked), 1 client
 *   bits 1-2  max message size: none, 125, 1000, 70000
 *   bit 3     allow RSV1 (as a negotiated extension would)
 * The stream is parsed twice, whole and in chunks of pseudo-random sizes
 * (each chunk in a heap block of exactly its size, so AddressSanitizer sees
 * any read past it), and the harness aborts when an invariant breaks:
 *   - both runs end alike: same result, same close code, same events;
 *   - an error carries a code the parser may send (1002, 1007, 1009) and a
 *     reason, and the failed parser stays failed and consumes nothing;
 *   - nothing consumed beyond what was fed; OK means everything consumed;
 *   - the sink contract: data chunks open and close messages in order, a
 *     finished text message is valid UTF-8 and no larger than the limit,
 *     control payloads fit 125 bytes, a close code is one a peer may send;
 *   - the incremental UTF-8 validator, fed the stream in the same chunks,
 *     agrees with the one-shot check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsock_codec.h"
#include "fuzz_check.h"

/* What a run saw, independent of the chunking: a rolling hash of the
 * events plus the message being assembled. */
typedef struct {
    uint64_t hash;
    size_t events;
    int open;                   /* a data message is open */
    wsock_opcode open_op;
    uint8_t *msg;               /* its bytes so far */
    size_t msg_len, msg_cap;
    uint64_t max;               /* the parser's max_message_size */
    const wsock_parser *p;      /* for msg_compressed (RFC 7692's RSV1) */
} rec;

static void mix(rec *r, const void *data, size_t len)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++) {
        r->hash = (r->hash ^ p[i]) * 0x100000001B3ULL;   /* FNV-1a */
    }
}

static void append(rec *r, const uint8_t *data, size_t len)
{
    if (r->msg_len + len > r->msg_cap) {
        size_t cap = r->msg_cap ? r->msg_cap : 256;
        while (cap < r->msg_len + len) {
            cap *= 2;
        }
        r->msg = realloc(r->msg, cap);
        CHECK(r->msg != NULL, "out of memory");
        r->msg_cap = cap;
    }
    if (len) {
        memcpy(r->msg + r->msg_len, data, len);
    }
    r->msg_len += len;
}

static int on_data(void *ud, wsock_opcode op, const uint8_t *data, size_t len, int first,
                   int last)
{
    rec *r = ud;

    CHECK(op == WSOCK_OP_TEXT || op == WSOCK_OP_BINARY, "data opcode");
    CHECK(len == 0 || data != NULL, "data pointer");
    if (first) {
        CHECK(!r->open, "first chunk while a message is open");
        r->open = 1;
        r->open_op = op;
        r->msg_len = 0;
    }
    else {
        CHECK(r->open, "chunk without an open message");
        CHECK(op == r->open_op, "opcode changed within a message");
        CHECK(len || last, "empty chunk that neither opens nor closes");
    }
    append(r, data, len);
    /* A compressed message (RSV1) is deflate data: its limit has the slack
     * of stored blocks, and its UTF-8 is checked once inflated. */
    CHECK(r->max == 0 || r->msg_len <= r->max
          + (r->p->msg_compressed ? WSOCK_COMPRESSED_SLACK(r->max) : 0),
          "message beyond the size limit delivered");
    if (last) {
        uint8_t kind = (uint8_t)(op | (r->p->msg_compressed ? 0x40 : 0));
        if (op == WSOCK_OP_TEXT && !r->p->msg_compressed) {
            CHECK(wsock_utf8_valid(r->msg, r->msg_len), "invalid UTF-8 text delivered");
        }
        mix(r, &kind, 1);
        mix(r, &r->msg_len, sizeof(r->msg_len));
        mix(r, r->msg, r->msg_len);
        r->open = 0;
        r->events++;
    }
    return 0;
}

static int on_control(void *ud, wsock_opcode op, unsigned code, const uint8_t *payload,
                      size_t len)
{
    rec *r = ud;
    uint8_t kind = (uint8_t)op;

    CHECK(op == WSOCK_OP_CLOSE || op == WSOCK_OP_PING || op == WSOCK_OP_PONG,
          "control opcode");
    CHECK(len <= WSOCK_MAX_CONTROL_PAYLOAD, "control payload > 125");
    CHECK(len == 0 || payload != NULL, "control pointer");
    if (op == WSOCK_OP_CLOSE) {
        CHECK(code == WSOCK_CLOSE_NO_STATUS || wsock_close_code_is_valid(code),
              "close code a peer may not send");
        CHECK(len <= WSOCK_MAX_CONTROL_PAYLOAD - 2, "close reason > 123");
        CHECK(wsock_utf8_valid(payload, len), "close reason not UTF-8");
        CHECK(code != WSOCK_CLOSE_NO_STATUS || len == 0, "reason without a code");
    }
    else {
        CHECK(code == 0, "ping/pong with a code");
    }
    mix(r, &kind, 1);
    mix(r, &code, sizeof(code));
    mix(r, &r->msg_len, sizeof(r->msg_len));  /* where in an open message */
    mix(r, payload, len);
    r->events++;
    return 0;
}

static const wsock_parser_sink sink = { on_data, on_control };

typedef struct {
    wsock_parse_result rc;
    unsigned code;
    size_t consumed;
    rec r;
} outcome;

/* Next chunk size from a xorshift state: mostly small, sometimes empty,
 * sometimes everything left. */
static size_t next_chunk(uint32_t *s, size_t left)
{
    size_t n;

    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    switch (*s % 8) {
    case 0:
        n = 0;
        break;
    case 1:
        n = left;
        break;
    default:
        n = 1 + (*s >> 8) % 16;
        break;
    }
    return n < left ? n : left;
}

static void parse(uint8_t cfg, const uint8_t *stream, size_t len, uint32_t seed,
                  outcome *out)
{
    static const uint64_t maxes[4] = { 0, 125, 1000, 70000 };
    wsock_parser p;
    size_t pos = 0;

    memset(out, 0, sizeof(*out));
    out->r.hash = 0xCBF29CE484222325ULL;
    wsock_parser_init(&p, (cfg & 1) ? WSOCK_ROLE_CLIENT : WSOCK_ROLE_SERVER,
                      maxes[(cfg >> 1) & 3]);
    p.allowed_rsv = (cfg & 8) ? 0x40 : 0;
    out->r.max = p.max_message_size;
    out->r.p = &p;

    for (;;) {
        size_t n = seed ? next_chunk(&seed, len - pos) : len - pos;
        uint8_t *chunk = malloc(n ? n : 1);
        size_t used = (size_t)-1;

        CHECK(chunk != NULL, "out of memory");
        if (n) {
            memcpy(chunk, stream + pos, n);
        }
        out->rc = wsock_parser_feed(&p, chunk, n, &sink, &out->r, &used);
        CHECK(used <= n, "consumed more than fed");
        CHECK(out->rc != WSOCK_PARSE_STOPPED, "stopped though the sink never asks");
        if (out->rc == WSOCK_PARSE_ERROR) {
            size_t again = (size_t)-1;
            CHECK(p.error_code == WSOCK_CLOSE_PROTOCOL_ERROR
                  || p.error_code == WSOCK_CLOSE_INVALID_DATA
                  || p.error_code == WSOCK_CLOSE_TOO_BIG, "error code");
            CHECK(p.error_reason != NULL && p.error_reason[0], "error reason");
            CHECK(wsock_parser_feed(&p, chunk, n, &sink, &out->r, &again) == WSOCK_PARSE_ERROR
                  && again == 0, "failed parser did not stay failed");
            out->code = p.error_code;
            out->consumed = pos + used;
            free(chunk);
            return;
        }
        CHECK(used == n, "OK without consuming everything");
        free(chunk);
        pos += n;
        if (pos == len) {
            break;
        }
    }
    out->consumed = pos;
    /* (the parser opens a message at its header, the sink at its first chunk) */
    CHECK(!out->r.open || wsock_parser_in_message(&p), "sink has a message the parser closed");
}

/* The incremental validator over the same chunks agrees with the one-shot
 * check of the whole input, and fails at the same point whatever the
 * chunking. */
static void check_utf8(const uint8_t *s, size_t len, uint32_t seed)
{
    wsock_utf8_state st;
    wsock_utf8_result res = WSOCK_UTF8_OK;
    size_t pos = 0;

    wsock_utf8_reset(&st);
    while (pos < len) {
        size_t n = next_chunk(&seed, len - pos);
        uint8_t *chunk = malloc(n ? n : 1);

        CHECK(chunk != NULL, "out of memory");
        if (n) {
            memcpy(chunk, s + pos, n);
        }
        res = wsock_utf8_feed(&st, chunk, n);
        free(chunk);
        pos += n;
        if (res == WSOCK_UTF8_INVALID) {
            break;
        }
    }
    CHECK((res == WSOCK_UTF8_OK) == (wsock_utf8_valid(s, len) != 0),
          "incremental and one-shot UTF-8 disagree");
    CHECK(res != WSOCK_UTF8_INVALID || !wsock_utf8_valid(s, pos),
          "UTF-8 failed where the prefix is valid");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome whole, split;
    uint32_t seed;

    if (size < 3) {
        return 0;
    }
    seed = ((uint32_t)data[1] << 8 | data[2]) + 1;  /* never 0: 0 means whole */
    parse(data[0], data + 3, size - 3, 0, &whole);
    parse(data[0], data + 3, size - 3, seed, &split);
    check_utf8(data + 3, size - 3, seed);
    CHECK(whole.rc == split.rc, "result depends on the chunking");
    CHECK(whole.code == split.code, "close code depends on the chunking");
    CHECK(whole.r.hash == split.r.hash && whole.r.events == split.r.events,
          "events depend on the chunking");
    if (whole.rc == WSOCK_PARSE_OK) {
        CHECK(whole.consumed == size - 3 && split.consumed == size - 3, "not all consumed");
    }
    free(whole.r.msg);
    free(split.r.msg);
    return 0;
}
