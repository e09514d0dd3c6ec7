/*
 * wsock_driver.c — the blocking driver: one thread, one connection.
 *
 * The thread polls the client socket and a wake-up pipe (APR's wakeable
 * pollset), so that other threads can hand it messages or a close without
 * touching the connection's filters.  Reads go through the input filters
 * without blocking; a poll that says "readable" is only a hint, because
 * the filters (mod_ssl, or data that came with the handshake) may already
 * hold bytes the socket won't signal again.
 */
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <httpd.h>
#include <ap_mpm.h>
#include <http_core.h>
#include <http_log.h>
#include <apr_poll.h>
#include <apr_signal.h>

#include "wsock_driver.h"
#include "wsock_live.h"
#include "wsock_output.h"
#include "wsock_socket.h"

APLOG_USE_MODULE(wsock);

static void pollset_wake(void *baton)
{
    apr_pollset_wakeup((apr_pollset_t *)baton);
}

/* ---- stopping under a non-threaded MPM (prefork) ----------------------
 * prefork tells a child to stop with a signal and runs no child_stopping
 * hook: graceful-stop only flips the MPM state, and SIGTERM's handler
 * exits on the spot.  Either signal interrupts our poll, but one that
 * lands while the thread reads or writes interrupts nothing (those
 * restart), and a busy client keeps it reading and writing.  So the state
 * is checked on every turn, and the poll sleeps at most STOP_RECHECK: a
 * signal in the instant between the check and the poll costs that much.
 * While a WebSocket is open SIGTERM only sets a flag, and is raised again
 * once the client has been told 1001. */
#define STOP_RECHECK apr_time_from_msec(500)

static volatile sig_atomic_t term_requested;
static volatile sig_atomic_t term_fd = -1;  /* the WebSocket's socket, or -1 */

static void note_sigterm(int sig)
{
    struct pollfd p;

    (void)sig;
    term_requested = 1;
    /* A client that does not read can hold this thread in a blocking write
     * until the server's Timeout, where the flag is never looked at: if the
     * socket cannot take a byte now, shut it down, so that the write fails
     * and the child goes (poll and shutdown are async-signal-safe). */
    p.fd = term_fd;
    p.events = POLLOUT;
    p.revents = 0;
    if (p.fd >= 0 && poll(&p, 1, 0) == 0) {
        shutdown(p.fd, SHUT_WR);
    }
}

static int mpm_is_threaded(void)
{
    int threaded = 0;

    return ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) == APR_SUCCESS
           && threaded != AP_MPMQ_NOT_SUPPORTED;
}

static int mpm_is_stopping(void)
{
    int state = AP_MPMQ_RUNNING;

    ap_mpm_query(AP_MPMQ_MPM_STATE, &state);
    return state == AP_MPMQ_STOPPING || term_requested;
}

void wsock_drive_blocking(wsock_conn *wc)
{
    apr_pollset_t *ps = NULL;
    apr_pollfd_t pfd = { 0 };
    apr_status_t rv;
    int read_now = 1;               /* the filters may already hold input */
    int threaded = mpm_is_threaded();
    apr_sigfunc_t *old_term = NULL;
    wsock_socket_swap *sock_swap = wsock_socket_own(wc->c);

    rv = apr_pollset_create(&ps, 1, wc->pool, APR_POLLSET_WAKEABLE);
    if (rv == APR_SUCCESS) {
        pfd.p = wc->pool;
        pfd.desc_type = APR_POLL_SOCKET;
        pfd.reqevents = APR_POLLIN;
        pfd.desc.s = ap_get_conn_socket(wc->c);
        rv = apr_pollset_add(ps, &pfd);
    }
    if (rv != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, wc->c,
                      WSOCKNO(0106) "cannot create the connection's pollset");
        wsock_conn_start_close(wc, WSOCK_CLOSE_INTERNAL_ERROR, "server error");
        wsock_conn_finish(wc);
        wsock_conn_let_go_wait(wc);
        wsock_socket_restore(sock_swap);
        return;
    }
    wsock_conn_set_wake(wc, pollset_wake, ps);
    if (!threaded) {
        apr_os_sock_t fd = -1;

        term_requested = 0;
        if (apr_os_sock_get(&fd, ap_get_conn_socket(wc->c)) == APR_SUCCESS) {
            term_fd = fd;
        }
        old_term = apr_signal(SIGTERM, note_sigterm);
    }

    wsock_live_add(wc);             /* on_open already ran, before the 101 */

    while (wc->state != WSOCK_STATE_DONE) {
        apr_int32_t n = 0;
        const apr_pollfd_t *out;
        apr_interval_time_t timeout;

        if (read_now) {
            rv = wsock_conn_read(wc);
            read_now = (rv == APR_INCOMPLETE);
            if (wc->state == WSOCK_STATE_DONE) {
                break;
            }
        }
        wsock_conn_flush(wc);
        if (wc->state == WSOCK_STATE_DONE) {
            break;
        }
        wsock_output_writable_check(wc);

        timeout = read_now ? 0 : wsock_conn_next_timeout(wc, apr_time_now());
        if (!threaded) {
            if (!wsock_live_is_stopping() && mpm_is_stopping()) {
                wsock_live_going_away();
                continue;           /* its 1001 is queued: flush it now */
            }
            if (timeout < 0 || timeout > STOP_RECHECK) {
                timeout = STOP_RECHECK;
            }
        }
        rv = apr_pollset_poll(ps, timeout, &n, &out);
        if (rv == APR_SUCCESS && n > 0) {
            read_now = 1;
        }
        else if (rv != APR_SUCCESS && !APR_STATUS_IS_TIMEUP(rv)
                 && !APR_STATUS_IS_EINTR(rv)) {  /* EINTR: a wake-up or a signal */
            ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, wc->c,
                          WSOCKNO(0107) "poll on the WebSocket connection failed");
            wsock_conn_start_close(wc, WSOCK_CLOSE_INTERNAL_ERROR, "server error");
            break;
        }
        wsock_conn_tick(wc, apr_time_now());
    }

    wsock_live_remove(wc);
    wsock_conn_finish(wc);
    wsock_conn_let_go_wait(wc);     /* no other thread holds it from here on */
    wsock_socket_restore(sock_swap);
    if (!threaded) {
        term_fd = -1;
        apr_signal(SIGTERM, old_term);
        if (term_requested) {
            raise(SIGTERM);         /* now let prefork end the child */
        }
    }
}
