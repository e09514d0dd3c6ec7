/*
 * wsock_deflate.h — the permessage-deflate stage of the codec (RFC 7692
 * §7.2): one message compressed or inflated at a time, with zlib.
 *
 * Pure: no Apache, no APR, no sockets.  zlib allocates its state lazily, at
 * the first message that needs it, and gives it back when the caller says
 * the context is not kept (no_context_takeover), so that an idle connection
 * holds none of zlib's ~40 KiB (inflate) or ~256 KiB (deflate) state.
 * Measured with zlib 1.2.13 (bytes zlib asks for): inflate 7160 B of
 * state, plus the window at the first output (32 KiB at 15 bits, 512 B
 * at 9); deflate, window bits/mem_level, 15/8 262 KiB, 15/9 390 KiB,
 * 15/1 135 KiB, 9/9 264 KiB, 9/1 8.8 KiB (mem_level sizes the hash table
 * and the symbol buffer, window_bits the window).
 *
 * zlib allocates with malloc unless zs.zalloc/zfree/opaque are set between
 * the _init call and the first message (the unit tests count bytes so).
 */
#ifndef WSOCK_DEFLATE_H
#define WSOCK_DEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- inflating a peer's messages ---------------------------------- */

typedef struct {
    z_stream zs;
    int      ready;        /* nonzero: zs is initialised (lazily, by
                              wsock_inflate); 2 and 3 are internal states
                              after a stream's end (BFINAL) */
    int      window_bits;  /* 8..15: the peer's LZ77 window (negotiated);
                              a value out of range means 15 */
} wsock_inflater;

typedef enum {
    WSOCK_INFLATE_OK      = 0,
    WSOCK_INFLATE_TOO_BIG = 1, /* the message would inflate past the limit: 1009 */
    WSOCK_INFLATE_CORRUPT = 2, /* not valid deflate data: 1007 */
    WSOCK_INFLATE_NOMEM   = 3, /* zlib could not allocate: 1011 */
    WSOCK_INFLATE_STOPPED = 4  /* the sink asked to stop */
} wsock_inflate_result;

/* Where inflated bytes go, a chunk at a time (at most
 * WSOCK_INFLATE_CHUNK bytes per call); nonzero stops inflating.  The
 * bytes are valid during the call only. */
typedef int (*wsock_inflate_sink)(void *ud, const uint8_t *data, size_t len);

#define WSOCK_INFLATE_CHUNK (16 * 1024)

/* Sets up an inflater for a peer window of window_bits; allocates nothing. */
void wsock_inflater_init(wsock_inflater *inf, int window_bits);

/* Inflates the next len bytes of a compressed message's payload (in any
 * chunking, empty chunks too).  last: the message ends
 * with this chunk (the 00 00 ff ff tail the sender removed is added back
 * here; an empty payload is an empty message, like the 0x00 of RFC 7692
 * §7.2.3.6).
 * *total holds the message's inflated bytes so far, all of them passed to
 * the sink (the caller zeroes it when a message starts); limit (0 = none)
 * bounds it: the sink never receives a byte past the limit, and zlib is
 * never given room for more than one byte past it, so a small message
 * that would inflate to gigabytes costs at most one chunk of work.  On
 * TOO_BIG the chunk that crossed the limit is not passed on.  sink may be
 * NULL (the bytes are counted and dropped).
 *
 * CORRUPT: not deflate data, a message that does not end at the end of a
 * block (truncated), or bytes after a final block (BFINAL) other than the
 * one 0x00 of RFC 7692 §7.2.3.3.  After any result but OK the message is
 * over: call wsock_inflater_end_message (keep_context 0 frees all).
 *
 * window_bits sizes the memory kept, it is not a check of the peer: zlib
 * resolves a reference from its window or from the output of the same
 * call, so a peer that refers further back than it agreed to is read or
 * refused (CORRUPT) depending on how its bytes arrive.  A peer that keeps
 * to its window gets the same result and bytes for any chunking. */
wsock_inflate_result wsock_inflate(wsock_inflater *inf, const uint8_t *in, size_t len,
                                   int last, uint64_t limit, uint64_t *total,
                                   wsock_inflate_sink sink, void *ud);

/* After a message (or an abandoned one): keep_context keeps the window for
 * the next message (context takeover; after an abandoned message or a
 * final block the stream starts over, keeping the allocation); otherwise
 * zlib's memory is freed (ready becomes 0). */
void wsock_inflater_end_message(wsock_inflater *inf, int keep_context);

/* Forgets the stream and its window but keeps zlib's memory: the inflater
 * may then serve another peer's message (one inflater per thread) without
 * any of the last peer's bytes being reachable. */
void wsock_inflater_reset(wsock_inflater *inf);

/* Frees zlib's memory (safe on an inflater never used). */
void wsock_inflater_free(wsock_inflater *inf);

/* ---- compressing our messages -------------------------------------- */

typedef struct {
    z_stream zs;
    int      ready;        /* zs is initialised (lazily) */
    int      level;        /* 0..9 */
    int      window_bits;  /* 9..15 (zlib cannot write raw deflate with 8) */
    int      mem_level;    /* 1..9 */
} wsock_deflater;

/* Sets up a deflater; allocates nothing. */
void wsock_deflater_init(wsock_deflater *d, int level, int window_bits, int mem_level);

/* Room wsock_deflate_message may need for len bytes of input, whatever
 * the level, window and mem_level (zlib's conservative deflateBound plus
 * the sync flush): len + 13% + 20 bytes, about. */
size_t wsock_deflate_bound(size_t len);

/* Compresses one whole message into out (outcap >= wsock_deflate_bound(len))
 * as RFC 7692 §7.2.1 says: flushed to a byte boundary, the trailing
 * 00 00 ff ff removed; an empty message is the single byte 0x00
 * (§7.2.3.6) and wakes no zlib state.  keep_context keeps the window for
 * the next message (context takeover); otherwise the stream is reset,
 * keeping zlib's allocation (wsock_deflater_free gives it back).  Returns
 * 0 and sets *outlen, or -1 when zlib fails (out of memory, parameters
 * zlib refuses such as window_bits 8, outcap too small); after -1 the
 * stream starts over, so the next messages still inflate right at the
 * peer even with context takeover. */
int wsock_deflate_message(wsock_deflater *d, const uint8_t *in, size_t len,
                          int keep_context, uint8_t *out, size_t outcap, size_t *outlen);

/* Frees zlib's memory; the next message initialises it again. */
void wsock_deflater_free(wsock_deflater *d);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_DEFLATE_H */
