/*
 * wsock_refusals.c — refused handshakes, counted once each in the
 * log_transaction phase (see wsock_refusals.h).
 */
#include <string.h>
#include <strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_log.h>
#include <apr_strings.h>

#include "wsock_config.h"
#include "wsock_refusals.h"

APLOG_USE_MODULE(wsock);

extern module AP_MODULE_DECLARE_DATA wsock_module;

#define NOTE "wsock-refused"

void wsock_refusal_note(request_rec *r, wsock_refusal why)
{
    apr_table_setn(r->notes, NOTE, wsock_refusal_names[why]);
}

static int reason_of(const char *name)
{
    for (int i = 0; i < WSOCK_R_COUNT; i++) {
        if (strcmp(wsock_refusal_names[i], name) == 0) {
            return i;
        }
    }
    return WSOCK_R_OTHER;
}

/* Whether the client asked for a WebSocket (Upgrade names it). */
static int asks_websocket(const request_rec *r)
{
    const char *up = apr_table_get(r->headers_in, "Upgrade");

    return up && ap_find_token(r->pool, up, "websocket");
}

static int refusals_log_transaction(request_rec *r)
{
    request_rec *first = r;
    const wsock_dir_conf *d;
    const char *note;
    int why;

    while (first->prev) {           /* the client's request, before redirects */
        first = first->prev;
    }
    if (first->main || r->status == HTTP_SWITCHING_PROTOCOLS) {
        return DECLINED;
    }
    d = ap_get_module_config(first->per_dir_config, &wsock_module);
    if (d == NULL || d->handler == NULL) {
        return DECLINED;
    }
    note = apr_table_get(first->notes, NOTE);
    if (note == NULL && r != first) {
        note = apr_table_get(r->notes, NOTE);
    }
    if (note) {
        why = reason_of(note);
    }
    else if (!asks_websocket(first)) {
        return DECLINED;            /* neither a handshake nor refused by us */
    }
    else if (r->status == HTTP_UNAUTHORIZED || r->status == HTTP_FORBIDDEN) {
        why = WSOCK_R_AUTH;         /* Apache's auth, before the handler */
    }
    else {
        why = WSOCK_R_OTHER;
    }
    wsock_count_refused(d->ops_label, (wsock_refusal)why, r->status);
    return DECLINED;
}

void wsock_refusals_register_hooks(void)
{
    ap_hook_log_transaction(refusals_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
}
