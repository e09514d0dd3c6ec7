/*
 * mod_wsock.c — Apache glue of mod_wsock: the module record, directives,
 * per-directory configuration and its merge, hooks, and the handler that
 * validates a WebSocket upgrade, answers 101 and takes the connection.
 *
 *   LoadModule wsock_module modules/mod_wsock.so
 *   <Location /echo>
 *       WSockHandler echo
 *   </Location>
 */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mpm_common.h>
#include <util_filter.h>
#include <apr_strings.h>

#include "wsock.h"
#include "wsock_config.h"
#include "wsock_conn.h"
#include "wsock_driver.h"
#include "wsock_handlers.h"
#include "wsock_handshake.h"
#include "wsock_live.h"
#include "wsock_loop.h"
#include "wsock_netout.h"
#include "wsock_rooms.h"
#include "wsock_redis.h"
#include "wsock_log.h"

module AP_MODULE_DECLARE_DATA wsock_module;

/* ---- per-directory configuration ------------------------------------- */

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    wsock_dir_conf *d = apr_pcalloc(p, sizeof(*d));

    (void)dir;
    d->require_protocol = WSOCK_UNSET;
    d->max_message = WSOCK_UNSET;
    d->ping_interval = WSOCK_UNSET;
    d->idle_timeout = WSOCK_UNSET;
    d->close_timeout = WSOCK_UNSET;
    d->fragment_size = WSOCK_UNSET;
    d->queue_msgs = WSOCK_UNSET;
    d->queue_bytes = WSOCK_UNSET;
    d->queue_policy = WSOCK_UNSET;
    return d;
}

/* A nested section inherits everything and overrides what it sets. */
static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const wsock_dir_conf *base = basev, *add = addv;
    wsock_dir_conf *d = apr_palloc(p, sizeof(*d));

#define WSOCK_MERGE(f) d->f = (add->f != WSOCK_UNSET) ? add->f : base->f
    d->handler_set = add->handler_set || base->handler_set;
    d->handler = add->handler_set ? add->handler : base->handler;
    d->handler_cfg = add->handler_set ? add->handler_cfg : base->handler_cfg;
    d->handler_name = add->handler_set ? add->handler_name : base->handler_name;
    d->location = add->handler_set ? add->location : base->location;
    d->protocols = add->protocols ? add->protocols : base->protocols;
    WSOCK_MERGE(require_protocol);
    WSOCK_MERGE(max_message);
    WSOCK_MERGE(ping_interval);
    WSOCK_MERGE(idle_timeout);
    WSOCK_MERGE(close_timeout);
    WSOCK_MERGE(fragment_size);
    WSOCK_MERGE(queue_msgs);
    WSOCK_MERGE(queue_bytes);
    WSOCK_MERGE(queue_policy);
#undef WSOCK_MERGE
    return d;
}

void wsock_settings_from_conf(wsock_settings *s, const wsock_dir_conf *d)
{
#define WSOCK_OR(v, dflt) ((v) != WSOCK_UNSET ? (v) : (dflt))
    s->handler = d->handler;
    s->handler_name = d->handler_name;
    s->max_message = (apr_uint64_t)WSOCK_OR(d->max_message, WSOCK_DEFAULT_MAX_MESSAGE);
    s->ping_interval = WSOCK_OR(d->ping_interval, WSOCK_DEFAULT_PING);
    s->idle_timeout = WSOCK_OR(d->idle_timeout, WSOCK_DEFAULT_IDLE);
    s->close_timeout = WSOCK_OR(d->close_timeout, WSOCK_DEFAULT_CLOSE_TIMEOUT);
    s->fragment_size = (apr_size_t)WSOCK_OR(d->fragment_size, WSOCK_DEFAULT_FRAGMENT);
    s->queue_max_msgs = (apr_size_t)WSOCK_OR(d->queue_msgs, WSOCK_DEFAULT_QUEUE_MSGS);
    s->queue_max_bytes = (apr_size_t)WSOCK_OR(d->queue_bytes, WSOCK_DEFAULT_QUEUE_BYTES);
    s->queue_policy = WSOCK_OR(d->queue_policy, WSOCK_DEFAULT_QUEUE_POLICY);
#undef WSOCK_OR
}

/* ---- directives ---------------------------------------------------- */

static const char *set_handler(cmd_parms *cmd, void *conf, int argc, char *const argv[])
{
    wsock_dir_conf *d = conf;

    if (argc < 1) {
        return "WSockHandler needs a handler name (or none)";
    }
    d->handler_set = 1;
    d->handler_cfg = NULL;
    /* What wsock_location() tells handlers: the section this line is in
     * ("/" at server or virtual host level). */
    d->location = apr_pstrdup(cmd->pool, cmd->path ? cmd->path : "/");
    if (strcasecmp(argv[0], "none") == 0) {
        d->handler = NULL;
        return argc > 1 ? "WSockHandler none takes no arguments" : NULL;
    }
    d->handler = wsock_handlers_find(argv[0]);
    d->handler_name = apr_pstrdup(cmd->pool, argv[0]);
    if (d->handler == NULL) {
        return apr_psprintf(cmd->pool, "WSockHandler: unknown handler '%s' (built in: echo, "
                            "chat, redis; load others with WSockPlugin before this line)", argv[0]);
    }
    if (d->handler->create_config) {
        const char *err = d->handler->create_config(cmd->pool, argc - 1, argv + 1,
                                                    &d->handler_cfg);
        if (err) {
            return apr_psprintf(cmd->pool, "WSockHandler %s: %s", argv[0], err);
        }
    }
    else if (argc > 1) {
        return apr_psprintf(cmd->pool, "WSockHandler: handler '%s' takes no arguments",
                            argv[0]);
    }
    return NULL;
}

static const char *load_plugin(cmd_parms *cmd, void *conf, const char *name,
                               const char *path)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)conf;
    return err ? err : wsock_handlers_load_plugin(cmd, name, path);
}

static const char *set_protocols(cmd_parms *cmd, void *conf, const char *arg)
{
    wsock_dir_conf *d = conf;

    if (d->protocols == NULL) {
        d->protocols = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    /* RFC 6455 §4.1: a subprotocol name is an HTTP token. */
    for (const char *s = arg; *s; s++) {
        if (*s <= ' ' || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s)) {
            return apr_psprintf(cmd->pool, "WSockProtocols: '%s' is not a valid token", arg);
        }
    }
    APR_ARRAY_PUSH(d->protocols, const char *) = arg;
    return NULL;
}

static const char *set_require_protocol(cmd_parms *cmd, void *conf, int on)
{
    (void)cmd;
    ((wsock_dir_conf *)conf)->require_protocol = on;
    return NULL;
}

/* Seconds, decimals allowed ("0.5"); 0 where allow_zero. */
static const char *parse_seconds(cmd_parms *cmd, const char *arg, int allow_zero,
                                 apr_interval_time_t *out)
{
    char *end;
    double v = strtod(arg, &end);

    if (end == arg || *end || !(v >= 0) || v > 86400.0 * 365 || (!allow_zero && v == 0)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds%s",
                            cmd->cmd->name, arg, allow_zero ? " (0 = off)" : " above 0");
    }
    *out = (apr_interval_time_t)(v * APR_USEC_PER_SEC);
    return NULL;
}

/* Bytes with an optional K, M or G suffix (powers of 1024). */
static const char *parse_bytes(cmd_parms *cmd, const char *arg, apr_off_t min,
                               apr_off_t *out)
{
    char *end;
    apr_off_t v;
    int shift = 0;

    if (apr_strtoff(&v, arg, &end, 10) != APR_SUCCESS || end == arg) {
        v = -1;
    }
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    /* Up to 2^32 GiB whatever the unit: far beyond any sane limit, and no
     * overflow when the suffix is applied. */
    if (*end || v < min || v > ((apr_off_t)1 << (62 - shift))) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size in bytes (K, M, G allowed)",
                            cmd->cmd->name, arg);
    }
    *out = v << shift;
    return NULL;
}

static const char *set_max_message(cmd_parms *cmd, void *conf, const char *arg)
{
    return parse_bytes(cmd, arg, 1, &((wsock_dir_conf *)conf)->max_message);
}

static const char *set_fragment_size(cmd_parms *cmd, void *conf, const char *arg)
{
    return parse_bytes(cmd, arg, 0, &((wsock_dir_conf *)conf)->fragment_size);
}

/* WSockSendQueue MESSAGES BYTES [drop|close] */
static const char *set_send_queue(cmd_parms *cmd, void *conf, const char *msgs,
                                  const char *bytes, const char *policy)
{
    wsock_dir_conf *d = conf;
    char *end;
    apr_int64_t n = apr_strtoi64(msgs, &end, 10);
    const char *err;

    if (end == msgs || *end || n < 1 || n > 1000000) {
        return apr_psprintf(cmd->pool, "WSockSendQueue: '%s' is not a number of messages "
                            "(1-1000000)", msgs);
    }
    if ((err = parse_bytes(cmd, bytes, 1, &d->queue_bytes)) != NULL) {
        return err;
    }
    if (policy == NULL) {
        /* the policy stays as inherited */
    }
    else if (strcasecmp(policy, "drop") == 0) {
        d->queue_policy = WSOCK_QUEUE_DROP;
    }
    else if (strcasecmp(policy, "close") == 0) {
        d->queue_policy = WSOCK_QUEUE_CLOSE;
    }
    else {
        return apr_psprintf(cmd->pool, "WSockSendQueue: '%s' is not a policy "
                            "(drop or close)", policy);
    }
    d->queue_msgs = (apr_off_t)n;
    return NULL;
}

static const char *set_ping_interval(cmd_parms *cmd, void *conf, const char *arg)
{
    return parse_seconds(cmd, arg, 1, &((wsock_dir_conf *)conf)->ping_interval);
}

static const char *set_idle_timeout(cmd_parms *cmd, void *conf, const char *arg)
{
    return parse_seconds(cmd, arg, 1, &((wsock_dir_conf *)conf)->idle_timeout);
}

static const char *set_close_timeout(cmd_parms *cmd, void *conf, const char *arg)
{
    return parse_seconds(cmd, arg, 0, &((wsock_dir_conf *)conf)->close_timeout);
}

/* ---- server-wide settings: how connections are driven ---------------- */

/* WSockDriver: auto = loop threads where the MPM can suspend connections
 * (event), the blocking driver elsewhere; blocking = always the latter. */
static int driver_blocking_only;
static int loop_threads;            /* WSockLoopThreads; 0 = one per CPU */

static int wsock_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf; (void)plog; (void)ptemp;
    driver_blocking_only = 0;       /* a restart rereads the directives */
    loop_threads = 0;
    return OK;
}

static const char *set_driver(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)conf;
    if (err) {
        return err;
    }
    if (strcasecmp(arg, "auto") == 0) {
        driver_blocking_only = 0;
    }
    else if (strcasecmp(arg, "blocking") == 0) {
        driver_blocking_only = 1;
    }
    else {
        return apr_psprintf(cmd->pool, "WSockDriver: '%s' is not auto or blocking", arg);
    }
    return NULL;
}

static const char *set_loop_threads(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;
    long n;

    (void)conf;
    if (err) {
        return err;
    }
    n = strtol(arg, &end, 10);
    if (*arg == '\0' || *end || n < 1 || n > 64) {
        return apr_psprintf(cmd->pool, "WSockLoopThreads: '%s' is not a number "
                            "from 1 to 64", arg);
    }
    loop_threads = (int)n;
    return NULL;
}

#define WSOCK_CTX (RSRC_CONF | ACCESS_CONF)

static const command_rec wsock_cmds[] = {
    AP_INIT_TAKE2("WSockPlugin", load_plugin, NULL, RSRC_CONF,
                  "A name and the .so of a handler plugin to load"),
    AP_INIT_TAKE_ARGV("WSockHandler", set_handler, NULL, WSOCK_CTX,
                      "The WebSocket handler for this location (echo, ...), or none"),
    AP_INIT_ITERATE("WSockProtocols", set_protocols, NULL, WSOCK_CTX,
                    "Subprotocols this location accepts, e.g. chat.v1 chat.v2"),
    AP_INIT_FLAG("WSockRequireProtocol", set_require_protocol, NULL, WSOCK_CTX,
                 "On: refuse (400) a client that offers none of WSockProtocols"),
    AP_INIT_TAKE1("WSockMaxMessageSize", set_max_message, NULL, WSOCK_CTX,
                  "Largest message accepted, in bytes (K/M/G allowed); default 1M"),
    AP_INIT_TAKE1("WSockPingInterval", set_ping_interval, NULL, WSOCK_CTX,
                  "Seconds of peer silence before the server pings; 0 = off; default 30"),
    AP_INIT_TAKE1("WSockIdleTimeout", set_idle_timeout, NULL, WSOCK_CTX,
                  "Seconds of peer silence before the server closes; 0 = off; default 60"),
    AP_INIT_TAKE1("WSockCloseTimeout", set_close_timeout, NULL, WSOCK_CTX,
                  "Seconds to wait for the client's close reply; default 5"),
    AP_INIT_TAKE1("WSockFragmentSize", set_fragment_size, NULL, WSOCK_CTX,
                  "Send messages larger than this as several frames; 0 = never; default 0"),
    AP_INIT_TAKE23("WSockSendQueue", set_send_queue, NULL, WSOCK_CTX,
                   "Outbound queue of a connection: messages, bytes (K/M/G) and what a "
                   "full queue does (drop or close); default 1024 16M close"),
    AP_INIT_TAKE1("WSockDriver", set_driver, NULL, RSRC_CONF,
                  "auto (loop threads under the event MPM) or blocking; default auto"),
    AP_INIT_TAKE1("WSockLoopThreads", set_loop_threads, NULL, RSRC_CONF,
                  "Loop threads per child for the asynchronous driver; default one per CPU"),
    WSOCK_REDIS_DIRECTIVES,
    { NULL }
};

/* ---- the upgrade --------------------------------------------------- */

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

static int wsock_upgrade_handler(request_rec *r)
{
    const wsock_dir_conf *d = ap_get_module_config(r->per_dir_config, &wsock_module);
    conn_rec *c = r->connection;
    wsock_handshake_req req;
    wsock_handshake_result res;
    wsock_settings set;
    char accept[WSOCK_ACCEPT_SIZE];
    const char *key;
    wsock_conn *wc;
    int open_rc;

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

    wsock_settings_from_conf(&set, d);
    wc = wsock_conn_create(r, &set);
    if (wc == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      WSOCKNO(0302) "cannot set up the WebSocket connection");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    wsock_facts_capture(wc, r, res.protocol, d->handler_cfg, d->location);

    /* The handler may still refuse with an HTTP status: no upgrade then.
     * (A close code means: upgrade, then close at once; already started.) */
    open_rc = wsock_conn_open(wc);
    if (WSOCK_IS_HTTP_STATUS(open_rc)) {
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

    /* From here on the connection speaks WebSocket.  mod_reqtimeout's
     * request-read timeouts no longer apply (our ping and idle timers do),
     * no HTTP response may follow, and the connection is not reused. */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    ap_remove_output_filter_byhandle(r->output_filters, "HTTP_HEADER");
    c->keepalive = AP_CONN_CLOSE;

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  WSOCKNO(0303) "WebSocket %s open (handler %s%s%s)", r->uri,
                  set.handler_name, res.protocol ? ", protocol " : "",
                  res.protocol ? res.protocol : "");
    /* Under the event MPM the connection is handed to a loop thread once
     * the MPM has let go of it (wsock_suspend_connection): this worker
     * thread is free again. */
    if (!driver_blocking_only && wsock_loop_prepare(wc) == APR_SUCCESS) {
        ap_set_module_config(c->conn_config, &wsock_module, wc);
        return SUSPENDED;
    }
    wsock_drive_blocking(wc);
    return DONE;
}

static void wsock_suspend_connection(conn_rec *c, request_rec *r)
{
    wsock_conn *wc = ap_get_module_config(c->conn_config, &wsock_module);

    (void)r;
    if (wc && c->cs && c->cs->state == CONN_STATE_SUSPENDED) {
        ap_set_module_config(c->conn_config, &wsock_module, NULL);
        wsock_loop_adopt(wc);
    }
}

/* ---- process life -------------------------------------------------- */

static void wsock_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv = wsock_live_child_init(pchild);

    if (rv == APR_SUCCESS) {
        rv = wsock_rooms_child_init(pchild);
    }
    wsock_handlers_child_init(pchild, s);
    if (rv == APR_SUCCESS && !driver_blocking_only) {
        wsock_loops_start(pchild, s, loop_threads);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSOCKNO(0001) "cannot create this child's connection list or "
                     "rooms; stop and room delivery will not reach its clients");
    }
}

/* The child is going down (stop or graceful-stop): tell every client. */
static void wsock_child_stopping(apr_pool_t *pchild, int graceful)
{
    (void)pchild;
    (void)graceful;
    wsock_live_going_away();
}

static void wsock_register_hooks(apr_pool_t *p)
{
    (void)p;
    wsock_handlers_add_builtin();
    ap_hook_child_init(wsock_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(wsock_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_config(wsock_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_suspend_connection(wsock_suspend_connection, NULL, NULL, APR_HOOK_MIDDLE);
    wsock_netout_register();
    /* First: a WebSocket location answers the upgrade itself, whatever
     * other handler the URL would map to. */
    ap_hook_handler(wsock_upgrade_handler, NULL, NULL, APR_HOOK_FIRST);
}

AP_DECLARE_MODULE(wsock) = {
    STANDARD20_MODULE_STUFF,
    create_dir_conf,
    merge_dir_conf,
    NULL,
    NULL,
    wsock_cmds,
    wsock_register_hooks,
    AP_MODULE_FLAG_NONE
};
