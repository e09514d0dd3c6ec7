/*
 * wsock_ipcap.h — WSockMaxConnectionsPerIP: how many WebSockets one client
 * address may hold open at once, counted across every child process of
 * the server (a table in shared memory, wsock_iptable.c, under a global
 * mutex, with room for WSockIPTableSize connections).  A connection is
 * counted from its admission until it ends; the counts of a child that
 * died without closing its connections are given back by the parent when
 * the MPM reaps the child.
 */
#ifndef WSOCK_IPCAP_H
#define WSOCK_IPCAP_H

#include <httpd.h>
#include <http_config.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wsock_ipcap_hold wsock_ipcap_hold;

/* WSockMaxConnectionsPerIP n (0 = no limit). */
const char *wsock_cmd_max_conns_per_ip(cmd_parms *cmd, void *conf, const char *arg);

/* WSockIPTableSize n: connections the table can count (server config). */
const char *wsock_cmd_ip_table_size(cmd_parms *cmd, void *conf, const char *arg);

/* Counts the request's client for a new WebSocket, unless it already has
 * limit of them open (limit <= 0: nothing is counted).  OK (*hold set, or
 * NULL when not counted), 429 (at its limit, logged) or 503 with
 * Retry-After (the table is full, or cannot be used; logged). */
int wsock_ipcap_acquire(request_rec *r, int limit, wsock_ipcap_hold **hold);

/* Gives the count back (the connection ended, or was refused after
 * admission); also done when the connection's pool goes, if not before.
 * hold may be NULL. */
void wsock_ipcap_release(wsock_ipcap_hold *hold);

void wsock_ipcap_register_hooks(void);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_IPCAP_H */
