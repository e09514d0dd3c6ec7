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
#include "wsock_config.h"
#include "wsock_conn.h"
#include "wsock_driver.h"
#include "wsock_handshake.h"
#include "wsock_log.h"
#include "wsock_loop.h"
#include "wsock_security.h"
#include "wsock_upgrade.h"

APLOG_USE_MODULE(wsock);

/* Answers a refused handshake; 426 tells the client what would work. */
static int refuse_handshake(request_rec *r, const wsock_handshake_result *res)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  WSOCKNO(0301) "WebSocket handshake for %s refused with %d: %s",
                  r->uri, res->status, res->reason);
    if (res->status == HTTP_UPGRADE_REQUIRED) {
        apr_table_setn(r->err_headers_out, "Upgrade", "websocket");
        apr_table_setn(r->err_headers_out, "Sec-WebSocket-Version", "13");
    }
    return res->status;
}

int wsock_upgrade_handler(request_rec *r)
{
    const wsock_dir_conf *d = ap_get_module_config(r->per_dir_config, &wsock_module);
    conn_rec *c = r->connection;
    wsock_handshake_req req;
    wsock_handshake_result res;
    wsock_admission adm;
    wsock_settings set;
    char accept[WSOCK_ACCEPT_SIZE];
    const char *key;
    wsock_conn *wc;
    int open_rc, rc;

    wsock_loop_worker_visit();      /* back from a hand-off (wsock_loop.c) */
    if (d->handler == NULL || r->main) {
        return DECLINED;
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
    wc = wsock_conn_create(r, &set);
    if (wc == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      WSOCKNO(0302) "cannot set up the WebSocket connection");
        wsock_security_refused(&adm);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    wsock_facts_capture(wc, r, res.protocol, d->handler_cfg, d->location);
    wsock_security_attach(wc, &adm);

    /* The handler may still refuse with an HTTP status: no upgrade then.
     * (A close code means: upgrade, then close at once; already started.) */
    open_rc = wsock_conn_open(wc);
    if (WSOCK_IS_HTTP_STATUS(open_rc)) {
        wsock_conn_refused(wc);     /* its rooms, its queue, its references */
        wsock_security_refused(&adm);
        return open_rc;
    }

    /* 101: only what RFC 6455 asks for; extensions are never accepted. */
    wsock_accept_value(key, accept);
    apr_table_clear(r->headers_out);
    apr_table_setn(r->headers_out, "Upgrade", "websocket");
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    apr_table_setn(r->headers_out, "Sec-WebSocket-Accept", apr_pstrdup(r->pool, accept));
    if (res.protocol) {
        apr_table_setn(r->headers_out, "Sec-WebSocket-Protocol", res.protocol);
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
