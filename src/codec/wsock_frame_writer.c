/*
 * wsock_frame_writer.c — frame headers for outgoing frames (RFC 6455 §5.2),
 * always with the minimal length encoding.
 */
#include <string.h>

#include "wsock_codec.h"

size_t wsock_frame_header_size(uint64_t payload_len, int masked)
{
    size_t n = 2;

    if (payload_len > 0xFFFF) {
        n += 8;
    }
    else if (payload_len > 125) {
        n += 2;
    }
    return n + (masked ? 4 : 0);
}

size_t wsock_frame_header_write(uint8_t *out, int fin, wsock_opcode op,
                                uint64_t payload_len, const uint8_t mask_key[4])
{
    return wsock_frame_header_write_rsv(out, fin, 0, op, payload_len, mask_key);
}

size_t wsock_frame_header_write_rsv(uint8_t *out, int fin, unsigned rsv, wsock_opcode op,
                                    uint64_t payload_len, const uint8_t mask_key[4])
{
    size_t n = 2;
    uint8_t mask_bit = mask_key ? 0x80 : 0x00;

    out[0] = (uint8_t)((fin ? 0x80 : 0x00) | (rsv & 0x70) | (op & 0x0F));
    if (payload_len <= 125) {
        out[1] = (uint8_t)(mask_bit | payload_len);
    }
    else if (payload_len <= 0xFFFF) {
        out[1] = (uint8_t)(mask_bit | 126);
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)(payload_len & 0xFF);
        n = 4;
    }
    else {
        out[1] = (uint8_t)(mask_bit | 127);
        for (int i = 0; i < 8; i++) {
            out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        }
        n = 10;
    }
    if (mask_key) {
        memcpy(out + n, mask_key, 4);
        n += 4;
    }
    return n;
}
