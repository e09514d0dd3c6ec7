/*
 * wsock_upgrade.c — the request handler that turns an HTTP request into a
 * WebSocket: the RFC 6455 rules (wsock_handshake.c), the security checks
 * (src/security), the handler's on_open, the 101, and the hand-over to a
 * driver (src/transport).  Every refusal before the 101 is an HTTP status
 * and undoes what was taken for the attempt.
 */
#include <httpd.h>
#include <http_config.h>
#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_strings.h>

#include "wsock.h"
#include "wsock_compress.h"
#include "wsock_config.h"
#include "wsock_conn.h"
#include "wsock_connaddr.h"
#include "wsock_driver.h"
#include "wsock_h2.h"
#include "wsock_handshake.h"
#include "wsock_log.h"
#include "wsock_loop.h"
#include "wsock_security.h"
#include "wsock_upgrade.h"
#include "wsock_refusals.h"

APLOG_USE_MODULE(wsock);

/* Answers a refused handshake; 426 tells the client what would work. */
static int refuse_handshake(request_rec *r, const wsock_handshake_result *res)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  WSOCKNO(0301) "WebSocket handshake for %s refused with %d: %s",
                  r->uri, res->status, res->reason);
    wsock_refusal_note(r, WSOCK_R_BAD_REQUEST);
    if (res->status == HTTP_UPGRADE_REQUIRED) {
        apr_table_setn(r->err_headers_out, "Upgrade", "websocket");
        apr_table_setn(r->err_headers_out, "Sec-WebSocket-Version", "13");
    }
    return res->status;
}

/* The client's permessage-deflate offers against the location's
 * WSockCompression: the first acceptable one is agreed (*extensions: the
 * answer), or none; a malformed header is refused with 400. */
static int negotiate_compression(request_rec *r, const wsock_compress_conf *cc,
                                 wsock_pmd_agreed *agreed, const char **extensions)
{
    char answer[WSOCK_PMD_RESPONSE_MAX];
    const char *offers = apr_table_get(r->headers_in, "Sec-WebSocket-Extensions");
    const char *why = NULL;

    switch (wsock_pmd_negotiate(offers, &cc->policy, agreed, answer, &why)) {
    case WSOCK_PMD_ACCEPTED:
        *extensions = apr_pstrdup(r->pool, answer);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      WSOCKNO(1302) "WebSocket %s: permessage-deflate agreed: %s", r->uri,
                      answer);
        return OK;
    case WSOCK_PMD_MALFORMED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      WSOCKNO(1303) "WebSocket handshake refused (400): malformed "
                      "Sec-WebSocket-Extensions (%s): %s", why ? why : "syntax",
                      ap_escape_logitem(r->pool, offers));
        return HTTP_BAD_REQUEST;
    default:
        if (offers) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          WSOCKNO(1304) "WebSocket %s: no extension accepted (%s): %s", r->uri,
                          why ? why : "none offered", ap_escape_logitem(r->pool, offers));
        }
        return OK;
    }
}

int wsock_upgrade_handler(request_rec *r)
{
    const wsock_dir_conf *d = ap_get_module_config(r->per_dir_config, &wsock_module);

    wsock_loop_worker_visit();      /* back from a hand-off (wsock_loop.c) */
    if (d->handler == NULL || r->main) {
        return DECLINED;
    }
    return wsock_upgrade_serve(r, d);
}

int wsock_upgrade_serve(request_rec *r, const wsock_dir_conf *d)
{
    conn_rec *c = r->connection;
    wsock_handshake_req req;
    wsock_handshake_result res;
    wsock_admission adm;
    wsock_settings set;
    char accept[WSOCK_ACCEPT_SIZE];
    const char *key, *extensions = NULL;
    wsock_pmd_agreed agreed;
    wsock_conn *wc;
    int open_rc, rc;

    if ((rc = wsock_h2_refuse(r)) != OK) {
        return rc;                  /* RFC 8441 over mod_http2: not served yet */
    }

    req.method = r->method;
    req.proto_num = r->proto_num;
    req.upgrade = apr_table_get(r->headers_in, "Upgrade");
    req.connection = apr_table_get(r->headers_in, "Connection");
    req.key = key = apr_table_get(r->headers_in, "Sec-WebSocket-Key");
    req.version = apr_table_get(r->headers_in, "Sec-WebSocket-Version");
    req.protocols = apr_table_get(r->headers_in, "Sec-WebSocket-Protocol");
    wsock_handshake_check(r->pool, &req, d->protocols,
                          d->require_protocol == 1, &res);
    if (res.status) {
        return refuse_handshake(r, &res);
    }
    if ((rc = wsock_security_admit(r, d, &res.protocol, &adm)) != OK) {
        return rc;
    }

    wsock_settings_from_conf(&set, d);
    if (set.compress.on && (rc = negotiate_compression(r, &set.compress, &agreed,
                                                       &extensions)) != OK) {
        wsock_security_refused(&adm);
        wsock_refusal_note(r, WSOCK_R_BAD_REQUEST);
        return rc;
    }
    wc = wsock_conn_create(r, &set);
    if (wc == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      WSOCKNO(0302) "cannot set up the WebSocket connection");
        wsock_security_refused(&adm);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    wsock_facts_capture(wc, r, res.protocol, d->handler_cfg, d->location);
    wsock_security_attach(wc, &adm);
    /* Before on_open, so that what it sends is compressed like the rest. */
    if (extensions) {
        wsock_compress_attach(wc, &set.compress, &agreed);
    }

    /* The handler may still refuse with an HTTP status: no upgrade then.
     * (A close code means: upgrade, then close at once; already started.) */
    if ((open_rc = wsock_connaddr_open(wc, d->addressable == 1)) == 0) {
        open_rc = wsock_conn_open(wc);
    }
    if (WSOCK_IS_HTTP_STATUS(open_rc)) {
        const char *type = wc->refusal_type;
        const char *body = type ? apr_pmemdup(r->pool, wc->refusal_body, wc->refusal_len) : NULL;
        apr_size_t len = wc->refusal_len;

        wsock_conn_refused(wc);     /* its rooms, its queue, its references */
        wsock_security_refused(&adm);
        wsock_refusal_note(r, WSOCK_R_HANDLER);
        if (type == NULL) {
            return open_rc;         /* Apache's error page */
        }
        /* the handler's own body (wsock_refusal_body), as any handler that
         * answers an error itself */
        r->status = open_rc;
        ap_set_content_type(r, apr_pstrdup(r->pool, type));
        ap_set_content_length(r, (apr_off_t)len);
        if (len) {
            ap_rwrite(body, (int)len, r);
        }
        return OK;
    }

    /* 101: what RFC 6455 asks for, and the extension accepted (RFC 7692). */
    wsock_accept_value(key, accept);
    apr_table_clear(r->headers_out);
    apr_table_setn(r->headers_out, "Upgrade", "websocket");
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    apr_table_setn(r->headers_out, "Sec-WebSocket-Accept", apr_pstrdup(r->pool, accept));
    if (res.protocol) {
        apr_table_setn(r->headers_out, "Sec-WebSocket-Protocol", res.protocol);
    }
    if (extensions) {
        apr_table_setn(r->headers_out, "Sec-WebSocket-Extensions", extensions);
    }
    r->status = HTTP_SWITCHING_PROTOCOLS;
    r->status_line = ap_get_status_line(r->status);
    ap_send_interim_response(r, 1);
    wc->upgraded = 1;               /* what on_open sent may follow now */
    c->keepalive = AP_CONN_CLOSE;
    if (c->aborted) {
        /* The client is gone already (it reset the connection after its
         * request).  The MPM would not hand such a connection over: it ends
         * here, and what on_open did is undone (rooms, counts, on_close). */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      WSOCKNO(0304) "WebSocket %s: the client left before the 101", r->uri);
        wsock_conn_abandon(wc);
        return DONE;
    }

    /* From here on the connection speaks WebSocket.  mod_reqtimeout's
     * request-read timeouts no longer apply (our ping and idle timers do),
     * no HTTP response may follow, and the connection is not reused. */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    ap_remove_output_filter_byhandle(r->output_filters, "HTTP_HEADER");

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  WSOCKNO(0303) "WebSocket %s open (handler %s%s%s)", r->uri,
                  set.handler_name, res.protocol ? ", protocol " : "",
                  res.protocol ? res.protocol : "");
    /* Under the event MPM the connection is handed to a loop thread once
     * the MPM has let go of it (its suspend_connection hook, in
     * wsock_loop.c): this worker thread is free again. */
    if (!wsock_server.driver_blocking_only && wsock_loop_prepare(wc) == APR_SUCCESS) {
        return SUSPENDED;
    }
    wsock_drive_blocking(wc);
    return DONE;
}
