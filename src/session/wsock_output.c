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

#include "wsock_conn.h"
#include "wsock_loop.h"
#include "wsock_netout.h"
#include "wsock_output.h"
#include "wsock_slow.h"

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

/* Bytes needed for a message of len bytes cut into frames of at most frag
 * bytes (0 = one frame). */
static apr_size_t frames_size(apr_size_t len, apr_size_t frag)
{
    apr_size_t n, total = 0;

    if (frag == 0 || len <= frag) {
        return wsock_frame_header_size(len, 0) + len;
    }
    for (n = 0; n < len; n += frag) {
        apr_size_t part = len - n < frag ? len - n : frag;
        total += wsock_frame_header_size(part, 0) + part;
    }
    return total;
}

/* Serializes a message as one or more unmasked frames into out; returns
 * the bytes written (frames_size of the same arguments). */
static apr_size_t frames_write(uint8_t *out, wsock_opcode op, const uint8_t *data,
                               apr_size_t len, apr_size_t frag)
{
    apr_size_t done = 0, at = 0;

    if (frag == 0) {
        frag = len ? len : 1;
    }
    do {
        apr_size_t part = len - done < frag ? len - done : frag;
        int fin = (done + part == len);

        at += wsock_frame_header_write(out + at, fin, done ? WSOCK_OP_CONT : op, part, NULL);
        if (part) {
            memcpy(out + at, data + done, part);
        }
        at += part;
        done += part;
    } while (done < len);
    return at;
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

/* A large payload goes out now, by reference: frame headers are copied, the
 * payload is not.  Whatever was buffered goes first, to keep the order. */
static apr_status_t send_large_now(wsock_conn *wc, wsock_opcode op, const uint8_t *data,
                                   apr_size_t len)
{
    apr_size_t frag = wc->set.fragment_size ? wc->set.fragment_size : len;
    apr_size_t done = 0;
    apr_status_t rv;

    obuf_to_brigade(wc);
    while (done < len) {
        uint8_t hdr[WSOCK_MAX_HEADER_SIZE];
        apr_size_t part = len - done < frag ? len - done : frag;
        apr_size_t hlen = wsock_frame_header_write(hdr, done + part == len,
                                                   done ? WSOCK_OP_CONT : op, part, NULL);

        APR_BRIGADE_INSERT_TAIL(wc->bb_out,
            apr_bucket_heap_create((const char *)hdr, hlen, NULL, wc->c->bucket_alloc));
        APR_BRIGADE_INSERT_TAIL(wc->bb_out,
            apr_bucket_transient_create((const char *)data + done, part, wc->c->bucket_alloc));
        done += part;
    }
    rv = pass_and_flush(wc);
    wc->obuf.len = 0;
    return rv;
}

apr_status_t wsock_output_message(wsock_conn *wc, wsock_opcode op, const void *data,
                                  apr_size_t len)
{
    apr_size_t need;

    /* Before the 101 (on_open) everything is only buffered: nothing may
     * reach the client ahead of the handshake answer, or at all if on_open
     * then refuses with an HTTP status. */
    if (len > WSOCK_COPY_LIMIT && wc->upgraded) {
        return send_large_now(wc, op, data, len);
    }
    need = frames_size(len, wc->set.fragment_size);
    if (!wsock_buf_reserve(&wc->obuf, need)) {
        return APR_ENOMEM;
    }
    wc->obuf.len += frames_write(wc->obuf.data + wc->obuf.len, op, data, len,
                                 wc->set.fragment_size);
    /* Don't let a busy reader pile up output: write in batches. */
    if (wc->obuf.len >= WSOCK_COPY_LIMIT && wc->upgraded) {
        return wsock_conn_flush(wc);
    }
    return APR_SUCCESS;
}

apr_status_t wsock_output_control(wsock_conn *wc, wsock_opcode op, const uint8_t *payload,
                                  apr_size_t len)
{
    if (!wsock_buf_reserve(&wc->obuf, WSOCK_MAX_HEADER_SIZE + len)) {
        return APR_ENOMEM;
    }
    wc->obuf.len += wsock_frame_header_write(wc->obuf.data + wc->obuf.len, 1, op, len, NULL);
    if (len) {
        memcpy(wc->obuf.data + wc->obuf.len, payload, len);
        wc->obuf.len += len;
    }
    return APR_SUCCESS;
}

/* ---- the outbound queue ------------------------------------------------
 * An array of shared frames, filled by other threads under wc->mutex.  The
 * owner flushes by swapping it with its spare array under the mutex, so
 * neither side allocates per message once the arrays have grown to the
 * usual burst; an idle connection gives both back (wsock_output_trim). */

wsock_frames *wsock_frames_make(int is_text, const void *data, apr_size_t len,
                                apr_size_t frag)
{
    wsock_frames *f = malloc(sizeof(*f) + frames_size(len, frag));

    if (f) {
        f->refs = 1;
        f->frag = frag;
        f->len = frames_write(f->bytes, is_text ? WSOCK_OP_TEXT : WSOCK_OP_BINARY, data,
                              len, frag);
    }
    return f;
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
        wsock_frames_release(q[i]);
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
        wsock_frames *f = wc->q_spare[i];
        if (wsock_buf_reserve(&wc->obuf, f->len)) {
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
            APR_BRIGADE_INSERT_TAIL(wc->bb_out,
                apr_bucket_transient_create((const char *)wc->q_spare[i]->bytes,
                                            wc->q_spare[i]->len, wc->c->bucket_alloc));
        }
        rv = pass_and_flush(wc);
        wc->obuf.len = 0;
        wsock_buf_trim(&wc->obuf);
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

apr_status_t wsock_output_send(wsock_conn *wc, int is_text, const void *data, apr_size_t len)
{
    wsock_frames *f;

    if (writes_itself(wc)) {
        return owner_send(wc, is_text, data, len);
    }
    f = wsock_frames_make(is_text, data, len, wc->set.fragment_size);
    return f ? queue_frames(wc, f, 0) : APR_ENOMEM;
}

apr_status_t wsock_output_send_shared(wsock_conn *wc, wsock_frames **shared, int is_text,
                                      const void *data, apr_size_t len)
{
    apr_size_t frag = wc->set.fragment_size;

    if (writes_itself(wc)) {
        return owner_send(wc, is_text, data, len);
    }
    if (*shared == NULL && (*shared = wsock_frames_make(is_text, data, len, frag)) == NULL) {
        return APR_ENOMEM;
    }
    if ((*shared)->frag != frag) {
        return wsock_output_send(wc, is_text, data, len);   /* cut differently */
    }
    apr_atomic_inc32(&(*shared)->refs);
    return queue_frames(wc, *shared, 0);
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
               ? APR_EAGAIN : owner_send(wc, is_text, data, len);
    }
    f = wsock_frames_make(is_text, data, len, wc->set.fragment_size);
    return f ? queue_frames(wc, f, 1) : APR_ENOMEM;
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
