/*
 * wsock_chat.c — the chat handler: every message a client sends goes to
 * every client in the same room (the sender too, unless echo=off).
 *
 *   WSockHandler chat [room=location|query] [echo=on|off] [presence=on|off]
 *
 * room=location (default): one room per configuration section, named by
 * wsock_location().  room=query: the room is the "room" query argument
 * (1-64 of A-Z a-z 0-9 _ . -; without it, the section's room; anything
 * else is refused with 400 before the upgrade).
 *
 * presence=on: what the server sends is JSON text, so that clients can
 * tell server notices (welcome, join, leave) from relayed messages and no
 * client can forge a notice: a relayed text message is wrapped as
 * {"type":"message","from":ID,"data":TEXT}.  Binary messages are relayed
 * unchanged.  The format is documented in docs/chat.md.
 *
 * Uses only wsock.h (plus httpd's logging); per-sender order comes from
 * the room API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "wsock.h"
#include "wsock_json.h"
#include "wsock_log.h"
#include "wsock_roomsel.h"

APLOG_USE_MODULE(wsock);

typedef struct {
    int room_from_query;
    int echo;
    int presence;
} chat_cfg;

typedef struct {
    wsock_roomsel sel;                  /* its room */
    char member[32];                    /* server-assigned id */
} chat_conn;

/* For the publish endpoint: whether cfg (a chat location's) takes rooms
 * from the query (wsock_publish_http.c). */
int wsock_chat_room_from_query(const void *cfg);
int wsock_chat_room_from_query(const void *cfg)
{
    return ((const chat_cfg *)cfg)->room_from_query;
}

/* Connections of this child so far: with the child's pid, a member id
 * that no other connection of the server has at the same time. */
static apr_uint32_t members_seen;

/* ---- configuration ------------------------------------------------- */

static const char chat_usage[] = "room=location|query, echo=on|off, presence=on|off";

static const char *chat_create_config(apr_pool_t *pool, int argc, char *const argv[],
                                      void **cfgp)
{
    chat_cfg *cfg = apr_pcalloc(pool, sizeof(*cfg));

    cfg->echo = 1;
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        const char *v = eq ? eq + 1 : "";
        apr_size_t klen = eq ? (apr_size_t)(eq - argv[i]) : 0;
        int ok, room = wsock_roomsel_arg(argv[i], &cfg->room_from_query);

        if (room) {
            ok = room > 0;
        }
        else if (klen == 4 && strncasecmp(argv[i], "echo", 4) == 0) {
            ok = wsock_arg_onoff(v, &cfg->echo);
        }
        else if (klen == 8 && strncasecmp(argv[i], "presence", 8) == 0) {
            ok = wsock_arg_onoff(v, &cfg->presence);
        }
        else {
            return apr_psprintf(pool, "unknown argument '%s' (%s)", argv[i], chat_usage);
        }
        if (!ok) {
            return apr_psprintf(pool, "bad value in '%s' (%s)", argv[i], chat_usage);
        }
    }
    *cfgp = cfg;
    return NULL;
}

/* ---- presence ------------------------------------------------------- */

/* {"type":"join"|"leave","member":ID,"count":N} to the room but except. */
static void announce(const chat_conn *cc, const wsock_conn *except, const char *type)
{
    char msg[128];
    int n = snprintf(msg, sizeof(msg), "{\"type\":\"%s\",\"member\":\"%s\",\"count\":%d}",
                     type, cc->member, wsock_room_count(cc->sel.room));

    wsock_publish_except(cc->sel.room, except, 1, msg, (apr_size_t)n);
}

static void welcome(wsock_conn *wc, const chat_conn *cc)
{
    char head[96], tail[32];
    apr_size_t len;
    char *msg;

    snprintf(head, sizeof(head), "{\"type\":\"welcome\",\"member\":\"%s\",\"room\":\"",
             cc->member);
    snprintf(tail, sizeof(tail), "\",\"count\":%d}", wsock_room_count(cc->sel.room));
    if ((msg = wsock_json_wrap(head, cc->sel.label, strlen(cc->sel.label), tail, &len))
        != NULL) {
        wsock_send(wc, 1, msg, len);
        free(msg);
    }
}

/* ---- connections ------------------------------------------------------ */

static int chat_open(wsock_conn *wc)
{
    const chat_cfg *cfg = wsock_handler_config(wc);
    chat_conn *cc;
    int rc;

    if ((cc = calloc(1, sizeof(*cc))) == NULL) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if ((rc = wsock_roomsel_join(wc, "chat", cfg->room_from_query, &cc->sel)) != 0) {
        free(cc);
        return rc;
    }
    snprintf(cc->member, sizeof(cc->member), "%lx-%x", (unsigned long)getpid(),
             (unsigned)apr_atomic_inc32(&members_seen) + 1);
    wsock_set_user_data(wc, cc);

    if (cfg->presence) {
        /* Sent from on_open, the welcome goes out right after the 101,
         * ahead of anything the room publishes to the newcomer. */
        welcome(wc, cc);
        announce(cc, wc, "join");
    }
    return 0;
}

static int chat_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    const chat_cfg *cfg = wsock_handler_config(wc);
    const chat_conn *cc = wsock_get_user_data(wc);
    const wsock_conn *except = cfg->echo ? NULL : wc;
    char head[96], *msg;
    apr_size_t mlen;

    if (!cfg->presence || !is_text) {
        wsock_publish_except(cc->sel.room, except, is_text, data, len);
        return 0;
    }
    snprintf(head, sizeof(head), "{\"type\":\"message\",\"from\":\"%s\",\"data\":\"",
             cc->member);
    if ((msg = wsock_json_wrap(head, data, len, "\"}", &mlen)) == NULL) {
        return 1011;
    }
    wsock_publish_except(cc->sel.room, except, 1, msg, mlen);
    free(msg);
    return 0;
}

static void chat_close(wsock_conn *wc, int code, const char *reason)
{
    const chat_cfg *cfg = wsock_handler_config(wc);
    chat_conn *cc = wsock_get_user_data(wc);

    (void)code;
    (void)reason;
    /* The connection has left its room already: the count is without it. */
    if (cfg->presence) {
        announce(cc, NULL, "leave");
    }
    wsock_set_user_data(wc, NULL);
    free(cc);
}

const wsock_handler wsock_chat_handler = {
    .api_version = WSOCK_API_VERSION,
    .name = "chat",
    .create_config = chat_create_config,
    .on_open = chat_open,
    .on_message = chat_message,
    .on_close = chat_close,
};
