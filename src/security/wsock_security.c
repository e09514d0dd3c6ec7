/*
 * wsock_security.c — the checks a WebSocket handshake passes before the
 * 101, cheapest first: the Origin (403), the token (401), then the
 * client's count of open WebSockets (429), which holds a slot once
 * admitted.
 */
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include "wsock_conn.h"
#include "wsock_log.h"
#include "wsock_origin.h"
#include "wsock_security.h"
#include "wsock_token.h"
#include "wsock_ipcap.h"

APLOG_USE_MODULE(wsock);

const char *wsock_cmd_allowed_origins(cmd_parms *cmd, void *conf, const char *word)
{
    return wsock_origin_policy_add(cmd->pool, &((wsock_dir_conf *)conf)->origins, word);
}

static int check_origin(request_rec *r, const wsock_dir_conf *d)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");
    int https = strcmp(ap_http_scheme(r), "https") == 0;

    if (wsock_origin_allowed(d->origins, origin, apr_table_get(r->headers_in, "Host"),
                             https)) {
        return OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  WSOCKNO(0701) "WebSocket handshake for %s refused with 403: origin "
                  "'%.200s' is not allowed here (WSockAllowedOrigins)", r->uri,
                  ap_escape_logitem(r->pool, origin));
    return HTTP_FORBIDDEN;
}

int wsock_security_admit(request_rec *r, const wsock_dir_conf *d, const char **protocol,
                         wsock_admission *adm)
{
    int rc;

    adm->claims = NULL;
    adm->token_expires = 0;
    adm->ip_hold = NULL;
    if ((rc = check_origin(r, d)) != OK
        || (rc = wsock_token_check(r, d->token, protocol, &adm->claims,
                                   &adm->token_expires)) != OK) {
        return rc;
    }
    return wsock_ipcap_acquire(r, d->max_conns_per_ip == WSOCK_UNSET ? 0 : d->max_conns_per_ip,
                               &adm->ip_hold);
}

void wsock_security_attach(wsock_conn *wc, wsock_admission *adm)
{
    wsock_token_attach(wc, adm->claims, adm->token_expires);
    wc->ip_hold = adm->ip_hold;     /* the connection gives it back now */
    adm->ip_hold = NULL;
}

void wsock_security_conn_end(wsock_conn *wc)
{
    /* When it ends, not when its memory goes (which may wait for another
     * thread to let go of it): the client may come back at once. */
    wsock_ipcap_release(wc->ip_hold);
    wc->ip_hold = NULL;
}

void wsock_security_refused(wsock_admission *adm)
{
    wsock_ipcap_release(adm->ip_hold);
    adm->ip_hold = NULL;
    adm->claims = NULL;
}

void wsock_security_register_hooks(void)
{
    wsock_ipcap_register_hooks();
}
