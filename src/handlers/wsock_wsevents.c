/*
 * wsock_wsevents.c — encoding and decoding application/websocket-events
 * (see wsock_wsevents.h).  Strict on input: the decoder refuses anything a
 * conforming peer cannot have written, so garbage from a backend is an
 * error, never a guess.
 */
#include <stdio.h>
#include <string.h>

#include "wsock_wsevents.h"

static size_t hex_digits(size_t n)
{
    size_t d = 1;

    while (n >= 16) {
        n /= 16;
        d++;
    }
    return d;
}

size_t wsock_wsevent_size(const char *name, int has_content, size_t len)
{
    size_t n = strlen(name) + 2;

    return has_content ? n + 1 + hex_digits(len) + len + 2 : n;
}

size_t wsock_wsevent_encode(char *out, const char *name, int has_content,
                            const void *data, size_t len)
{
    size_t n = strlen(name);
    char *p = out;

    memcpy(p, name, n);
    p += n;
    if (has_content) {
        p += sprintf(p, " %zx", len);
    }
    *p++ = '\r';
    *p++ = '\n';
    if (has_content) {
        if (len) {
            memcpy(p, data, len);
        }
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t)(p - out);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int wsock_wsevent_next(const char *buf, size_t len, size_t *pos, wsock_wsevent *ev)
{
    size_t i = *pos, start = *pos, size = 0, digits = 0;

    if (i >= len) {
        return 0;
    }
    while (i < len && buf[i] >= 'A' && buf[i] <= 'Z') {
        i++;
    }
    if (i == start || i - start > WSOCK_WSEVENT_NAME_MAX || i >= len) {
        return -1;
    }
    ev->name = buf + start;
    ev->name_len = i - start;
    ev->data = NULL;
    ev->len = 0;
    if (buf[i] == ' ') {
        int v;

        for (i++; i < len && (v = hex_value(buf[i])) >= 0; i++) {
            if (++digits > 15) {            /* far past any bound we use */
                return -1;
            }
            size = size * 16 + (size_t)v;
        }
        if (digits == 0) {
            return -1;
        }
    }
    if (len - i < 2 || buf[i] != '\r' || buf[i + 1] != '\n') {
        return -1;
    }
    i += 2;
    if (digits) {
        if (len - i < size + 2 || buf[i + size] != '\r' || buf[i + size + 1] != '\n') {
            return -1;
        }
        ev->data = buf + i;
        ev->len = size;
        i += size + 2;
    }
    *pos = i;
    return 1;
}

int wsock_wsevent_is(const wsock_wsevent *ev, const char *name)
{
    size_t n = strlen(name);

    return ev->name_len == n && memcmp(ev->name, name, n) == 0;
}
