/*
 * wsock_iptable.h — counts of open WebSockets per client address, in one
 * block of memory that every child process of the server shares
 * (WSockMaxConnectionsPerIP; wsock_ipcap.c puts it in shared memory and
 * serialises access with a global mutex: nothing here locks).
 *
 * Two fixed-size arrays, no pointers (the block is mapped at the same
 * address in every child, but need not be):
 *  - one entry per address with its count, in an open-addressing hash
 *    table (linear probing, backward-shift deletion: no tombstones), never
 *    more than half full, keyed with SipHash under a random key made with
 *    the table: addresses are the clients' choice (an IPv6 client owns
 *    2^16 or more /64 networks), so they must not be able to pick ones
 *    that share a probe run;
 *  - one slot per counted connection (a free list: O(1) to take or give
 *    back, however full): the process that holds it and its address, so
 *    that the counts of a process that died without closing its
 *    connections (a crash, a kill) can be given back.
 *
 * Every operation under the lock is O(1) but for reaping a dead process,
 * which the caller does in chunks.  The hash of an address is computed
 * before taking the lock (wsock_iptable_hash) and stored with it, so that
 * nothing is hashed under the lock.
 *
 * Addresses are 16 bytes: IPv6, or IPv4 mapped (::ffff:a.b.c.d); what a
 * client is counted under is wsock_iptable_key()'s.
 */
#ifndef WSOCK_IPTABLE_H
#define WSOCK_IPTABLE_H

#include <apr.h>
#include <apr_time.h>

#include "wsock_keyhash.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wsock_iptable wsock_iptable;

#define WSOCK_IPTABLE_OVER (-1)     /* the address is at its limit */
#define WSOCK_IPTABLE_FULL (-2)     /* no room to count one more connection */

/* Most connections a table may count (304 MiB). */
#define WSOCK_IPTABLE_MAX_CONNS 4194304u

/* The key a client address is counted under, from the address's bytes
 * (4 for IPv4, 16 for IPv6): an IPv4 address as itself, mapped
 * (::ffff:a.b.c.d, as are IPv4-mapped IPv6 addresses), and an IPv6
 * address by its /64 network, the least a site hands out: a client that
 * owns a /64 could otherwise open the limit again from each of its 2^64
 * addresses.  Like clients behind one IPv4 NAT, the devices of one /64
 * share its count. */
void wsock_iptable_key(unsigned char key[16], const unsigned char *addr, int ipv6);

/* Bytes needed for a table of conns connection slots (1 to
 * WSOCK_IPTABLE_MAX_CONNS), and the next power of two at or above twice as
 * many address entries, so that probes stay short: 28 bytes a slot and
 * 24 an entry, 76 to 124 bytes per connection. */
apr_size_t wsock_iptable_size(apr_uint32_t conns);

/* Lays out an empty table in mem (wsock_iptable_size(conns) bytes), whose
 * addresses are hashed under key (random, made when the table is). */
wsock_iptable *wsock_iptable_init(void *mem, apr_uint32_t conns, const wsock_hashkey *key);

/* How many connections the table can count, and counts now. */
apr_uint32_t wsock_iptable_conns(const wsock_iptable *t);
apr_uint32_t wsock_iptable_used(const wsock_iptable *t);

/* The hash of ip that the calls below take: compute it before taking the
 * lock (it reads only what wsock_iptable_init wrote). */
apr_uint32_t wsock_iptable_hash(const wsock_iptable *t, const unsigned char ip[16]);

/* Counts one more connection of ip (hash: wsock_iptable_hash's) held by
 * process pid, unless ip already has limit of them (limit 0: no limit).
 * Returns the connection's slot (>= 0) for wsock_iptable_release,
 * WSOCK_IPTABLE_OVER or WSOCK_IPTABLE_FULL. */
int wsock_iptable_acquire(wsock_iptable *t, const unsigned char ip[16], apr_uint32_t hash,
                          apr_uint32_t limit, apr_int32_t pid);

/* The connection in slot ended (a slot already free is ignored). */
void wsock_iptable_release(wsock_iptable *t, int slot);

/* Releases the slots held by process pid among at most max slots from
 * *from on, and moves *from past them (done when it reaches
 * wsock_iptable_conns); returns how many it released.  In chunks, so that
 * the caller holds the lock for a bounded time. */
apr_uint32_t wsock_iptable_reap(wsock_iptable *t, apr_int32_t pid, apr_uint32_t *from,
                                apr_uint32_t max);

/* Open connections of ip (hash: wsock_iptable_hash's). */
apr_uint32_t wsock_iptable_count(const wsock_iptable *t, const unsigned char ip[16],
                                 apr_uint32_t hash);

/* A connection was refused at time now because the table is full: returns
 * how many were refused since the last report, this one included, when a
 * report is due (the first refusal, then at most one report every
 * `every`), else 0.  Shared by every process, like the table. */
apr_uint32_t wsock_iptable_note_full(wsock_iptable *t, apr_time_t now, apr_time_t every);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_IPTABLE_H */
