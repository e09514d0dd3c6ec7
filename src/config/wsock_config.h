/*
 * wsock_config.h — the configuration of mod_wsock: per-directory settings
 * and their merge (wsock_dirconf.c), the defaults every directive falls
 * back to, the server-wide settings (wsock_server_conf.c), and the
 * directives' parsers, which mod_wsock.c's command table names
 * (wsock_directives.c, wsock_server_conf.c).
 */
#ifndef WSOCK_CONFIG_H
#define WSOCK_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "wsock.h"
#include "wsock_pmd.h"

/* Defaults, documented in docs/directives.md. */
#define WSOCK_DEFAULT_MAX_MESSAGE   (1024 * 1024)
#define WSOCK_DEFAULT_PING          apr_time_from_sec(30)
#define WSOCK_DEFAULT_IDLE          apr_time_from_sec(60)
#define WSOCK_DEFAULT_CLOSE_TIMEOUT apr_time_from_sec(5)
#define WSOCK_DEFAULT_FRAGMENT      0
#define WSOCK_DEFAULT_QUEUE_MSGS    1024
#define WSOCK_DEFAULT_QUEUE_BYTES   (1024 * 1024)
#define WSOCK_DEFAULT_QUEUE_POLICY  WSOCK_QUEUE_CLOSE
#define WSOCK_DEFAULT_LOG_AT_UPGRADE 0
/* Abuse limits (docs/limits.md): no rate limit unless configured; a frame or
 * fragmented message must be complete within 30 s of its first byte. */
#define WSOCK_DEFAULT_FRAME_TIMEOUT apr_time_from_sec(30)

/* What WSockSendQueue does with a connection whose outbound queue is full. */
#define WSOCK_QUEUE_DROP  0         /* the message misses that connection */
#define WSOCK_QUEUE_CLOSE 1         /* the connection is closed with 1008 */

/* WSockCompression (permessage-deflate, RFC 7692), set as a whole by one
 * directive line; documented in docs/directives.md. */
typedef struct wsock_compress_conf {
    int on;
    int level;                         /* zlib level 0..9 */
    int mem_level;                     /* zlib memLevel 1..9 */
    apr_size_t threshold;              /* shorter messages go out uncompressed */
    wsock_pmd_policy policy;           /* what negotiation may agree to */
} wsock_compress_conf;

#define WSOCK_DEFAULT_COMPRESS_LEVEL     1
#define WSOCK_DEFAULT_COMPRESS_MEMLEVEL  8
#define WSOCK_DEFAULT_COMPRESS_THRESHOLD 128

/* "Not set here" for the merge; every field starts as unset. */
#define WSOCK_UNSET (-1)

typedef struct {
    const wsock_handler *handler;      /* NULL: not a WebSocket location */
    const char *handler_name;          /* as named in WSockHandler (for logs) */
    void *handler_cfg;                 /* what handler->create_config made */
    const char *location;              /* section of the WSockHandler line */
    int handler_set;                   /* WSockHandler seen (none included) */
    int ops_label;                     /* its counters' label (wsock_counters.h) */
    apr_array_header_t *protocols;     /* const char *, NULL = unset */
    int require_protocol;              /* WSOCK_UNSET, 0, 1 */
    apr_off_t max_message;             /* bytes, WSOCK_UNSET */
    apr_interval_time_t ping_interval; /* 0 = off, WSOCK_UNSET */
    apr_interval_time_t idle_timeout;  /* 0 = off, WSOCK_UNSET */
    apr_interval_time_t close_timeout; /* WSOCK_UNSET */
    apr_off_t fragment_size;           /* 0 = never fragment, WSOCK_UNSET */
    apr_off_t queue_msgs;              /* WSockSendQueue, each WSOCK_UNSET */
    apr_off_t queue_bytes;
    int queue_policy;
    int log_at_upgrade;                /* WSockAccessLog upgrade: 1, end: 0 */
    /* abuse limits: WSockRateLimit (a rate of 0 = off; burst WSOCK_UNSET =
     * derived from the rate) and WSockFrameTimeout; each WSOCK_UNSET */
    apr_off_t msg_rate, msg_burst;
    apr_off_t byte_rate, byte_burst;
    apr_interval_time_t frame_timeout; /* 0 = off */
    /* handshake security (src/security) */
    struct wsock_origin_policy *origins; /* WSockAllowedOrigins, NULL = unset */
    struct wsock_token_conf *token;      /* WSockToken*, NULL = unset */
    int max_conns_per_ip;                /* 0 = no limit, WSOCK_UNSET */
    const wsock_compress_conf *compress; /* WSockCompression, NULL = unset */
    int status_access;                   /* WSockStatusAccess (wsock_dashboard.h), WSOCK_UNSET */
    /* publishing (src/pubsub/wsock_publish_http.c), each WSOCK_UNSET */
    int addressable;                   /* WSockAddressable: 0, 1 */
    int publish_access;                /* WSockPublishAccess: WSOCK_PUBLISH_* */
} wsock_dir_conf;

/* The settings of one connection, with every default applied. */
typedef struct {
    const wsock_handler *handler;
    const char *handler_name;
    int ops_label;                     /* wsock_counters.h */
    apr_uint64_t max_message;
    apr_interval_time_t ping_interval;
    apr_interval_time_t idle_timeout;
    apr_interval_time_t close_timeout;
    apr_size_t fragment_size;
    apr_size_t queue_max_msgs;
    apr_size_t queue_max_bytes;
    int queue_policy;                  /* WSOCK_QUEUE_DROP or _CLOSE */
    int log_at_upgrade;                /* end the request at the 101 (loop threads) */
    apr_uint64_t msg_rate, msg_burst;  /* per second; rate 0 = no limit */
    apr_uint64_t byte_rate, byte_burst;
    apr_interval_time_t frame_timeout; /* 0 = off */
    wsock_compress_conf compress;      /* .on 0: no extension is accepted */
} wsock_settings;

void wsock_settings_from_conf(wsock_settings *s, const wsock_dir_conf *d);

/* The module record's per-directory hooks. */
void *wsock_dirconf_create(apr_pool_t *p, char *dir);
void *wsock_dirconf_merge(apr_pool_t *p, void *basev, void *addv);

/* Per-location directives (wsock_directives.c). */
const char *wsock_cmd_handler(cmd_parms *cmd, void *conf, int argc, char *const argv[]);
const char *wsock_cmd_load_plugin(cmd_parms *cmd, void *conf, const char *name,
                                  const char *path);
const char *wsock_cmd_protocols(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_require_protocol(cmd_parms *cmd, void *conf, int on);
const char *wsock_cmd_max_message(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_access_log(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_fragment_size(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_send_queue(cmd_parms *cmd, void *conf, const char *msgs,
                                 const char *bytes, const char *policy);
const char *wsock_cmd_ping_interval(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_idle_timeout(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_close_timeout(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_rate_limit(cmd_parms *cmd, void *conf, int argc, char *const argv[]);
const char *wsock_cmd_frame_timeout(cmd_parms *cmd, void *conf, const char *arg);
/* WSockCompression (wsock_compress_conf.c) */
const char *wsock_cmd_compression(cmd_parms *cmd, void *conf, int argc, char *const argv[]);

/* ---- server-wide settings (server config only) ---------------------- */

typedef struct {
    int driver_blocking_only;   /* WSockDriver blocking */
    int loop_threads;           /* WSockLoopThreads; 0 = from the CPUs */
    apr_size_t bus_size;        /* WSockBusSize */
    apr_uint32_t bus_rooms;     /* WSockBusRooms */
} wsock_server_settings;

/* Set while the configuration is read, then only read. */
extern wsock_server_settings wsock_server;

/* pre_config: every setting back to its default (a restart reads them
 * again). */
void wsock_server_settings_reset(void);

const char *wsock_cmd_driver(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_loop_threads(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_bus_size(cmd_parms *cmd, void *conf, const char *arg);
const char *wsock_cmd_bus_rooms(cmd_parms *cmd, void *conf, const char *arg);

#endif /* WSOCK_CONFIG_H */
