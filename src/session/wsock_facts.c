/*
 * wsock_facts.c — what a handler may know about the request that opened
 * its connection.  Everything is copied into the connection's pool when the
 * connection is created and never changed afterwards, so any thread may
 * read it while the connection is open (the request pool may be gone by
 * then under other drivers).
 */
#include <string.h>

#include <httpd.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <openssl/rand.h>

#include "wsock_conn.h"

/* Query arguments, URL-decoded ("+" is a space); a name without "=" has
 * the empty value; a malformed %-escape leaves that argument out. */
static apr_table_t *parse_query(apr_pool_t *p, const char *query)
{
    apr_table_t *t = apr_table_make(p, 4);
    char *copy, *pair, *state;

    if (query == NULL) {
        return t;
    }
    copy = apr_pstrdup(p, query);
    for (pair = apr_strtok(copy, "&", &state); pair; pair = apr_strtok(NULL, "&", &state)) {
        char *eq = strchr(pair, '=');
        char *value = "";

        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (ap_unescape_urlencoded(pair) == OK && ap_unescape_urlencoded(value) == OK) {
            apr_table_add(t, pair, value);
        }
    }
    return t;
}

/* 16 bytes from OpenSSL's CSPRNG (the ids must not be guessable: they
 * address a connection from outside), as 32 hex digits. */
static void facts_new_app_id(char out[33])
{
    unsigned char raw[16];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        /* Never seen; APR's generator reads the same kernel source. */
        apr_generate_random_bytes(raw, sizeof(raw));
    }
    ap_bin2hex(raw, sizeof(raw), out);
}

void wsock_facts_capture(wsock_conn *wc, request_rec *r, const char *protocol,
                         void *handler_cfg, const char *location)
{
    apr_pool_t *p = wc->pool;

    wc->f_uri = apr_pstrdup(p, r->uri);
    wc->f_query = r->args ? apr_pstrdup(p, r->args) : NULL;
    wc->f_query_args = parse_query(p, r->args);
    wc->f_remote_ip = apr_pstrdup(p, r->useragent_ip);
    wc->f_user = r->user ? apr_pstrdup(p, r->user) : NULL;
    wc->f_protocol = protocol ? apr_pstrdup(p, protocol) : NULL;
    wc->f_headers = apr_table_clone(p, r->headers_in);  /* strings too: r->pool may go first */
    wc->f_conn_id = apr_psprintf(p, "%s:%d", r->connection->client_ip,
                                 r->connection->client_addr
                                     ? r->connection->client_addr->port : 0);
    wc->f_location = apr_pstrdup(p, location ? location : "/");
    facts_new_app_id(wc->f_app_id);
    wc->f_server = r->server;       /* lives in the configuration pool */
    wc->handler_cfg = handler_cfg;
}

void *wsock_handler_config(const wsock_conn *wc) { return wc->handler_cfg; }
const char *wsock_uri(const wsock_conn *wc) { return wc->f_uri; }
const char *wsock_query(const wsock_conn *wc) { return wc->f_query; }
const char *wsock_remote_ip(const wsock_conn *wc) { return wc->f_remote_ip; }
const char *wsock_user(const wsock_conn *wc) { return wc->f_user; }
const char *wsock_protocol(const wsock_conn *wc) { return wc->f_protocol; }
const char *wsock_conn_id(const wsock_conn *wc) { return wc->f_conn_id; }
const char *wsock_connection_id(const wsock_conn *wc) { return wc->f_app_id; }
const char *wsock_location(const wsock_conn *wc) { return wc->f_location; }
conn_rec *wsock_connection(const wsock_conn *wc) { return wc->c; }

const char *wsock_query_arg(const wsock_conn *wc, const char *name)
{
    return name ? apr_table_get(wc->f_query_args, name) : NULL;
}

apr_status_t wsock_refusal_body(wsock_conn *wc, const char *content_type, const void *body,
                                apr_size_t len)
{
    const char *t = content_type ? content_type : "text/plain; charset=utf-8";

    if (wc->upgraded || len > WSOCK_REFUSAL_BODY_MAX || (len && body == NULL)) {
        return APR_EINVAL;
    }
    for (const char *p = t; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return APR_EINVAL;      /* it becomes a header line */
        }
    }
    wc->refusal_type = apr_pstrdup(wc->pool, t);
    wc->refusal_body = len ? apr_pmemdup(wc->pool, body, len) : "";
    wc->refusal_len = len;
    return APR_SUCCESS;
}

const char *wsock_header(const wsock_conn *wc, const char *name)
{
    return name ? apr_table_get(wc->f_headers, name) : NULL;
}
