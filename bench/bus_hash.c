/*
 * bus_hash.c — what the keyed hash of the bus's room table costs a post.
 *
 * A post to the in-server bus hashes the room name and, under the bus
 * lock, asks the room table which other child processes hold the room
 * (src/bus/wsock_bus.c, wsock_bus_post).  The table used to hash names
 * with FNV-1a (unkeyed: anyone could compute names that share one probe
 * chain); it now uses SipHash-2-4 through OpenSSL with a random key
 * (src/pubsub/wsock_keyhash.c).  This measures, in one process and on one
 * thread, ns per post for both: the hash alone, and the whole lookup a
 * post makes (hash, lock, holders, unlock) in a table of 16384 slots with
 * 2000 rooms held by 4 processes each.
 *
 *   make -C bench bus-hash && bench/bus-hash [iterations]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsock_fnv1a.h"
#include "wsock_keyhash.h"
#include "wsock_roomtab.h"
#include "wsock_shmsync.h"

#define SLOTS 16384
#define ROOMS 2000
#define HOLDERS 4

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static wsock_roomtab *tabs[2];     /* [0] filled by FNV-1a, [1] keyed */
static pthread_mutex_t lock;
static volatile uint64_t sink;

/* ns per call of one post's lookup for room, with the hash keyed or not. */
static double post_ns(const char *room, int keyed, long n, int hash_only)
{
    wsock_roomtab *tab = tabs[keyed];
    size_t len = strlen(room);
    int32_t pids[64];
    double t0 = now_ns();

    for (long i = 0; i < n; i++) {
        uint64_t h = keyed ? wsock_roomtab_hash(tab, room, len) : wsock_fnv1a(room, len);

        if (!hash_only) {
            wsock_shmlock_lock(&lock);
            h += (uint64_t)wsock_roomtab_holders(tab, h, 1, pids, 64);
            wsock_shmlock_unlock(&lock);
        }
        sink += h;
    }
    return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    const char *rooms[] = {
        "/chat?lobby",
        "/chat?a-room-name-of-sixty-four-characters-which-is-the-longest-one",
    };
    wsock_hashkey key;

    if (n < 1000 || wsock_hashkey_random(&key) != 0 || wsock_shmlock_init(&lock) != 0) {
        fprintf(stderr, "usage: %s [iterations >= 1000]\n", argv[0]);
        return 1;
    }
    for (int k = 0; k < 2; k++) {
        tabs[k] = malloc(wsock_roomtab_bytes(SLOTS, 64));
        if (tabs[k] == NULL) {
            return 1;
        }
        wsock_roomtab_init(tabs[k], SLOTS, 64, &key);
    }
    for (int r = 0; r <= ROOMS; r++) {
        char name[32];
        const char *room = name;

        snprintf(name, sizeof(name), "/chat?room%d", r);
        if (r == ROOMS) {
            room = rooms[0];
        }
        for (int32_t pid = 2; pid < 2 + HOLDERS; pid++) {
            wsock_roomtab_add(tabs[0], wsock_fnv1a(room, strlen(room)), pid, 1);
            wsock_roomtab_add(tabs[1], wsock_roomtab_hash(tabs[1], room, strlen(room)), pid, 1);
        }
    }
    post_ns(rooms[0], 1, n / 10, 0);        /* warm up */
    printf("%-8s %-10s %14s %14s %16s %16s\n", "name", "bytes", "FNV-1a hash", "SipHash hash",
           "FNV-1a post", "SipHash post");
    for (size_t r = 0; r < sizeof(rooms) / sizeof(rooms[0]); r++) {
        printf("%-8zu %-10zu %11.1f ns %11.1f ns %13.1f ns %13.1f ns\n", r, strlen(rooms[r]),
               post_ns(rooms[r], 0, n, 1), post_ns(rooms[r], 1, n, 1),
               post_ns(rooms[r], 0, n, 0), post_ns(rooms[r], 1, n, 0));
    }
    printf("(%ld iterations each; post = hash + lock + holders + unlock, %d slots, "
           "%d rooms x %d processes)\n", n, SLOTS, ROOMS, HOLDERS);
    free(tabs[0]);
    free(tabs[1]);
    return 0;
}
