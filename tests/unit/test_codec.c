/*
 * test_codec.c — Check unit tests for src/codec (RFC 6455 frame codec).
 *
 * Every parser test feeds its stream whole, one byte at a time and in
 * TU_RANDOM_SPLITS seeded random chunkings (tu_check_splits) and expects the
 * same outcome and the same events each time.  Frames are built by the
 * independent builder in test_util.h, never by the serializer under test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsock_codec.h"

#include "test_util.h"

#define ALL_ROLES_LOOP 2 /* loop tests run with _i = role */

static const char *role_name(wsock_role role)
{
    return role == WSOCK_ROLE_SERVER ? "server" : "client";
}

/* =====================================================================
 * UTF-8
 * ================================================================== */

typedef struct {
    const char *name;
    const char *s;
    size_t      len;
    int         expect;  /* WSOCK_UTF8_OK, _PARTIAL (truncated) or _INVALID */
    size_t      fail_at; /* INVALID: index of the first byte that proves it */
} u8case;

#define U8(s) s, sizeof(s) - 1

static const u8case u8cases[] = {
    /* valid */
    { "empty", U8(""), WSOCK_UTF8_OK, 0 },
    { "ascii", U8("Hello, world"), WSOCK_UTF8_OK, 0 },
    { "nul and del", U8("a\x00\x7f" "b"), WSOCK_UTF8_OK, 0 },
    { "U+0080", U8("\xc2\x80"), WSOCK_UTF8_OK, 0 },
    { "U+07FF", U8("\xdf\xbf"), WSOCK_UTF8_OK, 0 },
    { "U+0800", U8("\xe0\xa0\x80"), WSOCK_UTF8_OK, 0 },
    { "U+D7FF", U8("\xed\x9f\xbf"), WSOCK_UTF8_OK, 0 },
    { "U+E000", U8("\xee\x80\x80"), WSOCK_UTF8_OK, 0 },
    { "U+FFFF", U8("\xef\xbf\xbf"), WSOCK_UTF8_OK, 0 },
    { "U+10000", U8("\xf0\x90\x80\x80"), WSOCK_UTF8_OK, 0 },
    { "U+10FFFF", U8("\xf4\x8f\xbf\xbf"), WSOCK_UTF8_OK, 0 },
    { "kosme", U8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), WSOCK_UTF8_OK, 0 },
    { "mixed long", U8("0123456789\xe2\x82\xac" "abcdefghij\xf0\x9f\x98\x80" "klmnopqrstuv"),
      WSOCK_UTF8_OK, 0 },
    /* overlong forms */
    { "overlong 2-byte C0 80", U8("\xc0\x80"), WSOCK_UTF8_INVALID, 0 },
    { "overlong 2-byte C1 BF", U8("\xc1\xbf"), WSOCK_UTF8_INVALID, 0 },
    { "overlong 3-byte E0 80 80", U8("\xe0\x80\x80"), WSOCK_UTF8_INVALID, 1 },
    { "overlong 3-byte E0 9F BF", U8("\xe0\x9f\xbf"), WSOCK_UTF8_INVALID, 1 },
    { "overlong 4-byte F0 80 80 80", U8("\xf0\x80\x80\x80"), WSOCK_UTF8_INVALID, 1 },
    { "overlong 4-byte F0 8F BF BF", U8("\xf0\x8f\xbf\xbf"), WSOCK_UTF8_INVALID, 1 },
    /* surrogates */
    { "surrogate ED A0 80", U8("\xed\xa0\x80"), WSOCK_UTF8_INVALID, 1 },
    { "surrogate ED BF BF", U8("\xed\xbf\xbf"), WSOCK_UTF8_INVALID, 1 },
    { "surrogate pair", U8("\xed\xa0\x80\xed\xb0\x80"), WSOCK_UTF8_INVALID, 1 },
    /* above U+10FFFF and impossible leads */
    { "U+110000 F4 90 80 80", U8("\xf4\x90\x80\x80"), WSOCK_UTF8_INVALID, 1 },
    { "F4 BF BF BF", U8("\xf4\xbf\xbf\xbf"), WSOCK_UTF8_INVALID, 1 },
    { "F5 80 80 80", U8("\xf5\x80\x80\x80"), WSOCK_UTF8_INVALID, 0 },
    { "F7 BF BF BF", U8("\xf7\xbf\xbf\xbf"), WSOCK_UTF8_INVALID, 0 },
    { "F8 5-byte form", U8("\xf8\x88\x80\x80\x80"), WSOCK_UTF8_INVALID, 0 },
    { "FC 6-byte form", U8("\xfc\x84\x80\x80\x80\x80"), WSOCK_UTF8_INVALID, 0 },
    { "FE", U8("\xfe"), WSOCK_UTF8_INVALID, 0 },
    { "FF", U8("\xff"), WSOCK_UTF8_INVALID, 0 },
    { "C0 alone", U8("\xc0"), WSOCK_UTF8_INVALID, 0 },
    { "C1 alone", U8("\xc1"), WSOCK_UTF8_INVALID, 0 },
    /* continuation bytes out of place */
    { "lone continuation 80", U8("\x80"), WSOCK_UTF8_INVALID, 0 },
    { "lone continuation BF", U8("\xbf"), WSOCK_UTF8_INVALID, 0 },
    { "continuation after ascii", U8("a\x80"), WSOCK_UTF8_INVALID, 1 },
    { "extra continuation", U8("\xc3\xa9\xa9"), WSOCK_UTF8_INVALID, 2 },
    { "2-byte lead then ascii", U8("\xc2" "A"), WSOCK_UTF8_INVALID, 1 },
    { "3-byte lead, 2nd bad", U8("\xe2" "A" "\xac"), WSOCK_UTF8_INVALID, 1 },
    { "3-byte, 3rd ascii", U8("\xe2\x82" "A"), WSOCK_UTF8_INVALID, 2 },
    { "3-byte, 3rd lead", U8("\xe2\x82\xc3\xa9"), WSOCK_UTF8_INVALID, 2 },
    { "4-byte, 4th bad", U8("\xf0\x9f\x98\x41"), WSOCK_UTF8_INVALID, 3 },
    { "two leads", U8("\xc2\xc2"), WSOCK_UTF8_INVALID, 1 },
    { "surrogate after text", U8("Hello-\xed\xa0\x80-world"), WSOCK_UTF8_INVALID, 7 },
    { "bad after long ascii", U8("abcdefghijklmnopqrstuvwxyz\xff"), WSOCK_UTF8_INVALID, 26 },
    { "kosme then lone", U8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"),
      WSOCK_UTF8_INVALID, 12 },
    /* truncated at the end */
    { "truncated 2-byte", U8("\xc3"), WSOCK_UTF8_PARTIAL, 0 },
    { "truncated 3-byte after 1", U8("\xe2"), WSOCK_UTF8_PARTIAL, 0 },
    { "truncated 3-byte after 2", U8("\xe2\x82"), WSOCK_UTF8_PARTIAL, 0 },
    { "truncated 4-byte after 3", U8("\xf0\x9f\x98"), WSOCK_UTF8_PARTIAL, 0 },
    { "truncated after text", U8("abc\xf4\x8f\xbf"), WSOCK_UTF8_PARTIAL, 0 },
    { "truncated E0 A0", U8("\xe0\xa0"), WSOCK_UTF8_PARTIAL, 0 },
};

/* Each entry fed whole, byte by byte and in random splits: INVALID comes
 * exactly from the call that carries byte fail_at (fail-fast), never
 * earlier; valid input is OK at the end, truncated input PARTIAL. */
START_TEST(test_utf8_table)
{
    const u8case *c = &u8cases[_i];
    const uint8_t *s = (const uint8_t *)c->s;
    wsock_utf8_state st;
    tu_rng rng;

    wsock_utf8_reset(&st);
    ck_assert_msg(wsock_utf8_feed(&st, s, c->len) == c->expect, "%s: whole feed", c->name);
    ck_assert_msg(wsock_utf8_valid(s, c->len) == (c->expect == WSOCK_UTF8_OK),
                  "%s: wsock_utf8_valid", c->name);

    for (long split = 0; split <= 16; split++) {
        size_t pos = 0;
        wsock_utf8_result r = WSOCK_UTF8_OK;

        tu_rng_seed(&rng, (uint64_t)split);
        wsock_utf8_reset(&st);
        for (size_t guard = 0; pos < c->len && guard <= c->len; guard++) {
            size_t n = split == 0 ? 1 : tu_rand_range(&rng, 1, c->len - pos);
            int carries_bad = c->expect == WSOCK_UTF8_INVALID && pos <= c->fail_at
                              && c->fail_at < pos + n;

            r = wsock_utf8_feed(&st, s + pos, n);
            if (carries_bad) {
                ck_assert_msg(r == WSOCK_UTF8_INVALID,
                              "%s, split %ld: bytes %zu..%zu hold the bad byte, got %d",
                              c->name, split, pos, pos + n, (int)r);
                break;
            }
            ck_assert_msg(r != WSOCK_UTF8_INVALID,
                          "%s, split %ld: INVALID early at bytes %zu..%zu", c->name, split, pos,
                          pos + n);
            pos += n;
        }
        if (c->expect != WSOCK_UTF8_INVALID && c->len) {
            ck_assert_msg(r == c->expect, "%s, split %ld: ended %d, expected %d", c->name, split,
                          (int)r, c->expect);
        }
    }
}
END_TEST

/* The word-at-a-time ASCII path: a bad byte at every position of strings of
 * every length up to 40 is found, and multibyte characters at every
 * position are accepted. */
START_TEST(test_utf8_ascii_fast_path)
{
    static const uint8_t bad[] = { 0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff };
    uint8_t s[48];

    for (size_t len = 1; len <= 40; len++) {
        for (size_t k = 0; k < len; k++) {
            for (size_t b = 0; b < sizeof(bad); b++) {
                wsock_utf8_state st;

                memset(s, 'a', len);
                s[k] = bad[b];
                wsock_utf8_reset(&st);
                TU_CHECK(wsock_utf8_feed(&st, s, len) == WSOCK_UTF8_INVALID,
                         "len %zu: byte %02x at %zu accepted", len, bad[b], k);
                TU_CHECK(!wsock_utf8_valid(s, len), "len %zu: byte %02x at %zu valid", len, bad[b],
                         k);
                /* the same bytes after a valid prefix on another call */
                wsock_utf8_reset(&st);
                TU_CHECK(wsock_utf8_feed(&st, (const uint8_t *)"xyz", 3) == WSOCK_UTF8_OK, "xyz");
                TU_CHECK(wsock_utf8_feed(&st, s, len) == WSOCK_UTF8_INVALID,
                         "len %zu, second call: byte %02x at %zu accepted", len, bad[b], k);
            }
            if (k + 2 < len) {
                /* a valid 3-byte character (U+20AC) at k */
                memset(s, 'a', len);
                memcpy(s + k, "\xe2\x82\xac", 3);
                TU_CHECK(wsock_utf8_valid(s, len), "len %zu: euro at %zu rejected", len, k);
                /* ...cut short at the end of the input */
                TU_CHECK(!wsock_utf8_valid(s, k + 2), "len %zu: cut euro at %zu valid", len, k);
            }
        }
    }
}
END_TEST

/* While a sequence is open the ASCII fast path must not be taken: eight
 * or more ASCII bytes after a lead byte are an error at the first one. */
START_TEST(test_utf8_open_sequence_then_ascii)
{
    static const char *leads[] = { "\xc3", "\xe2", "\xe2\x82", "\xf0", "\xf0\x9f\x98" };
    uint8_t ascii[32];

    memset(ascii, 'a', sizeof(ascii));
    for (size_t i = 0; i < TU_ARRAY_SIZE(leads); i++) {
        for (size_t n = 1; n <= sizeof(ascii); n++) {
            wsock_utf8_state st;

            wsock_utf8_reset(&st);
            TU_CHECK(wsock_utf8_feed(&st, (const uint8_t *)leads[i], strlen(leads[i]))
                     == WSOCK_UTF8_PARTIAL, "lead %zu", i);
            TU_CHECK(wsock_utf8_feed(&st, ascii, n) == WSOCK_UTF8_INVALID,
                     "lead %zu followed by %zu ASCII bytes accepted", i, n);
        }
    }
}
END_TEST

/* A character split over two calls, at every split point. */
START_TEST(test_utf8_split_across_calls)
{
    static const char *chars[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                   "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf" };
    uint8_t s[64];

    for (size_t i = 0; i < TU_ARRAY_SIZE(chars); i++) {
        size_t clen = strlen(chars[i]);
        /* 11 ASCII bytes before the character so that the fast path runs */
        memcpy(s, "abcdefghijk", 11);
        memcpy(s + 11, chars[i], clen);
        memcpy(s + 11 + clen, "lmnopqrstuvw", 12);
        for (size_t cut = 0; cut <= 11 + clen + 12; cut++) {
            wsock_utf8_state st;
            wsock_utf8_result r1;

            wsock_utf8_reset(&st);
            r1 = wsock_utf8_feed(&st, s, cut);
            TU_CHECK(r1 == (cut > 11 && cut < 11 + clen ? WSOCK_UTF8_PARTIAL : WSOCK_UTF8_OK),
                     "char %zu cut %zu: first call %d", i, cut, (int)r1);
            TU_CHECK(wsock_utf8_feed(&st, s + cut, 11 + clen + 12 - cut) == WSOCK_UTF8_OK,
                     "char %zu cut %zu: second call", i, cut);
        }
    }
}
END_TEST

/* The header allows a zero-initialised state instead of wsock_utf8_reset. */
START_TEST(test_utf8_zero_initialised_state)
{
    for (size_t i = 0; i < TU_ARRAY_SIZE(u8cases); i++) {
        wsock_utf8_state st;

        memset(&st, 0, sizeof(st));
        ck_assert_msg(wsock_utf8_feed(&st, (const uint8_t *)u8cases[i].s, u8cases[i].len)
                      == u8cases[i].expect, "%s", u8cases[i].name);
    }
}
END_TEST

/* Reference decoder, written from RFC 3629 §3/§4 independently of the
 * validator's range tables: decode, then check minimality and the
 * code-point range. */
static int ref_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        size_t n;
        uint8_t b = s[i];

        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xE0) == 0xC0) {
            n = 2;
            cp = b & 0x1F;
        }
        else if ((b & 0xF0) == 0xE0) {
            n = 3;
            cp = b & 0x0F;
        }
        else if ((b & 0xF8) == 0xF0) {
            n = 4;
            cp = b & 0x07;
        }
        else {
            return 0;
        }
        if (i + n > len) {
            return 0;
        }
        for (size_t j = 1; j < n; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) {
            return 0; /* overlong */
        }
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
            return 0;
        }
        i += n;
    }
    return 1;
}

/* Exhaustive over all 1- and 2-byte inputs and all 3-byte inputs with a
 * lead in C0..FF; 4-byte inputs for every lead and second byte with a few
 * third/fourth bytes.  Bounded: about 4.3 million checks. */
START_TEST(test_utf8_exhaustive_vs_reference)
{
    static const uint8_t tails[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0xa0, 0xbf, 0xc0, 0xff };
    uint8_t s[4];

    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        TU_CHECK(wsock_utf8_valid(s, 1) == ref_utf8_valid(s, 1), "%02x", a);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            TU_CHECK(wsock_utf8_valid(s, 2) == ref_utf8_valid(s, 2), "%02x %02x", a, b);
            if (a < 0xC0) {
                continue;
            }
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                TU_CHECK(wsock_utf8_valid(s, 3) == ref_utf8_valid(s, 3), "%02x %02x %02x",
                         a, b, c);
            }
            if (a < 0xF0) {
                continue;
            }
            for (size_t c = 0; c < sizeof(tails); c++) {
                for (size_t d = 0; d < sizeof(tails); d++) {
                    s[2] = tails[c];
                    s[3] = tails[d];
                    TU_CHECK(wsock_utf8_valid(s, 4) == ref_utf8_valid(s, 4),
                             "%02x %02x %02x %02x", a, b, s[2], s[3]);
                }
            }
        }
    }
}
END_TEST

/* =====================================================================
 * Close codes and close payloads
 * ================================================================== */

/* The whole code space against the list of RFC 6455 §7.4 / IANA codes a
 * peer may send. */
START_TEST(test_close_code_rules)
{
    for (unsigned code = 0; code <= 70000; code++) {
        int want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014)
                   || (code >= 3000 && code <= 4999);
        TU_CHECK(wsock_close_code_is_valid(code) == want, "code %u", code);
    }
}
END_TEST

START_TEST(test_close_payload_basic)
{
    uint8_t out[WSOCK_MAX_CONTROL_PAYLOAD];
    char reason[200];

    ck_assert_uint_eq(wsock_close_payload(out, 1000, "bye", 3), 5);
    ck_assert_mem_eq(out, "\x03\xe8" "bye", 5);
    ck_assert_uint_eq(wsock_close_payload(out, 4999, NULL, 0), 2);
    ck_assert_mem_eq(out, "\x13\x87", 2);
    ck_assert_uint_eq(wsock_close_payload(out, 1002, "", 0), 2);
    ck_assert_mem_eq(out, "\x03\xea", 2);
    /* code 0: no status, empty payload */
    ck_assert_uint_eq(wsock_close_payload(out, 0, "ignored", 7), 0);

    /* ASCII: 123 bytes fit exactly, longer is cut to 123 */
    memset(reason, 'r', sizeof(reason));
    ck_assert_uint_eq(wsock_close_payload(out, 1001, reason, 123), 125);
    ck_assert_uint_eq(wsock_close_payload(out, 1001, reason, 124), 125);
    ck_assert_uint_eq(wsock_close_payload(out, 1001, reason, sizeof(reason)), 125);
    ck_assert_mem_eq(out + 2, reason, 123);
}
END_TEST

/* Long reasons of 2-, 3- and 4-byte characters after 0..3 ASCII bytes: the
 * result is the longest prefix that is whole characters and fits. */
START_TEST(test_close_payload_truncation)
{
    static const char *chars[] = { "a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };

    for (size_t ci = 0; ci < TU_ARRAY_SIZE(chars); ci++) {
        size_t clen = strlen(chars[ci]);
        for (size_t pre = 0; pre <= 3; pre++) {
            uint8_t out[WSOCK_MAX_CONTROL_PAYLOAD + 8];
            char reason[300];
            size_t rlen = pre, n, got;

            memset(reason, 'p', pre);
            while (rlen + clen <= 250) {
                memcpy(reason + rlen, chars[ci], clen);
                rlen += clen;
            }
            memset(out, 0xEE, sizeof(out));
            n = wsock_close_payload(out, 1000, reason, rlen);
            got = n - 2;
            ck_assert_msg(n <= WSOCK_MAX_CONTROL_PAYLOAD, "char %zu pre %zu: %zu bytes", ci, pre,
                          n);
            ck_assert_uint_eq(out[WSOCK_MAX_CONTROL_PAYLOAD], 0xEE); /* no overrun */
            ck_assert_mem_eq(out, "\x03\xe8", 2);
            ck_assert_mem_eq(out + 2, reason, got);
            ck_assert_msg(wsock_utf8_valid(out + 2, got), "char %zu pre %zu: cut inside a char",
                          ci, pre);
            /* maximal: the next character would not have fitted */
            ck_assert_msg(got + (got < pre ? 1 : clen) > 123, "char %zu pre %zu: %zu is too short",
                          ci, pre, got);
        }
    }
}
END_TEST

/* What wsock_close_payload writes, the parser reads back. */
START_TEST(test_close_payload_roundtrip)
{
    static const struct { unsigned code; const char *reason; } cases[] = {
        { 1000, "" }, { 1001, "going away" }, { 1011, "\xe2\x82\xac internal" },
        { 4000, "private" }, { 3000, "registered" },
    };

    for (size_t i = 0; i < TU_ARRAY_SIZE(cases); i++) {
        uint8_t pl[WSOCK_MAX_CONTROL_PAYLOAD];
        size_t n = wsock_close_payload(pl, cases[i].code, cases[i].reason,
                                       strlen(cases[i].reason));
        tu_buf b = { 0 };
        tu_rec exp;
        tu_cfg cfg = { WSOCK_ROLE_SERVER, 0, 0 };

        tu_frame(&b, cfg.role, TU_FIN | WSOCK_OP_CLOSE, pl, n);
        tu_rec_init(&exp);
        tu_expect_ctrl(&exp, WSOCK_OP_CLOSE, cases[i].code, cases[i].reason,
                       strlen(cases[i].reason), 0, 0);
        tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, cases[i].reason);
        tu_rec_free(&exp);
        tu_buf_free(&b);
    }
}
END_TEST

/* =====================================================================
 * Masking
 * ================================================================== */

static void naive_mask(uint8_t *d, size_t len, const uint8_t key[4], size_t offset)
{
    for (size_t i = 0; i < len; i++) {
        d[i] ^= key[(offset + i) % 4];
    }
}

/* Every length 0..40, key offsets 0..7 (and a large one), at every
 * alignment 0..7 of a heap block sized exactly to the data. */
START_TEST(test_mask_matches_naive)
{
    static const size_t offsets[] = { 0, 1, 2, 3, 4, 5, 6, 7, 1001 };
    tu_rng rng;

    tu_rng_seed(&rng, 42);
    for (size_t len = 0; len <= 40; len++) {
        for (size_t oi = 0; oi < TU_ARRAY_SIZE(offsets); oi++) {
            for (size_t align = 0; align < 8; align++) {
                for (unsigned k = 0; k < 5; k++) {
                    uint8_t *block = malloc(align + len + 1);
                    uint8_t want[48], orig[48];
                    const uint8_t *key = tu_key(k);

                    TU_CHECK(block != NULL, "out of memory");
                    for (size_t i = 0; i < len; i++) {
                        orig[i] = (uint8_t)tu_rand(&rng);
                    }
                    memcpy(block + align, orig, len);
                    memcpy(want, orig, len);
                    naive_mask(want, len, key, offsets[oi]);
                    wsock_mask(block + align, len, key, offsets[oi]);
                    TU_CHECK(len == 0 || memcmp(block + align, want, len) == 0,
                             "len %zu offset %zu align %zu key %u", len, offsets[oi], align,
                             k);
                    /* masking twice is the identity */
                    wsock_mask(block + align, len, key, offsets[oi]);
                    TU_CHECK(len == 0 || memcmp(block + align, orig, len) == 0,
                             "twice: len %zu offset %zu align %zu", len, offsets[oi], align);
                    free(block);
                }
            }
        }
    }
}
END_TEST

/* Masking in pieces, each piece with offset = bytes already masked, equals
 * masking the whole (this is how the parser unmasks chunked payloads). */
START_TEST(test_mask_in_pieces)
{
    uint8_t whole[300], pieces[300];
    const uint8_t *key = tu_key(0);
    tu_rng rng;

    for (long seed = 1; seed <= 50; seed++) {
        size_t pos = 0;

        tu_rng_seed(&rng, (uint64_t)seed);
        for (size_t i = 0; i < sizeof(whole); i++) {
            whole[i] = pieces[i] = (uint8_t)tu_rand(&rng);
        }
        wsock_mask(whole, sizeof(whole), key, 0);
        while (pos < sizeof(pieces)) {
            size_t n = tu_rand_range(&rng, 1, 37);
            if (n > sizeof(pieces) - pos) {
                n = sizeof(pieces) - pos;
            }
            wsock_mask(pieces + pos, n, key, pos);
            pos += n;
        }
        ck_assert_mem_eq(whole, pieces, sizeof(whole));
    }
}
END_TEST

/* =====================================================================
 * Serializer
 * ================================================================== */

static const uint8_t rfc_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

typedef struct {
    const char  *name;
    int          fin;
    wsock_opcode op;
    uint64_t     len;
    int          masked;     /* with rfc_key */
    const char  *hex;        /* the header RFC 6455 §5.2/§5.7 prescribes */
} wcase;

static const wcase wcases[] = {
    /* §5.7 examples */
    { "unmasked Hello", 1, WSOCK_OP_TEXT, 5, 0, "81 05" },
    { "masked Hello", 1, WSOCK_OP_TEXT, 5, 1, "81 85 37 fa 21 3d" },
    { "fragment Hel", 0, WSOCK_OP_TEXT, 3, 0, "01 03" },
    { "fragment lo", 1, WSOCK_OP_CONT, 2, 0, "80 02" },
    { "ping Hello", 1, WSOCK_OP_PING, 5, 0, "89 05" },
    { "masked pong Hello", 1, WSOCK_OP_PONG, 5, 1, "8a 85 37 fa 21 3d" },
    { "256 bytes binary", 1, WSOCK_OP_BINARY, 256, 0, "82 7e 01 00" },
    { "64KiB binary", 1, WSOCK_OP_BINARY, 65536, 0, "82 7f 00 00 00 00 00 01 00 00" },
    /* length boundaries */
    { "empty close", 1, WSOCK_OP_CLOSE, 0, 0, "88 00" },
    { "empty masked", 1, WSOCK_OP_TEXT, 0, 1, "81 80 37 fa 21 3d" },
    { "125", 1, WSOCK_OP_BINARY, 125, 0, "82 7d" },
    { "126", 1, WSOCK_OP_BINARY, 126, 0, "82 7e 00 7e" },
    { "126 masked", 1, WSOCK_OP_BINARY, 126, 1, "82 fe 00 7e 37 fa 21 3d" },
    { "65535", 0, WSOCK_OP_BINARY, 65535, 0, "02 7e ff ff" },
    { "65536 masked", 1, WSOCK_OP_TEXT, 65536, 1, "81 ff 00 00 00 00 00 01 00 00 37 fa 21 3d" },
    { "2^32", 1, WSOCK_OP_BINARY, 1ULL << 32, 0, "82 7f 00 00 00 01 00 00 00 00" },
    { "2^63-1", 1, WSOCK_OP_BINARY, (1ULL << 63) - 1, 0, "82 7f 7f ff ff ff ff ff ff ff" },
};

/* wsock_frame_header_write produces the RFC's bytes, writes nothing past
 * them, and wsock_frame_header_size agrees. */
START_TEST(test_writer_headers)
{
    const wcase *c = &wcases[_i];
    uint8_t out[WSOCK_MAX_HEADER_SIZE + 8];
    tu_buf want = { 0 }, indep = { 0 };
    size_t n;
    char h1[64], h2[64];

    tu_buf_hex(&want, c->hex);
    memset(out, 0xEE, sizeof(out));
    n = wsock_frame_header_write(out, c->fin, c->op, c->len, c->masked ? rfc_key : NULL);
    ck_assert_msg(n == want.len && memcmp(out, want.p, n) == 0, "%s: wrote %s, expected %s",
                  c->name, tu_hexdump(h1, sizeof(h1), out, n),
                  tu_hexdump(h2, sizeof(h2), want.p, want.len));
    for (size_t i = n; i < sizeof(out); i++) {
        ck_assert_msg(out[i] == 0xEE, "%s: wrote past the header at %zu", c->name, i);
    }
    ck_assert_uint_eq(wsock_frame_header_size(c->len, c->masked), n);
    /* and the builder the parser tests rely on agrees with the RFC too */
    tu_header(&indep, (uint8_t)((c->fin ? TU_FIN : 0) | c->op), c->masked ? rfc_key : NULL,
              c->len, TU_LEN_MIN);
    ck_assert_msg(indep.len == want.len && memcmp(indep.p, want.p, want.len) == 0,
                  "%s: test builder disagrees with the RFC", c->name);
    tu_buf_free(&want);
    tu_buf_free(&indep);
}
END_TEST

/* RFC 6455 §5.7: the masked "Hello" is header + masked payload. */
START_TEST(test_writer_masked_hello)
{
    static const uint8_t rfc[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    uint8_t out[32];
    size_t n = wsock_frame_header_write(out, 1, WSOCK_OP_TEXT, 5, rfc_key);

    memcpy(out + n, "Hello", 5);
    wsock_mask(out + n, 5, rfc_key, 0);
    ck_assert_uint_eq(n + 5, sizeof(rfc));
    ck_assert_mem_eq(out, rfc, sizeof(rfc));
}
END_TEST

/* Serializer output is accepted by the parser (both roles, lengths across
 * both encoding boundaries, all chunkings). */
START_TEST(test_writer_parser_roundtrip)
{
    static const size_t lens[] = { 0, 1, 125, 126, 127, 1000, 65535, 65536, 70001 };
    wsock_role role = (wsock_role)_i;
    tu_buf b = { 0 };
    tu_rec exp;
    uint8_t *payload = malloc(70001);
    tu_cfg cfg = { role, 0, 0 };
    tu_rng rng;

    ck_assert(payload != NULL);
    tu_rng_seed(&rng, 7);
    for (size_t i = 0; i < 70001; i++) {
        payload[i] = (uint8_t)tu_rand(&rng);
    }
    tu_rec_init(&exp);
    for (size_t i = 0; i < TU_ARRAY_SIZE(lens); i++) {
        uint8_t hdr[WSOCK_MAX_HEADER_SIZE];
        const uint8_t *key = role == WSOCK_ROLE_SERVER ? tu_key((unsigned)i) : NULL;
        size_t n = wsock_frame_header_write(hdr, 1, WSOCK_OP_BINARY, lens[i], key);
        size_t at;

        tu_buf_put(&b, hdr, n);
        at = b.len;
        tu_buf_put(&b, payload, lens[i]);
        if (key) {
            wsock_mask(b.p + at, lens[i], key, 0);
        }
        tu_expect_msg(&exp, WSOCK_OP_BINARY, payload, lens[i]);
        if (lens[i] <= 125) {
            n = wsock_frame_header_write(hdr, 1, WSOCK_OP_PING, lens[i], key);
            tu_buf_put(&b, hdr, n);
            at = b.len;
            tu_buf_put(&b, payload, lens[i]);
            if (key) {
                wsock_mask(b.p + at, lens[i], key, 0);
            }
            tu_expect_ctrl(&exp, WSOCK_OP_PING, 0, payload, lens[i], 0, 0);
        }
    }
    tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, role_name(role));
    tu_rec_free(&exp);
    tu_buf_free(&b);
    free(payload);
}
END_TEST

/* =====================================================================
 * Parser: RFC 6455 §5.7 examples
 * ================================================================== */

typedef struct {
    const char *name;
    wsock_role  role;
    const char *hex;
} rfc_stream;

static void expect_hello(tu_rec *exp, int which)
{
    switch (which) {
    case 0: case 1: case 2:
        tu_expect_msg(exp, WSOCK_OP_TEXT, "Hello", 5);
        break;
    case 3:
        tu_expect_ctrl(exp, WSOCK_OP_PING, 0, "Hello", 5, 0, 0);
        break;
    case 4:
        tu_expect_ctrl(exp, WSOCK_OP_PONG, 0, "Hello", 5, 0, 0);
        break;
    }
}

static const rfc_stream rfc_streams[] = {
    { "single-frame unmasked text", WSOCK_ROLE_CLIENT, "81 05 48 65 6c 6c 6f" },
    { "single-frame masked text", WSOCK_ROLE_SERVER, "81 85 37 fa 21 3d 7f 9f 4d 51 58" },
    { "fragmented unmasked text", WSOCK_ROLE_CLIENT, "01 03 48 65 6c  80 02 6c 6f" },
    { "unmasked ping", WSOCK_ROLE_CLIENT, "89 05 48 65 6c 6c 6f" },
    { "masked pong", WSOCK_ROLE_SERVER, "8a 85 37 fa 21 3d 7f 9f 4d 51 58" },
};

START_TEST(test_parser_rfc_examples)
{
    const rfc_stream *c = &rfc_streams[_i];
    tu_buf b = { 0 };
    tu_rec exp;
    tu_cfg cfg = { c->role, 0, 0 };

    tu_buf_hex(&b, c->hex);
    tu_rec_init(&exp);
    expect_hello(&exp, (int)_i);
    tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, c->name);
    /* the same bytes in the other role are a protocol error */
    cfg.role = c->role == WSOCK_ROLE_SERVER ? WSOCK_ROLE_CLIENT : WSOCK_ROLE_SERVER;
    tu_check_splits(&cfg, b.p, b.len, NULL, WSOCK_CLOSE_PROTOCOL_ERROR, 2, c->name);
    tu_rec_free(&exp);
    tu_buf_free(&b);
}
END_TEST

/* The fragmented example fed whole: the sink sees "Hel" (first, not last)
 * then "lo" (last, not first). */
START_TEST(test_parser_rfc_fragment_flags)
{
    tu_buf b = { 0 };
    tu_run run;
    tu_cfg cfg = { WSOCK_ROLE_CLIENT, 0, 0 };

    tu_buf_hex(&b, "01 03 48 65 6c  80 02 6c 6f");
    tu_parse(&cfg, b.p, b.len, TU_SPLIT_WHOLE, &run);
    ck_assert_int_eq(run.rc, WSOCK_PARSE_OK);
    ck_assert_uint_eq(run.rec.ndata, 2);
    ck_assert_uint_eq(run.rec.chunk[0].len, 3);
    ck_assert(run.rec.chunk[0].first && !run.rec.chunk[0].last);
    ck_assert_uint_eq(run.rec.chunk[1].len, 2);
    ck_assert(!run.rec.chunk[1].first && run.rec.chunk[1].last);
    tu_run_free(&run);
    tu_buf_free(&b);
}
END_TEST

/* §5.7: 256 bytes and 64KiB in a single unmasked binary frame, with the
 * RFC's headers, parsed in the client role (and masked, in the server role). */
START_TEST(test_parser_rfc_binary)
{
    static const struct { size_t len; const char *hdr; } cases[] = {
        { 256, "82 7E 01 00" },
        { 65536, "82 7F 00 00 00 00 00 01 00 00" },
    };

    for (size_t i = 0; i < TU_ARRAY_SIZE(cases); i++) {
        uint8_t *pl = malloc(cases[i].len);
        tu_buf b = { 0 }, m = { 0 };
        tu_rec exp;
        tu_cfg cfg = { WSOCK_ROLE_CLIENT, 0, 0 };

        ck_assert(pl != NULL);
        for (size_t j = 0; j < cases[i].len; j++) {
            pl[j] = (uint8_t)(j * 7 + (j >> 8));
        }
        tu_buf_hex(&b, cases[i].hdr);
        tu_buf_put(&b, pl, cases[i].len);
        tu_rec_init(&exp);
        tu_expect_msg(&exp, WSOCK_OP_BINARY, pl, cases[i].len);
        tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, cases[i].hdr);

        cfg.role = WSOCK_ROLE_SERVER;
        tu_frame(&m, cfg.role, TU_FIN | WSOCK_OP_BINARY, pl, cases[i].len);
        tu_check_splits(&cfg, m.p, m.len, &exp, 0, SIZE_MAX, cases[i].hdr);
        tu_rec_free(&exp);
        tu_buf_free(&b);
        tu_buf_free(&m);
        free(pl);
    }
}
END_TEST

/* A whole unfragmented frame fed in one call arrives as one chunk, first
 * and last, unmasked in place in the caller's buffer (zero-copy). */
START_TEST(test_parser_zero_copy)
{
    uint8_t buf[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    wsock_parser p;
    tu_rec rec;
    size_t used;

    tu_rec_init(&rec);
    wsock_parser_init(&p, WSOCK_ROLE_SERVER, 0);
    ck_assert_int_eq(wsock_parser_feed(&p, buf, sizeof(buf), tu_sink(), &rec, &used),
                     WSOCK_PARSE_OK);
    ck_assert_uint_eq(used, sizeof(buf));
    ck_assert_uint_eq(rec.ndata, 1);
    ck_assert(rec.chunk[0].first && rec.chunk[0].last);
    ck_assert_ptr_eq(rec.chunk[0].ptr, buf + 6);
    ck_assert_uint_eq(rec.chunk[0].len, 5);
    ck_assert_mem_eq(buf + 6, "Hello", 5);
    ck_assert(!wsock_parser_in_message(&p));
    tu_rec_free(&rec);
}
END_TEST

/* =====================================================================
 * Parser: lengths
 * ================================================================== */

START_TEST(test_parser_lengths)
{
    static const size_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536 };
    wsock_role role = (wsock_role)_i;
    tu_cfg cfg = { role, 0, 0 };
    uint8_t *pl = malloc(65536);

    ck_assert(pl != NULL);
    memset(pl, 'z', 65536);
    for (size_t i = 0; i < TU_ARRAY_SIZE(lens); i++) {
        for (int op = WSOCK_OP_TEXT; op <= WSOCK_OP_BINARY; op++) {
            tu_buf b = { 0 };
            tu_rec exp;
            char name[64];

            for (size_t j = 0; j < lens[i]; j++) {
                pl[j] = op == WSOCK_OP_TEXT ? (uint8_t)('a' + j % 26) : (uint8_t)(j ^ (j >> 8));
            }
            tu_frame(&b, role, (uint8_t)(TU_FIN | op), pl, lens[i]);
            tu_rec_init(&exp);
            tu_expect_msg(&exp, (wsock_opcode)op, pl, lens[i]);
            snprintf(name, sizeof(name), "%s op %d len %zu", role_name(role), op, lens[i]);
            tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, name);
            tu_rec_free(&exp);
            tu_buf_free(&b);
        }
    }
    free(pl);
}
END_TEST

/* The largest legal 64-bit length is accepted from its header: the first
 * payload bytes arrive as the message's first chunk, not its last. */
START_TEST(test_parser_huge_64bit_length)
{
    static const uint64_t lens[] = { 0x10000, 1ULL << 32, (1ULL << 63) - 1 };

    for (size_t i = 0; i < TU_ARRAY_SIZE(lens); i++) {
        for (int r = 0; r < 2; r++) {
            wsock_role role = (wsock_role)r;
            tu_buf b = { 0 };
            tu_run run;
            tu_cfg cfg = { role, 0, 0 };
            const uint8_t *key = role == WSOCK_ROLE_SERVER ? tu_key(1) : NULL;

            tu_header(&b, TU_FIN | WSOCK_OP_BINARY, key, lens[i], TU_LEN_64);
            for (int j = 0; j < 10; j++) {
                tu_buf_byte(&b, (uint8_t)(j ^ (key ? key[j % 4] : 0)));
            }
            for (long split = TU_SPLIT_WHOLE; split <= 8; split++) {
                tu_parse(&cfg, b.p, b.len, split, &run);
                ck_assert_msg(run.rc == WSOCK_PARSE_OK && run.nviolations == 0
                              && run.rec.nviolations == 0,
                              "len %llu split %ld: rc %d code %u", (unsigned long long)lens[i],
                              split, (int)run.rc, run.error_code);
                ck_assert(run.in_message);
                ck_assert_uint_eq(run.rec.nev, 0);          /* not finished */
                ck_assert(run.rec.open && run.rec.cur.len == 10);
                ck_assert_mem_eq(run.rec.cur.p, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", 10);
                tu_run_free(&run);
            }
            tu_buf_free(&b);
        }
    }
}
END_TEST

/* =====================================================================
 * Parser: header rules, table-driven, each case run in both roles
 * ================================================================== */

typedef struct {
    int         on;
    uint8_t     b0;
    const char *s;        /* payload; NULL: fill bytes of 'x' */
    size_t      fill;
    int         len_form; /* TU_LEN_* */
    uint64_t    declared; /* nonzero: header only, announcing this length */
} fspec;

#define FR(b0_, s_)          { .on = 1, .b0 = (b0_), .s = (s_) }
#define FRL(b0_, s_, form_)  { .on = 1, .b0 = (b0_), .s = (s_), .len_form = (form_) }
#define FRN(b0_, n_)         { .on = 1, .b0 = (b0_), .fill = (n_) }
#define FRNL(b0_, n_, form_) { .on = 1, .b0 = (b0_), .fill = (n_), .len_form = (form_) }
#define FRD(b0_, form_, n_)  { .on = 1, .b0 = (b0_), .len_form = (form_), .declared = (n_) }

/* Where a failing case must stop consuming (independent of the chunking). */
enum {
    AT_ANY = 0,   /* not checked */
    AT_BASE,      /* after the first two header bytes of the last frame */
    AT_HDR,       /* after the whole header of the last frame */
    AT_FRAME      /* after the whole last frame */
};

typedef struct {
    const char *name;
    uint8_t     rsv;
    uint64_t    max;
    fspec       f[5];
    unsigned    code;     /* 0: must parse */
    int         at;
} rule_case;

#define T_  WSOCK_OP_TEXT
#define B_  WSOCK_OP_BINARY
#define C_  WSOCK_OP_CONT
#define CL_ WSOCK_OP_CLOSE
#define PI_ WSOCK_OP_PING
#define PO_ WSOCK_OP_PONG
#define F_  TU_FIN
#define E1002 WSOCK_CLOSE_PROTOCOL_ERROR
#define E1007 WSOCK_CLOSE_INVALID_DATA
#define E1009 WSOCK_CLOSE_TOO_BIG

static const rule_case rule_cases[] = {
    /* reserved bits */
    { "RSV1 set", 0, 0, { FR(F_ | TU_RSV1 | T_, "hi") }, E1002, AT_BASE },
    { "RSV2 set", 0, 0, { FR(F_ | TU_RSV2 | B_, "hi") }, E1002, AT_BASE },
    { "RSV3 set", 0, 0, { FR(F_ | TU_RSV3 | T_, "hi") }, E1002, AT_BASE },
    { "RSV1 on ping", 0, 0, { FR(F_ | TU_RSV1 | PI_, "hi") }, E1002, AT_BASE },
    { "RSV3 on continuation", 0, 0, { FR(T_, "a"), FR(F_ | TU_RSV3 | C_, "b") }, E1002, AT_BASE },
    { "RSV1 allowed", 0x40, 0, { FR(F_ | TU_RSV1 | T_, "hi") }, 0, AT_ANY },
    { "RSV2 not covered by RSV1 allowance", 0x40, 0, { FR(F_ | TU_RSV2 | T_, "hi") }, E1002,
      AT_BASE },
    { "RSV1-3 allowed", 0x70, 0, { FR(F_ | 0x70 | B_, "hi") }, 0, AT_ANY },
    /* permessage-deflate (RFC 7692 §6): RSV1 on a message's first frame only */
    { "RSV1 on ping though allowed", 0x40, 0, { FR(F_ | TU_RSV1 | PI_, "hi") }, E1002, AT_BASE },
    { "RSV1 on close though allowed", 0x40, 0, { FR(F_ | TU_RSV1 | CL_, "\x03\xe8") }, E1002,
      AT_BASE },
    { "RSV1 on continuation though allowed", 0x40, 0,
      { FR(TU_RSV1 | T_, "a"), FR(F_ | TU_RSV1 | C_, "b") }, E1002, AT_BASE },
    { "RSV1 on first fragment only", 0x40, 0, { FR(TU_RSV1 | B_, "a"), FR(F_ | C_, "b") }, 0,
      AT_ANY },
    { "compressed text is not UTF-8 checked by the parser", 0x40, 0,
      { FR(F_ | TU_RSV1 | T_, "\xff\xfe") }, 0, AT_ANY },
    { "uncompressed text still UTF-8 checked", 0x40, 0, { FR(F_ | T_, "\xff\xfe") }, E1007,
      AT_ANY },
    { "compressed message within the limit's slack", 0x40, 100, { FRN(F_ | TU_RSV1 | B_, 176) },
      0, AT_ANY },
    { "compressed message past the limit's slack", 0x40, 100, { FRN(F_ | TU_RSV1 | B_, 177) },
      E1009, AT_HDR },
    { "uncompressed message past the limit", 0x40, 100, { FRN(F_ | B_, 101) }, E1009, AT_HDR },
    /* fragmentation order */
    { "continuation without a message", 0, 0, { FR(F_ | C_, "x") }, E1002, AT_BASE },
    { "non-final continuation without a message", 0, 0, { FR(C_, "x") }, E1002, AT_BASE },
    { "continuation after a finished message", 0, 0, { FR(F_ | T_, "a"), FR(F_ | C_, "b") },
      E1002, AT_BASE },
    { "text while text open", 0, 0, { FR(T_, "a"), FR(F_ | T_, "b") }, E1002, AT_BASE },
    { "binary while text open", 0, 0, { FR(T_, "a"), FR(F_ | B_, "b") }, E1002, AT_BASE },
    { "text while binary open", 0, 0, { FR(B_, "a"), FR(C_, "b"), FR(T_, "c") }, E1002,
      AT_BASE },
    { "new message after a ping inside one", 0, 0, { FR(T_, "a"), FR(F_ | PI_, ""),
      FR(F_ | B_, "b") }, E1002, AT_BASE },
    { "new message after the last fragment", 0, 0, { FR(T_, "a"), FR(F_ | C_, "b"),
      FR(F_ | B_, "c") }, 0, AT_ANY },
    /* control frames */
    { "fragmented close", 0, 0, { FR(CL_, "\x03\xe8") }, E1002, AT_BASE },
    { "fragmented ping", 0, 0, { FR(PI_, "p") }, E1002, AT_BASE },
    { "fragmented pong", 0, 0, { FR(PO_, "p") }, E1002, AT_BASE },
    { "fragmented ping inside a message", 0, 0, { FR(T_, "a"), FR(PI_, "p") }, E1002, AT_BASE },
    { "ping payload 126", 0, 0, { FRN(F_ | PI_, 126) }, E1002, AT_BASE },
    { "pong payload 126", 0, 0, { FRN(F_ | PO_, 126) }, E1002, AT_BASE },
    { "close payload 126", 0, 0, { FR(F_ | CL_, "\x03\xe8"), FRN(F_ | CL_, 126) },
      E1002, AT_BASE },
    { "ping payload 64-bit form", 0, 0, { FRD(F_ | PI_, TU_LEN_64, 70000) }, E1002,
      AT_BASE },
    { "ping payload 125", 0, 0, { FRN(F_ | PI_, 125) }, 0, AT_ANY },
    { "pong payload 0", 0, 0, { FR(F_ | PO_, "") }, 0, AT_ANY },
    /* length encodings */
    { "16-bit length 0", 0, 0, { FRL(F_ | B_, "", TU_LEN_16) }, E1002, AT_HDR },
    { "16-bit length 5", 0, 0, { FRL(F_ | B_, "Hello", TU_LEN_16) }, E1002, AT_HDR },
    { "16-bit length 125", 0, 0, { FRNL(F_ | T_, 125, TU_LEN_16) }, E1002, AT_HDR },
    { "16-bit length 126", 0, 0, { FRNL(F_ | T_, 126, TU_LEN_16) }, 0, AT_ANY },
    { "64-bit length 0", 0, 0, { FRL(F_ | B_, "", TU_LEN_64) }, E1002, AT_HDR },
    { "64-bit length 125", 0, 0, { FRNL(F_ | B_, 125, TU_LEN_64) }, E1002, AT_HDR },
    { "64-bit length 126", 0, 0, { FRNL(F_ | B_, 126, TU_LEN_64) }, E1002, AT_HDR },
    { "64-bit length 65535", 0, 0, { FRNL(F_ | B_, 65535, TU_LEN_64) }, E1002, AT_HDR },
    { "64-bit length 65536", 0, 0, { FRNL(F_ | B_, 65536, TU_LEN_64) }, 0, AT_ANY },
    { "64-bit length, top bit", 0, 0, { FRD(F_ | B_, TU_LEN_64, 1ULL << 63) }, E1002,
      AT_HDR },
    { "64-bit length, all ones", 0, 0, { FRD(F_ | B_, TU_LEN_64, UINT64_MAX) }, E1002,
      AT_HDR },
    { "64-bit length, top bit, continuation", 0, 0, { FR(B_, "a"),
      FRD(F_ | C_, TU_LEN_64, (1ULL << 63) | 0x10000) }, E1002, AT_HDR },
    { "64-bit length 2^63-1, header only", 0, 0,
      { FRD(F_ | B_, TU_LEN_64, (1ULL << 63) - 1) }, 0, AT_ANY },
    /* message size limit */
    { "frame over the limit", 0, 100, { FRN(F_ | B_, 101) }, E1009, AT_HDR },
    { "text frame over the limit", 0, 100, { FRN(F_ | T_, 101) }, E1009, AT_HDR },
    { "frame at the limit", 0, 100, { FRN(F_ | B_, 100) }, 0, AT_ANY },
    { "huge 64-bit frame over the limit", 0, 1 << 20,
      { FRD(F_ | B_, TU_LEN_64, 1ULL << 40) }, E1009, AT_HDR },
    { "2^63-1 frame over the limit", 0, 1 << 20,
      { FRD(F_ | B_, TU_LEN_64, (1ULL << 63) - 1) }, E1009, AT_HDR },
    { "fragments over the limit", 0, 100, { FRN(T_, 60), FRN(F_ | C_, 41) }, E1009,
      AT_HDR },
    { "three fragments over the limit", 0, 100, { FRN(B_, 40), FRN(C_, 40),
      FRN(F_ | C_, 21) }, E1009, AT_HDR },
    { "fragments at the limit", 0, 100, { FRN(T_, 60), FRN(F_ | C_, 40) }, 0, AT_ANY },
    { "empty fragment past the limit is fine", 0, 100, { FRN(B_, 100), FR(F_ | C_, "") },
      0, AT_ANY },
    { "control frames do not count", 0, 100, { FRN(T_, 60), FRN(F_ | PI_, 125),
      FRN(F_ | PO_, 125), FRN(F_ | C_, 40) }, 0, AT_ANY },
    { "limit is per message", 0, 100, { FRN(F_ | B_, 100), FRN(T_, 50),
      FRN(F_ | C_, 50), FRN(F_ | T_, 100) }, 0, AT_ANY },
    { "limit 1", 0, 1, { FR(F_ | T_, "a"), FR(F_ | T_, "ab") }, E1009, AT_HDR },
    { "no limit", 0, 0, { FRN(F_ | B_, 70000) }, 0, AT_ANY },
    /* close frames */
    { "close payload of 1 byte", 0, 0, { FR(F_ | CL_, "\x03") }, E1002, AT_FRAME },
    { "close code 999", 0, 0, { FR(F_ | CL_, "\x03\xe7") }, E1002, AT_FRAME },
    { "close reason not UTF-8", 0, 0, { FR(F_ | CL_, "\x03\xe8\xff") }, E1007, AT_FRAME },
    { "close reason truncated UTF-8", 0, 0, { FR(F_ | CL_, "\x03\xe8" "ab\xe2\x82") }, E1007,
      AT_FRAME },
    { "close reason surrogate", 0, 0, { FR(F_ | CL_, "\x03\xe8\xed\xa0\x80") }, E1007,
      AT_FRAME },
    { "close inside a message", 0, 0, { FR(T_, "a"), FR(F_ | CL_, "\x03\xe8") }, 0, AT_ANY },
    /* UTF-8 in text messages (position checked in the fail-fast tests) */
    { "text not UTF-8", 0, 0, { FR(F_ | T_, "ab\xff") }, E1007, AT_ANY },
    { "text ends inside a character", 0, 0, { FR(F_ | T_, "ab\xc3") }, E1007, AT_ANY },
    { "text ends inside a character, empty last fragment", 0, 0, { FR(T_, "\xc3"),
      FR(F_ | C_, "") }, E1007, AT_ANY },
    { "binary need not be UTF-8", 0, 0, { FR(F_ | B_, "\xff\xc0\x80\xed\xa0\x80") }, 0,
      AT_ANY },
    { "ping need not be UTF-8", 0, 0, { FR(F_ | PI_, "\xff\xc3") }, 0, AT_ANY },
};

/* Builds the case's stream; reports where its last frame starts, where
 * that frame's header ends, and where it ends. */
static void build_rule_stream(const rule_case *c, wsock_role role, tu_buf *b, size_t *base,
                              size_t *hdr_end)
{
    char fill[70000];

    memset(fill, 'x', sizeof(fill));
    for (size_t i = 0; i < TU_ARRAY_SIZE(c->f) && c->f[i].on; i++) {
        const fspec *f = &c->f[i];
        const uint8_t *key = role == WSOCK_ROLE_SERVER ? tu_key(b->nframes) : NULL;

        *base = b->len;
        if (f->declared) {
            tu_header(b, f->b0, key, f->declared, f->len_form);
            b->nframes++;
            *hdr_end = b->len;
            continue;
        }
        {
            const char *pl = f->s ? f->s : fill;
            size_t len = f->s ? strlen(f->s) : f->fill;

            ck_assert(len <= sizeof(fill));
            tu_header(b, f->b0, key, len, f->len_form);
            *hdr_end = b->len;
            b->len = *base;
            tu_frame_ex(b, f->b0, key, pl, len, f->len_form);
        }
    }
}

START_TEST(test_parser_rules)
{
    const rule_case *c = &rule_cases[_i / 2];
    wsock_role role = (wsock_role)(_i % 2);
    tu_cfg cfg = { role, c->max, c->rsv };
    tu_buf b = { 0 };
    size_t base = 0, hdr_end = 0, at = SIZE_MAX;
    char name[128];

    build_rule_stream(c, role, &b, &base, &hdr_end);
    snprintf(name, sizeof(name), "%s (%s)", c->name, role_name(role));
    switch (c->at) {
    case AT_BASE:
        at = base + 2;
        break;
    case AT_HDR:
        at = hdr_end;
        break;
    case AT_FRAME:
        at = b.len;
        break;
    }
    tu_check_splits(&cfg, b.p, b.len, NULL, c->code, at, name);
    tu_buf_free(&b);
}
END_TEST

/* The message limit is decided from the header: the parser fails having
 * consumed the header only and delivers none of the payload. */
START_TEST(test_parser_limit_before_payload)
{
    for (int r = 0; r < 2; r++) {
        wsock_role role = (wsock_role)r;
        tu_buf b = { 0 };
        char pl[300];
        size_t hdr;
        wsock_parser p;
        tu_rec rec;
        size_t used;

        memset(pl, 'q', sizeof(pl));
        tu_frame(&b, role, TU_FIN | WSOCK_OP_BINARY, pl, sizeof(pl));
        hdr = wsock_frame_header_size(sizeof(pl), role == WSOCK_ROLE_SERVER);
        tu_rec_init(&rec);
        wsock_parser_init(&p, role, 299);
        ck_assert_int_eq(wsock_parser_feed(&p, b.p, b.len, tu_sink(), &rec, &used),
                         WSOCK_PARSE_ERROR);
        ck_assert_uint_eq(p.error_code, WSOCK_CLOSE_TOO_BIG);
        ck_assert_uint_eq(used, hdr);
        ck_assert_uint_eq(rec.ndata, 0);
        tu_rec_free(&rec);

        /* second fragment: fails at its header, after 200 delivered bytes */
        b.len = 0;
        b.nframes = 0;
        tu_frame(&b, role, WSOCK_OP_TEXT, pl, 200);
        hdr = b.len;
        tu_frame(&b, role, TU_FIN | WSOCK_OP_CONT, pl, 100);
        tu_rec_init(&rec);
        wsock_parser_init(&p, role, 299);
        ck_assert_int_eq(wsock_parser_feed(&p, b.p, b.len, tu_sink(), &rec, &used),
                         WSOCK_PARSE_ERROR);
        ck_assert_uint_eq(p.error_code, WSOCK_CLOSE_TOO_BIG);
        ck_assert_uint_eq(used, hdr + wsock_frame_header_size(100, role == WSOCK_ROLE_SERVER));
        ck_assert_uint_eq(rec.cur.len, 200);
        tu_rec_free(&rec);
        tu_buf_free(&b);
    }
}
END_TEST

/* Reserved opcodes 3-7 and B-F, final or not, alone or inside a message. */
START_TEST(test_parser_reserved_opcodes)
{
    static const uint8_t ops[] = { 3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF };

    for (int r = 0; r < 2; r++) {
        for (size_t i = 0; i < sizeof(ops); i++) {
            for (int variant = 0; variant < 3; variant++) {
                wsock_role role = (wsock_role)r;
                tu_cfg cfg = { role, 0, 0 };
                tu_buf b = { 0 };
                size_t base;
                char name[64];

                if (variant == 2) {
                    tu_frame_str(&b, role, WSOCK_OP_TEXT, "open");
                }
                base = b.len;
                tu_frame_str(&b, role, (uint8_t)((variant == 1 ? 0 : TU_FIN) | ops[i]), "x");
                snprintf(name, sizeof(name), "opcode %x variant %d %s", ops[i], variant,
                         role_name(role));
                tu_check_splits(&cfg, b.p, b.len, NULL, WSOCK_CLOSE_PROTOCOL_ERROR, base + 2,
                                name);
                tu_buf_free(&b);
            }
        }
    }
}
END_TEST

/* Server role: every client frame must be masked; client role: no server
 * frame may be.  Data and control frames, first frame and later ones. */
START_TEST(test_parser_masking_rules)
{
    static const uint8_t b0s[] = { TU_FIN | WSOCK_OP_TEXT, TU_FIN | WSOCK_OP_BINARY,
                                   WSOCK_OP_TEXT, TU_FIN | WSOCK_OP_PING,
                                   TU_FIN | WSOCK_OP_PONG, TU_FIN | WSOCK_OP_CLOSE };

    for (size_t i = 0; i < sizeof(b0s); i++) {
        for (int after = 0; after < 2; after++) {
            tu_buf b = { 0 };
            tu_cfg cfg = { WSOCK_ROLE_SERVER, 0, 0 };
            size_t base;
            char name[64];

            /* unmasked frame to a server */
            if (after) {
                tu_frame_str(&b, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_PING, "ok");
            }
            base = b.len;
            tu_frame_ex(&b, b0s[i], NULL, "\x03\xe8", 2, TU_LEN_MIN);
            snprintf(name, sizeof(name), "unmasked b0 %02x after %d", b0s[i], after);
            tu_check_splits(&cfg, b.p, b.len, NULL, WSOCK_CLOSE_PROTOCOL_ERROR, base + 2, name);

            /* masked frame to a client */
            b.len = 0;
            cfg.role = WSOCK_ROLE_CLIENT;
            if (after) {
                tu_frame_str(&b, WSOCK_ROLE_CLIENT, TU_FIN | WSOCK_OP_PING, "ok");
            }
            base = b.len;
            tu_frame_ex(&b, b0s[i], tu_key(2), "\x03\xe8", 2, TU_LEN_MIN);
            snprintf(name, sizeof(name), "masked b0 %02x after %d", b0s[i], after);
            tu_check_splits(&cfg, b.p, b.len, NULL, WSOCK_CLOSE_PROTOCOL_ERROR, base + 2, name);
            tu_buf_free(&b);
        }
    }
}
END_TEST

/* =====================================================================
 * Parser: fragmentation
 * ================================================================== */

/* Control frames between fragments are delivered in place and the message
 * still completes; empty fragments are fine. */
START_TEST(test_parser_interleaved_controls)
{
    wsock_role role = (wsock_role)_i;
    tu_cfg cfg = { role, 0, 0 };
    tu_buf b = { 0 };
    tu_rec exp;

    tu_frame_str(&b, role, WSOCK_OP_TEXT, "ab");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_PING, "p1");
    tu_frame_str(&b, role, WSOCK_OP_CONT, "");
    tu_frame_str(&b, role, WSOCK_OP_CONT, "cd");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_PONG, "");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_PING, "p2");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_CONT, "ef");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_BINARY, "gh");
    tu_frame_str(&b, role, WSOCK_OP_BINARY, "");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_PING, "");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_CONT, "");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_TEXT, "");
    tu_close_frame(&b, role, 1000, "done", 4);

    tu_rec_init(&exp);
    tu_expect_ctrl(&exp, WSOCK_OP_PING, 0, "p1", 2, 1, 2);
    tu_expect_ctrl(&exp, WSOCK_OP_PONG, 0, "", 0, 1, 4);
    tu_expect_ctrl(&exp, WSOCK_OP_PING, 0, "p2", 2, 1, 4);
    tu_expect_msg(&exp, WSOCK_OP_TEXT, "abcdef", 6);
    tu_expect_msg(&exp, WSOCK_OP_BINARY, "gh", 2);
    tu_expect_ctrl(&exp, WSOCK_OP_PING, 0, "", 0, 1, 0);
    tu_expect_msg(&exp, WSOCK_OP_BINARY, "", 0);
    tu_expect_msg(&exp, WSOCK_OP_TEXT, "", 0);
    tu_expect_ctrl(&exp, WSOCK_OP_CLOSE, 1000, "done", 4, 0, 0);
    tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, role_name(role));
    tu_rec_free(&exp);
    tu_buf_free(&b);
}
END_TEST

/* wsock_parser_in_message follows the fragments. */
START_TEST(test_parser_in_message)
{
    wsock_parser p;
    tu_buf b = { 0 };
    tu_rec rec;
    size_t used, f1, f2, f3;

    tu_frame_str(&b, WSOCK_ROLE_SERVER, WSOCK_OP_BINARY, "12");
    f1 = b.len;
    tu_frame_str(&b, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_PING, "");
    f2 = b.len;
    tu_frame_str(&b, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_CONT, "34");
    f3 = b.len;

    tu_rec_init(&rec);
    wsock_parser_init(&p, WSOCK_ROLE_SERVER, 0);
    ck_assert(!wsock_parser_in_message(&p));
    ck_assert_int_eq(wsock_parser_feed(&p, b.p, f1, tu_sink(), &rec, &used), WSOCK_PARSE_OK);
    ck_assert(wsock_parser_in_message(&p));
    ck_assert_int_eq(wsock_parser_feed(&p, b.p + f1, f2 - f1, tu_sink(), &rec, &used),
                     WSOCK_PARSE_OK);
    ck_assert(wsock_parser_in_message(&p));
    ck_assert_int_eq(wsock_parser_feed(&p, b.p + f2, f3 - f2, tu_sink(), &rec, &used),
                     WSOCK_PARSE_OK);
    ck_assert(!wsock_parser_in_message(&p));
    ck_assert_uint_eq(rec.nev, 2);
    ck_assert_int_eq(rec.nviolations, 0);
    tu_rec_free(&rec);
    tu_buf_free(&b);
}
END_TEST

/* wsock_parser_mid_frame: 1 from a frame's first byte to its last, header
 * and payload alike, in any chunking; 0 between frames. */
START_TEST(test_parser_mid_frame)
{
    wsock_parser p;
    tu_buf b = { 0 };
    tu_rec rec;
    size_t used;

    tu_frame_str(&b, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_TEXT, "hello, world");
    tu_frame_str(&b, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_BINARY, "");
    tu_rec_init(&rec);
    wsock_parser_init(&p, WSOCK_ROLE_SERVER, 0);
    ck_assert(!wsock_parser_mid_frame(&p));
    for (size_t i = 0; i < b.len; i++) {
        int end_of_frame = (i + 1 == b.len - 6) || (i + 1 == b.len);  /* 2 + 4 mask */
        ck_assert_int_eq(wsock_parser_feed(&p, b.p + i, 1, tu_sink(), &rec, &used),
                         WSOCK_PARSE_OK);
        TU_CHECK(wsock_parser_mid_frame(&p) == !end_of_frame, "byte %zu", i);
    }
    ck_assert_uint_eq(rec.nev, 2);
    tu_rec_free(&rec);
    tu_buf_free(&b);
}
END_TEST

/* Random valid streams (messages in 1-4 fragments of 0-300 bytes, random
 * control frames between fragments, text as random UTF-8 split anywhere)
 * give the generator's events in every chunking. */
static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static size_t random_text(tu_rng *rng, uint8_t *o, size_t want)
{
    size_t n = 0;

    while (n + 4 <= want) {
        uint32_t cp;
        switch (tu_rand(rng) % 4) {
        case 0:
            cp = (uint32_t)tu_rand_range(rng, 0, 0x7F);
            break;
        case 1:
            cp = (uint32_t)tu_rand_range(rng, 0x80, 0x7FF);
            break;
        case 2:
            cp = (uint32_t)tu_rand_range(rng, 0x800, 0xFFFF - 0x800);
            if (cp >= 0xD800) {
                cp += 0x800; /* skip the surrogates */
            }
            break;
        default:
            cp = (uint32_t)tu_rand_range(rng, 0x10000, 0x10FFFF);
            break;
        }
        n += put_utf8(o + n, cp);
    }
    return n;
}

START_TEST(test_parser_random_streams)
{
    uint8_t msg[1300], ctl[125];

    for (long seed = 1; seed <= 12; seed++) {
        wsock_role role = (wsock_role)(seed % 2);
        tu_cfg cfg = { role, 0, 0 };
        tu_buf b = { 0 };
        tu_rec exp;
        tu_rng rng;
        size_t nmsg;
        char name[32];

        tu_rng_seed(&rng, (uint64_t)seed + 1000);
        tu_rec_init(&exp);
        nmsg = tu_rand_range(&rng, 1, 10);
        for (size_t m = 0; m < nmsg; m++) {
            wsock_opcode op = tu_rand(&rng) % 2 ? WSOCK_OP_TEXT : WSOCK_OP_BINARY;
            size_t nfrag = tu_rand_range(&rng, 1, 4), len, pos = 0;

            if (op == WSOCK_OP_TEXT) {
                len = random_text(&rng, msg, tu_rand_range(&rng, 0, sizeof(msg)));
            }
            else {
                len = tu_rand_range(&rng, 0, sizeof(msg));
                for (size_t i = 0; i < len; i++) {
                    msg[i] = (uint8_t)tu_rand(&rng);
                }
            }
            for (size_t f = 0; f < nfrag; f++) {
                size_t n = f + 1 == nfrag ? len - pos : tu_rand_range(&rng, 0, len - pos);
                uint8_t b0 = (uint8_t)((f + 1 == nfrag ? TU_FIN : 0)
                                       | (f == 0 ? op : WSOCK_OP_CONT));

                tu_frame(&b, role, b0, msg + pos, n);
                pos += n;
                if (f + 1 < nfrag && tu_rand(&rng) % 3 == 0) {
                    wsock_opcode cop = tu_rand(&rng) % 2 ? WSOCK_OP_PING : WSOCK_OP_PONG;
                    size_t cl = tu_rand_range(&rng, 0, sizeof(ctl));
                    for (size_t i = 0; i < cl; i++) {
                        ctl[i] = (uint8_t)tu_rand(&rng);
                    }
                    tu_frame(&b, role, (uint8_t)(TU_FIN | cop), ctl, cl);
                    tu_expect_ctrl(&exp, cop, 0, ctl, cl, 1, pos);
                }
            }
            tu_expect_msg(&exp, op, msg, len);
        }
        tu_close_frame(&b, role, 1001, "\xf0\x9f\x98\x80 bye", 8);
        tu_expect_ctrl(&exp, WSOCK_OP_CLOSE, 1001, "\xf0\x9f\x98\x80 bye", 8, 0, 0);
        snprintf(name, sizeof(name), "seed %ld", seed);
        tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, name);
        tu_rec_free(&exp);
        tu_buf_free(&b);
    }
}
END_TEST

/* =====================================================================
 * Parser: UTF-8 in text messages
 * ================================================================== */

/* Every UTF-8 table entry as a one-frame text message, and as a two-frame
 * message cut at every byte: valid ones are delivered (a character split
 * across fragments included), invalid and truncated ones fail with 1007. */
START_TEST(test_parser_utf8_table)
{
    const u8case *c = &u8cases[_i];

    for (int r = 0; r < 2; r++) {
        wsock_role role = (wsock_role)r;
        tu_cfg cfg = { role, 0, 0 };
        unsigned code = c->expect == WSOCK_UTF8_OK ? 0 : WSOCK_CLOSE_INVALID_DATA;

        for (size_t cut = 0; cut <= c->len + 1; cut++) {
            tu_buf b = { 0 };
            tu_rec exp;
            char name[96];

            if (cut == c->len + 1) {
                tu_frame(&b, role, TU_FIN | WSOCK_OP_TEXT, c->s, c->len);
            }
            else {
                tu_frame(&b, role, WSOCK_OP_TEXT, c->s, cut);
                tu_frame(&b, role, TU_FIN | WSOCK_OP_CONT, c->s + cut, c->len - cut);
            }
            tu_rec_init(&exp);
            if (code == 0) {
                tu_expect_msg(&exp, WSOCK_OP_TEXT, c->s, c->len);
            }
            snprintf(name, sizeof(name), "%s, cut %zu, %s", c->name, cut, role_name(role));
            tu_check_splits(&cfg, b.p, b.len, &exp, code, SIZE_MAX, name);
            tu_rec_free(&exp);
            tu_buf_free(&b);
        }
    }
}
END_TEST

/* Fail-fast: an invalid sequence in the FIRST fragment fails while that
 * fragment is fed - in every chunking the error comes from the very feed
 * call that carries the proving byte, and feeding just the first fragment
 * is enough to fail. */
START_TEST(test_parser_utf8_fail_fast)
{
    for (size_t i = 0; i < TU_ARRAY_SIZE(u8cases); i++) {
        const u8case *c = &u8cases[i];

        if (c->expect != WSOCK_UTF8_INVALID) {
            continue;
        }
        for (int r = 0; r < 2; r++) {
            wsock_role role = (wsock_role)r;
            tu_cfg cfg = { role, 0, 0 };
            tu_buf b = { 0 };
            size_t hdr, first_end, bad;
            wsock_parser p;
            tu_rec rec;
            size_t used;

            tu_frame(&b, role, WSOCK_OP_TEXT, c->s, c->len);
            first_end = b.len;
            hdr = first_end - c->len;
            bad = hdr + c->fail_at;
            tu_frame_str(&b, role, TU_FIN | WSOCK_OP_CONT, "tail");

            for (long split = TU_SPLIT_WHOLE; split <= TU_RANDOM_SPLITS; split++) {
                tu_run run;

                tu_parse(&cfg, b.p, b.len, split, &run);
                ck_assert_msg(run.rc == WSOCK_PARSE_ERROR
                              && run.error_code == WSOCK_CLOSE_INVALID_DATA,
                              "%s split %ld: rc %d code %u", c->name, split, (int)run.rc,
                              run.error_code);
                ck_assert_msg(run.err_chunk_start <= bad && bad < run.err_chunk_end,
                              "%s split %ld (%s): failed in the feed of bytes %zu..%zu, the bad "
                              "byte is at %zu", c->name, split, role_name(role),
                              run.err_chunk_start, run.err_chunk_end, bad);
                ck_assert(run.err_pos <= bad);
                ck_assert_uint_eq(run.rec.nev, 0);
                tu_run_free(&run);
            }

            /* only the first fragment, in one call: fails, second never fed */
            tu_rec_init(&rec);
            wsock_parser_init(&p, role, 0);
            ck_assert_msg(wsock_parser_feed(&p, b.p, first_end, tu_sink(), &rec, &used)
                          == WSOCK_PARSE_ERROR && p.error_code == WSOCK_CLOSE_INVALID_DATA,
                          "%s: first fragment alone did not fail", c->name);
            tu_rec_free(&rec);
            tu_buf_free(&b);
        }
    }
}
END_TEST

/* The validator's state belongs to the message: control frames inside it
 * are not fed to it, and a new message starts fresh. */
START_TEST(test_parser_utf8_state_scope)
{
    wsock_role role = (wsock_role)_i;
    tu_cfg cfg = { role, 0, 0 };
    tu_buf b = { 0 };
    tu_rec exp;

    /* "é" split by a ping with an ASCII payload, then by a pong with
     * non-UTF-8 bytes; then a binary message ending mid-"character" and a
     * text message that must not inherit anything from it */
    tu_frame_str(&b, role, WSOCK_OP_TEXT, "\xc3");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_PING, "xxxxxxxxxx");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_PONG, "\xe2");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_CONT, "\xa9");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_BINARY, "\xe2\x82");
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_TEXT, "\xac");
    tu_rec_init(&exp);
    tu_expect_ctrl(&exp, WSOCK_OP_PING, 0, "xxxxxxxxxx", 10, 1, 1);
    tu_expect_ctrl(&exp, WSOCK_OP_PONG, 0, "\xe2", 1, 1, 1);
    tu_expect_msg(&exp, WSOCK_OP_TEXT, "\xc3\xa9", 2);
    tu_expect_msg(&exp, WSOCK_OP_BINARY, "\xe2\x82", 2);
    /* the lone continuation byte must fail the last message */
    tu_check_splits(&cfg, b.p, b.len, &exp, WSOCK_CLOSE_INVALID_DATA, SIZE_MAX,
                    role_name(role));
    tu_rec_free(&exp);
    tu_buf_free(&b);
}
END_TEST

/* =====================================================================
 * Parser: close frames
 * ================================================================== */

static const unsigned bad_close_codes[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000,
                                            2999, 5000, 65535 };
static const unsigned good_close_codes[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                             1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999 };

START_TEST(test_parser_close_codes)
{
    for (int r = 0; r < 2; r++) {
        wsock_role role = (wsock_role)r;
        tu_cfg cfg = { role, 0, 0 };

        for (size_t i = 0; i < TU_ARRAY_SIZE(bad_close_codes); i++) {
            tu_buf b = { 0 };
            char name[48];
            /* by hand: for tu_close_frame code 0 means "no status" */
            uint8_t pl[4] = { (uint8_t)(bad_close_codes[i] >> 8), (uint8_t)bad_close_codes[i],
                              'o', 'k' };

            tu_frame(&b, role, TU_FIN | WSOCK_OP_CLOSE, pl, 4);
            snprintf(name, sizeof(name), "close code %u %s", bad_close_codes[i],
                     role_name(role));
            tu_check_splits(&cfg, b.p, b.len, NULL, WSOCK_CLOSE_PROTOCOL_ERROR, b.len, name);
            tu_buf_free(&b);
        }
        for (size_t i = 0; i < TU_ARRAY_SIZE(good_close_codes); i++) {
            tu_buf b = { 0 };
            tu_rec exp;
            char name[48];

            tu_close_frame(&b, role, good_close_codes[i], "why", 3);
            tu_close_frame(&b, role, good_close_codes[i], NULL, 0);
            tu_rec_init(&exp);
            tu_expect_ctrl(&exp, WSOCK_OP_CLOSE, good_close_codes[i], "why", 3, 0, 0);
            tu_expect_ctrl(&exp, WSOCK_OP_CLOSE, good_close_codes[i], "", 0, 0, 0);
            snprintf(name, sizeof(name), "close code %u %s", good_close_codes[i],
                     role_name(role));
            tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, name);
            tu_rec_free(&exp);
            tu_buf_free(&b);
        }
    }
}
END_TEST

/* Empty close: code 1005 to the sink.  Longest close: 123-byte reason.
 * Multibyte reason delivered as is. */
START_TEST(test_parser_close_payloads)
{
    wsock_role role = (wsock_role)_i;
    tu_cfg cfg = { role, 0, 0 };
    tu_buf b = { 0 };
    tu_rec exp;
    char reason[123];

    memset(reason, 'r', sizeof(reason));
    tu_close_frame(&b, role, 0, NULL, 0);
    tu_close_frame(&b, role, 1000, reason, sizeof(reason));
    tu_close_frame(&b, role, 4001, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11);
    tu_rec_init(&exp);
    tu_expect_ctrl(&exp, WSOCK_OP_CLOSE, WSOCK_CLOSE_NO_STATUS, "", 0, 0, 0);
    tu_expect_ctrl(&exp, WSOCK_OP_CLOSE, 1000, reason, sizeof(reason), 0, 0);
    tu_expect_ctrl(&exp, WSOCK_OP_CLOSE, 4001, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
                   11, 0, 0);
    tu_check_splits(&cfg, b.p, b.len, &exp, 0, SIZE_MAX, role_name(role));
    tu_rec_free(&exp);
    tu_buf_free(&b);
}
END_TEST

/* =====================================================================
 * Parser: failure and stop
 * ================================================================== */

/* After an error nothing more is consumed or delivered, whatever is fed. */
START_TEST(test_parser_stays_failed)
{
    wsock_parser p;
    tu_buf bad = { 0 }, good = { 0 };
    tu_rec rec;
    size_t used;

    tu_frame_str(&bad, WSOCK_ROLE_SERVER, TU_FIN | TU_RSV2 | WSOCK_OP_TEXT, "x");
    tu_frame_str(&good, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_TEXT, "fine");
    tu_rec_init(&rec);
    wsock_parser_init(&p, WSOCK_ROLE_SERVER, 0);
    ck_assert_int_eq(wsock_parser_feed(&p, bad.p, bad.len, tu_sink(), &rec, &used),
                     WSOCK_PARSE_ERROR);
    ck_assert_uint_eq(p.error_code, WSOCK_CLOSE_PROTOCOL_ERROR);
    ck_assert_ptr_nonnull(p.error_reason);
    for (int i = 0; i < 3; i++) {
        used = 12345;
        ck_assert_int_eq(wsock_parser_feed(&p, good.p, good.len, tu_sink(), &rec, &used),
                         WSOCK_PARSE_ERROR);
        ck_assert_uint_eq(used, 0);
        ck_assert_uint_eq(p.error_code, WSOCK_CLOSE_PROTOCOL_ERROR);
    }
    ck_assert_uint_eq(rec.ndata + rec.nctrl, 0);
    tu_rec_free(&rec);
    tu_buf_free(&bad);
    tu_buf_free(&good);
}
END_TEST

/* A sink returning nonzero stops the parser right after that frame: the
 * call returns STOPPED with consumed at the end of that frame, and feeding
 * the rest goes on where it stopped. */
START_TEST(test_parser_sink_stop)
{
    wsock_role role = (wsock_role)_i;
    tu_buf b = { 0 };
    size_t ends[6];
    size_t nf = 0;

    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_TEXT, "one");
    ends[nf++] = b.len;
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_PING, "p");
    ends[nf++] = b.len;
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_BINARY, "");
    ends[nf++] = b.len;
    tu_frame_str(&b, role, TU_FIN | WSOCK_OP_TEXT, "two");
    ends[nf++] = b.len;
    tu_close_frame(&b, role, 1000, "x", 1);
    ends[nf++] = b.len;

    for (size_t k = 1; k <= nf; k++) {
        wsock_parser p;
        tu_rec rec;
        size_t used, total;
        uint8_t *copy = malloc(b.len);
        wsock_parse_result rc;

        ck_assert(copy != NULL);
        memcpy(copy, b.p, b.len);
        tu_rec_init(&rec);
        rec.stop_at = k;
        wsock_parser_init(&p, role, 0);
        rc = wsock_parser_feed(&p, copy, b.len, tu_sink(), &rec, &used);
        ck_assert_int_eq(rc, WSOCK_PARSE_STOPPED);
        ck_assert_msg(used == ends[k - 1], "stop at %zu: consumed %zu, frame ends at %zu", k,
                      used, ends[k - 1]);
        ck_assert_uint_eq(rec.nev, k);
        total = used;
        rc = wsock_parser_feed(&p, copy + total, b.len - total, tu_sink(), &rec, &used);
        ck_assert_int_eq(rc, WSOCK_PARSE_OK);
        ck_assert_uint_eq(total + used, b.len);
        ck_assert_uint_eq(rec.nev, nf);
        ck_assert_int_eq(rec.nviolations, 0);
        ck_assert_mem_eq(rec.bytes.p + rec.ev[3].off, "two", 3);
        tu_rec_free(&rec);
        free(copy);
    }

    /* every stop position in every chunking: events still complete */
    for (size_t k = 1; k <= nf; k++) {
        for (long split = TU_SPLIT_WHOLE; split <= 8; split++) {
            tu_cfg cfg = { role, 0, 0 };
            tu_run run;

            tu_parse_stop(&cfg, b.p, b.len, split, k, &run);
            ck_assert_int_eq(run.rc, WSOCK_PARSE_OK);
            ck_assert_int_eq(run.nviolations, 0);
            ck_assert_uint_eq(run.nstops, 1);
            ck_assert_uint_eq(run.rec.nev, nf);
            if (split == TU_SPLIT_WHOLE) {
                ck_assert_uint_eq(run.stop_pos[0], ends[k - 1]);
            }
            tu_run_free(&run);
        }
    }
    tu_buf_free(&b);
}
END_TEST

/* A stop on a partial data chunk: consumed is exactly what was delivered. */
START_TEST(test_parser_sink_stop_partial)
{
    tu_buf b = { 0 };
    wsock_parser p;
    tu_rec rec;
    size_t used, hdr;

    tu_frame_str(&b, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_BINARY, "0123456789");
    hdr = b.len - 10;
    tu_rec_init(&rec);
    rec.stop_at = 1;
    wsock_parser_init(&p, WSOCK_ROLE_SERVER, 0);
    ck_assert_int_eq(wsock_parser_feed(&p, b.p, hdr + 4, tu_sink(), &rec, &used),
                     WSOCK_PARSE_STOPPED);
    ck_assert_uint_eq(used, hdr + 4);
    ck_assert_uint_eq(rec.ndata, 1);
    ck_assert(rec.chunk[0].first && !rec.chunk[0].last);
    ck_assert_int_eq(wsock_parser_feed(&p, b.p + hdr + 4, 6, tu_sink(), &rec, &used),
                     WSOCK_PARSE_OK);
    ck_assert_uint_eq(used, 6);
    ck_assert_uint_eq(rec.nev, 1);
    ck_assert_mem_eq(rec.bytes.p, "0123456789", 10);
    tu_rec_free(&rec);
    tu_buf_free(&b);
}
END_TEST

/* A sink without callbacks is allowed; feeding nothing is a no-op. */
START_TEST(test_parser_null_callbacks_and_empty_feed)
{
    static const wsock_parser_sink none = { NULL, NULL };
    tu_buf b = { 0 };
    wsock_parser p;
    uint8_t dummy = 0;
    size_t used = 99;

    tu_frame_str(&b, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_TEXT, "hi");
    tu_frame_str(&b, WSOCK_ROLE_SERVER, TU_FIN | WSOCK_OP_PING, "hi");
    wsock_parser_init(&p, WSOCK_ROLE_SERVER, 0);
    ck_assert_int_eq(wsock_parser_feed(&p, &dummy, 0, &none, NULL, &used), WSOCK_PARSE_OK);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(wsock_parser_feed(&p, b.p, b.len, &none, NULL, &used), WSOCK_PARSE_OK);
    ck_assert_uint_eq(used, b.len);
    tu_buf_free(&b);
}
END_TEST

/* =====================================================================
 * Suites
 * ================================================================== */

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    /* generous: byte-at-a-time over 64KiB frames under sanitizers */
    tcase_set_timeout(tc, 120);
    return tc;
}

static Suite *utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase("utf8");

    tcase_add_loop_test(tc, test_utf8_table, 0, (int)TU_ARRAY_SIZE(u8cases));
    tcase_add_test(tc, test_utf8_ascii_fast_path);
    tcase_add_test(tc, test_utf8_open_sequence_then_ascii);
    tcase_add_test(tc, test_utf8_split_across_calls);
    tcase_add_test(tc, test_utf8_zero_initialised_state);
    tcase_add_test(tc, test_utf8_exhaustive_vs_reference);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *close_mask_writer_suite(void)
{
    Suite *s = suite_create("close, mask, writer");
    TCase *tc = tcase("close");

    tcase_add_test(tc, test_close_code_rules);
    tcase_add_test(tc, test_close_payload_basic);
    tcase_add_test(tc, test_close_payload_truncation);
    tcase_add_test(tc, test_close_payload_roundtrip);
    suite_add_tcase(s, tc);

    tc = tcase("mask");
    tcase_add_test(tc, test_mask_matches_naive);
    tcase_add_test(tc, test_mask_in_pieces);
    suite_add_tcase(s, tc);

    tc = tcase("writer");
    tcase_add_loop_test(tc, test_writer_headers, 0, (int)TU_ARRAY_SIZE(wcases));
    tcase_add_test(tc, test_writer_masked_hello);
    tcase_add_loop_test(tc, test_writer_parser_roundtrip, 0, ALL_ROLES_LOOP);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *parser_suite(void)
{
    Suite *s = suite_create("parser");
    TCase *tc = tcase("rfc examples");

    tcase_add_loop_test(tc, test_parser_rfc_examples, 0, (int)TU_ARRAY_SIZE(rfc_streams));
    tcase_add_test(tc, test_parser_rfc_fragment_flags);
    tcase_add_test(tc, test_parser_rfc_binary);
    tcase_add_test(tc, test_parser_zero_copy);
    suite_add_tcase(s, tc);

    tc = tcase("lengths");
    tcase_add_loop_test(tc, test_parser_lengths, 0, ALL_ROLES_LOOP);
    tcase_add_test(tc, test_parser_huge_64bit_length);
    suite_add_tcase(s, tc);

    tc = tcase("rules");
    tcase_add_loop_test(tc, test_parser_rules, 0, 2 * (int)TU_ARRAY_SIZE(rule_cases));
    tcase_add_test(tc, test_parser_limit_before_payload);
    tcase_add_test(tc, test_parser_reserved_opcodes);
    tcase_add_test(tc, test_parser_masking_rules);
    suite_add_tcase(s, tc);

    tc = tcase("fragmentation");
    tcase_add_loop_test(tc, test_parser_interleaved_controls, 0, ALL_ROLES_LOOP);
    tcase_add_test(tc, test_parser_in_message);
    tcase_add_test(tc, test_parser_mid_frame);
    tcase_add_test(tc, test_parser_random_streams);
    suite_add_tcase(s, tc);

    tc = tcase("utf8 in messages");
    tcase_add_loop_test(tc, test_parser_utf8_table, 0, (int)TU_ARRAY_SIZE(u8cases));
    tcase_add_test(tc, test_parser_utf8_fail_fast);
    tcase_add_loop_test(tc, test_parser_utf8_state_scope, 0, ALL_ROLES_LOOP);
    suite_add_tcase(s, tc);

    tc = tcase("close frames");
    tcase_add_test(tc, test_parser_close_codes);
    tcase_add_loop_test(tc, test_parser_close_payloads, 0, ALL_ROLES_LOOP);
    suite_add_tcase(s, tc);

    tc = tcase("failure and stop");
    tcase_add_test(tc, test_parser_stays_failed);
    tcase_add_loop_test(tc, test_parser_sink_stop, 0, ALL_ROLES_LOOP);
    tcase_add_test(tc, test_parser_sink_stop_partial);
    tcase_add_test(tc, test_parser_null_callbacks_and_empty_feed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { utf8_suite(), close_mask_writer_suite(), parser_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
