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
#include "wsock_log.h"

APLOG_USE_MODULE(wsock);

#define CHAT_ROOM_ARG_MAX 64
#define CHAT_ROOM_KEY_MAX 128       /* a room name of the API */

typedef struct {
    int room_from_query;
    int echo;
    int presence;
} chat_cfg;

typedef struct {
    char room[CHAT_ROOM_KEY_MAX + 1];   /* the room's name in the API */
    const char *label;                  /* the room as clients know it */
    char member[32];                    /* server-assigned id */
} chat_conn;

/* Connections of this child so far: with the child's pid, a member id
 * that no other connection of the server has at the same time. */
static apr_uint32_t members_seen;

/* ---- configuration ------------------------------------------------- */

static const char chat_usage[] = "room=location|query, echo=on|off, presence=on|off";

/* "on"/"off" (any case) into *flag; 0 if it is neither. */
static int parse_onoff(const char *v, int *flag)
{
    if (strcasecmp(v, "on") == 0 || strcasecmp(v, "off") == 0) {
        *flag = strcasecmp(v, "on") == 0;
        return 1;
    }
    return 0;
}

static const char *chat_create_config(apr_pool_t *pool, int argc, char *const argv[],
                                      void **cfgp)
{
    chat_cfg *cfg = apr_pcalloc(pool, sizeof(*cfg));

    cfg->echo = 1;
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        const char *v = eq ? eq + 1 : "";
        apr_size_t klen = eq ? (apr_size_t)(eq - argv[i]) : 0;
        int ok;

        if (klen == 4 && strncasecmp(argv[i], "room", 4) == 0) {
            ok = strcasecmp(v, "location") == 0 || strcasecmp(v, "query") == 0;
            cfg->room_from_query = strcasecmp(v, "query") == 0;
        }
        else if (klen == 4 && strncasecmp(argv[i], "echo", 4) == 0) {
            ok = parse_onoff(v, &cfg->echo);
        }
        else if (klen == 8 && strncasecmp(argv[i], "presence", 8) == 0) {
            ok = parse_onoff(v, &cfg->presence);
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

/* ---- JSON ------------------------------------------------------------ */

/* Writes s[0..len) as the inside of a JSON string into out (if not NULL)
 * and returns the length.  s is valid UTF-8 (the codec checked it), which
 * JSON carries as it is; only '"', '\' and control characters (NUL
 * included) are escaped.  (APR 1.7 has no JSON escaper; apr_escape_json
 * comes with APR 2.) */
static apr_size_t json_escape(char *out, const char *s, apr_size_t len)
{
    static const char hex[] = "0123456789abcdef";
    apr_size_t n = 0;

    for (apr_size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        char sub = ch == '"' ? '"' : ch == '\\' ? '\\' : ch == '\n' ? 'n'
                   : ch == '\r' ? 'r' : ch == '\t' ? 't' : 0;

        if (sub) {
            if (out) {
                out[n] = '\\';
                out[n + 1] = sub;
            }
            n += 2;
        }
        else if (ch < 0x20) {
            if (out) {
                memcpy(out + n, "\\u00", 4);
                out[n + 4] = hex[ch >> 4];
                out[n + 5] = hex[ch & 15];
            }
            n += 6;
        }
        else {
            if (out) {
                out[n] = (char)ch;
            }
            n++;
        }
    }
    return n;
}

/* A malloc'ed JSON object: head, then s as an escaped string, then tail.
 * NULL if out of memory. */
static char *json_wrap(const char *head, const char *s, apr_size_t len, const char *tail,
                       apr_size_t *outlen)
{
    apr_size_t hl = strlen(head), tl = strlen(tail), el = json_escape(NULL, s, len);
    char *out = malloc(hl + el + tl + 1);

    if (out == NULL) {
        return NULL;
    }
    memcpy(out, head, hl);
    json_escape(out + hl, s, len);
    memcpy(out + hl + el, tail, tl + 1);
    *outlen = hl + el + tl;
    return out;
}

/* ---- presence ------------------------------------------------------- */

/* {"type":"join"|"leave","member":ID,"count":N} to the room but except. */
static void announce(const chat_conn *cc, const wsock_conn *except, const char *type)
{
    char msg[128];
    int n = snprintf(msg, sizeof(msg), "{\"type\":\"%s\",\"member\":\"%s\",\"count\":%d}",
                     type, cc->member, wsock_room_count(cc->room));

    wsock_publish_except(cc->room, except, 1, msg, (apr_size_t)n);
}

static void welcome(wsock_conn *wc, const chat_conn *cc)
{
    char head[96], tail[32];
    apr_size_t len;
    char *msg;

    snprintf(head, sizeof(head), "{\"type\":\"welcome\",\"member\":\"%s\",\"room\":\"",
             cc->member);
    snprintf(tail, sizeof(tail), "\",\"count\":%d}", wsock_room_count(cc->room));
    if ((msg = json_wrap(head, cc->label, strlen(cc->label), tail, &len)) != NULL) {
        wsock_send(wc, 1, msg, len);
        free(msg);
    }
}

/* ---- connections ------------------------------------------------------ */

static int valid_room_arg(const char *s)
{
    apr_size_t n = strlen(s);

    return n >= 1 && n <= CHAT_ROOM_ARG_MAX
           && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_.-") == n;
}

/* Whether the raw query names a "room" argument: wsock_query_arg() leaves
 * out one it cannot decode (room=a%00b), which must not fall back to the
 * section's room. */
static int query_has_room(const char *q)
{
    while (q && *q) {
        apr_size_t n = strcspn(q, "=&");

        if (n == 4 && strncasecmp(q, "room", 4) == 0) {
            return 1;
        }
        q = strchr(q, '&');
        q = q ? q + 1 : NULL;
    }
    return 0;
}

static int chat_open(wsock_conn *wc)
{
    const chat_cfg *cfg = wsock_handler_config(wc);
    const char *loc = wsock_location(wc);
    const char *arg = cfg->room_from_query ? wsock_query_arg(wc, "room") : NULL;
    chat_conn *cc;
    int n;

    if (cfg->room_from_query && !arg && query_has_room(wsock_query(wc))) {
        arg = "";                   /* there, but not decodable: refused below */
    }
    if (arg && !valid_room_arg(arg)) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(wc),
                      WSOCKNO(0610) "chat %s: refused, the room query argument must be "
                      "1-64 characters of A-Z a-z 0-9 _ . -", wsock_uri(wc));
        return HTTP_BAD_REQUEST;
    }
    if ((cc = calloc(1, sizeof(*cc))) == NULL) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    /* Query rooms live under their section: /a?room=x is not /b?room=x. */
    n = arg ? snprintf(cc->room, sizeof(cc->room), "%s?%s", loc, arg)
            : snprintf(cc->room, sizeof(cc->room), "%s", loc);
    if (n < 0 || (apr_size_t)n >= sizeof(cc->room) || wsock_join(wc, cc->room) != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, wsock_connection(wc),
                      WSOCKNO(0611) "chat %s: cannot join room '%s' (the section path "
                      "must be at most %d bytes with room=query, %d without)",
                      wsock_uri(wc), cc->room, CHAT_ROOM_KEY_MAX - CHAT_ROOM_ARG_MAX - 1,
                      CHAT_ROOM_KEY_MAX);
        free(cc);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    cc->label = arg ? cc->room + strlen(loc) + 1 : cc->room;
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
        wsock_publish_except(cc->room, except, is_text, data, len);
        return 0;
    }
    snprintf(head, sizeof(head), "{\"type\":\"message\",\"from\":\"%s\",\"data\":\"",
             cc->member);
    if ((msg = json_wrap(head, data, len, "\"}", &mlen)) == NULL) {
        return 1011;
    }
    wsock_publish_except(cc->room, except, 1, msg, mlen);
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
