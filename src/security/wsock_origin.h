/*
 * wsock_origin.h — which Origin may open a WebSocket (WSockAllowedOrigins),
 * against cross-site WebSocket hijacking: a page on another site that makes
 * the victim's browser connect with the victim's cookies or credentials.
 *
 * Pure rules on strings (APR only), unit-tested without a server; the
 * directive and the check of a request are in wsock_security.c.
 */
#ifndef WSOCK_ORIGIN_H
#define WSOCK_ORIGIN_H

#include <apr_pools.h>
#include <apr_tables.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wsock_origin_policy wsock_origin_policy;

/* Adds one word of "WSockAllowedOrigins" to *policy (made in pool when
 * NULL): "same-origin", "any", "scheme://host[:port]" or
 * "scheme://" "*.domain[:port]" (a wildcard).  Returns NULL or an error message. */
const char *wsock_origin_policy_add(apr_pool_t *pool, wsock_origin_policy **policy,
                                    const char *word);

/* What the server is, for "same-origin": the virtual host that serves the
 * request and the connection it arrived on (wsock_security.c fills it from
 * Apache's server_rec and conn_rec).  Never the request's Host header: a
 * DNS-rebinding page sends its own name there. */
typedef struct {
    int https;                  /* the request's scheme is https */
    const char *server_name;    /* ServerName, or NULL */
    const apr_array_header_t *aliases;       /* ServerAlias names (char *), or NULL */
    const apr_array_header_t *wild_aliases;  /* ServerAlias names with * or ?, or NULL */
    /* 1 if host matches the wildcard alias pattern (Apache's matching);
     * needed when wild_aliases has any */
    int (*wild_match)(const char *pattern, const char *host);
    const char *local_ip;       /* the address the connection arrived on, or NULL */
    int local_port;             /* the port it arrived on */
    int name_port;              /* the port ServerName names (explicitly, or by
                                 * its scheme's default); 0: none */
} wsock_origin_self;

/* 1 if a request with this Origin header may open a WebSocket, 0 if not.
 * policy NULL is the default, same-origin.  origin NULL (no Origin header:
 * not a browser) is allowed.  Same-origin: the scheme of the request; a
 * host that is the ServerName, a ServerAlias, the address the connection
 * arrived on, or "localhost" when that address is a loopback one; the port
 * the connection arrived on or the one ServerName names.  self NULL:
 * nothing is same-origin. */
int wsock_origin_allowed(const wsock_origin_policy *policy, const char *origin,
                         const wsock_origin_self *self);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_ORIGIN_H */
