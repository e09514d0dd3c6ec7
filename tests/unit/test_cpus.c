/*
 * test_cpus.c — Check unit tests for the parsers behind the default loop
 * thread count (src/transport/wsock_cpus.c): cgroup v1 and v2 quotas, and which
 * cgroup of /proc/self/cgroup holds the cpu controller.
 */
#include <string.h>

#include "wsock_cpus.h"

#include "test_util.h"

START_TEST(cpu_max_without_a_limit)
{
    ck_assert_int_eq(wsock_cpus_from_cpu_max("max 100000\n"), 0);
}
END_TEST

START_TEST(cpu_max_rounds_up)
{
    ck_assert_int_eq(wsock_cpus_from_cpu_max("100000 100000\n"), 1);
    ck_assert_int_eq(wsock_cpus_from_cpu_max("150000 100000\n"), 2);
    ck_assert_int_eq(wsock_cpus_from_cpu_max("50000 100000"), 1);
    ck_assert_int_eq(wsock_cpus_from_cpu_max("400000 100000"), 4);
}
END_TEST

START_TEST(cpu_max_malformed)
{
    ck_assert_int_eq(wsock_cpus_from_cpu_max(""), -1);
    ck_assert_int_eq(wsock_cpus_from_cpu_max("max"), -1);
    ck_assert_int_eq(wsock_cpus_from_cpu_max("abc 100000"), -1);
    ck_assert_int_eq(wsock_cpus_from_cpu_max("100000 0"), -1);
    ck_assert_int_eq(wsock_cpus_from_cpu_max("-5 100000"), -1);
}
END_TEST

START_TEST(cfs_quota)
{
    ck_assert_int_eq(wsock_cpus_from_cfs(-1, 100000), 0);     /* no quota */
    ck_assert_int_eq(wsock_cpus_from_cfs(100000, 100000), 1);
    ck_assert_int_eq(wsock_cpus_from_cfs(250000, 100000), 3);
    ck_assert_int_eq(wsock_cpus_from_cfs(100000, 0), 0);
}
END_TEST

START_TEST(cgroup_v2_only)
{
    char path[256];
    int v2 = -1;

    ck_assert(wsock_cpus_cgroup_path("0::/system.slice/apache2.service\n", path,
                                     sizeof(path), &v2));
    ck_assert_str_eq(path, "/system.slice/apache2.service");
    ck_assert_int_eq(v2, 1);
}
END_TEST

START_TEST(cgroup_hybrid_prefers_the_v1_cpu_controller)
{
    static const char text[] =
        "9:name=systemd:/\n"
        "4:memory:/x\n"
        "2:cpuacct:/acct-only\n"
        "1:cpu,cpuacct:/docker/abc\n"
        "0::/\n";
    char path[256];
    int v2 = -1;

    ck_assert(wsock_cpus_cgroup_path(text, path, sizeof(path), &v2));
    ck_assert_str_eq(path, "/docker/abc");
    ck_assert_int_eq(v2, 0);
}
END_TEST

START_TEST(cgroup_cpuacct_alone_is_not_cpu)
{
    char path[256];
    int v2 = -1;

    ck_assert(!wsock_cpus_cgroup_path("2:cpuacct:/a\n3:cpuset:/b\n", path, sizeof(path), &v2));
}
END_TEST

START_TEST(cgroup_path_too_long_or_empty)
{
    char path[8];
    int v2 = -1;

    ck_assert(!wsock_cpus_cgroup_path("0::/a/very/long/path\n", path, sizeof(path), &v2));
    ck_assert(!wsock_cpus_cgroup_path("0::\n", path, sizeof(path), &v2));
    ck_assert(!wsock_cpus_cgroup_path("", path, sizeof(path), &v2));
    ck_assert(!wsock_cpus_cgroup_path("garbage without colons", path, sizeof(path), &v2));
}
END_TEST

START_TEST(probe_is_consistent)
{
    wsock_cpus c;

    wsock_cpus_probe(&c);
    ck_assert_int_ge(c.online, 1);
    ck_assert_int_ge(c.usable, 1);
    ck_assert_int_le(c.usable, c.online);
    if (c.affinity > 0) {
        ck_assert_int_le(c.usable, c.affinity);
    }
    if (c.quota > 0) {
        ck_assert_int_le(c.usable, c.quota);
    }
}
END_TEST

static Suite *cpus_suite(void)
{
    Suite *s = suite_create("cpus");
    TCase *tc = tcase_create("parsers");

    tcase_add_test(tc, cpu_max_without_a_limit);
    tcase_add_test(tc, cpu_max_rounds_up);
    tcase_add_test(tc, cpu_max_malformed);
    tcase_add_test(tc, cfs_quota);
    tcase_add_test(tc, cgroup_v2_only);
    tcase_add_test(tc, cgroup_hybrid_prefers_the_v1_cpu_controller);
    tcase_add_test(tc, cgroup_cpuacct_alone_is_not_cpu);
    tcase_add_test(tc, cgroup_path_too_long_or_empty);
    tcase_add_test(tc, probe_is_consistent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = { cpus_suite() };

    return tu_run_suites(suites, TU_ARRAY_SIZE(suites));
}
