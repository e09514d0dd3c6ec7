/*
 * wsock_counters.h — the whole server's counters, in shared memory
 * (docs/operations.md).
 *
 * Every child process claims a slot of its own when it starts; it only
 * ever adds to its slot, with relaxed atomic additions (no lock, and no
 * cache line shared between processes).  The counters that move per
 * message are split further into stripes, one per thread (round-robin),
 * so that loop threads of one child do not fight over one cache line.
 * Readers (server-status, wsock-metrics, wsock-status) sum every slot.
 *
 * Totals (messages, bytes, opened, closed by code, refusals...) survive
 * graceful restarts and children's ends: the memory is made once, in the
 * parent's process pool, and a slot keeps its totals for the next child
 * that claims it.  Gauges (open WebSockets, rooms, members, Redis state)
 * belong to the process that set them: the slot's gauges are zeroed when
 * its process ends (the parent's child_status hook) and when a new child
 * claims it.
 *
 * Locations: a (location, handler) pair named by a WSockHandler line gets
 * a label index at configuration time (wsock_counters_label); the parent
 * maps it into the shared table of names by post_config, so that the
 * indexes of a location stay the same across restarts.
 */
#ifndef WSOCK_COUNTERS_H
#define WSOCK_COUNTERS_H

#include <httpd.h>
#include <apr_pools.h>
#include <apr_time.h>

/* Totals that move per message (striped per thread). */
typedef enum {
    WSOCK_C_MSGS_IN,            /* whole messages received from clients */
    WSOCK_C_BYTES_IN,           /* their payload bytes (after inflating) */
    WSOCK_C_MSGS_OUT,           /* messages sent to clients (one per receiver) */
    WSOCK_C_BYTES_OUT,          /* their payload bytes (before compressing) */
    WSOCK_C_DEFLATE_RAW,        /* payload bytes of messages sent compressed */
    WSOCK_C_DEFLATE_WIRE,       /* ... and what they became on the wire */
    WSOCK_C_INFLATE_WIRE,       /* compressed payload bytes received */
    WSOCK_C_INFLATE_RAW,        /* ... and what they inflated to */
    WSOCK_C_HOT_COUNT
} wsock_hot_counter;

/* Totals that move per connection or per event. */
typedef enum {
    WSOCK_C_QUEUE_DROPS,        /* messages dropped by WSockSendQueue ... drop */
    WSOCK_C_SLOW_CLOSES,        /* connections closed for a full send queue */
    WSOCK_C_RATE_CLOSES,        /* connections closed by WSockRateLimit */
    WSOCK_C_BUS_LAPS,           /* bus deliveries that fell a whole ring behind */
    WSOCK_C_BUS_TOO_LARGE,      /* messages the bus ring could not take */
    WSOCK_C_REDIS_RECONNECTS,   /* Redis relay connections made again */
    WSOCK_C_REDIS_PUBLISHED,    /* messages the relay published to Redis */
    WSOCK_C_REDIS_DROPPED,      /* messages the relay's full queue refused */
    WSOCK_C_PUBLISHED,          /* wsock-publish requests answered 2xx */
    WSOCK_C_PUBLISH_REFUSED,    /* ... answered with an error status */
    WSOCK_C_BACKEND_REQUESTS,   /* requests to backends (WSockHandler backend) answered */
    WSOCK_C_BACKEND_FAILED,     /* ... failed: down, timed out, garbage, non-2xx */
    WSOCK_C_COUNT
} wsock_counter;

/* Gauges: this child's current value, summed over the live children. */
typedef enum {
    WSOCK_G_ROOMS,              /* rooms with a member in this child */
    WSOCK_G_MEMBERS,            /* room memberships in this child */
    WSOCK_G_LOOP_THREADS,       /* loop threads running */
    WSOCK_G_REDIS_LINKS,        /* children whose Redis relay is up (0/1 each) */
    WSOCK_G_REDIS_QUEUE,        /* messages waiting to be published to Redis */
    WSOCK_G_REDIS_QUEUE_BYTES,  /* ... their bytes */
    WSOCK_G_COUNT
} wsock_gauge;

/* Why a handshake was refused (the status is counted beside it). */
typedef enum {
    WSOCK_R_BAD_REQUEST,        /* not a valid RFC 6455 upgrade (400/426/405) */
    WSOCK_R_ORIGIN,             /* WSockAllowedOrigins */
    WSOCK_R_AUTH,               /* Apache's own auth (401/403 before us) */
    WSOCK_R_TOKEN,              /* WSockTokenAuth */
    WSOCK_R_IP_CAP,             /* WSockMaxConnectionsPerIP (429) / full table (503) */
    WSOCK_R_PROTOCOL,           /* WSockRequireProtocol, HTTP/2 (RFC 8441) */
    WSOCK_R_HANDLER,            /* the handler's on_open refused */
    WSOCK_R_OTHER,              /* any other status */
    WSOCK_R_COUNT
} wsock_refusal;

/* Statuses counted per refusal reason; anything else counts as "other". */
#define WSOCK_REFUSAL_STATUSES { 400, 401, 403, 404, 405, 413, 426, 429, 500, 501, 503 }
#define WSOCK_REFUSAL_STATUS_COUNT 12   /* the list above, and "other" */

/* Close codes counted one by one; any other counts as "other" (index
 * WSOCK_CLOSE_CODE_COUNT - 1). 1006: the connection ended with no close. */
#define WSOCK_CLOSE_CODES { 1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, \
                            1010, 1011, 1012, 1013, 1014 }
#define WSOCK_CLOSE_CODE_COUNT 15

/* Histogram of how late a loop thread's turn ran after its connection
 * became ready, in microseconds: upper bounds of the buckets (the last is
 * +Inf). */
#define WSOCK_LATE_BOUNDS_US { 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, \
                               50000, 100000, 250000, 1000000 }
#define WSOCK_LATE_BUCKETS 14           /* the bounds above, and +Inf */

#define WSOCK_LABELS_MAX 64             /* (location, handler) pairs counted apart */
#define WSOCK_LABEL_NONE (-1)           /* over the max: counted as "(other)" */
#define WSOCK_LABEL_OTHER "(other)"     /* the location and handler names of those */
#define WSOCK_LABEL_NAME 128            /* bytes kept of a location's path */
#define WSOCK_LABEL_HANDLER 32          /* bytes kept of a handler's name */

/* ---- configuration time (the parent) ------------------------------- */

/* pre_config: forget the labels of the previous reading. */
void wsock_counters_pre_config(void);
/* A WSockHandler line: the label index of (location, handler); the same
 * pair gets the same index.  WSOCK_LABEL_NONE beyond WSOCK_LABELS_MAX. */
int wsock_counters_label(const char *location, const char *handler);
/* post_config: make (once) or find the shared memory, and enter this
 * reading's labels into it.  Failure is logged; counting is then off and
 * readers report it. */
void wsock_counters_post_config(server_rec *s);
/* The parent: a child process ended; zero its slot's gauges. */
void wsock_counters_child_exited(pid_t pid);
/* The child: claim a slot (gauges zeroed). */
void wsock_counters_child_init(apr_pool_t *pchild, server_rec *s);

/* ---- counting (any thread of a child; lock-free) ------------------- */

#ifndef WSOCK_NO_COUNTERS
void wsock_count_hot(wsock_hot_counter c, apr_uint64_t n);
void wsock_count(wsock_counter c, apr_uint64_t n);
void wsock_gauge_add(wsock_gauge g, apr_int64_t delta);
void wsock_gauge_set(wsock_gauge g, apr_int64_t value);

/* A WebSocket of this label opened (after its 101) / ended with this close
 * code (0 or an unknown code: "other"; ended with no close frame: 1006). */
void wsock_count_opened(int label);
void wsock_count_closed(int label, int code);
/* A handshake of this label was refused with this status. */
void wsock_count_refused(int label, wsock_refusal why, int status);
/* A loop thread's turn started this late. */
void wsock_count_turn_late(apr_interval_time_t late);
#else
/* bench/counters.sh builds the module with counting compiled out, to
 * measure what it costs: the arguments are not even evaluated. */
#define wsock_count_hot(c, n) ((void)sizeof(c), (void)sizeof(n))
#define wsock_count(c, n) ((void)sizeof(c), (void)sizeof(n))
#define wsock_gauge_add(g, d) ((void)sizeof(g), (void)sizeof(d))
#define wsock_gauge_set(g, v) ((void)sizeof(g), (void)sizeof(v))
#define wsock_count_opened(l) ((void)sizeof(l))
#define wsock_count_closed(l, c) ((void)sizeof(l), (void)sizeof(c))
#define wsock_count_refused(l, w, s) ((void)sizeof(l), (void)sizeof(w), (void)sizeof(s))
#define wsock_count_turn_late(t) ((void)sizeof(t))
#endif

/* ---- reading (any process; a sum over the slots) ------------------- */

typedef struct {
    char location[WSOCK_LABEL_NAME];
    char handler[WSOCK_LABEL_HANDLER];
    apr_int64_t open;
    apr_uint64_t opened;
    apr_uint64_t closed[WSOCK_CLOSE_CODE_COUNT];
    apr_uint64_t refused[WSOCK_R_COUNT];    /* by reason (statuses: server-wide) */
} wsock_label_counts;

typedef struct {
    int on;                             /* 0: no shared memory, nothing counted */
    apr_time_t now;                     /* when it was read */
    apr_time_t since;                   /* when the totals started (first start) */
    int children;                       /* live child processes that count */
    apr_uint64_t hot[WSOCK_C_HOT_COUNT];
    apr_uint64_t total[WSOCK_C_COUNT];
    apr_int64_t gauge[WSOCK_G_COUNT];
    apr_uint64_t refused[WSOCK_R_COUNT][WSOCK_REFUSAL_STATUS_COUNT];
    apr_uint64_t late[WSOCK_LATE_BUCKETS];  /* per bucket, not cumulative */
    apr_uint64_t late_sum_us;
    int nlabels;                        /* the last may be WSOCK_LABEL_OTHER's */
    wsock_label_counts label[WSOCK_LABELS_MAX + 1];
} wsock_counts;

/* Sum every slot into *out (about 10 KiB: allocate it, don't put it on a
 * small stack). */
void wsock_counters_read(wsock_counts *out);

/* The status and close code lists as arrays, for renderers. */
extern const int wsock_refusal_statuses[WSOCK_REFUSAL_STATUS_COUNT - 1];
extern const int wsock_close_codes[WSOCK_CLOSE_CODE_COUNT - 1];
extern const apr_uint32_t wsock_late_bounds_us[WSOCK_LATE_BUCKETS - 1];
extern const char *const wsock_refusal_names[WSOCK_R_COUNT];  /* "origin", ... */
extern const char *const wsock_counter_names[WSOCK_C_COUNT];   /* snake_case */
extern const char *const wsock_hot_counter_names[WSOCK_C_HOT_COUNT];
extern const char *const wsock_gauge_names[WSOCK_G_COUNT];

#endif /* WSOCK_COUNTERS_H */
