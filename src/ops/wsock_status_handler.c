/*
 * wsock_status_handler.c — the WebSocket side of `SetHandler wsock-status`:
 * an internal handler (not nameable by WSockHandler) whose connections
 * join this child's dashboard room.  On open it sends the history (so the
 * page draws the last minutes at once) and a first snapshot; from then on
 * the sampler publishes a snapshot to the room every second.  It takes no
 * input: any message closes the connection with 1003.
 */
#include <stdlib.h>

#include <httpd.h>
#include <http_log.h>

#include "wsock.h"
#include "wsock_history.h"
#include "wsock_log.h"
#include "wsock_rooms.h"
#include "wsock_sampler.h"
#include "wsock_snapshot_json.h"
#include "wsock_status_handler.h"

APLOG_USE_MODULE(wsock);

static void send_owned(wsock_conn *wc, char *json, size_t len)
{
    if (json) {
        wsock_send(wc, 1, json, len);
        free(json);
    }
}

static int status_open(wsock_conn *wc)
{
    wsock_sample *s;
    char *json;
    size_t len = 0;
    int n;

    if (wsock_rooms_join_reserved(wc, WSOCK_STATUS_ROOM) != APR_SUCCESS) {
        return 1013;                /* try again later */
    }
    s = malloc(WSOCK_HISTORY_SECONDS * sizeof(*s));
    if (s) {
        n = wsock_history_read(s, (apr_int64_t)apr_time_sec(apr_time_now()));
        json = wsock_history_json(s, n, &len);
        send_owned(wc, json, len);
        free(s);
    }
    json = wsock_sampler_snapshot(&len);
    send_owned(wc, json, len);
    return 0;
}

static int status_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    (void)is_text;
    (void)data;
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(wc),
                  WSOCKNO(1453) "wsock-status %s: a %" APR_SIZE_T_FMT "-byte message from "
                  "the client; the status stream takes no input: closing with 1003",
                  wsock_uri(wc), len);
    return 1003;
}

const wsock_handler wsock_status_handler = {
    .api_version = WSOCK_API_VERSION,
    .name = "status",
    .on_open = status_open,
    .on_message = status_message,
};
