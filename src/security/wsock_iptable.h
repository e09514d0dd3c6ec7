/*
 * wsock_iptable.h — counts of open WebSockets per client address, in one
 * block of memory that every child process of the server shares
 * (WSockMaxConnectionsPerIP; wsock_ipcap.c puts it in shared memory and
 * serialises access with a global mutex: nothing here locks).
 *
 * Two fixed-size arrays, no pointers (the block is mapped at the same
 * address in every child, but need not be):
 *  - one entry per address with its count, in an open-addressing hash
 *    table (linear probing, backward-shift deletion: no tombstones);
 *  - one slot per counted connection: the process that holds it and its
 *    address, so that the counts of a process that died without closing
 *    its connections (a crash, a kill) can be given back.
 *
 * Addresses are 16 bytes: IPv6, or IPv4 mapped (::ffff:a.b.c.d); what a
 * client is counted under is wsock_iptable_key()'s.
 */
#ifndef WSOCK_IPTABLE_H
#define WSOCK_IPTABLE_H

#include <apr.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wsock_iptable wsock_iptable;

#define WSOCK_IPTABLE_OVER (-1)     /* the address is at its limit */
#define WSOCK_IPTABLE_FULL (-2)     /* no room to count one more connection */

/* The key a client address is counted under, from the address's bytes
 * (4 for IPv4, 16 for IPv6): an IPv4 address as itself, mapped
 * (::ffff:a.b.c.d, as are IPv4-mapped IPv6 addresses), and an IPv6
 * address by its /64 network, the least a site hands out: a client that
 * owns a /64 could otherwise open the limit again from each of its 2^64
 * addresses.  Like clients behind one IPv4 NAT, the devices of one /64
 * share its count. */
void wsock_iptable_key(unsigned char key[16], const unsigned char *addr, int ipv6);

/* Bytes needed for a table of conns connection slots (and twice as many
 * address entries, so that probes stay short). */
apr_size_t wsock_iptable_size(apr_uint32_t conns);

/* Lays out an empty table in mem (wsock_iptable_size(conns) bytes);
 * seed varies the hash so that addresses cannot be picked to collide. */
wsock_iptable *wsock_iptable_init(void *mem, apr_uint32_t conns, apr_uint32_t seed);

/* Counts one more connection of ip held by process pid, unless ip already
 * has limit of them (limit 0: no limit).  Returns the connection's slot
 * (>= 0) for wsock_iptable_release, WSOCK_IPTABLE_OVER or
 * WSOCK_IPTABLE_FULL. */
int wsock_iptable_acquire(wsock_iptable *t, const unsigned char ip[16], apr_uint32_t limit,
                          apr_int32_t pid);

/* The connection in slot ended. */
void wsock_iptable_release(wsock_iptable *t, int slot);

/* Releases every slot held by a process for which alive(pid, baton)
 * returns 0; returns how many. */
apr_uint32_t wsock_iptable_reap(wsock_iptable *t, int (*alive)(apr_int32_t pid, void *baton),
                                void *baton);

/* Open connections of ip. */
apr_uint32_t wsock_iptable_count(const wsock_iptable *t, const unsigned char ip[16]);

#ifdef __cplusplus
}
#endif
#endif /* WSOCK_IPTABLE_H */
