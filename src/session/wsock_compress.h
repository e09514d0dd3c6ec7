/*
 * wsock_compress.h — permessage-deflate (RFC 7692) on one connection: the
 * extension stage of the outbound pipeline (wsock_output.c) and the
 * inflating of compressed messages (wsock_conn.c).  See wsock_compress.c.
 */
#ifndef WSOCK_COMPRESS_H
#define WSOCK_COMPRESS_H

#include "wsock_conn.h"
#include "wsock_deflate.h"
#include "wsock_pmd.h"

/* What a connection agreed to, and its zlib state (all lazily allocated). */
typedef struct wsock_pmd_state {
    wsock_pmd_agreed agreed;
    int form;                  /* its shareable form (WSOCK_FORM_*, or a key) */
    apr_size_t threshold;      /* shorter messages go out as they are */
    wsock_inflater inflater;   /* the client's messages */
    wsock_utf8_state utf8;     /* of the text message being inflated */
    apr_uint64_t inflated;     /* its bytes so far */
    wsock_deflater own;        /* server context takeover: ours, owner only */
} wsock_pmd_state;

/* The wire form of one message, as the extension stage decides it. */
#define WSOCK_FORM_PLAIN 0     /* as given, RSV1 clear */
#define WSOCK_FORM_OWN  (-1)   /* deflated with the connection's own context:
                                * in order, by its owner thread only */
/* Any other value: deflated on its own (no context), with the zlib
 * parameters the value encodes; the same bytes serve every connection of
 * the same form, so a broadcast is compressed once per form. */

/* After negotiation, before on_open: the connection compresses from now
 * on (its pool frees what it allocates). */
void wsock_compress_attach(wsock_conn *wc, const wsock_compress_conf *cc,
                           const wsock_pmd_agreed *agreed);

/* The form a data message of len bytes to wc takes. */
static inline int wsock_compress_form(const wsock_conn *wc, apr_size_t len)
{
    const wsock_pmd_state *z = wc->pmd;

    return z == NULL || len < z->threshold ? WSOCK_FORM_PLAIN : z->form;
}

/* Deflates a whole message for a shareable form, on the calling thread's
 * own deflater; the result stays valid until this thread's next call (or
 * wsock_compress_scratch_trim).  NULL when zlib is out of memory. */
const uint8_t *wsock_compress_shared(int form, const void *data, apr_size_t len,
                                     apr_size_t *outlen);

/* Owner thread: deflates with the connection's own context (WSOCK_FORM_OWN),
 * same validity as wsock_compress_shared. */
const uint8_t *wsock_compress_own(wsock_conn *wc, const void *data, apr_size_t len,
                                  apr_size_t *outlen);

/* Gives back the calling thread's output buffer when a large message made
 * it big. */
void wsock_compress_scratch_trim(void);

/* Owner thread: len bytes of a compressed message's payload (first/last as
 * the parser delivers them) inflated onto msg, checked against
 * WSockMaxMessageSize and, for text, UTF-8.  0, or the close code to fail
 * the connection with (*why says why). */
int wsock_compress_inflate(wsock_conn *wc, int is_text, const uint8_t *data, apr_size_t len,
                           int first, int last, wsock_buf *msg, const char **why);

/* Owner thread, on a quiet connection: gives back the deflate state kept
 * for context takeover (a compressor may always start afresh; the client's
 * inflater does not notice). */
void wsock_compress_trim(wsock_conn *wc);

#endif /* WSOCK_COMPRESS_H */
