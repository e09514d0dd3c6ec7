/*
 * wsock_reverse.c — an example mod_wsock plugin: every message goes back
 * reversed.  Text is reversed by character (UTF-8 code point), so the reply
 * is valid UTF-8 again; binary is reversed byte by byte.
 *
 *   apxs -c -I<directory of wsock.h> wsock_reverse.c
 *   WSockPlugin reverse /path/to/.libs/wsock_reverse.so     (server config)
 *   <Location /reverse>
 *       WSockHandler reverse prefix=">> "                     (prefix optional)
 *   </Location>
 *
 * It shows the whole plugin API: per-location arguments (create_config),
 * per-connection state (user data from on_open to on_close), child_init,
 * and sending.  It uses wsock.h and the httpd/APR headers only.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_strings.h>

#include "wsock.h"

typedef struct { const char *prefix; apr_size_t plen; } rev_cfg;   /* per location */
typedef struct { unsigned long messages; } rev_conn;              /* per connection */

/* "WSockHandler reverse [prefix=TEXT]": the config lives in the config pool. */
static const char *rev_create_config(apr_pool_t *p, int argc, char *const argv[], void **cfg)
{
    rev_cfg *c = apr_pcalloc(p, sizeof(*c));

    c->prefix = "";
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "prefix=", 7) != 0) {
            return apr_psprintf(p, "unknown argument '%s' (only prefix=TEXT)", argv[i]);
        }
        /* Copied: wsock.h promises nothing about argv after this call.  The
         * prefix should be UTF-8: it goes into text replies. */
        c->prefix = apr_pstrdup(p, argv[i] + 7);
    }
    c->plen = strlen(c->prefix);
    *cfg = c;
    return NULL;
}

static void rev_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)pchild;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "REV0001: reverse plugin ready in child %ld",
                 (long)getpid());
}

static int rev_open(wsock_conn *wc)
{
    rev_conn *rc = calloc(1, sizeof(*rc));   /* no per-connection pool in the API: malloc */

    if (rc == NULL) {
        return 1011;                         /* upgrade, then close: internal error */
    }
    wsock_set_user_data(wc, rc);             /* on_close is now sure to run: frees it */
    return 0;
}

static int rev_message(wsock_conn *wc, int is_text, const char *data, apr_size_t len)
{
    const rev_cfg *cfg = wsock_handler_config(wc);    /* set by create_config */
    rev_conn *rc = wsock_get_user_data(wc);
    apr_size_t plen = is_text ? cfg->plen : 0, i = 0;
    char *out = malloc(plen + len + 1);      /* data is read-only: reverse into a copy */
    apr_status_t rv;

    if (out == NULL) {
        return 1011;
    }
    memcpy(out, cfg->prefix, plen);
    while (i < len) {
        /* Text is valid UTF-8 (mod_wsock checked it): a lead byte gives the
         * length of its character; continuation bytes are 10xxxxxx. */
        apr_size_t n = 1;
        if (is_text) {
            while (i + n < len && ((unsigned char)data[i + n] & 0xC0) == 0x80) {
                n++;
            }
        }
        memcpy(out + plen + len - i - n, data + i, n);
        i += n;
    }
    rv = wsock_send(wc, is_text, out, plen + len);    /* copies: free at once */
    free(out);
    rc->messages++;
    return rv == APR_SUCCESS ? 0 : 1011;     /* closing or queue full: give up */
}

static void rev_close(wsock_conn *wc, int code, const char *reason)
{
    rev_conn *rc = wsock_get_user_data(wc);

    /* Inside a callback, log against the connection: the line then carries
     * the client address like Apache's own per-connection messages. */
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wsock_connection(wc),
                 "REV0002: %s closed (%d %s) after %lu messages",
                 wsock_conn_id(wc), code, reason ? reason : "", rc ? rc->messages : 0UL);
    free(rc);
    wsock_set_user_data(wc, NULL);
}

WSOCK_PLUGIN_EXPORT const wsock_handler wsock_plugin = {
    .api_version = WSOCK_API_VERSION,
    .name = "reverse",
    .create_config = rev_create_config,
    .child_init = rev_child_init,
    .on_open = rev_open,
    .on_message = rev_message,
    .on_close = rev_close,
};
