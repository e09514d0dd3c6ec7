/*
 * wsock_origin.c — WSockAllowedOrigins: parsing the allowed origins and
 * judging a request's Origin header (RFC 6454 serialization:
 * scheme "://" host [ ":" port ], no path).
 *
 * Schemes and hosts compare case-insensitively (both are lowercased when
 * parsed), and a port that is the scheme's default compares equal to no
 * port, so "https://Example.com:443" is "https://example.com".
 *
 * "same-origin" is judged against what the server is configured to be
 * (wsock_origin_self), never against the request's Host header: under DNS
 * rebinding, an attacker's page on http://evil.example:8080 whose name now
 * resolves to this server sends Origin and Host both evil.example:8080,
 * and would otherwise reach endpoints protected only by where they listen
 * (Require ip 127.0.0.1, an intranet).
 */
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "wsock_origin.h"

typedef struct {
    char scheme[32];
    char host[256];    /* lowercase; a wildcard rule keeps ".domain" */
    int port;          /* given, or the scheme's default; 0: the scheme has none */
    int wildcard;      /* "*.domain": any host below domain, not domain itself */
} origin_t;

struct wsock_origin_policy {
    int any;                  /* "any": no check at all */
    int same_origin;          /* "same-origin" */
    apr_array_header_t *rules;  /* origin_t */
};

static int default_port(const char *scheme)
{
    if (strcmp(scheme, "http") == 0 || strcmp(scheme, "ws") == 0) {
        return 80;
    }
    if (strcmp(scheme, "https") == 0 || strcmp(scheme, "wss") == 0) {
        return 443;
    }
    return 0;
}

static int is_host_char(char c)
{
    return apr_isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* "host[:port]" or "[v6]:port" of len bytes into o->host and o->port
 * (dflt when no port is given).  0 on success, -1 if malformed. */
static int parse_hostport(const char *s, size_t len, int dflt, origin_t *o)
{
    const char *end = s + len, *hend, *p;

    if (len > 0 && *s == '[') {
        hend = memchr(s, ']', len);
        if (hend == NULL) {
            return -1;
        }
        for (p = s + 1; p < hend; p++) {
            if (!(apr_isxdigit(*p) || *p == ':' || *p == '.')) {
                return -1;
            }
        }
        hend++;
    }
    else {
        for (hend = s; hend < end && *hend != ':'; hend++) {
            if (!is_host_char(*hend)) {
                return -1;
            }
        }
    }
    if (hend == s || (size_t)(hend - s) >= sizeof(o->host)) {
        return -1;
    }
    for (p = s; p < hend; p++) {
        o->host[p - s] = (char)apr_tolower(*p);
    }
    o->host[hend - s] = '\0';
    o->port = dflt;
    if (hend < end) {
        int port = 0;

        if (*hend != ':' || end - hend < 2 || end - hend > 6) {
            return -1;
        }
        for (p = hend + 1; p < end; p++) {
            if (!apr_isdigit(*p)) {
                return -1;
            }
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535) {
            return -1;
        }
        o->port = port;
    }
    return 0;
}

/* "scheme://host[:port]" into o; a leading "*." on the host is allowed
 * (and marks a wildcard) only where allow_wildcard.  0 or -1. */
static int parse_origin(const char *s, int allow_wildcard, origin_t *o)
{
    const char *sep = strstr(s, "://"), *host;
    size_t n;

    memset(o, 0, sizeof(*o));
    if (sep == NULL || sep == s || (size_t)(sep - s) >= sizeof(o->scheme)
        || !apr_isalpha(*s)) {
        return -1;
    }
    for (n = 0; s + n < sep; n++) {
        if (!(apr_isalnum(s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')) {
            return -1;
        }
        o->scheme[n] = (char)apr_tolower(s[n]);
    }
    host = sep + 3;
    if (allow_wildcard && host[0] == '*' && host[1] == '.') {
        o->wildcard = 1;
        host++;                     /* keep the dot: ".domain" */
    }
    if (parse_hostport(host, strlen(host), default_port(o->scheme), o) != 0) {
        return -1;
    }
    /* "*." must be followed by a real domain: "*.com." or "*.." are not. */
    return (o->wildcard && (o->host[1] == '\0' || o->host[1] == '.')) ? -1 : 0;
}

const char *wsock_origin_policy_add(apr_pool_t *pool, wsock_origin_policy **policy,
                                    const char *word)
{
    wsock_origin_policy *pol = *policy;
    origin_t rule;

    if (pol == NULL) {
        pol = *policy = apr_pcalloc(pool, sizeof(*pol));
        pol->rules = apr_array_make(pool, 2, sizeof(origin_t));
    }
    if (strcasecmp(word, "any") == 0) {
        pol->any = 1;
    }
    else if (strcasecmp(word, "same-origin") == 0) {
        pol->same_origin = 1;
    }
    else if (parse_origin(word, 1, &rule) == 0) {
        APR_ARRAY_PUSH(pol->rules, origin_t) = rule;
    }
    else {
        return apr_psprintf(pool, "WSockAllowedOrigins: '%s' is not an origin "
                            "(scheme://host[:port] or scheme://*.domain[:port], no path), "
                            "same-origin or any", word);
    }
    if (pol->any && (pol->same_origin || pol->rules->nelts > 0)) {
        return "WSockAllowedOrigins: 'any' allows every origin and stands alone";
    }
    return NULL;
}

static int rule_matches(const origin_t *rule, const origin_t *o)
{
    size_t hl, sl;

    if (strcmp(rule->scheme, o->scheme) != 0 || rule->port != o->port) {
        return 0;
    }
    if (!rule->wildcard) {
        return strcmp(rule->host, o->host) == 0;
    }
    hl = strlen(o->host);
    sl = strlen(rule->host);
    return hl > sl && o->host[0] != '.' && strcmp(o->host + hl - sl, rule->host) == 0;
}

/* An IP literal ("192.0.2.1", "[2001:db8::1]", or an address as APR
 * writes it, without brackets) as 16 bytes, IPv4 mapped into IPv6; 0 if
 * text is not one. */
static int ip_bytes(const char *text, unsigned char out[16])
{
    static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    char buf[64];
    size_t n = strlen(text);

    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, out + 12) == 1) {
        memcpy(out, v4_mapped, sizeof(v4_mapped));
        return 1;
    }
    return inet_pton(AF_INET6, buf, out) == 1;
}

static int is_loopback(const unsigned char a[16])
{
    static const unsigned char v6_loopback[16] = { 0, 0, 0, 0, 0, 0, 0, 0,
                                                   0, 0, 0, 0, 0, 0, 0, 1 };
    static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    return memcmp(a, v6_loopback, 16) == 0
           || (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0 && a[12] == 127);
}

/* A DNS name compared as DNS compares it: without case, and
 * "example.com." (fully qualified) is "example.com". */
static int same_name(const char *name, const char *host, size_t host_len)
{
    size_t n = name ? strlen(name) : 0;

    if (n > 1 && name[n - 1] == '.') {
        n--;
    }
    return n > 0 && n == host_len && strncasecmp(name, host, n) == 0;
}

/* host (lowercase, of an Origin) names the server itself. */
static int is_self_host(const char *host, const wsock_origin_self *self)
{
    char name[sizeof(((origin_t *)0)->host)];
    unsigned char a[16], local[16];
    size_t n = strlen(host);
    int i;

    if (n > 1 && host[n - 1] == '.') {
        n--;                        /* "example.com." */
    }
    memcpy(name, host, n);
    name[n] = '\0';
    if (same_name(self->server_name, name, n)) {
        return 1;
    }
    for (i = 0; self->aliases && i < self->aliases->nelts; i++) {
        if (same_name(APR_ARRAY_IDX(self->aliases, i, const char *), name, n)) {
            return 1;
        }
    }
    for (i = 0; self->wild_match && self->wild_aliases && i < self->wild_aliases->nelts; i++) {
        if (self->wild_match(APR_ARRAY_IDX(self->wild_aliases, i, const char *), name)) {
            return 1;
        }
    }
    /* The address the connection arrived on: no DNS answer can make a
     * page's origin an address of this server unless the page is ours;
     * nor "localhost", which browsers never ask DNS about. */
    if (self->local_ip == NULL || !ip_bytes(self->local_ip, local)) {
        return 0;
    }
    if (ip_bytes(name, a)) {
        return memcmp(a, local, 16) == 0;
    }
    return strcmp(name, "localhost") == 0 && is_loopback(local);
}

/* The server's own origin (see wsock_origin_self). */
static int is_same_origin(const origin_t *o, const wsock_origin_self *self)
{
    if (self == NULL || strcmp(o->scheme, self->https ? "https" : "http") != 0) {
        return 0;
    }
    if (o->port != self->local_port && (self->name_port == 0 || o->port != self->name_port)) {
        return 0;
    }
    return is_self_host(o->host, self);
}

int wsock_origin_allowed(const wsock_origin_policy *policy, const char *origin,
                         const wsock_origin_self *self)
{
    origin_t o;

    if (origin == NULL || (policy && policy->any)) {
        return 1;
    }
    /* "null" (sandboxed frames, file: pages) and anything malformed
     * match nothing but "any". */
    if (parse_origin(origin, 0, &o) != 0) {
        return 0;
    }
    if ((policy == NULL || policy->same_origin) && is_same_origin(&o, self)) {
        return 1;
    }
    if (policy) {
        for (int i = 0; i < policy->rules->nelts; i++) {
            if (rule_matches(&APR_ARRAY_IDX(policy->rules, i, origin_t), &o)) {
                return 1;
            }
        }
    }
    return 0;
}
