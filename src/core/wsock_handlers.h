/*
 * wsock_handlers.h — the table of handlers WSockHandler can name.
 */
#ifndef WSOCK_HANDLERS_H
#define WSOCK_HANDLERS_H

#include "wsock.h"

/* Adds a handler; returns NULL, or why it was refused (static text). */
const char *wsock_handlers_add(const wsock_handler *h);

/* The handler registered under name, or NULL. */
const wsock_handler *wsock_handlers_find(const char *name);

/* Registers the handlers built into the module. */
void wsock_handlers_add_builtin(void);

#endif /* WSOCK_HANDLERS_H */
