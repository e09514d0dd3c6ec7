/*
 * test_wsevents.c — Check unit tests for the application/websocket-events
 * codec (src/handlers/wsock_wsevents.c): the bytes Pushpin's
 * WebSocket-over-HTTP spec and the GRIP libraries write, and every way a
 * backend's answer can be malformed.
 */
#include <string.h>

#include "wsock_wsevents.h"

#include "test_util.h"

static size_t enc(char *out, const char *name, int has, const char *data, size_t len)
{
    size_t n = wsock_wsevent_encode(out, name, has, data, len);

    ck_assert_uint_eq(n, wsock_wsevent_size(name, has, len));
    return n;
}

START_TEST(encodes_like_the_spec)
{
    char out[64];
    size_t n;

    n = enc(out, "OPEN", 0, NULL, 0);
    ck_assert_uint_eq(n, 6);
    ck_assert(memcmp(out, "OPEN\r\n", 6) == 0);
    n = enc(out, "TEXT", 1, "hello world", 11);
    ck_assert_uint_eq(n, 21);
    ck_assert(memcmp(out, "TEXT b\r\nhello world\r\n", 21) == 0);
    n = enc(out, "CLOSE", 1, "\x03\xe8", 2);
    ck_assert(memcmp(out, "CLOSE 2\r\n\x03\xe8\r\n", n) == 0 && n == 13);
    n = enc(out, "TEXT", 1, "", 0);
    ck_assert(memcmp(out, "TEXT 0\r\n\r\n", n) == 0 && n == 10);
}
END_TEST

START_TEST(hex_length_has_no_leading_zeros)
{
    static char big[300];
    char out[400];
    size_t n;

    memset(big, 'x', sizeof(big));
    n = enc(out, "BINARY", 1, big, 256);
    ck_assert(memcmp(out, "BINARY 100\r\n", 12) == 0);
    ck_assert_uint_eq(n, 12 + 256 + 2);
    n = enc(out, "BINARY", 1, big, 255);
    ck_assert(memcmp(out, "BINARY ff\r\n", 11) == 0);
}
END_TEST

START_TEST(decodes_a_batch)
{
    const char body[] = "OPEN\r\nTEXT 5\r\nhe\r\nl\r\nBINARY 0\r\n\r\nCLOSE 2\r\n\x03\xe9\r\n"
                        "DISCONNECT\r\n";
    size_t pos = 0, len = sizeof(body) - 1;
    wsock_wsevent ev;

    ck_assert_int_eq(wsock_wsevent_next(body, len, &pos, &ev), 1);
    ck_assert(wsock_wsevent_is(&ev, "OPEN") && ev.data == NULL);
    ck_assert_int_eq(wsock_wsevent_next(body, len, &pos, &ev), 1);
    ck_assert(wsock_wsevent_is(&ev, "TEXT") && ev.len == 5);
    ck_assert(memcmp(ev.data, "he\r\nl", 5) == 0);       /* CRLF inside content */
    ck_assert_int_eq(wsock_wsevent_next(body, len, &pos, &ev), 1);
    ck_assert(wsock_wsevent_is(&ev, "BINARY") && ev.len == 0 && ev.data != NULL);
    ck_assert_int_eq(wsock_wsevent_next(body, len, &pos, &ev), 1);
    ck_assert(wsock_wsevent_is(&ev, "CLOSE") && ev.len == 2);
    ck_assert_int_eq(wsock_wsevent_next(body, len, &pos, &ev), 1);
    ck_assert(wsock_wsevent_is(&ev, "DISCONNECT"));
    ck_assert_int_eq(wsock_wsevent_next(body, len, &pos, &ev), 0);
    ck_assert_uint_eq(pos, len);
}
END_TEST

START_TEST(upper_case_hex_accepted)
{
    const char body[] = "TEXT A\r\n0123456789\r\n";
    size_t pos = 0;
    wsock_wsevent ev;

    ck_assert_int_eq(wsock_wsevent_next(body, sizeof(body) - 1, &pos, &ev), 1);
    ck_assert_uint_eq(ev.len, 10);
}
END_TEST

START_TEST(round_trip)
{
    char out[256];
    const char *names[] = { "OPEN", "TEXT", "BINARY", "PING", "PONG", "CLOSE", "DISCONNECT" };
    size_t n = 0, pos = 0;
    wsock_wsevent ev;

    for (size_t i = 0; i < TU_ARRAY_SIZE(names); i++) {
        n += enc(out + n, names[i], (int)(i % 2), "abc", i % 2 ? 3 : 0);
    }
    for (size_t i = 0; i < TU_ARRAY_SIZE(names); i++) {
        ck_assert_int_eq(wsock_wsevent_next(out, n, &pos, &ev), 1);
        ck_assert(wsock_wsevent_is(&ev, names[i]));
        ck_assert_uint_eq(ev.len, i % 2 ? 3 : 0);
        ck_assert((ev.data != NULL) == (i % 2 == 1));
    }
    ck_assert_int_eq(wsock_wsevent_next(out, n, &pos, &ev), 0);
}
END_TEST

/* Everything a broken or hostile backend may write is refused. */
START_TEST(garbage_refused)
{
    static const struct { const char *s; size_t n; } bad[] = {
        { "hello", 5 },                     /* no CRLF at all */
        { "text 1\r\nx\r\n", 11 },          /* lower-case name */
        { "TEXT 5\r\nhel", 11 },            /* truncated content */
        { "TEXT 3\r\nabcd\r\n", 14 },       /* content longer than said */
        { "TEXT 3\r\nabc", 11 },            /* no CRLF after content */
        { "TEXT \r\nabc\r\n", 12 },         /* no digits */
        { "TEXT 3x\r\nabc\r\n", 14 },       /* junk after the length */
        { "TEXT -3\r\nabc\r\n", 14 },       /* a sign */
        { "TEXT 1000000000000000\r\n", 23 }, /* 16 hex digits */
        { "OPEN\n", 5 },                    /* LF only */
        { "OPEN\r", 5 },                    /* CR at the end */
        { "\r\n", 2 },                      /* no name */
        { "ABCDEFGHIJKLMNOPQ\r\n", 19 },    /* name too long */
        { "HTTP/1.1 200 OK\r\n", 17 },      /* a stray HTTP answer */
        { "<html>", 6 },
    };

    for (size_t i = 0; i < TU_ARRAY_SIZE(bad); i++) {
        size_t pos = 0;
        wsock_wsevent ev;

        ck_assert_msg(wsock_wsevent_next(bad[i].s, bad[i].n, &pos, &ev) == -1,
                      "case %zu accepted", i);
    }
}
END_TEST

START_TEST(huge_length_does_not_wrap)
{
    const char body[] = "TEXT fffffffffffffff\r\nab\r\n";
    size_t pos = 0;
    wsock_wsevent ev;

    ck_assert_int_eq(wsock_wsevent_next(body, sizeof(body) - 1, &pos, &ev), -1);
}
END_TEST

static Suite *wsevents_suite(void)
{
    Suite *s = suite_create("wsevents");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, encodes_like_the_spec);
    tcase_add_test(tc, hex_length_has_no_leading_zeros);
    tcase_add_test(tc, decodes_a_batch);
    tcase_add_test(tc, upper_case_hex_accepted);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, garbage_refused);
    tcase_add_test(tc, huge_length_does_not_wrap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { wsevents_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
