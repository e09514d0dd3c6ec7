/*
 * wsock_redis.h — the Redis relay, shared by its files:
 *
 *   wsock_redis_conf.c   server-wide WSockRedis* directives
 *   wsock_redis.c        the handler (WSockHandler redis ...)
 *   wsock_redis_local.c  this child's relay clients, rooms and relay state
 *   wsock_redis_relay.c  the relay's state, connecting, its threads' life
 *   wsock_redis_pub.c    the publisher thread: queue, PUBLISH/EVAL, records
 *   wsock_redis_sub.c    the subscriber thread: SUBSCRIBE, delivery
 *   wsock_redis_catchup.c  the resumer thread: catching resuming clients up
 *   wsock_redis_history.c  a room's stream: what a resume reads, in pages
 *   wsock_redis_held.c   live messages kept for a client catching up
 *   wsock_redis_session.c  session records: a client's room, id, name, last id
 *
 * Documented in docs/redis.md.
 */
#ifndef WSOCK_REDIS_H
#define WSOCK_REDIS_H

#include <pthread.h>

#include <httpd.h>
#include <http_config.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "wsock.h"
#include "wsock_roomsel.h"

/* ---- server-wide settings (wsock_redis_conf.c) ----------------------- */

typedef struct {
    const char *address;        /* as configured, for log lines */
    const char *host;           /* TCP host, or NULL */
    int port;
    const char *unix_path;      /* unix socket, or NULL */
    const char *user;           /* ACL user, or NULL */
    const char *password;       /* or NULL: no AUTH */
    int database;
    const char *prefix;         /* channel (and key) prefix */
    apr_interval_time_t timeout;
    int queue_max;              /* messages waiting for the publisher */
    apr_size_t queue_max_bytes; /* and their bytes */
    int in_use;                 /* some WSockHandler redis line exists */
} wsock_redis_settings;

extern wsock_redis_settings wsock_redis_conf;

/* The handler's lines call this: the child then starts the relay. */
void wsock_redis_conf_mark_used(apr_pool_t *pconf);

const char *wsock_redis_set_address(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_redis_set_auth(cmd_parms *cmd, void *conf, const char *a, const char *b);
const char *wsock_redis_set_database(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_redis_set_prefix(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_redis_set_timeout(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_redis_set_queue(cmd_parms *cmd, void *conf, const char *msgs,
                                  const char *bytes);

/* A size: bytes, or with a suffix K, M or G (powers of 1024), from min to
 * max, into *out; 0 if it is not one. */
int wsock_redis_parse_size(const char *s, apr_size_t min, apr_size_t max, apr_size_t *out);

/* The entries of mod_wsock's command table (server config only). */
#define WSOCK_REDIS_DIRECTIVES \
    AP_INIT_TAKE1("WSockRedis", wsock_redis_set_address, NULL, RSRC_CONF, \
                  "Redis server of the redis handler: host:port or unix:/path"), \
    AP_INIT_TAKE12("WSockRedisAuth", wsock_redis_set_auth, NULL, RSRC_CONF, \
                   "[ACL user] password for Redis"), \
    AP_INIT_TAKE1("WSockRedisDatabase", wsock_redis_set_database, NULL, RSRC_CONF, \
                  "Redis database number; default 0"), \
    AP_INIT_TAKE1("WSockRedisPrefix", wsock_redis_set_prefix, NULL, RSRC_CONF, \
                  "Prefix of the Redis channels; default wsock:"), \
    AP_INIT_TAKE1("WSockRedisTimeout", wsock_redis_set_timeout, NULL, RSRC_CONF, \
                  "Seconds for Redis connects and commands; default 5"), \
    AP_INIT_TAKE12("WSockRedisQueue", wsock_redis_set_queue, NULL, RSRC_CONF, \
                   "Messages [and bytes] waiting to be published, per child; " \
                   "default 4096 16M")

/* ---- a location's arguments (wsock_redis.c) ------------------------- */

typedef struct {
    int room_from_query;
    int echo;
    long history_max;           /* stream entries kept (MAXLEN ~); 0: no bound */
    long history_age_ms;        /* and/or their age (MINID ~, PEXPIRE); 0: none */
    long session_ttl;           /* seconds a session record lives; 0: no sessions */
    long resume_max;            /* messages a resume sends (and holds) at most */
    apr_size_t resume_max_bytes;    /* and their bytes */
} wsock_redis_cfg;

#define WSOCK_REDIS_RESUME_DEFAULT 1000
#define WSOCK_REDIS_RESUME_BYTES_DEFAULT (1024 * 1024)

#define WSOCK_REDIS_HISTORY(cfg) ((cfg)->history_max > 0 || (cfg)->history_age_ms > 0)

/* ---- live messages kept for a client catching up (wsock_redis_held.c) - */

/* One relayed message, shared by every client that keeps it. */
typedef struct wsock_redis_held_msg {
    volatile apr_uint32_t refs;
    char id[48];                /* stream id, or "" */
    apr_size_t len;
    char json[];
} wsock_redis_held_msg;

typedef struct wsock_redis_held_node wsock_redis_held_node;

/* A client's copies, oldest first, within max_n messages and max_bytes. */
typedef struct {
    wsock_redis_held_node *head, **tail;
    long n, max_n;
    apr_size_t bytes, max_bytes;
    char after[48];             /* copies up to this id are not needed ("": all are) */
    char lost[48];              /* the newest copy dropped for the bound ("?": no id) */
} wsock_redis_held_list;

/* Outside any lock: a new message with one reference (the caller's). */
wsock_redis_held_msg *wsock_redis_held_make(const char *id, const char *json, apr_size_t len);
void wsock_redis_held_release(wsock_redis_held_msg *m);
/* The rest under the lock that guards the list (the local mutex). */
void wsock_redis_held_init(wsock_redis_held_list *l, long max_n, apr_size_t max_bytes);
/* Keeps m, the message with id (a reference of its own; NULL: it could
 * not be copied, and counts as lost), dropping the oldest beyond the
 * bound. */
void wsock_redis_held_add(wsock_redis_held_list *l, wsock_redis_held_msg *m, const char *id);
/* Copies up to id are not needed (they come with the stream): dropped,
 * and no longer kept. */
void wsock_redis_held_set_after(wsock_redis_held_list *l, const char *id);
/* The oldest needed copy, its reference given to the caller; NULL if none. */
wsock_redis_held_msg *wsock_redis_held_take(wsock_redis_held_list *l);
/* A taken copy that could not be sent goes back in front (with the
 * caller's reference). */
void wsock_redis_held_put_back(wsock_redis_held_list *l, wsock_redis_held_msg *m);
/* Whether a needed copy was dropped for the bound. */
int wsock_redis_held_lost(const wsock_redis_held_list *l);
void wsock_redis_held_clear(wsock_redis_held_list *l);

/* ---- this child's clients, rooms and relay state (wsock_redis_local.c) - */

typedef struct wsock_redis_catchup wsock_redis_catchup;

typedef struct wsock_redis_client wsock_redis_client;
struct wsock_redis_client {
    wsock_conn *wc;
    wsock_roomsel sel;
    apr_uint32_t serial;        /* unique in this child */
    char member[32];            /* child token and serial: unique in the cluster */
    char session[33];           /* session token, or "" */
    char name[72];              /* the client's name (from ?name=), or "" */
    /* The connection's reference, and one per holder on another thread
     * (wsock_redis_client_ref): the last one frees it. */
    volatile apr_uint32_t refs;
    /* What the relay tells the client (welcome, state changes) goes out
     * under tell_mx, in order: the welcome first. */
    pthread_mutex_t tell_mx;
    int welcomed, told_up;      /* under tell_mx */
    /* under the local mutex: */
    wsock_redis_client *prev, *next;
    char seen[48];              /* a stream id it has seen, for its session record */
    int gone;                   /* its connection ended (on_close) */
    int greeting;               /* a thread is welcoming it */
    int joined;                 /* a resuming client went live */
    /* catching up (a resuming client), under the local mutex: */
    int catching_up;
    int synced;                 /* the subscriber saw its sync marker */
    int interrupted;            /* the relay went down meanwhile */
    wsock_redis_held_list held;
    wsock_redis_client *next_catching, *next_handover;
    wsock_redis_catchup *cu;    /* the resumer's (wsock_redis_catchup.c) */
};

apr_status_t wsock_redis_local_init(apr_pool_t *pchild);

/* A new client of wc, with the connection's reference; NULL without memory. */
wsock_redis_client *wsock_redis_client_new(wsock_conn *wc);
/* Another reference, taken by a thread that holds one already, or in a
 * callback of the connection (it also keeps the connection: wsock_ref). */
void wsock_redis_client_ref(wsock_redis_client *cl);
void wsock_redis_client_unref(wsock_redis_client *cl);
/* Gives back the connection's own reference (on_close, or a refusal). */
void wsock_redis_client_release(wsock_redis_client *cl);

#define WSOCK_REDIS_ROOMS_CHANGED 1     /* the subscriber must follow */
#define WSOCK_REDIS_GREET_NOW 2         /* the caller welcomes it now */

/* Registers a client (on_open), catching up (with a resume) or not:
 * WSOCK_REDIS_* flags.  A client not catching up is welcomed and put in
 * its room at once if its room is subscribed already or the relay is
 * unavailable (GREET_NOW: by the caller, wsock_redis_local_greet), else
 * by the subscriber when Redis confirms the room.  A client catching up
 * keeps its room's live messages (bounded by max_n and max_bytes) until
 * the subscriber hands it over (wsock_redis_local_run_handovers). */
int wsock_redis_local_add(wsock_redis_client *cl, long max_n, apr_size_t max_bytes);
/* Welcomes cl (outside any lock) and, with join, puts it in its room:
 * APR_SUCCESS or wsock_join()'s failure. */
apr_status_t wsock_redis_local_greet(wsock_redis_client *cl, int join);
/* on_close: WSOCK_REDIS_ROOMS_CHANGED or 0. */
int wsock_redis_local_remove(wsock_redis_client *cl);

/* The rooms with members here, each strdup'ed into pool. */
apr_array_header_t *wsock_redis_local_rooms(apr_pool_t *pool);
/* The subscriber confirmed room: welcomes its waiting clients. */
void wsock_redis_local_room_ready(const char *room);
/* Delivers a relayed message (with its stream id, or NULL) to this
 * child's members of room, but the client with serial except (0: none);
 * clients of room still catching up keep a copy.  Sends outside the lock. */
void wsock_redis_local_deliver(const char *room, apr_uint32_t except, const char *id,
                               const char *json, apr_size_t len);

/* For the resumer, without waiting: 1 if room is subscribed here and the
 * relay up, 0 if not yet, -1 if the relay is unavailable after it was up. */
int wsock_redis_local_room_state(const char *room);
void wsock_redis_local_synced(apr_uint32_t serial);
/* Whether the subscriber saw cl's sync marker; *interrupted: the relay
 * went down since cl registered. */
int wsock_redis_local_is_synced(wsock_redis_client *cl, int *interrupted);
/* The end of what cl's catch-up reads from the stream: held copies up to
 * it are dropped. */
void wsock_redis_local_set_upto(wsock_redis_client *cl, const char *id);
/* The newest stream id cl got so far (for its session record). */
void wsock_redis_local_set_seen(wsock_redis_client *cl, const char *id);
/* The id for cl's session record: the last its room delivered here, or
 * while it catches up, the last it got. */
void wsock_redis_local_seen(wsock_redis_client *cl, char *buf, apr_size_t n);
/* Whether cl's connection ended (on_close ran). */
int wsock_redis_local_gone(wsock_redis_client *cl);
/* The catch-up gives up on cl: it keeps nothing more and joins no room. */
void wsock_redis_local_abandon(wsock_redis_client *cl);
/* The resumer is done with cl's stream (its reference goes with it): the
 * subscriber sends the held copies after it, the resumed notice (count
 * and complete so far are the resumer's), and joins cl to its room. */
void wsock_redis_local_hand_over(wsock_redis_client *cl);
/* Subscriber thread only: the hand-overs asked for (which wake it); at
 * stop, drops them. */
void wsock_redis_local_run_handovers(void);
void wsock_redis_local_drop_handovers(void);

/* Stream ids "ms-seq" (or "ms"): parsed into two numbers, 0 if malformed. */
int wsock_redis_parse_id(const char *id, apr_uint64_t *ms, apr_uint64_t *seq);
/* a < b: -1, a == b: 0, a > b: 1 (well-formed ids). */
int wsock_redis_id_cmp(const char *a, const char *b);

/* {"type":"message",...} with "id":ID inserted after the type: malloc'ed. */
char *wsock_redis_with_id(const char *json, apr_size_t len, const char *id,
                          apr_size_t *outlen);
/* Sets the relay state as clients see it (under the relay's state
 * mutex, so that changes apply in order): 1 if it changed.  Then, outside
 * that mutex, wsock_redis_local_tell_all() tells every welcomed client
 * the state if it differs from what the client was told last, and
 * welcomes those that waited for a room that will not come now. */
int wsock_redis_local_set_up(int up);
void wsock_redis_local_tell_all(void);

/* ---- the relay (wsock_redis_relay.c, _pub.c, _sub.c) -------------------- */

struct redisContext;
/* A new connection to the configured Redis, after AUTH (and SELECT if
 * select_db), each step within timeout; NULL with why set. */
struct redisContext *wsock_redis_connect(int select_db, apr_interval_time_t timeout,
                                         char *why, apr_size_t n);
/* Sets the socket timeout of a connection. */
int wsock_redis_socket_timeout(struct redisContext *c, apr_interval_time_t timeout);
/* Writes what hiredis has buffered (small commands; the socket has the
 * command timeout): 0 on a failure. */
int wsock_redis_flush(struct redisContext *c);

extern server_rec *wsock_redis_server;      /* for the relay threads' log lines */

typedef enum { WSOCK_REDIS_SUB, WSOCK_REDIS_PUB } wsock_redis_part;
/* A connection of the relay came up or went down (why: the reason).  One
 * log line per change of the relay's state; clients are told. */
void wsock_redis_state(wsock_redis_part part, int ok, const char *why);
int wsock_redis_relay_up(void);
int wsock_redis_stopping(void);
/* The next wait of a reconnect back-off (jittered); doubles *b. */
apr_interval_time_t wsock_redis_backoff(apr_interval_time_t *b);
#define WSOCK_REDIS_BACKOFF_MIN (200 * 1000)    /* microseconds */

/* The threads: set up, run, wake (reconnect: drop a stale connection),
 * and after the threads ended, free what is left. */
apr_status_t wsock_redis_pub_init(apr_pool_t *pchild);
void *APR_THREAD_FUNC wsock_redis_pub_main(apr_thread_t *t, void *data);
void wsock_redis_pub_wake(int reconnect);
void wsock_redis_pub_discard(void);
apr_status_t wsock_redis_sub_init(void);
void *APR_THREAD_FUNC wsock_redis_sub_main(apr_thread_t *t, void *data);
void wsock_redis_sub_close(void);
/* Wakes the subscriber (for hand-overs). */
void wsock_redis_sub_wake(void);

/* This child's token: 8 hex digits, random, shared by no other child. */
extern char wsock_redis_child_token[9];

apr_status_t wsock_redis_relay_start(apr_pool_t *pchild, server_rec *s);
void wsock_redis_relay_stop(void);
/* The set of local rooms changed: the subscriber follows it. */
void wsock_redis_relay_rooms_changed(void);
/* Queues a message for room's channel: APR_SUCCESS, APR_EAGAIN if the
 * relay is unavailable, APR_ENOSPC if the queue is full. */
apr_status_t wsock_redis_relay_publish(const wsock_redis_cfg *cfg, const char *room,
                                       apr_uint32_t except_serial, const char *json,
                                       apr_size_t len);
/* A thread that waits until Redis has answered its message (the publish
 * endpoint: its answer says the stream id, and a publisher's next POST,
 * in whichever child, comes after it).  wsock_redis_publish.c. */
typedef struct wsock_redis_waiter wsock_redis_waiter;
struct redisReply;
/* The publisher thread: Redis answered with r (NULL: the message was
 * dropped, or the connection failed); gives up the item's reference. */
void wsock_redis_waiter_finish(wsock_redis_waiter *w, const struct redisReply *r);
/* wsock_redis_relay_publish() whose item holds waiter (which must have a
 * reference for it, given up by wsock_redis_waiter_finish); on a failure
 * nothing holds the waiter. */
apr_status_t wsock_redis_relay_publish_w(const wsock_redis_cfg *cfg, const char *room,
                                         apr_uint32_t except_serial, const char *json,
                                         apr_size_t len, wsock_redis_waiter *waiter);

/* Queues HSET key room .. member .. name .. last_id .. and EXPIRE key ttl
 * (values in that order). */
apr_status_t wsock_redis_relay_save(const char *key, long ttl, const char *const values[4]);

/* ---- a room's stream (wsock_redis_history.c) ---------------------------- */

/* What a resume after some id sends from the stream: the newest entries
 * within the caps, from first to newest (ids), count entries (that are
 * relay messages) of bytes (as clients get them). */
typedef struct {
    char first[48];             /* "" if there is nothing to send */
    char newest[48];            /* the stream's last id at the time ("" if none after) */
    long count;
    apr_size_t bytes;
    int cut;                    /* older entries were left out for the caps */
    int complete;               /* nothing after the resume point was trimmed */
} wsock_redis_plan;

/* On the resumer's connection, in one step (a script): plans a resume of
 * key after id after within max_n entries and max_bytes, and publishes
 * marker on key's channel at that moment.  1, or 0 with why. */
int wsock_redis_history_plan(struct redisContext *c, const char *key, const char *after,
                             long max_n, apr_size_t max_bytes, const char *marker,
                             wsock_redis_plan *plan, char *why, apr_size_t n);
/* Up to count entries of key from start ("ID" inclusive, "(ID" exclusive)
 * to upto: a reply to free with freeReplyObject, or NULL with why. */
struct redisReply *wsock_redis_history_page(struct redisContext *c, const char *key,
                                            const char *start, const char *upto,
                                            long count, char *why, apr_size_t n);
/* Entry i of a page: its id (always, if 1 or 0 is returned), and if it is a
 * relay message (1), its JSON; -1 if the entry is malformed. */
int wsock_redis_history_entry(const struct redisReply *page, size_t i, const char **id,
                              const char **json, apr_size_t *len);

/* ---- catching up (wsock_redis_catchup.c) --------------------------------- */

/* The resumer thread, its queue and its connection to Redis. */
apr_status_t wsock_redis_catchup_init(apr_pool_t *pchild);
void *APR_THREAD_FUNC wsock_redis_catchup_main(apr_thread_t *t, void *data);
/* on_open, for a client that asked to resume after stream id last_id,
 * before it is registered (as catching up): its catch-up, with cfg's
 * caps.  0, or 503 without memory. */
int wsock_redis_catchup_start(wsock_redis_client *cl, const wsock_redis_cfg *cfg,
                              const char *last_id);
/* Once it is registered: the resumer welcomes it, sends it what it missed
 * as it reads, and hands it over to the subscriber, which sends
 * {"type":"resumed",...} and joins it to its room; no gap, no duplicate
 * (docs/redis.md#resuming). */
void wsock_redis_catchup_go(wsock_redis_client *cl);
/* Something the resumer may be waiting for changed: the room's
 * subscription, the relay's state, a sync marker (for every job). */
void wsock_redis_catchup_recheck(void);
/* on_close of a client with a catch-up: the resumer lets go of it. */
void wsock_redis_catchup_poke(wsock_redis_client *cl);
/* The subscriber could not hand cl over (its connection has no room):
 * the resumer takes it back, waits for room, and hands it over again;
 * sent: held copies the subscriber sent meanwhile. */
void wsock_redis_catchup_bounce(wsock_redis_client *cl, int sent);
/* For the subscriber's hand-over: messages sent so far, and whether the
 * catch-up is complete so far. */
void wsock_redis_catchup_result(const wsock_redis_client *cl, int *count, int *complete);
void wsock_redis_catchup_free(wsock_redis_catchup *cu);

/* ---- sessions (wsock_redis_session.c) ---------------------------------- */

apr_status_t wsock_redis_session_init(apr_pool_t *pchild);
/* on_open, before the room is chosen: with ?session=TOKEN of a live record
 * of this location, restores the client's room, member id and name, and
 * its last id into last (if not given): returns 1.  Without one (or an
 * unknown or expired token): a new token, the name from ?name=; 0.  Or an
 * HTTP status: 400 for a malformed token or name, 503 when the record
 * cannot be read within WSockRedisTimeout. */
int wsock_redis_session_open(wsock_redis_client *cl, const wsock_redis_cfg *cfg, char *last,
                             apr_size_t lastsz);
/* Writes the client's record (room, member, name, last id), through the
 * publisher, with the location's TTL. */
void wsock_redis_session_save(wsock_redis_client *cl, const wsock_redis_cfg *cfg);

#endif /* WSOCK_REDIS_H */
