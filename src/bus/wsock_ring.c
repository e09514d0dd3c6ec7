/*
 * wsock_ring.c — the bus's message ring (see wsock_ring.h).
 */
#include <string.h>

#include "wsock_ring.h"

/* Record header; the room name and the payload follow it, and the whole
 * record is padded to a multiple of 8 so every header is aligned. */
typedef struct {
    uint32_t len;           /* the whole record, padding included */
    uint32_t flags;         /* WSOCK_RING_TEXT, or PAD_FLAG */
    uint32_t origin;
    uint32_t room_len;
    uint32_t payload_len;
    uint32_t seq;           /* low 32 bits of records at writing */
} rec_hdr;

#define HDR sizeof(rec_hdr)
#define PAD_FLAG 0x80000000u        /* filler up to the end of data[] */
#define ALIGN8(n) (((n) + 7) & ~(uint64_t)7)

void wsock_ring_init(wsock_ring *r, size_t bytes)
{
    memset(r, 0, sizeof(*r));
    r->size = (bytes - sizeof(*r)) & ~(uint64_t)7;
}

size_t wsock_ring_max_message(const wsock_ring *r)
{
    return (size_t)(r->size / 2 - HDR);
}

/* How many bytes the record at pos takes (the skip to the start of data[]
 * when too little is left there for a header). */
static uint64_t record_span(const wsock_ring *r, uint64_t pos)
{
    uint64_t off = pos % r->size, rem = r->size - off;
    rec_hdr h;

    if (rem < HDR) {
        return rem;
    }
    memcpy(&h, r->data + off, HDR);
    return h.len;
}

int wsock_ring_put(wsock_ring *r, uint32_t origin, uint32_t flags, const char *room,
                   size_t room_len, const void *payload, size_t len)
{
    uint64_t need, pos = r->head, off, rem, pad = 0;
    rec_hdr h;

    if (room_len + len > wsock_ring_max_message(r)) {
        return -1;
    }
    need = ALIGN8(HDR + room_len + len);
    off = pos % r->size;
    rem = r->size - off;
    if (rem < need) {
        pad = rem;                  /* records do not wrap */
    }
    while (pos + pad + need - r->tail > r->size) {
        r->tail += record_span(r, r->tail);     /* overwrite the oldest */
    }
    if (pad) {
        if (pad >= HDR) {
            memset(&h, 0, sizeof(h));
            h.len = (uint32_t)pad;
            h.flags = PAD_FLAG;
            memcpy(r->data + off, &h, HDR);
        }
        pos += pad;
        off = 0;
    }
    memset(&h, 0, sizeof(h));
    h.len = (uint32_t)need;
    h.flags = flags & ~PAD_FLAG;
    h.origin = origin;
    h.room_len = (uint32_t)room_len;
    h.payload_len = (uint32_t)len;
    h.seq = (uint32_t)r->records;
    memcpy(r->data + off, &h, HDR);
    memcpy(r->data + off + HDR, room, room_len);
    if (len) {
        memcpy(r->data + off + HDR + room_len, payload, len);
    }
    r->head = pos + need;
    r->records++;
    return 0;
}

uint64_t wsock_ring_pending(const wsock_ring *r, uint64_t pos)
{
    return pos < r->head ? r->head - pos : 0;
}

size_t wsock_ring_copy(const wsock_ring *r, uint64_t *pos, unsigned char *buf, size_t cap,
                       int *lapped, size_t *need)
{
    size_t used = 0;

    *need = 0;
    if (*pos < r->tail || *pos > r->head) {
        *pos = r->tail;
        *lapped = 1;
    }
    while (*pos < r->head) {
        uint64_t off = *pos % r->size, rem = r->size - off;
        rec_hdr h;

        if (rem < HDR) {
            *pos += rem;
            continue;
        }
        memcpy(&h, r->data + off, HDR);
        if (h.flags & PAD_FLAG) {
            *pos += h.len;
            continue;
        }
        if (h.len > cap - used) {
            if (used == 0) {
                *need = h.len;      /* buf is too small for this one */
            }
            break;
        }
        memcpy(buf + used, r->data + off, h.len);
        used += h.len;
        *pos += h.len;
    }
    return used;
}

int wsock_ring_next(const unsigned char *batch, size_t len, size_t *off, wsock_ring_msg *m)
{
    rec_hdr h;

    if (*off + HDR > len) {
        return 0;
    }
    memcpy(&h, batch + *off, HDR);
    if (h.len < HDR || *off + h.len > len) {
        return 0;
    }
    m->origin = h.origin;
    m->flags = h.flags;
    m->seq = h.seq;
    m->room = (const char *)batch + *off + HDR;
    m->room_len = h.room_len;
    m->payload = batch + *off + HDR + h.room_len;
    m->len = h.payload_len;
    *off += h.len;
    return 1;
}
