/*
 * wsock_redis_history.c — a room's Redis Stream as a resume reads it:
 * what to send (the plan, within the caps), then the entries page by page.
 * The resumer thread (wsock_redis_catchup.c) calls these on its own
 * connection; nothing here waits for anything but Redis, within
 * WSockRedisTimeout (the connection's socket timeout).
 *
 * The plan runs as one script, so Redis does it in one step: it walks the
 * stream back from its end to the client's last id, keeps the newest
 * entries that fit in resume= messages and resume-bytes= bytes (as clients
 * get them: the JSON with its id), and PUBLISHes the client's sync marker
 * on the room's channel at that very moment.  Every message with an id up
 * to the stream's end then was published before the marker, every later
 * one after it: the hand-over to live delivery (wsock_redis_catchup.c)
 * relies on exactly that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "wsock_redis.h"

/* KEYS[1]: the stream (and channel); ARGV: the client's last id, most
 * entries, most bytes, the sync marker.  Returns {first, newest, count,
 * bytes, cut}.  A stream of foreign entries (no field j) is walked for a
 * bounded number of steps only. */
static const char plan_script[] =
    "local key, after = KEYS[1], '(' .. ARGV[1] "
    "local maxn, maxb = tonumber(ARGV[2]), tonumber(ARGV[3]) "
    "local n, bytes, first, newest, cut, walked = 0, 0, '', '', 0, 0 "
    "local hi = '+' "
    "while cut == 0 do "
    "  local page = redis.call('XREVRANGE', key, hi, after, 'COUNT', 8) "
    "  for _, e in ipairs(page) do "
    "    if newest == '' then newest = e[1] end "
    "    walked = walked + 1 "
    "    local f, j = e[2], nil "
    "    for k = 1, #f - 1, 2 do if f[k] == 'j' then j = f[k + 1] end end "
    "    if j then "
    "      local size = #j + #e[1] + 8 "
    "      if n >= maxn or bytes + size > maxb then cut = 1 break end "
    "      n, bytes, first = n + 1, bytes + size, e[1] "
    "    elseif walked > maxn + 1000 then cut = 1 break end "
    "  end "
    "  if #page < 8 then break end "
    "  hi = '(' .. page[#page][1] "
    "end "
    "redis.call('PUBLISH', key, ARGV[4]) "
    "return {first, newest, n, bytes, cut}";

/* The value of field name in a flat array of name/value pairs. */
static const redisReply *field(const redisReply *r, const char *name)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1];
        }
    }
    return NULL;
}

/* From XINFO STREAM: whether every message after after is still in the
 * stream: nothing was ever trimmed, or the oldest entry kept is not newer
 * than after.  (The oldest entry only ever gets newer: true at the time of
 * the plan means true before it.) */
static int nothing_trimmed_after(const redisReply *r, const char *after)
{
    const redisReply *len, *added, *first;

    if (r->type == REDIS_REPLY_ERROR) {
        return strcmp(after, "0-0") == 0;      /* no stream: none kept, none lost */
    }
    if ((len = field(r, "length")) == NULL || (added = field(r, "entries-added")) == NULL
        || len->type != REDIS_REPLY_INTEGER || added->type != REDIS_REPLY_INTEGER) {
        return 0;
    }
    first = field(r, "recorded-first-entry-id");
    return len->integer == added->integer
           || (first && first->type == REDIS_REPLY_STRING
               && wsock_redis_id_cmp(first->str, after) <= 0);
}

static void copy_str(char *out, apr_size_t n, const redisReply *r)
{
    snprintf(out, n, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
}

int wsock_redis_history_plan(redisContext *c, const char *key, const char *after,
                             long max_n, apr_size_t max_bytes, const char *marker,
                             wsock_redis_plan *plan, char *why, apr_size_t n)
{
    redisReply *r = NULL, *info = NULL;
    int ok = 0;

    redisAppendCommand(c, "EVAL %s 1 %s %s %ld %lu %s", plan_script, key, after, max_n,
                       (unsigned long)max_bytes, marker);
    redisAppendCommand(c, "XINFO STREAM %s", key);
    if (redisGetReply(c, (void **)&r) != REDIS_OK
        || redisGetReply(c, (void **)&info) != REDIS_OK) {
        snprintf(why, n, "%s", c->errstr[0] ? c->errstr : "no reply");
    }
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 5
             || r->element[2]->type != REDIS_REPLY_INTEGER
             || r->element[3]->type != REDIS_REPLY_INTEGER
             || r->element[4]->type != REDIS_REPLY_INTEGER) {
        snprintf(why, n, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    else {
        copy_str(plan->first, sizeof(plan->first), r->element[0]);
        copy_str(plan->newest, sizeof(plan->newest), r->element[1]);
        plan->count = (long)r->element[2]->integer;
        plan->bytes = (apr_size_t)r->element[3]->integer;
        plan->cut = r->element[4]->integer != 0;
        plan->complete = !plan->cut && nothing_trimmed_after(info, after);
        ok = 1;
    }
    if (r) {
        freeReplyObject(r);
    }
    if (info) {
        freeReplyObject(info);
    }
    return ok;
}

redisReply *wsock_redis_history_page(redisContext *c, const char *key, const char *start,
                                     const char *upto, long count, char *why, apr_size_t n)
{
    redisReply *r = redisCommand(c, "XRANGE %s %s %s COUNT %ld", key, start, upto, count);

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        snprintf(why, n, "%s", r == NULL ? (c->errstr[0] ? c->errstr : "no reply")
                               : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        if (r) {
            freeReplyObject(r);
        }
        return NULL;
    }
    return r;
}

int wsock_redis_history_entry(const redisReply *page, size_t i, const char **id,
                              const char **json, apr_size_t *len)
{
    const redisReply *e = page->element[i], *j;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
        || e->element[0]->type != REDIS_REPLY_STRING) {
        return -1;
    }
    *id = e->element[0]->str;
    if ((j = field(e->element[1], "j")) == NULL || j->type != REDIS_REPLY_STRING) {
        return 0;
    }
    *json = j->str;
    *len = j->len;
    return 1;
}
