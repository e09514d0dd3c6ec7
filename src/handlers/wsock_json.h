/*
 * wsock_json.h — JSON strings for the handlers that speak JSON to their
 * clients (chat with presence=on, redis).
 */
#ifndef WSOCK_JSON_H
#define WSOCK_JSON_H

#include <apr.h>

/* Writes s[0..len) as the inside of a JSON string into out (if not NULL)
 * and returns the length.  s must be valid UTF-8. */
apr_size_t wsock_json_escape(char *out, const char *s, apr_size_t len);

/* A malloc'ed, NUL-terminated JSON text: head, then s as an escaped
 * string, then tail; its length in *outlen.  NULL if out of memory. */
char *wsock_json_wrap(const char *head, const char *s, apr_size_t len, const char *tail,
                      apr_size_t *outlen);

#endif /* WSOCK_JSON_H */
