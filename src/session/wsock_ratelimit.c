/*
 * wsock_ratelimit.c — token buckets (see wsock_ratelimit.h).
 */
#include "wsock_ratelimit.h"

#define MICRO 1000000u

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void wsock_bucket_init(wsock_bucket *b, uint64_t rate, uint64_t burst, int64_t now)
{
    b->rate = clamp(rate, 0, WSOCK_BUCKET_MAX);
    b->burst = clamp(burst, 1, WSOCK_BUCKET_MAX);
    b->level = b->burst * MICRO;
    b->stamp = now;
}

/* Adds what the time since the last refill earned, up to the burst. */
static void refill(wsock_bucket *b, int64_t now)
{
    uint64_t full = b->burst * MICRO;
    uint64_t missing, dt;

    if (now <= b->stamp) {
        return;                     /* same instant, or the clock stepped back */
    }
    dt = (uint64_t)now - (uint64_t)b->stamp;   /* now > stamp: no wrap */
    b->stamp = now;
    missing = full - b->level;
    /* rate * dt millionths were earned; compare by division first so that
     * a long pause cannot overflow the product. */
    if (dt >= missing / b->rate + 1) {
        b->level = full;
    }
    else {
        b->level += b->rate * dt;   /* < missing + rate: fits */
        if (b->level > full) {
            b->level = full;
        }
    }
}

int wsock_bucket_take(wsock_bucket *b, uint64_t n, int64_t now)
{
    if (b->rate == 0) {
        return 1;
    }
    if (n > b->burst) {
        return 0;
    }
    refill(b, now);
    if (b->level < n * MICRO) {
        return 0;
    }
    b->level -= n * MICRO;
    return 1;
}

uint64_t wsock_bucket_available(wsock_bucket *b, int64_t now)
{
    if (b->rate == 0) {
        return UINT64_MAX;
    }
    refill(b, now);
    return b->level / MICRO;
}
