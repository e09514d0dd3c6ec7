/*
 * tp_whoami.c — test plugin "whoami": tells the client who the handshake
 * said it is, through the public API only.
 *
 * on_open sends one JSON object: user (wsock_user), protocol
 * (wsock_protocol), and the token claims sub, exp and aud
 * (wsock_token_claim), null when absent.  Then each text message NAME is
 * answered with the claim NAME's value, or "(null)".
 */
#include <stdio.h>
#include <string.h>

#include "wsock.h"

static void add(char *buf, size_t size, const char *key, const char *value)
{
    size_t n = strlen(buf);

    /* Test values are plain ASCII without quotes: no escaping needed. */
    snprintf(buf + n, size - n, "%s\"%s\":%s%s%s", n > 1 ? "," : "", key,
             value ? "\"" : "", value ? value : "null", value ? "\"" : "");
}

static int whoami_open(wsock_conn *wc)
{
    char json[2048] = "{";

    add(json, sizeof(json), "user", wsock_user(wc));
    add(json, sizeof(json), "protocol", wsock_protocol(wc));
    add(json, sizeof(json), "sub", wsock_token_claim(wc, "sub"));
    add(json, sizeof(json), "exp", wsock_token_claim(wc, "exp"));
    add(json, sizeof(json), "aud", wsock_token_claim(wc, "aud"));
    strncat(json, "}", sizeof(json) - strlen(json) - 1);
    return wsock_send(wc, 1, json, strlen(json)) == APR_SUCCESS ? 0 : 1011;
}

static int whoami_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    char name[256];
    const char *value;

    if (!is_text || len >= sizeof(name)) {
        return 1003;
    }
    memcpy(name, data, len);
    name[len] = '\0';
    value = wsock_token_claim(wc, name);
    if (value == NULL) {
        value = "(null)";
    }
    return wsock_send(wc, 1, value, strlen(value)) == APR_SUCCESS ? 0 : 1011;
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "whoami",
    .on_open = whoami_open,
    .on_message = whoami_message,
};
