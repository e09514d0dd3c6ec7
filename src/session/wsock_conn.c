/*
 * wsock_conn.c — the state machine of one WebSocket connection: input
 * through the codec to the handler, control frames, timers, and the close
 * handshake.  The sending side is in wsock_output.c, the loop that drives
 * this in wsock_driver.c.
 */
#include <string.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_log.h>
#include <http_ssl.h>
#include <util_filter.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "wsock_compress.h"
#include "wsock_conn.h"
#include "wsock_output.h"
#include "wsock_rooms.h"
#include "wsock_security.h"
#include "wsock_slow.h"
#include "wsock_counters.h"

APLOG_USE_MODULE(wsock);

/* Input taken per wsock_conn_read() call: what one turn of a connection may
 * cost the others its thread serves (one socket read; with TLS, the records
 * that add up to as much). */
#define WSOCK_TURN_INPUT WSOCK_READ_CHUNK

static void noop_wake(void *baton)
{
    (void)baton;
}

static void noop_released(wsock_conn *wc)
{
    (void)wc;
}

wsock_conn *wsock_conn_create(request_rec *r, const wsock_settings *set)
{
    conn_rec *c = r->connection;
    wsock_conn *wc = apr_pcalloc(c->pool, sizeof(*wc));

    wc->c = c;
    wc->r = r;
    wc->pool = c->pool;
    wc->set = *set;
    wc->owner = apr_os_thread_current();
    wc->state = WSOCK_STATE_OPEN;
    wc->input_buffers = ap_ssl_conn_is_ssl(c);
    wsock_parser_init(&wc->parser, WSOCK_ROLE_SERVER, set->max_message);
    wc->bb_in = apr_brigade_create(c->pool, c->bucket_alloc);
    wc->bb_out = apr_brigade_create(c->pool, c->bucket_alloc);
    wsock_buf_init(&wc->rbuf, c->pool);
    wsock_buf_init(&wc->msg, c->pool);
    wsock_buf_init(&wc->obuf, c->pool);
    wc->last_rx = wc->last_ping = apr_time_now();
    wsock_bucket_init(&wc->rl_msgs, set->msg_rate, set->msg_burst, wc->last_rx);
    wsock_bucket_init(&wc->rl_bytes, set->byte_rate, set->byte_burst, wc->last_rx);
    wc->wake = noop_wake;
    wc->refs = 1;                   /* the owner's */
    if (apr_thread_mutex_create(&wc->mutex, APR_THREAD_MUTEX_DEFAULT, c->pool) != APR_SUCCESS) {
        return NULL;
    }
    wsock_output_queue_init(wc);
    return wc;
}

void wsock_conn_set_wake(wsock_conn *wc, void (*wake)(void *baton), void *baton)
{
    apr_thread_mutex_lock(wc->mutex);
    wc->wake = wake;
    wc->wake_baton = baton;
    apr_thread_mutex_unlock(wc->mutex);
}

void wsock_conn_wake(wsock_conn *wc)
{
    void (*wake)(void *baton);
    void *baton;

    apr_thread_mutex_lock(wc->mutex);
    wake = wc->wake;
    baton = wc->wake_baton;
    apr_thread_mutex_unlock(wc->mutex);
    wake(baton);
}

/* ---- references --------------------------------------------------------
 * refs counts the owner (until it lets go) and every holder.  The owner's
 * reference keeps the count above 0 while the connection is live, so a
 * holder that brings it to 0 knows the owner has let go, and that nobody
 * but itself can reach wc: it hands wc back (on_released, stored before
 * the owner's decrement, which is a full barrier, as every one is). */

void wsock_ref(wsock_conn *wc)
{
    apr_atomic_inc32(&wc->refs);
}

void wsock_unref(wsock_conn *wc)
{
    if (apr_atomic_dec32(&wc->refs) == 0) {
        wc->on_released(wc);
    }
}

int wsock_conn_let_go(wsock_conn *wc, void (*released)(wsock_conn *wc))
{
    wc->let_go = 1;
    wc->on_released = released;
    return apr_atomic_dec32(&wc->refs) == 0;
}

/* The last holder of a connection whose owner waits. */
static void signal_released(wsock_conn *wc)
{
    apr_thread_mutex_lock(wc->mutex);
    wc->released = 1;
    apr_thread_cond_signal(wc->released_cond);
    apr_thread_mutex_unlock(wc->mutex);     /* its last touch of wc */
}

void wsock_conn_let_go_wait(wsock_conn *wc)
{
    /* Made before the count can reach 0: the last holder signals it. */
    if (wc->released_cond == NULL
        && apr_thread_cond_create(&wc->released_cond, wc->pool) != APR_SUCCESS) {
        /* Cannot wait without it (out of memory): yield until the
         * holders are gone. */
        wsock_conn_let_go(wc, noop_released);
        while (apr_atomic_read32(&wc->refs) != 0) {
            apr_thread_yield();
        }
        return;
    }
    if (wsock_conn_let_go(wc, signal_released)) {
        return;
    }
    apr_thread_mutex_lock(wc->mutex);
    while (!wc->released) {
        apr_thread_cond_wait(wc->released_cond, wc->mutex);
    }
    apr_thread_mutex_unlock(wc->mutex);
}

void wsock_set_user_data(wsock_conn *wc, void *data)
{
    wc->user_data = data;
}

void *wsock_get_user_data(const wsock_conn *wc)
{
    return wc->user_data;
}

/* ---- closing -------------------------------------------------------- */

static void set_close(wsock_conn *wc, int code, const char *reason)
{
    wc->close_code = code;
    wc->close_reason = reason ? apr_pstrdup(wc->pool, reason) : "";
}

int wsock_conn_start_close(wsock_conn *wc, int code, const char *reason)
{
    uint8_t payload[WSOCK_MAX_CONTROL_PAYLOAD];
    apr_size_t n;

    if (wc->state != WSOCK_STATE_OPEN) {
        return 0;
    }
    if (!wsock_close_code_is_valid((unsigned)code)) {
        /* A handler asked for a code no peer may receive (1005, 1006,
         * 2000, ...): the peer would fail the connection; say 1011. */
        ap_log_cerror(APLOG_MARK, APLOG_WARNING, 0, wc->c,
                      WSOCKNO(0206) "close code %d is not valid on the wire; "
                      "sending 1011 instead", code);
        code = WSOCK_CLOSE_INTERNAL_ERROR;
        reason = "handler error";
    }
    wsock_output_close_queue(wc, 1);
    n = wsock_close_payload(payload, (unsigned)code, reason, reason ? strlen(reason) : 0);
    wsock_output_control(wc, WSOCK_OP_CLOSE, payload, n);
    set_close(wc, code, reason);
    wc->state = WSOCK_STATE_CLOSING;
    wc->close_deadline = apr_time_now() + wc->set.close_timeout;
    return code;
}

/* _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): say why, then end
 * without waiting for the peer. */
static void fail_connection(wsock_conn *wc, int code, const char *reason)
{
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                  WSOCKNO(0201) "closing WebSocket %s with %d: %s",
                  wc->f_uri, code, reason);
    wsock_conn_start_close(wc, code, reason);
    wc->state = WSOCK_STATE_DONE;
}

static void peer_gone(wsock_conn *wc, apr_status_t rv)
{
    if (wc->state == WSOCK_STATE_DONE) {
        return;
    }
    if (wc->state == WSOCK_STATE_OPEN) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, wc->c,
                      WSOCKNO(0102) "client went away without a close frame");
        set_close(wc, WSOCK_CLOSE_ABNORMAL, "connection lost");
    }
    wc->state = WSOCK_STATE_DONE;
}

/* ---- abuse limits (docs/limits.md) ----------------------------------- */

/* WSockRateLimit: takes n from the bucket; past the limit the client is
 * closed with 1008 on the spot (it is flooding: no waiting for its close
 * reply), which also makes this the connection's only such log line. */
static int within_rate(wsock_conn *wc, wsock_bucket *b, apr_uint64_t n, const char *what)
{
    if (b->rate == 0 || wsock_bucket_take(b, n, apr_time_now())) {
        return 1;
    }
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                  WSOCKNO(0750) "WebSocket %s: client exceeds WSockRateLimit "
                  "%s=%" APR_UINT64_T_FMT "/s,burst=%" APR_UINT64_T_FMT "; closing with 1008",
                  wc->f_uri, what, b->rate, b->burst);
    wsock_conn_start_close(wc, WSOCK_CLOSE_POLICY, "rate limit exceeded");
    wsock_count(WSOCK_C_RATE_CLOSES, 1);
    wc->state = WSOCK_STATE_DONE;
    return 0;
}

/* WSockFrameTimeout runs from the first byte of a frame, or of a
 * fragmented message, to its end: a client that dribbles a byte now and
 * then is never idle, yet never finishes either. */
static void note_partial(wsock_conn *wc, apr_time_t now)
{
    int partial = wsock_parser_mid_frame(&wc->parser)
                  || wsock_parser_in_message(&wc->parser);

    if (!partial) {
        wc->partial_since = 0;
    }
    else if (!wc->partial_since) {
        wc->partial_since = now;
    }
}

/* ---- input ---------------------------------------------------------- */

static void deliver(wsock_conn *wc, wsock_opcode op, const uint8_t *data, apr_size_t len)
{
    const wsock_handler *h = wc->set.handler;
    int code;

    if (h->on_message == NULL) {
        return;
    }
    wsock_count_hot(WSOCK_C_MSGS_IN, 1);
    wsock_count_hot(WSOCK_C_BYTES_IN, len);
    wc->delivering = data;
    wc->delivering_len = len;
    code = h->on_message(wc, op == WSOCK_OP_TEXT, len ? (const char *)data : "", len);
    wc->delivering = NULL;
    if (code && wc->state == WSOCK_STATE_OPEN) {
        /* The handler gave up on this connection; others are untouched.
         * (start_close says 1011 for a code no peer may receive.) */
        code = wsock_conn_start_close(wc, code, code == WSOCK_CLOSE_INTERNAL_ERROR
                                                ? "handler error" : NULL);
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                      WSOCKNO(0205) "handler %s closes WebSocket %s with %d",
                      wc->set.handler_name, wc->f_uri, code);
    }
}

/* A chunk of a compressed message (permessage-deflate): inflated onto
 * wc->msg, delivered when whole. */
static int sink_compressed(wsock_conn *wc, wsock_opcode op, const uint8_t *data, size_t len,
                           int first, int last)
{
    const char *why = NULL;
    int code = wsock_compress_inflate(wc, op == WSOCK_OP_TEXT, data, len, first, last,
                                      &wc->msg, &why);

    if (code) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                      WSOCKNO(1301) "closing WebSocket %s with %d: %s", wc->f_uri, code, why);
        wsock_conn_start_close(wc, code, why);
        wc->state = WSOCK_STATE_DONE;
        return 1;
    }
    if (last) {
        deliver(wc, op, wc->msg.data, wc->msg.len);
        wc->msg.len = 0;
        wsock_buf_trim(&wc->msg);
    }
    return 0;
}

static int sink_data(void *ud, wsock_opcode op, const uint8_t *data, size_t len,
                     int first, int last)
{
    wsock_conn *wc = ud;

    if (wc->state != WSOCK_STATE_OPEN) {
        return 0;                   /* after our close: read, don't process */
    }
    if (last && !within_rate(wc, &wc->rl_msgs, 1, "messages")) {
        return 1;                   /* counted when whole, never delivered */
    }
    if (wc->parser.msg_compressed) {
        return sink_compressed(wc, op, data, len, first, last);
    }
    if (first && last) {
        deliver(wc, op, data, len); /* whole in one chunk: no copy */
        return 0;
    }
    if (first) {
        wc->msg.len = 0;
    }
    if (len) {
        if (!wsock_buf_reserve(&wc->msg, len)) {
            fail_connection(wc, WSOCK_CLOSE_INTERNAL_ERROR, "out of memory");
            return 1;
        }
        memcpy(wc->msg.data + wc->msg.len, data, len);
        wc->msg.len += len;
    }
    if (last) {
        deliver(wc, op, wc->msg.data, wc->msg.len);
        wc->msg.len = 0;
        wsock_buf_trim(&wc->msg);
    }
    return 0;
}

static int sink_control(void *ud, wsock_opcode op, unsigned code, const uint8_t *payload,
                        size_t len)
{
    wsock_conn *wc = ud;

    if (op != WSOCK_OP_CLOSE && wc->state == WSOCK_STATE_OPEN
        && !within_rate(wc, &wc->rl_msgs, 1, "messages")) {
        return 1;                   /* pings and pongs count as messages */
    }
    switch (op) {
    case WSOCK_OP_PING:
        if (wc->state == WSOCK_STATE_OPEN) {
            wsock_output_control(wc, WSOCK_OP_PONG, payload, len);
        }
        return 0;
    case WSOCK_OP_PONG:
        return 0;                   /* liveness only: last_rx already moved */
    default:
        break;
    }

    /* CLOSE */
    if (wc->state == WSOCK_STATE_OPEN) {
        uint8_t echo[WSOCK_MAX_CONTROL_PAYLOAD];
        apr_size_t n = 0;

        /* Echo the peer's code (nothing if it sent none), then end: the
         * server closes TCP first (RFC 6455 §7.1.1). */
        if (code != WSOCK_CLOSE_NO_STATUS) {
            n = wsock_close_payload(echo, code, NULL, 0);
        }
        wsock_output_close_queue(wc, 1);
        wsock_output_control(wc, WSOCK_OP_CLOSE, echo, n);
        set_close(wc, (int)code, apr_pstrmemdup(wc->pool, (const char *)payload, len));
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wc->c,
                      WSOCKNO(0202) "client closed WebSocket %s with %u", wc->f_uri, code);
    }
    wc->state = WSOCK_STATE_DONE;
    return 1;                       /* nothing after a close is processed */
}

static const wsock_parser_sink conn_sink = { sink_data, sink_control };

static void feed(wsock_conn *wc, uint8_t *p, apr_size_t len)
{
    while (len && wc->state != WSOCK_STATE_DONE) {
        size_t used = 0;
        wsock_parse_result rc = wsock_parser_feed(&wc->parser, p, len, &conn_sink, wc, &used);

        if (rc == WSOCK_PARSE_ERROR) {
            fail_connection(wc, (int)wc->parser.error_code, wc->parser.error_reason);
            return;
        }
        if (rc == WSOCK_PARSE_OK) {
            return;
        }
        p += used;
        len -= used;
    }
}

/* Points *p at what bb_in holds, *len bytes, contiguous.  A lone heap
 * bucket nobody else refers to (what WSOCK_NETIN hands up: one recv) is
 * used where it lies, and unmasked in place, for its buffer is ours alone;
 * anything else is copied into rb.  1 with bytes, 0 with none (the end of
 * the stream, say), -1 when out of memory. */
static int input_bytes(wsock_conn *wc, wsock_buf *rb, uint8_t **p, apr_size_t *len)
{
    apr_bucket *b = APR_BRIGADE_FIRST(wc->bb_in);
    apr_off_t avail = 0;

    if (b != APR_BRIGADE_SENTINEL(wc->bb_in)
        && APR_BUCKET_NEXT(b) == APR_BRIGADE_SENTINEL(wc->bb_in)
        && APR_BUCKET_IS_HEAP(b)
        && ((apr_bucket_heap *)b->data)->refcount.refcount == 1) {
        const char *data;

        if (apr_bucket_read(b, &data, len, APR_NONBLOCK_READ) == APR_SUCCESS && *len > 0) {
            *p = (uint8_t *)data;
            return 1;
        }
    }
    apr_brigade_length(wc->bb_in, 1, &avail);
    *len = (apr_size_t)avail;
    rb->len = 0;
    if (*len == 0) {
        return 0;
    }
    if (!wsock_buf_reserve(rb, *len)) {
        return -1;
    }
    apr_brigade_flatten(wc->bb_in, (char *)rb->data, len);
    *p = rb->data;
    return 1;
}

apr_status_t wsock_conn_read(wsock_conn *wc)
{
    /* What is read is consumed before this returns (the parser keeps its
     * own state, partial messages are copied to wc->msg), so a loop thread
     * lends all its connections one buffer. */
    wsock_buf *rb = wc->shared_rbuf ? wc->shared_rbuf : &wc->rbuf;
    apr_size_t taken = 0;

    for (;;) {
        apr_size_t len = 0;
        apr_status_t rv;
        uint8_t *p = NULL;
        int got;

        if (wc->state == WSOCK_STATE_DONE) {
            return APR_SUCCESS;
        }
        /* A client that does not read what its messages produce (echoes)
         * is not read either: its output stays bounded by WSOCK_OUT_HIGH
         * plus one turn, whatever it sends. */
        if (wsock_output_backlog(wc) >= WSOCK_OUT_HIGH || taken >= WSOCK_TURN_INPUT) {
            return APR_INCOMPLETE;
        }
        rv = ap_get_brigade(wc->c->input_filters, wc->bb_in, AP_MODE_READBYTES,
                            APR_NONBLOCK_READ, WSOCK_READ_CHUNK);
        if (APR_STATUS_IS_EAGAIN(rv) || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(wc->bb_in))) {
            apr_brigade_cleanup(wc->bb_in);
            return APR_SUCCESS;     /* nothing more for now */
        }
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(wc->bb_in);
            peer_gone(wc, rv);
            return rv;
        }
        got = input_bytes(wc, rb, &p, &len);
        if (got <= 0) {
            int eos = !APR_BRIGADE_EMPTY(wc->bb_in)
                      && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(wc->bb_in));
            apr_brigade_cleanup(wc->bb_in);
            if (eos) {
                peer_gone(wc, APR_EOF);
                return APR_EOF;
            }
            if (got == 0) {
                return APR_SUCCESS;
            }
            fail_connection(wc, WSOCK_CLOSE_INTERNAL_ERROR, "out of memory");
            return APR_ENOMEM;
        }
        wc->last_rx = apr_time_now();
        taken += len;
        if (wc->state == WSOCK_STATE_OPEN && !within_rate(wc, &wc->rl_bytes, len, "bytes")) {
            apr_brigade_cleanup(wc->bb_in);
            return APR_SUCCESS;     /* refused before the codec sees it */
        }
        feed(wc, p, len);
        apr_brigade_cleanup(wc->bb_in);
        note_partial(wc, wc->last_rx);
        /* The core input filter already read the socket again, greedily,
         * when it returned less than asked: it is drained, and one more
         * read would only be an EAGAIN.  mod_ssl returns one TLS record at
         * a time and may hold more, so there we read until empty. */
        if (!wc->input_buffers && len < WSOCK_READ_CHUNK) {
            return APR_SUCCESS;
        }
    }
}

/* ---- open, timers, end ---------------------------------------------- */

int wsock_conn_open(wsock_conn *wc)
{
    const wsock_handler *h = wc->set.handler;
    int refuse = h->on_open ? h->on_open(wc) : 0;

    if (refuse == 0 || WSOCK_IS_CLOSE_CODE(refuse)) {
        /* Upgraded (a close code closes it at once): counted until it ends. */
        wc->counted = 1;
        wsock_count_opened(wc->set.ops_label);
    }
    if (refuse == 0) {
        wc->opened = 1;
        return 0;
    }
    if (!WSOCK_IS_HTTP_STATUS(refuse) && !WSOCK_IS_CLOSE_CODE(refuse)) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, wc->c,
                      WSOCKNO(0204) "handler %s returned %d from on_open, which is "
                      "neither an HTTP status nor a close code; refusing with 500",
                      wc->set.handler_name, refuse);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                  WSOCKNO(0203) "handler %s refused WebSocket %s with %d",
                  wc->set.handler_name, wc->f_uri, refuse);
    if (WSOCK_IS_CLOSE_CODE(refuse)) {
        wsock_conn_start_close(wc, refuse, "refused");
    }
    return refuse;
}

static apr_time_t ping_due(const wsock_conn *wc)
{
    apr_time_t since = wc->last_rx > wc->last_ping ? wc->last_rx : wc->last_ping;
    return since + wc->set.ping_interval;
}

apr_interval_time_t wsock_conn_next_timeout(const wsock_conn *wc, apr_time_t now)
{
    apr_time_t due = 0;

    if (wc->state == WSOCK_STATE_CLOSING) {
        due = wc->close_deadline;
    }
    else if (wc->state == WSOCK_STATE_OPEN) {
        if (wc->set.idle_timeout) {
            due = wc->last_rx + wc->set.idle_timeout;
        }
        if (wc->set.ping_interval && (!due || ping_due(wc) < due)) {
            due = ping_due(wc);
        }
        if (wc->set.frame_timeout && wc->partial_since
            && (!due || wc->partial_since + wc->set.frame_timeout < due)) {
            due = wc->partial_since + wc->set.frame_timeout;
        }
        if (wc->token_expires && (!due || wc->token_expires < due)) {
            due = wc->token_expires;
        }
    }
    if (!due) {
        return -1;
    }
    return due > now ? due - now : 0;
}

void wsock_conn_tick(wsock_conn *wc, apr_time_t now)
{
    if (wc->state == WSOCK_STATE_CLOSING) {
        if (now >= wc->close_deadline) {
            ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wc->c,
                          WSOCKNO(0103) "no close reply from the client in time");
            wc->state = WSOCK_STATE_DONE;
        }
        return;
    }
    if (wc->state != WSOCK_STATE_OPEN) {
        return;
    }
    if (wc->set.idle_timeout && now - wc->last_rx >= wc->set.idle_timeout) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                      WSOCKNO(0104) "WebSocket %s idle for %" APR_TIME_T_FMT " ms; closing",
                      wc->f_uri, apr_time_as_msec(now - wc->last_rx));
        /* The peer is silent: say why, but don't wait for an answer. */
        wsock_conn_start_close(wc, WSOCK_CLOSE_GOING_AWAY, "idle timeout");
        wc->state = WSOCK_STATE_DONE;
        return;
    }
    if (wc->set.frame_timeout && wc->partial_since
        && now - wc->partial_since >= wc->set.frame_timeout) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                      WSOCKNO(0751) "WebSocket %s: a frame or fragmented message is "
                      "still incomplete after %" APR_TIME_T_FMT " ms (WSockFrameTimeout); "
                      "closing with 1008", wc->f_uri, apr_time_as_msec(now - wc->partial_since));
        wsock_conn_start_close(wc, WSOCK_CLOSE_POLICY, "frame timeout");
        wc->state = WSOCK_STATE_DONE;
        return;
    }
    if (wc->token_expires && now >= wc->token_expires) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                      WSOCKNO(0712) "WebSocket %s: its token expired; closing with 1008 "
                      "(WSockTokenExpiry)", wc->f_uri);
        /* An orderly close: the client is not at fault, and may come back
         * with a new token. */
        wsock_conn_start_close(wc, WSOCK_CLOSE_POLICY, "token expired");
        return;
    }
    if (wc->set.ping_interval && now >= ping_due(wc)) {
        wsock_output_control(wc, WSOCK_OP_PING, NULL, 0);
        wc->last_ping = now;
    }
}

void wsock_conn_refused(wsock_conn *wc)
{
    wc->state = WSOCK_STATE_DONE;
    wsock_rooms_leave_all(wc);      /* what on_open joined */
    wsock_output_close_queue(wc, 0);    /* what was published to it meanwhile */
    wsock_output_writable_check(wc);    /* a producer waiting: it is over */
    wc->obuf.len = 0;               /* what on_open sent never goes out */
    wsock_buf_release(&wc->obuf);
    wsock_security_conn_end(wc);
    wsock_conn_let_go_wait(wc);
    /* The attempt's memory (the request's facts, its buffers) lives in the
     * connection's pool: a client must not pile up refused attempts on one
     * keep-alive connection. */
    wc->c->keepalive = AP_CONN_CLOSE;
}

/* Once per counted connection, whichever way it ends. */
static void conn_count_end(wsock_conn *wc)
{
    if (wc->counted) {
        wc->counted = 0;
        wsock_count_closed(wc->set.ops_label, wc->close_code);
    }
}

void wsock_conn_abandon(wsock_conn *wc)
{
    const wsock_handler *h = wc->set.handler;

    wc->state = WSOCK_STATE_DONE;
    wsock_rooms_leave_all(wc);
    wsock_output_close_queue(wc, 0);
    wsock_output_writable_check(wc);    /* a producer waiting: it is over */
    if (wc->close_code == 0) {
        set_close(wc, WSOCK_CLOSE_ABNORMAL, "connection lost");
    }
    wsock_security_conn_end(wc);
    conn_count_end(wc);
    if (wc->opened && h->on_close) {
        h->on_close(wc, wc->close_code, wc->close_reason);
    }
    wc->opened = 0;
    wsock_conn_let_go_wait(wc);
}

void wsock_conn_finish(wsock_conn *wc)
{
    const wsock_handler *h = wc->set.handler;

    wc->state = WSOCK_STATE_DONE;
    wsock_rooms_leave_all(wc);      /* no publisher reaches it from here on */
    wsock_conn_flush(wc);           /* a close frame may still be buffered */
    wsock_output_close_queue(wc, 0);
    wsock_output_writable_check(wc);    /* a producer waiting: it is over */
    if (wc->close_code == 0) {
        set_close(wc, WSOCK_CLOSE_ABNORMAL, "connection lost");
    }
    wsock_slow_report(wc);          /* dropped totals; 1008 for a slow consumer */
    wsock_security_conn_end(wc);    /* its per-IP count */
    conn_count_end(wc);
    if (wc->opened && h->on_close) {
        h->on_close(wc, wc->close_code, wc->close_reason);
    }
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wc->c,
                  WSOCKNO(0105) "WebSocket %s ended with %d", wc->f_uri, wc->close_code);
}
