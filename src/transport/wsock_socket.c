/*
 * wsock_socket.c — a connection-owned duplicate of the client socket.
 *
 * Why: on an ungraceful stop the threaded MPMs close every worker's socket
 * (with SO_LINGER 0, i.e. a reset) before they run the child_stopping
 * hook, so a WebSocket would die without a close frame.  A dup()'ed
 * descriptor refers to the same TCP connection, and the connection lives
 * until the last descriptor is closed: the MPM's close of its own
 * descriptor then changes nothing we depend on.  Everything else (the
 * MPM's lingering close, mod_ssl's close_notify) keeps working, because
 * both descriptors name one socket.
 *
 * The core filters keep the socket in their shared core_net_rec (public in
 * http_core.h), and the input side's pending socket bucket names it too;
 * both are pointed at the duplicate.
 */
#include <fcntl.h>
#include <unistd.h>

#include <http_core.h>
#include <http_log.h>
#include <util_filter.h>
#include <apr_portable.h>

#include "wsock_log.h"
#include "wsock_socket.h"

APLOG_USE_MODULE(wsock);

struct wsock_socket_swap {
    conn_rec *c;
    core_net_rec *net;
    apr_socket_t *orig, *own;
};

static apr_status_t close_owned(void *data)
{
    apr_socket_close(((wsock_socket_swap *)data)->own);
    return APR_SUCCESS;
}

static core_net_rec *find_core_net(conn_rec *c)
{
    for (ap_filter_t *f = c->output_filters; f; f = f->next) {
        if (f->frec == ap_core_output_filter_handle) {
            return f->ctx;
        }
    }
    return NULL;
}

/* Makes the core filters (and ap_get_conn_socket) use sock. */
static void point_filters_at(wsock_socket_swap *sw, apr_socket_t *from, apr_socket_t *to)
{
    sw->net->client_socket = to;
    if (sw->net->in_ctx && sw->net->in_ctx->b) {
        apr_bucket_brigade *b = sw->net->in_ctx->b;
        for (apr_bucket *e = APR_BRIGADE_FIRST(b); e != APR_BRIGADE_SENTINEL(b);
             e = APR_BUCKET_NEXT(e)) {
            if (APR_BUCKET_IS_SOCKET(e) && e->data == from) {
                e->data = to;
            }
        }
    }
    ap_set_core_module_config(sw->c->conn_config, to);
}

wsock_socket_swap *wsock_socket_own(conn_rec *c)
{
    wsock_socket_swap *sw;
    apr_socket_t *orig = ap_get_conn_socket(c), *own = NULL;
    core_net_rec *net = find_core_net(c);
    apr_os_sock_t fd = -1, dupfd;
    apr_interval_time_t timeout = 0;

    if (orig == NULL || net == NULL || net->client_socket != orig) {
        return NULL;                /* not a plain core connection (e.g. h2) */
    }
    apr_os_sock_get(&fd, orig);
    dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0 || apr_os_sock_put(&own, &dupfd, c->pool) != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_WARNING, APR_FROM_OS_ERROR(errno), c,
                      WSOCKNO(0108) "cannot duplicate the client socket; "
                      "a forced stop may cut this WebSocket without a close frame");
        if (dupfd >= 0) {
            close(dupfd);
        }
        return NULL;
    }
    /* Same blocking mode and timeout as the MPM gave the original. */
    apr_socket_timeout_get(orig, &timeout);
    apr_socket_timeout_set(own, timeout);

    sw = apr_pcalloc(c->pool, sizeof(*sw));
    sw->c = c;
    sw->net = net;
    sw->orig = orig;
    sw->own = own;
    apr_pool_cleanup_register(c->pool, sw, close_owned, apr_pool_cleanup_null);
    point_filters_at(sw, orig, own);
    return sw;
}

void wsock_socket_restore(wsock_socket_swap *sw)
{
    apr_os_sock_t orig_fd = -1, own_fd = -1, none = -1;

    if (sw == NULL) {
        return;
    }
    point_filters_at(sw, sw->own, sw->orig);
    apr_os_sock_get(&orig_fd, sw->orig);
    if (orig_fd < 0) {
        /* The MPM aborted its descriptor (with SO_LINGER 0).  Ours now
         * carries the connection: undo the reset-linger, give the MPM our
         * descriptor, and forget it here. */
        apr_os_sock_get(&own_fd, sw->own);
        apr_socket_opt_set(sw->own, APR_SO_LINGER, 0);
        apr_os_sock_put(&sw->orig, &own_fd, sw->c->pool);
        apr_os_sock_put(&sw->own, &none, sw->c->pool);
    }
    apr_pool_cleanup_run(sw->c->pool, sw, close_owned);
}
