/*
 * wsock_json.c — JSON strings for the handlers (see wsock_json.h).
 */
#include <stdlib.h>
#include <string.h>

#include "wsock_json.h"

/* s is valid UTF-8 (the codec checked it), which JSON carries as it is;
 * only '"', '\' and control characters (NUL included) are escaped.  (APR
 * 1.7 has no JSON escaper; apr_escape_json comes with APR 2.) */
apr_size_t wsock_json_escape(char *out, const char *s, apr_size_t len)
{
    static const char hex[] = "0123456789abcdef";
    apr_size_t n = 0;

    for (apr_size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        char sub = ch == '"' ? '"' : ch == '\\' ? '\\' : ch == '\n' ? 'n'
                   : ch == '\r' ? 'r' : ch == '\t' ? 't' : 0;

        if (sub) {
            if (out) {
                out[n] = '\\';
                out[n + 1] = sub;
            }
            n += 2;
        }
        else if (ch < 0x20) {
            if (out) {
                memcpy(out + n, "\\u00", 4);
                out[n + 4] = hex[ch >> 4];
                out[n + 5] = hex[ch & 15];
            }
            n += 6;
        }
        else {
            if (out) {
                out[n] = (char)ch;
            }
            n++;
        }
    }
    return n;
}

char *wsock_json_wrap(const char *head, const char *s, apr_size_t len, const char *tail,
                      apr_size_t *outlen)
{
    apr_size_t hl = strlen(head), tl = strlen(tail), el = wsock_json_escape(NULL, s, len);
    char *out = malloc(hl + el + tl + 1);

    if (out == NULL) {
        return NULL;
    }
    memcpy(out, head, hl);
    wsock_json_escape(out + hl, s, len);
    memcpy(out + hl + el, tail, tl + 1);
    *outlen = hl + el + tl;
    return out;
}
