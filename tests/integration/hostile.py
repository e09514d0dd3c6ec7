"""Hostile clients, and the well-behaved ones that watch them, for the
hostile-client tests (test_hostile_*.py) and the soak (tests/soak).

Every client talks to 127.0.0.1 with raw sockets (rawws) and every loop is
bounded by a deadline or an iteration cap.  The attacks:

- flood_without_reading: 64 KiB echo messages as fast as the socket takes
  them, never reading (stops where the socket would block);
- dribble: a frame finished a byte at a time;
- connect(rcvbuf=4096): a member with a tiny receive window that never
  reads.

Then what watches them: EchoWatcher (a well-behaved client, step by step),
Meter (the apache tree's memory around an attack run in rounds).

The test plugins of tests/integration/plugins are built with apxs by
build_plugins().
"""

import os
import select
import tempfile
import time

import memory
import rawws
from rawws import OP_BINARY, build_frame

MiB = 1024 * 1024
KiB = 1024

# Two event children (the harness's sizing: StartServers 2).  prefork gets
# a fixed set of children up front, a few more than a test module opens
# connections at once, so that an attack starts no child (a new child's
# memory would count as the attack's) and warm_up reaches every child (so
# what each child's allocator keeps is in the baseline).
PREFORK_SPARE = 3


def sizing(mpm, conns):
    """mpm_conf for ApacheInstance: None for event (the harness's two
    children), or prefork with conns + PREFORK_SPARE children."""
    if mpm != "prefork":
        return None
    n = conns + PREFORK_SPARE
    return ("StartServers %d\nMinSpareServers 1\nMaxSpareServers %d\nServerLimit %d\n"
            "MaxRequestWorkers %d\nMaxConnectionsPerChild 0\n" % (n, n, n + 8, n + 8))


def warm_conns(mpm, conns):
    """How many connections warm_up opens at once: prefork, all children
    of sizing() but one (an idle one, or prefork starts another); event,
    the test's own number."""
    return conns + PREFORK_SPARE - 1 if mpm == "prefork" else conns


# ------------------------------------------------------------ connections
def connect(port, path, rcvbuf=None, sndbuf=None, timeout=10.0):
    """A RawWS whose socket buffers are set before connecting (so the TCP
    window is negotiated with them).  rcvbuf=4096: a client whose window
    fills at once when it does not read."""
    return rawws.RawWS.connect(port, path, timeout=timeout, rcvbuf=rcvbuf, sndbuf=sndbuf)


def close_all(conns):
    for c in conns:
        c.close_socket()


def conn_id(c):
    """The client's address as the server logs it."""
    return "127.0.0.1:%d" % c.sock.getsockname()[1]


# -------------------------------------------------------------- attacks
def echo_burst(size=64 * KiB, frames=64):
    """frames masked binary frames of size bytes, as one buffer: one send()
    hands the kernel megabytes at once."""
    one = os.urandom(size)
    return b"".join(build_frame(OP_BINARY, one) for _ in range(frames))


def flood_without_reading(conns, burst, duration=8.0, quiet=1.5, cap=64 * MiB, tick=None):
    """Each connection writes `burst` again and again as fast as its socket
    takes it, never reading; a connection whose socket would block waits
    for it to become writable.  Ends when no socket became writable for
    `quiet` seconds (the server stopped reading them all), after `duration`
    seconds, or when each sent `cap` bytes.  tick() is called after every
    round (e.g. a memory sample).  Returns the bytes each one sent."""
    views = [memoryview(burst) for _ in conns]
    sent = [0] * len(conns)
    for c in conns:
        c.sock.setblocking(False)
    deadline = time.monotonic() + duration
    last_progress = time.monotonic()
    live = {c.sock: i for i, c in enumerate(conns)}
    while live and time.monotonic() < deadline:
        _, writable, _ = select.select([], list(live), [], 0.2)
        progressed = False
        for s in writable:
            i = live[s]
            try:
                n = s.send(views[i])
            except BlockingIOError:
                continue
            except OSError:
                del live[s]           # closed by the server: that is allowed
                continue
            progressed = True
            sent[i] += n
            views[i] = views[i][n:] if n < len(views[i]) else memoryview(burst)
            if sent[i] >= cap:
                del live[s]
        if tick:
            tick()
        now = time.monotonic()
        if progressed:
            last_progress = now
        elif now - last_progress > quiet:
            break
    for c in conns:
        try:
            c.sock.setblocking(True)
        except OSError:
            pass
    return sent


def wait_closed_with(conns, code, reason, timeout):
    """Each connection must get a close frame (code, reason) within timeout
    (all of them together): returns [(code, reason) or the error] per
    connection."""
    deadline = time.monotonic() + timeout
    out = []
    for c in conns:
        try:
            got, why, _, _ = c.recv_close(timeout=max(0.1, deadline - time.monotonic()))
            out.append((got, why))
        except (TimeoutError, rawws.Closed) as e:
            out.append(repr(e))
    return out


def dribble(conns, frame, pause, limit):
    """Sends frame to every connection one byte every `pause` seconds; a
    connection stops when the server sends it something (its close).
    Returns, per connection, (bytes sent, seconds from the first byte to
    the server's answer, or None if none came within `limit`)."""
    start = time.monotonic()
    deadline = start + limit
    sent = [0] * len(conns)
    answered = [None] * len(conns)
    while time.monotonic() < deadline and any(a is None for a in answered):
        for i, c in enumerate(conns):
            if answered[i] is None and sent[i] < len(frame):
                try:
                    c.send_raw(frame[sent[i]:sent[i] + 1])
                    sent[i] += 1
                except OSError:
                    answered[i] = time.monotonic() - start
        waiting = [c.sock for i, c in enumerate(conns) if answered[i] is None]
        if not waiting:
            break
        r, _, _ = select.select(waiting, [], [], pause)
        for s in r:
            i = next(k for k, c in enumerate(conns) if c.sock is s)
            answered[i] = time.monotonic() - start
    return [(sent[i], answered[i]) for i in range(len(conns))]


# ------------------------------------------------------ well-behaved peers
def warm_up(inst, path, conns, sizes):
    """`conns` connections at once, each echoing one message of every size
    in `sizes`, then all closed: every child (prefork: one connection each,
    so pass warm_conns()) and loop thread has used buffers of those sizes
    before a test takes its baseline, and what the allocators keep from
    that is in the baseline, not in the attack."""
    opened = []
    try:
        for _ in range(conns):
            opened.append(connect(inst.port, path))
        for size in sizes:
            payload = b"w" * size
            for c in opened:
                c.send_binary(payload)
            for c in opened:
                assert c.recv_message(timeout=30)[1] == payload
    finally:
        close_all(opened)
    memory.wait_connections_gone(inst.port)


class EchoWatcher:
    """A well-behaved echo client, driven step by step from the attack loop:
    each step sends one message and waits (bounded) for its answer.  Counts
    what came back; a missing or wrong answer is recorded, not raised, so
    the test can report everything at the end."""

    def __init__(self, port, path, size=128, wait=10.0):
        self.c = rawws.RawWS.connect(port, path)
        self.size = size
        self.wait = wait
        self.sent = 0
        self.answered = 0
        self.errors = []

    def step(self):
        msg = ("%08d" % self.sent).encode() + b"e" * max(0, self.size - 8)
        self.sent += 1
        try:
            self.c.send_binary(msg)
            _, data, _ = self.c.recv_message(timeout=self.wait)
        except (OSError, TimeoutError, rawws.Closed, AssertionError) as e:
            self.errors.append("message %d: %r" % (self.sent - 1, e))
            return False
        if data != msg:
            self.errors.append("message %d: wrong answer %r" % (self.sent - 1, data[:40]))
            return False
        self.answered += 1
        return True

    def close(self):
        try:
            self.c.send_close(1000)
            self.c.recv_close(timeout=5)
        except (OSError, TimeoutError, rawws.Closed):
            pass
        self.c.close_socket()

    def __repr__(self):
        return "echo client: %d of %d answered%s" % (
            self.answered, self.sent, (", " + "; ".join(self.errors[:3])) if self.errors else "")


# ---------------------------------------------------------------- bounds
# An attack runs in ROUNDS rounds.  The first one also warms the server up
# for that traffic: glibc's per-thread arenas and APR's free lists keep
# some of what it used, for reuse, by design, and how much depends on which
# threads served it.  So:
#  - the peak of every round is bounded against the baseline taken before
#    any attack (what the attackers make the server hold);
#  - after the last round the memory must be within a margin of where it
#    was after the round before, and within twice that of the round before
#    that (what they leave behind does not pile up: a leak, or a buffer
#    kept at its peak, grows with every round).  Round 1 is compared with
#    nothing: which of the MPM's threads serve a round's handshakes decides
#    which glibc arenas it touches, and now and then (3 full-suite runs in
#    two days) a second and a third round each kept about 5 MiB more than
#    the one before, without a leak (alone, the same test came back within
#    the margin 16 times in 16).  Four rounds leave the last to compare
#    with two after round 1.
# The margin: a fixed slack, and 64 KiB per attacking connection.
# Under ASan the memory is not asserted (memory.bounds_apply), so one round
# does: the sanitizer watches the attack, and the CI budget is kept.
ROUNDS = int(os.environ.get("WSOCK_HOSTILE_ROUNDS", "4")) if memory.bounds_apply() else 1
RETURN_SLACK = 4 * MiB
RETURN_PER_CONN = 64 * KiB


class Meter:
    """Memory of inst's process tree around an attack run in rounds:
    baseline (after a warm-up), the peak over every round (poll() from the
    attack loops), and a sample after each round once the attackers are
    gone (the server holds at most `keep` connections: the watchers)."""

    def __init__(self, inst, keep=1, kept_per_conn=RETURN_PER_CONN):
        self.inst = inst
        self.keep = keep
        self.kept_per_conn = kept_per_conn
        self.base = memory.settled(inst.pid) if memory.bounds_apply() else memory.sample(inst.pid)
        self.peak = memory.Peak(inst.pid)
        self.afters = []
        self.open_after = []

    def poll(self):
        return self.peak.poll()

    def round_done(self, n):
        """The attackers of a round (n connections) are closed: wait for
        the server to let them go and, after the first round, for its
        memory to come back (bounded polls); record it."""
        self.open_after.append(memory.wait_connections_gone(self.inst.port, at_most=self.keep))
        if not memory.bounds_apply():
            self.afters.append(memory.sample(self.inst.pid))
        elif not self.afters:
            self.afters.append(memory.settled(self.inst.pid))
        else:
            self.afters.append(memory.wait_below(
                self.inst.pid, self.afters[-1].pss_kib + self.margin(n) // KiB))

    def margin(self, n):
        return RETURN_SLACK + n * self.kept_per_conn

    def facts(self):
        parts = {"baseline": self.base, "peak": self.peak.max}
        for k, a in enumerate(self.afters):
            parts["after round %d" % (k + 1)] = a
        return memory.report(**parts)

    def check(self, what, n, per_conn, slack, extra=""):
        """Every round's attackers were let go; the peak grew by at most
        n * per_conn + slack over the baseline; after the last round the
        memory came back within margin(n) of where it was after the first.
        The memory bounds are not asserted under ASan (bounds_apply)."""
        facts = self.facts() + extra
        assert all(k <= self.keep for k in self.open_after), (
            "attacker connections still open on the server after the rounds: %r; %s"
            % (self.open_after, facts))
        if not memory.bounds_apply():
            return
        growth = (self.peak.max.pss_kib - self.base.pss_kib) * KiB
        assert growth <= n * per_conn + slack, (
            "the server grew by %.1f MiB for %d %s (%.2f MiB each; bound %.1f MiB each + "
            "%.0f MiB): %s" % (growth / MiB, n, what, growth / MiB / n, per_conn / MiB,
                               slack / MiB, facts))
        # Allocators keep what they had at a round's peak for the next one,
        # and the first rounds may not have reached the steady state: a leak
        # grows round after round, so the last round is compared with the
        # one before (within the margin) and the one before that (within
        # twice the margin).
        last = self.afters[-1].pss_kib
        for back, limit in ((2, self.margin(n)), (3, 2 * self.margin(n))):
            k = len(self.afters) - back
            if k < 0:
                continue
            kept = (last - self.afters[k].pss_kib) * KiB
            assert kept <= limit, (
                "%.1f MiB more stayed after round %d of %d %s than after round %d (margin "
                "%.1f MiB): %s" % (kept / MiB, len(self.afters), n, what, k + 1, limit / MiB,
                                   facts))


# ------------------------------------------------------------- plugins
def build_plugins(names, parent_dir):
    """Builds tests/integration/plugins/<name>.c with apxs against this
    tree's include/; returns {name: path of the .so} (world-readable, for
    the children's user)."""
    from test_plugins import PLUGIN_SRC, REPO, apxs_build
    base = tempfile.mkdtemp(prefix="hostile-plugins-", dir=parent_dir)
    os.chmod(base, 0o755)
    sos = {n: apxs_build(os.path.join(PLUGIN_SRC, n + ".c"), base, os.path.join(REPO, "include"))
           for n in names}
    for d, dirs, _ in os.walk(base):
        for x in dirs:
            os.chmod(os.path.join(d, x), 0o755)
    return sos
