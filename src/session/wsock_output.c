/*
 * wsock_output.c — everything a connection sends: serializing messages
 * into frames, the owner's output buffer, the outbound queue that other
 * threads fill, and the flush through the output filters.
 *
 * The owner thread serializes small messages straight into a reused buffer
 * (no allocation per message in steady state) and hands large payloads to
 * the filters without copying them.  Other threads serialize into a queue
 * entry of their own, append it under the mutex and wake the owner: only
 * the owner ever writes to the filters.
 */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <util_filter.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "wsock_compress.h"
#include "wsock_conn.h"
#include "wsock_loop.h"
#include "wsock_netout.h"
#include "wsock_output.h"
#include "wsock_slow.h"
#include "wsock_counters.h"

APLOG_USE_MODULE(wsock);

/* Payloads above this go to the filters by reference instead of being
 * copied into the output buffer. */
#define WSOCK_COPY_LIMIT (16 * 1024)

int wsock_buf_reserve(wsock_buf *b, apr_size_t extra)
{
    apr_size_t want = b->len + extra, cap = b->cap ? b->cap : 4096;
    uint8_t *p;

    if (want <= b->cap) {
        return 1;
    }
    while (cap < want) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

static apr_status_t buf_free(void *data)
{
    wsock_buf *b = data;

    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return APR_SUCCESS;
}

void wsock_buf_release(wsock_buf *b)
{
    if (b->len == 0 && b->cap) {
        buf_free(b);
    }
}

void wsock_buf_trim(wsock_buf *b)
{
    if (b->len == 0 && b->cap > WSOCK_BUF_KEEP) {
        buf_free(b);
    }
}

void wsock_buf_init(wsock_buf *b, apr_pool_t *pool)
{
    memset(b, 0, sizeof(*b));
    apr_pool_cleanup_register(pool, b, buf_free, apr_pool_cleanup_null);
}

/* ---- the outbound pipeline ---------------------------------------------
 * Every frame the server sends is made here, in three steps:
 *  1. the extension stage (wsock_compress.c) gives a data message its wire
 *     form: as it is, or deflated (permessage-deflate: RSV1 on the first
 *     frame); control frames skip it;
 *  2. the payload is cut into frames, per WSockFragmentSize (a control
 *     frame is always one);
 *  3. the frames are copied into a buffer (the owner's obuf, or a
 *     wsock_frames for a queue, shared by a broadcast's receivers), or,
 *     for a large payload, handed to the filters by reference. */

typedef struct {
    wsock_opcode op;
    unsigned rsv;              /* 0x40 (RSV1) when deflated */
    const uint8_t *data;       /* the payload on the wire */
    apr_size_t len;
    apr_size_t frag;           /* largest frame payload; 0 = one frame */
} out_msg;

/* Step 1: the wire form of a data message of len bytes to wc, in the form
 * wsock_compress_form() chose (or WSOCK_FORM_PLAIN).  A deflated payload
 * lives in this thread's buffer until its next compression.  Never fails:
 * a message zlib cannot compress goes out uncompressed. */
static void out_prepare(wsock_conn *wc, out_msg *m, int form, wsock_opcode op,
                        const void *data, apr_size_t len)
{
    apr_size_t n;
    const uint8_t *z;

    m->op = op;
    m->rsv = 0;
    m->data = data;
    m->len = len;
    m->frag = wc->set.fragment_size;
    if (form == WSOCK_FORM_PLAIN) {
        return;
    }
    z = form == WSOCK_FORM_OWN ? wsock_compress_own(wc, data, len, &n)
                               : wsock_compress_shared(form, data, len, &n);
    /* (NULL: zlib could not allocate; this message goes out as it is: a
     * message may always be sent uncompressed, and the deflater starts a
     * fresh stream after a failure.) */
    if (z) {
        m->rsv = 0x40;
        m->data = z;
        m->len = n;
    }
}

/* Step 2: the frames of m one by one.  *at is where the next frame's
 * payload starts (0 at first); writes its header into hdr and returns the
 * header's length, with the payload part in *part and *part_len; returns 0
 * once every frame was made. */
static apr_size_t out_next_frame(const out_msg *m, apr_size_t *at, int *started,
                                 uint8_t hdr[WSOCK_MAX_HEADER_SIZE],
                                 const uint8_t **part, apr_size_t *part_len)
{
    apr_size_t frag = m->frag ? m->frag : (m->len ? m->len : 1);
    apr_size_t n, hlen;

    if (*started && *at >= m->len) {
        return 0;
    }
    n = m->len - *at < frag ? m->len - *at : frag;
    *part = m->data + *at;
    *part_len = n;
    *at += n;
    hlen = wsock_frame_header_write_rsv(hdr, *at == m->len, *started ? 0 : m->rsv,
                                        *started ? WSOCK_OP_CONT : m->op, n, NULL);
    *started = 1;
    return hlen;
}

/* Bytes m takes as frames. */
static apr_size_t out_size(const out_msg *m)
{
    uint8_t hdr[WSOCK_MAX_HEADER_SIZE];
    const uint8_t *part;
    apr_size_t at = 0, hlen, plen, total = 0;
    int started = 0;

    if (m->frag == 0 || m->len <= m->frag) {
        return wsock_frame_header_size(m->len, 0) + m->len;
    }
    while ((hlen = out_next_frame(m, &at, &started, hdr, &part, &plen)) != 0) {
        total += hlen + plen;
    }
    return total;
}

/* Step 3, by copy: the frames of m into out (out_size(m) bytes). */
static apr_size_t out_copy(uint8_t *out, const out_msg *m)
{
    const uint8_t *part;
    apr_size_t at = 0, hlen, plen, done = 0;
    int started = 0;

    while ((hlen = out_next_frame(m, &at, &started, out + done, &part, &plen)) != 0) {
        done += hlen;
        if (plen) {
            memcpy(out + done, part, plen);
        }
        done += plen;
    }
    return done;
}

/* Step 3 into the owner's buffer. */
static apr_status_t out_to_obuf(wsock_conn *wc, const out_msg *m)
{
    if (!wsock_buf_reserve(&wc->obuf, out_size(m))) {
        return APR_ENOMEM;
    }
    wc->obuf.len += out_copy(wc->obuf.data + wc->obuf.len, m);
    return APR_SUCCESS;
}

/* Passes the brigade with a flush and empties it; a failed write means the
 * peer is gone. */
static apr_status_t pass_and_flush(wsock_conn *wc)
{
    apr_status_t rv;

    APR_BRIGADE_INSERT_TAIL(wc->bb_out, apr_bucket_flush_create(wc->c->bucket_alloc));
    rv = ap_pass_brigade(wc->c->output_filters, wc->bb_out);
    apr_brigade_cleanup(wc->bb_out);
    if (rv != APR_SUCCESS || wc->c->aborted) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, wc->c,
                      WSOCKNO(0101) "write to the client failed; closing");
        wc->state = WSOCK_STATE_DONE;
        if (wc->close_code == 0) {
            wc->close_code = WSOCK_CLOSE_ABNORMAL;
        }
        return rv != APR_SUCCESS ? rv : APR_ECONNABORTED;
    }
    return APR_SUCCESS;
}

/* Moves the owner's buffered frames into the outgoing brigade. */
static void obuf_to_brigade(wsock_conn *wc)
{
    if (wc->obuf.len) {
        APR_BRIGADE_INSERT_TAIL(wc->bb_out,
            apr_bucket_transient_create((const char *)wc->obuf.data, wc->obuf.len,
                                        wc->c->bucket_alloc));
    }
}

/* Step 3, by reference: a large payload goes out now, its frame headers
 * copied, the payload not.  Whatever was buffered goes first, to keep the
 * order. */
static apr_status_t out_by_reference(wsock_conn *wc, const out_msg *m)
{
    uint8_t hdr[WSOCK_MAX_HEADER_SIZE];
    const uint8_t *part;
    apr_size_t at = 0, hlen, plen;
    int started = 0;
    apr_status_t rv;

    obuf_to_brigade(wc);
    while ((hlen = out_next_frame(m, &at, &started, hdr, &part, &plen)) != 0) {
        APR_BRIGADE_INSERT_TAIL(wc->bb_out,
            apr_bucket_heap_create((const char *)hdr, hlen, NULL, wc->c->bucket_alloc));
        APR_BRIGADE_INSERT_TAIL(wc->bb_out,
            apr_bucket_transient_create((const char *)part, plen, wc->c->bucket_alloc));
    }
    rv = pass_and_flush(wc);
    wc->obuf.len = 0;
    return rv;
}

/* The owner's output of a message already in its wire form. */
static apr_status_t out_owner(wsock_conn *wc, const out_msg *m)
{
    apr_status_t rv;

    /* Before the 101 (on_open) everything is only buffered: nothing may
     * reach the client ahead of the handshake answer, or at all if on_open
     * then refuses with an HTTP status. */
    if (m->len > WSOCK_COPY_LIMIT && wc->upgraded) {
        rv = out_by_reference(wc, m);
        wsock_compress_scratch_trim();
        return rv;
    }
    if ((rv = out_to_obuf(wc, m)) != APR_SUCCESS) {
        return rv;
    }
    /* Don't let a busy reader pile up output: write in batches. */
    if (wc->obuf.len >= WSOCK_COPY_LIMIT && wc->upgraded) {
        return wsock_conn_flush(wc);
    }
    return APR_SUCCESS;
}

apr_status_t wsock_output_message(wsock_conn *wc, wsock_opcode op, const void *data,
                                  apr_size_t len)
{
    out_msg m;

    out_prepare(wc, &m, wsock_compress_form(wc, len), op, data, len);
    return out_owner(wc, &m);
}

apr_status_t wsock_output_control(wsock_conn *wc, wsock_opcode op, const uint8_t *payload,
                                  apr_size_t len)
{
    out_msg m = { op, 0, payload, len, 0 };     /* no extension stage, one frame */

    return out_to_obuf(wc, &m);
}

/* ---- the outbound queue ------------------------------------------------
 * An array of shared frames, filled by other threads under wc->mutex.  The
 * owner flushes by swapping it with its spare array under the mutex, so
 * neither side allocates per message once the arrays have grown to the
 * usual burst; an idle connection gives both back (wsock_output_trim). */

/* A queue entry of len bytes (one reference, the caller's), to be filled. */
static wsock_frames *frames_alloc(apr_size_t len, apr_size_t frag, int form,
                                  wsock_opcode deflate_op)
{
    wsock_frames *f = malloc(sizeof(*f) + len);

    if (f) {
        f->refs = 1;
        f->frag = frag;
        f->form = form;
        f->deflate_op = deflate_op;
        f->len = len;
    }
    return f;
}

/* A queue entry holding m's frames. */
static wsock_frames *frames_make(const out_msg *m, int form)
{
    wsock_frames *f = frames_alloc(out_size(m), m->frag, form, 0);

    if (f) {
        out_copy(f->bytes, m);
    }
    return f;
}

/* A queue entry of a message to wc, from a thread that does not own wc:
 * its frames, or, for a connection that keeps its deflate context, the
 * payload itself, which the owner compresses in order (owner_ready). */
static wsock_frames *frames_for(wsock_conn *wc, int is_text, const void *data,
                                apr_size_t len)
{
    wsock_opcode op = is_text ? WSOCK_OP_TEXT : WSOCK_OP_BINARY;
    int form = wsock_compress_form(wc, len);
    wsock_frames *f;
    out_msg m;

    if (form == WSOCK_FORM_OWN) {
        if ((f = frames_alloc(len, wc->set.fragment_size, form, op)) != NULL && len) {
            memcpy(f->bytes, data, len);
        }
        return f;
    }
    out_prepare(wc, &m, form, op, data, len);
    f = frames_make(&m, form);
    wsock_compress_scratch_trim();
    return f;
}

/* Owner thread: a queued entry as frames (compressing a payload queued for
 * the connection's own context, in queue order); NULL when out of memory. */
static wsock_frames *owner_ready(wsock_conn *wc, wsock_frames *f)
{
    wsock_frames *ready;
    out_msg m;

    if (f->deflate_op == 0) {
        return f;
    }
    out_prepare(wc, &m, WSOCK_FORM_OWN, f->deflate_op, f->bytes, f->len);
    ready = frames_make(&m, WSOCK_FORM_OWN);
    wsock_frames_release(f);
    return ready;
}

void wsock_frames_release(wsock_frames *f)
{
    if (f && apr_atomic_dec32(&f->refs) == 0) {
        free(f);
    }
}

static void release_all(wsock_frames **q, apr_size_t n)
{
    for (apr_size_t i = 0; i < n; i++) {
        if (q[i]) {
            wsock_frames_release(q[i]);
        }
    }
}

static apr_status_t queue_cleanup(void *data)
{
    wsock_conn *wc = data;

    release_all(wc->q, wc->q_msgs);
    free(wc->q);
    free(wc->q_spare);
    wc->q = wc->q_spare = NULL;
    wc->q_cap = wc->q_spare_cap = wc->q_msgs = 0;
    return APR_SUCCESS;
}

void wsock_output_queue_init(wsock_conn *wc)
{
    apr_pool_cleanup_register(wc->pool, wc, queue_cleanup, apr_pool_cleanup_null);
}

/* Under wc->mutex: moves the whole queue into the spare array; returns how
 * many messages it holds. */
static apr_size_t queue_swap_locked(wsock_conn *wc)
{
    wsock_frames **q = wc->q_spare;
    apr_size_t n = wc->q_msgs, cap = wc->q_spare_cap;

    wc->q_spare = wc->q;
    wc->q_spare_cap = wc->q_cap;
    wc->q = q;
    wc->q_cap = cap;
    wc->q_msgs = wc->q_bytes = 0;
    return n;
}

/* Takes the whole queue (unless the client is behind: then it stays
 * where WSockSendQueue bounds it), and a close another thread asked for. */
static apr_size_t queue_take(wsock_conn *wc, int take, int *pending_close, int *code,
                             char *reason)
{
    apr_size_t n = 0;

    apr_thread_mutex_lock(wc->mutex);
    if (take) {
        n = queue_swap_locked(wc);
    }
    *pending_close = wc->pending_close;
    if (wc->pending_close) {
        *code = wc->pending_code;
        memcpy(reason, wc->pending_reason, sizeof(wc->pending_reason));
        wc->pending_close = 0;
    }
    apr_thread_mutex_unlock(wc->mutex);
    return n;
}

void wsock_output_close_queue(wsock_conn *wc, int copy_to_obuf)
{
    apr_size_t n;

    apr_thread_mutex_lock(wc->mutex);
    wc->q_closed = 1;
    n = queue_swap_locked(wc);
    apr_thread_mutex_unlock(wc->mutex);

    /* Messages sent before the close began still go out, ahead of it. */
    for (apr_size_t i = 0; i < n && copy_to_obuf; i++) {
        wsock_frames *f = wc->q_spare[i] = owner_ready(wc, wc->q_spare[i]);
        if (f && wsock_buf_reserve(&wc->obuf, f->len)) {
            memcpy(wc->obuf.data + wc->obuf.len, f->bytes, f->len);
            wc->obuf.len += f->len;
        }
    }
    release_all(wc->q_spare, n);
}

void wsock_output_trim(wsock_conn *wc)
{
    apr_thread_mutex_lock(wc->mutex);
    if (wc->q_msgs == 0) {
        free(wc->q);
        wc->q = NULL;
        wc->q_cap = 0;
    }
    apr_thread_mutex_unlock(wc->mutex);
    free(wc->q_spare);              /* the owner's alone */
    wc->q_spare = NULL;
    wc->q_spare_cap = 0;
}

apr_status_t wsock_conn_flush(wsock_conn *wc)
{
    int pending_close = 0, code = 0;
    char reason[WSOCK_MAX_CONTROL_PAYLOAD];
    apr_status_t rv = APR_SUCCESS;
    apr_size_t n;

    if (!wc->upgraded) {
        return APR_SUCCESS;         /* nothing goes out before the 101 */
    }
    n = queue_take(wc, wsock_output_backlog(wc) < WSOCK_OUT_HIGH, &pending_close, &code,
                   reason);
    if ((wc->state != WSOCK_STATE_DONE || wc->obuf.len) && (wc->obuf.len || n)) {
        /* Everything pending in one brigade: one write per wake-up. */
        obuf_to_brigade(wc);
        for (apr_size_t i = 0; i < n; i++) {
            if ((wc->q_spare[i] = owner_ready(wc, wc->q_spare[i])) == NULL) {
                /* Out of memory compressing: the client would miss a
                 * message in the middle of its stream. */
                pending_close = 1;
                code = WSOCK_CLOSE_INTERNAL_ERROR;
                apr_cpystrn(reason, "out of memory", sizeof(reason));
                break;
            }
            APR_BRIGADE_INSERT_TAIL(wc->bb_out,
                apr_bucket_transient_create((const char *)wc->q_spare[i]->bytes,
                                            wc->q_spare[i]->len, wc->c->bucket_alloc));
        }
        rv = pass_and_flush(wc);
        wc->obuf.len = 0;
        wsock_buf_trim(&wc->obuf);
        wsock_compress_scratch_trim();
    }
    release_all(wc->q_spare, n);    /* written, or set aside by the filters */
    if (pending_close && wc->state == WSOCK_STATE_OPEN) {
        wsock_conn_start_close(wc, code, reason[0] ? reason : NULL);
        return wsock_conn_flush(wc);
    }
    return rv;
}

/* ---- the public sending API ---------------------------------------- */

static int on_owner_thread(const wsock_conn *wc)
{
    return apr_os_thread_equal(wsock_conn_owner(wc), apr_os_thread_current());
}

apr_status_t wsock_send(wsock_conn *wc, int is_text, const void *data, apr_size_t len)
{
    /* A peer must never receive invalid text (it would have to fail the
     * connection with 1007): refuse it here, where the bug is.  Text the
     * codec just validated (an echo of the message being delivered, on
     * its own thread) is not checked twice. */
    if (is_text && !(on_owner_thread(wc) && data == wc->delivering
                     && len == wc->delivering_len)
        && !wsock_utf8_valid(data, len)) {
        return APR_EINVAL;
    }
    return wsock_output_send(wc, is_text, data, len);
}

static int queue_has_room_locked(const wsock_conn *wc, const wsock_frames *f);

/* Appends f to the queue (under wc->mutex): 0, or why not. */
static apr_status_t queue_put_locked(wsock_conn *wc, wsock_frames *f, wsock_slow_action *slow)
{
    if (wc->q_closed) {
        wsock_slow_refused_locked(wc, slow);
        return APR_EOF;
    }
    if (!queue_has_room_locked(wc, f)) {
        wsock_slow_full_locked(wc, slow);   /* WSockSendQueue's policy */
        return APR_ENOSPC;
    }
    if (wc->q_msgs == wc->q_cap) {
        apr_size_t cap = wc->q_cap ? wc->q_cap * 2 : 8;
        wsock_frames **q = realloc(wc->q, cap * sizeof(*q));
        if (q == NULL) {
            return APR_ENOMEM;
        }
        wc->q = q;
        wc->q_cap = cap;
    }
    wc->q[wc->q_msgs++] = f;
    wc->q_bytes += f->len;
    return APR_SUCCESS;
}

/* Under wc->mutex: whether f fits into the queue now. */
static int queue_has_room_locked(const wsock_conn *wc, const wsock_frames *f)
{
    /* (A message larger than the whole queue still goes into an empty
     * one: its size says nothing about the client's speed.) */
    return wc->q_msgs + 1 <= wc->set.queue_max_msgs
           && (wc->q_msgs == 0 || wc->q_bytes + f->len <= wc->set.queue_max_bytes);
}

/* Queues f, which holds one reference for this connection (given back if
 * it is not queued).  try: a full queue is APR_EAGAIN, nothing more. */
static apr_status_t queue_frames(wsock_conn *wc, wsock_frames *f, int try)
{
    wsock_slow_action slow = { 0 };
    void (*wake)(void *baton);
    void *baton;
    apr_status_t rv;

    apr_thread_mutex_lock(wc->mutex);
    if (try && !wc->q_closed && !queue_has_room_locked(wc, f)) {
        rv = APR_EAGAIN;
    }
    else {
        rv = queue_put_locked(wc, f, &slow);
    }
    wake = wc->wake;
    baton = wc->wake_baton;
    apr_thread_mutex_unlock(wc->mutex);
    if (rv != APR_SUCCESS) {
        wsock_frames_release(f);
        wsock_slow_act(wc, &slow);
        if (slow.cut) {
            wake(baton);            /* the close is pending */
        }
        return rv;
    }
    wake(baton);
    return APR_SUCCESS;
}

/* The owner appends to its own output, except that a loop thread sending
 * to another of its connections (a room) whose client falls behind goes
 * through the bounded queue like any other thread, so that WSockSendQueue
 * applies to it too. */
static int writes_itself(wsock_conn *wc)
{
    return on_owner_thread(wc) && !wsock_loop_must_queue(wc);
}

static apr_status_t owner_send(wsock_conn *wc, int is_text, const void *data, apr_size_t len)
{
    apr_status_t rv;

    if (wc->state != WSOCK_STATE_OPEN) {
        return APR_EOF;
    }
    rv = wsock_output_message(wc, is_text ? WSOCK_OP_TEXT : WSOCK_OP_BINARY, data, len);
    /* A loop thread owns many connections: this one may not be the
     * connection it is serving, and must be flushed too. */
    wsock_loop_touch(wc);
    return rv;
}

/* A data message taken for a client (counted once, whichever way). */
static apr_status_t count_out(apr_status_t rv, apr_size_t len)
{
    if (rv == APR_SUCCESS) {
        wsock_count_hot(WSOCK_C_MSGS_OUT, 1);
        wsock_count_hot(WSOCK_C_BYTES_OUT, len);
    }
    return rv;
}

apr_status_t wsock_output_send(wsock_conn *wc, int is_text, const void *data, apr_size_t len)
{
    wsock_frames *f;

    if (writes_itself(wc)) {
        return count_out(owner_send(wc, is_text, data, len), len);
    }
    f = frames_for(wc, is_text, data, len);
    return count_out(f ? queue_frames(wc, f, 0) : APR_ENOMEM, len);
}

void wsock_shared_init(wsock_shared *s, int is_text, const void *data, apr_size_t len)
{
    memset(s, 0, sizeof(*s));
    s->is_text = is_text;
    s->data = data;
    s->len = len;
}

void wsock_shared_release(wsock_shared *s)
{
    for (int i = 0; i < s->n; i++) {
        wsock_frames_release(s->forms[i]);
    }
    s->n = 0;
}

/* The message's frames for wc's fragment size and form, made by the first
 * receiver that needs them; NULL: none to share (out of memory, or more
 * variants than kept: the caller makes wc its own). */
static wsock_frames *shared_form(wsock_conn *wc, wsock_shared *s, int form)
{
    apr_size_t frag = wc->set.fragment_size;
    wsock_frames *f;
    out_msg m;

    for (int i = 0; i < s->n; i++) {
        if (s->forms[i]->frag == frag && s->forms[i]->form == form) {
            return s->forms[i];
        }
    }
    if (s->n == WSOCK_SHARED_FORMS) {
        return NULL;
    }
    out_prepare(wc, &m, form, s->is_text ? WSOCK_OP_TEXT : WSOCK_OP_BINARY, s->data, s->len);
    if ((f = frames_make(&m, form)) != NULL) {
        s->forms[s->n++] = f;
    }
    wsock_compress_scratch_trim();
    return f;
}

/* The owner's output of frames made for others too (a broadcast). */
static apr_status_t owner_append(wsock_conn *wc, const wsock_frames *f)
{
    apr_status_t rv = APR_SUCCESS;

    if (wc->state != WSOCK_STATE_OPEN) {
        return APR_EOF;
    }
    if (f->len > WSOCK_COPY_LIMIT && wc->upgraded) {
        obuf_to_brigade(wc);
        APR_BRIGADE_INSERT_TAIL(wc->bb_out,
            apr_bucket_transient_create((const char *)f->bytes, f->len, wc->c->bucket_alloc));
        rv = pass_and_flush(wc);
        wc->obuf.len = 0;
    }
    else if (wsock_buf_reserve(&wc->obuf, f->len)) {
        memcpy(wc->obuf.data + wc->obuf.len, f->bytes, f->len);
        wc->obuf.len += f->len;
    }
    else {
        rv = APR_ENOMEM;
    }
    wsock_loop_touch(wc);
    return rv;
}

apr_status_t wsock_output_send_shared(wsock_conn *wc, wsock_shared *s)
{
    int form = wsock_compress_form(wc, s->len);
    wsock_frames *f;

    /* Uncompressed, the owner writes a message faster than it finds a
     * shared copy; compressed, sharing saves compressing again.  A
     * connection that keeps its deflate context can't share at all. */
    if (form == WSOCK_FORM_OWN || (form == WSOCK_FORM_PLAIN && writes_itself(wc))) {
        return wsock_output_send(wc, s->is_text, s->data, s->len);
    }
    if ((f = shared_form(wc, s, form)) == NULL) {
        return wsock_output_send(wc, s->is_text, s->data, s->len);
    }
    if (writes_itself(wc)) {
        return count_out(owner_append(wc, f), s->len);
    }
    apr_atomic_inc32(&f->refs);
    return count_out(queue_frames(wc, f, 0), s->len);
}

void wsock_close(wsock_conn *wc, int code, const char *reason)
{
    int asked = 0;

    if (on_owner_thread(wc)) {
        wsock_conn_start_close(wc, code, reason);
        wsock_loop_touch(wc);
        return;
    }
    apr_thread_mutex_lock(wc->mutex);
    if (!wc->q_closed && !wc->pending_close) {
        wc->pending_close = asked = 1;
        wc->pending_code = code;
        apr_cpystrn(wc->pending_reason, reason ? reason : "", sizeof(wc->pending_reason));
    }
    apr_thread_mutex_unlock(wc->mutex);
    if (asked) {
        wsock_conn_wake(wc);
    }
}

/* ---- flow control ---------------------------------------------------- */

apr_size_t wsock_output_backlog(const wsock_conn *wc)
{
    return wc->obuf.len + (wc->netout ? wsock_netout_pending(wc->netout) : 0);
}

apr_status_t wsock_send_try(wsock_conn *wc, int is_text, const void *data, apr_size_t len)
{
    wsock_frames *f;

    if (is_text && !(on_owner_thread(wc) && data == wc->delivering
                     && len == wc->delivering_len)
        && !wsock_utf8_valid(data, len)) {
        return APR_EINVAL;
    }
    if (writes_itself(wc)) {
        return wsock_output_backlog(wc) >= WSOCK_OUT_HIGH
               ? APR_EAGAIN : count_out(owner_send(wc, is_text, data, len), len);
    }
    f = frames_for(wc, is_text, data, len);
    return count_out(f ? queue_frames(wc, f, 1) : APR_ENOMEM, len);
}

apr_status_t wsock_on_writable(wsock_conn *wc, void (*fn)(wsock_conn *wc, void *baton),
                               void *baton)
{
    apr_thread_mutex_lock(wc->mutex);
    if (wc->q_closed) {
        apr_thread_mutex_unlock(wc->mutex);
        return APR_EOF;
    }
    wc->writable_baton = baton;
    __atomic_store_n(&wc->writable_fn, fn, __ATOMIC_RELEASE);
    apr_thread_mutex_unlock(wc->mutex);
    if (on_owner_thread(wc)) {
        wsock_loop_touch(wc);       /* checked when this turn ends */
    }
    else {
        wsock_conn_wake(wc);
    }
    return APR_SUCCESS;
}

void wsock_output_writable_check(wsock_conn *wc)
{
    void (*fn)(wsock_conn *wc, void *baton) = NULL;
    void *baton = NULL;

    /* Every turn asks: without the lock while nothing is armed (set under
     * the lock, and the thread that arms it wakes this one). */
    if (__atomic_load_n(&wc->writable_fn, __ATOMIC_ACQUIRE) == NULL
        || (wsock_output_backlog(wc) >= WSOCK_OUT_HIGH && !wc->q_closed)) {
        return;
    }
    apr_thread_mutex_lock(wc->mutex);
    /* Its moment: room again, or the end (the producer then learns from
     * APR_EOF that it may stop waiting). */
    if (wc->writable_fn && (wc->q_closed || wc->q_msgs == 0)) {
        fn = wc->writable_fn;
        baton = wc->writable_baton;
        __atomic_store_n(&wc->writable_fn, NULL, __ATOMIC_RELAXED);
    }
    apr_thread_mutex_unlock(wc->mutex);
    if (fn) {
        fn(wc, baton);
    }
}
