/*
 * wsock_deflate.c — the permessage-deflate stage (RFC 7692 §7.2) on zlib:
 * raw deflate, one message at a time, zlib's state allocated at the first
 * message that needs it and given back when the context is not kept.
 *
 * Inflating is bounded: the output goes through one WSOCK_INFLATE_CHUNK
 * buffer on the stack, and zlib is never given room for more than one
 * byte past the message limit, so a small frame that would inflate to
 * gigabytes costs at most one chunk of work before it is refused.
 */
#include <limits.h>
#include <string.h>

#include "wsock_deflate.h"

/* zlib counts in uInt: larger buffers go in pieces of at most this. */
#define ZPIECE ((size_t)UINT_MAX)

/* The end of an empty stored block (LEN 0, NLEN 0xffff): what a
 * Z_SYNC_FLUSH ends with and what the sender removes (RFC 7692 §7.2.1). */
static const uint8_t sync_tail[4] = { 0x00, 0x00, 0xff, 0xff };

/* The states of wsock_inflater.ready. */
enum {
    INF_NONE = 0,      /* no zlib state */
    INF_READY = 1,     /* zlib state, inside or between deflate streams */
    INF_ENDED = 2,     /* this message's stream ended (BFINAL) */
    INF_ENDED_PAD = 3  /* ... and the 0x00 of RFC 7692 §7.2.3.3 followed */
};

/* ---- inflating ------------------------------------------------------ */

/* zlib's data_type after inflate(): the unused bits of the last input
 * byte, +128 when it stopped right at a block boundary.  A boundary with
 * no bits left is where every complete message ends (its last block is
 * the empty stored block the tail completes), and where a fresh stream
 * starts, which inflate() has not marked yet: we mark it ourselves. */
static int at_block_boundary(const z_stream *zs)
{
    return (zs->data_type & 128) && (zs->data_type & 63) == 0;
}

static void mark_fresh(wsock_inflater *inf)
{
    inf->zs.data_type = 128;
    inf->ready = INF_READY;
}

static void inflate_restart(wsock_inflater *inf)
{
    inflateReset(&inf->zs);
    mark_fresh(inf);
}

void wsock_inflater_init(wsock_inflater *inf, int window_bits)
{
    memset(inf, 0, sizeof(*inf));
    inf->window_bits = window_bits;
}

static wsock_inflate_result inflate_start(wsock_inflater *inf)
{
    int wb = inf->window_bits;
    int rc;

    /* A peer that agreed to 8 bits and deflates with zlib asks zlib for 9
     * (it has no raw deflate with 8), but zlib never reaches further back
     * than the window less 262 bytes of lookahead, 250 bytes at 9 bits:
     * inflating with 8 bits holds the peer to its word and reads them. */
    if (wb < 8 || wb > 15) {
        wb = 15;
    }
    inf->zs.next_in = Z_NULL;
    inf->zs.avail_in = 0;
    rc = inflateInit2(&inf->zs, -wb);
    if (rc != Z_OK) {
        return rc == Z_MEM_ERROR ? WSOCK_INFLATE_NOMEM : WSOCK_INFLATE_CORRUPT;
    }
    mark_fresh(inf);
    return WSOCK_INFLATE_OK;
}

/* Inflates in[0..len) to the sink.  *ended: the deflate stream ended
 * (BFINAL) with *rest bytes of in left after it. */
static wsock_inflate_result inflate_bytes(wsock_inflater *inf, const uint8_t *in, size_t len,
                                          uint64_t limit, uint64_t *total,
                                          wsock_inflate_sink sink, void *ud,
                                          int *ended, size_t *rest)
{
    z_stream *zs = &inf->zs;
    uint8_t buf[WSOCK_INFLATE_CHUNK];

    *ended = 0;
    *rest = 0;
    zs->next_in = (Bytef *)in;  /* zlib does not write through next_in */
    for (;;) {
        size_t piece = len < ZPIECE ? len : ZPIECE;
        size_t room = sizeof(buf);
        size_t consumed, produced;
        int rc;

        /* Room for at most one byte past the limit: producing it is the
         * proof that the message is too big. */
        if (limit && limit - *total < room) {
            room = (size_t)(limit - *total) + 1;
        }
        zs->avail_in = (uInt)piece;
        zs->next_out = buf;
        zs->avail_out = (uInt)room;
        rc = inflate(zs, Z_NO_FLUSH);
        consumed = piece - zs->avail_in;
        produced = room - zs->avail_out;
        len -= consumed;
        if (produced) {
            if (limit && produced > limit - *total) {
                return WSOCK_INFLATE_TOO_BIG;
            }
            *total += produced;
            if (sink && sink(ud, buf, produced)) {
                return WSOCK_INFLATE_STOPPED;
            }
        }
        switch (rc) {
        case Z_OK:
            break;
        case Z_STREAM_END:
            *ended = 1;
            *rest = len;
            return WSOCK_INFLATE_OK;
        case Z_BUF_ERROR:
            /* No progress was possible: fine once the input is used up
             * (the call after an exactly full buffer), a dead end else. */
            if (len == 0) {
                return WSOCK_INFLATE_OK;
            }
            return WSOCK_INFLATE_CORRUPT;
        case Z_MEM_ERROR:
            return WSOCK_INFLATE_NOMEM;
        default:  /* Z_DATA_ERROR; Z_NEED_DICT, Z_STREAM_ERROR cannot be */
            return WSOCK_INFLATE_CORRUPT;
        }
        if (len == 0 && zs->avail_out > 0) {
            return WSOCK_INFLATE_OK;  /* all input used, all output out */
        }
        if (consumed == 0 && produced == 0) {
            return WSOCK_INFLATE_CORRUPT;  /* zlib stuck: never loop on it */
        }
    }
}

/* After the deflate stream ended (BFINAL): RFC 7692 §7.2.3.3 lets one
 * 0x00 follow (the header of the empty stored block whose LEN/NLEN the
 * sender removed); anything else is data outside the stream. */
static wsock_inflate_result after_end(wsock_inflater *inf, const uint8_t *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (inf->ready != INF_ENDED || in[i] != 0x00) {
            return WSOCK_INFLATE_CORRUPT;
        }
        inf->ready = INF_ENDED_PAD;
    }
    return WSOCK_INFLATE_OK;
}

wsock_inflate_result wsock_inflate(wsock_inflater *inf, const uint8_t *in, size_t len,
                                   int last, uint64_t limit, uint64_t *total,
                                   wsock_inflate_sink sink, void *ud)
{
    wsock_inflate_result r;
    int ended;
    size_t rest;

    if (limit && *total > limit) {
        return WSOCK_INFLATE_TOO_BIG;
    }
    if (inf->ready >= INF_ENDED) {
        r = after_end(inf, in, len);
        if (r != WSOCK_INFLATE_OK) {
            return r;
        }
    }
    else if (len > 0) {
        if (inf->ready == INF_NONE && (r = inflate_start(inf)) != WSOCK_INFLATE_OK) {
            return r;
        }
        r = inflate_bytes(inf, in, len, limit, total, sink, ud, &ended, &rest);
        if (r != WSOCK_INFLATE_OK) {
            return r;
        }
        if (ended) {
            inf->ready = INF_ENDED;
            r = after_end(inf, in + len - rest, rest);
            if (r != WSOCK_INFLATE_OK) {
                return r;
            }
        }
    }
    if (!last) {
        return WSOCK_INFLATE_OK;
    }
    if (inf->ready >= INF_ENDED) {
        inflate_restart(inf);  /* the next message starts a new stream */
        return WSOCK_INFLATE_OK;
    }
    /* No payload at all (a sender's sync flush with nothing to flush
     * writes nothing; §7.2.3.6's 0x00 is the usual empty message), or the
     * sender kept the tail (websockets does when a message's last frame
     * compresses to nothing): the message is complete without the tail,
     * and adding it would leave half a block for the next message. */
    if (inf->ready == INF_NONE || at_block_boundary(&inf->zs)) {
        return WSOCK_INFLATE_OK;
    }
    r = inflate_bytes(inf, sync_tail, sizeof(sync_tail), limit, total, sink, ud, &ended, &rest);
    if (r != WSOCK_INFLATE_OK) {
        return r;
    }
    if (ended) {
        /* The tail completed a final stored block; what is left of the
         * tail is ours, not the sender's. */
        inflate_restart(inf);
        return WSOCK_INFLATE_OK;
    }
    /* A complete message ends where the tail's stored block ends;
     * anything else is a truncated or mangled stream. */
    return at_block_boundary(&inf->zs) ? WSOCK_INFLATE_OK : WSOCK_INFLATE_CORRUPT;
}

void wsock_inflater_end_message(wsock_inflater *inf, int keep_context)
{
    if (inf->ready == INF_NONE) {
        return;
    }
    if (!keep_context) {
        wsock_inflater_free(inf);
    }
    else if (inf->ready != INF_READY || !at_block_boundary(&inf->zs)) {
        /* An abandoned message left the stream mid-block (or past its
         * end): start over; a later reference into the lost window is
         * "distance too far back", CORRUPT, never wrong bytes. */
        inflate_restart(inf);
    }
}

void wsock_inflater_reset(wsock_inflater *inf)
{
    if (inf->ready != INF_NONE) {
        inflate_restart(inf);       /* inflateReset: the window is emptied */
    }
}

void wsock_inflater_free(wsock_inflater *inf)
{
    if (inf->ready != INF_NONE) {
        inflateEnd(&inf->zs);
        inf->ready = INF_NONE;
    }
}

/* ---- compressing ---------------------------------------------------- */

void wsock_deflater_init(wsock_deflater *d, int level, int window_bits, int mem_level)
{
    memset(d, 0, sizeof(*d));
    d->level = level;
    d->window_bits = window_bits;
    d->mem_level = mem_level;
}

/* zlib's deflateBound() for parameters it cannot see (zlib 1.2.13,
 * deflate.c): the larger of ~13% for fixed blocks of 9-bit literals
 * (a window no larger than the symbol buffer, so stored blocks may be
 * impossible; blocks of 255 symbols or more) and ~4% for stored blocks of
 * 127 bytes (mem_level 1).  Our output ends with a sync flush instead of
 * a final block: 3 header bits and LEN/NLEN more, at most 5 bytes; the
 * rest of the slack keeps more than 6 bytes free at the end, so zlib
 * never repeats the flush marker for want of room. */
size_t wsock_deflate_bound(size_t len)
{
    size_t fixedlen, storelen;

    if (len > SIZE_MAX / 2) {
        return SIZE_MAX;
    }
    fixedlen = len + (len >> 3) + (len >> 8) + (len >> 9) + 4;
    storelen = len + (len >> 5) + (len >> 7) + (len >> 11) + 7;
    return (fixedlen > storelen ? fixedlen : storelen) + 16;
}

int wsock_deflate_message(wsock_deflater *d, const uint8_t *in, size_t len,
                          int keep_context, uint8_t *out, size_t outcap, size_t *outlen)
{
    z_stream *zs = &d->zs;
    size_t done = 0;

    if (len == 0) {
        /* RFC 7692 §7.2.3.6: the empty stored block less its tail, the
         * same bytes zlib would write, without waking zlib (a repeated
         * sync flush with no input would write nothing at all). */
        if (outcap < 1) {
            return -1;
        }
        out[0] = 0x00;
        *outlen = 1;
        if (d->ready && !keep_context) {
            deflateReset(zs);
        }
        return 0;
    }
    if (!d->ready) {
        zs->next_in = Z_NULL;
        zs->avail_in = 0;
        if (deflateInit2(zs, d->level, Z_DEFLATED, -d->window_bits, d->mem_level,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            return -1;
        }
        d->ready = 1;
    }
    zs->next_in = (Bytef *)in;  /* zlib does not write through next_in */
    zs->next_out = out;
    for (;;) {
        size_t piece = len < ZPIECE ? len : ZPIECE;
        size_t space = outcap - done < ZPIECE ? outcap - done : ZPIECE;
        int flush = piece == len ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        size_t consumed, produced;
        int rc;

        zs->avail_in = (uInt)piece;
        zs->avail_out = (uInt)space;
        rc = deflate(zs, flush);
        consumed = piece - zs->avail_in;
        produced = space - zs->avail_out;
        len -= consumed;
        done += produced;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            goto fail;
        }
        if (flush == Z_SYNC_FLUSH && zs->avail_in == 0 && zs->avail_out > 0) {
            break;  /* flushed: everything is in out */
        }
        if (done == outcap || (consumed == 0 && produced == 0)) {
            goto fail;  /* out is smaller than wsock_deflate_bound() */
        }
    }
    if (done < sizeof(sync_tail) || memcmp(out + done - sizeof(sync_tail), sync_tail,
                                           sizeof(sync_tail)) != 0) {
        goto fail;
    }
    *outlen = done - sizeof(sync_tail);
    if (!keep_context) {
        deflateReset(zs);
    }
    return 0;

fail:
    /* Start a new stream: the peer's inflater sits at the block boundary
     * where the last message ended, and a fresh stream never refers to
     * anything before it, so later messages still inflate right. */
    deflateReset(zs);
    return -1;
}

void wsock_deflater_free(wsock_deflater *d)
{
    if (d->ready) {
        deflateEnd(&d->zs);
        d->ready = 0;
    }
}
