/*
 * wsock_netout.c — a network output filter that never blocks.
 *
 * Why not the core output filter: a loop thread serves many connections,
 * so one client that does not read must never stall it.  The core output
 * filter of httpd 2.4 writes a brigade with a FLUSH bucket (or above
 * FlushMaxThreshold) with blocking writes, and sets aside (copies, without
 * writing) anything smaller than 4 KiB that has no FLUSH; and mod_ssl's
 * coalescing filter holds small unflushed writes too.  So the connection
 * keeps passing FLUSH-terminated brigades down its filters as ever (mod_ssl
 * encrypts and flushes each of them), and at the bottom this filter writes
 * what the socket takes at once and keeps the rest, in one reused buffer,
 * for the loop to drain when the socket is writable.
 *
 * Metadata buckets are dropped once the data before them went to the
 * socket or into the buffer; the driver passes the request's EOR bucket
 * only when nothing is pending, so the request is logged after its bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_core.h>
#include <http_log.h>
#include <util_filter.h>

#include "wsock_conn.h"
#include "wsock_log.h"
#include "wsock_netout.h"
#include "wsock_output.h"

APLOG_USE_MODULE(wsock);

#define NETOUT_IOVECS 64

struct wsock_netout {
    conn_rec *c;
    apr_socket_t *sock;
    wsock_buf pending;            /* bytes the socket has not taken yet */
    apr_size_t off;               /* how much of pending is already written */
};

static ap_filter_rec_t *netout_handle;

static apr_status_t abort_conn(wsock_netout *no, apr_status_t rv)
{
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, no->c,
                  WSOCKNO(0110) "write to the client failed");
    no->c->aborted = 1;
    no->pending.len = no->off = 0;
    return rv;
}

static int keep(wsock_netout *no, const struct iovec *v, int n, apr_size_t skip)
{
    /* What was written already is dropped before more is kept: the buffer
     * holds the backlog, not its history (the driver stops producing at
     * WSOCK_OUT_HIGH, so the backlog, and this buffer, stay bounded). */
    if (no->off) {
        memmove(no->pending.data, no->pending.data + no->off, no->pending.len - no->off);
        no->pending.len -= no->off;
        no->off = 0;
    }
    for (int i = 0; i < n; i++) {
        apr_size_t len = v[i].iov_len;
        const char *p = v[i].iov_base;

        if (skip >= len) {
            skip -= len;
            continue;
        }
        p += skip;
        len -= skip;
        skip = 0;
        if (!wsock_buf_reserve(&no->pending, len)) {
            return 0;
        }
        memcpy(no->pending.data + no->pending.len, p, len);
        no->pending.len += len;
    }
    return 1;
}

/* Writes n vectors if nothing is pending, keeps what the socket refused. */
static apr_status_t write_or_keep(wsock_netout *no, struct iovec *v, int n)
{
    apr_size_t total = 0, sent = 0;
    apr_status_t rv = APR_SUCCESS;

    for (int i = 0; i < n; i++) {
        total += v[i].iov_len;
    }
    if (no->pending.len == no->off) {
        no->pending.len = no->off = 0;
        rv = apr_socket_sendv(no->sock, v, n, &sent);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
            return abort_conn(no, rv);
        }
    }
    if (sent < total && !keep(no, v, n, sent)) {
        return abort_conn(no, APR_ENOMEM);
    }
    return APR_SUCCESS;
}

static apr_status_t netout_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    wsock_netout *no = f->ctx;
    struct iovec v[NETOUT_IOVECS];
    apr_status_t rv = APR_SUCCESS;
    int n = 0;

    if (f->c->aborted) {
        apr_brigade_cleanup(bb);
        return APR_ECONNABORTED;
    }
    for (apr_bucket *b = APR_BRIGADE_FIRST(bb);
         b != APR_BRIGADE_SENTINEL(bb) && rv == APR_SUCCESS; b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t len;

        if (APR_BUCKET_IS_METADATA(b)) {
            continue;
        }
        rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            break;
        }
        if (len == 0) {
            continue;
        }
        v[n].iov_base = (void *)data;
        v[n].iov_len = len;
        if (++n == NETOUT_IOVECS) {
            rv = write_or_keep(no, v, n);
            n = 0;
        }
    }
    if (rv == APR_SUCCESS && n) {
        rv = write_or_keep(no, v, n);
    }
    apr_brigade_cleanup(bb);
    return rv;
}

void wsock_netout_register(void)
{
    netout_handle = ap_register_output_filter("WSOCK_NETOUT", netout_filter, NULL,
                                              AP_FTYPE_NETWORK);
}

wsock_netout *wsock_netout_install(conn_rec *c)
{
    ap_filter_t *core = NULL;
    wsock_netout *no;

    for (ap_filter_t *f = c->output_filters; f; f = f->next) {
        if (f->frec == ap_core_output_filter_handle) {
            core = f;
        }
    }
    if (core == NULL || ap_get_conn_socket(c) == NULL) {
        return NULL;
    }
    no = apr_pcalloc(c->pool, sizeof(*no));
    no->c = c;
    no->sock = ap_get_conn_socket(c);
    wsock_buf_init(&no->pending, c->pool);
    /* Every write and read of this socket is non-blocking from now on. */
    apr_socket_timeout_set(no->sock, 0);
    ap_remove_output_filter(core);
    ap_add_output_filter_handle(netout_handle, no, NULL, c);
    return no;
}

apr_size_t wsock_netout_pending(const wsock_netout *no)
{
    return no->pending.len - no->off;
}

apr_status_t wsock_netout_drain(wsock_netout *no)
{
    while (no->off < no->pending.len) {
        apr_size_t len = no->pending.len - no->off;
        apr_status_t rv = apr_socket_send(no->sock, (const char *)no->pending.data + no->off,
                                          &len);

        no->off += len;
        if (APR_STATUS_IS_EAGAIN(rv)) {
            return rv;
        }
        if (rv != APR_SUCCESS) {
            return abort_conn(no, rv);
        }
    }
    no->pending.len = no->off = 0;
    wsock_buf_release(&no->pending);
    return APR_SUCCESS;
}

void wsock_netout_release(wsock_netout *no)
{
    no->pending.len = no->off = 0;
    wsock_buf_release(&no->pending);
}
