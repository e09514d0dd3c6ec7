/*
 * wsock_h2.c — a WebSocket handshake that arrives over HTTP/2.
 *
 * With `H2WebSockets on`, mod_http2 advertises SETTINGS_ENABLE_CONNECT_PROTOCOL
 * and browsers open WebSockets as an extended CONNECT on an HTTP/2 stream
 * (RFC 8441).  mod_http2 (h2_ws.c) turns that CONNECT into an internal
 * HTTP/1.1-style upgrade on a secondary connection (c->master is the TCP
 * connection): GET with Upgrade: websocket and a Sec-WebSocket-Key of its
 * own; a 101 becomes the stream's 200, any 3xx-5xx passes through as it is.
 * mod_wsock has no HTTP/2 stream transport yet, so it answers 501 with a
 * body that says why; browsers do not retry such a failure over HTTP/1.1,
 * which is why the startup warning WSOCK1414 asks for H2WebSockets off
 * (then browsers use HTTP/1.1 for WebSockets: docs/operations.md).
 */
#include <httpd.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include "wsock_h2.h"
#include "wsock_log.h"
#include "wsock_refusals.h"

APLOG_USE_MODULE(wsock);

static const char h2_refusal_body[] =
    "WebSockets over HTTP/2 (RFC 8441) are not served here: connect over "
    "HTTP/1.1, or ask the administrator to set H2WebSockets off.\n";

int wsock_h2_refuse(request_rec *r)
{
    const char *upgrade;

    if (r->connection->master == NULL && r->proto_num < 2000) {
        return OK;
    }
    upgrade = apr_table_get(r->headers_in, "Upgrade");
    if (upgrade == NULL || ap_cstr_casecmp(upgrade, "websocket") != 0) {
        return OK;                  /* not a WebSocket attempt: the usual answer */
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  WSOCKNO(1415) "WebSocket handshake for %s over HTTP/2 refused with 501: "
                  "WebSockets over HTTP/2 (RFC 8441) are not served; set H2WebSockets off",
                  r->uri);
    wsock_refusal_note(r, WSOCK_R_PROTOCOL);     /* counted when logged */
    apr_table_setn(r->notes, "error-notes", "WebSockets over HTTP/2 are not served");
    r->status = HTTP_NOT_IMPLEMENTED;
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_set_content_length(r, sizeof(h2_refusal_body) - 1);
    ap_rwrite(h2_refusal_body, sizeof(h2_refusal_body) - 1, r);
    return DONE;
}
