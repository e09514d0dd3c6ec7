/*
 * wsock_backend.h — the backend handler (WSockHandler backend URL ...),
 * which forwards client events to an application over HTTP; shared by:
 *
 *   wsock_backend_conf.c   a location's arguments
 *   wsock_backend.c        the handler's callbacks, a connection's event
 *                          queue and its one request at a time
 *   wsock_backend_reply.c  what an answer means: events for the client,
 *                          Set-Meta-*, Keep-Alive-Interval, GRIP control
 *   wsock_backend_http.c   this child's HTTP client thread (libcurl multi)
 *   wsock_wsevents.c       the application/websocket-events codec (pure)
 *
 * Public API (wsock.h) only.  Documented in docs/backend.md.
 */
#ifndef WSOCK_BACKEND_H
#define WSOCK_BACKEND_H

#include <pthread.h>

#include <httpd.h>
#include <apr_time.h>

#include "wsock.h"

/* ---- a location's arguments (wsock_backend_conf.c) -------------------- */

#define WSOCK_BACKEND_EVENTS 0      /* protocol=websocket-events */
#define WSOCK_BACKEND_PLAIN  1      /* protocol=plain */

typedef struct {
    const char *url;
    int protocol;
    apr_interval_time_t timeout;    /* per request */
    int queue_events;               /* events waiting per connection ... */
    apr_size_t queue_bytes;         /* ... and their bytes */
    apr_size_t max_answer;          /* bytes of one answer */
    int retries;                    /* extra attempts of the last request */
    int credentials;                /* forward Cookie and Authorization */
    const char *ca_file;            /* CA bundle for https, or NULL */
    int requests;                   /* requests in flight per child */
    const char **headers;           /* more request headers passed on OPEN */
    int nheaders;
} wsock_backend_cfg;

extern const char *const wsock_backend_usage;

const char *wsock_backend_create_config(apr_pool_t *pool, int argc, char *const argv[],
                                        void **cfgp);

/* The most requests in flight per child any location asked for. */
int wsock_backend_requests_max(void);

/* Whether some location uses the handler (the child then starts its
 * HTTP thread). */
int wsock_backend_in_use(void);

/* ---- one HTTP exchange (wsock_backend_http.c) ------------------------- */

#define WSOCK_BACKEND_HDRS_MAX 64   /* answer headers kept (Set-Meta-* ...) */

typedef struct wsock_backend_call wsock_backend_call;

struct wsock_backend_call {
    /* the request, set by the submitter */
    const wsock_backend_cfg *cfg;
    void *headers;                  /* struct curl_slist *, freed with the call */
    char *body;                     /* malloc'd, freed with the call */
    apr_size_t body_len;
    void (*done)(wsock_backend_call *call);  /* on the HTTP thread */
    void *baton;
    int final;                      /* carries the connection's last events */
    int nevents;                    /* events in the body */

    /* the answer, set by the HTTP thread before done() */
    long status;                    /* 0: no HTTP answer (see error) */
    char error[256];                /* why there is no (usable) answer */
    int too_big;                    /* the answer passed cfg->max_answer */
    int timed_out;                  /* the request took longer than timeout= */
    char *answer;                   /* malloc'd */
    apr_size_t answer_len;
    char *hdrs[WSOCK_BACKEND_HDRS_MAX];     /* "Name: value", malloc'd */
    int nhdrs;

    void *easy;                     /* CURL * while in flight */
    wsock_backend_call *next;       /* in the thread's waiting list */
};

/* A call with an empty request; add headers with wsock_backend_call_header. */
wsock_backend_call *wsock_backend_call_new(const wsock_backend_cfg *cfg);
/* value NULL: leave out a header libcurl would add (Expect). */
int wsock_backend_call_header(wsock_backend_call *call, const char *name, const char *value);
/* A whole "Name: value" line. */
int wsock_backend_call_line(wsock_backend_call *call, const char *line);
void wsock_backend_call_free(wsock_backend_call *call);

/* The value of answer header name (case-insensitive), or NULL. */
const char *wsock_backend_answer_header(const wsock_backend_call *call, const char *name);

/* Hands the call to this child's HTTP thread (any thread): done() runs
 * there when it is answered, failed or timed out.  APR_EOF when the
 * thread is not running (done() is not called). */
apr_status_t wsock_backend_submit(wsock_backend_call *call);

apr_status_t wsock_backend_http_start(apr_pool_t *pchild, server_rec *s);
void wsock_backend_http_stop(void);

/* The server for log lines from the HTTP thread. */
server_rec *wsock_backend_server(void);

/* Runs fn on the HTTP thread about every half second (timers). */
void wsock_backend_http_on_tick(void (*fn)(apr_time_t now));

/* ---- a connection's state (wsock_backend.c) --------------------------- */

#define WSOCK_BACKEND_META_MAX 32           /* Meta-* entries per connection */
#define WSOCK_BACKEND_META_LEN 1024         /* bytes of a name plus value */
#define WSOCK_BACKEND_CHANNEL_MAX 64        /* GRIP channel name */
#define WSOCK_BACKEND_KA_MAX 4096           /* GRIP keep-alive content */

typedef struct wsock_backend_conn wsock_backend_conn;

struct wsock_backend_conn {
    wsock_conn *wc;                 /* referenced until the connection ends and
                                     * no answer is being applied; then NULL */
    const wsock_backend_cfg *cfg;
    /* the client's facts, copied at the open: the last requests of a
     * connection go out after it has ended */
    char *id, *uri, *uri_q, *remote, *user, *protocol, *location;
    char **client_hdrs;             /* "Name: value" lines passed on */
    int nclient_hdrs;
    char *trust_hdrs[6];            /* Connection-Id, Wsock-*: made at the open */
    int ntrust_hdrs;
    pthread_mutex_t lock;           /* what follows up to 'answer only' */
    char *pending;                  /* encoded events waiting (malloc'd) */
    apr_size_t plen, pcap;
    int pcount;
    int inflight;                   /* a request is out: the next waits */
    int closing;                    /* on_close ran: the last events queued */
    int final_sent;                 /* the last request has gone out */
    int attempts;                   /* of the last request */
    apr_time_t retry_at;            /* 0, or when to try the last again */
    apr_time_t last_request;
    apr_interval_time_t keep_alive; /* Keep-Alive-Interval, 0: none */
    int detached;                   /* GRIP detach: the backend wants no more */
    int failed;                     /* a request failed: the client is closing */
    wsock_backend_call *retry;      /* the last request, to be tried again */
    /* answer only: touched by whoever holds 'inflight' */
    int grip;                       /* GRIP extension agreed on OPEN */
    char prefix[33];                /* its message-prefix (default "m:") */
    /* GRIP keep-alive: a message sent to the client when nothing was for
     * ka_every (mode idle) or every ka_every (mode interval); under lock */
    char *ka_content;               /* malloc'd, or NULL: none */
    apr_size_t ka_len;
    int ka_binary, ka_interval;
    apr_interval_time_t ka_every;
    apr_time_t ka_last;             /* the last message this handler sent it */
    char *meta[WSOCK_BACKEND_META_MAX];     /* "Name: value" */
    int nmeta;
    wsock_backend_conn *prev, *next;        /* this child's connections */
};

/* Applies an answer (wsock_backend_reply.c): events to the client, meta,
 * keep-alive, GRIP control.  Returns 0, or a close code for the client
 * (1011 for an answer that is not one), after a log line. */
int wsock_backend_apply(wsock_backend_conn *bc, wsock_backend_call *call, int opening);

/* Whether a Content-Type is application/websocket-events (parameters allowed). */
int wsock_backend_events_type(const char *ct);

/* Whether a call got a usable 2xx answer; otherwise logs why (tag) and
 * returns 0. */
int wsock_backend_answer_ok(wsock_backend_conn *bc, wsock_backend_call *call);


#endif /* WSOCK_BACKEND_H */
