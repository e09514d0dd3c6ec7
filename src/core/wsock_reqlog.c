/*
 * wsock_reqlog.c — the request that opened a WebSocket, kept small until
 * its access log line is written.
 *
 * Under `WSockAccessLog end` the line is written when the WebSocket ends,
 * so that %D and the byte counts cover the whole of it.  Keeping the
 * request until then kept its pool: 12 KiB per WebSocket, idle or not,
 * most of it what processing the request left behind (merged
 * per-directory configurations, filters, the header parser's buffers).
 * So once a loop thread holds the connection, what a log line can use is
 * copied into the connection's pool and the request's pool is destroyed;
 * at the end the copy gets a pool of its own again and is ended like any
 * request, by ap_process_request_after_handler(), which logs it.
 *
 * What a log line can use: the request line and its parts, the status,
 * times, user and auth type, the headers in and out, notes, the
 * environment (CustomLog env=), trailers, the log id and the client's
 * address.  The copy has the server's own per-directory configuration,
 * not the location's, and no per-request module configuration: modules
 * that log from those see the server's defaults.
 */
#include <httpd.h>
#include <http_config.h>
#include <http_request.h>
#include <stddef.h>

#include <apr_strings.h>

#include "wsock_conn.h"
#include "wsock_reqlog.h"

static char *dup_or_null(apr_pool_t *p, const char *s)
{
    return s ? apr_pstrdup(p, s) : NULL;
}

static apr_table_t *clone_or_new(apr_pool_t *p, const apr_table_t *t)
{
    return t ? apr_table_clone(p, t) : apr_table_make(p, 1);
}

/* The client's address as the request saw it: the connection's, unless a
 * module (mod_remoteip) put another one into the request's pool. */
static apr_sockaddr_t *copy_addr(apr_pool_t *p, const request_rec *r)
{
    apr_sockaddr_t *a;

    if (r->useragent_addr == NULL || r->useragent_addr == r->connection->client_addr) {
        return r->useragent_addr;
    }
    a = apr_pmemdup(p, r->useragent_addr, sizeof(*a));
    a->pool = p;
    a->hostname = dup_or_null(p, a->hostname);
    a->servname = dup_or_null(p, a->servname);
    a->next = NULL;
    /* ipaddr_ptr points into the structure itself */
    a->ipaddr_ptr = (char *)a + ((const char *)r->useragent_addr->ipaddr_ptr
                                 - (const char *)r->useragent_addr);
    return a;
}

/* Copies the strings at these offsets of from into to, duplicated in p. */
static void dup_strings(apr_pool_t *p, void *to, const void *from, const size_t *offsets,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *(char **)((char *)to + offsets[i])
            = dup_or_null(p, *(char *const *)((const char *)from + offsets[i]));
    }
}

static const size_t uri_strings[] = {
    offsetof(apr_uri_t, scheme), offsetof(apr_uri_t, hostinfo), offsetof(apr_uri_t, user),
    offsetof(apr_uri_t, password), offsetof(apr_uri_t, hostname),
    offsetof(apr_uri_t, port_str), offsetof(apr_uri_t, path), offsetof(apr_uri_t, query),
    offsetof(apr_uri_t, fragment),
};

/* The request's strings that the facts do not hold. */
static const size_t request_strings[] = {
    offsetof(request_rec, the_request), offsetof(request_rec, protocol),
    offsetof(request_rec, hostname), offsetof(request_rec, status_line),
    offsetof(request_rec, method), offsetof(request_rec, content_type),
    offsetof(request_rec, handler), offsetof(request_rec, content_encoding),
    offsetof(request_rec, ap_auth_type), offsetof(request_rec, unparsed_uri),
    offsetof(request_rec, filename), offsetof(request_rec, canonical_filename),
    offsetof(request_rec, path_info), offsetof(request_rec, log_id),
    offsetof(request_rec, useragent_host),
};

request_rec *wsock_reqlog_keep(wsock_conn *wc)
{
    request_rec *r = wc->r;
    conn_rec *c = r->connection;
    apr_pool_t *p = c->pool;
    request_rec *k = apr_pcalloc(p, sizeof(*k));

    /* k->pool stays NULL until wsock_reqlog_finish(). */
    k->connection = c;
    k->server = r->server;
    k->assbackwards = r->assbackwards;
    k->proxyreq = r->proxyreq;
    k->header_only = r->header_only;
    k->proto_num = r->proto_num;
    k->request_time = r->request_time;
    k->status = r->status;
    k->method_number = r->method_number;
    k->allowed = r->allowed;
    k->sent_bodyct = r->sent_bodyct;
    k->bytes_sent = r->bytes_sent;
    k->mtime = r->mtime;
    k->clength = r->clength;
    k->remaining = r->remaining;
    k->read_length = r->read_length;
    k->used_path_info = r->used_path_info;
    k->eos_sent = r->eos_sent;
    k->no_cache = r->no_cache;
    k->no_local_copy = r->no_local_copy;
    k->double_reverse = r->double_reverse;
    k->bnotes = r->bnotes;
    dup_strings(p, k, r, request_strings, sizeof(request_strings) / sizeof(request_strings[0]));
    /* The connection's facts (wsock_facts.c) are copies of these, made at
     * the handshake in the same pool and never changed: shared, not copied
     * again. */
    k->user = (char *)wc->f_user;
    k->uri = (char *)wc->f_uri;
    k->args = (char *)wc->f_query;
    k->useragent_ip = (char *)wc->f_remote_ip;
    k->headers_in = wc->f_headers;
    k->useragent_addr = copy_addr(p, r);
    k->parsed_uri = r->parsed_uri;
    dup_strings(p, &k->parsed_uri, &r->parsed_uri, uri_strings,
                sizeof(uri_strings) / sizeof(uri_strings[0]));
    k->parsed_uri.hostent = NULL;
    k->headers_out = clone_or_new(p, r->headers_out);
    k->err_headers_out = clone_or_new(p, r->err_headers_out);
    k->subprocess_env = clone_or_new(p, r->subprocess_env);
    k->notes = clone_or_new(p, r->notes);
    k->trailers_in = clone_or_new(p, r->trailers_in);
    k->trailers_out = clone_or_new(p, r->trailers_out);
    /* Not kept (they live in the request's pool): the location's merged
     * configuration, per-request module state, body, filters, finfo. */
    k->per_dir_config = r->server->lookup_defaults;
    k->request_config = ap_create_request_config(p);
    k->log = &r->server->log;
    /* Only the connection's filters: the log line's end-of-request bucket
     * goes to them. */
    k->output_filters = k->proto_output_filters = c->output_filters;
    k->input_filters = k->proto_input_filters = c->input_filters;
    k->finfo.filetype = APR_NOFILE;

    apr_pool_destroy(r->pool);      /* not logged: k is, at the end */
    return k;
}

void wsock_reqlog_finish(request_rec *r)
{
    if (r->pool == NULL) {
        /* The log line allocates from it; ending the request destroys it. */
        if (apr_pool_create(&r->pool, r->connection->pool) != APR_SUCCESS) {
            return;                 /* no memory: no log line */
        }
        apr_pool_tag(r->pool, "wsock_reqlog");
    }
    ap_process_request_after_handler(r);
}
