/*
 * wsock_ops.c — the hooks of src/ops, and the reading the renderers share
 * (see wsock_ops.h).
 */
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <apr_optional_hooks.h>
#include <apr_strings.h>

#include "mod_status.h"

#include "wsock_ops.h"

wsock_ops_reading *wsock_ops_read(apr_pool_t *p)
{
    wsock_ops_reading *o = apr_pcalloc(p, sizeof(*o));
    int i, k;

    wsock_counters_read(&o->c);
    wsock_bus_usage_read(&o->bus);
    for (i = 0; i < o->c.nlabels; i++) {
        const wsock_label_counts *l = &o->c.label[i];

        o->open += l->open;
        o->opened += l->opened;
        for (k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
            o->closed[k] += l->closed[k];
        }
    }
    for (k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
        o->closed_all += o->closed[k];
    }
    for (i = 0; i < WSOCK_R_COUNT; i++) {
        o->refused_all += wsock_ops_refused(&o->c, i);
    }
    for (k = 0; k < WSOCK_LATE_BUCKETS; k++) {
        o->late_count += o->c.late[k];
    }
    return o;
}

apr_uint64_t wsock_ops_label_closed(const wsock_label_counts *l)
{
    apr_uint64_t n = 0;
    int k;

    for (k = 0; k < WSOCK_CLOSE_CODE_COUNT; k++) {
        n += l->closed[k];
    }
    return n;
}

apr_uint64_t wsock_ops_refused(const wsock_counts *c, int why)
{
    apr_uint64_t n = 0;
    int k;

    for (k = 0; k < WSOCK_REFUSAL_STATUS_COUNT; k++) {
        n += c->refused[why][k];
    }
    return n;
}

const char *wsock_ops_code_name(apr_pool_t *p, int i)
{
    return i < WSOCK_CLOSE_CODE_COUNT - 1 ? apr_itoa(p, wsock_close_codes[i]) : "other";
}

const char *wsock_ops_status_name(apr_pool_t *p, int i)
{
    return i < WSOCK_REFUSAL_STATUS_COUNT - 1 ? apr_itoa(p, wsock_refusal_statuses[i])
                                              : "other";
}

const char *wsock_ops_us_seconds(apr_pool_t *p, apr_uint64_t us)
{
    char frac[8];
    int n;

    if (us % 1000000 == 0) {
        return apr_psprintf(p, "%" APR_UINT64_T_FMT, us / 1000000);
    }
    apr_snprintf(frac, sizeof(frac), "%06u", (unsigned)(us % 1000000));
    for (n = 6; frac[n - 1] == '0'; n--) {
        frac[n - 1] = '\0';
    }
    return apr_psprintf(p, "%" APR_UINT64_T_FMT ".%s", us / 1000000, frac);
}

void wsock_ops_register_hooks(void)
{
    /* mod_status runs it if it is loaded (an optional hook: no link to it). */
    APR_OPTIONAL_HOOK(ap, status_hook, wsock_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(wsock_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
