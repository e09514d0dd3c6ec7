/*
 * wsock_ipcap.c — WSockMaxConnectionsPerIP across the server's children.
 *
 * The table lives in anonymous shared memory made by the parent in
 * post_config and kept across restarts (ap_retained_data), so that the
 * children of an old generation that still hold WebSockets after a
 * graceful restart keep counting, and giving back, in the same table as
 * the new ones.  It is made only once some section sets a limit, with
 * room for WSockIPTableSize connections; a new size takes effect at a
 * restart when no connection is counted.
 *
 * A full table refuses (503): letting connections in uncounted would let
 * whoever fills it lift every client's limit.
 *
 * Stale counts: a child that crashes or is killed never gives back its
 * connections' counts.  Every slot records the pid that holds it, and the
 * parent gives back the slots of a child when the MPM tells it the child
 * exited (child_status hook): at that moment the pid cannot have been
 * reused by a new child yet (the parent forks them, and is busy here), and
 * no process is polled with kill().
 */
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <util_mutex.h>
#include <apr_global_mutex.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include "wsock_config.h"
#include "wsock_iptable.h"
#include "wsock_ipcap.h"
#include "wsock_log.h"

APLOG_USE_MODULE(wsock);

#define IPCAP_DEFAULT_CONNS 32768   /* ~2.4 MiB of shared memory */
#define IPCAP_MAX_LIMIT     1000000
#define IPCAP_MUTEX_TYPE    "wsock-ipcap"
/* Named for the layout of the shared memory: after an upgrade, a graceful
 * restart must not hand the new code a table laid out by the old one. */
#define IPCAP_RETAINED      "mod_wsock.ipcap.2"
/* What a refused client is told (a full table empties as WebSockets end). */
#define IPCAP_RETRY_AFTER   "30"
/* A full table says so at most this often (with how many were refused). */
#define IPCAP_REPORT_EVERY  apr_time_from_sec(60)
/* Slots looked at per hold of the lock when reaping a dead child. */
#define IPCAP_REAP_CHUNK    4096

typedef struct {
    apr_shm_t *shm;
    apr_global_mutex_t *mutex;
    wsock_iptable *table;
} ipcap_shared;

struct wsock_ipcap_hold {
    int slot;                       /* -1: given back */
};

static ipcap_shared *shared;        /* NULL: no table (no limit anywhere yet) */
static int ipcap_used;              /* this configuration sets a limit */
static apr_uint32_t table_conns = IPCAP_DEFAULT_CONNS;     /* WSockIPTableSize */

const char *wsock_cmd_max_conns_per_ip(cmd_parms *cmd, void *conf, const char *arg)
{
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);

    if (end == arg || *end || n < 0 || n > IPCAP_MAX_LIMIT) {
        return apr_psprintf(cmd->pool, "WSockMaxConnectionsPerIP: '%s' is not a number from "
                            "0 (no limit) to %d", arg, IPCAP_MAX_LIMIT);
    }
    ((wsock_dir_conf *)conf)->max_conns_per_ip = (int)n;
    if (n > 0) {
        ipcap_used = 1;
    }
    return NULL;
}

const char *wsock_cmd_ip_table_size(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;
    apr_int64_t n;

    (void)conf;
    if (err) {
        return err;
    }
    n = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || n < 1 || n > WSOCK_IPTABLE_MAX_CONNS) {
        return apr_psprintf(cmd->pool, "WSockIPTableSize: '%s' is not a number of WebSockets "
                            "from 1 to %u", arg, WSOCK_IPTABLE_MAX_CONNS);
    }
    table_conns = (apr_uint32_t)n;
    return NULL;
}

/* What the client's address (mod_remoteip's, if any) is counted under. */
static void client_key(request_rec *r, unsigned char key[16])
{
    const apr_sockaddr_t *sa = r->useragent_addr ? r->useragent_addr
                                                 : r->connection->client_addr;
    int ipv6 = 0;

#if APR_HAVE_IPV6
    ipv6 = sa->family == APR_INET6;
#endif
    wsock_iptable_key(key, (const unsigned char *)sa->ipaddr_ptr, ipv6);
}

/* Once: when the connection ends, else when its pool goes.  The cleanup
 * stays registered (a no-op by then): the connection may end on a loop
 * thread, which must not touch the pool's list of cleanups. */
static apr_status_t release_hold(void *data)
{
    wsock_ipcap_hold *h = data;

    if (h->slot >= 0 && apr_global_mutex_lock(shared->mutex) == APR_SUCCESS) {
        wsock_iptable_release(shared->table, h->slot);
        apr_global_mutex_unlock(shared->mutex);
    }
    h->slot = -1;
    return APR_SUCCESS;
}

/* 503: the count cannot be kept now; letting the WebSocket in uncounted
 * would lift the limit. */
static int unavailable(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "Retry-After", IPCAP_RETRY_AFTER);
    return HTTP_SERVICE_UNAVAILABLE;
}

int wsock_ipcap_acquire(request_rec *r, int limit, wsock_ipcap_hold **hold)
{
    apr_pool_t *cpool = r->connection->pool;
    unsigned char key[16];
    apr_status_t rv;
    wsock_ipcap_hold *h;
    apr_uint32_t hash, open_now = 0, report = 0, conns;
    int slot;

    *hold = NULL;
    if (limit <= 0) {
        return OK;
    }
    if (shared == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      WSOCKNO(0724) "WebSocket handshake for %s refused with 503: this child "
                      "has no per-IP connection table (see WSOCK0725 at its start)", r->uri);
        return unavailable(r);
    }
    client_key(r, key);
    hash = wsock_iptable_hash(shared->table, key);     /* not under the lock */
    if ((rv = apr_global_mutex_lock(shared->mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      WSOCKNO(0724) "WebSocket handshake for %s refused with 503: cannot "
                      "lock the per-IP connection table", r->uri);
        return unavailable(r);
    }
    slot = wsock_iptable_acquire(shared->table, key, hash, (apr_uint32_t)limit,
                                 (apr_int32_t)getpid());
    if (slot == WSOCK_IPTABLE_OVER) {
        open_now = wsock_iptable_count(shared->table, key, hash);
    }
    else if (slot == WSOCK_IPTABLE_FULL) {
        report = wsock_iptable_note_full(shared->table, r->request_time, IPCAP_REPORT_EVERY);
    }
    conns = wsock_iptable_conns(shared->table);
    apr_global_mutex_unlock(shared->mutex);

    if (slot == WSOCK_IPTABLE_OVER) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      WSOCKNO(0720) "WebSocket handshake for %s refused with 429: client %s "
                      "has %u WebSockets open, WSockMaxConnectionsPerIP here is %d",
                      r->uri, r->useragent_ip, open_now, limit);
        return HTTP_TOO_MANY_REQUESTS;
    }
    if (slot == WSOCK_IPTABLE_FULL) {
        if (report) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          WSOCKNO(0721) "the per-IP connection table is full (%u WebSockets "
                          "counted, WSockIPTableSize); refused %u WebSocket%s with 503 "
                          "(said at most once a minute)", conns, report,
                          report == 1 ? "" : "s");
        }
        return unavailable(r);
    }
    h = apr_palloc(cpool, sizeof(*h));
    h->slot = slot;
    apr_pool_cleanup_register(cpool, h, release_hold, apr_pool_cleanup_null);
    *hold = h;
    return OK;
}

void wsock_ipcap_release(wsock_ipcap_hold *hold)
{
    if (hold) {
        release_hold(hold);
    }
}

/* ---- the table's life ---------------------------------------------- */

static int ipcap_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog; (void)ptemp;
    ipcap_used = 0;                 /* the directives are read again */
    table_conns = IPCAP_DEFAULT_CONNS;
    return ap_mutex_register(pconf, IPCAP_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

/* Keeps a table whose size is no longer the configured one while it
 * counts connections (of children of the old generation); else drops it,
 * to be made anew. */
static void drop_if_resized(ipcap_shared *sh, server_rec *s)
{
    apr_uint32_t used = 1, have = wsock_iptable_conns(sh->table);

    if (have == table_conns) {
        return;
    }
    if (apr_global_mutex_lock(sh->mutex) == APR_SUCCESS) {
        used = wsock_iptable_used(sh->table);
        apr_global_mutex_unlock(sh->mutex);
    }
    if (used) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     WSOCKNO(0727) "WSockIPTableSize %u takes effect at a restart with no "
                     "WebSocket counted; the table keeps room for %u", table_conns, have);
        return;
    }
    apr_shm_destroy(sh->shm);
    sh->shm = NULL;
    sh->table = NULL;
}

static int ipcap_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                             server_rec *s)
{
    ipcap_shared *sh = ap_retained_data_get(IPCAP_RETAINED);
    apr_size_t bytes = wsock_iptable_size(table_conns);
    wsock_hashkey key;
    apr_status_t rv;

    (void)pconf; (void)plog; (void)ptemp;
    if (sh && sh->table && ipcap_used) {
        drop_if_resized(sh, s);
    }
    if (sh && sh->table) {
        shared = sh;
        return OK;
    }
    if (!ipcap_used) {
        return OK;
    }
    if (sh == NULL) {
        sh = ap_retained_data_create(IPCAP_RETAINED, sizeof(*sh));
    }
    /* In the process pool: the table outlives this generation. */
    rv = apr_shm_create(&sh->shm, bytes, NULL, s->process->pool);
    if (rv == APR_SUCCESS && sh->mutex == NULL) {
        rv = ap_global_mutex_create(&sh->mutex, NULL, IPCAP_MUTEX_TYPE, NULL, s,
                                    s->process->pool, 0);
    }
    if (rv == APR_SUCCESS) {
        rv = wsock_hashkey_random(&key);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSOCKNO(0722) "cannot create the per-IP connection table "
                     "(WSockMaxConnectionsPerIP, %" APR_SIZE_T_FMT " bytes for "
                     "WSockIPTableSize %u)", bytes, table_conns);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sh->table = wsock_iptable_init(apr_shm_baseaddr_get(sh->shm), table_conns, &key);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 WSOCKNO(0726) "per-IP connection table: room for %u WebSockets, %"
                 APR_SIZE_T_FMT " bytes of shared memory (WSockIPTableSize)", table_conns, bytes);
    shared = sh;
    return OK;
}

static void ipcap_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    if (shared == NULL) {
        return;
    }
    rv = apr_global_mutex_child_init(&shared->mutex,
                                     apr_global_mutex_lockfile(shared->mutex), pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSOCKNO(0725) "cannot attach to the per-IP connection table's mutex; "
                     "this child refuses (503) WebSockets where WSockMaxConnectionsPerIP "
                     "is set");
        shared = NULL;
    }
}

/* In the parent, when the MPM has reaped a child: give back what it held
 * (nothing, unless it died with WebSockets open). */
static void ipcap_child_status(server_rec *s, pid_t pid, ap_generation_t gen, int slot,
                               mpm_child_status state)
{
    apr_uint32_t from = 0, n = 0, conns;

    (void)gen; (void)slot;
    if (state != MPM_CHILD_EXITED || shared == NULL || pid <= 0) {
        return;
    }
    conns = wsock_iptable_conns(shared->table);
    while (from < conns) {
        if (apr_global_mutex_lock(shared->mutex) != APR_SUCCESS) {
            break;
        }
        n += wsock_iptable_reap(shared->table, (apr_int32_t)pid, &from, IPCAP_REAP_CHUNK);
        apr_global_mutex_unlock(shared->mutex);
    }
    if (n) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     WSOCKNO(0723) "gave back %u per-IP WebSocket counts of child process "
                     "%" APR_PID_T_FMT ", which ended without closing them", n, pid);
    }
}

void wsock_ipcap_register_hooks(void)
{
    ap_hook_pre_config(ipcap_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(ipcap_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ipcap_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_status(ipcap_child_status, NULL, NULL, APR_HOOK_MIDDLE);
}
