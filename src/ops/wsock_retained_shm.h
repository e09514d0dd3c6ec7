/*
 * wsock_retained_shm.h — shared memory that the parent makes once and
 * keeps across restarts (ap_retained_data), for the parts of src/ops that
 * keep numbers for all child processes: anonymous, zeroed when made, its
 * base aligned to a cache line (APR's is only 8-aligned).
 */
#ifndef WSOCK_RETAINED_SHM_H
#define WSOCK_RETAINED_SHM_H

#include <httpd.h>
#include <apr_errno.h>

/* The memory kept under key (name it for its layout: a new layout must not
 * get the old one's memory), made now if there is none or it is smaller
 * than bytes (*fresh then 1: zeroed, fill in its header).  NULL with *rv
 * set when it cannot be made. */
void *wsock_retained_shm(const char *key, apr_size_t bytes, server_rec *s, int *fresh,
                         apr_status_t *rv);

/* How many child processes may run at once (ServerLimit, from the MPM;
 * 16 if it does not say): the per-child slots such memory holds. */
apr_uint32_t wsock_retained_slots(void);

#endif /* WSOCK_RETAINED_SHM_H */
