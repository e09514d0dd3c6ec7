/*
 * tp_facts.c — test plugin "facts": tells the client what the plugin API
 * says about its request, and refuses or fails on request.
 *
 *   WSockHandler facts [ARGS...]      the args come back joined with '|'
 *
 * on_open, query argument:
 *   refuse=NNN   return NNN (an HTTP status: no upgrade; or a close code)
 *   big=N        after the facts, also send a binary message of N bytes
 *   repeat=K     ... K times (default 1)
 * otherwise the first message is a JSON object of the facts.
 * on_message: "facts" -> the facts again (read later in the connection's
 * life: after the request may have ended, WSockAccessLog upgrade);
 * "fail" -> close with 4001; "fail:NNNN" -> return NNNN (even
 * codes no peer may receive); "cut:TEXT" -> sends the delivered message
 * short by one byte (cutting a character if TEXT ends in one) and answers
 * with what wsock_send returned; anything else is echoed.
 * on_close logs "TPFACTS: <conn id> on_close <code>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_strings.h>

#include "wsock.h"

static server_rec *main_server;

static const char *facts_config(apr_pool_t *p, int argc, char *const argv[], void **cfg)
{
    const char *joined = NULL;

    for (int i = 0; i < argc; i++) {
        joined = joined ? apr_pstrcat(p, joined, "|", argv[i], NULL)
                        : apr_pstrdup(p, argv[i]);
    }
    *cfg = (void *)joined;
    return NULL;
}

static void facts_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)pchild;
    main_server = s;
}

/* Appends "key": value (a JSON string, or null) to buf; truncates silently. */
static void add(char *buf, size_t size, const char *key, const char *value)
{
    size_t n = strlen(buf);

    n += snprintf(buf + n, n < size ? size - n : 0, "%s\"%s\":", n > 1 ? "," : "", key);
    if (value == NULL) {
        snprintf(buf + n, n < size ? size - n : 0, "null");
        return;
    }
    n += snprintf(buf + n, n < size ? size - n : 0, "\"");
    for (const unsigned char *s = (const unsigned char *)value; *s && n + 8 < size; s++) {
        if (*s == '"' || *s == '\\') {
            n += snprintf(buf + n, size - n, "\\%c", *s);
        }
        else if (*s < 0x20) {
            n += snprintf(buf + n, size - n, "\\u%04x", *s);
        }
        else {
            buf[n++] = (char)*s;       /* UTF-8 passes through */
            buf[n] = '\0';
        }
    }
    snprintf(buf + n, n < size ? size - n : 0, "\"");
}

/* Sends the facts as a JSON object: APR_SUCCESS or why not. */
static apr_status_t send_facts(wsock_conn *wc)
{
    char json[8192] = "{";

    add(json, sizeof(json), "uri", wsock_uri(wc));
    add(json, sizeof(json), "query", wsock_query(wc));
    add(json, sizeof(json), "name", wsock_query_arg(wc, "name"));
    add(json, sizeof(json), "remote_ip", wsock_remote_ip(wc));
    add(json, sizeof(json), "user", wsock_user(wc));
    add(json, sizeof(json), "protocol", wsock_protocol(wc));
    add(json, sizeof(json), "x_test", wsock_header(wc, "X-Test"));
    add(json, sizeof(json), "config", wsock_handler_config(wc));
    add(json, sizeof(json), "conn_id", wsock_conn_id(wc));
    add(json, sizeof(json), "location", wsock_location(wc));
    strncat(json, "}", sizeof(json) - strlen(json) - 1);
    return wsock_send(wc, 1, json, strlen(json));
}

static int facts_open(wsock_conn *wc)
{
    const char *refuse = wsock_query_arg(wc, "refuse");
    const char *big = wsock_query_arg(wc, "big");
    const char *repeat = wsock_query_arg(wc, "repeat");

    if (refuse) {
        return atoi(refuse);
    }
    if (send_facts(wc) != APR_SUCCESS) {
        return 1011;
    }
    if (big) {
        apr_size_t n = (apr_size_t)atol(big);
        char *data = malloc(n ? n : 1);
        apr_status_t rv = APR_SUCCESS;

        if (data == NULL) {
            return 1011;
        }
        memset(data, 'b', n);
        for (int k = repeat ? atoi(repeat) : 1; k > 0 && rv == APR_SUCCESS; k--) {
            rv = wsock_send(wc, 0, data, n);
        }
        free(data);
        if (rv != APR_SUCCESS) {
            return 1011;
        }
    }
    return 0;
}

static int facts_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    if (is_text && len == 5 && memcmp(data, "facts", 5) == 0) {
        return send_facts(wc) == APR_SUCCESS ? 0 : 1011;
    }
    if (is_text && len == 4 && memcmp(data, "fail", 4) == 0) {
        return 4001;
    }
    if (is_text && len > 4 && memcmp(data, "cut:", 4) == 0) {
        apr_status_t rv = wsock_send(wc, 1, data, len - 1);
        const char *what = rv == APR_SUCCESS ? "SENT" : rv == APR_EINVAL ? "EINVAL" : "OTHER";
        return wsock_send(wc, 1, what, strlen(what)) == APR_SUCCESS ? 0 : 1011;
    }
    if (is_text && len == 9 && memcmp(data, "fail:", 5) == 0) {
        return atoi(apr_pstrmemdup(wsock_connection(wc)->pool, data + 5, 4));
    }
    return wsock_send(wc, is_text, data, len) == APR_SUCCESS ? 0 : 1011;
}

static void facts_close(wsock_conn *wc, int code, const char *reason)
{
    (void)reason;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, main_server, "TPFACTS: %s on_close %d",
                 wsock_conn_id(wc), code);
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "facts",
    .create_config = facts_config,
    .child_init = facts_child_init,
    .on_open = facts_open,
    .on_message = facts_message,
    .on_close = facts_close,
};
