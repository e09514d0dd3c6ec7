/*
 * wsock_upgrade.h — the handler hook that answers WebSocket upgrades
 * (wsock_upgrade.c).
 */
#ifndef WSOCK_UPGRADE_H
#define WSOCK_UPGRADE_H

#include <httpd.h>

/* The handler hook (APR_HOOK_FIRST): DECLINED for a request outside a
 * WebSocket location; else a refusal status, DONE (the blocking driver
 * ran the WebSocket) or SUSPENDED (a loop thread takes it over). */
int wsock_upgrade_handler(request_rec *r);

#endif /* WSOCK_UPGRADE_H */
