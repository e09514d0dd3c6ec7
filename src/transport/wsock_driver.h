/*
 * wsock_driver.h — how a connection is driven by the MPM.
 *
 * The blocking driver keeps the request's worker thread for the life of
 * the connection and sleeps in a poll on the client socket plus a wake-up,
 * so it works under every MPM.
 */
#ifndef WSOCK_DRIVER_H
#define WSOCK_DRIVER_H

#include "wsock_conn.h"

/* Runs the connection until it ends; returns after wsock_conn_finish(). */
void wsock_drive_blocking(wsock_conn *wc);

#endif /* WSOCK_DRIVER_H */
