/*
 * wsock_cpus.c — CPUs this process may use (see wsock_cpus.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsock_cpus.h"

int wsock_cpus_from_cfs(long quota_us, long period_us)
{
    if (quota_us <= 0 || period_us <= 0) {
        return 0;                   /* quota -1: none */
    }
    return (int)((quota_us + period_us - 1) / period_us);
}

int wsock_cpus_from_cpu_max(const char *text)
{
    char quota[32];
    long period = 0;
    char *end;
    long q;

    if (sscanf(text, "%31s %ld", quota, &period) != 2 || period <= 0) {
        return -1;
    }
    if (strcmp(quota, "max") == 0) {
        return 0;
    }
    q = strtol(quota, &end, 10);
    if (*end || q <= 0) {
        return -1;
    }
    return wsock_cpus_from_cfs(q, period);
}

/* Whether the controller list [p, end) of a v1 line names "cpu". */
static int names_cpu(const char *p, const char *end)
{
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = (size_t)((comma ? comma : end) - p);

        if (len == 3 && memcmp(p, "cpu", 3) == 0) {
            return 1;
        }
        p = comma ? comma + 1 : end;
    }
    return 0;
}

int wsock_cpus_cgroup_path(const char *text, char *out, size_t n, int *v2)
{
    const char *v1_path = NULL, *v2_path = NULL, *found;
    size_t len;

    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        const char *c1 = memchr(line, ':', (size_t)((eol ? eol : line + strlen(line)) - line));
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

        if (c2 && (eol == NULL || c2 < eol)) {
            if (c1 == line + 1 && line[0] == '0' && c2 == c1 + 1) {
                v2_path = c2 + 1;   /* "0::/path": the unified hierarchy */
            }
            else if (v1_path == NULL && names_cpu(c1 + 1, c2)) {
                v1_path = c2 + 1;   /* "N:cpu,cpuacct:/path" */
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    /* A hybrid system lists both; the cpu controller is then v1's. */
    found = v1_path ? v1_path : v2_path;
    *v2 = v1_path == NULL;
    if (found == NULL) {
        return 0;
    }
    len = strcspn(found, "\n");
    if (len == 0 || len >= n) {
        return 0;
    }
    memcpy(out, found, len);
    out[len] = '\0';
    return 1;
}

/* Reads a small file whole into buf; 0 if it cannot. */
static int read_file(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t got;

    if (f == NULL) {
        return 0;
    }
    got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = '\0';
    return got > 0;
}

/* The smallest quota along the cgroup's path, up to the root (a parent's
 * limit binds its children too); 0 if there is none. */
static int cgroup_quota(void)
{
    char text[4096], path[1024], file[1400], a[64], b[64];
    int v2 = 0, best = 0;

    if (!read_file("/proc/self/cgroup", text, sizeof(text))
        || !wsock_cpus_cgroup_path(text, path, sizeof(path), &v2)) {
        return 0;
    }
    for (;;) {
        int q = 0;

        if (v2) {
            snprintf(file, sizeof(file), "/sys/fs/cgroup%s/cpu.max",
                     strcmp(path, "/") == 0 ? "" : path);
            q = read_file(file, a, sizeof(a)) ? wsock_cpus_from_cpu_max(a) : 0;
        }
        else {
            static const char *const dirs[] = { "cpu", "cpu,cpuacct", "cpuacct,cpu" };
            for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && q == 0; i++) {
                const char *sub = strcmp(path, "/") == 0 ? "" : path;
                snprintf(file, sizeof(file), "/sys/fs/cgroup/%s%s/cpu.cfs_quota_us", dirs[i], sub);
                if (read_file(file, a, sizeof(a))) {
                    snprintf(file, sizeof(file), "/sys/fs/cgroup/%s%s/cpu.cfs_period_us",
                             dirs[i], sub);
                    if (read_file(file, b, sizeof(b))) {
                        q = wsock_cpus_from_cfs(atol(a), atol(b));
                    }
                    break;
                }
            }
        }
        if (q > 0 && (best == 0 || q < best)) {
            best = q;
        }
        if (strcmp(path, "/") == 0) {
            break;
        }
        *strrchr(path, '/') = '\0';
        if (path[0] == '\0') {
            strcpy(path, "/");
        }
    }
    return best;
}

void wsock_cpus_probe(wsock_cpus *out)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);

    out->online = online > 0 ? (int)online : 1;
    out->affinity = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
    out->quota = cgroup_quota();
    out->usable = out->online;
    if (out->affinity > 0 && out->affinity < out->usable) {
        out->usable = out->affinity;
    }
    if (out->quota > 0 && out->quota < out->usable) {
        out->usable = out->quota;
    }
}
