/*
 * wsock_codec.h — the RFC 6455 frame codec of mod_wsock.
 *
 * Pure C: no Apache, no APR, no sockets, no allocation.  The parser is
 * incremental (any chunking of the input works, one byte at a time included)
 * and reports whole control frames and data payload chunks through a sink.
 * The serializer writes frame headers into caller-provided memory.
 *
 * Both roles are supported so that the same code serves the module (server:
 * peer frames must be masked) and the benchmark client (client: peer frames
 * must not be masked).
 */
#ifndef WSOCK_CODEC_H
#define WSOCK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opcodes (RFC 6455 §5.2). */
typedef enum {
    WSOCK_OP_CONT   = 0x0,
    WSOCK_OP_TEXT   = 0x1,
    WSOCK_OP_BINARY = 0x2,
    WSOCK_OP_CLOSE  = 0x8,
    WSOCK_OP_PING   = 0x9,
    WSOCK_OP_PONG   = 0xA
} wsock_opcode;

/* Close codes the codec itself produces (RFC 6455 §7.4.1). */
enum {
    WSOCK_CLOSE_NORMAL         = 1000,
    WSOCK_CLOSE_GOING_AWAY     = 1001,
    WSOCK_CLOSE_PROTOCOL_ERROR = 1002,
    WSOCK_CLOSE_UNSUPPORTED    = 1003,
    WSOCK_CLOSE_NO_STATUS      = 1005, /* never on the wire */
    WSOCK_CLOSE_ABNORMAL       = 1006, /* never on the wire */
    WSOCK_CLOSE_INVALID_DATA   = 1007,
    WSOCK_CLOSE_POLICY         = 1008,
    WSOCK_CLOSE_TOO_BIG        = 1009,
    WSOCK_CLOSE_INTERNAL_ERROR = 1011,
    WSOCK_CLOSE_TRY_AGAIN      = 1013
};

#define WSOCK_MAX_CONTROL_PAYLOAD 125

/* A compressed message may take a little more room on the wire than
 * inflated (deflate's stored blocks); the parser lets its compressed
 * payload exceed max_message_size by this much (1/8 + 64 bytes), the
 * inflated size being bounded exactly by the caller. */
#define WSOCK_COMPRESSED_SLACK(max) ((max) / 8 + 64)
/* Largest frame header: 2 + 8 (64-bit length) + 4 (mask key). */
#define WSOCK_MAX_HEADER_SIZE 14

/* ---------------------------------------------------------------------
 * UTF-8 validation (incremental, fail-fast)
 * ------------------------------------------------------------------ */

/* Validator state; zero-initialise (or wsock_utf8_reset) before a message. */
typedef struct {
    uint32_t need;   /* continuation bytes still expected */
    uint8_t  lo, hi; /* allowed range of the next continuation byte */
} wsock_utf8_state;

typedef enum {
    WSOCK_UTF8_INVALID = -1, /* the bytes so far can never be valid UTF-8 */
    WSOCK_UTF8_PARTIAL = 0,  /* valid so far, ends inside a sequence */
    WSOCK_UTF8_OK      = 1   /* valid so far, ends on a sequence boundary */
} wsock_utf8_result;

void wsock_utf8_reset(wsock_utf8_state *st);
/* Feeds len more bytes; fails at the first byte that makes the input invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
wsock_utf8_result wsock_utf8_feed(wsock_utf8_state *st, const uint8_t *s, size_t len);
/* One-shot check of a complete string: 1 if valid UTF-8, 0 otherwise. */
int wsock_utf8_valid(const uint8_t *s, size_t len);

/* ---------------------------------------------------------------------
 * Close-code rules (RFC 6455 §7.4)
 * ------------------------------------------------------------------ */

/* 1 if a peer may send this code in a close frame, 0 otherwise. */
int wsock_close_code_is_valid(unsigned code);

/* Writes a close payload (2-byte code + reason, reason cut to fit 125 bytes
 * at a UTF-8 boundary) into out; returns its length.  code 0 means "no
 * status" and produces an empty payload. */
size_t wsock_close_payload(uint8_t out[WSOCK_MAX_CONTROL_PAYLOAD], unsigned code,
                           const char *reason, size_t reason_len);

/* ---------------------------------------------------------------------
 * Masking
 * ------------------------------------------------------------------ */

/* XORs len bytes in place with key, starting at key position (offset % 4).
 * Word-at-a-time; the data need not be aligned. */
void wsock_mask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset);

/* ---------------------------------------------------------------------
 * Serializer
 * ------------------------------------------------------------------ */

/* Size of a frame header for this payload length. */
size_t wsock_frame_header_size(uint64_t payload_len, int masked);

/* Writes a frame header into out (WSOCK_MAX_HEADER_SIZE bytes suffice) and
 * returns its length.  mask_key NULL writes an unmasked (server) frame;
 * otherwise the key is written and the caller masks the payload with
 * wsock_mask().  Lengths use the minimal encoding. */
size_t wsock_frame_header_write(uint8_t *out, int fin, wsock_opcode op,
                                uint64_t payload_len, const uint8_t mask_key[4]);

/* The same with reserved bits (rsv: a mask of 0x70; 0x40 = RSV1, which
 * permessage-deflate sets on a compressed message's first frame). */
size_t wsock_frame_header_write_rsv(uint8_t *out, int fin, unsigned rsv, wsock_opcode op,
                                    uint64_t payload_len, const uint8_t mask_key[4]);

/* ---------------------------------------------------------------------
 * Parser
 * ------------------------------------------------------------------ */

/* Where the parser delivers what it finds.  A callback returns 0 to go on,
 * nonzero to stop: wsock_parser_feed then returns at once, having consumed
 * exactly the bytes of what was delivered. */
typedef struct {
    /* A chunk of a data message's payload, already unmasked (in place, in the
     * buffer given to wsock_parser_feed) and, for text, UTF-8 checked so far.
     * op is TEXT or BINARY (the message's opcode, also for continuation
     * frames).  first: first chunk of the message; last: the message ends
     * with this chunk.  A message may arrive as a single chunk with
     * first && last (the common, zero-copy case) and an empty message as one
     * chunk of length 0. */
    int (*on_data)(void *ud, wsock_opcode op, const uint8_t *data, size_t len,
                   int first, int last);
    /* A whole, validated control frame (CLOSE, PING or PONG).  For CLOSE,
     * code is the status code (WSOCK_CLOSE_NO_STATUS if the payload is
     * empty) and payload/len is the reason; for PING/PONG code is 0 and
     * payload/len is the whole payload. */
    int (*on_control)(void *ud, wsock_opcode op, unsigned code,
                      const uint8_t *payload, size_t len);
} wsock_parser_sink;

typedef enum {
    WSOCK_ROLE_SERVER = 0, /* peer frames must be masked */
    WSOCK_ROLE_CLIENT = 1  /* peer frames must not be masked */
} wsock_role;

typedef struct {
    /* --- settings (set before the first feed; see wsock_parser_init) --- */
    wsock_role role;
    uint64_t   max_message_size; /* whole-message limit, 0 = no limit */
    uint8_t    allowed_rsv;      /* RSV bits negotiated extensions allow (0x70 mask);
                                    0x40 (RSV1) = permessage-deflate (RFC 7692) */

    /* --- read by the sink during on_data --- */
    int      msg_compressed;  /* the message's first frame had RSV1 (with 0x40
                                 allowed): its payload is deflate data, whose
                                 UTF-8 check and size limit are the caller's
                                 after inflating (WSOCK_COMPRESSED_SLACK) */

    /* --- state (private) --- */
    int      stage;           /* header byte being read, or payload */
    uint8_t  hdr[WSOCK_MAX_HEADER_SIZE];
    size_t   hdr_have, hdr_need;
    int      fin;
    wsock_opcode op;          /* opcode of the current frame */
    int      masked;
    uint8_t  key[4];
    uint64_t frame_len, frame_done;
    wsock_opcode msg_op;      /* TEXT/BINARY while a message is open, else CONT */
    uint64_t msg_len;         /* payload bytes of the open message so far */
    int      msg_first_pending; /* next data chunk is the message's first */
    wsock_utf8_state utf8;
    uint8_t  ctrl[WSOCK_MAX_CONTROL_PAYLOAD];
    int      failed;
    int      rsv1;            /* RSV1 of the current frame */

    /* --- outcome, when wsock_parser_feed returns WSOCK_PARSE_ERROR --- */
    unsigned    error_code;   /* 1002, 1007 or 1009 */
    const char *error_reason; /* static text, for the log and the close frame */
} wsock_parser;

typedef enum {
    WSOCK_PARSE_ERROR   = -1, /* protocol violation: see error_code/reason */
    WSOCK_PARSE_OK      = 0,  /* all input consumed */
    WSOCK_PARSE_STOPPED = 1   /* a sink callback asked to stop */
} wsock_parse_result;

void wsock_parser_init(wsock_parser *p, wsock_role role, uint64_t max_message_size);

/* Parses len bytes of buf (which it may modify: payloads are unmasked in
 * place).  *consumed receives the number of bytes used.  After an error the
 * parser stays failed and consumes nothing more. */
wsock_parse_result wsock_parser_feed(wsock_parser *p, uint8_t *buf, size_t len,
                                     const wsock_parser_sink *sink, void *ud,
                                     size_t *consumed);

/* 1 while a fragmented data message is open (started, not finished). */
int wsock_parser_in_message(const wsock_parser *p);

/* 1 while a frame is partly read (some of its header or payload came, not
 * all); 0 exactly between frames. */
int wsock_parser_mid_frame(const wsock_parser *p);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_CODEC_H */
