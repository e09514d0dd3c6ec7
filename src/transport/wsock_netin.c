/*
 * wsock_netin.c — a network input filter that reads the socket once per
 * call.
 *
 * Why not the core input filter: for AP_MODE_READBYTES it measures the
 * length of everything it holds with apr_brigade_length(..., read_all),
 * which reads the socket again after every successful read, so each
 * incoming message costs a second recv() that returns EAGAIN.  A loop
 * thread reads only when the poll said so; when recv() returns less than
 * was asked, the socket is drained, and the next poll says when it is not.
 *
 * Only AP_MODE_READBYTES is served: after the upgrade nothing asks for
 * lines or speculative reads, and TLS connections (where mod_ssl reads
 * records below the module) keep the core filter.  Filters above this one
 * (mod_logio's byte counts, ...) see every byte as before.
 */
#include <httpd.h>
#include <http_core.h>
#include <http_ssl.h>
#include <util_filter.h>
#include <apr_buckets.h>

#include "wsock_netin.h"

typedef struct {
    apr_socket_t *sock;
    apr_bucket_brigade *held;     /* read by the core filter before the switch,
                                   * NULL when it had nothing */
} netin_ctx;

/* The core filter holds at most what came with the handshake; bounded
 * anyway, since a client that keeps sending must not hold the worker. */
#define NETIN_TAKEOVER_READS 16

/* One read's buffer at most (the module asks for 65 KiB: WSOCK_READ_CHUNK). */
#define NETIN_MAX_READ (256 * 1024)

static ap_filter_rec_t *netin_handle;

static apr_status_t netin_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                 ap_input_mode_t mode, apr_read_type_e block,
                                 apr_off_t readbytes)
{
    netin_ctx *ctx = f->ctx;
    apr_bucket_alloc_t *ba = f->c->bucket_alloc;
    apr_size_t len;
    apr_status_t rv;
    char *buf;

    if (mode != AP_MODE_READBYTES || readbytes <= 0) {
        return APR_ENOTIMPL;
    }
    if (ctx->held && !APR_BRIGADE_EMPTY(ctx->held)) {
        apr_bucket *rest;

        rv = apr_brigade_partition(ctx->held, readbytes, &rest);
        if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
            return rv;
        }
        while (APR_BRIGADE_FIRST(ctx->held) != rest) {
            apr_bucket *b = APR_BRIGADE_FIRST(ctx->held);
            APR_BUCKET_REMOVE(b);
            APR_BRIGADE_INSERT_TAIL(bb, b);
        }
        return APR_SUCCESS;
    }
    if (f->c->aborted) {
        return APR_ECONNABORTED;
    }
    /* As much as asked for, in one recv: less than that means the socket
     * is drained, which is what lets the caller stop reading. */
    len = readbytes < NETIN_MAX_READ ? (apr_size_t)readbytes : NETIN_MAX_READ;
    buf = apr_bucket_alloc(len, ba);
    if (buf == NULL) {
        return APR_ENOMEM;
    }
    /* Never waits, whatever block says: the socket is non-blocking since
     * the loop took the connection (wsock_netout), and the loop reads only
     * when the poll said there is something. */
    (void)block;
    rv = apr_socket_recv(ctx->sock, buf, &len);
    if (len > 0) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_heap_create(buf, len, apr_bucket_free, ba));
        return APR_SUCCESS;         /* an error with it shows on the next read */
    }
    apr_bucket_free(buf);
    return rv == APR_SUCCESS ? APR_EOF : rv;
}

void wsock_netin_register(void)
{
    netin_handle = ap_register_input_filter("WSOCK_NETIN", netin_filter, NULL,
                                            AP_FTYPE_NETWORK);
}

int wsock_netin_install(conn_rec *c, apr_bucket_brigade *scratch)
{
    ap_filter_t *core = NULL;
    netin_ctx *ctx;
    apr_status_t rv;

    for (ap_filter_t *f = c->input_filters; f; f = f->next) {
        if (f->frec == ap_core_input_filter_handle) {
            core = f;
        }
    }
    if (core == NULL || ap_get_conn_socket(c) == NULL || ap_ssl_conn_is_ssl(c)) {
        return -1;
    }
    ctx = apr_pcalloc(c->pool, sizeof(*ctx));
    ctx->sock = ap_get_conn_socket(c);
    /* What the client sent right behind its handshake may already sit in
     * the core filter: take it over (this reads the socket, without
     * waiting, until it is empty).  Memory is only spent on it if there is
     * some: every byte of an idle connection's pool counts. */
    for (int i = 0; i < NETIN_TAKEOVER_READS; i++) {
        rv = ap_get_brigade(core, scratch, AP_MODE_READBYTES, APR_NONBLOCK_READ,
                            APR_BUCKET_BUFF_SIZE);
        if (rv != APR_SUCCESS || APR_BRIGADE_EMPTY(scratch)
            || APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(scratch))) {
            break;                  /* drained (EAGAIN), or the client is gone */
        }
    }
    if (!APR_BRIGADE_EMPTY(scratch)) {
        ctx->held = apr_brigade_create(c->pool, c->bucket_alloc);
        APR_BRIGADE_CONCAT(ctx->held, scratch);
    }
    ap_remove_input_filter(core);
    ap_add_input_filter_handle(netin_handle, ctx, NULL, c);
    return 0;
}
