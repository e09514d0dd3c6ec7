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

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wsock_origin_policy wsock_origin_policy;

/* Adds one word of "WSockAllowedOrigins" to *policy (made in pool when
 * NULL): "same-origin", "any", "scheme://host[:port]" or
 * "scheme://" "*.domain[:port]" (a wildcard).  Returns NULL or an error message. */
const char *wsock_origin_policy_add(apr_pool_t *pool, wsock_origin_policy **policy,
                                    const char *word);

/* 1 if a request with this Origin header may open a WebSocket, 0 if not.
 * policy NULL is the default, same-origin.  origin NULL (no Origin header:
 * not a browser) is allowed.  host is the request's Host header (may be
 * NULL), https whether the connection itself is TLS: together they are the
 * request's own origin. */
int wsock_origin_allowed(const wsock_origin_policy *policy, const char *origin,
                         const char *host, int https);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_ORIGIN_H */
