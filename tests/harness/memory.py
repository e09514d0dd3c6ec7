"""Memory of an apache2 process tree, for tests that bound what an attack
costs the server.

A sample sums, over the parent and every descendant (the MPM's children),
Pss and Rss from /proc/PID/smaps_rollup.  Pss is the figure to bound: pages
shared by the children (the module's text, the scoreboard, the bus) count
once in total, not once per child, so a new prefork child costs what it
really adds.  Rss is recorded beside it for the assertion messages.

Typical use in a test::

    base = memory.settled(inst.pid)             # after a warm-up
    ... attack ...
    during = memory.sample(inst.pid)
    ... attackers leave ...
    after = memory.wait_below(inst.pid, base.pss_kib + slack_kib, timeout=20)
    assert after.pss_kib <= base.pss_kib + slack_kib, memory.report(...)

Waits are bounded polls of a condition (the memory is below a bound, the
server holds no more connections), never a fixed sleep.  Only the Python
standard library is used; root (or the processes' own user) may read
smaps_rollup.
"""

import os
import time

from apache_instance import children_map

# How the waits poll; a sample of a dozen processes costs ~1 ms.
POLL = 0.1


class Sample:
    """Memory of one process tree at one moment (kibibytes)."""

    def __init__(self, pss_kib, rss_kib, pids, when):
        self.pss_kib = pss_kib
        self.rss_kib = rss_kib
        self.pids = pids            # {pid: (pss_kib, rss_kib)}
        self.when = when

    @property
    def pss_mib(self):
        return self.pss_kib / 1024.0

    @property
    def rss_mib(self):
        return self.rss_kib / 1024.0

    def __repr__(self):
        return "PSS %.1f MiB, RSS %.1f MiB in %d processes" % (
            self.pss_mib, self.rss_mib, len(self.pids))


def tree_pids(pid):
    """pid and all its live descendants."""
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def _rollup(pid):
    """(pss_kib, rss_kib) of one process; None if it is gone."""
    pss = rss = None
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        # No smaps_rollup (old kernel, no permission): VmRSS only.
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
        except OSError:
            return None
        pss = rss
    if pss is None or rss is None:
        return None
    return pss, rss


def sample(pid):
    """Memory of the process tree rooted at pid (the apache2 parent)."""
    per = {}
    for p in tree_pids(pid):
        r = _rollup(p)
        if r is not None:
            per[p] = r
    return Sample(sum(v[0] for v in per.values()), sum(v[1] for v in per.values()),
                  per, time.monotonic())


def settled(pid, tolerance_kib=256, rounds=3, timeout=10.0):
    """A sample once `rounds` consecutive samples (POLL apart) differ by at
    most tolerance_kib in Pss: the baseline after a warm-up.  Bounded: the
    last sample after `timeout` otherwise."""
    deadline = time.monotonic() + timeout
    last = sample(pid)
    steady = 0
    while steady < rounds and time.monotonic() < deadline:
        time.sleep(POLL)
        s = sample(pid)
        steady = steady + 1 if abs(s.pss_kib - last.pss_kib) <= tolerance_kib else 0
        last = s
    return last


def wait_below(pid, pss_bound_kib, timeout=20.0):
    """Polls until the tree's Pss is at most pss_bound_kib (the server has
    given the attack's memory back) or timeout; returns the last sample,
    which the caller asserts on."""
    deadline = time.monotonic() + timeout
    s = sample(pid)
    while s.pss_kib > pss_bound_kib and time.monotonic() < deadline:
        time.sleep(POLL)
        s = sample(pid)
    return s


class Peak:
    """The highest sample seen by repeated calls to poll() (e.g. from the
    attack loop), so a test bounds the worst moment, not just the last."""

    def __init__(self, pid):
        self.pid = pid
        self.max = None

    def poll(self):
        s = sample(self.pid)
        if self.max is None or s.pss_kib > self.max.pss_kib:
            self.max = s
        return s


def _tcp_tables():
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    yield line.split()
        except OSError:
            continue


# TCP states (include/net/tcp_states.h) in which the server still holds a
# connection: everything but LISTEN, TIME_WAIT and CLOSE.
_HELD_STATES = {"01", "02", "03", "04", "05", "08", "09", "0B"}


def server_connections(port):
    """How many TCP connections the server side of `port` still holds
    (its local port is `port`, not listening, not in TIME_WAIT)."""
    hexport = ":%04X" % port
    return sum(1 for f in _tcp_tables()
               if f[1].endswith(hexport) and f[3] in _HELD_STATES)


def wait_connections_gone(port, at_most=0, timeout=20.0):
    """Polls until the server holds at most `at_most` connections on port;
    returns the count seen last."""
    deadline = time.monotonic() + timeout
    n = server_connections(port)
    while n > at_most and time.monotonic() < deadline:
        time.sleep(POLL)
        n = server_connections(port)
    return n


def report(**samples):
    """One line per named sample, for assertion messages."""
    return "; ".join("%s: %r" % (k, v) for k, v in samples.items())


def under_asan():
    """True when the server runs the sanitizer build (the harness preloads
    libasan into apache2)."""
    return "asan" in os.environ.get("WSOCK_APACHE_PRELOAD", "")


def bounds_apply():
    """Whether a test should assert its memory bounds.  Not under ASan: its
    allocator keeps freed blocks in a quarantine (256 MiB per process by
    default) and adds redzones and shadow pages, so the figures say nothing
    about the module's own bounds; the plain run of the same test asserts
    them.  (The soak runs ASan with a small quarantine and its own margin.)"""
    return not under_asan()
