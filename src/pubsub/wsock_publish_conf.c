/*
 * wsock_publish_conf.c — the directives of publishing (wsock_publish.h).
 */
#include <strings.h>

#include "wsock_config.h"
#include "wsock_publish.h"

const char *wsock_cmd_addressable(cmd_parms *cmd, void *conf, int on)
{
    (void)cmd;
    ((wsock_dir_conf *)conf)->addressable = on;
    return NULL;
}

const char *wsock_cmd_publish_access(cmd_parms *cmd, void *conf, const char *arg)
{
    static const char *const names[] = { "local", "authenticated", "any" };

    (void)cmd;
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(arg, names[i]) == 0) {
            ((wsock_dir_conf *)conf)->publish_access = i;
            return NULL;
        }
    }
    return "WSockPublishAccess: local, authenticated or any";
}
