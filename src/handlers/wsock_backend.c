/*
 * wsock_backend.c — WSockHandler backend URL [protocol=websocket-events|plain]:
 * forwards a client's events to an application over HTTP (docs/backend.md).
 *
 * A connection has at most one request out at a time (bc->inflight), so its
 * events reach the backend in order; what the client sends meanwhile waits
 * in the connection's queue (bounded by queue= and queue-bytes=: past them
 * the client is closed with 1013, as the API cannot stop reading it) and
 * goes in the next request, all together (websocket-events) or one per
 * request (plain).  Whoever sets inflight builds and submits the request;
 * the HTTP thread (wsock_backend_http.c) runs it and, when it ends, applies
 * the answer and sends the next.  The OPEN request is the one exception:
 * on_open runs on the request's worker thread, before the 101, and waits
 * for its answer (bounded by timeout=), so that the backend can refuse the
 * upgrade with its status.  A loop thread never waits on the backend.
 *
 * The last request of a connection (CLOSE or DISCONNECT) is tried again,
 * retries= times, 1, 2, 3... seconds apart, before it is given up with a
 * log line.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_strings.h>

#include "wsock_backend.h"
#include "wsock_log.h"
#include "wsock_wsevents.h"
#include "wsock_counters.h"

APLOG_USE_MODULE(wsock);

#define LOGS wsock_backend_server()
#define TICK_BATCH 256              /* connections a timer turn handles */

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static wsock_backend_conn *conns;   /* accepted, not yet freed */
static int started;
static atomic_int stopping;        /* set by child_exit, read by the HTTP thread */

/* What the OPEN request carries of the client's handshake by default. */
static const char *const passed_headers[] = {
    "Origin", "User-Agent", "Sec-WebSocket-Protocol", "Sec-WebSocket-Version",
    "Accept-Language", NULL
};

/* No control characters: a value goes on a request line as it is. */
static int safe_value(const char *v)
{
    for (; *v; v++) {
        if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static void add_header(wsock_backend_call *call, const char *name, const char *value)
{
    if (value && safe_value(value)) {
        wsock_backend_call_header(call, name, value);
    }
}

/* What every request says about the client (set by mod_wsock, never
 * taken from the client's own headers): lines made once, at the open. */
static void trust_headers(wsock_backend_conn *bc, wsock_backend_call *call)
{
    for (int i = 0; i < bc->ntrust_hdrs; i++) {
        wsock_backend_call_line(call, bc->trust_hdrs[i]);
    }
    wsock_backend_call_line(call, "Expect:");   /* no 100-continue round trip */
}

/* The client's handshake headers the backend may see. */
static void client_headers(wsock_backend_conn *bc, wsock_backend_call *call)
{
    for (int i = 0; i < bc->nclient_hdrs; i++) {
        wsock_backend_call_line(call, bc->client_hdrs[i]);
    }
}

static char *copy(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Appends "name: v" to lines (room for it is there), if v may be sent. */
static void keep_line(char **lines, int *n, const char *name, const char *v)
{
    apr_size_t len;

    if (v == NULL || !safe_value(v)) {
        return;
    }
    len = strlen(name) + strlen(v) + 3;
    if ((lines[*n] = malloc(len)) != NULL) {
        snprintf(lines[(*n)++], len, "%s: %s", name, v);
    }
}

static void keep_header(wsock_backend_conn *bc, wsock_conn *wc, const char *name)
{
    keep_line(bc->client_hdrs, &bc->nclient_hdrs, name, wsock_header(wc, name));
}

/* Copies what the requests say about the client; 0 when memory runs out. */
static int keep_facts(wsock_backend_conn *bc, wsock_conn *wc)
{
    const wsock_backend_cfg *cfg = bc->cfg;
    const char *q = wsock_query(wc);
    apr_size_t n = strlen(wsock_uri(wc)) + (q ? strlen(q) + 1 : 0) + 1;
    int max = 5 + cfg->nheaders + 2;

    bc->id = copy(wsock_connection_id(wc));
    bc->uri = copy(wsock_uri(wc));
    bc->remote = copy(wsock_remote_ip(wc));
    bc->user = copy(wsock_user(wc));
    bc->protocol = copy(wsock_protocol(wc));
    bc->location = copy(wsock_location(wc));
    if ((bc->uri_q = malloc(n)) != NULL) {
        snprintf(bc->uri_q, n, "%s%s%s", wsock_uri(wc), q ? "?" : "", q ? q : "");
    }
    if ((bc->client_hdrs = calloc((apr_size_t)max, sizeof(char *))) == NULL
        || !bc->id || !bc->uri || !bc->uri_q || !bc->location) {
        return 0;
    }
    keep_line(bc->trust_hdrs, &bc->ntrust_hdrs, "Connection-Id", bc->id);
    keep_line(bc->trust_hdrs, &bc->ntrust_hdrs, "Wsock-Remote-Addr", bc->remote);
    keep_line(bc->trust_hdrs, &bc->ntrust_hdrs, "Wsock-User", bc->user);
    keep_line(bc->trust_hdrs, &bc->ntrust_hdrs, "Wsock-Protocol", bc->protocol);
    keep_line(bc->trust_hdrs, &bc->ntrust_hdrs, "Wsock-Location", bc->location);
    keep_line(bc->trust_hdrs, &bc->ntrust_hdrs, "Wsock-Uri", bc->uri_q);
    for (int i = 0; passed_headers[i]; i++) {
        keep_header(bc, wc, passed_headers[i]);
    }
    for (int i = 0; i < cfg->nheaders; i++) {
        keep_header(bc, wc, cfg->headers[i]);
    }
    if (cfg->credentials) {
        keep_header(bc, wc, "Cookie");
        keep_header(bc, wc, "Authorization");
    }
    return 1;
}

/* Appends an event to the queue (bc->lock held); 0 when memory runs out. */
static int append_event(wsock_backend_conn *bc, const char *name, int has_content,
                        const void *data, apr_size_t len)
{
    apr_size_t need = bc->plen + wsock_wsevent_size(name, has_content, len);

    if (need > bc->pcap) {
        apr_size_t cap = bc->pcap ? bc->pcap : 256;
        char *grown;
        while (cap < need) {
            cap *= 2;
        }
        if ((grown = realloc(bc->pending, cap)) == NULL) {
            return 0;
        }
        bc->pending = grown;
        bc->pcap = cap;
    }
    bc->plen += wsock_wsevent_encode(bc->pending + bc->plen, name, has_content, data, len);
    bc->pcount++;
    return 1;
}

static void request_done(wsock_backend_call *call);

/* protocol=plain: the first queued event becomes the request. */
static void plain_request(wsock_backend_conn *bc, wsock_backend_call *call)
{
    wsock_wsevent ev;
    apr_size_t pos = 0;
    char code[8];

    pthread_mutex_lock(&bc->lock);
    if (wsock_wsevent_next(bc->pending, bc->plen, &pos, &ev) == 1) {
        if (ev.len && (call->body = malloc(ev.len)) != NULL) {
            memcpy(call->body, ev.data, ev.len);
            call->body_len = ev.len;
        }
        if (wsock_wsevent_is(&ev, "OPEN")) {
            wsock_backend_call_line(call, "Wsock-Event: open");
            wsock_backend_call_line(call, "Content-Type:");
        }
        else if (wsock_wsevent_is(&ev, "TEXT") || wsock_wsevent_is(&ev, "BINARY")) {
            wsock_backend_call_line(call, "Wsock-Event: message");
            wsock_backend_call_line(call, ev.name[0] == 'T'
                                          ? "Content-Type: text/plain; charset=utf-8"
                                          : "Content-Type: application/octet-stream");
        }
        else {
            /* CLOSE (2 bytes of code) or DISCONNECT (1006: no close handshake) */
            int c = ev.len >= 2 ? ((unsigned char)ev.data[0] << 8) | (unsigned char)ev.data[1]
                                : 1006;
            wsock_backend_call_line(call, "Wsock-Event: close");
            snprintf(code, sizeof(code), "%d", c);
            add_header(call, "Wsock-Close-Code", code);
            wsock_backend_call_line(call, "Content-Type:");
            free(call->body);
            call->body = NULL;
            call->body_len = 0;
        }
        memmove(bc->pending, bc->pending + pos, bc->plen - pos);
        bc->plen -= pos;
        bc->pcount--;
        call->nevents = 1;
    }
    call->final = bc->closing && bc->pcount == 0;
    pthread_mutex_unlock(&bc->lock);
    client_headers(bc, call);
}

/* protocol=websocket-events: every queued event goes in one request. */
static void events_request(wsock_backend_conn *bc, wsock_backend_call *call, int opening)
{
    pthread_mutex_lock(&bc->lock);
    call->body = bc->pending;
    call->body_len = bc->plen;
    call->nevents = bc->pcount;
    call->final = bc->closing;
    bc->pending = NULL;
    bc->plen = bc->pcap = 0;
    bc->pcount = 0;
    pthread_mutex_unlock(&bc->lock);
    wsock_backend_call_line(call, "Content-Type: application/websocket-events");
    wsock_backend_call_line(call, "Accept: application/websocket-events");
    for (int i = 0; i < bc->nmeta; i++) {
        wsock_backend_call_line(call, bc->meta[i]);
    }
    if (opening) {
        client_headers(bc, call);
        wsock_backend_call_line(call, "Sec-WebSocket-Extensions: grip");
    }
}

/* The next request of bc, by the holder of bc->inflight. */
static wsock_backend_call *build_request(wsock_backend_conn *bc, int opening)
{
    wsock_backend_call *call = wsock_backend_call_new(bc->cfg);

    if (call == NULL) {
        return NULL;
    }
    call->baton = bc;
    call->done = request_done;
    trust_headers(bc, call);
    if (bc->cfg->protocol == WSOCK_BACKEND_PLAIN) {
        plain_request(bc, call);
    }
    else {
        events_request(bc, call, opening);
    }
    return call;
}

static void submit(wsock_backend_call *call)
{
    if (wsock_backend_submit(call) != APR_SUCCESS) {
        call->status = 0;
        snprintf(call->error, sizeof(call->error), "the backend client is not running");
        call->done(call);
    }
}

static void send_next(wsock_backend_conn *bc)
{
    wsock_backend_call *call = build_request(bc, 0);

    if (call) {
        submit(call);
    }
    else {
        /* out of memory: what was queued stays, the timer tries again */
        pthread_mutex_lock(&bc->lock);
        bc->inflight = 0;
        pthread_mutex_unlock(&bc->lock);
    }
}

static void conn_free(wsock_backend_conn *bc)
{
    pthread_mutex_lock(&conns_lock);
    if (bc->prev) {
        bc->prev->next = bc->next;
    }
    else if (conns == bc) {
        conns = bc->next;
    }
    if (bc->next) {
        bc->next->prev = bc->prev;
    }
    pthread_mutex_unlock(&conns_lock);
    for (int i = 0; i < bc->nmeta; i++) {
        free(bc->meta[i]);
    }
    for (int i = 0; i < bc->nclient_hdrs; i++) {
        free(bc->client_hdrs[i]);
    }
    free(bc->client_hdrs);
    for (int i = 0; i < bc->ntrust_hdrs; i++) {
        free(bc->trust_hdrs[i]);
    }
    free(bc->id);
    free(bc->uri);
    free(bc->uri_q);
    free(bc->remote);
    free(bc->user);
    free(bc->protocol);
    free(bc->location);
    free(bc->pending);
    free(bc->ka_content);
    wsock_backend_call_free(bc->retry);
    pthread_mutex_destroy(&bc->lock);
    if (bc->wc) {
        wsock_unref(bc->wc);
    }
    free(bc);
}

/* A request of an open connection failed: the client is closed with 1011
 * (the events in that request are lost: said in the log line). */
static void request_failed(wsock_backend_conn *bc, wsock_backend_call *call)
{
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                 WSOCKNO(1558) "backend %s: %s connection %s: closing the client with 1011; "
                 "%d event(s) of its last request may not have reached the backend",
                 bc->cfg->url, bc->uri, bc->id, call->nevents);
    pthread_mutex_lock(&bc->lock);
    bc->failed = 1;
    pthread_mutex_unlock(&bc->lock);
    wsock_close(bc->wc, 1011, "backend error");
}

/* Lets go of the client once it has ended (bc->lock held): the holder of
 * inflight, or on_close when nothing is in flight.  Returns what to unref. */
static wsock_conn *let_go(wsock_backend_conn *bc)
{
    wsock_conn *wc = bc->closing ? bc->wc : NULL;

    if (wc) {
        bc->wc = NULL;
    }
    return wc;
}

/* On the HTTP thread: a request of an accepted connection ended.  bc->wc
 * only changes under the holder of inflight (that is us) once on_close ran. */
static void request_done(wsock_backend_call *call)
{
    wsock_backend_conn *bc = call->baton;
    int ok, final = call->final, more = 0, done = 0;
    wsock_conn *gone;

    if (stopping) {
        wsock_backend_call_free(call);  /* the child ends: nothing to tell anyone */
        return;
    }
    ok = wsock_backend_answer_ok(bc, call);
    wsock_count(ok ? WSOCK_C_BACKEND_REQUESTS : WSOCK_C_BACKEND_FAILED, 1);
    if (ok && bc->wc) {
        int rc = wsock_backend_apply(bc, call, 0);
        if (rc && !final) {
            request_failed(bc, call);
        }
    }
    else if (!ok && !final && bc->wc) {
        request_failed(bc, call);
    }
    pthread_mutex_lock(&bc->lock);
    gone = let_go(bc);
    pthread_mutex_unlock(&bc->lock);
    if (gone) {
        wsock_unref(gone);          /* the connection's memory can go back now */
    }

    if (!ok && final) {
        if (++bc->attempts <= bc->cfg->retries) {
            apr_time_t at = apr_time_now() + apr_time_from_sec(bc->attempts);
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, LOGS,
                         WSOCKNO(1548) "backend %s: %s connection %s: its last events "
                         "(closed) will be tried again in %d s (attempt %d of %d)",
                         bc->cfg->url, bc->uri, bc->id,
                         bc->attempts, bc->attempts + 1, bc->cfg->retries + 1);
            pthread_mutex_lock(&bc->lock);
            bc->retry = call;
            bc->retry_at = at;
            pthread_mutex_unlock(&bc->lock);
            return;                 /* still in flight: the timer sends it */
        }
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                     WSOCKNO(1559) "backend %s: %s connection %s: gave up telling the "
                     "backend that the connection closed, after %d attempts",
                     bc->cfg->url, bc->uri, bc->id, bc->attempts);
    }
    wsock_backend_call_free(call);

    pthread_mutex_lock(&bc->lock);
    bc->last_request = apr_time_now();
    if (bc->closing && (final || (bc->detached && bc->plen == 0))) {
        done = 1;
    }
    else if (bc->plen > 0) {
        more = 1;                   /* stays in flight */
    }
    else {
        bc->inflight = 0;
    }
    pthread_mutex_unlock(&bc->lock);
    if (done) {
        conn_free(bc);
    }
    else if (more) {
        send_next(bc);
    }
}

/* On the HTTP thread, about twice a second: keep-alive requests of idle
 * connections (Keep-Alive-Interval), and last requests to try again. */
typedef struct {
    wsock_conn *wc;                 /* referenced */
    char *data;                     /* a copy: bc may be gone when it is sent */
    apr_size_t len;
    int is_text;
} ka_send;

/* A GRIP keep-alive of bc that is due (bc->lock held): taken into ka. */
static int keep_alive_due(wsock_backend_conn *bc, apr_time_t now, ka_send *ka)
{
    if (bc->ka_content == NULL || bc->wc == NULL || bc->closing
        || now - bc->ka_last < bc->ka_every
        || (ka->data = malloc(bc->ka_len ? bc->ka_len : 1)) == NULL) {
        return 0;
    }
    memcpy(ka->data, bc->ka_content, bc->ka_len);
    ka->len = bc->ka_len;
    ka->is_text = !bc->ka_binary;
    ka->wc = bc->wc;
    wsock_ref(ka->wc);              /* on_close may let go of it meanwhile */
    bc->ka_last = now;
    return 1;
}

static void on_tick(apr_time_t now)
{
    wsock_backend_conn *due[TICK_BATCH];
    wsock_backend_call *retry[TICK_BATCH];
    ka_send ka[TICK_BATCH];
    int n = 0, nka = 0;

    pthread_mutex_lock(&conns_lock);
    for (wsock_backend_conn *bc = conns; bc && n < TICK_BATCH; bc = bc->next) {
        pthread_mutex_lock(&bc->lock);
        if (nka < TICK_BATCH && keep_alive_due(bc, now, &ka[nka])) {
            nka++;
        }
        if (bc->retry && now >= bc->retry_at) {
            retry[n] = bc->retry;
            bc->retry = NULL;
            due[n++] = bc;
        }
        else if (!bc->inflight && !bc->closing && !bc->detached && !bc->failed
                 && ((bc->keep_alive && now - bc->last_request >= bc->keep_alive)
                     || bc->plen > 0)) {
            bc->inflight = 1;
            retry[n] = NULL;
            due[n++] = bc;
        }
        pthread_mutex_unlock(&bc->lock);
    }
    pthread_mutex_unlock(&conns_lock);
    for (int i = 0; i < nka; i++) {
        wsock_send(ka[i].wc, ka[i].is_text, ka[i].data, ka[i].len);
        wsock_unref(ka[i].wc);
        free(ka[i].data);
    }
    for (int i = 0; i < n; i++) {
        if (retry[i]) {
            wsock_backend_call *call = retry[i];
            free(call->answer);
            call->answer = NULL;
            call->answer_len = 0;
            for (int h = 0; h < call->nhdrs; h++) {
                free(call->hdrs[h]);
            }
            call->nhdrs = 0;
            call->too_big = call->timed_out = 0;
            submit(call);
        }
        else {
            send_next(due[i]);
        }
    }
}

/* ---- the OPEN request: on_open waits for its answer ------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} open_wait;

static void open_done(wsock_backend_call *call)
{
    open_wait *w = call->baton;

    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* The status that refuses the client, or 0 when the backend accepts it. */
static int open_outcome(wsock_backend_conn *bc, wsock_backend_call *call)
{
    const char *ct = wsock_backend_answer_header(call, "Content-Type");

    if (call->status == 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                     WSOCKNO(1541) "backend %s: %s: refused the client with %d, no answer to "
                     "its OPEN: %s", bc->cfg->url, bc->uri,
                     call->timed_out ? 504 : 502, call->error);
        return call->timed_out ? HTTP_GATEWAY_TIME_OUT : HTTP_BAD_GATEWAY;
    }
    if (call->status < 200 || call->status > 299) {
        int st = WSOCK_IS_HTTP_STATUS(call->status) ? (int)call->status : HTTP_BAD_GATEWAY;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, LOGS,
                     WSOCKNO(1542) "backend %s: %s: the backend refused the client with "
                     "%ld (passed on as %d)", bc->cfg->url, bc->uri, call->status,
                     st);
        if (st == call->status && call->answer_len <= WSOCK_REFUSAL_BODY_MAX) {
            /* the backend's own words go to the client (a type with control
             * characters, or none: Apache's page) */
            const char *ct = wsock_backend_answer_header(call, "Content-Type");
            wsock_refusal_body(bc->wc, ct ? ct : "application/octet-stream", call->answer,
                               call->answer_len);
        }
        return st;
    }
    if (bc->cfg->protocol == WSOCK_BACKEND_EVENTS && !wsock_backend_events_type(ct)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                     WSOCKNO(1543) "backend %s: %s: refused the client with 502, the answer "
                     "to its OPEN is not application/websocket-events (Content-Type: %s)",
                     bc->cfg->url, bc->uri, ct ? ct : "none");
        return HTTP_BAD_GATEWAY;
    }
    return wsock_backend_apply(bc, call, 1) ? HTTP_BAD_GATEWAY : 0;
}

static int backend_open(wsock_conn *wc)
{
    wsock_backend_conn *bc;
    wsock_backend_call *call;
    open_wait w = { .done = 0 };
    int rc;

    if (!started) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, wsock_connection(wc),
                      WSOCKNO(1554) "backend %s: refused with 503, the backend client of "
                      "this child did not start", wsock_uri(wc));
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if ((bc = calloc(1, sizeof(*bc))) == NULL) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    pthread_mutex_init(&bc->lock, NULL);
    bc->cfg = wsock_handler_config(wc);
    bc->wc = wc;                    /* not referenced yet: conn_free must not unref */
    bc->inflight = 1;
    /* the backend may push to it by its Connection-Id (publish endpoint,
     * connection=ID) as soon as it has the OPEN */
    if ((rc = wsock_make_addressable(wc)) != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, rc, wsock_connection(wc),
                      WSOCKNO(1560) "backend %s: refused with 503, the connection cannot be "
                      "made addressable", wsock_uri(wc));
        bc->wc = NULL;
        conn_free(bc);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (!keep_facts(bc, wc) || !append_event(bc, "OPEN", 0, NULL, 0)
        || (call = build_request(bc, 1)) == NULL) {
        bc->wc = NULL;
        conn_free(bc);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    call->done = open_done;
    call->baton = &w;
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    submit(call);
    /* bounded: libcurl ends the request at timeout= */
    pthread_mutex_lock(&w.lock);
    while (!w.done) {
        pthread_cond_wait(&w.cond, &w.lock);
    }
    pthread_mutex_unlock(&w.lock);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);

    rc = open_outcome(bc, call);
    /* failed: no answer, or a 2xx answer that was garbage (502) */
    wsock_count(call->status == 0 || (rc == HTTP_BAD_GATEWAY && call->status / 100 == 2)
                ? WSOCK_C_BACKEND_FAILED : WSOCK_C_BACKEND_REQUESTS, 1);
    wsock_backend_call_free(call);
    if (rc) {
        bc->wc = NULL;
        conn_free(bc);
        return rc;
    }
    wsock_ref(wc);
    wsock_set_user_data(wc, bc);
    pthread_mutex_lock(&bc->lock);
    bc->inflight = 0;
    bc->last_request = apr_time_now();
    pthread_mutex_unlock(&bc->lock);
    pthread_mutex_lock(&conns_lock);
    bc->next = conns;
    if (conns) {
        conns->prev = bc;
    }
    conns = bc;
    pthread_mutex_unlock(&conns_lock);
    return 0;
}

static int backend_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    wsock_backend_conn *bc = wsock_get_user_data(wc);
    const char *name = is_text ? "TEXT" : "BINARY";
    int kick = 0;

    pthread_mutex_lock(&bc->lock);
    if (bc->detached || bc->failed) {
        pthread_mutex_unlock(&bc->lock);
        return 0;                   /* the backend wants no more / the client is closing */
    }
    if (bc->pcount >= bc->cfg->queue_events
        || bc->plen + wsock_wsevent_size(name, 1, len) > bc->cfg->queue_bytes
        || !append_event(bc, name, 1, data, len)) {
        int n = bc->pcount;
        apr_size_t bytes = bc->plen;
        pthread_mutex_unlock(&bc->lock);
        ap_log_cerror(APLOG_MARK, APLOG_WARNING, 0, wsock_connection(wc),
                      WSOCKNO(1557) "backend %s: %s connection %s: closing with 1013, %d "
                      "event(s) of %" APR_SIZE_T_FMT " bytes wait for the backend already "
                      "(queue=%d queue-bytes=%" APR_SIZE_T_FMT ")", bc->cfg->url,
                      wsock_uri(wc), wsock_connection_id(wc), n, bytes,
                      bc->cfg->queue_events, bc->cfg->queue_bytes);
        return 1013;
    }
    if (!bc->inflight) {
        bc->inflight = kick = 1;
    }
    pthread_mutex_unlock(&bc->lock);
    if (kick) {
        send_next(bc);
    }
    return 0;
}

static void backend_close(wsock_conn *wc, int code, const char *reason)
{
    wsock_backend_conn *bc = wsock_get_user_data(wc);
    unsigned char c[2] = { (unsigned char)(code >> 8), (unsigned char)code };
    int kick = 0, gone = 0, queued = 1;
    wsock_conn *release = NULL;

    (void)reason;
    pthread_mutex_lock(&bc->lock);
    bc->closing = 1;
    if (!bc->detached) {
        /* no close handshake, or we closed it for the backend's failure */
        queued = (code == 1006 || bc->failed) ? append_event(bc, "DISCONNECT", 0, NULL, 0)
                                              : append_event(bc, "CLOSE", 1, c, 2);
    }
    if (!bc->inflight) {
        /* nobody applies an answer now: the connection's memory may go
         * back as soon as on_close returns (its last request needs only
         * the facts kept in bc) */
        release = let_go(bc);
        if (bc->detached || !queued) {
            gone = 1;
        }
        else {
            bc->inflight = kick = 1;
        }
    }
    pthread_mutex_unlock(&bc->lock);
    if (release) {
        wsock_unref(release);
    }
    if (gone) {
        conn_free(bc);
    }
    else if (kick) {
        send_next(bc);
    }
}

static void backend_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    if (!wsock_backend_in_use()) {
        return;
    }
    wsock_backend_http_on_tick(on_tick);
    if ((rv = wsock_backend_http_start(pchild, s)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSOCKNO(1540) "backend: cannot start the HTTP client thread in this "
                     "child; its clients are refused with 503");
        return;
    }
    started = 1;
}

static void backend_child_exit(server_rec *s)
{
    (void)s;
    if (started) {
        stopping = 1;
        wsock_backend_http_stop();
        started = 0;
    }
}

const wsock_handler wsock_backend_handler = {
    .api_version = WSOCK_API_VERSION,
    .name = "backend",
    .create_config = wsock_backend_create_config,
    .child_init = backend_child_init,
    .child_exit = backend_child_exit,
    .on_open = backend_open,
    .on_message = backend_message,
    .on_close = backend_close,
};
