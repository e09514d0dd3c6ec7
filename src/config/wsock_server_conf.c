/*
 * wsock_server_conf.c — the server-wide settings of mod_wsock: how
 * connections are driven (WSockDriver, WSockLoopThreads) and the room bus's
 * shared memory (WSockBusSize, WSockBusRooms).  Server config only; read
 * again at every restart.
 */
#include <httpd.h>
#include <http_config.h>
#include <apr_strings.h>

#include "wsock_bus.h"
#include "wsock_config.h"
#include "wsock_parse.h"

wsock_server_settings wsock_server;

void wsock_server_settings_reset(void)
{
    wsock_server.driver_blocking_only = 0;  /* a restart rereads the directives */
    wsock_server.loop_threads = 0;
    wsock_server.bus_size = WSOCK_BUS_DEFAULT_SIZE;
    wsock_server.bus_rooms = WSOCK_BUS_DEFAULT_ROOMS;
}

/* WSockDriver: auto = loop threads where the MPM can suspend connections
 * (event), the blocking driver elsewhere; blocking = always the latter. */
const char *wsock_cmd_driver(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    int blocking = wsock_keyword_of_two(arg, "auto", "blocking");

    (void)conf;
    if (err) {
        return err;
    }
    if (blocking < 0) {
        return apr_psprintf(cmd->pool, "WSockDriver: '%s' is not auto or blocking", arg);
    }
    wsock_server.driver_blocking_only = blocking;
    return NULL;
}

const char *wsock_cmd_loop_threads(cmd_parms *cmd, void *conf, const char *arg)
{
    long n;
    const char *err = wsock_global_number(cmd, arg, 1, 64, "a number from 1 to 64", &n);

    (void)conf;
    if (err == NULL) {
        wsock_server.loop_threads = (int)n;
    }
    return err;
}

const char *wsock_cmd_bus_size(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_off_t n;

    (void)conf;
    if (err == NULL) {
        err = wsock_parse_bytes(cmd, arg, 1, &n);
    }
    if (err == NULL && (n < WSOCK_BUS_MIN_SIZE || n > WSOCK_BUS_MAX_SIZE)) {
        err = apr_psprintf(cmd->pool, "WSockBusSize: '%s' is not from 64K to 1G", arg);
    }
    if (err == NULL) {
        wsock_server.bus_size = (apr_size_t)n;
    }
    return err;
}

const char *wsock_cmd_bus_rooms(cmd_parms *cmd, void *conf, const char *arg)
{
    static const char what[] = "a power of two from 16 to 1048576";
    long n;
    const char *err = wsock_global_number(cmd, arg, WSOCK_BUS_MIN_ROOMS, WSOCK_BUS_MAX_ROOMS, what,
                                    &n);

    (void)conf;
    if (err == NULL && (n & (n - 1)) != 0) {
        err = apr_psprintf(cmd->pool, "WSockBusRooms: '%s' is not %s", arg, what);
    }
    if (err == NULL) {
        wsock_server.bus_rooms = (apr_uint32_t)n;
    }
    return err;
}
