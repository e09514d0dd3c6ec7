/*
 * wsock_parse.h — value parsers shared by the directives (wsock_parse.c).
 */
#ifndef WSOCK_PARSE_H
#define WSOCK_PARSE_H

#include <http_config.h>

/* Seconds, decimals allowed ("0.5"); 0 only where allow_zero. */
const char *wsock_parse_seconds(cmd_parms *cmd, const char *arg, int allow_zero,
                                apr_interval_time_t *out);

/* Bytes with an optional K, M or G suffix (powers of 1024), at least min. */
const char *wsock_parse_bytes(cmd_parms *cmd, const char *arg, apr_off_t min,
                              apr_off_t *out);

/* Which of two keywords arg is, case-insensitively: 0, 1, or -1 for neither. */
int wsock_keyword_of_two(const char *arg, const char *first, const char *second);

/* 1 if arg is a whole number from min to max (into *n), else 0. */
int wsock_parse_long(const char *arg, long min, long max, long *n);

/* A server-config directive's whole number from min to max (it fails in a
 * section); what says what it must be. */
const char *wsock_global_number(cmd_parms *cmd, const char *arg, long min, long max,
                                const char *what, long *n);

#endif /* WSOCK_PARSE_H */
