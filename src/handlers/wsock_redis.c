/*
 * wsock_redis.c — the redis handler: a chat room that spans every Apache
 * server sharing one Redis.
 *
 *   WSockHandler redis [room=location|query] [echo=on|off]
 *
 * Rooms are chosen as in chat (wsock_roomsel).  A client's text message is
 * wrapped as {"type":"message","from":ID,"data":TEXT} and queued for this
 * child's publisher thread (wsock_redis_relay.c), which PUBLISHes it to the
 * room's channel; every child of every server subscribed to that channel
 * hands it to its own members.  The wire format, the relay's states and
 * what clients are told: docs/redis.md.
 *
 * Uses only wsock.h, plus httpd's logging and configuration types for the
 * server-wide WSockRedis* directives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "wsock.h"
#include "wsock_json.h"
#include "wsock_log.h"
#include "wsock_redis.h"

APLOG_USE_MODULE(wsock);

typedef struct {
    int room_from_query;
    int echo;
} redis_cfg;

static apr_uint32_t serials;        /* connections of this child so far */
static int relay_started;

static const char redis_usage[] = "room=location|query, echo=on|off";

static const char *redis_create_config(apr_pool_t *pool, int argc, char *const argv[],
                                       void **cfgp)
{
    redis_cfg *cfg = apr_pcalloc(pool, sizeof(*cfg));

    cfg->echo = 1;
    for (int i = 0; i < argc; i++) {
        int ok, room = wsock_roomsel_arg(argv[i], &cfg->room_from_query);

        if (room) {
            ok = room > 0;
        }
        else if (strncasecmp(argv[i], "echo=", 5) == 0) {
            ok = wsock_arg_onoff(argv[i] + 5, &cfg->echo);
        }
        else {
            return apr_psprintf(pool, "unknown argument '%s' (%s)", argv[i], redis_usage);
        }
        if (!ok) {
            return apr_psprintf(pool, "bad value in '%s' (%s)", argv[i], redis_usage);
        }
    }
    wsock_redis_conf_mark_used(pool);
    *cfgp = cfg;
    return NULL;
}

static void redis_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    if (!wsock_redis_conf.in_use) {
        return;                     /* no location relays: no threads */
    }
    if ((rv = wsock_redis_local_init(pchild)) != APR_SUCCESS
        || (rv = wsock_redis_relay_start(pchild, s)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSOCKNO(0803) "redis relay: cannot start in this child; its "
                     "clients are refused with 503");
        return;
    }
    relay_started = 1;              /* stopped by a cleanup of pchild */
}

static int redis_open(wsock_conn *wc)
{
    const redis_cfg *cfg = wsock_handler_config(wc);
    wsock_redis_client *cl;
    int rc;

    if (!relay_started || (cl = calloc(1, sizeof(*cl))) == NULL) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if ((rc = wsock_roomsel_join(wc, "redis", cfg->room_from_query, &cl->sel)) != 0) {
        free(cl);
        return rc;
    }
    cl->wc = wc;
    cl->serial = apr_atomic_inc32(&serials) + 1;
    snprintf(cl->member, sizeof(cl->member), "%s-%x", wsock_redis_child_token,
             (unsigned)cl->serial);
    wsock_set_user_data(wc, cl);
    /* Welcomes it now, or once the subscriber has its room. */
    if (wsock_redis_local_add(cl)) {
        wsock_redis_relay_rooms_changed();
    }
    return 0;
}

static void tell(wsock_conn *wc, const char *json)
{
    wsock_send(wc, 1, json, strlen(json));
}

static int redis_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    const redis_cfg *cfg = wsock_handler_config(wc);
    const wsock_redis_client *cl = wsock_get_user_data(wc);
    char head[96], *msg;
    apr_size_t mlen;
    apr_status_t rv;

    if (!is_text) {
        return 1003;                /* the relay carries text (JSON) only */
    }
    snprintf(head, sizeof(head), "{\"type\":\"message\",\"from\":\"%s\",\"data\":\"",
             cl->member);
    if ((msg = wsock_json_wrap(head, data, len, "\"}", &mlen)) == NULL) {
        return 1011;
    }
    rv = wsock_redis_relay_publish(cl->sel.room, cfg->echo ? 0 : cl->serial, msg, mlen);
    free(msg);
    if (rv == APR_EAGAIN) {
        tell(wc, "{\"type\":\"dropped\",\"reason\":\"relay unavailable\"}");
    }
    else if (rv == APR_ENOSPC) {
        tell(wc, "{\"type\":\"dropped\",\"reason\":\"relay busy\"}");
    }
    else if (rv != APR_SUCCESS) {
        return 1011;
    }
    return 0;
}

static void redis_close(wsock_conn *wc, int code, const char *reason)
{
    wsock_redis_client *cl = wsock_get_user_data(wc);

    (void)code;
    (void)reason;
    if (wsock_redis_local_remove(cl)) {
        wsock_redis_relay_rooms_changed();
    }
    wsock_set_user_data(wc, NULL);
    free(cl);
}

const wsock_handler wsock_redis_handler = {
    .api_version = WSOCK_API_VERSION,
    .name = "redis",
    .create_config = redis_create_config,
    .child_init = redis_child_init,
    .on_open = redis_open,
    .on_message = redis_message,
    .on_close = redis_close,
};
