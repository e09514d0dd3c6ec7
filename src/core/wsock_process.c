/*
 * wsock_process.c — the life of mod_wsock's processes: the parent makes
 * the shared memory (the room bus) and watches for children that end
 * without cleaning up; each child starts its lists, rooms, handlers, bus
 * thread and loop threads, and tells every client "going away" when it
 * stops.
 */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <mpm_common.h>

#include "wsock_bus.h"
#include "wsock_capacity.h"
#include "wsock_config.h"
#include "wsock_counters.h"
#include "wsock_handlers.h"
#include "wsock_live.h"
#include "wsock_log.h"
#include "wsock_loop.h"
#include "wsock_process.h"
#include "wsock_rooms.h"
#include "wsock_threads.h"

APLOG_USE_MODULE(wsock);

static int process_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf; (void)plog; (void)ptemp;
    wsock_server_settings_reset();
    wsock_counters_pre_config();
    return OK;
}

/* The parent: the room bus, once (it lives across restarts). */
static int process_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    (void)pconf; (void)plog; (void)ptemp;
    /* failures are logged; rooms stay per child, counters stay at 0 */
    wsock_counters_post_config(s);
    wsock_bus_post_config(s, wsock_server.bus_size, wsock_server.bus_rooms);
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG
        && !wsock_server.driver_blocking_only) {
        /* once, not for the configuration check */
        wsock_loops_log_sizing(s, wsock_server.loop_threads);
    }
    return OK;
}

/* The parent: a child process ended (maybe killed, without its clean-up). */
static void process_child_status(server_rec *s, pid_t pid, ap_generation_t gen, int slot,
                                 mpm_child_status state)
{
    (void)gen;
    (void)slot;
    if (state == MPM_CHILD_EXITED) {
        wsock_bus_child_exited(s, pid);
        wsock_counters_child_exited(pid);
    }
}

static int process_monitor(apr_pool_t *p, server_rec *s)
{
    (void)p;
    wsock_bus_monitor(s);
    return DECLINED;                /* let other modules' monitors run too */
}

static void process_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    sigset_t old;

    /* threads started here (loops, bus, handlers' and plugins' own) are
     * born with every signal blocked (wsock_threads.h) */
    wsock_signals_hold(&old);
    wsock_counters_child_init(pchild, s);
    rv = wsock_live_child_init(pchild);
    if (rv == APR_SUCCESS) {
        rv = wsock_rooms_child_init(pchild);
    }
    wsock_handlers_child_init(pchild, s);
    if (rv == APR_SUCCESS) {
        wsock_bus_child_init(pchild, s);
    }
    if (rv == APR_SUCCESS && !wsock_server.driver_blocking_only) {
        wsock_loops_start(pchild, s, wsock_server.loop_threads);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSOCKNO(0001) "cannot create this child's connection list or "
                     "rooms; stop and room delivery will not reach its clients");
    }
    wsock_signals_release(&old);
}

/* The child is going down (stop or graceful-stop): tell every client. */
static void process_child_stopping(apr_pool_t *pchild, int graceful)
{
    (void)pchild;
    (void)graceful;
    wsock_live_going_away();
}

void wsock_process_register_hooks(void)
{
    ap_hook_pre_config(process_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(process_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(process_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_status(process_child_status, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(process_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(process_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    wsock_capacity_register_hooks();    /* startup warnings (src/ops) */
}
