/*
 * wsock_handlers.h — the handlers WSockHandler can name: built in, or
 * loaded from a plugin .so by WSockPlugin.
 */
#ifndef WSOCK_HANDLERS_H
#define WSOCK_HANDLERS_H

#include <http_config.h>

#include "wsock.h"

/* Registers h under name; returns NULL or why it was refused. */
const char *wsock_handlers_add(const char *name, const wsock_handler *h, apr_pool_t *pool);

/* The handler registered under name, or NULL. */
const wsock_handler *wsock_handlers_find(const char *name);

/* Registers the handlers built into the module. */
void wsock_handlers_add_builtin(void);

/* WSockPlugin NAME PATH: loads PATH with apr_dso and registers its
 * handler under NAME; returns NULL or an error naming the file. */
const char *wsock_handlers_load_plugin(cmd_parms *cmd, const char *name, const char *path);

/* Runs every handler's child_init, and arranges its child_exit. */
void wsock_handlers_child_init(apr_pool_t *pchild, server_rec *s);

#endif /* WSOCK_HANDLERS_H */
