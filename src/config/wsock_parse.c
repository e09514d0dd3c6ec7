/*
 * wsock_parse.c — the value parsers directives share: seconds, sizes,
 * keywords, whole numbers of server-config directives.  Each returns NULL,
 * or an error message naming the directive, which makes configtest fail.
 */
#include <stdlib.h>
#include <strings.h>

#include <httpd.h>
#include <http_config.h>
#include <apr_strings.h>

#include "wsock_parse.h"

/* Seconds, decimals allowed ("0.5"); 0 where allow_zero. */
const char *wsock_parse_seconds(cmd_parms *cmd, const char *arg, int allow_zero,
                                apr_interval_time_t *out)
{
    char *end;
    double v = strtod(arg, &end);

    if (end == arg || *end || !(v >= 0) || v > 86400.0 * 365 || (!allow_zero && v == 0)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds%s",
                            cmd->cmd->name, arg, allow_zero ? " (0 = off)" : " above 0");
    }
    *out = (apr_interval_time_t)(v * APR_USEC_PER_SEC);
    return NULL;
}

/* Bytes with an optional K, M or G suffix (powers of 1024). */
const char *wsock_parse_bytes(cmd_parms *cmd, const char *arg, apr_off_t min,
                              apr_off_t *out)
{
    char *end;
    apr_off_t v;
    int shift = 0;

    if (apr_strtoff(&v, arg, &end, 10) != APR_SUCCESS || end == arg) {
        v = -1;
    }
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    /* Up to 2^32 GiB whatever the unit: far beyond any sane limit, and no
     * overflow when the suffix is applied. */
    if (*end || v < min || v > ((apr_off_t)1 << (62 - shift))) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size in bytes (K, M, G allowed)",
                            cmd->cmd->name, arg);
    }
    *out = v << shift;
    return NULL;
}

/* Which of two keywords arg is, case-insensitively: 0, 1, or -1 for neither. */
int wsock_keyword_of_two(const char *arg, const char *first, const char *second)
{
    return strcasecmp(arg, first) == 0 ? 0 : strcasecmp(arg, second) == 0 ? 1 : -1;
}

int wsock_parse_long(const char *arg, long min, long max, long *n)
{
    char *end;

    *n = strtol(arg, &end, 10);
    return *arg != '\0' && *end == '\0' && *n >= min && *n <= max;
}

/* A server-config directive's whole number from min to max; NULL, or the
 * error, which says it is not what. */
const char *wsock_global_number(cmd_parms *cmd, const char *arg, long min, long max,
                                const char *what, long *n)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    if (!wsock_parse_long(arg, min, max, n)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not %s", cmd->cmd->name, arg, what);
    }
    return NULL;
}
