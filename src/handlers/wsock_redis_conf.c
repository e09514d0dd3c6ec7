/*
 * wsock_redis_conf.c — the server-wide directives of the Redis relay:
 * WSockRedis, WSockRedisAuth, WSockRedisDatabase, WSockRedisPrefix,
 * WSockRedisTimeout, WSockRedisQueue (docs/directives.md).
 *
 * One relay per child process serves every `WSockHandler redis` location,
 * so these are server config only.  They are read by the parent and
 * inherited by the children through fork; a restart rereads them, and the
 * configuration pool's cleanup puts the defaults back first.
 */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <apr_network_io.h>
#include <apr_strings.h>

#include "wsock_redis.h"

#define REDIS_DEFAULTS { "127.0.0.1:6379", "127.0.0.1", 6379, NULL, NULL, NULL, 0, \
                         "wsock:", 5 * APR_USEC_PER_SEC, 4096, 16 * 1024 * 1024, 0 }

wsock_redis_settings wsock_redis_conf = REDIS_DEFAULTS;

static int reset_registered;

static apr_status_t reset_settings(void *data)
{
    static const wsock_redis_settings defaults = REDIS_DEFAULTS;

    (void)data;
    wsock_redis_conf = defaults;
    reset_registered = 0;
    return APR_SUCCESS;
}

/* Every setter comes here first: the next configuration starts afresh. */
static const char *begin(cmd_parms *cmd)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err == NULL && !reset_registered) {
        apr_pool_cleanup_register(cmd->pool, NULL, reset_settings, apr_pool_cleanup_null);
        reset_registered = 1;
    }
    return err;
}

void wsock_redis_conf_mark_used(apr_pool_t *pconf)
{
    if (!reset_registered) {
        apr_pool_cleanup_register(pconf, NULL, reset_settings, apr_pool_cleanup_null);
        reset_registered = 1;
    }
    wsock_redis_conf.in_use = 1;
}

static int parse_port(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);

    return (*s >= '0' && *s <= '9' && *end == '\0' && n >= 1 && n <= 65535) ? (int)n : 0;
}

const char *wsock_redis_set_address(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = begin(cmd);
    const char *colon;
    apr_sockaddr_t *sa;
    char *host;
    int port;

    (void)conf;
    if (err) {
        return err;
    }
    /* A server that names its Redis runs the relay even without a redis
     * location: connections addressed by id reach it (docs/publish.md). */
    wsock_redis_conf_mark_used(cmd->pool);
    if (strncmp(arg, "unix:", 5) == 0) {
        if (arg[5] != '/' || strlen(arg + 5) > 100) {
            return apr_psprintf(cmd->pool, "WSockRedis: '%s' is not unix:/absolute/path "
                                "(at most 100 bytes)", arg);
        }
        wsock_redis_conf.unix_path = apr_pstrdup(cmd->pool, arg + 5);
        wsock_redis_conf.host = NULL;
        wsock_redis_conf.port = 0;
        wsock_redis_conf.address = apr_pstrdup(cmd->pool, arg);
        return NULL;
    }
    /* host:port, [v6]:port */
    colon = strrchr(arg, ':');
    if (colon == NULL || colon == arg || !(port = parse_port(colon + 1))) {
        return apr_psprintf(cmd->pool, "WSockRedis: '%s' is not host:port (port 1-65535) "
                            "or unix:/path", arg);
    }
    host = apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(colon - arg));
    if (host[0] == '[') {
        apr_size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']') {
            return apr_psprintf(cmd->pool, "WSockRedis: '%s': an IPv6 address goes in "
                                "brackets, [::1]:6379", arg);
        }
        host[n - 1] = '\0';
        host++;
    }
    if (apr_sockaddr_info_get(&sa, host, APR_UNSPEC, (apr_port_t)port, 0, cmd->temp_pool)
        != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "WSockRedis: cannot resolve host '%s'", host);
    }
    wsock_redis_conf.host = host;
    wsock_redis_conf.port = port;
    wsock_redis_conf.unix_path = NULL;
    wsock_redis_conf.address = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

const char *wsock_redis_set_auth(cmd_parms *cmd, void *conf, const char *a, const char *b)
{
    const char *err = begin(cmd);

    (void)conf;
    if (err) {
        return err;
    }
    if (!*a || (b && !*b)) {
        return "WSockRedisAuth: empty user or password (WSockRedisAuth [user] password)";
    }
    wsock_redis_conf.user = b ? apr_pstrdup(cmd->pool, a) : NULL;
    wsock_redis_conf.password = apr_pstrdup(cmd->pool, b ? b : a);
    return NULL;
}

/* A whole number from min to max into *out, or the directive's error. */
static const char *parse_count(cmd_parms *cmd, const char *arg, long min, long max,
                               const char *what, int *out)
{
    const char *err = begin(cmd);
    char *end;
    long n;

    if (err) {
        return err;
    }
    n = strtol(arg, &end, 10);
    if (*arg < '0' || *arg > '9' || *end || n < min || n > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not %s (%ld-%ld)", cmd->cmd->name, arg,
                            what, min, max);
    }
    *out = (int)n;
    return NULL;
}

const char *wsock_redis_set_database(cmd_parms *cmd, void *conf, const char *arg)
{
    (void)conf;
    return parse_count(cmd, arg, 0, 65535, "a database number", &wsock_redis_conf.database);
}

const char *wsock_redis_set_prefix(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = begin(cmd);
    apr_size_t n = strlen(arg);

    (void)conf;
    if (err) {
        return err;
    }
    for (apr_size_t i = 0; i < n; i++) {
        if ((unsigned char)arg[i] <= ' ' || (unsigned char)arg[i] >= 127) {
            n = 0;
        }
    }
    if (n < 1 || n > 64) {
        return apr_psprintf(cmd->pool, "WSockRedisPrefix: '%s' is not 1-64 printable ASCII "
                            "characters without spaces", arg);
    }
    wsock_redis_conf.prefix = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

const char *wsock_redis_set_timeout(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = begin(cmd);
    char *end;
    double v;

    (void)conf;
    if (err) {
        return err;
    }
    v = strtod(arg, &end);
    if (end == arg || *end || !(v >= 0.1) || v > 3600) {
        return apr_psprintf(cmd->pool, "WSockRedisTimeout: '%s' is not a number of seconds "
                            "from 0.1 to 3600", arg);
    }
    wsock_redis_conf.timeout = (apr_interval_time_t)(v * APR_USEC_PER_SEC);
    return NULL;
}

int wsock_redis_parse_size(const char *s, apr_size_t min, apr_size_t max, apr_size_t *out)
{
    apr_uint64_t unit = 1, n;
    char *end;

    if (*s < '0' || *s > '9') {
        return 0;
    }
    n = apr_strtoi64(s, &end, 10);
    if (*end && end[1] == '\0') {
        switch (*end) {
        case 'k': case 'K': unit = 1024; end++; break;
        case 'm': case 'M': unit = 1024 * 1024; end++; break;
        case 'g': case 'G': unit = 1024 * 1024 * 1024; end++; break;
        }
    }
    if (*end || n > max / unit || n * unit < min) {
        return 0;
    }
    *out = (apr_size_t)(n * unit);
    return 1;
}

const char *wsock_redis_set_queue(cmd_parms *cmd, void *conf, const char *msgs,
                                  const char *bytes)
{
    const char *err;

    (void)conf;
    err = parse_count(cmd, msgs, 1, 1000000, "a number of messages",
                      &wsock_redis_conf.queue_max);
    if (err == NULL && bytes
        && !wsock_redis_parse_size(bytes, 64 * 1024, (apr_size_t)4 * 1024 * 1024 * 1024,
                                   &wsock_redis_conf.queue_max_bytes)) {
        err = apr_psprintf(cmd->pool, "WSockRedisQueue: '%s' is not a size from 64K to 4G "
                           "(bytes, or with K, M or G)", bytes);
    }
    return err;
}
