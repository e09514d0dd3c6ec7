/*
 * wsock_pmd.h — negotiation of permessage-deflate (RFC 7692 §5, §7.1):
 * reads the client's Sec-WebSocket-Extensions offers, picks the first one
 * the location's policy can accept and writes the answer.
 *
 * Pure: no Apache, no APR, no allocation; unit-tested on its own.
 */
#ifndef WSOCK_PMD_H
#define WSOCK_PMD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a location allows (WSockCompression's parameters). */
typedef struct {
    int server_no_context_takeover; /* 1: answer with it even when not offered */
    int client_no_context_takeover; /* 1: answer with it even when not offered */
    int server_max_window_bits;     /* 9..15: the largest window we compress with */
    int client_max_window_bits;     /* 8..15: asked of a client that offers
                                       client_max_window_bits (15 = no limit) */
} wsock_pmd_policy;

/* What both sides follow once accepted. */
typedef struct {
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits;     /* 8..15; 8: we send uncompressed (zlib
                                       cannot write a 256-byte window) */
    int client_max_window_bits;     /* 8..15: the window to inflate with */
} wsock_pmd_agreed;

typedef enum {
    WSOCK_PMD_MALFORMED = -1, /* the header breaks RFC 6455 §9.1's grammar: 400 */
    WSOCK_PMD_NONE      = 0,  /* no permessage-deflate offer we can accept */
    WSOCK_PMD_ACCEPTED  = 1   /* *agreed and response are set */
} wsock_pmd_outcome;

/* Longest answer wsock_pmd_negotiate writes, with its NUL. */
#define WSOCK_PMD_RESPONSE_MAX 160

/* header: every Sec-WebSocket-Extensions value of the request, comma-joined
 * (NULL: none).  Offers of other extensions are skipped; a permessage-deflate
 * offer with an unknown or repeated parameter or an invalid value is declined
 * and the next one tried.  On WSOCK_PMD_ACCEPTED, response holds the
 * Sec-WebSocket-Extensions value to answer with.  *why (may be NULL) gets a
 * static text saying why nothing was accepted, for the log.
 *
 * Details of the contract (tests/unit/test_pmd.c holds them to it):
 *   - A syntax error anywhere in header is MALFORMED, even after an offer
 *     that could be accepted.  Empty list elements (", ,") are tolerated;
 *     NULL, empty or only whitespace and commas is NONE.  Quoted values
 *     must be tokens once unescaped (RFC 6455 §9.1).
 *   - Extension and parameter names are compared without regard to case;
 *     the answer spells them in lower case.
 *   - server_max_window_bits needs a value, client_max_window_bits may
 *     have one: 8..15 in decimal, no leading zero, token or quoted.
 *   - Agreed: each no_context_takeover is offered || policy; the server
 *     window is min(offered or 15, policy); the client window is
 *     min(offered value or 15, policy) when the offer holds
 *     client_max_window_bits, else 15 (§7.1.2.2: it may not be asked).
 *   - Answer: "permessage-deflate", then in this order
 *     "; server_no_context_takeover" and "; client_no_context_takeover"
 *     when agreed, "; server_max_window_bits=N" when offered or N < 15,
 *     "; client_max_window_bits=N" only when offered, and then when the
 *     offer gave a value or N < 15.  It is at most 128 bytes.
 *   - On ACCEPTED *why is set to NULL.  Otherwise response is "" and
 *     *agreed is left as it was; on NONE *why names the first declined
 *     offer's reason, or says there was no offer.
 *   - One pass over header, no allocation: linear in its length.
 *   - A policy window below 8 counts as 8 (one above 15 cannot matter). */
wsock_pmd_outcome wsock_pmd_negotiate(const char *header, const wsock_pmd_policy *policy,
                                      wsock_pmd_agreed *agreed,
                                      char response[WSOCK_PMD_RESPONSE_MAX],
                                      const char **why);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_PMD_H */
