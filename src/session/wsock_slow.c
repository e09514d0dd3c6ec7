/*
 * wsock_slow.c — slow consumers: a connection whose bounded outbound queue
 * is full, because its client reads more slowly than the others publish to
 * it (or not at all).  WSockSendQueue chooses what happens:
 *
 *  drop   the message misses that connection; counted, logged once when
 *         dropping starts and as a total when the connection ends.
 *  close  the connection is closed with 1008 "slow consumer" and what is
 *         queued for it is thrown away.
 *
 * Either way the sender only takes the connection's mutex: it never waits
 * for the slow client, so the publisher and the rest of a room carry on.
 *
 * A close must end a stuck connection promptly.  The owner thread of a
 * client that stopped reading sits in a blocking write (the core output
 * filter waits up to the server's Timeout for the socket to drain), where
 * it would not see the close request for minutes.  So the sender checks
 * the socket: if it cannot take even a close frame now, it shuts the
 * socket down for writing; the blocked write then fails at once and the
 * owner ends the connection.  shutdown(2) on the socket is safe from any
 * thread; the filters and bucket allocators, which are not, stay the
 * owner's.  A client that can still take the close frame gets it (1008)
 * from its owner, as in any server-initiated close.
 */
#include <stdlib.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <apr_poll.h>
#include <apr_strings.h>

#include "wsock_output.h"
#include "wsock_peer_acked.h"
#include "wsock_slow.h"
#include "wsock_counters.h"

APLOG_USE_MODULE(wsock);

enum { SLOW_LOG_NONE, SLOW_LOG_DROP, SLOW_LOG_CLOSE };

static const char slow_reason[] = "slow consumer";

void wsock_slow_full_locked(wsock_conn *wc, wsock_slow_action *a)
{
    wc->q_dropped++;
    wsock_count(WSOCK_C_QUEUE_DROPS, 1);
    a->msgs = wc->q_msgs;
    a->bytes = wc->q_bytes;
    if (wc->set.queue_policy != WSOCK_QUEUE_CLOSE) {
        if (!wc->q_drop_logged) {
            wc->q_drop_logged = 1;
            a->log = SLOW_LOG_DROP;
        }
        return;
    }
    /* Nothing queued goes out any more, and nothing more is queued. */
    a->discard = wc->q;
    a->discard_n = wc->q_msgs;
    wc->q_discarded += wc->q_msgs;
    wc->q = NULL;
    wc->q_cap = wc->q_msgs = wc->q_bytes = 0;
    wc->q_closed = 1;
    wc->q_slow = 1;
    wsock_count(WSOCK_C_SLOW_CLOSES, 1);
    if (!wc->pending_close) {
        wc->pending_close = 1;
        wc->pending_code = WSOCK_CLOSE_POLICY;
        apr_cpystrn(wc->pending_reason, slow_reason, sizeof(wc->pending_reason));
    }
    a->log = SLOW_LOG_CLOSE;
    a->cut = 1;
}

void wsock_slow_refused_locked(wsock_conn *wc, wsock_slow_action *a)
{
    /* The socket could take the close frame when the queue filled up, yet
     * the owner may have got stuck since: every later message checks. */
    a->cut = wc->q_slow && !wc->q_cut;
}

/* Shuts the socket down for writing if it cannot take a byte now: the
 * owner is (or is about to be) blocked writing to a client that does not
 * read. */
void wsock_slow_cut_if_stuck(wsock_conn *wc)
{
    apr_socket_t *sock;
    apr_pollfd_t pfd = { 0 };
    apr_int32_t n = 0;

    if (!wc->upgraded || (sock = ap_get_conn_socket(wc->c)) == NULL) {
        return;                     /* before the 101 the owner is not writing */
    }
    pfd.desc_type = APR_POLL_SOCKET;
    pfd.reqevents = APR_POLLOUT;
    pfd.desc.s = sock;
    if (apr_poll(&pfd, 1, &n, 0) == APR_SUCCESS && n > 0) {
        return;
    }
    apr_socket_shutdown(sock, APR_SHUTDOWN_WRITE);
    apr_thread_mutex_lock(wc->mutex);
    wc->q_cut = 1;
    apr_thread_mutex_unlock(wc->mutex);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, wc->f_server,
                 WSOCKNO(0603) "WebSocket %s: client %s does not read; its connection "
                 "is shut down", wc->f_uri, wc->f_conn_id);
}

void wsock_slow_cut_stuck(wsock_conn **wcs, apr_size_t n, apr_interval_time_t grace)
{
    /* One poll entry per connection, which it names (client_data), and
     * what its client had acknowledged when the grace began. */
    apr_pollfd_t *fds = calloc(n ? n : 1, sizeof(*fds));
    apr_uint64_t *acked = malloc((n ? n : 1) * sizeof(*acked));
    apr_time_t deadline = apr_time_now() + grace;
    apr_size_t m = 0;

    if (fds == NULL || acked == NULL) {
        for (apr_size_t i = 0; i < n; i++) {
            wsock_slow_cut_if_stuck(wcs[i]);    /* out of memory: no grace */
        }
        free(fds);
        free(acked);
        return;
    }
    for (apr_size_t i = 0; i < n; i++) {
        apr_socket_t *sock = wcs[i]->upgraded ? ap_get_conn_socket(wcs[i]->c) : NULL;

        if (sock) {
            fds[m].desc_type = APR_POLL_SOCKET;
            fds[m].reqevents = APR_POLLOUT;
            fds[m].desc.s = sock;
            fds[m].client_data = wcs[i];
            acked[m++] = wsock_peer_acked(sock);
        }
    }
    while (m > 0) {
        apr_interval_time_t left = deadline - apr_time_now();
        apr_int32_t ready = 0;
        apr_status_t rv;

        rv = apr_poll(fds, (apr_int32_t)m, &ready, left > 0 ? left : 0);
        if (rv == APR_SUCCESS) {
            /* Writable (or dead, where the owner's write fails anyway). */
            for (apr_size_t k = m; k-- > 0;) {
                if (fds[k].rtnevents) {
                    fds[k] = fds[m - 1];
                    acked[k] = acked[m - 1];
                    m--;
                }
            }
        }
        else if (!APR_STATUS_IS_EINTR(rv)) {
            break;                  /* the grace is over (or poll failed) */
        }
        if (left <= 0) {
            break;
        }
    }
    for (apr_size_t k = 0; k < m; k++) {
        /* Still full, but the client took bytes meanwhile: it reads,
         * slowly (its owner refills the socket as it drains). */
        if (acked[k] == 0 || wsock_peer_acked(fds[k].desc.s) == acked[k]) {
            wsock_slow_cut_if_stuck(fds[k].client_data);
        }
    }
    free(fds);
    free(acked);
}

void wsock_slow_act(wsock_conn *wc, wsock_slow_action *a)
{
    for (apr_size_t i = 0; i < a->discard_n; i++) {
        wsock_frames_release(a->discard[i]);
    }
    free(a->discard);
    a->discard = NULL;
    /* Another thread: no ap_log_cerror, which may allocate from the
     * connection's pool; the server's log with the client named instead. */
    if (a->log == SLOW_LOG_DROP) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, wc->f_server,
                     WSOCKNO(0601) "WebSocket %s: client %s does not keep up, its outbound "
                     "queue is full (%" APR_SIZE_T_FMT " messages, %" APR_SIZE_T_FMT
                     " bytes); dropping messages for it", wc->f_uri, wc->f_conn_id,
                     a->msgs, a->bytes);
    }
    else if (a->log == SLOW_LOG_CLOSE) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, wc->f_server,
                     WSOCKNO(0602) "WebSocket %s: client %s does not keep up, its outbound "
                     "queue is full (%" APR_SIZE_T_FMT " messages, %" APR_SIZE_T_FMT
                     " bytes); closing it with 1008 (%s)", wc->f_uri, wc->f_conn_id,
                     a->msgs, a->bytes, slow_reason);
    }
    if (a->cut) {
        wsock_slow_cut_if_stuck(wc);
    }
}

void wsock_slow_report(wsock_conn *wc)
{
    apr_size_t lost;
    int slow;

    apr_thread_mutex_lock(wc->mutex);
    lost = wc->q_dropped + wc->q_discarded;
    slow = wc->q_slow;
    apr_thread_mutex_unlock(wc->mutex);

    /* A slow consumer's last write usually fails (its socket was shut
     * down): the handler hears why it ended, not just "connection lost". */
    if (slow && wc->close_code == WSOCK_CLOSE_ABNORMAL) {
        wc->close_code = WSOCK_CLOSE_POLICY;
        wc->close_reason = slow_reason;
    }
    if (lost) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                      WSOCKNO(0604) "WebSocket %s ended with %d; %" APR_SIZE_T_FMT
                      " messages for it were dropped (outbound queue full)",
                      wc->f_uri, wc->close_code, lost);
    }
}
