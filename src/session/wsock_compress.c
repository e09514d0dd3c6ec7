/*
 * wsock_compress.c — permessage-deflate (RFC 7692) on a connection.
 *
 * Outbound, the extension stage gives each message a form.  By default the
 * server compresses every message on its own (server_no_context_takeover),
 * so the compressed bytes depend only on the message and zlib's parameters:
 * a broadcast is compressed once per form and the same frames go to every
 * member that agreed to that form (wsock_output_send_shared).  The deflate
 * state for that is one per thread, not per connection.  Where the admin
 * allows server context takeover, a connection gets a deflater of its own,
 * used in order by its owner thread alone; a quiet connection gives it back
 * (a compressor may always start afresh: the client's window only grows
 * unused).
 *
 * Inbound, a compressed message is inflated chunk by chunk as the parser
 * delivers it, its size checked against WSockMaxMessageSize while it
 * inflates, so a small frame that inflates to gigabytes costs one chunk.
 * zlib's inflate state exists only while a message is being inflated,
 * unless the client keeps its context (client_no_context_takeover off).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <apr_pools.h>

#include "wsock_compress.h"
#include "wsock_output.h"
#include "wsock_counters.h"

/* A shareable form encodes zlib's parameters; always > 0. */
static int form_key(int level, int window_bits, int mem_level)
{
    return (1 << 16) | (mem_level << 8) | (window_bits << 4) | level;
}

/* ---- each thread's deflater and output buffer ----------------------- */

typedef struct {
    wsock_deflater d;          /* for the shareable form `form` */
    int form;                  /* 0: d not set up */
    wsock_inflater inf;        /* for whole messages without client context */
    int inf_init;
    uint8_t *out;              /* compressed output, reused */
    size_t cap;
} thread_zone;

/* Kept larger than this, the output buffer is given back after use. */
#define ZONE_OUT_KEEP (256 * 1024)

static pthread_key_t zone_key;
static pthread_once_t zone_once = PTHREAD_ONCE_INIT;
static __thread thread_zone *tl_zone;

static void zone_free(void *data)
{
    thread_zone *tz = data;

    wsock_deflater_free(&tz->d);
    wsock_inflater_free(&tz->inf);
    free(tz->out);
    free(tz);
}

static void zone_key_make(void)
{
    (void)pthread_key_create(&zone_key, zone_free);   /* frees it at thread exit */
}

static thread_zone *zone(void)
{
    if (tl_zone == NULL) {
        pthread_once(&zone_once, zone_key_make);
        if ((tl_zone = calloc(1, sizeof(*tl_zone))) != NULL) {
            pthread_setspecific(zone_key, tl_zone);
        }
    }
    return tl_zone;
}

static const uint8_t *deflate_into_zone(thread_zone *tz, wsock_deflater *d, int keep,
                                        const void *data, apr_size_t len,
                                        apr_size_t *outlen)
{
    size_t need = wsock_deflate_bound(len), n;

    if (tz->cap < need) {
        uint8_t *p = realloc(tz->out, need);
        if (p == NULL) {
            return NULL;
        }
        tz->out = p;
        tz->cap = need;
    }
    if (wsock_deflate_message(d, data, len, keep, tz->out, tz->cap, &n) != 0) {
        return NULL;
    }
    /* Once per compression: a broadcast compressed once counts once. */
    wsock_count_hot(WSOCK_C_DEFLATE_RAW, len);
    wsock_count_hot(WSOCK_C_DEFLATE_WIRE, n);
    *outlen = n;
    return tz->out;
}

const uint8_t *wsock_compress_shared(int form, const void *data, apr_size_t len,
                                     apr_size_t *outlen)
{
    thread_zone *tz = zone();

    if (tz == NULL) {
        return NULL;
    }
    if (tz->form != form) {
        wsock_deflater_free(&tz->d);
        wsock_deflater_init(&tz->d, form & 0xF, (form >> 4) & 0xF, (form >> 8) & 0xFF);
        tz->form = form;
    }
    return deflate_into_zone(tz, &tz->d, 0, data, len, outlen);
}

const uint8_t *wsock_compress_own(wsock_conn *wc, const void *data, apr_size_t len,
                                  apr_size_t *outlen)
{
    thread_zone *tz = zone();

    return tz ? deflate_into_zone(tz, &wc->pmd->own, 1, data, len, outlen) : NULL;
}

void wsock_compress_scratch_trim(void)
{
    thread_zone *tz = tl_zone;

    if (tz && tz->cap > ZONE_OUT_KEEP) {
        free(tz->out);
        tz->out = NULL;
        tz->cap = 0;
    }
}

/* ---- a connection's state ------------------------------------------- */

static apr_status_t pmd_cleanup(void *data)
{
    wsock_pmd_state *z = data;

    wsock_inflater_free(&z->inflater);
    wsock_deflater_free(&z->own);
    return APR_SUCCESS;
}

void wsock_compress_attach(wsock_conn *wc, const wsock_compress_conf *cc,
                           const wsock_pmd_agreed *agreed)
{
    wsock_pmd_state *z = apr_pcalloc(wc->pool, sizeof(*z));
    int window = agreed->server_max_window_bits;

    z->agreed = *agreed;
    z->threshold = cc->threshold;
    /* A client that asked for an 8-bit window may still deflate with 9
     * (zlib, hence Node's ws, cannot write 8): inflate with at least 9. */
    wsock_inflater_init(&z->inflater, agreed->client_max_window_bits < 9
                                      ? 9 : agreed->client_max_window_bits);
    if (window < 9) {
        z->form = WSOCK_FORM_PLAIN;     /* zlib cannot write a 256-byte window */
    }
    else if (!agreed->server_no_context_takeover) {
        z->form = WSOCK_FORM_OWN;
        wsock_deflater_init(&z->own, cc->level, window, cc->mem_level);
    }
    else {
        z->form = form_key(cc->level, window, cc->mem_level);
    }
    apr_pool_cleanup_register(wc->pool, z, pmd_cleanup, apr_pool_cleanup_null);
    wc->pmd = z;
    wc->parser.allowed_rsv |= 0x40;     /* RSV1: a compressed message */
}

void wsock_compress_trim(wsock_conn *wc)
{
    if (wc->pmd) {
        wsock_deflater_free(&wc->pmd->own);
    }
}

/* ---- inflating ------------------------------------------------------ */

typedef struct {
    wsock_pmd_state *z;
    wsock_buf *msg;
    int is_text;
    int bad_text, no_memory;
} inflate_target;

static int append_inflated(void *ud, const uint8_t *data, size_t len)
{
    inflate_target *t = ud;

    if (t->is_text && wsock_utf8_feed(&t->z->utf8, data, len) == WSOCK_UTF8_INVALID) {
        t->bad_text = 1;
        return 1;
    }
    if (!wsock_buf_reserve(t->msg, len)) {
        t->no_memory = 1;
        return 1;
    }
    memcpy(t->msg->data + t->msg->len, data, len);
    t->msg->len += len;
    return 0;
}

/* The inflater for a chunk: a message that comes whole in one chunk (the
 * usual case) and keeps no client context is inflated by its thread's
 * inflater, reset after it (no zlib set-up and tear-down per message);
 * any other by the connection's own. */
static wsock_inflater *inflater_for(wsock_pmd_state *z, int whole)
{
    thread_zone *tz;

    if (!whole || !z->agreed.client_no_context_takeover || (tz = zone()) == NULL) {
        return &z->inflater;
    }
    if (!tz->inf_init) {
        wsock_inflater_init(&tz->inf, 15);      /* reads any client window */
        tz->inf_init = 1;
    }
    return &tz->inf;
}

int wsock_compress_inflate(wsock_conn *wc, int is_text, const uint8_t *data, apr_size_t len,
                           int first, int last, wsock_buf *msg, const char **why)
{
    wsock_pmd_state *z = wc->pmd;
    inflate_target t = { z, msg, is_text, 0, 0 };
    wsock_inflater *inf = inflater_for(z, first && last);
    int code = 0;

    wsock_count_hot(WSOCK_C_INFLATE_WIRE, len);
    if (first) {
        z->inflated = 0;
        wsock_utf8_reset(&z->utf8);
        msg->len = 0;
    }
    switch (wsock_inflate(inf, data, len, last, wc->set.max_message, &z->inflated,
                          append_inflated, &t)) {
    case WSOCK_INFLATE_OK:
        if (last && is_text && z->utf8.need != 0) {
            code = WSOCK_CLOSE_INVALID_DATA;
            *why = "compressed text message ends inside a UTF-8 sequence";
        }
        break;
    case WSOCK_INFLATE_TOO_BIG:
        code = WSOCK_CLOSE_TOO_BIG;
        *why = "message too big once inflated";
        break;
    case WSOCK_INFLATE_CORRUPT:
        code = WSOCK_CLOSE_INVALID_DATA;
        *why = "invalid compressed data";
        break;
    case WSOCK_INFLATE_STOPPED:
        if (t.bad_text) {
            code = WSOCK_CLOSE_INVALID_DATA;
            *why = "compressed text message is not valid UTF-8";
            break;
        }
        /* the sink ran out of memory */
        /* fall through */
    default:
        code = WSOCK_CLOSE_INTERNAL_ERROR;
        *why = "out of memory";
        break;
    }
    if (last && !code) {
        wsock_count_hot(WSOCK_C_INFLATE_RAW, z->inflated);
    }
    if (inf != &z->inflater) {
        wsock_inflater_reset(inf);  /* nothing of this client's for the next */
    }
    else if (code || last) {
        wsock_inflater_end_message(inf, !code && !z->agreed.client_no_context_takeover);
    }
    return code;
}
