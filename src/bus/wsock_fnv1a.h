/*
 * wsock_fnv1a.h — FNV-1a, unkeyed: what the bus's room table hashed room
 * names with before it took a keyed hash (wsock_roomtab.h).  Not used by
 * the module; kept for the unit test that shows why (anyone can compute
 * names that share a probe chain) and for the benchmark of what the keyed
 * hash costs against it (bench/bus_hash.c).
 */
#ifndef WSOCK_FNV1A_H
#define WSOCK_FNV1A_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t wsock_fnv1a(const char *p, size_t len)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

#endif /* WSOCK_FNV1A_H */
