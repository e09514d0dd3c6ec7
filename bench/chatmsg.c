/*
 * chatmsg.c — the chat message generator of the benchmarks (see chatmsg.h).
 *
 * A message is one JSON object of a small chat protocol:
 *
 *   {"seq":17,"ts":8123456789012,"at":"2026-12-06T09:00:28Z","room":"lobby",
 *    "user":"maria.k","reply_to":12,"mentions":["tom"],"text":"...",
 *    "reactions":{"👍":2},"link":"https://example.org/..."}
 *
 * seq, ts, user and text are always there; the other fields are added, in
 * that order, when the message's length leaves room for them (a short
 * message is mostly its text) and the draw says so.  The text is common
 * chat words, now and then an emoji, cut to the exact length.  Everything
 * is drawn from seq alone with splitmix64, so the same seq gives the same
 * bytes in every process.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chatmsg.h"
#include "ws_client.h"

#define SEED 0x63686174206d7367ull      /* "chat msg": fixed, for repeatable runs */

static const char *const users[] = {
    "maria.k", "tom", "j.schmidt", "anna_b", "leo", "sofia.r", "bjorn", "chen.wei",
    "ola", "priya.s", "mateo", "fatima", "noah_l", "yuki", "elena.v", "omar",
    "lucas.m", "ines", "david_k", "hana", "pierre", "grace.o", "ivan", "zoe.t",
    "ahmed", "julia.p", "sam", "nora", "felix.w", "amara", "kenji", "lena_h",
};
static const char *const rooms[] = { "lobby", "general", "dev", "random", "support",
                                     "release-2026" };
static const char *const words[] = {
    "the", "to", "I", "you", "it", "is", "a", "and", "that", "we", "on", "for", "this",
    "in", "of", "be", "can", "have", "just", "not", "with", "do", "so", "are", "will",
    "what", "if", "at", "but", "my", "me", "was", "know", "think", "yes", "no", "ok",
    "thanks", "please", "today", "tomorrow", "meeting", "build", "deploy", "merge",
    "branch", "review", "test", "tests", "fixed", "broken", "server", "client", "looks",
    "good", "great", "lol", "sure", "sorry", "later", "lunch", "coffee", "anyone",
    "here", "there", "now", "again", "still", "maybe", "check", "logs", "error", "issue",
    "ticket", "release", "version", "update", "works", "again?", "again!", "right",
    "morning", "everyone", "hey", "hi", "see", "send", "link", "docs", "config",
    "should", "would", "could", "about", "after", "before", "weekend", "problem",
};
static const char *const emoji[] = { "\xf0\x9f\x91\x8d", "\xf0\x9f\x98\x82",
                                     "\xf0\x9f\x8e\x89", "\xe2\x9c\x85",
                                     "\xf0\x9f\x99\x8f", "\xf0\x9f\x94\xa5" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One field, appended only if the message keeps room for its text. */
typedef struct {
    char  *p;
    size_t len, cap, room;         /* room: what the fields may use in all */
} buf;

static void add(buf *b, const char *s, size_t n)
{
    if (b->len + n < b->cap) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
    }
}

static void addf(buf *b, int optional, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void addf(buf *b, int optional, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof tmp && (!optional || b->len + (size_t)n <= b->room)) {
        add(b, tmp, (size_t)n);
    }
}

/* The text: words (a capital first, a period now and then, an emoji
 * sometimes) until exactly len bytes; only ASCII is ever cut. */
static void text(buf *b, uint64_t *rng, size_t len)
{
    size_t end = b->len + len, cap_word = 1;

    while (b->len < end) {
        const char *w = words[wsc_rng_next(rng) % N(words)];
        unsigned r = wsc_rng_next(rng) % 100;
        char tmp[32];
        size_t n;

        if (r < 4 && end - b->len >= 5) {
            w = emoji[wsc_rng_next(rng) % N(emoji)];
        }
        n = (size_t)snprintf(tmp, sizeof tmp, "%s%s%s", b->len == end - len ? "" : " ", w,
                             r >= 4 && r < 12 ? "." : r == 12 ? "," : "");
        if (cap_word && tmp[0] >= 'a' && tmp[0] <= 'z') {
            tmp[0] = (char)(tmp[0] - 'a' + 'A');
        }
        else if (cap_word && tmp[0] == ' ' && tmp[1] >= 'a' && tmp[1] <= 'z') {
            tmp[1] = (char)(tmp[1] - 'a' + 'A');
        }
        cap_word = r >= 4 && r < 12;
        if (n > end - b->len) {
            n = end - b->len;          /* an emoji never gets here (see above) */
        }
        add(b, tmp, n);
    }
}

size_t chatmsg_make(char *out, size_t cap, uint64_t seq, uint64_t ts, size_t min,
                    size_t max)
{
    uint64_t rng = SEED ^ (seq * 0x9E3779B97F4A7C15ull);
    double u = (double)wsc_rng_next(&rng) / 4294967296.0;
    size_t want = min + (size_t)((double)(max - min + 1) * u * u);
    unsigned secs = (unsigned)(seq * 17 / 10);       /* one message every 1.7 s */
    const char *user = users[wsc_rng_next(&rng) % N(users)];
    buf b = { out, 0, cap, 0 };
    char tail[160];
    size_t tail_len = 0;

    if (want > max) {
        want = max;
    }
    /* Fields may use all but the last 24 bytes (the closing "text" part
     * and at least a few words). */
    b.room = want > 24 ? want - 24 : 0;
    addf(&b, 0, "{\"seq\":%llu,\"ts\":%llu,", (unsigned long long)seq, (unsigned long long)ts);
    addf(&b, 1, "\"at\":\"2026-12-06T%02u:%02u:%02uZ\",", 9 + secs / 3600 % 12,
         secs / 60 % 60, secs % 60);
    addf(&b, 1, "\"room\":\"%s\",", rooms[wsc_rng_next(&rng) % N(rooms)]);
    addf(&b, 0, "\"user\":\"%s\",", user);
    if (wsc_rng_next(&rng) % 5 == 0 && seq > 5) {
        addf(&b, 1, "\"reply_to\":%llu,", (unsigned long long)(seq - 1 - wsc_rng_next(&rng) % 5));
    }
    if (wsc_rng_next(&rng) % 7 == 0) {
        addf(&b, 1, "\"mentions\":[\"%s\"],", users[wsc_rng_next(&rng) % N(users)]);
    }
    /* After the text: reactions and a link, when drawn and when they fit. */
    if (wsc_rng_next(&rng) % 10 == 0) {
        tail_len += (size_t)snprintf(tail + tail_len, sizeof tail - tail_len,
                                     ",\"reactions\":{\"%s\":%u}",
                                     emoji[wsc_rng_next(&rng) % N(emoji)],
                                     1 + wsc_rng_next(&rng) % 9);
    }
    if (wsc_rng_next(&rng) % 20 == 0) {
        tail_len += (size_t)snprintf(tail + tail_len, sizeof tail - tail_len,
                                     ",\"link\":\"https://example.org/%s/%llu\"",
                                     rooms[wsc_rng_next(&rng) % N(rooms)],
                                     (unsigned long long)(seq * 7919 % 100000));
    }
    if (b.len + tail_len > b.room) {
        tail_len = 0;
    }
    add(&b, "\"text\":\"", 8);
    {
        size_t fixed = b.len + 1 + tail_len + 1;    /* closing quote, tail, brace */
        text(&b, &rng, want > fixed + 1 ? want - fixed : 1);
    }
    add(&b, "\"", 1);
    add(&b, tail, tail_len);
    add(&b, "}", 1);
    return b.len;
}

static int number(const uint8_t *p, size_t len, size_t *at, uint64_t *v)
{
    size_t i = *at;

    *v = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9' && i - *at < 20) {
        *v = *v * 10 + (uint64_t)(p[i] - '0');
        i++;
    }
    if (i == *at) {
        return 0;
    }
    *at = i;
    return 1;
}

int chatmsg_parse(const uint8_t *msg, size_t len, uint64_t *seq, uint64_t *ts)
{
    static const char a[] = "{\"seq\":", b[] = ",\"ts\":";
    size_t at = sizeof a - 1;

    if (len < at || memcmp(msg, a, at) != 0 || !number(msg, len, &at, seq)
        || len < at + sizeof b - 1 || memcmp(msg + at, b, sizeof b - 1) != 0) {
        return 0;
    }
    at += sizeof b - 1;
    return number(msg, len, &at, ts) && at < len && msg[at] == ',';
}
