/*
 * mod_wsock.c — the module record of mod_wsock: its command table and its
 * hooks, and nothing else.  Directives are parsed in src/config (the
 * security and Redis ones in src/security and src/handlers), the upgrade
 * is answered in src/handshake/wsock_upgrade.c, connections are driven by
 * src/transport, process life is src/core/wsock_process.c.
 *
 *   LoadModule wsock_module modules/mod_wsock.so
 *   <Location /echo>
 *       WSockHandler echo
 *   </Location>
 */
#include <httpd.h>
#include <http_config.h>

#include "wsock_config.h"
#include "wsock_dashboard.h"
#include "wsock_handlers.h"
#include "wsock_ipcap.h"
#include "wsock_loop.h"
#include "wsock_netin.h"
#include "wsock_netout.h"
#include "wsock_ops.h"
#include "wsock_process.h"
#include "wsock_publish.h"
#include "wsock_redis.h"
#include "wsock_refusals.h"
#include "wsock_security.h"
#include "wsock_token.h"
#include "wsock_upgrade.h"

module AP_MODULE_DECLARE_DATA wsock_module;

#define WSOCK_CTX (RSRC_CONF | ACCESS_CONF)

static const command_rec wsock_cmds[] = {
    AP_INIT_TAKE2("WSockPlugin", wsock_cmd_load_plugin, NULL, RSRC_CONF,
                  "A name and the .so of a handler plugin to load"),
    AP_INIT_TAKE_ARGV("WSockHandler", wsock_cmd_handler, NULL, WSOCK_CTX,
                      "The WebSocket handler for this location (echo, ...), or none"),
    AP_INIT_ITERATE("WSockProtocols", wsock_cmd_protocols, NULL, WSOCK_CTX,
                    "Subprotocols this location accepts, e.g. chat.v1 chat.v2"),
    AP_INIT_FLAG("WSockRequireProtocol", wsock_cmd_require_protocol, NULL, WSOCK_CTX,
                 "On: refuse (400) a client that offers none of WSockProtocols"),
    AP_INIT_TAKE1("WSockMaxMessageSize", wsock_cmd_max_message, NULL, WSOCK_CTX,
                  "Largest message accepted, in bytes (K/M/G allowed); default 1M"),
    AP_INIT_TAKE1("WSockPingInterval", wsock_cmd_ping_interval, NULL, WSOCK_CTX,
                  "Seconds of peer silence before the server pings; 0 = off; default 30"),
    AP_INIT_TAKE1("WSockIdleTimeout", wsock_cmd_idle_timeout, NULL, WSOCK_CTX,
                  "Seconds of peer silence before the server closes; 0 = off; default 60"),
    AP_INIT_TAKE1("WSockCloseTimeout", wsock_cmd_close_timeout, NULL, WSOCK_CTX,
                  "Seconds to wait for the client's close reply; default 5"),
    AP_INIT_TAKE1("WSockAccessLog", wsock_cmd_access_log, NULL, WSOCK_CTX,
                  "When the access log line of a WebSocket is written: end (when it "
                  "closes, default) or upgrade (at the 101: 8 KiB less per connection)"),
    AP_INIT_TAKE1("WSockFragmentSize", wsock_cmd_fragment_size, NULL, WSOCK_CTX,
                  "Send messages larger than this as several frames; 0 = never; default 0"),
    AP_INIT_TAKE23("WSockSendQueue", wsock_cmd_send_queue, NULL, WSOCK_CTX,
                   "Outbound queue of a connection: messages, bytes (K/M/G) and what a "
                   "full queue does (drop or close); default 1024 1M close"),
    /* abuse limits */
    AP_INIT_TAKE_ARGV("WSockRateLimit", wsock_cmd_rate_limit, NULL, WSOCK_CTX,
                      "Per-connection input limits: messages=RATE[,burst=N] and/or "
                      "bytes=RATE[,burst=SIZE] per second, or off; default off"),
    AP_INIT_TAKE1("WSockFrameTimeout", wsock_cmd_frame_timeout, NULL, WSOCK_CTX,
                  "Seconds a started frame or fragmented message may take to complete; "
                  "0 = off; default 30"),
    AP_INIT_TAKE_ARGV("WSockCompression", wsock_cmd_compression, NULL, WSOCK_CTX,
                      "permessage-deflate: on|off [level=0-9] [threshold=SIZE] "
                      "[server_no_context_takeover=on|off] [client_no_context_takeover=on|off] "
                      "[server_max_window_bits=9-15] [client_max_window_bits=8-15] "
                      "[mem_level=1-9]; default off"),
    AP_INIT_TAKE1("WSockDriver", wsock_cmd_driver, NULL, RSRC_CONF,
                  "auto (loop threads under the event MPM) or blocking; default auto"),
    AP_INIT_TAKE1("WSockBusSize", wsock_cmd_bus_size, NULL, RSRC_CONF,
                  "Bytes of shared memory for messages between child processes "
                  "(server config; default 8M)"),
    AP_INIT_TAKE1("WSockBusRooms", wsock_cmd_bus_rooms, NULL, RSRC_CONF,
                  "(room, child process) pairs whose members the bus counts exactly, "
                  "a power of two (server config; default 16384)"),
    AP_INIT_TAKE1("WSockLoopThreads", wsock_cmd_loop_threads, NULL, RSRC_CONF,
                  "Loop threads per child for the asynchronous driver; default the "
                  "CPUs the server may use, shared among the MPM's child processes"),
    /* handshake security (src/security, docs/security.md) */
    AP_INIT_ITERATE("WSockAllowedOrigins", wsock_cmd_allowed_origins, NULL, WSOCK_CTX,
                    "Origins that may open a WebSocket here: same-origin (default), "
                    "scheme://host[:port], scheme://*.domain[:port], or any"),
    AP_INIT_TAKE1("WSockTokenAuth", wsock_cmd_token_auth, NULL, WSOCK_CTX,
                  "File with the HS256 secret that signs the tokens required here, or off"),
    AP_INIT_TAKE12("WSockTokenSource", wsock_cmd_token_source, NULL, WSOCK_CTX,
                   "Where the token is: protocol (default), query [name] or cookie [name]"),
    AP_INIT_TAKE1("WSockTokenAudience", wsock_cmd_token_audience, NULL, WSOCK_CTX,
                  "The aud a token must hold to be accepted here"),
    AP_INIT_TAKE1("WSockTokenLeeway", wsock_cmd_token_leeway, NULL, WSOCK_CTX,
                  "Seconds of clock skew allowed on exp and nbf; default 30"),
    AP_INIT_TAKE1("WSockTokenExpiry", wsock_cmd_token_expiry, NULL, WSOCK_CTX,
                  "When a WebSocket's token expires: close it with 1008 (default) "
                  "or keep it open"),
    AP_INIT_TAKE1("WSockMaxConnectionsPerIP", wsock_cmd_max_conns_per_ip, NULL, WSOCK_CTX,
                  "Most WebSockets one client address may hold open (429 beyond); "
                  "0 = no limit (default)"),
    AP_INIT_TAKE1("WSockIPTableSize", wsock_cmd_ip_table_size, NULL, RSRC_CONF,
                  "WebSockets the per-IP count can hold at once, server-wide (503 beyond); "
                  "server config; default 32768"),
    WSOCK_REDIS_DIRECTIVES,
    AP_INIT_TAKE1("WSockStatusAccess", wsock_cmd_status_access, NULL, WSOCK_CTX,
                  "Who a wsock-status location serves, on top of Require: local "
                  "(loopback clients, default), authenticated (a user Apache "
                  "authenticated) or any"),
    WSOCK_PUBLISH_DIRECTIVES,
    { NULL }
};

static void wsock_register_hooks(apr_pool_t *p)
{
    (void)p;
    wsock_handlers_add_builtin();
    wsock_publish_register_hooks();
    wsock_process_register_hooks();
    wsock_loop_register_hooks();
    wsock_netout_register();
    wsock_netin_register();
    wsock_security_register_hooks();
    wsock_ops_register_hooks();
    wsock_refusals_register_hooks();
    wsock_dashboard_register_hooks();
    /* First: a WebSocket location answers the upgrade itself, whatever
     * other handler the URL would map to. */
    ap_hook_handler(wsock_upgrade_handler, NULL, NULL, APR_HOOK_FIRST);
}

AP_DECLARE_MODULE(wsock) = {
    STANDARD20_MODULE_STUFF,
    wsock_dirconf_create,
    wsock_dirconf_merge,
    NULL,
    NULL,
    wsock_cmds,
    wsock_register_hooks,
    AP_MODULE_FLAG_NONE
};
