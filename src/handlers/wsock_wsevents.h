/*
 * wsock_wsevents.h — the event codec of Pushpin's WebSocket-over-HTTP
 * protocol (application/websocket-events), pure C without APR, unit-tested
 * in tests/unit/test_wsevents.c.  An event is
 *
 *     NAME\r\n                          (no content: OPEN, DISCONNECT, ...)
 *     NAME <hex length>\r\n<bytes>\r\n  (with content: TEXT, BINARY, CLOSE)
 *
 * byte for byte as pushpin.org/docs/protocols/websocket-over-http/ and the
 * GRIP libraries write it (lower-case hex, no leading zeros).
 */
#ifndef WSOCK_WSEVENTS_H
#define WSOCK_WSEVENTS_H

#include <stddef.h>

/* The longest event name we accept (DISCONNECT is 10). */
#define WSOCK_WSEVENT_NAME_MAX 16

typedef struct {
    const char *name;       /* not NUL-terminated: name_len bytes */
    size_t name_len;
    const char *data;       /* content, or NULL for an event without one */
    size_t len;
} wsock_wsevent;

/* The bytes encoding an event takes: has_content 0 for NAME\r\n. */
size_t wsock_wsevent_size(const char *name, int has_content, size_t len);

/* Writes the event into out (at least wsock_wsevent_size() bytes); returns
 * the bytes written. */
size_t wsock_wsevent_encode(char *out, const char *name, int has_content,
                            const void *data, size_t len);

/* Decodes the event at *pos of buf[0..len): 1 and *pos past it, 0 at the
 * end of buf, -1 when the bytes are not an event (bad name, bad or
 * oversized hex length, content not followed by CRLF, truncated). */
int wsock_wsevent_next(const char *buf, size_t len, size_t *pos, wsock_wsevent *ev);

/* Whether ev is the event called name. */
int wsock_wsevent_is(const wsock_wsevent *ev, const char *name);

#endif /* WSOCK_WSEVENTS_H */
