/*
 * wsock_capacity.c — start-up warnings about how many WebSockets this
 * server can hold, each naming the directive to change
 * (docs/operations.md, "Capacity" and "Startup warnings"):
 *
 *   WSOCK1410  the event MPM stops accepting far below what the file
 *              descriptors allow (AsyncRequestWorkerFactor, MaxRequestWorkers)
 *   WSOCK1411  a child may accept more connections than it has descriptors
 *   WSOCK1412  AsyncRequestWorkerFactor is set twice: which one wins
 *   WSOCK1413  a blocking driver (prefork, worker, WSockDriver blocking)
 *              holds a worker per WebSocket, and there are few workers
 *   WSOCK1414  mod_http2's H2WebSockets on covers a WebSocket location
 *
 * Only a configuration with a WebSocket location (a WSockHandler other
 * than none) is checked.  The MPM's numbers come from ap_mpm_query; what
 * it does not tell (AsyncRequestWorkerFactor, H2WebSockets) is read from
 * the configuration tree, ap_conftree, where conditional sections and
 * Includes are already spliced in and every line keeps its file and line.
 */
#include <sys/resource.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <ap_mpm.h>
#include <apr_strings.h>

#include "wsock_capacity.h"
#include "wsock_config.h"
#include "wsock_log.h"

APLOG_USE_MODULE(wsock);

/* The event MPM's AsyncRequestWorkerFactor when none is set. */
#define EVENT_DEFAULT_FACTOR 2
/* Descriptors a child keeps for other things than client connections
 * (listeners, logs, the pipe of death, pollsets and wake-up pipes of the
 * MPM and of the loop threads, the bus, Redis links): 12 in an idle child
 * of a plain configuration on Debian's apache2; more with per-vhost logs,
 * TLS, Redis; kept with a wide margin. */
#define CHILD_FD_RESERVE 128
/* "Far below": under a quarter of what the descriptors allow, and under
 * what a stock server with wsock.conf holds (docs/operations.md). */
#define CAPACITY_FAR_BELOW_RATIO 4
#define CAPACITY_TARGET 10000
/* "Few workers" for a blocking driver (one worker per WebSocket). */
#define BLOCKING_FEW_WORKERS 1000

/* What one server (the main server or a <VirtualHost>) says. */
typedef struct {
    const ap_directive_t *node;         /* <VirtualHost ...>; NULL: main server */
    const ap_directive_t *websocket;    /* its first WebSocket location's WSockHandler */
    const ap_directive_t *h2ws;         /* the last H2WebSockets line it reads */
} server_scan;

typedef struct {
    int websockets;                     /* WebSocket locations anywhere */
    const ap_directive_t *factor;       /* the AsyncRequestWorkerFactor that counts */
    const ap_directive_t *factor_before;/* ... and the one it overrides, if any */
    server_scan main;
    apr_array_header_t *vhosts;         /* of server_scan */
} config_scan;

/* The first word of a directive's arguments is `word` (case aside). */
static int first_word_is(const char *args, const char *word)
{
    apr_size_t n = strlen(word);

    while (*args == ' ' || *args == '\t' || *args == '"') {
        ++args;
    }
    return strncasecmp(args, word, n) == 0
           && (args[n] == '\0' || args[n] == ' ' || args[n] == '\t' || args[n] == '"');
}

static void scan_tree(const ap_directive_t *d, config_scan *sc, server_scan *srv)
{
    for (; d != NULL; d = d->next) {
        if (strcasecmp(d->directive, "<VirtualHost") == 0) {
            server_scan *vh = apr_array_push(sc->vhosts);

            vh->node = d;
            vh->websocket = NULL;
            vh->h2ws = NULL;
            /* (a <VirtualHost> holds no other <VirtualHost>: vh stays valid) */
            scan_tree(d->first_child, sc, vh);
            continue;
        }
        if (strcasecmp(d->directive, "WSockHandler") == 0) {
            if (d->args && !first_word_is(d->args, "none")) {
                sc->websockets++;
                if (srv->websocket == NULL) {
                    srv->websocket = d;
                }
            }
        }
        else if (strcasecmp(d->directive, "H2WebSockets") == 0) {
            srv->h2ws = d;                  /* mod_http2: the last one read wins */
        }
        else if (srv == &sc->main
                 && strcasecmp(d->directive, "AsyncRequestWorkerFactor") == 0) {
            sc->factor_before = sc->factor; /* the MPM keeps the last one read */
            sc->factor = d;
        }
        if (d->first_child) {
            scan_tree(d->first_child, sc, srv);
        }
    }
}

/* The factor as the event MPM applies it: it keeps sixteenths and divides
 * them back with integer division, at least 1 (event.c, set_worker_factor
 * and connections_above_limit): 2.9 counts as 2. */
static apr_int64_t effective_factor(const ap_directive_t *d)
{
    double v;
    char *end;
    apr_uint32_t sixteenths;

    if (d == NULL || d->args == NULL) {
        return EVENT_DEFAULT_FACTOR;
    }
    v = strtod(d->args, &end);
    if (end == d->args || v <= 0 || v > 1e6) {
        return EVENT_DEFAULT_FACTOR;        /* the MPM refused it already */
    }
    sixteenths = (apr_uint32_t)(v * 16);
    return sixteenths < 16 ? 1 : sixteenths / 16;
}

static const char *where(apr_pool_t *p, const ap_directive_t *d)
{
    return apr_psprintf(p, "%s:%d", d->filename ? d->filename : "?", d->line_num);
}

static int mpm_number(int query)
{
    int v = 0;

    return ap_mpm_query(query, &v) == APR_SUCCESS ? v : 0;
}

static apr_int64_t fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY
        || rl.rlim_cur > (rlim_t)1 << 30) {
        return (apr_int64_t)1 << 30;
    }
    return (apr_int64_t)rl.rlim_cur;
}

/* The event MPM: a child stops accepting once its connections (less those
 * in a lingering close) reach ThreadsPerChild + idle workers x factor.  A
 * WebSocket handed to a loop thread holds no worker but stays counted
 * (suspended), so with every worker idle a child holds
 * ThreadsPerChild x (1 + factor); the parent starts another child only
 * when the accepting ones run out of idle workers, up to
 * MaxRequestWorkers / ThreadsPerChild children. */
static void check_event(server_rec *s, apr_pool_t *p, const config_scan *sc)
{
    apr_int64_t threads = mpm_number(AP_MPMQ_MAX_THREADS);
    apr_int64_t children = mpm_number(AP_MPMQ_MAX_DAEMONS);
    apr_int64_t factor = effective_factor(sc->factor);
    apr_int64_t per_child = threads * (1 + factor);
    apr_int64_t cap = children * per_child;
    apr_int64_t nofile = fd_limit();
    apr_int64_t fd_per_child = nofile > CHILD_FD_RESERVE ? nofile - CHILD_FD_RESERVE : 0;
    const char *factor_from = sc->factor ? where(p, sc->factor) : "the default";

    if (threads < 1 || children < 1) {
        return;
    }
    if (per_child > fd_per_child) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     WSOCKNO(1411) "the event MPM lets each child accept up to %"
                     APR_INT64_T_FMT " connections (ThreadsPerChild %" APR_INT64_T_FMT
                     " x (1 + AsyncRequestWorkerFactor %" APR_INT64_T_FMT ", %s)), but a "
                     "process may open only %" APR_INT64_T_FMT " files: a full child "
                     "fails to accept and exits.  Raise the limit (Debian: "
                     "APACHE_ULIMIT_MAX_FILES in /etc/apache2/envvars) or lower "
                     "AsyncRequestWorkerFactor", per_child, threads, factor,
                     factor_from, nofile);
        return;
    }
    if (cap < CAPACITY_TARGET && cap * CAPACITY_FAR_BELOW_RATIO < children * fd_per_child) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     WSOCKNO(1410) "the event MPM stops accepting at about %" APR_INT64_T_FMT
                     " WebSockets (%" APR_INT64_T_FMT " children from MaxRequestWorkers / "
                     "ThreadsPerChild, each %" APR_INT64_T_FMT " = ThreadsPerChild %"
                     APR_INT64_T_FMT " x (1 + AsyncRequestWorkerFactor %" APR_INT64_T_FMT
                     ", %s)), while %" APR_INT64_T_FMT " open files per process would "
                     "allow about %" APR_INT64_T_FMT ".  Raise AsyncRequestWorkerFactor "
                     "(wsock.conf sets 100) or MaxRequestWorkers", cap, children,
                     per_child, threads, factor, factor_from, nofile,
                     children * fd_per_child);
    }
}

/* prefork, worker, or WSockDriver blocking: a worker per WebSocket. */
static void check_blocking(server_rec *s)
{
    int threaded = mpm_number(AP_MPMQ_IS_THREADED);
    apr_int64_t workers = (apr_int64_t)mpm_number(AP_MPMQ_MAX_DAEMONS)
                          * (threaded ? mpm_number(AP_MPMQ_MAX_THREADS) : 1);
    const char *name = ap_show_mpm();

    if (workers > 0 && workers < BLOCKING_FEW_WORKERS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     WSOCKNO(1413) "WebSockets run on the blocking driver here (%s%s): each "
                     "holds a worker for its whole life, so at most %" APR_INT64_T_FMT
                     " WebSockets (MaxRequestWorkers), and none is left for other "
                     "requests then.  Use the event MPM, or raise MaxRequestWorkers",
                     name ? name : "this MPM",
                     wsock_server.driver_blocking_only ? ", WSockDriver blocking" : "",
                     workers);
    }
}

static void warn_h2(server_rec *s, apr_pool_t *p, const server_scan *srv,
                    const server_scan *main)
{
    const ap_directive_t *h2ws = srv->h2ws ? srv->h2ws : main->h2ws;
    /* the main server's <Location>s apply in every virtual host too */
    const ap_directive_t *ws = srv->websocket ? srv->websocket : main->websocket;

    if (srv != main && srv->h2ws == NULL && srv->websocket == NULL) {
        return;                     /* all inherited: the main server's warning says it */
    }
    if (h2ws == NULL || ws == NULL || h2ws->args == NULL
        || !first_word_is(h2ws->args, "on")) {
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 WSOCKNO(1414) "H2WebSockets on (%s) covers the WebSocket location of %s%s%s: "
                 "browsers then open WebSockets over HTTP/2 (RFC 8441), which mod_wsock "
                 "does not serve (it answers 501).  Set H2WebSockets off (the default) "
                 "for this server", where(p, h2ws), where(p, ws),
                 srv->node ? " in <VirtualHost " : "",
                 srv->node ? apr_pstrcat(p, srv->node->args, ">", NULL) : "");
}

static void check_configuration(server_rec *s, apr_pool_t *ptemp)
{
    config_scan sc;
    int i;

    memset(&sc, 0, sizeof(sc));
    sc.vhosts = apr_array_make(ptemp, 8, sizeof(server_scan));
    scan_tree(ap_conftree, &sc, &sc.main);
    if (sc.websockets == 0) {
        return;
    }
    if (sc.factor_before) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     WSOCKNO(1412) "AsyncRequestWorkerFactor is set more than once: %s "
                     "(read last) overrides %s.  Keep one, after the modules' "
                     "configuration (Debian: conf-enabled/), or edit wsock.conf",
                     where(ptemp, sc.factor), where(ptemp, sc.factor_before));
    }
    if (mpm_number(AP_MPMQ_IS_ASYNC) && !wsock_server.driver_blocking_only) {
        check_event(s, ptemp, &sc);
    }
    else {
        check_blocking(s);
    }
    warn_h2(s, ptemp, &sc.main, &sc.main);
    for (i = 0; i < sc.vhosts->nelts; i++) {
        warn_h2(s, ptemp, &APR_ARRAY_IDX(sc.vhosts, i, server_scan), &sc.main);
    }
}

/* Each start and restart, in the parent: not the first of the two passes
 * over the configuration at start (its error log is not open yet), so
 * once per start, into the error log. */
static int capacity_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                server_rec *s)
{
    (void)pconf; (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        check_configuration(s, ptemp);
    }
    return OK;
}

/* `apachectl configtest` (-t): the same warnings, on its output. */
static void capacity_test_config(apr_pool_t *pconf, server_rec *s)
{
    apr_pool_t *ptemp;

    if (apr_pool_create(&ptemp, pconf) == APR_SUCCESS) {
        check_configuration(s, ptemp);
        apr_pool_destroy(ptemp);
    }
}

void wsock_capacity_register_hooks(void)
{
    ap_hook_post_config(capacity_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_test_config(capacity_test_config, NULL, NULL, APR_HOOK_MIDDLE);
}
