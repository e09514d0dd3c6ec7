/*
 * wsock_close.c — which close codes a peer may send, and how a close
 * payload is built (RFC 6455 §5.5.1, §7.4).
 */
#include <string.h>

#include "wsock_codec.h"

int wsock_close_code_is_valid(unsigned code)
{
    if (code >= 3000 && code <= 4999) {
        return 1;                   /* registered (3xxx) and private (4xxx) */
    }
    switch (code) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011:
    case 1012: case 1013: case 1014:
        return 1;                   /* assigned by IANA for use on the wire */
    default:
        return 0;                   /* 0-999, 1004-1006, 1015, 1016-2999, >= 5000 */
    }
}

size_t wsock_close_payload(uint8_t out[WSOCK_MAX_CONTROL_PAYLOAD], unsigned code,
                           const char *reason, size_t reason_len)
{
    size_t max = WSOCK_MAX_CONTROL_PAYLOAD - 2;

    if (code == 0) {
        return 0;
    }
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)(code & 0xFF);
    if (reason == NULL) {
        return 2;
    }
    if (reason_len > max) {
        /* Cut at a character boundary so the reason stays valid UTF-8. */
        reason_len = max;
        while (reason_len > 0
               && ((const uint8_t *)reason)[reason_len] >= 0x80
               && ((const uint8_t *)reason)[reason_len] < 0xC0) {
            reason_len--;
        }
    }
    memcpy(out + 2, reason, reason_len);
    return 2 + reason_len;
}
