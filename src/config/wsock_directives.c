/*
 * wsock_directives.c — the per-location directives of mod_wsock (WSockHandler,
 * limits, queue, timers, rate limits): each parses its arguments into the
 * section's wsock_dir_conf, or fails configtest with a message that names
 * the directive.  The command table is in mod_wsock.c; the security
 * directives are in src/security, the Redis ones in src/handlers.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <httpd.h>
#include <http_config.h>
#include <apr_strings.h>

#include "wsock_config.h"
#include "wsock_counters.h"
#include "wsock_handlers.h"
#include "wsock_parse.h"
#include "wsock_ratelimit.h"

const char *wsock_cmd_handler(cmd_parms *cmd, void *conf, int argc, char *const argv[])
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
    d->ops_label = wsock_counters_label(d->location, d->handler_name);
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

const char *wsock_cmd_load_plugin(cmd_parms *cmd, void *conf, const char *name,
                                  const char *path)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)conf;
    return err ? err : wsock_handlers_load_plugin(cmd, name, path);
}

const char *wsock_cmd_protocols(cmd_parms *cmd, void *conf, const char *arg)
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

const char *wsock_cmd_require_protocol(cmd_parms *cmd, void *conf, int on)
{
    (void)cmd;
    ((wsock_dir_conf *)conf)->require_protocol = on;
    return NULL;
}

const char *wsock_cmd_max_message(cmd_parms *cmd, void *conf, const char *arg)
{
    return wsock_parse_bytes(cmd, arg, 1, &((wsock_dir_conf *)conf)->max_message);
}

const char *wsock_cmd_access_log(cmd_parms *cmd, void *conf, const char *arg)
{
    int upgrade = wsock_keyword_of_two(arg, "end", "upgrade");

    if (upgrade < 0) {
        return apr_psprintf(cmd->pool, "WSockAccessLog: '%s' is not end or upgrade", arg);
    }
    ((wsock_dir_conf *)conf)->log_at_upgrade = upgrade;
    return NULL;
}

const char *wsock_cmd_fragment_size(cmd_parms *cmd, void *conf, const char *arg)
{
    return wsock_parse_bytes(cmd, arg, 0, &((wsock_dir_conf *)conf)->fragment_size);
}

/* WSockSendQueue MESSAGES BYTES [drop|close] */
const char *wsock_cmd_send_queue(cmd_parms *cmd, void *conf, const char *msgs,
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
    if ((err = wsock_parse_bytes(cmd, bytes, 1, &d->queue_bytes)) != NULL) {
        return err;
    }
    if (policy != NULL) {           /* else the policy stays as inherited */
        int close = wsock_keyword_of_two(policy, "drop", "close");

        if (close < 0) {
            return apr_psprintf(cmd->pool, "WSockSendQueue: '%s' is not a policy "
                                "(drop or close)", policy);
        }
        d->queue_policy = close ? WSOCK_QUEUE_CLOSE : WSOCK_QUEUE_DROP;
    }
    d->queue_msgs = (apr_off_t)n;
    return NULL;
}

const char *wsock_cmd_ping_interval(cmd_parms *cmd, void *conf, const char *arg)
{
    return wsock_parse_seconds(cmd, arg, 1, &((wsock_dir_conf *)conf)->ping_interval);
}

const char *wsock_cmd_idle_timeout(cmd_parms *cmd, void *conf, const char *arg)
{
    return wsock_parse_seconds(cmd, arg, 1, &((wsock_dir_conf *)conf)->idle_timeout);
}

const char *wsock_cmd_close_timeout(cmd_parms *cmd, void *conf, const char *arg)
{
    return wsock_parse_seconds(cmd, arg, 0, &((wsock_dir_conf *)conf)->close_timeout);
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
            if (wsock_parse_bytes(cmd, v, min, out) != NULL) {
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
const char *wsock_cmd_rate_limit(cmd_parms *cmd, void *conf, int argc, char *const argv[])
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

const char *wsock_cmd_frame_timeout(cmd_parms *cmd, void *conf, const char *arg)
{
    return wsock_parse_seconds(cmd, arg, 1, &((wsock_dir_conf *)conf)->frame_timeout);
}
