/*
 * wsock_dashboard.c — `SetHandler wsock-status`: the live dashboard.
 *
 *   GET  <url>                   the page (HTML; strict CSP, no outside fetch)
 *   GET  <url>/_/dashboard.js    its script, built into the module
 *   GET  <url>/_/dashboard.css   its style
 *   WebSocket upgrade on <url>   the stream: history, then a snapshot a second
 *
 * The upgrade is served by the module's own upgrade path
 * (wsock_upgrade_serve) with the internal status handler, so the stream
 * gets every check a WebSocket location gets (RFC 6455, the Origin
 * policy, per-IP caps, limits).  Apache's Require and auth apply to the
 * page and the stream alike, before this handler runs.  On top of them,
 * WSockStatusAccess (the words of WSockPublishAccess): local (the default)
 * serves loopback clients only, authenticated a user Apache authenticated,
 * any whoever Require lets in; so a location set up without access control
 * does not show the site's rooms to the world.
 */
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mpm_common.h>
#include <apr_network_io.h>
#include <apr_strings.h>

#include "wsock_config.h"
#include "wsock_counters.h"
#include "wsock_dashboard.h"
#include "wsock_history.h"
#include "wsock_log.h"
#include "wsock_sampler.h"
#include "wsock_threads.h"
#include "wsock_status_handler.h"
#include "wsock_upgrade.h"

APLOG_USE_MODULE(wsock);

#define STATUS_HANDLER "wsock-status"
#define ASSET_DIR "/_/"
#define STATUS_MAX_MESSAGE 1024     /* the stream takes no input: keep it small */
#define STATUS_QUEUE_MSGS 64        /* snapshots waiting for a slow dashboard */
/* The counters' location of every dashboard stream (one label for all). */
#define STATUS_LABEL "(wsock-status)"

static int status_label = WSOCK_LABEL_NONE;

/* The page's policy: its own script and style, its own WebSocket, nothing
 * else (no inline script, no outside fetch, no framing). */
#define PAGE_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
                 "img-src 'self'; connect-src 'self'; base-uri 'none'; "     \
                 "form-action 'none'; frame-ancestors 'none'"

const char *wsock_cmd_status_access(cmd_parms *cmd, void *conf, const char *arg)
{
    static const char *const names[] = { "local", "authenticated", "any" };

    for (int i = 0; i < 3; i++) {
        if (strcasecmp(arg, names[i]) == 0) {
            ((wsock_dir_conf *)conf)->status_access = i;
            return NULL;
        }
    }
    return apr_psprintf(cmd->pool, "WSockStatusAccess: '%s' is not local, authenticated "
                        "or any", arg);
}

static int from_loopback(request_rec *r)
{
    static const char *const nets[][2] = { { "127.0.0.0", "8" }, { "::1", "128" } };
    apr_ipsubnet_t *sub;

    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
        if (apr_ipsubnet_create(&sub, nets[i][0], nets[i][1], r->pool) == APR_SUCCESS
            && apr_ipsubnet_test(sub, r->useragent_addr)) {
            return 1;
        }
    }
    return 0;
}

/* WSockStatusAccess: NULL if r may see the dashboard, else why not. */
static const char *access_refused(request_rec *r, const wsock_dir_conf *d)
{
    switch (d->status_access) {
    case WSOCK_STATUS_ACCESS_ANY:
        return NULL;
    case WSOCK_STATUS_ACCESS_AUTHENTICATED:
        return r->user ? NULL : "authenticated: no user was authenticated (AuthType, "
                                "Require valid-user)";
    default:
        return from_loopback(r) ? NULL : "local (the default): the client is not on the "
                                         "loopback";
    }
}

/* The upgrade, with the status handler in place of a WSockHandler. */
static int serve_stream(request_rec *r, const wsock_dir_conf *d)
{
    wsock_dir_conf *sd = apr_pmemdup(r->pool, d, sizeof(*d));

    sd->handler = &wsock_status_handler;
    sd->handler_name = "status";
    sd->handler_cfg = NULL;
    sd->location = r->uri;
    sd->ops_label = status_label;
    if (sd->max_message == WSOCK_UNSET) {
        sd->max_message = STATUS_MAX_MESSAGE;
    }
    /* A dashboard that stops reading holds a minute of snapshots at most,
     * then is closed (1008) like any slow consumer. */
    if (sd->queue_msgs == WSOCK_UNSET) {
        sd->queue_msgs = STATUS_QUEUE_MSGS;
    }
    return wsock_upgrade_serve(r, sd);
}

/* Writes the page: its {{base}} marks become the URL it was asked by
 * (escaped for HTML), where its files and its stream are. */
static void write_page(request_rec *r, const wsock_dashboard_asset *a, const char *base)
{
    static const char mark[] = "{{base}}";
    const char *p = a->data, *m;
    const char *esc = ap_escape_html(r->pool, ap_os_escape_path(r->pool, base, 0));

    while ((m = strstr(p, mark)) != NULL) {
        ap_rwrite(p, (int)(m - p), r);
        ap_rputs(esc, r);
        p = m + sizeof(mark) - 1;
    }
    ap_rputs(p, r);
}

static int dashboard_handler(request_rec *r)
{
    const wsock_dir_conf *d;
    wsock_dashboard_asset a;
    const char *upgrade, *name = "", *slash, *why;
    char *base;
    size_t n;

    if (r->handler == NULL || strcmp(r->handler, STATUS_HANDLER) != 0) {
        return DECLINED;
    }
    d = ap_get_module_config(r->per_dir_config, &wsock_module);
    if ((why = access_refused(r, d)) != NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      WSOCKNO(1454) "wsock-status %s refused (403) to %s: WSockStatusAccess "
                      "%s", r->uri, r->useragent_ip, why);
        return HTTP_FORBIDDEN;
    }
    upgrade = apr_table_get(r->headers_in, "Upgrade");
    if (upgrade && ap_find_token(r->pool, upgrade, "websocket") && r->main == NULL) {
        return serve_stream(r, d);
    }
    r->allowed = (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    /* <url>/_/NAME is a file of the page; anything else is the page. */
    base = apr_pstrdup(r->pool, r->uri);
    slash = strrchr(base, '/');
    if (slash && slash - base >= 2 && strncmp(slash - 2, ASSET_DIR, 3) == 0) {
        name = slash + 1;
        base[slash - 2 - base] = '\0';
    }
    if (!wsock_dashboard_asset_find(name, &a)) {
        return HTTP_NOT_FOUND;
    }
    for (n = strlen(base); n > 0 && base[n - 1] == '/'; n--) {
        base[n - 1] = '\0';
    }
    ap_set_content_type(r, a.type);
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    if (*name == '\0') {
        apr_table_setn(r->headers_out, "Content-Security-Policy", PAGE_CSP);
        apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
        apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
        write_page(r, &a, base);
    }
    else {
        ap_set_content_length(r, (apr_off_t)a.len);
        ap_rwrite(a.data, (int)a.len, r);
    }
    return OK;
}

static int dashboard_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                 server_rec *s)
{
    (void)pconf; (void)plog; (void)ptemp;
    /* A label of their own for the dashboards' WebSockets, taken before the
     * counters enter this reading's labels (their post_config runs later). */
    status_label = wsock_counters_label(STATUS_LABEL, "status");
    wsock_history_post_config(s);
    return OK;
}

static void dashboard_child_status(server_rec *s, pid_t pid, ap_generation_t gen, int slot,
                                   mpm_child_status state)
{
    (void)s; (void)gen; (void)slot;
    if (state == MPM_CHILD_EXITED) {
        wsock_history_child_exited(pid);
    }
}

static void dashboard_child_init(apr_pool_t *pchild, server_rec *s)
{
    sigset_t old;

    wsock_signals_hold(&old);       /* the sampler thread: wsock_threads.h */
    wsock_history_child_init(pchild, s);
    wsock_sampler_start(pchild, s);
    wsock_signals_release(&old);
}

void wsock_dashboard_register_hooks(void)
{
    ap_hook_handler(dashboard_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* First: before wsock_process.c's, which maps the counters' labels. */
    ap_hook_post_config(dashboard_post_config, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_child_status(dashboard_child_status, NULL, NULL, APR_HOOK_MIDDLE);
    /* Last: the sampler reads the rooms and the counters of this child. */
    ap_hook_child_init(dashboard_child_init, NULL, NULL, APR_HOOK_LAST);
}
