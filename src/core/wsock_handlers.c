/*
 * wsock_handlers.c — the handlers WSockHandler can name.  Built-in handlers
 * are registered exactly as plugins are, through a wsock_handler table.
 *
 * The table is filled while the configuration is read (single-threaded)
 * and only read afterwards, so it needs no lock.  Plugin entries live as
 * long as the configuration pool that loaded their .so: a restart unloads
 * the .so and removes the entry, and the new configuration loads it again.
 */
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_dso.h>
#include <apr_strings.h>

#include "wsock_handlers.h"
#include "wsock_log.h"

APLOG_USE_MODULE(wsock);

#define WSOCK_MAX_HANDLERS 64

extern const wsock_handler wsock_echo_handler;
extern const wsock_handler wsock_chat_handler;
extern const wsock_handler wsock_redis_handler;
extern const wsock_handler wsock_backend_handler;

typedef struct {
    const char *name;
    const wsock_handler *h;
} handler_entry;

static handler_entry handlers[WSOCK_MAX_HANDLERS];
static int nhandlers;

const wsock_handler *wsock_handlers_find(const char *name)
{
    for (int i = 0; i < nhandlers; i++) {
        if (strcmp(handlers[i].name, name) == 0) {
            return handlers[i].h;
        }
    }
    return NULL;
}

static apr_status_t remove_entry(void *data)
{
    const char *name = data;

    for (int i = 0; i < nhandlers; i++) {
        if (strcmp(handlers[i].name, name) == 0) {
            handlers[i] = handlers[--nhandlers];
            break;
        }
    }
    return APR_SUCCESS;
}

const char *wsock_handlers_add(const char *name, const wsock_handler *h, apr_pool_t *pool)
{
    const wsock_handler *known;

    if (h->api_version != WSOCK_API_VERSION) {
        if (pool == NULL) {
            return "was built for another WSOCK_API_VERSION";
        }
        return apr_psprintf(pool, "was built for WSOCK_API_VERSION %d, this mod_wsock "
                            "has %d: rebuild it against this wsock.h",
                            h->api_version, WSOCK_API_VERSION);
    }
    if (name == NULL || !*name || strcasecmp(name, "none") == 0
        || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
           != strlen(name)) {
        return "cannot be registered under that name (letters, digits, _ - . only; "
               "not \"none\")";
    }
    if ((known = wsock_handlers_find(name)) != NULL) {
        return known == h ? NULL : "cannot be registered: that name is already taken";
    }
    if (h->on_message == NULL) {
        return "has no on_message callback";
    }
    if (nhandlers == WSOCK_MAX_HANDLERS) {
        return "does not fit: too many handlers";
    }
    handlers[nhandlers].name = name;
    handlers[nhandlers].h = h;
    nhandlers++;
    if (pool) {
        apr_pool_cleanup_register(pool, name, remove_entry, apr_pool_cleanup_null);
    }
    return NULL;
}

void wsock_handlers_add_builtin(void)
{
    wsock_handlers_add(wsock_echo_handler.name, &wsock_echo_handler, NULL);
    wsock_handlers_add(wsock_chat_handler.name, &wsock_chat_handler, NULL);
    wsock_handlers_add(wsock_redis_handler.name, &wsock_redis_handler, NULL);
    wsock_handlers_add(wsock_backend_handler.name, &wsock_backend_handler, NULL);
}

const char *wsock_handlers_load_plugin(cmd_parms *cmd, const char *name, const char *path)
{
    apr_dso_handle_t *dso;
    apr_dso_handle_sym_t sym;
    const wsock_handler *h;
    const char *why, *full = ap_server_root_relative(cmd->pool, path);
    char err[256];

    if (full == NULL) {
        return apr_psprintf(cmd->pool, "WSockPlugin %s: invalid path '%s'", name, path);
    }
    if (apr_dso_load(&dso, full, cmd->pool) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "WSockPlugin %s: cannot load %s: %s", name, full,
                            apr_dso_error(dso, err, sizeof(err)));
    }
    if (apr_dso_sym(&sym, dso, WSOCK_PLUGIN_SYMBOL) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "WSockPlugin %s: %s has no symbol '%s' "
                            "(a const wsock_handler, see wsock.h)", name, full,
                            WSOCK_PLUGIN_SYMBOL);
    }
    h = (const wsock_handler *)sym;
    why = wsock_handlers_add(apr_pstrdup(cmd->pool, name), h, cmd->pool);
    if (why) {
        return apr_psprintf(cmd->pool, "WSockPlugin %s: the handler in %s %s", name, full, why);
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, cmd->server,
                 WSOCKNO(0002) "loaded handler %s from %s", name, full);
    return NULL;
}

typedef struct {
    const wsock_handler *h;
    server_rec *s;
} exit_baton;

static apr_status_t run_child_exit(void *data)
{
    exit_baton *b = data;

    b->h->child_exit(b->s);
    return APR_SUCCESS;
}

void wsock_handlers_child_init(apr_pool_t *pchild, server_rec *s)
{
    for (int i = 0; i < nhandlers; i++) {
        const wsock_handler *h = handlers[i].h;
        int seen = 0;

        /* One handler may be registered under several names: once each. */
        for (int j = 0; j < i; j++) {
            seen |= handlers[j].h == h;
        }
        if (seen) {
            continue;
        }
        if (h->child_init) {
            h->child_init(pchild, s);
        }
        if (h->child_exit) {
            exit_baton *b = apr_palloc(pchild, sizeof(*b));
            b->h = h;
            b->s = s;
            apr_pool_cleanup_register(pchild, b, run_child_exit, apr_pool_cleanup_null);
        }
    }
}
