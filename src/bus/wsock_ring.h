/*
 * wsock_ring.h — a ring of variable-size messages in memory that several
 * processes map (the in-server bus, docs/bus.md).  Pure C, no locking: the
 * caller holds the bus lock around every call.
 *
 * Positions are byte counts since the ring was made (64-bit, never wrap),
 * so "how far behind is this reader" is a subtraction.  A record never
 * wraps around the end of the data area: the writer pads to the end first.
 * When the ring is full the oldest records are overwritten; a reader whose
 * position fell behind the oldest whole record has lost messages and is
 * told so.
 */
#ifndef WSOCK_RING_H
#define WSOCK_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t head;          /* where the next record goes */
    uint64_t tail;          /* the oldest whole record */
    uint64_t size;          /* bytes in data[], a multiple of 8 */
    uint64_t records;       /* records ever written */
    unsigned char data[];
} wsock_ring;

#define WSOCK_RING_TEXT 1u  /* the payload is a text message */

/* One message as a reader sees it (pointers into a copied batch). */
typedef struct {
    uint32_t origin;        /* the publishing process */
    uint32_t flags;         /* WSOCK_RING_TEXT */
    uint32_t seq;           /* low 32 bits of the record's number: gaps = lost */
    const char *room;       /* not NUL-terminated */
    size_t room_len;
    const unsigned char *payload;
    size_t len;
} wsock_ring_msg;

/* Lays a ring over bytes of memory (at least 4096). */
void wsock_ring_init(wsock_ring *r, size_t bytes);

/* The largest payload + room name a record may carry: half the ring, so a
 * record can always be written. */
size_t wsock_ring_max_message(const wsock_ring *r);

/* Appends a record, overwriting the oldest as needed.  0, or -1 when it is
 * larger than wsock_ring_max_message(). */
int wsock_ring_put(wsock_ring *r, uint32_t origin, uint32_t flags, const char *room,
                   size_t room_len, const void *payload, size_t len);

/* Copies whole records from *pos on into buf (at most cap bytes) and moves
 * *pos past them.  Returns the bytes copied (parse them with
 * wsock_ring_next).  If *pos had fallen behind the oldest record, it first
 * jumps to it and *lapped is set to 1.  A record larger than cap is not
 * copied: the return is 0 while wsock_ring_pending() is not; *need then
 * says how large buf must be. */
size_t wsock_ring_copy(const wsock_ring *r, uint64_t *pos, unsigned char *buf, size_t cap,
                       int *lapped, size_t *need);

/* Bytes between pos and the head (0: nothing new). */
uint64_t wsock_ring_pending(const wsock_ring *r, uint64_t pos);

/* Reads the record at *off of a batch made by wsock_ring_copy and moves
 * *off past it; 0 at the end of the batch. */
int wsock_ring_next(const unsigned char *batch, size_t len, size_t *off, wsock_ring_msg *m);

#endif /* WSOCK_RING_H */
