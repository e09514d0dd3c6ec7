/*
 * wsock_publish.h — publishing over HTTP (SetHandler wsock-publish,
 * docs/publish.md) and the directives that go with it:
 *
 *   WSockAddressable on|off              a WebSocket location's connections
 *                                        can be addressed by id (wsock_connaddr.h)
 *   WSockPublishAccess local|authenticated|any
 *                                        who may use a wsock-publish location
 *                                        besides what Apache's Require allows
 */
#ifndef WSOCK_PUBLISH_H
#define WSOCK_PUBLISH_H

#include <httpd.h>
#include <http_config.h>

/* WSockPublishAccess (unset: local) */
#define WSOCK_PUBLISH_LOCAL 0           /* loopback clients only */
#define WSOCK_PUBLISH_AUTHENTICATED 1   /* a user Apache authenticated */
#define WSOCK_PUBLISH_ANY 2             /* whoever Apache lets through */

const char *wsock_cmd_addressable(cmd_parms *cmd, void *conf, int on);
const char *wsock_cmd_publish_access(cmd_parms *cmd, void *conf, const char *arg);

/* The entries of mod_wsock's command table. */
#define WSOCK_PUBLISH_DIRECTIVES \
    AP_INIT_FLAG("WSockAddressable", wsock_cmd_addressable, NULL, RSRC_CONF | ACCESS_CONF, \
                 "On: this location's WebSockets can be addressed by their id " \
                 "(publish endpoint ?connection=ID); default off"), \
    AP_INIT_TAKE1("WSockPublishAccess", wsock_cmd_publish_access, NULL, \
                  RSRC_CONF | ACCESS_CONF, \
                  "Who may use a wsock-publish location, on top of Require: local " \
                  "(loopback clients, default), authenticated (a user Apache " \
                  "authenticated) or any")

/* Registers the wsock-publish handler (one line in mod_wsock.c). */
void wsock_publish_register_hooks(void);

#endif /* WSOCK_PUBLISH_H */
