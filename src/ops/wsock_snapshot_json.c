/*
 * wsock_snapshot_json.c — wsock_counts, rooms and samples as the JSON the
 * dashboard page reads (see wsock_snapshot_json.h).  Names come from
 * clients (rooms) and from the configuration (locations): jansson escapes
 * them as JSON strings, and the page only ever puts them in text nodes.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <apr_strings.h>

#include "wsock_snapshot_json.h"

/* The columns of a sample row, in order: t, children, open, rooms,
 * members, messages/bytes in/out, then closed_<code> for each counted
 * close code and closed_other, then refused_<reason>. */
static json_t *columns(void)
{
    static const char *const fixed[] = {
        "t", "children", "open", "rooms", "members",
        "messages_in", "messages_out", "bytes_in", "bytes_out"
    };
    json_t *a = json_array();
    char name[32];

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        json_array_append_new(a, json_string(fixed[i]));
    }
    for (int k = 0; k < WSOCK_CLOSE_CODE_COUNT - 1; k++) {
        snprintf(name, sizeof(name), "closed_%d", wsock_close_codes[k]);
        json_array_append_new(a, json_string(name));
    }
    json_array_append_new(a, json_string("closed_other"));
    for (int r = 0; r < WSOCK_R_COUNT; r++) {
        snprintf(name, sizeof(name), "refused_%s", wsock_refusal_names[r]);
        json_array_append_new(a, json_string(name));
    }
    return a;
}

static json_t *row(const wsock_sample *s)
{
    json_t *a = json_array();

    json_array_append_new(a, json_integer(s->t));
    json_array_append_new(a, json_integer(s->children));
    json_array_append_new(a, json_integer(s->open));
    json_array_append_new(a, json_integer(s->rooms));
    json_array_append_new(a, json_integer(s->members));
    json_array_append_new(a, json_integer((json_int_t)s->messages_in));
    json_array_append_new(a, json_integer((json_int_t)s->messages_out));
    json_array_append_new(a, json_integer((json_int_t)s->bytes_in));
    json_array_append_new(a, json_integer((json_int_t)s->bytes_out));
    for (int k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
        json_array_append_new(a, json_integer((json_int_t)s->closed[k]));
    }
    for (int r = 0; r < WSOCK_R_COUNT; r++) {
        json_array_append_new(a, json_integer((json_int_t)s->refused[r]));
    }
    return a;
}

/* Close codes with a count: {"1000": n, ..., "other": n}. */
static json_t *closes(const apr_uint64_t *closed)
{
    json_t *o = json_object();
    char code[16];

    for (int k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
        if (closed[k] == 0) {
            continue;
        }
        if (k < WSOCK_CLOSE_CODE_COUNT - 1) {
            snprintf(code, sizeof(code), "%d", wsock_close_codes[k]);
        }
        else {
            strcpy(code, "other");
        }
        json_object_set_new(o, code, json_integer((json_int_t)closed[k]));
    }
    return o;
}

/* Refusals with a count: {"origin": {"403": n}, ...}. */
static json_t *refusals(const wsock_counts *c)
{
    json_t *o = json_object();
    char status[16];

    for (int r = 0; r < WSOCK_R_COUNT; r++) {
        json_t *by = NULL;

        for (int k = 0; k < WSOCK_REFUSAL_STATUS_COUNT; k++) {
            if (c->refused[r][k] == 0) {
                continue;
            }
            if (by == NULL) {
                by = json_object();
            }
            if (k < WSOCK_REFUSAL_STATUS_COUNT - 1) {
                snprintf(status, sizeof(status), "%d", wsock_refusal_statuses[k]);
            }
            else {
                strcpy(status, "other");
            }
            json_object_set_new(by, status, json_integer((json_int_t)c->refused[r][k]));
        }
        if (by) {
            json_object_set_new(o, wsock_refusal_names[r], by);
        }
    }
    return o;
}

/* A name as a JSON string: bytes that are not UTF-8 (a name cut short in
 * a character, or a plugin's binary name) become '?', the rest is kept. */
static json_t *text_of(const char *name)
{
    char safe[WSOCK_HISTORY_ROOM_NAME];
    json_t *j = json_string(name);

    if (j) {
        return j;
    }
    apr_cpystrn(safe, name, sizeof(safe));
    for (char *p = safe; *p; p++) {
        if ((unsigned char)*p >= 0x80) {
            *p = '?';
        }
    }
    return json_string(safe);
}

static json_t *locations(const wsock_counts *c)
{
    json_t *a = json_array();

    for (int i = 0; i < c->nlabels; i++) {
        const wsock_label_counts *l = &c->label[i];
        char loc[WSOCK_LABEL_NAME + 1], handler[WSOCK_LABEL_HANDLER + 1];

        /* the shared table keeps names NUL-terminated; be sure anyway */
        memcpy(loc, l->location, WSOCK_LABEL_NAME);
        loc[WSOCK_LABEL_NAME] = '\0';
        memcpy(handler, l->handler, WSOCK_LABEL_HANDLER);
        handler[WSOCK_LABEL_HANDLER] = '\0';
        json_array_append_new(a, json_pack("{s:o,s:o,s:I,s:I,s:o}",
                                           "location", text_of(loc),
                                           "handler", text_of(handler),
                                           "open", (json_int_t)l->open,
                                           "opened", (json_int_t)l->opened,
                                           "closed", closes(l->closed)));
    }
    return a;
}

static json_t *named(const char *const *names, int n, const void *values, int is_signed)
{
    json_t *o = json_object();

    for (int i = 0; i < n; i++) {
        json_int_t v = is_signed ? (json_int_t)((const apr_int64_t *)values)[i]
                                 : (json_int_t)((const apr_uint64_t *)values)[i];
        json_object_set_new(o, names[i], json_integer(v));
    }
    return o;
}

static char *dump(json_t *o, size_t *len)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    *len = text ? strlen(text) : 0;
    return text;
}

char *wsock_snapshot_json(const wsock_counts *c, const wsock_room_size *rooms, int nrooms,
                          size_t *len)
{
    wsock_sample s;
    json_t *o, *ra = json_array();

    /* The sample of this moment, at this second (not stored). */
    wsock_history_sample_of(&s, c, (apr_int64_t)apr_time_sec(c->now));
    for (int i = 0; i < nrooms; i++) {
        json_t *name = text_of(rooms[i].name);

        json_array_append_new(ra, json_pack("{s:o,s:I}", "name", name,
                                            "members", (json_int_t)rooms[i].members));
    }
    o = json_pack("{s:s,s:b,s:I,s:I,s:i,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                  "type", "snapshot",
                  "counting", c->on,
                  "time_ms", (json_int_t)apr_time_as_msec(c->now),
                  "since", (json_int_t)apr_time_sec(c->since),
                  "children", c->children,
                  "open", (json_int_t)s.open,
                  "traffic", named(wsock_hot_counter_names, WSOCK_C_HOT_COUNT, c->hot, 0),
                  "counters", named(wsock_counter_names, WSOCK_C_COUNT, c->total, 0),
                  "gauges", named(wsock_gauge_names, WSOCK_G_COUNT, c->gauge, 1),
                  "closed", closes(s.closed),
                  "refused", refusals(c),
                  "locations", locations(c),
                  "rooms", ra,
                  "columns", columns(),
                  "sample", row(&s));
    return dump(o, len);
}

/* A sample's rooms: [[name, members], ...], largest first. */
static json_t *sample_rooms(const wsock_sample *s)
{
    json_t *a = json_array();

    for (apr_uint64_t k = 0; k < s->nrooms && k < WSOCK_SAMPLE_ROOMS; k++) {
        json_array_append_new(a, json_pack("[o,I]", text_of(s->room[k].name),
                                           (json_int_t)s->room[k].members));
    }
    return a;
}

static int same_rooms(const wsock_sample *a, const wsock_sample *b)
{
    if (a->nrooms != b->nrooms) {
        return 0;
    }
    for (apr_uint64_t k = 0; k < a->nrooms && k < WSOCK_SAMPLE_ROOMS; k++) {
        if (a->room[k].members != b->room[k].members
            || strcmp(a->room[k].name, b->room[k].name) != 0) {
            return 0;
        }
    }
    return 1;
}

char *wsock_history_json(const wsock_sample *s, int n, size_t *len)
{
    json_t *rows = json_array(), *rooms = json_array();

    for (int i = 0; i < n; i++) {
        json_array_append_new(rows, row(&s[i]));
        /* null: the same rooms as the row before (most seconds) */
        json_array_append_new(rooms, i > 0 && same_rooms(&s[i], &s[i - 1])
                                     ? json_null() : sample_rooms(&s[i]));
    }
    return dump(json_pack("{s:s,s:i,s:o,s:o,s:o}", "type", "history", "interval", 1,
                          "columns", columns(), "rows", rows, "rooms", rooms), len);
}
