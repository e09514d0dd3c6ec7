/*
 * wsock_security.c — the checks a WebSocket handshake passes before the
 * 101, cheapest first: the Origin (403), the token (401), then the
 * client's count of open WebSockets (429, or 503 when the count's table is
 * full), which holds a slot once admitted.
 */
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include "wsock_conn.h"
#include "wsock_log.h"
#include "wsock_origin.h"
#include "wsock_security.h"
#include "wsock_token.h"
#include "wsock_ipcap.h"
#include "wsock_refusals.h"

APLOG_USE_MODULE(wsock);

const char *wsock_cmd_allowed_origins(cmd_parms *cmd, void *conf, const char *word)
{
    return wsock_origin_policy_add(cmd->pool, &((wsock_dir_conf *)conf)->origins, word);
}

/* ServerAlias wildcards as Apache matches them against Host (vhost.c). */
static int wild_alias_match(const char *pattern, const char *host)
{
    return ap_strcasecmp_match(host, pattern) == 0;
}

/* What this server is, for same-origin: the virtual host that serves the
 * request (by the Host header, as Apache chose it, which only narrows the
 * names allowed) and the connection's own address and port. */
static void server_self(request_rec *r, wsock_origin_self *self)
{
    const server_rec *s = r->server;
    const conn_rec *c = r->connection;

    self->https = strcmp(ap_http_scheme(r), "https") == 0;
    self->server_name = s->server_hostname;
    self->aliases = s->names;
    self->wild_aliases = s->wild_names;
    self->wild_match = wild_alias_match;
    self->local_ip = c->local_ip;
    self->local_port = c->local_addr ? c->local_addr->port : 0;
    /* "ServerName www.example.com:443" or "ServerName https://www.example.com":
     * behind a reverse proxy or TLS terminator, the port the browser used
     * is the proxy's.  (A virtual host without a ServerName of its own has
     * its <VirtualHost> address's port here, or the main server's.) */
    self->name_port = s->port ? s->port
                    : s->server_scheme ? apr_uri_port_of_scheme(s->server_scheme) : 0;
}

static int check_origin(request_rec *r, const wsock_dir_conf *d)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");
    wsock_origin_self self;

    if (origin == NULL) {
        return OK;                  /* not a browser */
    }
    server_self(r, &self);
    if (wsock_origin_allowed(d->origins, origin, &self)) {
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
    if ((rc = check_origin(r, d)) != OK) {
        wsock_refusal_note(r, WSOCK_R_ORIGIN);
        return rc;
    }
    if ((rc = wsock_token_check(r, d->token, protocol, &adm->claims,
                                &adm->token_expires)) != OK) {
        wsock_refusal_note(r, WSOCK_R_TOKEN);
        return rc;
    }
    rc = wsock_ipcap_acquire(r, d->max_conns_per_ip == WSOCK_UNSET ? 0 : d->max_conns_per_ip,
                             &adm->ip_hold);
    if (rc != OK) {
        wsock_refusal_note(r, WSOCK_R_IP_CAP);
    }
    return rc;
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
