"""The module's threads never take the MPM's signals (src/core/wsock_threads.h).

A child's SIGTERM must reach the MPM's own thread: in a handler it runs the
child's whole exit on whichever thread the kernel picks, and the event MPM
relies on it waking its main thread.  httpd releases differ in whether
child_init runs before or after the MPM blocks signals (Debian's 2.4.71
blocks most of them first, all but SIGPIPE), so the module does not rely on
it: every thread it starts (loop threads, the bus deliverer, the dashboard's
sampler, the Redis relay's three, the backend's HTTP client) is born with
every signal blocked but those a fault raises, which stay open so that crash
reports (ASan's, CoreDumpDirectory) still work.  Read from
/proc/PID/task/*/status of every child, under each MPM.
"""

import os
import signal
import time

import pytest

from conftest import COMMON_CONF
from test_redis import redis  # noqa: F401  (the module's redis-server fixture)

# what the MPM (or an admin) sends a child, and what a fault raises
HELD = [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
        signal.SIGPIPE, signal.SIGALRM, signal.SIGTERM, signal.SIGCHLD, signal.SIGWINCH]
FAULTS = [signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT]


def threads_of(pid):
    """{tid: (name, blocked mask)} of one process."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return out                      # the process is gone
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except FileNotFoundError:
            continue                    # a thread that just ended
        out[int(tid)] = (fields["Name"], int(fields["SigBlk"], 16))
    return out


def bit(sig):
    return 1 << (int(sig) - 1)


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
def test_module_threads_block_the_mpm_signals(apache_factory, redis, mpm):
    conf = COMMON_CONF + """
WSockRedis 127.0.0.1:%d
<Location /chat>
    WSockHandler chat room=query
</Location>
<Location /relay>
    WSockHandler redis room=query
</Location>
<Location /app>
    # nothing listens there: the client thread starts all the same
    WSockHandler backend http://127.0.0.1:9/ws
</Location>
<Location /status>
    SetHandler wsock-status
</Location>
""" % redis.port
    inst = apache_factory(mpm, conf)
    expected = {"wsock-bus", "wsock-sampler", "wsock-redis-pub", "wsock-redis-sub",
                "wsock-catchup", "wsock-backend"}
    if mpm == "event":
        expected.add("wsock-loop")
    held = sum(bit(s) for s in HELD)
    faults = sum(bit(s) for s in FAULTS)
    children = sorted(inst.child_pids())
    assert children, "no child process"
    for pid in children:
        # a child the MPM has just forked may still be in its child_init
        # (slow under ASan): wait for its threads, bounded
        deadline = time.monotonic() + 15
        while True:
            threads = threads_of(pid)
            ours = {tid: t for tid, t in threads.items() if t[0].startswith("wsock-")}
            names = {name for name, _ in ours.values()}
            if not threads or names == expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if not threads:
            continue                    # the child is gone
        assert names == expected, (pid, threads)
        for tid, (name, mask) in ours.items():
            assert mask & held == held, "%s (%d) takes signals %#x" % (name, tid, held & ~mask)
            assert mask & faults == 0, "%s (%d) blocks fault signals %#x" % (name, tid,
                                                                             mask & faults)
