/*
 * wsock_pmd.c — negotiation of permessage-deflate (RFC 7692 §5, §7.1) on
 * the grammar of Sec-WebSocket-Extensions (RFC 6455 §9.1):
 *
 *   extension-list = 1#extension
 *   extension      = token *( ";" extension-param )
 *   extension-param = token [ "=" ( token / quoted-string ) ]
 *
 * with optional whitespace (SP, HTAB) around every separator, and empty
 * list elements tolerated as RFC 7230 §7 asks of a recipient (httpd joins
 * repeated headers with ", ", so an empty one leaves an empty element).
 * A quoted value must still be a token once unescaped (RFC 6455 §9.1).
 *
 * The whole header is parsed even after an offer was accepted: a syntax
 * error anywhere makes it malformed (400), whatever came before.  One pass,
 * no allocation, no recursion: the cost is linear in the header's length.
 *
 * Names are compared without regard to case.  RFC 6455 does not say;
 * Node's ws and Python's websockets compare exactly, but HTTP's tradition
 * for tokens that name codings and their parameters (RFC 7230 §4, RFC 7231
 * §3.1.1.1) is case-insensitive, and the answer always spells the names
 * the RFC's way, which is what every client compares against.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "wsock_pmd.h"

#define PMD_NAME "permessage-deflate"

/* Bits of the four parameters RFC 7692 §7.1 defines for an offer. */
enum {
    P_SERVER_NCT  = 1 << 0,
    P_CLIENT_NCT  = 1 << 1,
    P_SERVER_MWB  = 1 << 2,
    P_CLIENT_MWB  = 1 << 3
};

static const struct {
    const char *name;
    int         bit;
} pmd_params[] = {
    { "server_no_context_takeover", P_SERVER_NCT },
    { "client_no_context_takeover", P_CLIENT_NCT },
    { "server_max_window_bits",     P_SERVER_MWB },
    { "client_max_window_bits",     P_CLIENT_MWB },
};

/* A parameter's value, unescaped; only its first two bytes are kept, all
 * that a window size ("8" to "15") needs; len is the whole length. */
#define VALUE_KEEP 2
typedef struct {
    int    present;
    size_t len;
    char   text[VALUE_KEEP];
} pmd_value;

/* One permessage-deflate offer as it is read. */
typedef struct {
    int         seen;           /* P_* bits of the parameters met so far */
    const char *declined;       /* why it cannot be accepted, or NULL */
    int         server_mwb;     /* 8..15 when P_SERVER_MWB */
    int         client_mwb;     /* 8..15, or 0 for client_max_window_bits
                                   without a value */
} pmd_offer;

/* tchar of RFC 7230 §3.2.6. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

static size_t token_len(const char *p)
{
    size_t n = 0;

    while (is_tchar((unsigned char)p[n])) {
        n++;
    }
    return n;
}

static void value_add(pmd_value *v, char c)
{
    if (v->len < VALUE_KEEP) {
        v->text[v->len] = c;
    }
    v->len++;
}

/* Reads a token or a quoted-string at p into *v; returns the first byte
 * after it, or NULL with *why set when it breaks the grammar. */
static const char *read_value(const char *p, pmd_value *v, const char **why)
{
    v->present = 1;
    v->len = 0;
    if (*p != '"') {
        size_t n = token_len(p);

        if (n == 0) {
            *why = "a parameter has \"=\" but no value";
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            value_add(v, p[i]);
        }
        return p + n;
    }
    for (p++; *p != '"'; p++) {
        if (*p == '\\') {
            p++;                                  /* quoted-pair: the next byte */
        }
        if (*p == '\0') {
            *why = "a quoted value is not terminated";
            return NULL;
        }
        if (!is_tchar((unsigned char)*p)) {
            *why = "a quoted value is not a token once unescaped";
            return NULL;
        }
        value_add(v, *p);
    }
    if (v->len == 0) {
        *why = "a quoted value is empty";
        return NULL;
    }
    return p + 1;
}

/* A window size of RFC 7692 §7.1.2: 8..15 in decimal, no leading zero;
 * 0 if the value is not one. */
static int window_bits(const pmd_value *v)
{
    if (v->len == 1 && (v->text[0] == '8' || v->text[0] == '9')) {
        return v->text[0] - '0';
    }
    if (v->len == 2 && v->text[0] == '1' && v->text[1] >= '0' && v->text[1] <= '5') {
        return 10 + (v->text[1] - '0');
    }
    return 0;
}

/* Applies one parameter to the offer, declining it per RFC 7692 §5 when
 * the parameter is unknown, repeated or has an invalid value. */
static void offer_param(pmd_offer *o, const char *name, size_t len, const pmd_value *v)
{
    int bit = 0;

    if (o->declined) {
        return;
    }
    for (size_t i = 0; i < sizeof(pmd_params) / sizeof(pmd_params[0]); i++) {
        if (strlen(pmd_params[i].name) == len && strncasecmp(name, pmd_params[i].name, len) == 0) {
            bit = pmd_params[i].bit;
        }
    }
    if (bit == 0) {
        o->declined = "permessage-deflate offer declined: unknown parameter";
        return;
    }
    if (o->seen & bit) {
        o->declined = "permessage-deflate offer declined: repeated parameter";
        return;
    }
    o->seen |= bit;
    switch (bit) {
    case P_SERVER_NCT:
    case P_CLIENT_NCT:
        if (v->present) {
            o->declined = "permessage-deflate offer declined: a no_context_takeover "
                          "parameter has a value";
        }
        break;
    case P_SERVER_MWB:
        o->server_mwb = window_bits(v);
        if (o->server_mwb == 0) {
            o->declined = "permessage-deflate offer declined: server_max_window_bits "
                          "is not 8..15";
        }
        break;
    default: /* P_CLIENT_MWB: the value is optional (§7.1.2.2) */
        o->client_mwb = v->present ? window_bits(v) : 0;
        if (v->present && o->client_mwb == 0) {
            o->declined = "permessage-deflate offer declined: client_max_window_bits "
                          "is not 8..15";
        }
        break;
    }
}

/* The smaller of an offered window (8..15) and the policy's; a policy
 * below 8 counts as 8, so that a caller's mistake cannot write a value no
 * client accepts (above 15 needs nothing: the offered value is at most 15). */
static int min_bits(int offered, int policy)
{
    if (policy < 8) {
        policy = 8;
    }
    return offered < policy ? offered : policy;
}

/* What to follow once offer o is accepted under policy, and the answer. */
static void accept_offer(const pmd_offer *o, const wsock_pmd_policy *policy,
                         wsock_pmd_agreed *agreed, char response[WSOCK_PMD_RESPONSE_MAX])
{
    int client_offered = (o->seen & P_CLIENT_MWB) != 0;
    int n;

    agreed->server_no_context_takeover =
        (o->seen & P_SERVER_NCT) || policy->server_no_context_takeover;
    agreed->client_no_context_takeover =
        (o->seen & P_CLIENT_NCT) || policy->client_no_context_takeover;
    agreed->server_max_window_bits = min_bits((o->seen & P_SERVER_MWB) ? o->server_mwb : 15,
                                              policy->server_max_window_bits);
    /* §7.1.2.2: a client that did not offer client_max_window_bits may not
     * be asked for a smaller window: it uses 15 */
    agreed->client_max_window_bits =
        client_offered ? min_bits(o->client_mwb ? o->client_mwb : 15,
                                  policy->client_max_window_bits) : 15;

    /* at most 128 bytes with every parameter: no snprintf below truncates */
    n = snprintf(response, WSOCK_PMD_RESPONSE_MAX, "%s%s%s", PMD_NAME,
                 agreed->server_no_context_takeover ? "; server_no_context_takeover" : "",
                 agreed->client_no_context_takeover ? "; client_no_context_takeover" : "");
    /* §7.1.2.1: may be answered whether offered or not; an offered value
     * must be answered with the same or a smaller one */
    if ((o->seen & P_SERVER_MWB) || agreed->server_max_window_bits < 15) {
        n += snprintf(response + n, WSOCK_PMD_RESPONSE_MAX - (size_t)n,
                      "; server_max_window_bits=%d", agreed->server_max_window_bits);
    }
    /* §7.1.2.2: only when offered; a value the client gave is answered so
     * that both sides state the window the client compresses with */
    if (client_offered && (agreed->client_max_window_bits < 15 || o->client_mwb)) {
        snprintf(response + n, WSOCK_PMD_RESPONSE_MAX - (size_t)n,
                 "; client_max_window_bits=%d", agreed->client_max_window_bits);
    }
}

wsock_pmd_outcome wsock_pmd_negotiate(const char *header, const wsock_pmd_policy *policy,
                                      wsock_pmd_agreed *agreed,
                                      char response[WSOCK_PMD_RESPONSE_MAX],
                                      const char **why)
{
    const char *p = header ? header : "";
    const char *malformed = NULL, *declined = NULL;
    pmd_offer chosen;
    int accepted = 0, offers = 0;

    memset(&chosen, 0, sizeof(chosen));
    response[0] = '\0';
    while (malformed == NULL) {
        size_t len;
        int is_pmd;
        pmd_offer o;

        p = skip_ows(p);
        if (*p == ',') {                          /* an empty list element */
            p++;
            continue;
        }
        if (*p == '\0') {
            break;
        }
        if ((len = token_len(p)) == 0) {
            malformed = "an extension name is missing or is not a token";
            break;
        }
        is_pmd = len == sizeof(PMD_NAME) - 1 && strncasecmp(p, PMD_NAME, len) == 0;
        memset(&o, 0, sizeof(o));
        p = skip_ows(p + len);
        while (*p == ';') {
            const char *name;
            pmd_value v;

            p = skip_ows(p + 1);
            name = p;
            if ((len = token_len(p)) == 0) {
                malformed = "a parameter name is missing or is not a token";
                break;
            }
            p = skip_ows(p + len);
            v.present = 0;
            v.len = 0;
            if (*p == '=') {
                p = read_value(skip_ows(p + 1), &v, &malformed);
                if (p == NULL) {
                    break;
                }
                p = skip_ows(p);
            }
            if (is_pmd) {
                offer_param(&o, name, len, &v);
            }
        }
        if (malformed == NULL && *p != ',' && *p != '\0') {
            malformed = "an extension or parameter is followed by a character that is "
                        "neither \";\" nor \",\"";
        }
        if (malformed || !is_pmd) {
            continue;
        }
        offers++;
        if (o.declined && declined == NULL) {
            declined = o.declined;
        }
        else if (!o.declined && !accepted) {
            chosen = o;
            accepted = 1;
        }
    }

    if (malformed) {
        if (why) {
            *why = malformed;
        }
        return WSOCK_PMD_MALFORMED;
    }
    if (!accepted) {
        if (why) {
            *why = offers ? declined : "no permessage-deflate offer";
        }
        return WSOCK_PMD_NONE;
    }
    accept_offer(&chosen, policy, agreed, response);
    if (why) {
        *why = NULL;
    }
    return WSOCK_PMD_ACCEPTED;
}
