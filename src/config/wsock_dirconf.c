/*
 * wsock_dirconf.c — the per-directory configuration of mod_wsock: made for
 * every section, merged from outer to inner (a nested section inherits
 * everything and overrides what it sets), and turned into one connection's
 * settings with every default applied.
 */
#include <string.h>

#include <httpd.h>
#include <http_config.h>

#include "wsock_config.h"
#include "wsock_token.h"

void *wsock_dirconf_create(apr_pool_t *p, char *dir)
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
    d->ops_label = -1;                      /* WSOCK_LABEL_NONE */
    d->status_access = WSOCK_UNSET;         /* the live dashboard */
    d->addressable = d->publish_access = WSOCK_UNSET;
    return d;
}

/* A nested section inherits everything and overrides what it sets. */
void *wsock_dirconf_merge(apr_pool_t *p, void *basev, void *addv)
{
    const wsock_dir_conf *base = basev, *add = addv;
    wsock_dir_conf *d = apr_palloc(p, sizeof(*d));

#define WSOCK_MERGE(f) d->f = (add->f != WSOCK_UNSET) ? add->f : base->f
    d->handler_set = add->handler_set || base->handler_set;
    d->handler = add->handler_set ? add->handler : base->handler;
    d->handler_cfg = add->handler_set ? add->handler_cfg : base->handler_cfg;
    d->handler_name = add->handler_set ? add->handler_name : base->handler_name;
    d->location = add->handler_set ? add->location : base->location;
    d->ops_label = add->handler_set ? add->ops_label : base->ops_label;
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
    d->compress = add->compress ? add->compress : base->compress;
    WSOCK_MERGE(status_access);
    WSOCK_MERGE(addressable);
    WSOCK_MERGE(publish_access);
#undef WSOCK_MERGE
    return d;
}

void wsock_settings_from_conf(wsock_settings *s, const wsock_dir_conf *d)
{
#define WSOCK_OR(v, dflt) ((v) != WSOCK_UNSET ? (v) : (dflt))
    s->handler = d->handler;
    s->handler_name = d->handler_name;
    s->ops_label = d->ops_label;
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
    if (d->compress) {
        s->compress = *d->compress;
    }
    else {
        memset(&s->compress, 0, sizeof(s->compress));
    }
#undef WSOCK_OR
}
