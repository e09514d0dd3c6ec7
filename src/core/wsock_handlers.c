/*
 * wsock_handlers.c — the handlers WSockHandler can name.  Built-in
 * handlers are registered here exactly as external plugins are.
 *
 * Filled while the configuration is read (single-threaded), read-only
 * afterwards, so it needs no lock.
 */
#include <string.h>

#include "wsock_handlers.h"

#define WSOCK_MAX_HANDLERS 64

extern const wsock_handler wsock_echo_handler;

static const wsock_handler *handlers[WSOCK_MAX_HANDLERS];
static int nhandlers;

const char *wsock_handlers_add(const wsock_handler *h)
{
    if (h->api_version != WSOCK_API_VERSION) {
        return "was built for another WSOCK_API_VERSION";
    }
    if (h->name == NULL || !*h->name || strcmp(h->name, "none") == 0) {
        return "has no usable name";
    }
    if (wsock_handlers_find(h->name)) {
        return wsock_handlers_find(h->name) == h ? NULL : "has a name already taken";
    }
    if (nhandlers == WSOCK_MAX_HANDLERS) {
        return "does not fit: too many handlers";
    }
    handlers[nhandlers++] = h;
    return NULL;
}

const wsock_handler *wsock_handlers_find(const char *name)
{
    for (int i = 0; i < nhandlers; i++) {
        if (strcmp(handlers[i]->name, name) == 0) {
            return handlers[i];
        }
    }
    return NULL;
}

void wsock_handlers_add_builtin(void)
{
    wsock_handlers_add(&wsock_echo_handler);
}
