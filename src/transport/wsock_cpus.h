/*
 * wsock_cpus.h — how many CPUs this process may actually use: its CPU
 * affinity (taskset, cpusets) and the CPU quota of its cgroup (containers,
 * systemd's CPUQuota), not the machine's count.  More loop threads than
 * usable CPUs only add scheduling delay to every message.
 */
#ifndef WSOCK_CPUS_H
#define WSOCK_CPUS_H

#include <stddef.h>

typedef struct {
    int online;     /* CPUs of the machine */
    int affinity;   /* CPUs in this process's affinity mask (0: unknown) */
    int quota;      /* CPUs the cgroup quota allows, rounded up (0: no quota) */
    int usable;     /* the smallest of these, at least 1 */
} wsock_cpus;

/* Reads the affinity, /proc/self/cgroup and the cgroup files. */
void wsock_cpus_probe(wsock_cpus *out);

/* ---- pure parsers (unit-tested) ------------------------------------- */

/* CPUs allowed by the text of a cgroup v2 cpu.max file ("max 100000":
 * 0, no limit; "150000 100000": 2, rounded up); -1 if malformed. */
int wsock_cpus_from_cpu_max(const char *text);

/* The same for cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us. */
int wsock_cpus_from_cfs(long quota_us, long period_us);

/* The path of this process's cgroup for the cpu controller in the text of
 * /proc/self/cgroup: v1's ("N:cpu,cpuacct:/a/b", v2 = 0) where it is
 * listed (pure v1, or hybrid), else v2's ("0::/a/b", v2 = 1); copied into
 * out (n bytes); 0 if none. */
int wsock_cpus_cgroup_path(const char *proc_self_cgroup, char *out, size_t n, int *v2);

#endif /* WSOCK_CPUS_H */
