/*
 * wsock_retained_shm.c — see wsock_retained_shm.h.
 */
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <ap_mpm.h>
#include <apr_shm.h>

#include "wsock_retained_shm.h"

#define ALIGN 64                    /* a cache line */

typedef struct {
    apr_shm_t *shm;
    apr_size_t bytes;               /* what the user asked for */
} retained;

void *wsock_retained_shm(const char *key, apr_size_t bytes, server_rec *s, int *fresh,
                         apr_status_t *rv)
{
    retained *kept = ap_retained_data_get(key);

    *fresh = 0;
    *rv = APR_SUCCESS;
    if (kept == NULL) {
        kept = ap_retained_data_create(key, sizeof(*kept));
    }
    /* Sizes only grow with a full stop (ServerLimit); what it holds starts
     * again in memory of the new size. */
    if (kept->shm != NULL && kept->bytes < bytes) {
        apr_shm_destroy(kept->shm);
        kept->shm = NULL;
    }
    if (kept->shm == NULL) {
        *rv = apr_shm_create(&kept->shm, bytes + ALIGN, NULL, s->process->pool);
        if (*rv != APR_SUCCESS) {
            kept->shm = NULL;
            return NULL;
        }
        memset(apr_shm_baseaddr_get(kept->shm), 0, bytes + ALIGN);
        kept->bytes = bytes;
        *fresh = 1;
    }
    return (void *)APR_ALIGN((apr_uintptr_t)apr_shm_baseaddr_get(kept->shm), ALIGN);
}

apr_uint32_t wsock_retained_slots(void)
{
    int limit = 0;

    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS || limit < 1) {
        limit = 16;
    }
    return (apr_uint32_t)limit;
}
