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
#include <ap_mpm.h>
#include <mpm_common.h>
#include <util_filter.h>
#include <apr_strings.h>

#include "wsock.h"
#include "wsock_bus.h"
#include "wsock_config.h"
#include "wsock_conn.h"
#include "wsock_driver.h"
#include "wsock_handlers.h"
#include "wsock_handshake.h"
#include "wsock_live.h"
#include "wsock_loop.h"
#include "wsock_netin.h"
#include "wsock_netout.h"
#include "wsock_ratelimit.h"
#include "wsock_rooms.h"
#include "wsock_redis.h"
#include "wsock_security.h"
#include "wsock_token.h"
#include "wsock_ipcap.h"
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
    d->log_at_upgrade = WSOCK_UNSET;
    /* abuse limits */
    d->msg_rate = d->msg_burst = WSOCK_UNSET;
    d->byte_rate = d->byte_burst = WSOCK_UNSET;
    d->frame_timeout = WSOCK_UNSET;
    d->max_conns_per_ip = WSOCK_UNSET;      /* handshake security */
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
    WSOCK_MERGE(log_at_upgrade);
    /* abuse limits: a rate and its burst are set, and inherited, together */
    d->msg_burst = add->msg_rate != WSOCK_UNSET ? add->msg_burst : base->msg_burst;
    d->byte_burst = add->byte_rate != WSOCK_UNSET ? add->byte_burst : base->byte_burst;
    WSOCK_MERGE(msg_rate);
    WSOCK_MERGE(byte_rate);
    WSOCK_MERGE(frame_timeout);
    /* handshake security (src/security) */
    d->origins = add->origins ? add->origins : base->origins;
    d->token = wsock_token_conf_merge(p, base->token, add->token);
    WSOCK_MERGE(max_conns_per_ip);
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
    s->log_at_upgrade = WSOCK_OR(d->log_at_upgrade, WSOCK_DEFAULT_LOG_AT_UPGRADE);
    /* abuse limits: without a burst, one second's worth of messages, and
     * for bytes at least two largest messages (docs/limits.md) */
    s->msg_rate = (apr_uint64_t)WSOCK_OR(d->msg_rate, 0);
    s->msg_burst = (apr_uint64_t)WSOCK_OR(d->msg_burst, (apr_off_t)s->msg_rate);
    s->byte_rate = (apr_uint64_t)WSOCK_OR(d->byte_rate, 0);
    s->byte_burst = (apr_uint64_t)WSOCK_OR(d->byte_burst, (apr_off_t)s->byte_rate);
    if (d->byte_burst == WSOCK_UNSET && s->byte_burst < 2 * s->max_message) {
        s->byte_burst = 2 * s->max_message;
    }
    s->frame_timeout = WSOCK_OR(d->frame_timeout, WSOCK_DEFAULT_FRAME_TIMEOUT);
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

/* Which of two keywords arg is, case-insensitively: 0, 1, or -1 for neither. */
static int keyword_of_two(const char *arg, const char *first, const char *second)
{
    return strcasecmp(arg, first) == 0 ? 0 : strcasecmp(arg, second) == 0 ? 1 : -1;
}

static const char *set_access_log(cmd_parms *cmd, void *conf, const char *arg)
{
    int upgrade = keyword_of_two(arg, "end", "upgrade");

    if (upgrade < 0) {
        return apr_psprintf(cmd->pool, "WSockAccessLog: '%s' is not end or upgrade", arg);
    }
    ((wsock_dir_conf *)conf)->log_at_upgrade = upgrade;
    return NULL;
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
    if (policy != NULL) {           /* else the policy stays as inherited */
        int close = keyword_of_two(policy, "drop", "close");

        if (close < 0) {
            return apr_psprintf(cmd->pool, "WSockSendQueue: '%s' is not a policy "
                                "(drop or close)", policy);
        }
        d->queue_policy = close ? WSOCK_QUEUE_CLOSE : WSOCK_QUEUE_DROP;
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

/* ---- abuse limits (docs/limits.md) ------------------------------------ */

/* One part of WSockRateLimit: "messages=RATE[/s][,burst=N]" or
 * "bytes=RATE[/s][,burst=SIZE]"; counts for messages, sizes (K/M/G) for
 * bytes.  A rate of 0 turns that limit off. */
static const char *parse_rate_part(cmd_parms *cmd, const char *arg, int bytes,
                                   apr_off_t *rate, apr_off_t *burst)
{
    char *val = apr_pstrdup(cmd->pool, strchr(arg, '=') + 1);
    char *b = strchr(val, ',');
    size_t n;

    *burst = WSOCK_UNSET;
    if (b) {
        *b++ = '\0';
        if (strncasecmp(b, "burst=", 6) != 0) {
            return apr_psprintf(cmd->pool, "WSockRateLimit: '%s': after the rate only "
                                "',burst=N' may follow", arg);
        }
        b += 6;
    }
    n = strlen(val);
    if (n > 2 && strcasecmp(val + n - 2, "/s") == 0) {
        val[n - 2] = '\0';         /* the unit is always per second */
    }
    for (int i = 0; i < 2; i++) {
        const char *v = i ? b : val;
        apr_off_t *out = i ? burst : rate;
        apr_off_t min = i ? 1 : 0;
        char *end = NULL;

        if (v == NULL) {
            continue;
        }
        if (bytes) {
            if (parse_bytes(cmd, v, min, out) != NULL) {
                *out = -1;
            }
        }
        else {
            apr_int64_t x = apr_strtoi64(v, &end, 10);
            *out = (end == v || *end || x < min) ? -1 : (apr_off_t)x;
        }
        if (*out < min || (apr_uint64_t)*out > WSOCK_BUCKET_MAX) {
            return apr_psprintf(cmd->pool, "WSockRateLimit: '%s' is not a %s from %d to "
                                "2^40 in '%s'", v, bytes ? "size (K, M, G allowed)" : "count",
                                (int)min, arg);
        }
    }
    return NULL;
}

/* WSockRateLimit off | [messages=RATE[,burst=N]] [bytes=RATE[,burst=SIZE]] */
static const char *set_rate_limit(cmd_parms *cmd, void *conf, int argc, char *const argv[])
{
    wsock_dir_conf *d = conf;
    int seen_msgs = 0, seen_bytes = 0;

    if (argc == 1 && strcasecmp(argv[0], "off") == 0) {
        d->msg_rate = d->byte_rate = 0;
        d->msg_burst = d->byte_burst = WSOCK_UNSET;
        return NULL;
    }
    if (argc < 1 || argc > 2) {
        return "WSockRateLimit takes off, or messages=RATE[,burst=N] and/or "
               "bytes=RATE[,burst=SIZE]";
    }
    for (int i = 0; i < argc; i++) {
        const char *err;

        if (strncasecmp(argv[i], "messages=", 9) == 0 && !seen_msgs++) {
            err = parse_rate_part(cmd, argv[i], 0, &d->msg_rate, &d->msg_burst);
        }
        else if (strncasecmp(argv[i], "bytes=", 6) == 0 && !seen_bytes++) {
            err = parse_rate_part(cmd, argv[i], 1, &d->byte_rate, &d->byte_burst);
        }
        else {
            err = apr_psprintf(cmd->pool, "WSockRateLimit: '%s' is not messages=RATE[,burst=N] "
                               "or bytes=RATE[,burst=SIZE] (each at most once), nor off",
                               argv[i]);
        }
        if (err) {
            return err;
        }
    }
    return NULL;
}

static const char *set_frame_timeout(cmd_parms *cmd, void *conf, const char *arg)
{
    return parse_seconds(cmd, arg, 1, &((wsock_dir_conf *)conf)->frame_timeout);
}

/* ---- server-wide settings: how connections are driven ---------------- */

/* WSockDriver: auto = loop threads where the MPM can suspend connections
 * (event), the blocking driver elsewhere; blocking = always the latter. */
static int driver_blocking_only;
static int loop_threads;            /* WSockLoopThreads; 0 = from the CPUs (wsock_loop.c) */
static apr_size_t bus_size;         /* WSockBusSize */
static apr_uint32_t bus_rooms;      /* WSockBusRooms */

static int wsock_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf; (void)plog; (void)ptemp;
    driver_blocking_only = 0;       /* a restart rereads the directives */
    loop_threads = 0;
    bus_size = WSOCK_BUS_DEFAULT_SIZE;
    bus_rooms = WSOCK_BUS_DEFAULT_ROOMS;
    return OK;
}

static const char *set_driver(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    int blocking = keyword_of_two(arg, "auto", "blocking");

    (void)conf;
    if (err) {
        return err;
    }
    if (blocking < 0) {
        return apr_psprintf(cmd->pool, "WSockDriver: '%s' is not auto or blocking", arg);
    }
    driver_blocking_only = blocking;
    return NULL;
}

/* A server-config directive's whole number from min to max; NULL, or the
 * error, which says it is not what. */
static const char *global_number(cmd_parms *cmd, const char *arg, long min, long max,
                                 const char *what, long *n)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;

    if (err) {
        return err;
    }
    *n = strtol(arg, &end, 10);
    if (*arg == '\0' || *end || *n < min || *n > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not %s", cmd->cmd->name, arg, what);
    }
    return NULL;
}

static const char *set_loop_threads(cmd_parms *cmd, void *conf, const char *arg)
{
    long n;
    const char *err = global_number(cmd, arg, 1, 64, "a number from 1 to 64", &n);

    (void)conf;
    if (err == NULL) {
        loop_threads = (int)n;
    }
    return err;
}

static const char *set_bus_size(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_off_t n;

    (void)conf;
    if (err == NULL) {
        err = parse_bytes(cmd, arg, 1, &n);
    }
    if (err == NULL && (n < WSOCK_BUS_MIN_SIZE || n > WSOCK_BUS_MAX_SIZE)) {
        err = apr_psprintf(cmd->pool, "WSockBusSize: '%s' is not from 64K to 1G", arg);
    }
    if (err == NULL) {
        bus_size = (apr_size_t)n;
    }
    return err;
}

static const char *set_bus_rooms(cmd_parms *cmd, void *conf, const char *arg)
{
    static const char what[] = "a power of two from 16 to 1048576";
    long n;
    const char *err = global_number(cmd, arg, WSOCK_BUS_MIN_ROOMS, WSOCK_BUS_MAX_ROOMS, what,
                                    &n);

    (void)conf;
    if (err == NULL && (n & (n - 1)) != 0) {
        err = apr_psprintf(cmd->pool, "WSockBusRooms: '%s' is not %s", arg, what);
    }
    if (err == NULL) {
        bus_rooms = (apr_uint32_t)n;
    }
    return err;
}

/* The parent: the room bus, once (it lives across restarts). */
static int wsock_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                             server_rec *s)
{
    (void)pconf; (void)plog; (void)ptemp;
    /* failure is logged; rooms stay per child */
    wsock_bus_post_config(s, bus_size, bus_rooms);
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG
        && !driver_blocking_only) {
        wsock_loops_log_sizing(s, loop_threads);    /* once, not for the config check */
    }
    return OK;
}

/* The parent: a child process ended (maybe killed, without its clean-up). */
static void wsock_child_status(server_rec *s, pid_t pid, ap_generation_t gen, int slot,
                               mpm_child_status state)
{
    (void)gen;
    (void)slot;
    if (state == MPM_CHILD_EXITED) {
        wsock_bus_child_exited(s, pid);
    }
}

static int wsock_monitor(apr_pool_t *p, server_rec *s)
{
    (void)p;
    wsock_bus_monitor(s);
    return DECLINED;                /* let other modules' monitors run too */
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
    AP_INIT_TAKE1("WSockAccessLog", set_access_log, NULL, WSOCK_CTX,
                  "When the access log line of a WebSocket is written: end (when it "
                  "closes, default) or upgrade (at the 101: 8 KiB less per connection)"),
    AP_INIT_TAKE1("WSockFragmentSize", set_fragment_size, NULL, WSOCK_CTX,
                  "Send messages larger than this as several frames; 0 = never; default 0"),
    AP_INIT_TAKE23("WSockSendQueue", set_send_queue, NULL, WSOCK_CTX,
                   "Outbound queue of a connection: messages, bytes (K/M/G) and what a "
                   "full queue does (drop or close); default 1024 1M close"),
    /* abuse limits */
    AP_INIT_TAKE_ARGV("WSockRateLimit", set_rate_limit, NULL, WSOCK_CTX,
                      "Per-connection input limits: messages=RATE[,burst=N] and/or "
                      "bytes=RATE[,burst=SIZE] per second, or off; default off"),
    AP_INIT_TAKE1("WSockFrameTimeout", set_frame_timeout, NULL, WSOCK_CTX,
                  "Seconds a started frame or fragmented message may take to complete; "
                  "0 = off; default 30"),
    AP_INIT_TAKE1("WSockDriver", set_driver, NULL, RSRC_CONF,
                  "auto (loop threads under the event MPM) or blocking; default auto"),
    AP_INIT_TAKE1("WSockBusSize", set_bus_size, NULL, RSRC_CONF,
                  "Bytes of shared memory for messages between child processes "
                  "(server config; default 8M)"),
    AP_INIT_TAKE1("WSockBusRooms", set_bus_rooms, NULL, RSRC_CONF,
                  "(room, child process) pairs whose members the bus counts exactly, "
                  "a power of two (server config; default 16384)"),
    AP_INIT_TAKE1("WSockLoopThreads", set_loop_threads, NULL, RSRC_CONF,
                  "Loop threads per child for the asynchronous driver; default the "
                  "CPUs the server may use, shared among the MPM's child processes"),
    /* handshake security (src/security, docs/security.md) */
    AP_INIT_ITERATE("WSockAllowedOrigins", wsock_cmd_allowed_origins, NULL, WSOCK_CTX,
                    "Origins that may open a WebSocket here: same-origin (default), "
                    "scheme://host[:port], scheme://*.domain[:port], or any"),
    AP_INIT_TAKE1("WSockTokenAuth", wsock_cmd_token_auth, NULL, WSOCK_CTX,
                  "File with the HS256 secret that signs the tokens required here, or off"),
    AP_INIT_TAKE12("WSockTokenSource", wsock_cmd_token_source, NULL, WSOCK_CTX,
                   "Where the token is: protocol (default), query [name] or cookie [name]"),
    AP_INIT_TAKE1("WSockTokenAudience", wsock_cmd_token_audience, NULL, WSOCK_CTX,
                  "The aud a token must hold to be accepted here"),
    AP_INIT_TAKE1("WSockTokenLeeway", wsock_cmd_token_leeway, NULL, WSOCK_CTX,
                  "Seconds of clock skew allowed on exp and nbf; default 30"),
    AP_INIT_TAKE1("WSockTokenExpiry", wsock_cmd_token_expiry, NULL, WSOCK_CTX,
                  "When a WebSocket's token expires: close it with 1008 (default) "
                  "or keep it open"),
    AP_INIT_TAKE1("WSockMaxConnectionsPerIP", wsock_cmd_max_conns_per_ip, NULL, WSOCK_CTX,
                  "Most WebSockets one client address may hold open (429 beyond); "
                  "0 = no limit (default)"),
    AP_INIT_TAKE1("WSockIPTableSize", wsock_cmd_ip_table_size, NULL, RSRC_CONF,
                  "WebSockets the per-IP count can hold at once, server-wide (503 beyond); "
                  "server config; default 32768"),
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
    wsock_loop_worker_visit();
    if (wc && c->cs && c->cs->state == CONN_STATE_SUSPENDED) {
        ap_set_module_config(c->conn_config, &wsock_module, NULL);
        wsock_loop_adopt(wc);
    }
}

/* A worker thread picks up a connection again, or starts a new one: it is
 * back from its last hand-off. */
static void wsock_resume_connection(conn_rec *c, request_rec *r)
{
    (void)c;
    (void)r;
    wsock_loop_worker_visit();
}

static int wsock_pre_connection(conn_rec *c, void *csd)
{
    (void)c;
    (void)csd;
    wsock_loop_worker_visit();
    return OK;
}

/* ---- process life -------------------------------------------------- */

static void wsock_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv = wsock_live_child_init(pchild);

    if (rv == APR_SUCCESS) {
        rv = wsock_rooms_child_init(pchild);
    }
    wsock_handlers_child_init(pchild, s);
    if (rv == APR_SUCCESS) {
        wsock_bus_child_init(pchild, s);
    }
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
    ap_hook_post_config(wsock_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(wsock_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_status(wsock_child_status, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_suspend_connection(wsock_suspend_connection, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_resume_connection(wsock_resume_connection, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_connection(wsock_pre_connection, NULL, NULL, APR_HOOK_MIDDLE);
    wsock_netout_register();
    wsock_netin_register();
    wsock_security_register_hooks();
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
