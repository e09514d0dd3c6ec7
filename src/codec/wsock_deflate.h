/*
 * wsock_deflate.h — the permessage-deflate stage of the codec (RFC 7692
 * §7.2): one message compressed or inflated at a time, with zlib.
 *
 * Pure: no Apache, no APR, no sockets.  zlib allocates its state lazily, at
 * the first message that needs it, and gives it back when the caller says
 * the context is not kept (no_context_takeover), so that an idle connection
 * holds none of zlib's ~40 KiB (inflate) or ~256 KiB (deflate) state.
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
    int      ready;        /* zs is initialised (lazily, by wsock_inflate) */
    int      window_bits;  /* 8..15: the peer's LZ77 window (negotiated) */
} wsock_inflater;

typedef enum {
    WSOCK_INFLATE_OK      = 0,
    WSOCK_INFLATE_TOO_BIG = 1, /* the message would inflate past the limit: 1009 */
    WSOCK_INFLATE_CORRUPT = 2, /* not valid deflate data: 1007 */
    WSOCK_INFLATE_NOMEM   = 3, /* zlib could not allocate: 1011 */
    WSOCK_INFLATE_STOPPED = 4  /* the sink asked to stop */
} wsock_inflate_result;

/* Where inflated bytes go, a chunk at a time (at most
 * WSOCK_INFLATE_CHUNK bytes per call); nonzero stops inflating. */
typedef int (*wsock_inflate_sink)(void *ud, const uint8_t *data, size_t len);

#define WSOCK_INFLATE_CHUNK (16 * 1024)

/* Sets up an inflater for a peer window of window_bits; allocates nothing. */
void wsock_inflater_init(wsock_inflater *inf, int window_bits);

/* Inflates the next len bytes of a compressed message's payload (any
 * chunking works).  last: the message ends with this chunk (the
 * 00 00 ff ff tail the sender removed is added back here).  *total holds
 * the message's inflated bytes so far (the caller zeroes it when a
 * message starts); limit (0 = none) bounds it: the sink never receives a
 * byte past the limit and inflating stops there, so a small message that
 * would inflate to gigabytes costs one chunk of work. */
wsock_inflate_result wsock_inflate(wsock_inflater *inf, const uint8_t *in, size_t len,
                                   int last, uint64_t limit, uint64_t *total,
                                   wsock_inflate_sink sink, void *ud);

/* After a message (or an abandoned one): keep_context keeps the window for
 * the next message (context takeover); otherwise zlib's memory is freed. */
void wsock_inflater_end_message(wsock_inflater *inf, int keep_context);

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

/* Room wsock_deflate_message may need for len bytes of input. */
size_t wsock_deflate_bound(size_t len);

/* Compresses one whole message into out (outcap >= wsock_deflate_bound(len))
 * as RFC 7692 §7.2.1 says: flushed to a byte boundary, the trailing
 * 00 00 ff ff removed.  keep_context keeps the window for the next message
 * (context takeover); otherwise the stream is reset.  Returns 0 and sets
 * *outlen, or -1 when zlib fails (out of memory). */
int wsock_deflate_message(wsock_deflater *d, const uint8_t *in, size_t len,
                          int keep_context, uint8_t *out, size_t outcap, size_t *outlen);

/* Frees zlib's memory; the next message initialises it again. */
void wsock_deflater_free(wsock_deflater *d);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_DEFLATE_H */
