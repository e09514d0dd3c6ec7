/*
 * wsock_backend_reply.c — what a backend's answer means for its client:
 * the events of an application/websocket-events body (TEXT, BINARY, CLOSE,
 * DISCONNECT; OPEN first on the OPEN request), Set-Meta-* and
 * Keep-Alive-Interval headers, the GRIP extension's control messages
 * (subscribe/unsubscribe map channels onto rooms named
 * "<location>?<channel>", detach), and the plain protocol's body.
 *
 * Runs on whoever holds the connection's request (bc->inflight): the HTTP
 * thread, or the request's worker thread for the OPEN answer.  A body is
 * checked whole before any of it is applied: garbage changes nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_strings.h>

#include "wsock_backend.h"
#include "wsock_log.h"
#include "wsock_roomsel.h"          /* wsock_roomsel_valid_arg */
#include "wsock_wsevents.h"

APLOG_USE_MODULE(wsock);

#define LOGS wsock_backend_server()

int wsock_backend_events_type(const char *ct)
{
    return ct && strncasecmp(ct, "application/websocket-events", 28) == 0
           && (ct[28] == '\0' || ct[28] == ';' || ct[28] == ' ');
}

int wsock_backend_answer_ok(wsock_backend_conn *bc, wsock_backend_call *call)
{
    const char *ct = wsock_backend_answer_header(call, "Content-Type");

    if (call->status == 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                     WSOCKNO(1544) "backend %s: %s connection %s: no answer: %s",
                     bc->cfg->url, bc->uri, bc->id,
                     call->error);
        return 0;
    }
    if (call->status < 200 || call->status > 299) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                     WSOCKNO(1545) "backend %s: %s connection %s: answered %ld",
                     bc->cfg->url, bc->uri, bc->id,
                     call->status);
        return 0;
    }
    if (bc->cfg->protocol == WSOCK_BACKEND_EVENTS && call->answer_len
        && !wsock_backend_events_type(ct)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                     WSOCKNO(1546) "backend %s: %s connection %s: the answer is not "
                     "application/websocket-events (Content-Type: %s)",
                     bc->cfg->url, bc->uri, bc->id,
                     ct ? ct : "none");
        return 0;
    }
    return 1;
}

/* Set-Meta-Name: value keeps Meta-Name: value for the next requests (an
 * empty value removes it); bounded in count and length. */
static void set_meta(wsock_backend_conn *bc, const char *line)
{
    const char *colon = strchr(line, ':');
    const char *name = line + 9, *value = colon + 1;
    apr_size_t nlen = (apr_size_t)(colon - name);
    int i;

    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (nlen == 0 || nlen + strlen(value) > WSOCK_BACKEND_META_LEN) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, LOGS,
                     WSOCKNO(1550) "backend %s: %s connection %s: ignored %.40s (at most "
                     "%d bytes of name and value)", bc->cfg->url, bc->uri,
                     bc->id, line, WSOCK_BACKEND_META_LEN);
        return;
    }
    for (i = 0; i < bc->nmeta; i++) {
        /* stored as "Meta-Name: value" */
        if (strncasecmp(bc->meta[i] + 5, name, nlen) == 0 && bc->meta[i][5 + nlen] == ':') {
            break;
        }
    }
    if (i < bc->nmeta) {
        free(bc->meta[i]);
        bc->meta[i] = bc->meta[--bc->nmeta];
    }
    if (!*value) {
        return;
    }
    if (bc->nmeta == WSOCK_BACKEND_META_MAX) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, LOGS,
                     WSOCKNO(1551) "backend %s: %s connection %s: ignored %.40s (at most "
                     "%d Meta headers)", bc->cfg->url, bc->uri,
                     bc->id, line, WSOCK_BACKEND_META_MAX);
        return;
    }
    if ((bc->meta[bc->nmeta] = malloc(5 + nlen + 2 + strlen(value) + 1)) != NULL) {
        sprintf(bc->meta[bc->nmeta++], "Meta-%.*s: %s", (int)nlen, name, value);
    }
}

/* The grip extension's parameters (after "grip"): message-prefix=VALUE or
 * ="VALUE" sets the prefix its messages carry; default "m:". */
static void grip_prefix(wsock_backend_conn *bc, const char *params)
{
    const char *end = strchr(params, ',');
    const char *p = strstr(params, "message-prefix=");
    apr_size_t n;

    strcpy(bc->prefix, "m:");
    if (p == NULL || (end && p > end)) {
        return;
    }
    p += 15;
    if (*p == '"') {
        const char *q = strchr(++p, '"');
        n = q ? (apr_size_t)(q - p) : 0;
    }
    else {
        n = strcspn(p, ";, \t");
    }
    if (n < sizeof(bc->prefix)) {
        memcpy(bc->prefix, p, n);
        bc->prefix[n] = '\0';
    }
}

static void apply_headers(wsock_backend_conn *bc, wsock_backend_call *call, int opening)
{
    const char *ka = wsock_backend_answer_header(call, "Keep-Alive-Interval");
    const char *ext = wsock_backend_answer_header(call, "Sec-WebSocket-Extensions");

    for (int i = 0; i < call->nhdrs; i++) {
        if (strncasecmp(call->hdrs[i], "Set-Meta-", 9) == 0) {
            set_meta(bc, call->hdrs[i]);
        }
    }
    if (ka) {
        long sec = strtol(ka, NULL, 10);
        bc->keep_alive = sec > 0 ? apr_time_from_sec(sec < 3600 ? sec : 3600) : 0;
    }
    if (opening && ext) {
        /* "grip" among the extensions, parameters allowed */
        const char *p = ext;
        while ((p = strstr(p, "grip")) != NULL) {
            int starts = p == ext || p[-1] == ' ' || p[-1] == ',';
            int ends = p[4] == '\0' || p[4] == ';' || p[4] == ',' || p[4] == ' ';
            if (starts && ends) {
                bc->grip = 1;
                grip_prefix(bc, p + 4);
                break;
            }
            p += 4;
        }
    }
}

/* GRIP {"type":"keep-alive","content":C,"message-type":"text"|"binary",
 * "timeout":SECONDS,"mode":"idle"|"interval"}: C goes to the client when
 * this handler sent it nothing for SECONDS (idle, the default), or every
 * SECONDS (interval); without content, no keep-alive. */
static void keep_alive(wsock_backend_conn *bc, json_t *msg)
{
    const char *content = json_string_value(json_object_get(msg, "content"));
    const char *mtype = json_string_value(json_object_get(msg, "message-type"));
    const char *mode = json_string_value(json_object_get(msg, "mode"));
    json_t *t = json_object_get(msg, "timeout");
    json_int_t sec = json_is_integer(t) ? json_integer_value(t) : 30;
    apr_size_t len = content ? json_string_length(json_object_get(msg, "content")) : 0;
    char *copy = NULL;

    if (content && (len > WSOCK_BACKEND_KA_MAX || sec < 1 || sec > 3600)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, LOGS,
                     WSOCKNO(1562) "backend %s: %s connection %s: ignored a GRIP keep-alive "
                     "(content at most %d bytes, timeout 1-3600 s)", bc->cfg->url, bc->uri,
                     bc->id, WSOCK_BACKEND_KA_MAX);
        return;
    }
    if (content && (copy = malloc(len ? len : 1)) != NULL) {
        memcpy(copy, content, len);
    }
    pthread_mutex_lock(&bc->lock);
    free(bc->ka_content);
    bc->ka_content = copy;
    bc->ka_len = len;
    bc->ka_binary = mtype && strcmp(mtype, "binary") == 0;
    bc->ka_interval = mode && strcmp(mode, "interval") == 0;
    bc->ka_every = apr_time_from_sec(sec);
    bc->ka_last = apr_time_now();
    pthread_mutex_unlock(&bc->lock);
}

/* A GRIP control message (the JSON after "c:"). */
static void control(wsock_backend_conn *bc, const char *data, apr_size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, 0, &jerr);
    const char *type = msg ? json_string_value(json_object_get(msg, "type")) : NULL;

    if (type == NULL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, LOGS,
                     WSOCKNO(1549) "backend %s: %s connection %s: ignored a GRIP control "
                     "message that is not a JSON object with a type", bc->cfg->url,
                     bc->uri, bc->id);
    }
    else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        const char *ch = json_string_value(json_object_get(msg, "channel"));
        char room[256];
        int n = ch ? snprintf(room, sizeof(room), "%s?%s", bc->location, ch) : -1;

        /* channels are named as the publish endpoint's room= names them */
        if (ch == NULL || !wsock_roomsel_valid_arg(ch) || n < 0 || n > 128) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, LOGS,
                         WSOCKNO(1553) "backend %s: %s connection %s: ignored %s of a bad "
                         "channel (1-%d characters of A-Z a-z 0-9 _ . -, and the location "
                         "plus the channel at most 127 bytes)", bc->cfg->url, bc->uri, bc->id,
                         type, WSOCK_BACKEND_CHANNEL_MAX);
        }
        else if (type[0] == 's') {
            apr_status_t rv = wsock_join(bc->wc, room);
            if (rv != APR_SUCCESS && rv != APR_EOF) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, rv, LOGS,
                             WSOCKNO(1555) "backend %s: %s connection %s: cannot subscribe "
                             "to channel %s", bc->cfg->url, bc->uri,
                             bc->id, ch);
            }
        }
        else {
            wsock_leave(bc->wc, room);
        }
    }
    else if (strcmp(type, "keep-alive") == 0) {
        keep_alive(bc, msg);
    }
    else if (strcmp(type, "detach") == 0) {
        pthread_mutex_lock(&bc->lock);
        bc->detached = 1;
        pthread_mutex_unlock(&bc->lock);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, LOGS,
                     WSOCKNO(1556) "backend %s: %s connection %s: GRIP control message "
                     "'%s' not supported, ignored", bc->cfg->url, bc->uri,
                     bc->id, type);
    }
    json_decref(msg);
}

static int send_message(wsock_backend_conn *bc, int is_text, const char *data, apr_size_t len)
{
    apr_status_t rv = wsock_send(bc->wc, is_text, data, len);

    if (bc->ka_content && !bc->ka_interval) {
        pthread_mutex_lock(&bc->lock);
        bc->ka_last = apr_time_now();       /* idle keep-alives count from here */
        pthread_mutex_unlock(&bc->lock);
    }

    if (rv == APR_EINVAL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                     WSOCKNO(1552) "backend %s: %s connection %s: a TEXT event is not "
                     "UTF-8", bc->cfg->url, bc->uri, bc->id);
        return 1011;
    }
    return 0;   /* APR_EOF (closing), APR_ENOSPC (dropped and counted): as any sender */
}

/* The close code a backend's CLOSE event asks for: one a server may send. */
static int close_code(const wsock_wsevent *ev)
{
    int code = ev->len >= 2 ? ((unsigned char)ev->data[0] << 8) | (unsigned char)ev->data[1]
                            : 1000;

    if (code < 1000 || code > 4999 || code == 1004 || code == 1005 || code == 1006
        || code == 1015 || (code > 1014 && code < 3000)) {
        code = 1000;
    }
    return code;
}

static int apply_events(wsock_backend_conn *bc, wsock_backend_call *call, int opening)
{
    wsock_wsevent ev;
    apr_size_t pos = 0;
    int rc, n = 0;

    /* the whole body first: garbage changes nothing */
    while ((rc = wsock_wsevent_next(call->answer, call->answer_len, &pos, &ev)) == 1) {
        if (opening && n == 0 && !wsock_wsevent_is(&ev, "OPEN")) {
            rc = -2;
            break;
        }
        n++;
    }
    if (rc < 0 || (opening && n == 0)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, LOGS,
                     WSOCKNO(1547) "backend %s: %s connection %s: the answer is not "
                     "application/websocket-events%s", bc->cfg->url, bc->uri,
                     bc->id,
                     rc == -1 ? " (malformed event)" : " (the OPEN answer must start with "
                     "OPEN)");
        return 1011;
    }
    apply_headers(bc, call, opening);
    for (pos = 0; wsock_wsevent_next(call->answer, call->answer_len, &pos, &ev) == 1;) {
        int is_text = wsock_wsevent_is(&ev, "TEXT");

        if (is_text || wsock_wsevent_is(&ev, "BINARY")) {
            const char *d = ev.data;
            apr_size_t len = ev.len;
            if (bc->grip && len >= 2 && d[1] == ':' && d[0] == 'c' && is_text) {
                control(bc, d + 2, len - 2);
                continue;
            }
            if (bc->grip && len >= strlen(bc->prefix)
                && memcmp(d, bc->prefix, strlen(bc->prefix)) == 0) {
                d += strlen(bc->prefix);    /* the GRIP message prefix */
                len -= strlen(bc->prefix);
            }
            if ((rc = send_message(bc, is_text, d, len)) != 0) {
                return rc;
            }
        }
        else if (wsock_wsevent_is(&ev, "CLOSE")) {
            char reason[124];
            apr_size_t rlen = ev.len > 2 ? ev.len - 2 : 0;
            if (rlen >= sizeof(reason)) {
                rlen = sizeof(reason) - 1;
            }
            memcpy(reason, ev.data ? ev.data + (ev.len >= 2 ? 2 : 0) : "", rlen);
            reason[rlen] = '\0';
            wsock_close(bc->wc, close_code(&ev), rlen ? reason : NULL);
            break;
        }
        else if (wsock_wsevent_is(&ev, "DISCONNECT")) {
            wsock_close(bc->wc, 1000, "disconnected by the application");
            break;
        }
        /* OPEN (acknowledged), PING/PONG (mod_wsock answers pings itself),
         * and events of later versions of the protocol: nothing to do */
    }
    return 0;
}

/* protocol=plain: a 2xx body goes to the client as one message. */
static int apply_plain(wsock_backend_conn *bc, wsock_backend_call *call)
{
    const char *ct = wsock_backend_answer_header(call, "Content-Type");
    int is_text;

    if (call->status == 204 || call->answer_len == 0) {
        return 0;
    }
    is_text = ct && (strncasecmp(ct, "text/", 5) == 0
                     || strncasecmp(ct, "application/json", 16) == 0);
    return send_message(bc, is_text, call->answer, call->answer_len);
}

int wsock_backend_apply(wsock_backend_conn *bc, wsock_backend_call *call, int opening)
{
    return bc->cfg->protocol == WSOCK_BACKEND_PLAIN ? apply_plain(bc, call)
                                                     : apply_events(bc, call, opening);
}
