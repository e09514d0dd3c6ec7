/*
 * wsock_ratelimit.h — token buckets for WSockRateLimit.
 *
 * A bucket holds up to `burst` tokens and gains `rate` tokens per second;
 * taking n tokens succeeds only while n are there.  Pure C, no clock of its
 * own: the caller passes the time (microseconds on any monotonic or wall
 * scale), so the arithmetic is unit-tested without waiting.
 *
 * Tokens are kept in millionths, so that `rate` tokens per second times a
 * time in microseconds is an exact count: no rounding, no drift, however
 * often the bucket is refilled.
 */
#ifndef WSOCK_RATELIMIT_H
#define WSOCK_RATELIMIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest rate and burst accepted: 2^40 (1 TiB, or a trillion messages)
 * keeps every sum in millionths of a token inside 64 bits. */
#define WSOCK_BUCKET_MAX ((uint64_t)1 << 40)

typedef struct {
    uint64_t rate;    /* tokens per second; 0 = no limit */
    uint64_t burst;   /* most tokens the bucket holds (>= 1 when rate > 0) */
    uint64_t level;   /* tokens there now, in millionths */
    int64_t  stamp;   /* when level was last brought up to date, in µs */
} wsock_bucket;

/* A full bucket at time now.  rate 0 makes a bucket that never runs out.
 * Both values are clamped to WSOCK_BUCKET_MAX, burst to at least 1. */
void wsock_bucket_init(wsock_bucket *b, uint64_t rate, uint64_t burst, int64_t now);

/* Takes n tokens at time now: 1 if they were there (and are taken now),
 * 0 if not (the bucket is left as it was).  n > burst never succeeds.
 * A time earlier than the last one seen adds nothing. */
int wsock_bucket_take(wsock_bucket *b, uint64_t n, int64_t now);

/* Whole tokens available at time now (UINT64_MAX without a limit). */
uint64_t wsock_bucket_available(wsock_bucket *b, int64_t now);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_RATELIMIT_H */
