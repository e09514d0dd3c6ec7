/*
 * wsock_backend_conf.c — the arguments of "WSockHandler backend URL ...":
 * checked while the configuration is read, so that `apachectl configtest`
 * catches every bad value (docs/backend.md#arguments).
 */
#include <string.h>
#include <strings.h>

#include <apr_file_info.h>
#include <apr_strings.h>

#include "wsock_backend.h"
#include "wsock_redis.h"            /* wsock_redis_parse_size */
#include "wsock_roomsel.h"          /* wsock_arg_onoff */

const char *const wsock_backend_usage =
    "WSockHandler backend http[s]://host[:port]/path [protocol=websocket-events|plain] "
    "[timeout=SECONDS] [queue=EVENTS] [queue-bytes=SIZE] [max-answer=SIZE] [retries=N] "
    "[requests=N] [credentials=on|off] [ca=FILE] [headers=Name,Name...]";

static int in_use, requests_max;

static apr_status_t forget(void *data)
{
    (void)data;
    in_use = 0;
    requests_max = 0;
    return APR_SUCCESS;
}

int wsock_backend_in_use(void)
{
    return in_use;
}

int wsock_backend_requests_max(void)
{
    return requests_max > 0 ? requests_max : 64;
}

/* A count or size from min to max (K, M, G allowed) into *out. */
static int number(const char *v, apr_size_t min, apr_size_t max, apr_size_t *out)
{
    return wsock_redis_parse_size(v, min, max, out);
}

/* Headers mod_wsock sets itself: a client's must never stand in for them. */
static int reserved_header(const char *name)
{
    static const char *const reserved[] = {
        "Connection-Id", "Content-Type", "Content-Length", "Accept", "Host", "Connection",
        "Expect", "Transfer-Encoding", "Upgrade", "Sec-WebSocket-Extensions", NULL
    };

    for (int i = 0; reserved[i]; i++) {
        if (strcasecmp(name, reserved[i]) == 0) {
            return 1;
        }
    }
    return strncasecmp(name, "Meta-", 5) == 0 || strncasecmp(name, "Wsock-", 6) == 0;
}

static int header_names(apr_pool_t *pool, const char *v, wsock_backend_cfg *cfg)
{
    char *list = apr_pstrdup(pool, v), *last, *name;
    int n = 0;

    for (const char *p = v; *p; p++) {
        n += *p == ',';
    }
    cfg->headers = apr_pcalloc(pool, sizeof(*cfg->headers) * (apr_size_t)(n + 1));
    for (name = apr_strtok(list, ",", &last); name; name = apr_strtok(NULL, ",", &last)) {
        /* an HTTP token: what a header name may be */
        if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789!#$%&'*+-.^_`|~") != strlen(name)
            || reserved_header(name)) {
            return 0;
        }
        cfg->headers[cfg->nheaders++] = name;
    }
    return cfg->nheaders > 0;
}

const char *wsock_backend_create_config(apr_pool_t *pool, int argc, char *const argv[],
                                        void **cfgp)
{
    wsock_backend_cfg *cfg = apr_pcalloc(pool, sizeof(*cfg));
    apr_size_t n;

    if (argc < 1 || (strncasecmp(argv[0], "http://", 7) != 0
                     && strncasecmp(argv[0], "https://", 8) != 0)
        || strpbrk(argv[0], " \t\r\n") || strlen(argv[0]) < 9) {
        return apr_psprintf(pool, "the first argument must be the backend's http:// or "
                            "https:// URL (%s)", wsock_backend_usage);
    }
    cfg->url = apr_pstrdup(pool, argv[0]);
    cfg->protocol = WSOCK_BACKEND_EVENTS;
    cfg->timeout = apr_time_from_sec(10);
    cfg->queue_events = 256;
    cfg->queue_bytes = 1024 * 1024;
    cfg->max_answer = 1024 * 1024;
    cfg->retries = 3;
    cfg->requests = 64;
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        const char *v = eq ? eq + 1 : "";
        apr_size_t klen = eq ? (apr_size_t)(eq - argv[i]) : 0;
        int ok;

#define KEY(k) (klen == sizeof(k) - 1 && strncasecmp(argv[i], k, klen) == 0)
        if (KEY("protocol")) {
            ok = 1;
            if (strcasecmp(v, "websocket-events") == 0) {
                cfg->protocol = WSOCK_BACKEND_EVENTS;
            }
            else if (strcasecmp(v, "plain") == 0) {
                cfg->protocol = WSOCK_BACKEND_PLAIN;
            }
            else {
                ok = 0;
            }
        }
        else if (KEY("timeout")) {
            if ((ok = number(v, 1, 3600, &n))) {
                cfg->timeout = apr_time_from_sec((apr_time_t)n);
            }
        }
        else if (KEY("queue")) {
            if ((ok = number(v, 1, 100000, &n))) {
                cfg->queue_events = (int)n;
            }
        }
        else if (KEY("queue-bytes")) {
            ok = number(v, 1024, (apr_size_t)1024 * 1024 * 1024, &cfg->queue_bytes);
        }
        else if (KEY("max-answer")) {
            ok = number(v, 1024, (apr_size_t)1024 * 1024 * 1024, &cfg->max_answer);
        }
        else if (KEY("retries")) {
            if ((ok = number(v, 0, 10, &n))) {
                cfg->retries = (int)n;
            }
        }
        else if (KEY("requests")) {
            if ((ok = number(v, 1, 10000, &n))) {
                cfg->requests = (int)n;
            }
        }
        else if (KEY("credentials")) {
            ok = wsock_arg_onoff(v, &cfg->credentials);
        }
        else if (KEY("ca")) {
            apr_finfo_t fi;
            ok = *v && apr_stat(&fi, v, APR_FINFO_TYPE, pool) == APR_SUCCESS
                 && fi.filetype == APR_REG;
            if (!ok) {
                return apr_psprintf(pool, "'%s': no such file (a PEM CA bundle)", argv[i]);
            }
            cfg->ca_file = apr_pstrdup(pool, v);
        }
        else if (KEY("headers")) {
            ok = header_names(pool, v, cfg);
        }
        else {
            return apr_psprintf(pool, "unknown argument '%s' (%s)", argv[i],
                                wsock_backend_usage);
        }
#undef KEY
        if (!ok) {
            return apr_psprintf(pool, "bad value in '%s' (%s)", argv[i], wsock_backend_usage);
        }
    }
    if (!in_use) {
        apr_pool_cleanup_register(pool, NULL, forget, apr_pool_cleanup_null);
        in_use = 1;
    }
    if (cfg->requests > requests_max) {
        requests_max = cfg->requests;
    }
    *cfgp = cfg;
    return NULL;
}
