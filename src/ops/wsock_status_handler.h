/*
 * wsock_status_handler.h — the internal WebSocket handler of the live
 * dashboard's stream (wsock_status_handler.c).
 */
#ifndef WSOCK_STATUS_HANDLER_H
#define WSOCK_STATUS_HANDLER_H

#include "wsock.h"

extern const wsock_handler wsock_status_handler;

#endif /* WSOCK_STATUS_HANDLER_H */
