/*
 * wsock_refusals.h — counting refused handshakes by reason and status.
 *
 * Every refusal path of the upgrade notes its reason on the request
 * (wsock_refusal_note); one log_transaction hook counts each refused
 * handshake of a WebSocket location once, with the status it really got
 * (after ErrorDocument and the like).  Refusals made before mod_wsock runs
 * (Apache's own auth: 401, 403) carry no note and are counted as "auth".
 */
#ifndef WSOCK_REFUSALS_H
#define WSOCK_REFUSALS_H

#include <httpd.h>

#include "wsock_counters.h"

/* The reason r was refused (the last one noted wins). */
void wsock_refusal_note(request_rec *r, wsock_refusal why);

void wsock_refusals_register_hooks(void);

#endif /* WSOCK_REFUSALS_H */
