/*
 * wsock_redis_relay.c — the two threads of a child's Redis relay.
 *
 * The publisher owns one Redis connection and a bounded queue: client
 * messages are queued by on_message (which never waits for Redis) and
 * sent as pipelined PUBLISHes.  The subscriber owns another connection in
 * subscribe mode; its poll() loop watches that socket and a wake-up pipe,
 * follows the set of rooms with members in this child (SUBSCRIBE and
 * UNSUBSCRIBE as rooms come and go) and hands each message to the local
 * members with wsock_publish_local().  Every message, also to the
 * sender's own room-mates here, goes through Redis: all receivers in the
 * cluster see a room's messages in the one order Redis gave them.
 *
 * Either connection failing makes the relay unavailable: clients are told
 * (wsock_redis_local_set_up), one line is logged, and each thread
 * reconnects with exponential back-off.  The subscriber subscribes every
 * room again and, once Redis has answered a PING sent behind those
 * SUBSCRIBEs, the relay is available again.
 *
 * RESP is hiredis's business; this file only drives its buffers.
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
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "wsock_log.h"
#include "wsock_redis.h"

APLOG_USE_MODULE(wsock);

#define BACKOFF_MIN (200 * 1000)                /* microseconds */
#define BACKOFF_MAX (5 * APR_USEC_PER_SEC)
#define PUBLISH_BATCH 256

char wsock_redis_child_token[9];

typedef struct pub_item {
    struct pub_item *next;
    long session_ttl;                   /* > 0: a session record, not a message */
    long history_max, history_age_ms;   /* both 0: no history */
    apr_size_t chan_len, head_len, len;
    char data[];                /* channel, then envelope head and JSON */
} pub_item;

/* With history, a message is appended to the room's stream and published
 * with its new id in one step: Redis runs a script atomically, so the
 * channel carries the messages in the stream's order (what resuming
 * relies on).  KEYS[1] is the stream and the channel; ARGV: envelope
 * head, JSON, MAXLEN (0: none), age in ms (0: none). */
static const char history_script[] =
    "local maxlen, age = tonumber(ARGV[3]), tonumber(ARGV[4]) "
    "local id "
    "if maxlen > 0 then "
    "  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'j', ARGV[2]) "
    "else "
    "  id = redis.call('XADD', KEYS[1], '*', 'j', ARGV[2]) "
    "end "
    "if age > 0 then "
    "  local t = redis.call('TIME') "
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "  if now > age then redis.call('XTRIM', KEYS[1], 'MINID', '~', now - age) end "
    "  redis.call('PEXPIRE', KEYS[1], age) "
    "end "
    "redis.call('PUBLISH', KEYS[1], ARGV[1] .. ' ' .. id .. '\\n' .. ARGV[2]) "
    "return id";

static server_rec *srv;
static apr_thread_t *sub_thread, *pub_thread;
static volatile apr_uint32_t stopping;
static volatile apr_uint32_t up_flag;           /* mirrors the relay state */
static int wake_fds[2] = { -1, -1 };            /* wakes the subscriber */
static unsigned int jitter_seed;

static apr_thread_mutex_t *q_mutex;             /* the publisher's queue */
static apr_thread_cond_t *q_cond;
static pub_item *q_head, *q_tail;
static int q_len;
static int pub_reconnect;                       /* drop the publisher's connection */

static apr_thread_mutex_t *state_mutex;
static int sub_ok, pub_ok;
static int announced = -1;                      /* what was logged last */

/* ---- state ------------------------------------------------------------ */

/* A connection (the subscriber's or the publisher's) changed; why says
 * why it failed.  One log line per change of the relay's state. */
static void set_state(int *which, int ok, const char *why)
{
    int up;

    apr_thread_mutex_lock(state_mutex);
    *which = ok;
    up = sub_ok && pub_ok;
    apr_atomic_set32(&up_flag, (apr_uint32_t)up);
    wsock_redis_local_set_up(up);
    if (up != announced && (up || why)) {
        if (up) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, srv,
                         WSOCKNO(0801) "redis relay: connected to %s",
                         wsock_redis_conf.address);
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, srv,
                         WSOCKNO(0802) "redis relay: %s unavailable (%s); clients are told, "
                         "retrying with back-off", wsock_redis_conf.address, why);
        }
        announced = up;
    }
    apr_thread_mutex_unlock(state_mutex);
}

static apr_interval_time_t next_backoff(apr_interval_time_t b)
{
    return b * 2 > BACKOFF_MAX ? BACKOFF_MAX : b * 2;
}

/* Between half and all of b, so that the children of a cluster do not all
 * knock at the same moment. */
static apr_interval_time_t jittered(apr_interval_time_t b)
{
    return b / 2 + (apr_interval_time_t)(rand_r(&jitter_seed) % (int)(b / 2 + 1));
}

/* ---- connecting --------------------------------------------------------- */

/* A reply that is not an error, or NULL with *why set; frees an error. */
static redisReply *expect_ok(redisContext *c, redisReply *r, const char *cmd, char *why,
                             apr_size_t n)
{
    if (r == NULL) {
        snprintf(why, n, "%s: %s", cmd, c->errstr[0] ? c->errstr : "no reply");
    }
    else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, n, "%s: %s", cmd, r->str);
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

redisContext *wsock_redis_connect(int select_db, char *why, apr_size_t n)
{
    const wsock_redis_settings *cf = &wsock_redis_conf;
    struct timeval tv = { (time_t)(cf->timeout / APR_USEC_PER_SEC),
                          (suseconds_t)(cf->timeout % APR_USEC_PER_SEC) };
    redisContext *c = cf->unix_path ? redisConnectUnixWithTimeout(cf->unix_path, tv)
                                    : redisConnectWithTimeout(cf->host, cf->port, tv);
    redisReply *r;

    if (c == NULL || c->err) {
        snprintf(why, n, "connect: %s", c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK
        || (cf->host && redisEnableKeepAlive(c) != REDIS_OK)) {
        snprintf(why, n, "socket options: %s", c->errstr);
        goto fail;
    }
    if (cf->password) {
        r = cf->user ? redisCommand(c, "AUTH %s %s", cf->user, cf->password)
                     : redisCommand(c, "AUTH %s", cf->password);
        if ((r = expect_ok(c, r, "AUTH", why, n)) == NULL) {
            goto fail;
        }
        freeReplyObject(r);
    }
    if (select_db && cf->database) {
        r = redisCommand(c, "SELECT %d", cf->database);
        if ((r = expect_ok(c, r, "SELECT", why, n)) == NULL) {
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    if (c) {
        redisFree(c);
    }
    return NULL;
}

/* Writes what hiredis has buffered (small commands; the socket has the
 * command timeout). */
static int flush(redisContext *c)
{
    int done = 0;

    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return 0;
        }
    }
    return 1;
}

/* ---- the publisher ------------------------------------------------------ */

static void free_items(pub_item *it)
{
    while (it) {
        pub_item *next = it->next;
        free(it);
        it = next;
    }
}

/* Under q_mutex: waits until deadline (0: until woken), or stop. */
static void publisher_wait(apr_time_t deadline)
{
    if (deadline == 0) {
        apr_thread_cond_wait(q_cond, q_mutex);
    }
    else if (apr_time_now() < deadline) {
        apr_thread_cond_timedwait(q_cond, q_mutex, deadline - apr_time_now());
    }
}

/* Redis refused one command (a key of another type, an ACL without the
 * right): that message is lost, the connection is fine.  Logged when the
 * error differs from the last one, not once per message. */
static void refused(const char *err)
{
    static char last[128];

    if (strncmp(last, err, sizeof(last) - 1) != 0) {
        snprintf(last, sizeof(last), "%s", err);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, srv,
                     WSOCKNO(0808) "redis relay: Redis refused a message (%s); it is lost",
                     err);
    }
}

/* Sends a batch as pipelined commands; 0 with why if the connection
 * failed. */
static int publish_batch(redisContext *c, pub_item *batch, char *why, apr_size_t n)
{
    int sent = 0;

    for (pub_item *it = batch; it; it = it->next, sent++) {
        const char *head = it->data + it->chan_len;

        if (it->session_ttl > 0) {
            /* key, then NUL-terminated field values (wsock_redis_session.c) */
            static const char *const names[] = { "room", "member", "name", "last_id" };
            const char *argv[10] = { "HSET", it->data };
            const char *v = it->data + it->chan_len + 1;

            for (int k = 0; k < 4; k++, v += strlen(v) + 1) {
                argv[2 + 2 * k] = names[k];
                argv[3 + 2 * k] = v;
            }
            redisAppendCommandArgv(c, 10, argv, NULL);
            redisAppendCommand(c, "EXPIRE %s %ld", it->data, it->session_ttl);
            sent++;                 /* two replies */
        }
        else if (it->history_max == 0 && it->history_age_ms == 0) {
            redisAppendCommand(c, "PUBLISH %b %b", it->data, it->chan_len, head, it->len);
        }
        else {
            /* the head without its '\n': the script adds " ID\n" */
            redisAppendCommand(c, "EVAL %s 1 %b %b %b %ld %ld", history_script, it->data,
                               it->chan_len, head, it->head_len - 1, head + it->head_len,
                               it->len - it->head_len, it->history_max, it->history_age_ms);
        }
    }
    while (sent--) {
        redisReply *r = NULL;

        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            snprintf(why, n, "PUBLISH: %s", c->errstr);
            return 0;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            refused(r->str);
        }
        freeReplyObject(r);
    }
    return 1;
}

static void *APR_THREAD_FUNC publisher_main(apr_thread_t *t, void *data)
{
    apr_interval_time_t backoff = BACKOFF_MIN;
    redisContext *c = NULL;
    char why[256];

    (void)data;
    while (!apr_atomic_read32(&stopping)) {
        pub_item *batch = NULL, **tail = &batch;
        int reconnect;

        if (c == NULL) {
            apr_thread_mutex_lock(q_mutex);
            pub_reconnect = 0;          /* this is the reconnect */
            apr_thread_mutex_unlock(q_mutex);
            if ((c = wsock_redis_connect(1, why, sizeof(why))) == NULL) {
                set_state(&pub_ok, 0, why);
                apr_thread_mutex_lock(q_mutex);
                publisher_wait(apr_time_now() + jittered(backoff));
                apr_thread_mutex_unlock(q_mutex);
                backoff = next_backoff(backoff);
                continue;
            }
            backoff = BACKOFF_MIN;
            set_state(&pub_ok, 1, NULL);
        }
        apr_thread_mutex_lock(q_mutex);
        while (q_head == NULL && !pub_reconnect && !apr_atomic_read32(&stopping)) {
            publisher_wait(0);
        }
        reconnect = pub_reconnect;
        pub_reconnect = 0;
        for (int k = 0; q_head && k < PUBLISH_BATCH; k++) {
            *tail = q_head;
            q_head = q_head->next;
            tail = &(*tail)->next;
            *tail = NULL;
            q_len--;
        }
        if (q_head == NULL) {
            q_tail = NULL;
        }
        apr_thread_mutex_unlock(q_mutex);

        if (reconnect || (batch && !publish_batch(c, batch, why, sizeof(why)))) {
            /* Queued messages are lost with the connection: clients were
             * told the relay is down, and stale messages must not pop up
             * minutes later after a restart. */
            redisFree(c);
            c = NULL;
            set_state(&pub_ok, 0, reconnect ? "the subscriber lost its connection" : why);
            apr_thread_mutex_lock(q_mutex);
            free_items(q_head);
            q_head = q_tail = NULL;
            q_len = 0;
            apr_thread_mutex_unlock(q_mutex);
        }
        free_items(batch);
    }
    if (c) {
        redisFree(c);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Puts it on the publisher's queue, or frees it: APR_ENOSPC if full. */
static apr_status_t enqueue(pub_item *it)
{
    apr_thread_mutex_lock(q_mutex);
    if (q_len >= wsock_redis_conf.queue_max) {
        apr_thread_mutex_unlock(q_mutex);
        free(it);
        return APR_ENOSPC;
    }
    if (q_tail) {
        q_tail->next = it;
    }
    else {
        q_head = it;
    }
    q_tail = it;
    q_len++;
    apr_thread_cond_signal(q_cond);
    apr_thread_mutex_unlock(q_mutex);
    return APR_SUCCESS;
}

apr_status_t wsock_redis_relay_publish(const wsock_redis_cfg *cfg, const char *room,
                                       apr_uint32_t except_serial, const char *json,
                                       apr_size_t len)
{
    const char *prefix = wsock_redis_conf.prefix;
    apr_size_t plen = strlen(prefix), rlen = strlen(room);
    char head[32];
    int hl;
    pub_item *it;

    if (!apr_atomic_read32(&up_flag)) {
        return APR_EAGAIN;
    }
    /* The envelope: who sent it (child token, and the sender's serial
     * when it must not get it back), then the JSON for the clients. */
    hl = snprintf(head, sizeof(head), "%s %u\n", wsock_redis_child_token,
                  (unsigned)except_serial);
    if ((it = malloc(sizeof(*it) + plen + rlen + (apr_size_t)hl + len)) == NULL) {
        return APR_ENOMEM;
    }
    it->next = NULL;
    it->session_ttl = 0;
    it->history_max = cfg->history_max;
    it->history_age_ms = cfg->history_age_ms;
    it->chan_len = plen + rlen;
    it->head_len = (apr_size_t)hl;
    it->len = (apr_size_t)hl + len;
    memcpy(it->data, prefix, plen);
    memcpy(it->data + plen, room, rlen);
    memcpy(it->data + it->chan_len, head, (apr_size_t)hl);
    memcpy(it->data + it->chan_len + hl, json, len);
    return enqueue(it);
}

apr_status_t wsock_redis_relay_save(const char *key, long ttl, const char *const values[4])
{
    apr_size_t klen = strlen(key), len = klen + 1;
    pub_item *it;
    char *p;

    for (int k = 0; k < 4; k++) {
        len += strlen(values[k]) + 1;
    }
    if ((it = calloc(1, sizeof(*it) + len)) == NULL) {
        return APR_ENOMEM;
    }
    it->session_ttl = ttl;
    it->chan_len = klen;
    p = it->data;
    memcpy(p, key, klen + 1);
    p += klen + 1;
    for (int k = 0; k < 4; k++) {
        apr_size_t n = strlen(values[k]) + 1;
        memcpy(p, values[k], n);
        p += n;
    }
    return enqueue(it);
}

/* ---- the subscriber ----------------------------------------------------- */

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

void wsock_redis_relay_rooms_changed(void)
{
    if (wake_fds[1] >= 0) {
        /* Non-blocking: a full pipe already holds a wake-up. */
        ssize_t rc = write(wake_fds[1], "r", 1);
        (void)rc;
    }
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

    while (!apr_atomic_read32(&stopping) && (now = apr_time_now()) < deadline) {
        struct pollfd pf = { wake_fds[0], POLLIN, 0 };

        if (poll(&pf, 1, (int)((deadline - now) / 1000) + 1) > 0) {
            drain_wake();
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
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, srv,
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
            set_state(&sub_ok, 1, NULL);
        }
    }
    return 1;
}

static void subscriber_drop(subscriber *sb, const char *why)
{
    redisFree(sb->c);
    sb->c = NULL;
    forget_subs(sb);
    set_state(&sub_ok, 0, why);
    /* The publisher's connection went to the same server: most likely it
     * is dead too, and a PUBLISH into it would be lost. */
    apr_thread_mutex_lock(q_mutex);
    pub_reconnect = 1;
    apr_thread_cond_signal(q_cond);
    apr_thread_mutex_unlock(q_mutex);
}

/* Connects, subscribes every room, and asks for the PONG that says all
 * of them are in place.  0 with why on a failure. */
static int subscriber_connect(subscriber *sb, char *why, apr_size_t n)
{
    if ((sb->c = wsock_redis_connect(0, why, n)) == NULL) {
        return 0;
    }
    reconcile(sb);
    redisAppendCommand(sb->c, "PING");
    sb->pings = 1;
    sb->resync = 1;
    if (!flush(sb->c)) {
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

static void *APR_THREAD_FUNC subscriber_main(apr_thread_t *t, void *data)
{
    apr_interval_time_t backoff = BACKOFF_MIN;
    int silence_ms = (int)(wsock_redis_conf.timeout / 1000);
    subscriber sb = { 0 };
    char why[256];

    (void)data;
    sb.subs = apr_hash_make(apr_thread_pool_get(t));
    apr_pool_create(&sb.tmp, apr_thread_pool_get(t));
    while (!apr_atomic_read32(&stopping)) {
        struct pollfd pf[2];

        if (sb.c == NULL) {
            if (!subscriber_connect(&sb, why, sizeof(why))) {
                set_state(&sub_ok, 0, why);
                subscriber_pause(apr_time_now() + jittered(backoff));
                backoff = next_backoff(backoff);
                continue;
            }
            backoff = BACKOFF_MIN;
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
            if (apr_atomic_read32(&stopping)) {
                break;
            }
            reconcile(&sb);
        }
        if (!flush(sb.c)) {
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
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* ---- life ----------------------------------------------------------------- */

static apr_status_t stop_cleanup(void *data)
{
    (void)data;
    wsock_redis_relay_stop();
    return APR_SUCCESS;
}

apr_status_t wsock_redis_relay_start(apr_pool_t *pchild, server_rec *s)
{
    unsigned char rnd[4];
    apr_status_t rv;

    srv = s;
    if ((rv = apr_generate_random_bytes(rnd, sizeof(rnd))) != APR_SUCCESS) {
        return rv;
    }
    snprintf(wsock_redis_child_token, sizeof(wsock_redis_child_token), "%02x%02x%02x%02x",
             rnd[0], rnd[1], rnd[2], rnd[3]);
    jitter_seed = (unsigned)rnd[0] << 24 | (unsigned)rnd[1] << 16 | (unsigned)getpid();
    if (pipe(wake_fds) != 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    fcntl(wake_fds[0], F_SETFL, O_NONBLOCK);
    fcntl(wake_fds[1], F_SETFL, O_NONBLOCK);
    fcntl(wake_fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(wake_fds[1], F_SETFD, FD_CLOEXEC);
    /* A pre-cleanup: the threads' pools are sub-pools of pchild, which
     * are destroyed before pchild's ordinary cleanups run. */
    apr_pool_pre_cleanup_register(pchild, NULL, stop_cleanup);
    if ((rv = apr_thread_mutex_create(&q_mutex, APR_THREAD_MUTEX_DEFAULT, pchild))
        != APR_SUCCESS
        || (rv = apr_thread_cond_create(&q_cond, pchild)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&state_mutex, APR_THREAD_MUTEX_DEFAULT, pchild))
           != APR_SUCCESS
        || (rv = apr_thread_create(&pub_thread, NULL, publisher_main, NULL, pchild))
           != APR_SUCCESS) {
        return rv;
    }
    return apr_thread_create(&sub_thread, NULL, subscriber_main, NULL, pchild);
}

void wsock_redis_relay_stop(void)
{
    apr_status_t rv;

    apr_atomic_set32(&stopping, 1);
    apr_atomic_set32(&up_flag, 0);
    if (q_mutex) {
        apr_thread_mutex_lock(q_mutex);
        apr_thread_cond_broadcast(q_cond);
        apr_thread_mutex_unlock(q_mutex);
    }
    wsock_redis_relay_rooms_changed();
    if (pub_thread) {
        apr_thread_join(&rv, pub_thread);
    }
    if (sub_thread) {
        apr_thread_join(&rv, sub_thread);
    }
    pub_thread = sub_thread = NULL;
    if (q_mutex) {
        free_items(q_head);
        q_head = q_tail = NULL;
        q_len = 0;
    }
    for (int i = 0; i < 2; i++) {
        if (wake_fds[i] >= 0) {
            close(wake_fds[i]);
            wake_fds[i] = -1;
        }
    }
}
