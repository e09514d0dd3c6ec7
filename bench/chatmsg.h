/*
 * chatmsg.h — typical chat traffic for the compression benchmarks: JSON
 * chat messages from a fixed seeded generator, so every run, every client
 * and every server sees the same bytes.
 *
 * Message number seq is always the same JSON object (a user of a fixed
 * roster, an ISO time, a text of common chat words, now and then a reply,
 * mentions, reactions or a link), stamped with a send time.  It starts
 * {"seq":SEQ,"ts":TS, so a receiver reads both back (chatmsg_parse) and
 * checks the whole message by making it again (chatmsg_make) and comparing.
 */
#ifndef CHATMSG_H
#define CHATMSG_H

#include <stddef.h>
#include <stdint.h>

/* Shortest message chatmsg_make can write: the fixed fields. */
#define CHATMSG_MIN 80
/* Largest: sizes above this are not chat messages any more. */
#define CHATMSG_MAX (64 * 1024)

/* Writes message seq, stamped ts, into out (cap >= max + 1; a NUL follows)
 * and returns its length: exactly a length in [min, max] drawn from seq
 * (skewed towards short messages, as chat is: the square of a uniform
 * draw), CHATMSG_MIN <= min <= max <= CHATMSG_MAX.  Valid UTF-8 and JSON. */
size_t chatmsg_make(char *out, size_t cap, uint64_t seq, uint64_t ts, size_t min,
                    size_t max);

/* Reads seq and ts of a message of chatmsg_make; 0 if msg does not start
 * like one. */
int chatmsg_parse(const uint8_t *msg, size_t len, uint64_t *seq, uint64_t *ts);

#endif /* CHATMSG_H */
