/*
 * wsock_utf8.c — incremental, fail-fast UTF-8 validation (RFC 3629).
 *
 * The state remembers how many continuation bytes are still due and the
 * range the next one must fall in; the range is what rejects overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF at the earliest
 * byte that proves them, so a bad text message fails at the fragment that
 * holds the bad byte.
 */
#include <string.h>

#include "wsock_codec.h"

void wsock_utf8_reset(wsock_utf8_state *st)
{
    st->need = 0;
    st->lo = 0x80;
    st->hi = 0xBF;
}

/* Returns nonzero if all 8 bytes at s are ASCII. */
static int ascii8(const uint8_t *s)
{
    uint64_t w;
    memcpy(&w, s, sizeof w); /* unaligned-safe; compiles to one load */
    return (w & 0x8080808080808080ULL) == 0;
}

wsock_utf8_result wsock_utf8_feed(wsock_utf8_state *st, const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t b = s[i];

        if (st->need == 0) {
            /* Fast path: whole words of ASCII between sequences. */
            while (i + 8 <= len && ascii8(s + i)) {
                i += 8;
            }
            if (i == len) {
                break;
            }
            b = s[i];
            if (b < 0x80) {
                i++;
                continue;
            }
            st->lo = 0x80;
            st->hi = 0xBF;
            if (b >= 0xC2 && b <= 0xDF) {
                st->need = 1;
            }
            else if (b >= 0xE0 && b <= 0xEF) {
                st->need = 2;
                if (b == 0xE0) {
                    st->lo = 0xA0;          /* no overlong 3-byte forms */
                }
                else if (b == 0xED) {
                    st->hi = 0x9F;          /* no surrogates D800-DFFF */
                }
            }
            else if (b >= 0xF0 && b <= 0xF4) {
                st->need = 3;
                if (b == 0xF0) {
                    st->lo = 0x90;          /* no overlong 4-byte forms */
                }
                else if (b == 0xF4) {
                    st->hi = 0x8F;          /* nothing above U+10FFFF */
                }
            }
            else {
                return WSOCK_UTF8_INVALID;  /* 80-C1 and F5-FF never start */
            }
            i++;
            continue;
        }

        if (b < st->lo || b > st->hi) {
            return WSOCK_UTF8_INVALID;
        }
        st->lo = 0x80;
        st->hi = 0xBF;
        st->need--;
        i++;
    }
    return st->need ? WSOCK_UTF8_PARTIAL : WSOCK_UTF8_OK;
}

int wsock_utf8_valid(const uint8_t *s, size_t len)
{
    wsock_utf8_state st;

    wsock_utf8_reset(&st);
    return wsock_utf8_feed(&st, s, len) == WSOCK_UTF8_OK;
}
