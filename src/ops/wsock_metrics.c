/*
 * wsock_metrics.c — SetHandler wsock-metrics: the counters in Prometheus's
 * text exposition format 0.0.4 (docs/operations.md lists every metric).
 *
 * Names start with wsock_ and carry their unit (_total for counters,
 * _bytes, _seconds); per-location series are labelled location and
 * handler, closes by code, refusals by reason and status.  Label values
 * come from the configuration (location paths): they are escaped as the
 * format says (backslash, double quote, newline) and must be UTF-8.
 */
#include <stddef.h>
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#include "wsock_codec.h"
#include "wsock_log.h"
#include "wsock_ops.h"

APLOG_USE_MODULE(wsock);

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A label value as the format wants it. */
static const char *label_value(apr_pool_t *p, const char *s)
{
    apr_size_t len = strlen(s), i;
    char *out, *o;
    int utf8 = wsock_utf8_valid((const uint8_t *)s, len);

    o = out = apr_palloc(p, 2 * len + 1);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '\\' || ch == '"') {
            *o++ = '\\';
            *o++ = (char)ch;
        }
        else if (ch == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else if (ch >= 0x80 && !utf8) {
            *o++ = '?';             /* not UTF-8 (a path cut mid-character) */
        }
        else {
            *o++ = (char)ch;
        }
    }
    *o = '\0';
    return out;
}

static void family(request_rec *r, const char *name, const char *type, const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u(request_rec *r, const char *name, const char *labels, apr_uint64_t v)
{
    ap_rprintf(r, "%s%s %" APR_UINT64_T_FMT "\n", name, labels, v);
}

static void sample_i(request_rec *r, const char *name, const char *labels, apr_int64_t v)
{
    ap_rprintf(r, "%s%s %" APR_INT64_T_FMT "\n", name, labels, v);
}

static void metric_u(request_rec *r, const char *name, const char *type, const char *help,
                     apr_uint64_t v)
{
    family(r, name, type, help);
    sample_u(r, name, "", v);
}

static void metric_i(request_rec *r, const char *name, const char *help, apr_int64_t v)
{
    family(r, name, "gauge", help);
    sample_i(r, name, "", v);
}

/* Per-location series. */
static void locations(request_rec *r, const wsock_ops_reading *o)
{
    const char **lab = apr_palloc(r->pool, sizeof(*lab) * (o->c.nlabels + 1));
    int i, k;

    for (i = 0; i < o->c.nlabels; i++) {
        lab[i] = apr_psprintf(r->pool, "location=\"%s\",handler=\"%s\"",
                              label_value(r->pool, o->c.label[i].location),
                              label_value(r->pool, o->c.label[i].handler));
    }
    family(r, "wsock_connections_open", "gauge", "WebSockets open now.");
    for (i = 0; i < o->c.nlabels; i++) {
        sample_i(r, "wsock_connections_open", apr_psprintf(r->pool, "{%s}", lab[i]),
                 o->c.label[i].open);
    }
    family(r, "wsock_connections_opened_total", "counter",
           "WebSockets opened (101 sent) since the server started.");
    for (i = 0; i < o->c.nlabels; i++) {
        sample_u(r, "wsock_connections_opened_total", apr_psprintf(r->pool, "{%s}", lab[i]),
                 o->c.label[i].opened);
    }
    family(r, "wsock_connections_closed_total", "counter",
           "WebSockets ended, by close code (1006: no close frame; other: any code "
           "not listed); a code appears once it has been counted.");
    for (i = 0; i < o->c.nlabels; i++) {
        for (k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
            if (o->c.label[i].closed[k] == 0) {
                continue;
            }
            sample_u(r, "wsock_connections_closed_total",
                     apr_psprintf(r->pool, "{%s,code=\"%s\"}", lab[i],
                                  wsock_ops_code_name(r->pool, k)),
                     o->c.label[i].closed[k]);
        }
    }
}

static void refusals(request_rec *r, const wsock_ops_reading *o)
{
    int why, k, i;

    family(r, "wsock_handshakes_refused_total", "counter",
           "WebSocket handshakes refused, by reason and HTTP status; a pair appears "
           "once it has been counted.");
    for (why = 0; why < WSOCK_R_COUNT; why++) {
        for (k = 0; k < WSOCK_REFUSAL_STATUS_COUNT; k++) {
            if (o->c.refused[why][k] == 0) {
                continue;
            }
            sample_u(r, "wsock_handshakes_refused_total",
                     apr_psprintf(r->pool, "{reason=\"%s\",status=\"%s\"}",
                                  wsock_refusal_names[why], wsock_ops_status_name(r->pool, k)),
                     o->c.refused[why][k]);
        }
    }
    family(r, "wsock_handshakes_refused_by_location_total", "counter",
           "WebSocket handshakes refused, by location and reason; a series appears "
           "once it has been counted.");
    for (i = 0; i < o->c.nlabels; i++) {
        const wsock_label_counts *l = &o->c.label[i];

        for (why = 0; why < WSOCK_R_COUNT; why++) {
            if (l->refused[why] == 0) {
                continue;
            }
            sample_u(r, "wsock_handshakes_refused_by_location_total",
                     apr_psprintf(r->pool, "{location=\"%s\",handler=\"%s\",reason=\"%s\"}",
                                  label_value(r->pool, l->location),
                                  label_value(r->pool, l->handler), wsock_refusal_names[why]),
                     l->refused[why]);
        }
    }
}

/* The metrics that are one figure of wsock_counts each. */
enum { HOT, TOTAL, GAUGE, BUS_GAUGE, BUS_TOTAL };
#define BUS(field) offsetof(wsock_bus_usage, field)
static const struct {
    const char *name;
    int from, index;
    const char *help;
} plain[] = {
    { "wsock_received_messages_total", HOT, WSOCK_C_MSGS_IN,
      "Whole messages received from clients." },
    { "wsock_received_bytes_total", HOT, WSOCK_C_BYTES_IN,
      "Payload bytes of the messages received (after inflating)." },
    { "wsock_sent_messages_total", HOT, WSOCK_C_MSGS_OUT,
      "Messages sent to clients (one per receiver)." },
    { "wsock_sent_bytes_total", HOT, WSOCK_C_BYTES_OUT,
      "Payload bytes of the messages sent (before compressing)." },
    { "wsock_deflate_input_bytes_total", HOT, WSOCK_C_DEFLATE_RAW,
      "Payload bytes of messages sent compressed." },
    { "wsock_deflate_output_bytes_total", HOT, WSOCK_C_DEFLATE_WIRE,
      "What those became on the wire." },
    { "wsock_inflate_input_bytes_total", HOT, WSOCK_C_INFLATE_WIRE,
      "Compressed payload bytes received." },
    { "wsock_inflate_output_bytes_total", HOT, WSOCK_C_INFLATE_RAW,
      "What those inflated to." },
    { "wsock_send_queue_drops_total", TOTAL, WSOCK_C_QUEUE_DROPS,
      "Messages dropped for a full send queue (WSockSendQueue ... drop)." },
    { "wsock_slow_consumer_closes_total", TOTAL, WSOCK_C_SLOW_CLOSES,
      "WebSockets closed for a full send queue." },
    { "wsock_rate_limit_closes_total", TOTAL, WSOCK_C_RATE_CLOSES,
      "WebSockets closed by WSockRateLimit." },
    { "wsock_bus_laps_total", TOTAL, WSOCK_C_BUS_LAPS,
      "Bus deliveries that fell a whole ring behind (messages lost)." },
    { "wsock_bus_too_large_total", TOTAL, WSOCK_C_BUS_TOO_LARGE,
      "Messages the bus's ring could not take." },
    { "wsock_redis_reconnects_total", TOTAL, WSOCK_C_REDIS_RECONNECTS,
      "Redis relay connections made again." },
    { "wsock_redis_published_total", TOTAL, WSOCK_C_REDIS_PUBLISHED,
      "Messages the relay published to Redis." },
    { "wsock_redis_dropped_total", TOTAL, WSOCK_C_REDIS_DROPPED,
      "Messages the relay's full queue refused." },
    { "wsock_publish_requests_total", TOTAL, WSOCK_C_PUBLISHED,
      "Requests to wsock-publish locations answered with a 2xx status." },
    { "wsock_publish_refused_total", TOTAL, WSOCK_C_PUBLISH_REFUSED,
      "Requests to wsock-publish locations answered with an error status." },
    { "wsock_backend_requests_total", TOTAL, WSOCK_C_BACKEND_REQUESTS,
      "Requests to application backends (WSockHandler backend) that got a usable answer." },
    { "wsock_backend_failures_total", TOTAL, WSOCK_C_BACKEND_FAILED,
      "Requests to application backends that failed (down, timed out, garbage, refused)." },
    { "wsock_rooms", GAUGE, WSOCK_G_ROOMS,
      "Rooms with a member, summed over the child processes (a room with members "
      "in two children counts twice)." },
    { "wsock_room_members", GAUGE, WSOCK_G_MEMBERS, "Room memberships." },
    { "wsock_loop_threads", GAUGE, WSOCK_G_LOOP_THREADS, "Loop threads running (event MPM)." },
    { "wsock_redis_links", GAUGE, WSOCK_G_REDIS_LINKS, "Redis relay connections up." },
    { "wsock_redis_queue_messages", GAUGE, WSOCK_G_REDIS_QUEUE,
      "Messages waiting to be published to Redis." },
    { "wsock_redis_queue_bytes", GAUGE, WSOCK_G_REDIS_QUEUE_BYTES,
      "Bytes of the messages waiting to be published to Redis." },
    { "wsock_bus_ring_size_bytes", BUS_GAUGE, BUS(ring_size),
      "Bytes of the bus's message ring (WSockBusSize)." },
    { "wsock_bus_ring_used_bytes", BUS_GAUGE, BUS(ring_used),
      "Bytes of the ring between its oldest record and its head." },
    { "wsock_bus_messages_total", BUS_TOTAL, BUS(ring_records),
      "Messages put on the bus's ring since the server started." },
    { "wsock_bus_room_slots", BUS_GAUGE, BUS(room_slots),
      "(room, child) slots of the bus's room table (WSockBusRooms)." },
    { "wsock_bus_room_slots_used", BUS_GAUGE, BUS(room_slots_used),
      "Slots of the room table holding members." },
    { "wsock_bus_members_outside", BUS_GAUGE, BUS(members_outside),
      "Room members that found no slot in the room table." },
};

static void plain_metrics(request_rec *r, const wsock_ops_reading *o)
{
    apr_size_t i;

    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        int ix = plain[i].index;
        const apr_uint64_t *bus = (const apr_uint64_t *)((const char *)&o->bus + ix);

        switch (plain[i].from) {
        case GAUGE:
            metric_i(r, plain[i].name, plain[i].help, o->c.gauge[ix]);
            break;
        case BUS_GAUGE:
            metric_u(r, plain[i].name, "gauge", plain[i].help, *bus);
            break;
        default:
            metric_u(r, plain[i].name, "counter", plain[i].help,
                     plain[i].from == HOT ? o->c.hot[ix]
                     : plain[i].from == TOTAL ? o->c.total[ix] : *bus);
        }
    }
}

static void lateness(request_rec *r, const wsock_ops_reading *o)
{
    const char *name = "wsock_loop_turn_lateness_seconds";
    apr_uint64_t cum = 0;
    int b;

    family(r, name, "histogram",
           "How late a loop thread's turn ran after its connection became ready.");
    for (b = 0; b < WSOCK_LATE_BUCKETS; b++) {
        cum += o->c.late[b];
        ap_rprintf(r, "%s_bucket{le=\"%s\"} %" APR_UINT64_T_FMT "\n", name,
                   b < WSOCK_LATE_BUCKETS - 1
                       ? wsock_ops_us_seconds(r->pool, wsock_late_bounds_us[b]) : "+Inf",
                   cum);
    }
    ap_rprintf(r, "%s_sum %s\n", name, wsock_ops_us_seconds(r->pool, o->c.late_sum_us));
    ap_rprintf(r, "%s_count %" APR_UINT64_T_FMT "\n", name, cum);
}

int wsock_metrics_handler(request_rec *r)
{
    wsock_ops_reading *o;

    if (r->handler == NULL || strcmp(r->handler, "wsock-metrics") != 0) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      WSOCKNO(1440) "wsock-metrics answers GET and HEAD only, not %s: 405",
                      r->method);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    ap_set_content_type(r, CONTENT_TYPE);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    o = wsock_ops_read(r->pool);
    metric_u(r, "wsock_counters_enabled", "gauge",
             "1 when the counters have their shared memory (0: nothing is counted).",
             (apr_uint64_t)o->c.on);
    family(r, "wsock_start_time_seconds", "gauge",
           "When the totals started counting (the server's first start), Unix time.");
    ap_rprintf(r, "wsock_start_time_seconds %s\n",
               wsock_ops_us_seconds(r->pool, (apr_uint64_t)o->c.since));
    metric_u(r, "wsock_child_processes", "gauge", "Child processes counting now.",
             (apr_uint64_t)o->c.children);
    locations(r, o);
    refusals(r, o);
    plain_metrics(r, o);
    lateness(r, o);
    return OK;
}
