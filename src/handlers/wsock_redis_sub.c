/*
 * wsock_redis_sub.c — the subscriber thread of a child's Redis relay.
 *
 * It owns one Redis connection in subscribe mode; its poll() loop watches
 * that socket and a wake-up pipe, follows the set of rooms with members in
 * this child (SUBSCRIBE and UNSUBSCRIBE as rooms come and go) and hands
 * each message to the local members (wsock_redis_local_deliver, which uses
 * wsock_publish_local).  After a reconnect it subscribes every room again
 * and, once Redis has answered a PING sent behind those SUBSCRIBEs, the
 * relay is available again.  A PING unanswered for WSockRedisTimeout
 * means Redis is gone even if the socket says nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "wsock_log.h"
#include "wsock_redis.h"
#include "wsock_redis_publish.h"
#include "wsock_threads.h"

APLOG_USE_MODULE(wsock);

static int wake_fds[2] = { -1, -1 };

typedef struct {
    char *room;
    int active;                 /* Redis confirmed the SUBSCRIBE */
} sub_entry;

typedef struct {
    redisContext *c;
    apr_hash_t *subs;           /* room -> sub_entry (malloc'ed) */
    apr_pool_t *tmp;
    int resync;                 /* waiting for the PONG behind the SUBSCRIBEs */
    int pings;                  /* PINGs without their PONG yet */
} subscriber;

static volatile apr_uint32_t rooms_dirty;  /* the set of local rooms changed */

static void wake(void)
{
    if (wake_fds[1] >= 0) {
        /* Non-blocking: a full pipe already holds a wake-up. */
        ssize_t rc = write(wake_fds[1], "w", 1);
        (void)rc;
    }
}

void wsock_redis_relay_rooms_changed(void)
{
    apr_atomic_set32(&rooms_dirty, 1);
    wake();
}

void wsock_redis_sub_wake(void)
{
    wake();
}

static void drain_wake(void)
{
    char buf[64];

    while (read(wake_fds[0], buf, sizeof(buf)) > 0) {
    }
}

/* Sleeps until deadline, or until stop. */
static void subscriber_pause(apr_time_t deadline)
{
    apr_time_t now;

    while (!wsock_redis_stopping() && (now = apr_time_now()) < deadline) {
        struct pollfd pf = { wake_fds[0], POLLIN, 0 };

        if (poll(&pf, 1, (int)((deadline - now) / 1000) + 1) > 0) {
            drain_wake();
            wsock_redis_local_run_handovers();      /* no delivery meanwhile */
        }
    }
}

static void forget_subs(subscriber *sb)
{
    for (apr_hash_index_t *hi = apr_hash_first(NULL, sb->subs); hi; hi = apr_hash_next(hi)) {
        sub_entry *e = apr_hash_this_val(hi);
        apr_hash_set(sb->subs, e->room, APR_HASH_KEY_STRING, NULL);
        free(e->room);
        free(e);
    }
}

/* SUBSCRIBE the rooms that have members here now, UNSUBSCRIBE the others. */
static void reconcile(subscriber *sb)
{
    const char *prefix = wsock_redis_conf.prefix;
    apr_array_header_t *want;
    apr_hash_t *wanted;

    apr_pool_clear(sb->tmp);
    want = wsock_redis_local_rooms(sb->tmp);
    wanted = apr_hash_make(sb->tmp);
    for (int i = 0; i < want->nelts; i++) {
        const char *room = APR_ARRAY_IDX(want, i, const char *);
        sub_entry *e = apr_hash_get(sb->subs, room, APR_HASH_KEY_STRING);

        apr_hash_set(wanted, room, APR_HASH_KEY_STRING, room);
        if (e == NULL) {
            const char *ch = apr_pstrcat(sb->tmp, prefix, room, NULL);

            if ((e = malloc(sizeof(*e))) == NULL || (e->room = strdup(room)) == NULL) {
                free(e);
                continue;           /* tried again at the next change */
            }
            e->active = 0;
            apr_hash_set(sb->subs, e->room, APR_HASH_KEY_STRING, e);
            redisAppendCommand(sb->c, "SUBSCRIBE %b", ch, strlen(ch));
        }
        else if (e->active) {
            /* Left and joined again before this pass: still subscribed. */
            wsock_redis_local_room_ready(room);
        }
    }
    for (apr_hash_index_t *hi = apr_hash_first(sb->tmp, sb->subs); hi;
         hi = apr_hash_next(hi)) {
        sub_entry *e = apr_hash_this_val(hi);

        if (apr_hash_get(wanted, e->room, APR_HASH_KEY_STRING) == NULL) {
            const char *ch = apr_pstrcat(sb->tmp, prefix, e->room, NULL);

            redisAppendCommand(sb->c, "UNSUBSCRIBE %b", ch, strlen(ch));
            apr_hash_set(sb->subs, e->room, APR_HASH_KEY_STRING, NULL);
            free(e->room);
            free(e);
        }
    }
}

/* From channel PREFIX "\x01conn": "TOKEN 0\nID" and a tagged message
 * ('T' text, 'B' binary, 'C' close: code in two bytes, reason) for the
 * connection ID, if this child holds it (wsock_redis_publish.c). */
static void deliver_to_connection(const char *m, apr_size_t len)
{
    char id[33], reason[124];
    apr_size_t rlen;

    if (len < 33) {
        return;
    }
    memcpy(id, m, 32);
    id[32] = '\0';
    m += 32;
    len -= 32;
    if (m[0] == 'T' || m[0] == 'B') {
        wsock_id_send_local(id, m[0] == 'T', m + 1, len - 1);
    }
    else if (m[0] == 'C' && len >= 3) {
        rlen = len - 3 < sizeof(reason) - 1 ? len - 3 : sizeof(reason) - 1;
        memcpy(reason, m + 3, rlen);
        reason[rlen] = '\0';
        wsock_id_close_local(id, ((unsigned char)m[1] << 8) | (unsigned char)m[2], reason);
    }
}

/* From channel PREFIX+ROOM: "TOKEN SERIAL\nJSON", "TOKEN SERIAL ID\nJSON"
 * (with history: ID is the stream id, which goes into the JSON), or a
 * resuming client's marker "TOKEN SERIAL sync\n".  To the members here. */
static void deliver(const redisReply *ch, const redisReply *msg)
{
    apr_size_t plen = strlen(wsock_redis_conf.prefix), jlen;
    const char *nl, *room, *json;
    char id[48] = "", *end, *withid = NULL;
    unsigned long serial;
    int mine;

    if (ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING
        || ch->len <= plen || memcmp(ch->str, wsock_redis_conf.prefix, plen) != 0
        || msg->len < 11 || msg->str[8] != ' '
        || (nl = memchr(msg->str, '\n', msg->len)) == NULL) {
        goto foreign;
    }
    room = ch->str + plen;
    serial = strtoul(msg->str + 9, &end, 10);
    if (serial > 0xffffffffUL || (end != nl && *end != ' ')) {
        goto foreign;
    }
    if (*end == ' ' && (apr_size_t)(nl - end - 1) < sizeof(id)) {
        memcpy(id, end + 1, (apr_size_t)(nl - end - 1));
        id[nl - end - 1] = '\0';
    }
    /* The sender is a connection of this child only if the token is ours. */
    mine = memcmp(msg->str, wsock_redis_child_token, 8) == 0;
    if (strcmp(id, "sync") == 0) {
        if (mine) {
            wsock_redis_local_synced((apr_uint32_t)serial);
        }
        return;
    }
    json = nl + 1;
    jlen = msg->len - (apr_size_t)(nl + 1 - msg->str);
    if (strcmp(room, WSOCK_REDIS_CONN_CHANNEL) == 0) {
        deliver_to_connection(json, jlen);
        return;
    }
    if (*id) {
        apr_uint64_t ms, seq;

        if (!wsock_redis_parse_id(id, &ms, &seq)
            || (withid = wsock_redis_with_id(json, jlen, id, &jlen)) == NULL) {
            goto foreign;
        }
        json = withid;
    }
    wsock_redis_local_deliver(room, mine ? (apr_uint32_t)serial : 0, *id ? id : NULL,
                              json, jlen);
    free(withid);
    return;
foreign:
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, wsock_redis_server,
                 WSOCKNO(0804) "redis relay: ignored a message that no mod_wsock sent");
}

/* One reply in subscribe mode; 0 with why if the connection is unusable. */
static int handle_reply(subscriber *sb, redisReply *r, char *why, apr_size_t n)
{
    const char *kind;

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, n, "subscriber: %s", r->str);
        return 0;
    }
    if (r->type == REDIS_REPLY_STATUS) {
        kind = r->str;              /* +PONG while subscribed to nothing */
    }
    else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1
             || r->element[0]->type != REDIS_REPLY_STRING) {
        return 1;
    }
    else {
        kind = r->element[0]->str;
    }
    if (r->type == REDIS_REPLY_ARRAY && strcmp(kind, "message") == 0 && r->elements == 3) {
        deliver(r->element[1], r->element[2]);
    }
    else if (r->type == REDIS_REPLY_ARRAY && strcmp(kind, "subscribe") == 0
             && r->elements == 3
             && r->element[1]->type == REDIS_REPLY_STRING
             && r->element[1]->len > strlen(wsock_redis_conf.prefix)) {
        const char *room = r->element[1]->str + strlen(wsock_redis_conf.prefix);
        sub_entry *e = apr_hash_get(sb->subs, room, APR_HASH_KEY_STRING);

        if (e) {
            e->active = 1;
            wsock_redis_local_room_ready(room);
        }
    }
    else if (strcasecmp(kind, "pong") == 0) {
        sb->pings--;
        if (sb->resync) {
            sb->resync = 0;
            wsock_redis_state(WSOCK_REDIS_SUB, 1, NULL);
        }
    }
    return 1;
}

static void subscriber_drop(subscriber *sb, const char *why)
{
    redisFree(sb->c);
    sb->c = NULL;
    forget_subs(sb);
    wsock_redis_state(WSOCK_REDIS_SUB, 0, why);
    /* The publisher's connection went to the same server: most likely it
     * is dead too, and a PUBLISH into it would be lost. */
    wsock_redis_pub_wake(1);
}

/* Connects, subscribes every room, and asks for the PONG that says all
 * of them are in place.  0 with why on a failure. */
static int subscriber_connect(subscriber *sb, char *why, apr_size_t n)
{
    if ((sb->c = wsock_redis_connect(0, wsock_redis_conf.timeout, why, n)) == NULL) {
        return 0;
    }
    reconcile(sb);
    /* every child hears what is sent to one connection by its id */
    redisAppendCommand(sb->c, "SUBSCRIBE %s%s", wsock_redis_conf.prefix,
                       WSOCK_REDIS_CONN_CHANNEL);
    redisAppendCommand(sb->c, "PING");
    sb->pings = 1;
    sb->resync = 1;
    if (!wsock_redis_flush(sb->c)) {
        snprintf(why, n, "subscriber: %s", sb->c->errstr);
        redisFree(sb->c);
        sb->c = NULL;
        forget_subs(sb);
        return 0;
    }
    return 1;
}

/* Reads what the socket has; 0 with why if the connection is unusable. */
static int subscriber_read(subscriber *sb, char *why, apr_size_t n)
{
    void *r;

    if (redisBufferRead(sb->c) != REDIS_OK) {
        snprintf(why, n, "subscriber: %s", sb->c->errstr);
        return 0;
    }
    for (;;) {
        int ok;

        if (redisGetReplyFromReader(sb->c, &r) != REDIS_OK) {
            snprintf(why, n, "subscriber: %s", sb->c->errstr);
            return 0;
        }
        if (r == NULL) {
            return 1;
        }
        ok = handle_reply(sb, r, why, n);
        freeReplyObject(r);
        if (!ok) {
            return 0;
        }
    }
}

void *APR_THREAD_FUNC wsock_redis_sub_main(apr_thread_t *t, void *data)
{
    apr_interval_time_t backoff = WSOCK_REDIS_BACKOFF_MIN;
    int silence_ms = (int)(wsock_redis_conf.timeout / 1000);
    subscriber sb = { 0 };
    char why[256];

    wsock_thread_name("wsock-redis-sub");       /* top -H; the signal-mask test */
    (void)data;
    sb.subs = apr_hash_make(apr_thread_pool_get(t));
    apr_pool_create(&sb.tmp, apr_thread_pool_get(t));
    while (!wsock_redis_stopping()) {
        struct pollfd pf[2];

        if (sb.c == NULL) {
            if (!subscriber_connect(&sb, why, sizeof(why))) {
                wsock_redis_state(WSOCK_REDIS_SUB, 0, why);
                subscriber_pause(apr_time_now() + wsock_redis_backoff(&backoff));
                continue;
            }
            backoff = WSOCK_REDIS_BACKOFF_MIN;
        }
        pf[0].fd = sb.c->fd;
        pf[0].events = POLLIN;
        pf[1].fd = wake_fds[0];
        pf[1].events = POLLIN;
        pf[0].revents = pf[1].revents = 0;
        if (poll(pf, 2, silence_ms) < 0 && errno != EINTR) {
            subscriber_drop(&sb, "subscriber: poll failed");
            continue;
        }
        if (pf[0].revents == 0 && pf[1].revents == 0) {
            /* Silence: is Redis still there?  A PING unanswered for a
             * whole timeout means no. */
            if (sb.pings > 0) {
                snprintf(why, sizeof(why), "subscriber: no answer to PING within %d ms",
                         silence_ms);
                subscriber_drop(&sb, why);
                continue;
            }
            redisAppendCommand(sb.c, "PING");
            sb.pings++;
        }
        if (pf[1].revents) {
            drain_wake();
            if (wsock_redis_stopping()) {
                break;
            }
            if (apr_atomic_xchg32(&rooms_dirty, 0)) {
                reconcile(&sb);
            }
            /* Between two deliveries: resuming clients go live here. */
            wsock_redis_local_run_handovers();
        }
        if (!wsock_redis_flush(sb.c)) {
            snprintf(why, sizeof(why), "subscriber: %s", sb.c->errstr);
            subscriber_drop(&sb, why);
            continue;
        }
        if (pf[0].revents && !subscriber_read(&sb, why, sizeof(why))) {
            subscriber_drop(&sb, why);
        }
    }
    if (sb.c) {
        redisFree(sb.c);
    }
    forget_subs(&sb);
    wsock_redis_local_drop_handovers();
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

apr_status_t wsock_redis_sub_init(void)
{
    if (pipe(wake_fds) != 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    for (int i = 0; i < 2; i++) {
        fcntl(wake_fds[i], F_SETFL, O_NONBLOCK);
        fcntl(wake_fds[i], F_SETFD, FD_CLOEXEC);
    }
    return APR_SUCCESS;
}

void wsock_redis_sub_close(void)
{
    for (int i = 0; i < 2; i++) {
        if (wake_fds[i] >= 0) {
            close(wake_fds[i]);
            wake_fds[i] = -1;
        }
    }
}
