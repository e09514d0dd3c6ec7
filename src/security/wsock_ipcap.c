/*
 * wsock_ipcap.c — WSockMaxConnectionsPerIP across the server's children.
 *
 * The table lives in anonymous shared memory made by the parent in
 * post_config and kept across restarts (ap_retained_data), so that the
 * children of an old generation that still hold WebSockets after a
 * graceful restart keep counting, and giving back, in the same table as
 * the new ones.  It is made only once some section sets a limit.
 *
 * Stale counts: a child that crashes or is killed never runs its
 * connections' pool cleanups.  Every slot records the pid that holds it,
 * and the parent's monitor hook (about once a second) gives back the
 * slots of pids that no longer exist.  A pid reused by a new child before
 * that keeps the stale slots until it ends too.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
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

/* Connections counted at once, server-wide (~1.3 MiB of shared memory);
 * beyond that new connections are let in uncounted (logged once). */
#define IPCAP_CONNS      32768
#define IPCAP_MAX_LIMIT  1000000
#define IPCAP_MUTEX_TYPE "wsock-ipcap"
#define IPCAP_RETAINED   "mod_wsock-ipcap"

typedef struct {
    apr_shm_t *shm;
    apr_global_mutex_t *mutex;
    wsock_iptable *table;
} ipcap_shared;

struct wsock_ipcap_hold {
    apr_pool_t *pool;               /* the connection's */
    int slot;
};

static ipcap_shared *shared;        /* NULL: no table (no limit anywhere yet) */
static int ipcap_used;              /* this configuration sets a limit */
static int full_logged;             /* per child: "table full" said once */

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

static apr_status_t release_hold(void *data)
{
    wsock_ipcap_hold *h = data;

    if (apr_global_mutex_lock(shared->mutex) == APR_SUCCESS) {
        wsock_iptable_release(shared->table, h->slot);
        apr_global_mutex_unlock(shared->mutex);
    }
    return APR_SUCCESS;
}

int wsock_ipcap_acquire(request_rec *r, int limit, wsock_ipcap_hold **hold)
{
    apr_pool_t *cpool = r->connection->pool;
    unsigned char key[16];
    apr_status_t rv;
    wsock_ipcap_hold *h;
    apr_uint32_t open_now = 0;
    int slot;

    *hold = NULL;
    if (limit <= 0 || shared == NULL) {
        return OK;
    }
    client_key(r, key);
    if ((rv = apr_global_mutex_lock(shared->mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      WSOCKNO(0724) "cannot lock the per-IP connection table; "
                      "WebSocket %s is not counted", r->uri);
        return OK;
    }
    slot = wsock_iptable_acquire(shared->table, key, (apr_uint32_t)limit, (apr_int32_t)getpid());
    if (slot == WSOCK_IPTABLE_OVER) {
        open_now = wsock_iptable_count(shared->table, key);
    }
    apr_global_mutex_unlock(shared->mutex);

    if (slot == WSOCK_IPTABLE_OVER) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      WSOCKNO(0720) "WebSocket handshake for %s refused with 429: client %s "
                      "has %u WebSockets open, WSockMaxConnectionsPerIP here is %d",
                      r->uri, r->useragent_ip, open_now, limit);
        return HTTP_TOO_MANY_REQUESTS;
    }
    if (slot == WSOCK_IPTABLE_FULL) {
        if (!full_logged) {
            full_logged = 1;
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          WSOCKNO(0721) "the per-IP connection table is full (%d WebSockets "
                          "counted); more are let in without a count", IPCAP_CONNS);
        }
        return OK;
    }
    h = apr_palloc(cpool, sizeof(*h));
    h->pool = cpool;
    h->slot = slot;
    apr_pool_cleanup_register(cpool, h, release_hold, apr_pool_cleanup_null);
    *hold = h;
    return OK;
}

void wsock_ipcap_release(wsock_ipcap_hold *hold)
{
    if (hold) {
        apr_pool_cleanup_run(hold->pool, hold, release_hold);
    }
}

/* ---- the table's life ---------------------------------------------- */

static int ipcap_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog; (void)ptemp;
    ipcap_used = 0;                 /* the directives are read again */
    return ap_mutex_register(pconf, IPCAP_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

static int ipcap_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                             server_rec *s)
{
    ipcap_shared *sh = ap_retained_data_get(IPCAP_RETAINED);
    apr_uint32_t seed = 0;
    apr_status_t rv;

    (void)pconf; (void)plog; (void)ptemp;
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
    rv = apr_shm_create(&sh->shm, wsock_iptable_size(IPCAP_CONNS), NULL, s->process->pool);
    if (rv == APR_SUCCESS) {
        rv = ap_global_mutex_create(&sh->mutex, NULL, IPCAP_MUTEX_TYPE, NULL, s,
                                    s->process->pool, 0);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_generate_random_bytes((unsigned char *)&seed, sizeof(seed));
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSOCKNO(0722) "cannot create the per-IP connection table "
                     "(WSockMaxConnectionsPerIP)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sh->table = wsock_iptable_init(apr_shm_baseaddr_get(sh->shm), IPCAP_CONNS, seed);
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
                     "this child counts no WebSocket");
        shared = NULL;
    }
}

static int pid_alive(apr_int32_t pid, void *baton)
{
    (void)baton;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* In the parent, about once a second: give back what dead children held. */
static int ipcap_monitor(apr_pool_t *p, server_rec *s)
{
    apr_uint32_t n;

    (void)p;
    if (shared == NULL || apr_global_mutex_lock(shared->mutex) != APR_SUCCESS) {
        return DECLINED;
    }
    n = wsock_iptable_reap(shared->table, pid_alive, NULL);
    apr_global_mutex_unlock(shared->mutex);
    if (n) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     WSOCKNO(0723) "gave back %u per-IP WebSocket counts of child processes "
                     "that ended without closing them", n);
    }
    return DECLINED;
}

void wsock_ipcap_register_hooks(void)
{
    ap_hook_pre_config(ipcap_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(ipcap_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ipcap_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(ipcap_monitor, NULL, NULL, APR_HOOK_MIDDLE);
}
