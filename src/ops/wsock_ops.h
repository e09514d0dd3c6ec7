/*
 * wsock_ops.h — what operations see of the server: the hooks of src/ops
 * (server-status section, wsock-metrics), and one reading of the figures
 * that every renderer shares (docs/operations.md).
 */
#ifndef WSOCK_OPS_H
#define WSOCK_OPS_H

#include <httpd.h>
#include <apr_pools.h>

#include "wsock_bus.h"
#include "wsock_counters.h"

/* register_hooks: the server-status section and the wsock-metrics handler. */
void wsock_ops_register_hooks(void);

/* Everything a report shows, read once (the counters and the bus). */
typedef struct {
    wsock_counts c;
    wsock_bus_usage bus;
    /* Sums over the locations (c.label[]). */
    apr_int64_t open;
    apr_uint64_t opened;
    apr_uint64_t closed[WSOCK_CLOSE_CODE_COUNT];
    apr_uint64_t closed_all;
    apr_uint64_t refused_all;
    apr_uint64_t late_count;
} wsock_ops_reading;

/* Reads the figures now, into memory of p (the counts are ~10 KiB: never
 * on the stack). */
wsock_ops_reading *wsock_ops_read(apr_pool_t *p);

/* One location's closes, every code. */
apr_uint64_t wsock_ops_label_closed(const wsock_label_counts *l);
/* A refusal reason's refusals, every status. */
apr_uint64_t wsock_ops_refused(const wsock_counts *c, int why);

/* A close code's or a refusal status's name: the number, or "other" for
 * the last index. */
const char *wsock_ops_code_name(apr_pool_t *p, int i);
const char *wsock_ops_status_name(apr_pool_t *p, int i);

/* Microseconds as decimal seconds, exactly ("0.00005", "0.25", "1"). */
const char *wsock_ops_us_seconds(apr_pool_t *p, apr_uint64_t us);

/* The handlers (wsock_status_hook.c, wsock_metrics.c). */
int wsock_status_hook(request_rec *r, int flags);
int wsock_metrics_handler(request_rec *r);

#endif /* WSOCK_OPS_H */
