/*
 * wsock_upgrade.h — the handler hook that answers WebSocket upgrades
 * (wsock_upgrade.c).
 */
#ifndef WSOCK_UPGRADE_H
#define WSOCK_UPGRADE_H

#include <httpd.h>

#include "wsock_config.h"

/* The handler hook (APR_HOOK_FIRST): DECLINED for a request outside a
 * WebSocket location; else a refusal status, DONE (the blocking driver
 * ran the WebSocket) or SUSPENDED (a loop thread takes it over). */
int wsock_upgrade_handler(request_rec *r);

/* The upgrade of r to a WebSocket served by d's handler (d->handler not
 * NULL): for handlers of the module's own locations that are not named by
 * WSockHandler (src/ops/wsock_dashboard.c).  A status, SUSPENDED or DONE. */
int wsock_upgrade_serve(request_rec *r, const wsock_dir_conf *d);

#endif /* WSOCK_UPGRADE_H */
