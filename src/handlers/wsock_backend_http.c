/*
 * wsock_backend_http.c — this child's HTTP client for the backend handler:
 * one thread running libcurl's multi interface.  Other threads hand it
 * calls (wsock_backend_submit); it runs at most `requests=` of them at once
 * (the rest wait in order), keeps connections to the backend alive between
 * requests (libcurl's connection cache), bounds every request by its
 * location's timeout and every answer by max-answer, and runs each call's
 * done() when it ends.  No other thread ever waits on the network.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include <httpd.h>
#include <http_log.h>

#include "wsock_backend.h"
#include "wsock_log.h"
#include "wsock_threads.h"

APLOG_USE_MODULE(wsock);

#define TICK (APR_USEC_PER_SEC / 2)
#define DRAIN APR_USEC_PER_SEC      /* what a stopping child gives its requests */
#define HDR_LINE_MAX 8192
#define WSOCK_BACKEND_SPARE 64      /* ended handles kept for reuse */

static struct {
    pthread_mutex_t lock;           /* waiting, stop, running */
    wsock_backend_call *waiting, *waiting_tail;
    int stop, running;
    apr_time_t stop_by;             /* stop: requests out until then may end */
    CURLM *multi;
    pthread_t thread;
    server_rec *s;
    int active, max_active;         /* the thread's own */
    wsock_backend_call *running_calls;      /* in the multi handle */
    CURL *spare[WSOCK_BACKEND_SPARE];       /* ended handles, reset, for the next */
    int nspare;
    void (*tick)(apr_time_t now);
} http = { .lock = PTHREAD_MUTEX_INITIALIZER };

server_rec *wsock_backend_server(void)
{
    return http.s;
}

void wsock_backend_http_on_tick(void (*fn)(apr_time_t now))
{
    http.tick = fn;
}

wsock_backend_call *wsock_backend_call_new(const wsock_backend_cfg *cfg)
{
    wsock_backend_call *call = calloc(1, sizeof(*call));

    if (call) {
        call->cfg = cfg;
    }
    return call;
}

int wsock_backend_call_line(wsock_backend_call *call, const char *line)
{
    struct curl_slist *l = curl_slist_append(call->headers, line);

    if (l == NULL) {
        return 0;
    }
    call->headers = l;
    return 1;
}

int wsock_backend_call_header(wsock_backend_call *call, const char *name, const char *value)
{
    apr_size_t n = strlen(name) + (value ? strlen(value) : 0) + 3;
    char *line = malloc(n);
    int ok;

    if (line == NULL) {
        return 0;
    }
    /* libcurl's spellings: "Name;" an empty value, "Name:" no such header */
    if (value == NULL) {
        snprintf(line, n, "%s:", name);
    }
    else if (*value) {
        snprintf(line, n, "%s: %s", name, value);
    }
    else {
        snprintf(line, n, "%s;", name);
    }
    ok = wsock_backend_call_line(call, line);
    free(line);
    return ok;
}

void wsock_backend_call_free(wsock_backend_call *call)
{
    if (call == NULL) {
        return;
    }
    curl_slist_free_all(call->headers);
    free(call->body);
    free(call->answer);
    for (int i = 0; i < call->nhdrs; i++) {
        free(call->hdrs[i]);
    }
    free(call);
}

const char *wsock_backend_answer_header(const wsock_backend_call *call, const char *name)
{
    apr_size_t n = strlen(name);

    for (int i = 0; i < call->nhdrs; i++) {
        const char *h = call->hdrs[i];
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            h += n + 1;
            while (*h == ' ' || *h == '\t') {
                h++;
            }
            return h;
        }
    }
    return NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *baton)
{
    wsock_backend_call *call = baton;
    size_t n = size * nmemb;
    char *grown;

    if (n > call->cfg->max_answer - call->answer_len) {
        call->too_big = 1;
        return 0;                   /* libcurl ends the transfer */
    }
    if ((grown = realloc(call->answer, call->answer_len + n + 1)) == NULL) {
        return 0;
    }
    call->answer = grown;
    memcpy(call->answer + call->answer_len, data, n);
    call->answer_len += n;
    call->answer[call->answer_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *baton)
{
    wsock_backend_call *call = baton;
    size_t n = size * nmemb, len = n;

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new answer (after a 100 Continue): forget the last one's */
        for (int i = 0; i < call->nhdrs; i++) {
            free(call->hdrs[i]);
        }
        call->nhdrs = 0;
        return n;
    }
    while (len && (data[len - 1] == '\r' || data[len - 1] == '\n')) {
        len--;
    }
    if (len && len < HDR_LINE_MAX && call->nhdrs < WSOCK_BACKEND_HDRS_MAX
        && memchr(data, ':', len) && memchr(data, '\0', len) == NULL) {
        char *h = malloc(len + 1);
        if (h) {
            memcpy(h, data, len);
            h[len] = '\0';
            call->hdrs[call->nhdrs++] = h;
        }
    }
    return n;
}

/* An ended request's handle: reset (its options, not the connection cache
 * of the multi handle) and kept for the next request, up to a few. */
static void keep_or_free(CURL *e)
{
    if (http.nspare < WSOCK_BACKEND_SPARE && http.multi) {
        curl_easy_reset(e);
        http.spare[http.nspare++] = e;
    }
    else {
        curl_easy_cleanup(e);
    }
}

static int start_call(wsock_backend_call *call)
{
    const wsock_backend_cfg *cfg = call->cfg;
    /* A handle kept from an ended request: libcurl's init and clean-up of
     * one cost more than the rest of a small request (bench/backend.sh). */
    CURL *e = http.nspare ? http.spare[--http.nspare] : curl_easy_init();
    long ms = (long)apr_time_as_msec(cfg->timeout);

    if (e == NULL) {
        return 0;
    }
    curl_easy_setopt(e, CURLOPT_URL, cfg->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body ? call->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, (struct curl_slist *)call->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (cfg->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    }
    call->error[0] = '\0';
    if (curl_multi_add_handle(http.multi, e) != CURLM_OK) {
        keep_or_free(e);
        return 0;
    }
    call->easy = e;
    call->next = http.running_calls;
    http.running_calls = call;
    return 1;
}

static void finish(wsock_backend_call *call, CURLcode rc)
{
    CURL *e = call->easy;

    if (e) {
        wsock_backend_call **pp = &http.running_calls;
        while (*pp && *pp != call) {
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = call->next;
        }
        call->next = NULL;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &call->status);
        curl_multi_remove_handle(http.multi, e);
        keep_or_free(e);
        call->easy = NULL;
        http.active--;
    }
    if (call->too_big) {
        snprintf(call->error, sizeof(call->error), "answer larger than max-answer=%"
                 APR_SIZE_T_FMT " bytes", call->cfg->max_answer);
    }
    else if (rc != CURLE_OK && call->error[0] == '\0') {
        snprintf(call->error, sizeof(call->error), "%s", curl_easy_strerror(rc));
    }
    call->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    if (rc != CURLE_OK || call->too_big) {
        call->status = 0;
    }
    call->done(call);
}

/* Moves waiting calls into the multi handle, up to the bound. */
static void take_waiting(void)
{
    for (;;) {
        wsock_backend_call *call;

        pthread_mutex_lock(&http.lock);
        call = http.active < http.max_active ? http.waiting : NULL;
        if (call) {
            http.waiting = call->next;
            if (http.waiting == NULL) {
                http.waiting_tail = NULL;
            }
            http.active++;
        }
        pthread_mutex_unlock(&http.lock);
        if (call == NULL) {
            return;
        }
        call->next = NULL;
        if (!start_call(call)) {
            http.active--;
            snprintf(call->error, sizeof(call->error), "cannot start a request (out of memory)");
            call->status = 0;
            call->done(call);
        }
    }
}

static void *http_main(void *arg)
{
    apr_time_t next_tick = apr_time_now() + TICK;
    CURLMsg *msg;
    int left, still;

    wsock_thread_name("wsock-backend");       /* top -H; the signal-mask test */
    (void)arg;
    for (;;) {
        apr_time_t now = apr_time_now(), stop_by = 0;
        int stop, idle;

        pthread_mutex_lock(&http.lock);
        stop = http.stop;
        stop_by = http.stop_by;
        idle = http.waiting == NULL && http.active == 0;
        pthread_mutex_unlock(&http.lock);
        if (stop && (idle || now >= stop_by)) {
            break;                  /* drained, or out of time */
        }
        take_waiting();
        curl_multi_perform(http.multi, &still);
        while ((msg = curl_multi_info_read(http.multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                wsock_backend_call *call;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
                finish(call, msg->data.result);
                take_waiting();
            }
        }
        now = apr_time_now();
        if (now >= next_tick) {
            if (http.tick) {
                http.tick(now);
            }
            next_tick = now + TICK;
            take_waiting();
            curl_multi_perform(http.multi, &still);
            continue;
        }
        curl_multi_poll(http.multi, NULL, 0, (int)apr_time_as_msec(
                            (stop && stop_by < next_tick ? stop_by : next_tick) - now) + 1,
                        NULL);
    }
    return NULL;
}

apr_status_t wsock_backend_submit(wsock_backend_call *call)
{
    int running;

    call->next = NULL;
    pthread_mutex_lock(&http.lock);
    running = http.running;
    if (running) {
        if (http.waiting_tail) {
            http.waiting_tail->next = call;
        }
        else {
            http.waiting = call;
        }
        http.waiting_tail = call;
    }
    pthread_mutex_unlock(&http.lock);
    if (!running) {
        return APR_EOF;
    }
    curl_multi_wakeup(http.multi);
    return APR_SUCCESS;
}

apr_status_t wsock_backend_http_start(apr_pool_t *pchild, server_rec *s)
{
    (void)pchild;
    http.s = s;
    http.max_active = wsock_backend_requests_max();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK
        || (http.multi = curl_multi_init()) == NULL) {
        return APR_ENOMEM;
    }
    /* keep-alive connections to the backend: up to one per request in flight */
    curl_multi_setopt(http.multi, CURLMOPT_MAXCONNECTS, (long)http.max_active);
    http.stop = 0;
    if (pthread_create(&http.thread, NULL, http_main, NULL) != 0) {
        curl_multi_cleanup(http.multi);
        http.multi = NULL;
        return APR_EGENERAL;
    }
    http.running = 1;
    return APR_SUCCESS;
}

/* The child ends: the requests out get up to DRAIN to end (a closing
 * client's last events still reach the backend), then the thread stops, and
 * every call it still has ends with an error (their done() frees what they
 * hold), counted in one log line. */
void wsock_backend_http_stop(void)
{
    int abandoned = 0;

    if (!http.running) {
        return;
    }
    pthread_mutex_lock(&http.lock);
    http.stop = 1;
    http.stop_by = apr_time_now() + DRAIN;
    pthread_mutex_unlock(&http.lock);
    curl_multi_wakeup(http.multi);
    pthread_join(http.thread, NULL);
    pthread_mutex_lock(&http.lock);
    http.running = 0;               /* submit() refuses from now on */
    pthread_mutex_unlock(&http.lock);
    while (http.waiting) {
        wsock_backend_call *call = http.waiting;
        http.waiting = call->next;
        snprintf(call->error, sizeof(call->error), "the server is stopping");
        call->status = 0;
        call->done(call);
        abandoned++;
    }
    http.waiting_tail = NULL;
    while (http.running_calls) {
        wsock_backend_call *call = http.running_calls;
        snprintf(call->error, sizeof(call->error), "the server is stopping");
        finish(call, CURLE_ABORTED_BY_CALLBACK);
        abandoned++;
    }
    if (abandoned) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, http.s,
                     WSOCKNO(1561) "backend: %d request(s) to backends abandoned as this "
                     "child stops (not answered within %d s)", abandoned,
                     (int)apr_time_sec(DRAIN));
    }
    while (http.nspare) {
        curl_easy_cleanup(http.spare[--http.nspare]);
    }
    curl_multi_cleanup(http.multi);
    http.multi = NULL;
}
