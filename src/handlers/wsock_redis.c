/*
 * wsock_redis.c — the redis handler: a chat room that spans every Apache
 * server sharing one Redis.
 *
 *   WSockHandler redis [room=location|query] [echo=on|off] [history=N]
 *                      [history-age=SECONDS] [session=SECONDS]
 *                      [resume=N] [resume-bytes=SIZE]
 *
 * Rooms are chosen as in chat (wsock_roomsel).  A client's text message is
 * wrapped as {"type":"message","from":ID,"data":TEXT} and queued for this
 * child's publisher thread (wsock_redis_relay.c), which PUBLISHes it to the
 * room's channel; every child of every server subscribed to that channel
 * hands it to its own members.  With history, the message is also kept in
 * a Redis Stream per room, every delivered message carries its stream id,
 * and a client that reconnects with ?last_id=ID is caught up after the
 * 101, as it reads, within resume= messages and resume-bytes= bytes
 * (wsock_redis_catchup.c).  The wire format, the relay's states and what
 * clients are told: docs/redis.md.
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

static apr_uint32_t serials;        /* connections of this child so far */
static int relay_started;

static const char redis_usage[] = "room=location|query, echo=on|off, history=N, "
                                  "history-age=SECONDS, session=SECONDS, resume=N, "
                                  "resume-bytes=SIZE";

/* A whole number from 1 to max, or 0. */
static long parse_positive(const char *v, long max)
{
    char *end;
    long n = strtol(v, &end, 10);

    return (*v >= '0' && *v <= '9' && *end == '\0' && n >= 1 && n <= max) ? n : 0;
}

static const char *redis_create_config(apr_pool_t *pool, int argc, char *const argv[],
                                       void **cfgp)
{
    wsock_redis_cfg *cfg = apr_pcalloc(pool, sizeof(*cfg));

    cfg->echo = 1;
    cfg->resume_max = WSOCK_REDIS_RESUME_DEFAULT;
    cfg->resume_max_bytes = WSOCK_REDIS_RESUME_BYTES_DEFAULT;
    for (int i = 0; i < argc; i++) {
        int ok, room = wsock_roomsel_arg(argv[i], &cfg->room_from_query);

        if (room) {
            ok = room > 0;
        }
        else if (strncasecmp(argv[i], "echo=", 5) == 0) {
            ok = wsock_arg_onoff(argv[i] + 5, &cfg->echo);
        }
        else if (strncasecmp(argv[i], "history=", 8) == 0) {
            ok = (cfg->history_max = parse_positive(argv[i] + 8, 100000000)) > 0;
        }
        else if (strncasecmp(argv[i], "session=", 8) == 0) {
            ok = (cfg->session_ttl = parse_positive(argv[i] + 8, 366L * 86400)) > 0;
        }
        else if (strncasecmp(argv[i], "history-age=", 12) == 0) {
            /* seconds, up to a year */
            ok = (cfg->history_age_ms = parse_positive(argv[i] + 12, 366L * 86400) * 1000) > 0;
        }
        else if (strncasecmp(argv[i], "resume=", 7) == 0) {
            ok = (cfg->resume_max = parse_positive(argv[i] + 7, 100000)) > 0;
        }
        else if (strncasecmp(argv[i], "resume-bytes=", 13) == 0) {
            ok = wsock_redis_parse_size(argv[i] + 13, 1024, 256 * 1024 * 1024,
                                        &cfg->resume_max_bytes);
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
        || (rv = wsock_redis_session_init(pchild)) != APR_SUCCESS
        || (rv = wsock_redis_relay_start(pchild, s)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSOCKNO(0803) "redis relay: cannot start in this child; its "
                     "clients are refused with 503");
        return;
    }
    relay_started = 1;              /* stopped by a cleanup of pchild */
}

static void redis_forget(wsock_conn *wc, wsock_redis_client *cl);

/* Refused before it was registered. */
static int refuse(wsock_redis_client *cl, int status)
{
    wsock_redis_client_release(cl);
    return status;
}

/* Everything that may refuse the client is checked here, before it is
 * registered; nothing here waits for Redis but a session's look-up
 * (bounded: wsock_redis_session.c).  A resume happens after the 101, on
 * the resumer thread (wsock_redis_catchup.c). */
static int redis_open(wsock_conn *wc)
{
    const wsock_redis_cfg *cfg = wsock_handler_config(wc);
    const char *last_id = WSOCK_REDIS_HISTORY(cfg) ? wsock_query_arg(wc, "last_id") : NULL;
    apr_uint64_t ms, seq;
    wsock_redis_client *cl;
    char last[48] = "";
    int rc, flags;

    if (WSOCK_REDIS_HISTORY(cfg) && !last_id && wsock_query_names(wsock_query(wc), "last_id")) {
        last_id = "";               /* there, but not decodable: refused below */
    }
    if (last_id && !wsock_redis_parse_id(last_id, &ms, &seq)) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(wc),
                      WSOCKNO(0806) "redis %s: refused, last_id is not a stream id "
                      "(MS-SEQ)", wsock_uri(wc));
        return HTTP_BAD_REQUEST;
    }
    if (!relay_started || (cl = wsock_redis_client_new(wc)) == NULL) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    cl->serial = apr_atomic_inc32(&serials) + 1;
    /* A session brings back its room, member id, name and last id. */
    rc = cfg->session_ttl ? wsock_redis_session_open(cl, cfg, last, sizeof(last)) : 0;
    if (rc > 1) {
        return refuse(cl, rc);
    }
    if (!last_id && *last && WSOCK_REDIS_HISTORY(cfg)) {
        last_id = last;
    }
    if (rc == 0) {
        if ((rc = wsock_roomsel_pick(wc, "redis", cfg->room_from_query, &cl->sel)) != 0) {
            return refuse(cl, rc);
        }
        snprintf(cl->member, sizeof(cl->member), "%s-%x", wsock_redis_child_token,
                 (unsigned)cl->serial);
    }
    if (last_id) {
        if ((rc = wsock_redis_catchup_start(cl, cfg, last_id)) != 0) {
            return refuse(cl, rc);
        }
        cl->catching_up = 1;
        snprintf(cl->seen, sizeof(cl->seen), "%s", last_id);
    }
    wsock_set_user_data(wc, cl);
    flags = wsock_redis_local_add(cl, cfg->resume_max, cfg->resume_max_bytes);
    if (flags & WSOCK_REDIS_ROOMS_CHANGED) {
        wsock_redis_relay_rooms_changed();
    }
    if (last_id) {
        wsock_redis_catchup_go(cl);
    }
    /* Welcomed now (the welcome goes out right after the 101), or once
     * the subscriber has its room. */
    else if ((flags & WSOCK_REDIS_GREET_NOW)
             && wsock_redis_local_greet(cl, 1) != APR_SUCCESS) {
        rc = wsock_roomsel_too_long(wc, "redis", &cl->sel);
        redis_forget(wc, cl);       /* refused: on_close will not run */
        return rc;
    }
    if (*cl->session) {
        wsock_redis_session_save(cl, cfg);
    }
    return 0;
}

static void tell(wsock_conn *wc, const char *json)
{
    wsock_send(wc, 1, json, strlen(json));
}

static int redis_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    const wsock_redis_cfg *cfg = wsock_handler_config(wc);
    const wsock_redis_client *cl = wsock_get_user_data(wc);
    char head[256], *msg;
    apr_size_t mlen;
    apr_status_t rv;

    if (!is_text) {
        return 1003;                /* the relay carries text (JSON) only */
    }
    if (*cl->name) {
        /* names are printable ASCII: only '"' and '\\' need escaping */
        char name[2 * sizeof(cl->name)];
        name[wsock_json_escape(name, cl->name, strlen(cl->name))] = '\0';
        snprintf(head, sizeof(head), "{\"type\":\"message\",\"from\":\"%s\",\"name\":\"%s\","
                 "\"data\":\"", cl->member, name);
    }
    else {
        snprintf(head, sizeof(head), "{\"type\":\"message\",\"from\":\"%s\",\"data\":\"",
                 cl->member);
    }
    if ((msg = wsock_json_wrap(head, data, len, "\"}", &mlen)) == NULL) {
        return 1011;
    }
    rv = wsock_redis_relay_publish(cfg, cl->sel.room, cfg->echo ? 0 : cl->serial, msg, mlen);
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

/* The client is gone (or refused): out of the relay's books.  Threads
 * that still hold it (a delivery, its catch-up) let go of it soon. */
static void redis_forget(wsock_conn *wc, wsock_redis_client *cl)
{
    if (wsock_redis_local_remove(cl)) {
        wsock_redis_relay_rooms_changed();
    }
    if (cl->cu) {
        wsock_redis_catchup_poke(cl);
    }
    wsock_set_user_data(wc, NULL);
    wsock_redis_client_release(cl);
}

static void redis_close(wsock_conn *wc, int code, const char *reason)
{
    wsock_redis_client *cl = wsock_get_user_data(wc);

    (void)code;
    (void)reason;
    if (*cl->session) {
        /* before it leaves: its room's last id here is what it has seen */
        wsock_redis_session_save(cl, wsock_handler_config(wc));
    }
    redis_forget(wc, cl);
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
