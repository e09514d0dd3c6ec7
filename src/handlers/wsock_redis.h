/*
 * wsock_redis.h — the Redis relay, shared by its files:
 *
 *   wsock_redis_conf.c   server-wide WSockRedis* directives
 *   wsock_redis.c        the handler (WSockHandler redis ...)
 *   wsock_redis_local.c  this child's relay clients, rooms and relay state
 *   wsock_redis_relay.c  the relay's state, connecting, its threads' life
 *   wsock_redis_pub.c    the publisher thread: queue, PUBLISH/EVAL, records
 *   wsock_redis_sub.c    the subscriber thread: SUBSCRIBE, delivery
 *   wsock_redis_history.c  catching a resuming client up from a room's stream
 *   wsock_redis_session.c  session records: a client's room, id, name, last id
 *
 * Documented in docs/redis.md.
 */
#ifndef WSOCK_REDIS_H
#define WSOCK_REDIS_H

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
const char *wsock_redis_set_queue(cmd_parms *cmd, void *conf, const char *arg);

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
    AP_INIT_TAKE1("WSockRedisQueue", wsock_redis_set_queue, NULL, RSRC_CONF, \
                  "Messages waiting to be published, per child; default 4096")

/* ---- a location's arguments (wsock_redis.c) ------------------------- */

typedef struct {
    int room_from_query;
    int echo;
    long history_max;           /* stream entries kept (MAXLEN ~); 0: no bound */
    long history_age_ms;        /* and/or their age (MINID ~, PEXPIRE); 0: none */
    long session_ttl;           /* seconds a session record lives; 0: no sessions */
} wsock_redis_cfg;

#define WSOCK_REDIS_HISTORY(cfg) ((cfg)->history_max > 0 || (cfg)->history_age_ms > 0)

/* ---- this child's clients, rooms and relay state (wsock_redis_local.c) - */

/* A relayed message kept for a client that is still catching up. */
typedef struct wsock_redis_held wsock_redis_held;
struct wsock_redis_held {
    wsock_redis_held *next;
    char id[48];                /* stream id */
    apr_size_t len;
    char json[];
};

typedef struct wsock_redis_client wsock_redis_client;
struct wsock_redis_client {
    wsock_conn *wc;
    wsock_roomsel sel;
    apr_uint32_t serial;        /* unique in this child */
    char member[32];            /* child token and serial: unique in the cluster */
    char session[33];           /* session token, or "" */
    char name[72];              /* the client's name (from ?name=), or "" */
    char seen[48];              /* a stream id it has seen, for its session record */
    volatile apr_uint32_t welcomed;
    wsock_redis_client *prev, *next;
    /* while catching up (wsock_redis_history.c), under the local mutex: */
    int catching_up;
    int synced;                 /* the subscriber saw its sync marker */
    int held_n, held_lost;
    wsock_redis_held *held, **held_tail;
    wsock_redis_client *next_catching;
};

apr_status_t wsock_redis_local_init(apr_pool_t *pchild);

/* Registers a client (on_open, after it joined its room): welcomes it at
 * once if its room is subscribed already or the relay is unavailable,
 * else when the subscriber confirms the room.  Returns 1 if the set of
 * rooms changed (the subscriber must be told). */
int wsock_redis_local_add(wsock_redis_client *cl);
/* on_close: 1 if the set of rooms changed. */
int wsock_redis_local_remove(wsock_redis_client *cl);

/* The rooms with members here, each strdup'ed into pool. */
apr_array_header_t *wsock_redis_local_rooms(apr_pool_t *pool);
/* The subscriber confirmed room: welcomes its waiting clients. */
void wsock_redis_local_room_ready(const char *room);
/* Delivers a relayed message (with its stream id, or NULL) to this
 * child's members of room, but the client with serial except (0: none);
 * clients of room still catching up keep it for later. */
void wsock_redis_local_deliver(const char *room, apr_uint32_t except, const char *id,
                               const char *json, apr_size_t len);

/* Catching up (wsock_redis_history.c).  A client registered with
 * catching_up set is not welcomed by others and holds its room's relayed
 * messages until finish.  wait_ready: until its room is subscribed (1),
 * or the relay is down or the timeout passed (0).  welcome: sends the
 * welcome.  synced: the subscriber saw the client's sync marker;
 * wait_synced: until then (1) or the timeout (0).  finish: sends the held
 * messages after stream id after (all if NULL; counted in *sent), joins
 * the room (from the owning thread) and ends the catching up; returns 0,
 * or how many held
 * messages were lost to the bound or -1 if the room cannot be joined. */
int wsock_redis_local_wait_ready(const char *room, apr_interval_time_t timeout);
void wsock_redis_local_welcome(wsock_redis_client *cl);
void wsock_redis_local_synced(apr_uint32_t serial);
int wsock_redis_local_wait_synced(wsock_redis_client *cl, apr_interval_time_t timeout);
int wsock_redis_local_catch_finish(wsock_redis_client *cl, const char *after, int *sent);

/* Stream ids "ms-seq" (or "ms"): parsed into two numbers, 0 if malformed. */
int wsock_redis_parse_id(const char *id, apr_uint64_t *ms, apr_uint64_t *seq);
/* a < b: -1, a == b: 0, a > b: 1 (well-formed ids). */
int wsock_redis_id_cmp(const char *a, const char *b);

/* {"type":"message",...} with "id":ID inserted after the type: malloc'ed. */
char *wsock_redis_with_id(const char *json, apr_size_t len, const char *id,
                          apr_size_t *outlen);
/* Sets the relay state; tells every client when it changes.  Returns 1 if
 * it changed. */
int wsock_redis_local_set_up(int up);
/* The id of the last message with history delivered to room here ("" if
 * none), into buf. */
void wsock_redis_local_last_id(const char *room, char *buf, apr_size_t n);
int wsock_redis_local_is_up(void);

/* ---- the relay (wsock_redis_relay.c, _pub.c, _sub.c) -------------------- */

struct redisContext;
/* A new connection to the configured Redis, after AUTH (and SELECT if
 * select_db); NULL with why set. */
struct redisContext *wsock_redis_connect(int select_db, char *why, apr_size_t n);
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
/* Queues HSET key room .. member .. name .. last_id .. and EXPIRE key ttl
 * (values in that order). */
apr_status_t wsock_redis_relay_save(const char *key, long ttl, const char *const values[4]);

/* ---- history (wsock_redis_history.c) ------------------------------------ */

apr_status_t wsock_redis_history_init(apr_pool_t *pchild);

/* The child's connection for on_open's questions to Redis (resuming,
 * sessions), locked: NULL with why if there is none (and the lock is not
 * held).  end: unlocks; broken drops the connection. */
struct redisContext *wsock_redis_sync_begin(char *why, apr_size_t n);
void wsock_redis_sync_end(int broken);

/* ---- sessions (wsock_redis_session.c) ---------------------------------- */

/* on_open, before the room is chosen: with ?session=TOKEN of a live record
 * of this location, restores the client's room, member id and name, and
 * its last id into last (if not given): returns 1.  Without one (or an
 * unknown or expired token): a new token, the name from ?name=; 0.  Or an
 * HTTP status for a malformed token or name. */
int wsock_redis_session_open(wsock_redis_client *cl, const wsock_redis_cfg *cfg, char *last,
                             apr_size_t lastsz);
/* Writes the client's record (room, member, name, last id), through the
 * publisher, with the location's TTL. */
void wsock_redis_session_save(const wsock_redis_client *cl, const wsock_redis_cfg *cfg);
/* On the owning thread in on_open, for a client registered with
 * catching_up that asked to resume after stream id last_id: welcomes it,
 * sends it everything after last_id, {"type":"resumed",...}, and joins
 * it to its room; no gaps, no duplicates (docs/redis.md#resuming).  Waits
 * for Redis, bounded by WSockRedisTimeout.  0, or 500 if the room cannot
 * be joined. */
int wsock_redis_history_resume(wsock_redis_client *cl, const char *last_id);

#endif /* WSOCK_REDIS_H */
