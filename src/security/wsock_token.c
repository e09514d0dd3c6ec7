/*
 * wsock_token.c — WSockTokenAuth and friends: where the token comes from,
 * the secret file, the 401, and the claims handlers read.
 *
 * The secret is read when the configuration is read (by root, before
 * Apache drops its privileges), so the file can be readable by root only;
 * it stays in the configuration pool, wiped when that pool goes.
 */
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <util_cookies.h>
#include <util_script.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <openssl/crypto.h>

#include "wsock_config.h"
#include "wsock_conn.h"
#include "wsock_jwt.h"
#include "wsock_log.h"
#include "wsock_token.h"

APLOG_USE_MODULE(wsock);

#define TOKEN_FROM_PROTOCOL 0
#define TOKEN_FROM_QUERY    1
#define TOKEN_FROM_COOKIE   2

#define DEFAULT_SOURCE      TOKEN_FROM_PROTOCOL
#define DEFAULT_NAME        "access_token"
#define DEFAULT_LEEWAY      30
#define MAX_LEEWAY          3600

/* RFC 7518 §3.2: an HS256 key has at least as many bits as the hash. */
#define SECRET_MIN 32
#define SECRET_MAX (64 * 1024)

struct wsock_token_conf {
    int enabled;                    /* WSOCK_UNSET, 0 (off), 1 */
    const unsigned char *secret;    /* with enabled == 1 */
    apr_size_t secret_len;
    int source;                     /* TOKEN_FROM_*, WSOCK_UNSET */
    const char *name;               /* query argument or cookie; NULL: default */
    const char *audience;           /* NULL: unset (no aud accepted) */
    apr_int64_t leeway;             /* seconds, WSOCK_UNSET */
    int keep_expired;               /* WSockTokenExpiry keep: 1, close: 0, WSOCK_UNSET */
};

static wsock_token_conf *token_conf(cmd_parms *cmd, void *conf)
{
    wsock_dir_conf *d = conf;

    if (d->token == NULL) {
        d->token = apr_pcalloc(cmd->pool, sizeof(*d->token));
        d->token->enabled = WSOCK_UNSET;
        d->token->source = WSOCK_UNSET;
        d->token->leeway = WSOCK_UNSET;
        d->token->keep_expired = WSOCK_UNSET;
    }
    return d->token;
}

typedef struct {
    void *bytes;
    apr_size_t size;
} secret_buf;

static apr_status_t wipe_secret(void *data)
{
    secret_buf *b = data;

    OPENSSL_cleanse(b->bytes, b->size);
    return APR_SUCCESS;
}

/* The secret file's bytes, without trailing line ends (files made with
 * echo end in one). */
static const char *read_secret(cmd_parms *cmd, const char *arg, wsock_token_conf *t)
{
    const char *path = ap_server_root_relative(cmd->temp_pool, arg);
    apr_finfo_t fi;
    apr_file_t *f;
    apr_status_t rv;
    apr_size_t n = 0;
    secret_buf *wipe;
    char *buf;

    if (path == NULL) {
        return apr_psprintf(cmd->pool, "WSockTokenAuth: invalid path '%s'", arg);
    }
    rv = apr_stat(&fi, path, APR_FINFO_TYPE | APR_FINFO_SIZE | APR_FINFO_PROT, cmd->temp_pool);
    if (rv == APR_SUCCESS && fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "WSockTokenAuth: %s is not a file", path);
    }
    if (rv == APR_SUCCESS && fi.size > SECRET_MAX) {
        return apr_psprintf(cmd->pool, "WSockTokenAuth: %s is larger than 64K", path);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, cmd->temp_pool);
    }
    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "WSockTokenAuth: cannot read the secret file %s: %pm",
                            path, &rv);
    }
    wipe = apr_palloc(cmd->pool, sizeof(*wipe));
    wipe->size = (apr_size_t)fi.size + 1;
    wipe->bytes = buf = apr_palloc(cmd->pool, wipe->size);
    apr_pool_cleanup_register(cmd->pool, wipe, wipe_secret, apr_pool_cleanup_null);
    rv = apr_file_read_full(f, buf, (apr_size_t)fi.size, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        return apr_psprintf(cmd->pool, "WSockTokenAuth: cannot read the secret file %s: %pm",
                            path, &rv);
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    t->secret = (const unsigned char *)buf;
    t->secret_len = n;
    if (n == 0) {
        return apr_psprintf(cmd->pool, "WSockTokenAuth: the secret file %s is empty", path);
    }
    if (n < SECRET_MIN) {
        return apr_psprintf(cmd->pool, "WSockTokenAuth: the secret in %s has %" APR_SIZE_T_FMT
                            " bytes; HS256 needs at least 32 (e.g. openssl rand -base64 48)",
                            path, n);
    }
    if (fi.protection & APR_FPROT_WREAD) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                     WSOCKNO(0710) "WSockTokenAuth: the secret file %s is readable by every "
                     "user of this machine; make it readable by root only (chmod 600)",
                     path);
    }
    return NULL;
}

const char *wsock_cmd_token_auth(cmd_parms *cmd, void *conf, const char *arg)
{
    wsock_token_conf *t = token_conf(cmd, conf);

    if (strcasecmp(arg, "off") == 0) {
        t->enabled = 0;
        return NULL;
    }
    t->enabled = 1;
    return read_secret(cmd, arg, t);
}

const char *wsock_cmd_token_source(cmd_parms *cmd, void *conf, const char *where,
                                   const char *name)
{
    wsock_token_conf *t = token_conf(cmd, conf);

    if (strcasecmp(where, "protocol") == 0) {
        if (name) {
            return "WSockTokenSource protocol takes no name (the token follows "
                   WSOCK_TOKEN_PROTOCOL " in Sec-WebSocket-Protocol)";
        }
        t->source = TOKEN_FROM_PROTOCOL;
    }
    else if (strcasecmp(where, "query") == 0) {
        t->source = TOKEN_FROM_QUERY;
    }
    else if (strcasecmp(where, "cookie") == 0) {
        t->source = TOKEN_FROM_COOKIE;
    }
    else {
        return apr_psprintf(cmd->pool, "WSockTokenSource: '%s' is not protocol, query or "
                            "cookie", where);
    }
    t->name = name;                 /* NULL: the default name */
    return NULL;
}

const char *wsock_cmd_token_audience(cmd_parms *cmd, void *conf, const char *arg)
{
    token_conf(cmd, conf)->audience = arg;
    return NULL;
}

const char *wsock_cmd_token_leeway(cmd_parms *cmd, void *conf, const char *arg)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);

    if (end == arg || *end || v < 0 || v > MAX_LEEWAY) {
        return apr_psprintf(cmd->pool, "WSockTokenLeeway: '%s' is not a number of seconds "
                            "from 0 to %d", arg, MAX_LEEWAY);
    }
    token_conf(cmd, conf)->leeway = v;
    return NULL;
}

const char *wsock_cmd_token_expiry(cmd_parms *cmd, void *conf, const char *arg)
{
    if (strcasecmp(arg, "close") == 0 || strcasecmp(arg, "keep") == 0) {
        token_conf(cmd, conf)->keep_expired = strcasecmp(arg, "keep") == 0;
        return NULL;
    }
    return apr_psprintf(cmd->pool, "WSockTokenExpiry: '%s' is not close or keep", arg);
}

wsock_token_conf *wsock_token_conf_merge(apr_pool_t *pool, const wsock_token_conf *base,
                                         const wsock_token_conf *add)
{
    wsock_token_conf *t;

    if (base == NULL || add == NULL) {
        return (wsock_token_conf *)(add ? add : base);
    }
    t = apr_pmemdup(pool, base, sizeof(*t));
    if (add->enabled != WSOCK_UNSET) {
        t->enabled = add->enabled;
        t->secret = add->secret;
        t->secret_len = add->secret_len;
    }
    if (add->source != WSOCK_UNSET) {
        t->source = add->source;
        t->name = add->name;
    }
    if (add->audience) {
        t->audience = add->audience;
    }
    if (add->leeway != WSOCK_UNSET) {
        t->leeway = add->leeway;
    }
    if (add->keep_expired != WSOCK_UNSET) {
        t->keep_expired = add->keep_expired;
    }
    return t;
}

/* "access_token, <jwt>": the item after the marker. */
static const char *token_from_protocols(apr_pool_t *pool, const char *offer)
{
    char *list, *item, *state;
    int next = 0;

    if (offer == NULL) {
        return NULL;
    }
    list = apr_pstrdup(pool, offer);
    for (item = apr_strtok(list, ", \t", &state); item; item = apr_strtok(NULL, ", \t", &state)) {
        if (next) {
            return item;
        }
        next = strcmp(item, WSOCK_TOKEN_PROTOCOL) == 0;
    }
    return NULL;
}

static int refuse(request_rec *r, const char *why, int had_token)
{
    /* The token itself is never logged: it is a credential. */
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  WSOCKNO(0711) "WebSocket handshake for %s refused with 401: token %s",
                  r->uri, why);
    /* RFC 6750 §3 */
    apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                   had_token ? "Bearer error=\"invalid_token\"" : "Bearer");
    return HTTP_UNAUTHORIZED;
}

/* When a WebSocket opened with these claims must close: the token's exp
 * plus the leeway, as when it was checked; 0 for never. */
static apr_time_t expiry(const wsock_token_conf *t, const apr_table_t *claims,
                         apr_int64_t leeway)
{
    const char *exp = apr_table_get(claims, "exp");
    double sec;
    char *end;

    if (t->keep_expired == 1 || exp == NULL) {
        return 0;
    }
    sec = strtod(exp, &end) + (double)leeway;
    if (end == exp || !(sec > 0) || sec >= 9.2e12) {
        return 0;                   /* verified already: out of apr_time_t's range */
    }
    return (apr_time_t)(sec * (double)APR_USEC_PER_SEC);
}

int wsock_token_check(request_rec *r, const wsock_token_conf *t, const char **protocol,
                      apr_table_t **claims, apr_time_t *expires)
{
    int source = t && t->source != WSOCK_UNSET ? t->source : DEFAULT_SOURCE;
    const char *name = t && t->name ? t->name : DEFAULT_NAME;
    const char *token = NULL;
    apr_table_t *args;
    wsock_jwt_params params;
    wsock_jwt_status st;

    *claims = NULL;
    *expires = 0;
    if (t == NULL || t->enabled != 1) {
        return OK;
    }
    if (source == TOKEN_FROM_PROTOCOL) {
        token = token_from_protocols(r->pool,
                                     apr_table_get(r->headers_in, "Sec-WebSocket-Protocol"));
    }
    else if (source == TOKEN_FROM_QUERY) {
        ap_args_to_table(r, &args);
        token = apr_table_get(args, name);
    }
    else if (ap_cookie_read(r, name, &token, 0) != APR_SUCCESS) {
        token = NULL;
    }
    if (token == NULL || *token == '\0') {
        return refuse(r, apr_psprintf(r->pool, "missing (expected %s %s)",
                                      source == TOKEN_FROM_PROTOCOL
                                          ? "in Sec-WebSocket-Protocol after"
                                          : source == TOKEN_FROM_QUERY ? "in query argument"
                                                                       : "in cookie",
                                      source == TOKEN_FROM_PROTOCOL ? WSOCK_TOKEN_PROTOCOL
                                                                    : name), 0);
    }

    params.key = t->secret;
    params.key_len = t->secret_len;
    params.audience = t->audience;
    params.now = (apr_int64_t)apr_time_sec(r->request_time);
    params.leeway = t->leeway != WSOCK_UNSET ? t->leeway : DEFAULT_LEEWAY;
    st = wsock_jwt_verify(r->pool, token, &params, claims);
    if (st != WSOCK_JWT_OK) {
        return refuse(r, wsock_jwt_status_text(st), 1);
    }
    *expires = expiry(t, *claims, params.leeway);
    if (source == TOKEN_FROM_PROTOCOL && *protocol == NULL) {
        *protocol = WSOCK_TOKEN_PROTOCOL;
    }
    return OK;
}

/* ---- the claims, for the connection's life ---------------------------- */

static int copy_claim(void *to, const char *name, const char *value)
{
    apr_table_set(to, name, value);     /* copies both into to's pool */
    return 1;
}

void wsock_token_attach(wsock_conn *wc, const apr_table_t *claims, apr_time_t expires)
{
    wc->token_expires = expires;
    if (claims == NULL) {
        return;
    }
    /* Set before the connection is shared with any other thread, and never
     * changed: readers on any thread only look it up (a field of its own:
     * the pool's userdata is a hash other code may change meanwhile). */
    wc->f_claims = apr_table_make(wc->pool, apr_table_elts(claims)->nelts);
    apr_table_do(copy_claim, wc->f_claims, claims, NULL);
}

const char *wsock_token_claim(const wsock_conn *wc, const char *name)
{
    return name && wc->f_claims ? apr_table_get(wc->f_claims, name) : NULL;
}
