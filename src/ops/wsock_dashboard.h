/*
 * wsock_dashboard.h — the live dashboard: `SetHandler wsock-status` serves
 * a page (GET) and, on the same URL, the WebSocket that streams snapshots
 * to it (docs/operations.md, "Live dashboard").
 */
#ifndef WSOCK_DASHBOARD_H
#define WSOCK_DASHBOARD_H

#include <httpd.h>
#include <http_config.h>

/* Its hooks: the handler, and the history's shared memory and sampler. */
void wsock_dashboard_register_hooks(void);

/* WSockStatusAccess local|authenticated|any (per directory; the words and
 * their meaning are WSockPublishAccess's). */
const char *wsock_cmd_status_access(cmd_parms *cmd, void *conf, const char *arg);

#define WSOCK_STATUS_ACCESS_LOCAL 0         /* the default: loopback clients only */
#define WSOCK_STATUS_ACCESS_AUTHENTICATED 1 /* a user Apache authenticated */
#define WSOCK_STATUS_ACCESS_ANY 2           /* Apache's Require alone decides */

/* The page's files, built into the module (wsock_dashboard_assets.c). */
typedef struct {
    const char *name;               /* the last part of its URL; "" for the page */
    const char *type;               /* Content-Type */
    const char *data;
    apr_size_t len;
} wsock_dashboard_asset;

/* 1 and *out for a known name, else 0. */
int wsock_dashboard_asset_find(const char *name, wsock_dashboard_asset *out);

#endif /* WSOCK_DASHBOARD_H */
