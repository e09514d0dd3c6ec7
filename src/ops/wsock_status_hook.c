/*
 * wsock_status_hook.c — mod_wsock's section of mod_status's server-status:
 * an HTML section, and "Key: value" lines for server-status?auto
 * (docs/operations.md lists the keys).
 *
 * Every string from outside the module's own tables is escaped: location
 * paths come from the configuration and may hold any byte (HTML-escaped
 * in the page; in ?auto keys, spaces and control bytes are %-escaped so
 * that a key stays one token before ": ").
 */
#include <ctype.h>
#include <string.h>

#include <httpd.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <util_time.h>

#include "mod_status.h"

#include "wsock_ops.h"

/* "bytes_in" -> "BytesIn": the ?auto key of a counter named in
 * wsock_counters.h. */
static const char *camel(apr_pool_t *p, const char *snake)
{
    char *out = apr_pstrdup(p, snake), *o = out;
    int up = 1;

    for (; *snake; snake++) {
        if (*snake == '_') {
            up = 1;
            continue;
        }
        *o++ = up ? (char)toupper((unsigned char)*snake) : *snake;
        up = 0;
    }
    *o = '\0';
    return out;
}

static const char *html(request_rec *r, const char *s)
{
    return ap_escape_html2(r->pool, s, 1);
}

/* A location as part of an ?auto key: "/chat chat" with no space or
 * control byte inside the path. */
static const char *auto_label(request_rec *r, const wsock_label_counts *l)
{
    return apr_pstrcat(r->pool, ap_escape_uri(r->pool, l->location), " ", l->handler, NULL);
}

/* ---- server-status?auto -------------------------------------------- */

static void line(request_rec *r, const char *key, apr_uint64_t v)
{
    ap_rprintf(r, "WSock%s: %" APR_UINT64_T_FMT "\n", key, v);
}

static void line_i(request_rec *r, const char *key, apr_int64_t v)
{
    ap_rprintf(r, "WSock%s: %" APR_INT64_T_FMT "\n", key, v);
}

/* "Closed1000", "ClosedOther": a close code's key. */
static const char *closed_key(apr_pool_t *p, int k)
{
    return apr_pstrcat(p, "Closed", k < WSOCK_CLOSE_CODE_COUNT - 1
                                     ? wsock_ops_code_name(p, k) : "Other", NULL);
}

static void short_report(request_rec *r, const wsock_ops_reading *o)
{
    apr_pool_t *p = r->pool;
    int i, k;

    line(r, "Counting", (apr_uint64_t)o->c.on);
    line(r, "Children", (apr_uint64_t)o->c.children);
    line(r, "Since", (apr_uint64_t)apr_time_sec(o->c.since));
    line_i(r, "Open", o->open);
    line(r, "Opened", o->opened);
    line(r, "Closed", o->closed_all);
    for (k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
        line(r, closed_key(p, k), o->closed[k]);
    }
    line(r, "Refused", o->refused_all);
    for (i = 0; i < WSOCK_R_COUNT; i++) {
        const char *why = apr_pstrcat(p, "Refused", camel(p, wsock_refusal_names[i]), NULL);

        line(r, why, wsock_ops_refused(&o->c, i));
        for (k = 0; k < WSOCK_REFUSAL_STATUS_COUNT; k++) {
            if (o->c.refused[i][k] != 0) {
                line(r, apr_pstrcat(p, why, k < WSOCK_REFUSAL_STATUS_COUNT - 1
                                    ? wsock_ops_status_name(p, k) : "Other", NULL),
                     o->c.refused[i][k]);
            }
        }
    }
    for (i = 0; i < WSOCK_C_HOT_COUNT; i++) {
        line(r, camel(p, wsock_hot_counter_names[i]), o->c.hot[i]);
    }
    for (i = 0; i < WSOCK_C_COUNT; i++) {
        line(r, camel(p, wsock_counter_names[i]), o->c.total[i]);
    }
    for (i = 0; i < WSOCK_G_COUNT; i++) {
        line_i(r, camel(p, wsock_gauge_names[i]), o->c.gauge[i]);
    }
    line(r, "BusRingSize", o->bus.ring_size);
    line(r, "BusRingUsed", o->bus.ring_used);
    line(r, "BusMessages", o->bus.ring_records);
    line(r, "BusRoomSlots", o->bus.room_slots);
    line(r, "BusRoomSlotsUsed", o->bus.room_slots_used);
    line(r, "BusMembersOutside", o->bus.members_outside);
    line(r, "TurnLateCount", o->late_count);
    line(r, "TurnLateSumUs", o->c.late_sum_us);
    for (k = 0; k < WSOCK_LATE_BUCKETS; k++) {
        line(r, k < WSOCK_LATE_BUCKETS - 1
                    ? apr_psprintf(p, "TurnLateUpTo%uus", (unsigned)wsock_late_bounds_us[k])
                    : "TurnLateMore", o->c.late[k]);
    }
    for (i = 0; i < o->c.nlabels; i++) {
        const wsock_label_counts *l = &o->c.label[i];
        const char *lab = auto_label(r, l);

        line_i(r, apr_pstrcat(p, "Open ", lab, NULL), l->open);
        line(r, apr_pstrcat(p, "Opened ", lab, NULL), l->opened);
        line(r, apr_pstrcat(p, "Closed ", lab, NULL), wsock_ops_label_closed(l));
        for (k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
            if (l->closed[k] != 0) {
                line(r, apr_pstrcat(p, closed_key(p, k), " ", lab, NULL), l->closed[k]);
            }
        }
        for (k = 0; k < WSOCK_R_COUNT; k++) {
            if (l->refused[k] != 0) {
                line(r, apr_pstrcat(p, "Refused", camel(p, wsock_refusal_names[k]), " ", lab,
                                    NULL), l->refused[k]);
            }
        }
    }
}

/* ---- the HTML section ---------------------------------------------- */

/* One name and value: a table row, or a line without tables. */
static void item(request_rec *r, int notable, const char *name, const char *value)
{
    if (notable) {
        ap_rprintf(r, "<dt>%s: %s</dt>\n", name, value);
    }
    else {
        ap_rprintf(r, "<tr><th align=\"left\">%s</th><td align=\"right\">%s</td></tr>\n",
                   name, value);
    }
}

static void item_u(request_rec *r, int notable, const char *name, apr_uint64_t v)
{
    item(r, notable, name, apr_psprintf(r->pool, "%" APR_UINT64_T_FMT, v));
}

static void open_list(request_rec *r, int notable, const char *title)
{
    ap_rprintf(r, "<h3>%s</h3>\n%s", title, notable ? "<dl>\n" : "<table border=\"0\">\n");
}

static void close_list(request_rec *r, int notable)
{
    ap_rputs(notable ? "</dl>\n" : "</table>\n", r);
}

/* "1000: 3, 1006: 1" */
static const char *codes_text(request_rec *r, const apr_uint64_t *closed)
{
    const char *s = "";
    int k;

    for (k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
        if (closed[k] != 0) {
            s = apr_psprintf(r->pool, "%s%s%s: %" APR_UINT64_T_FMT, s, *s ? ", " : "",
                             wsock_ops_code_name(r->pool, k), closed[k]);
        }
    }
    return s;
}

/* "origin: 2, token: 1" */
static const char *reasons_text(request_rec *r, const wsock_label_counts *l)
{
    const char *s = "";
    int k;

    for (k = 0; k < WSOCK_R_COUNT; k++) {
        if (l->refused[k] != 0) {
            s = apr_psprintf(r->pool, "%s%s%s: %" APR_UINT64_T_FMT, s, *s ? ", " : "",
                             wsock_refusal_names[k], l->refused[k]);
        }
    }
    return s;
}

static void html_locations(request_rec *r, int notable, const wsock_ops_reading *o)
{
    int i;

    ap_rputs("<h3>WebSockets by location</h3>\n", r);
    if (!notable) {
        ap_rputs("<table border=\"1\"><tr><th>Location</th><th>Handler</th><th>Open</th>"
                 "<th>Opened</th><th>Closed</th><th>Closes by code</th><th>Refused</th></tr>\n", r);
    }
    else {
        ap_rputs("<dl>\n", r);
    }
    for (i = 0; i < o->c.nlabels; i++) {
        const wsock_label_counts *l = &o->c.label[i];

        ap_rprintf(r, notable
                   ? "<dt>%s (%s): %" APR_INT64_T_FMT " open, %" APR_UINT64_T_FMT
                     " opened, %" APR_UINT64_T_FMT " closed (%s), refused: %s</dt>\n"
                   : "<tr><td>%s</td><td>%s</td><td align=\"right\">%" APR_INT64_T_FMT
                     "</td><td align=\"right\">%" APR_UINT64_T_FMT "</td>"
                     "<td align=\"right\">%" APR_UINT64_T_FMT "</td><td>%s</td>"
                     "<td>%s</td></tr>\n",
                   html(r, l->location), html(r, l->handler), l->open, l->opened,
                   wsock_ops_label_closed(l), codes_text(r, l->closed), reasons_text(r, l));
    }
    ap_rputs(notable ? "</dl>\n" : "</table>\n", r);
}

static void html_refusals(request_rec *r, int notable, const wsock_ops_reading *o)
{
    int i, k;

    open_list(r, notable, "Handshakes refused");
    item_u(r, notable, "all", o->refused_all);
    for (i = 0; i < WSOCK_R_COUNT; i++) {
        for (k = 0; k < WSOCK_REFUSAL_STATUS_COUNT; k++) {
            if (o->c.refused[i][k] != 0) {
                item_u(r, notable, apr_pstrcat(r->pool, wsock_refusal_names[i], " (",
                                               wsock_ops_status_name(r->pool, k), ")", NULL),
                       o->c.refused[i][k]);
            }
        }
    }
    close_list(r, notable);
}

static const char *ratio(request_rec *r, apr_uint64_t part, apr_uint64_t whole)
{
    if (whole == 0) {
        return "-";
    }
    return apr_psprintf(r->pool, "%.1f %%", 100.0 * (double)part / (double)whole);
}

static void html_traffic(request_rec *r, int notable, const wsock_ops_reading *o)
{
    const apr_uint64_t *h = o->c.hot;
    int i;

    open_list(r, notable, "Traffic and limits");
    for (i = 0; i < WSOCK_C_HOT_COUNT; i++) {
        item_u(r, notable, wsock_hot_counter_names[i], h[i]);
    }
    item(r, notable, "compressed size of messages sent (wire / raw)",
         ratio(r, h[WSOCK_C_DEFLATE_WIRE], h[WSOCK_C_DEFLATE_RAW]));
    item(r, notable, "compressed size of messages received (wire / raw)",
         ratio(r, h[WSOCK_C_INFLATE_WIRE], h[WSOCK_C_INFLATE_RAW]));
    for (i = 0; i < WSOCK_C_COUNT; i++) {
        item_u(r, notable, wsock_counter_names[i], o->c.total[i]);
    }
    for (i = 0; i < WSOCK_G_COUNT; i++) {
        item(r, notable, wsock_gauge_names[i],
             apr_psprintf(r->pool, "%" APR_INT64_T_FMT, o->c.gauge[i]));
    }
    close_list(r, notable);

    open_list(r, notable, "Bus between child processes");
    item_u(r, notable, "ring bytes in use", o->bus.ring_used);
    item_u(r, notable, "ring size (bytes)", o->bus.ring_size);
    item_u(r, notable, "messages put on the ring", o->bus.ring_records);
    item_u(r, notable, "room table slots in use", o->bus.room_slots_used);
    item_u(r, notable, "room table slots", o->bus.room_slots);
    item_u(r, notable, "members outside the room table", o->bus.members_outside);
    close_list(r, notable);
}

static void html_lateness(request_rec *r, int notable, const wsock_ops_reading *o)
{
    int k;

    open_list(r, notable, "Loop-thread turns, by how late they ran");
    for (k = 0; k < WSOCK_LATE_BUCKETS; k++) {
        item_u(r, notable,
               k < WSOCK_LATE_BUCKETS - 1
                   ? apr_psprintf(r->pool, "up to %u &micro;s", (unsigned)wsock_late_bounds_us[k])
                   : "more", o->c.late[k]);
    }
    item(r, notable, "mean",
         o->late_count ? apr_psprintf(r->pool, "%" APR_UINT64_T_FMT " &micro;s",
                                      o->c.late_sum_us / o->late_count) : "-");
    close_list(r, notable);
}

static void html_report(request_rec *r, int flags, const wsock_ops_reading *o)
{
    int notable = (flags & AP_STATUS_NOTABLE) != 0;
    char since[APR_RFC822_DATE_LEN];

    ap_rputs("<hr />\n<h2><a name=\"wsock\">mod_wsock</a></h2>\n", r);
    if (!o->c.on) {
        ap_rputs("<p>The counters have no shared memory (see the error log): "
                 "nothing is counted.</p>\n", r);
        return;
    }
    apr_rfc822_date(since, o->c.since);
    ap_rprintf(r, "<dl><dt>%" APR_INT64_T_FMT " WebSockets open in %d child processes</dt>\n"
               "<dt>%" APR_UINT64_T_FMT " opened, %" APR_UINT64_T_FMT " closed (%s), "
               "%" APR_UINT64_T_FMT " handshakes refused since %s</dt></dl>\n",
               o->open, o->c.children, o->opened, o->closed_all,
               codes_text(r, o->closed), o->refused_all, since);
    html_locations(r, notable, o);
    html_refusals(r, notable, o);
    html_traffic(r, notable, o);
    html_lateness(r, notable, o);
}

int wsock_status_hook(request_rec *r, int flags)
{
    wsock_ops_reading *o = wsock_ops_read(r->pool);

    if (flags & AP_STATUS_SHORT) {
        short_report(r, o);
    }
    else {
        html_report(r, flags, o);
    }
    return OK;
}
