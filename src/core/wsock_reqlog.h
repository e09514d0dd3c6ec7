/*
 * wsock_reqlog.h — the request that opened a WebSocket, kept small until
 * its access log line is written (WSockAccessLog end; see wsock_reqlog.c).
 */
#ifndef WSOCK_REQLOG_H
#define WSOCK_REQLOG_H

#include <httpd.h>

#include "wsock_conn.h"

/* A copy of what the access log line of wc's request (wc->r) can use, in
 * the connection's pool; the request's pool is destroyed, without logging
 * it.  Only once nothing else refers to the request (a loop thread holds
 * the connection). */
request_rec *wsock_reqlog_keep(wsock_conn *wc);

/* Ends r, a kept copy or the request itself: logs it and frees it. */
void wsock_reqlog_finish(request_rec *r);

#endif
