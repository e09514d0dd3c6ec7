/*
 * wsock_keyhash.h — a keyed hash for names that clients choose (rooms).
 *
 * A table keyed by client-chosen strings under a fixed hash function can
 * be flooded: anyone can compute many names that land in one bucket or one
 * probe chain.  Keyed with a secret drawn at random when the server starts,
 * SipHash-2-4 (OpenSSL's) makes such names unguessable.
 */
#ifndef WSOCK_KEYHASH_H
#define WSOCK_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

#include <apr_errno.h>

typedef struct {
    unsigned char k[16];
} wsock_hashkey;

/* A new random key. */
apr_status_t wsock_hashkey_random(wsock_hashkey *key);

/* SipHash-2-4 of data under key (never 0, so that 0 can mean "no entry"). */
uint64_t wsock_keyhash(const wsock_hashkey *key, const void *data, size_t len);

#endif /* WSOCK_KEYHASH_H */
