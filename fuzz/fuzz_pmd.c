/*
 * fuzz_pmd.c — libFuzzer harness for the permessage-deflate negotiation
 * (src/handshake/wsock_pmd.c).
 *
 * The first byte of the input picks the location's policy:
 *   bit 0: server_no_context_takeover, bit 1: client_no_context_takeover,
 *   bits 2-4: server_max_window_bits = 15 - n (at least 9),
 *   bits 5-7: client_max_window_bits = 15 - n;
 * the rest, up to a NUL, is the Sec-WebSocket-Extensions value (httpd
 * never hands over a header with a NUL in it).  The header is negotiated
 * under that policy and under one that asks nothing, and the harness
 * aborts when an invariant breaks:
 *   - the outcome is MALFORMED, NONE or ACCEPTED, and the same under both
 *     policies (a policy narrows values, it never decides acceptance);
 *   - a refusal says why and writes no answer;
 *   - an accepted answer fits WSOCK_PMD_RESPONSE_MAX, is one
 *     permessage-deflate element, and negotiated again as an offer under
 *     the policy that asks nothing gives itself and the same agreement
 *     (so it re-parses, holds only known, single, valid parameters, and
 *     states every value both sides follow);
 *   - agreed windows are 8..15 and within the policy; the no-context flags
 *     are 0 or 1 and at least what the policy asks; client_max_window_bits
 *     is answered only when the client's header named it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wsock_pmd.h"
#include "fuzz_check.h"

static const wsock_pmd_policy open_policy = { 0, 0, 15, 15 };

static void policy_from_byte(uint8_t b, wsock_pmd_policy *pol)
{
    pol->server_no_context_takeover = b & 1;
    pol->client_no_context_takeover = (b >> 1) & 1;
    pol->server_max_window_bits = 15 - ((b >> 2) & 7);
    if (pol->server_max_window_bits < 9) {
        pol->server_max_window_bits = 9;
    }
    pol->client_max_window_bits = 15 - (b >> 5);
}

/* 1 if text holds word, whatever the case. */
static int has_word(const char *text, const char *word)
{
    size_t n = strlen(word);

    for (; *text; text++) {
        if (strncasecmp(text, word, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_bits(int v)
{
    return v >= 8 && v <= 15;
}

static void check_answer(const char *header, const wsock_pmd_policy *pol,
                         const wsock_pmd_agreed *agreed, const char *response)
{
    wsock_pmd_agreed again;
    char resp2[WSOCK_PMD_RESPONSE_MAX];
    const char *why = "";

    CHECK(memchr(response, '\0', WSOCK_PMD_RESPONSE_MAX) != NULL, "answer not terminated");
    CHECK(strncmp(response, "permessage-deflate", 18) == 0, "answer is not permessage-deflate");
    CHECK(strchr(response, ',') == NULL, "answer holds more than one element");
    CHECK(wsock_pmd_negotiate(response, &open_policy, &again, resp2, &why)
          == WSOCK_PMD_ACCEPTED, "answer does not negotiate");
    CHECK(strcmp(resp2, response) == 0, "answer does not give itself again");
    CHECK(memcmp(&again, agreed, sizeof(again)) == 0, "answer states other values");

    CHECK(agreed->server_no_context_takeover == 0 || agreed->server_no_context_takeover == 1,
          "server_no_context_takeover not 0/1");
    CHECK(agreed->client_no_context_takeover == 0 || agreed->client_no_context_takeover == 1,
          "client_no_context_takeover not 0/1");
    CHECK(agreed->server_no_context_takeover >= pol->server_no_context_takeover,
          "policy's server_no_context_takeover dropped");
    CHECK(agreed->client_no_context_takeover >= pol->client_no_context_takeover,
          "policy's client_no_context_takeover dropped");
    CHECK(is_bits(agreed->server_max_window_bits), "server window out of 8..15");
    CHECK(is_bits(agreed->client_max_window_bits), "client window out of 8..15");
    CHECK(agreed->server_max_window_bits <= pol->server_max_window_bits,
          "server window above the policy");
    if (strstr(response, "client_max_window_bits") != NULL) {
        CHECK(has_word(header, "client_max_window_bits"),
              "asked for client_max_window_bits the client did not offer");
        CHECK(agreed->client_max_window_bits <= pol->client_max_window_bits,
              "client window above the policy");
    }
    else {
        CHECK(agreed->client_max_window_bits == 15, "a client window not stated in the answer");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsock_pmd_policy pol;
    wsock_pmd_agreed agreed, open_agreed;
    char response[WSOCK_PMD_RESPONSE_MAX], open_response[WSOCK_PMD_RESPONSE_MAX];
    const char *why = "", *open_why = "";
    wsock_pmd_outcome out, open_out;
    char *header;

    if (size == 0) {
        return 0;
    }
    policy_from_byte(data[0], &pol);
    header = malloc(size);                        /* size - 1 bytes and a NUL */
    CHECK(header != NULL, "out of memory");
    memcpy(header, data + 1, size - 1);
    header[size - 1] = '\0';

    out = wsock_pmd_negotiate(header, &pol, &agreed, response, &why);
    open_out = wsock_pmd_negotiate(header, &open_policy, &open_agreed, open_response, &open_why);
    CHECK(out == WSOCK_PMD_MALFORMED || out == WSOCK_PMD_NONE || out == WSOCK_PMD_ACCEPTED,
          "outcome");
    CHECK(out == open_out, "the policy changed the outcome");
    CHECK(wsock_pmd_negotiate(header, &pol, &agreed, response, NULL) == out,
          "why == NULL changed the outcome");
    if (out == WSOCK_PMD_ACCEPTED) {
        CHECK(why == NULL && open_why == NULL, "why set on acceptance");
        check_answer(header, &pol, &agreed, response);
        check_answer(header, &open_policy, &open_agreed, open_response);
        /* the policy only narrows what the client's offer allows */
        CHECK(agreed.server_max_window_bits <= open_agreed.server_max_window_bits
              && agreed.client_max_window_bits <= open_agreed.client_max_window_bits
              && agreed.server_no_context_takeover >= open_agreed.server_no_context_takeover
              && agreed.client_no_context_takeover >= open_agreed.client_no_context_takeover,
              "the policy widened the agreement");
    }
    else {
        CHECK(why != NULL && why[0] != '\0', "refusal without a reason");
        CHECK(why == open_why, "the policy changed the reason");
        CHECK(response[0] == '\0' && open_response[0] == '\0', "an answer on a refusal");
    }
    free(header);
    return 0;
}
