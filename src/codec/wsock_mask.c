/*
 * wsock_mask.c — the XOR masking of RFC 6455 §5.3, a word at a time.
 */
#include <string.h>

#include "wsock_codec.h"

void wsock_mask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset)
{
    uint8_t k[4];
    uint64_t k8;
    uint32_t k4;
    size_t i = 0;

    /* Rotate the key so that k[0] applies to data[0]. */
    for (int j = 0; j < 4; j++) {
        k[j] = key[(offset + (size_t)j) & 3];
    }
    memcpy(&k4, k, 4);
    k8 = ((uint64_t)k4 << 32) | k4;

    /* memcpy in and out keeps unaligned access defined; compilers turn the
     * loop into plain 8-byte loads and stores (and vectorise it). */
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        w ^= k8;
        memcpy(data + i, &w, 8);
    }
    for (; i < len; i++) {
        data[i] ^= k[i & 3];
    }
}
