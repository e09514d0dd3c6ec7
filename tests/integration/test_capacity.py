"""Capacity out of the box (docs/operations.md, "Capacity"): Debian's stock
event MPM settings plus the shipped conf/wsock.conf, included after them the
way `a2enmod wsock` does (mods-enabled/*.conf, alphabetically after
mpm_event.conf), hold 10,000 idle WebSockets within the 8192 open files per
process that apache2ctl gives apache2; without wsock.conf the same server
stops accepting at ThreadsPerChild x 3 per child, 450 in all, and says so
at start (WSOCK1410).

The 10,000 are opened from this process with raw non-blocking sockets
(massws.py).  The 10,000 are too heavy for the ASan run (handshakes
through the sanitizer build): skipped there; the plain run covers them.
"""

import os
import random
import time

import pytest

import debian_stock
import memory
from conftest import crash_check, new_tags
from massws import echo_roundtrip, open_many, raise_fd_limit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WSOCK_CONF = os.path.join(REPO, "conf", "wsock.conf")

TARGET = 10000
STOCK_CAP = 6 * 25 * 3          # 6 children x ThreadsPerChild x (1 + factor 2)

heavy = pytest.mark.skipif(
    memory.under_asan(),
    reason="10,000 handshakes are too heavy for the sanitizer build; the plain run covers it")


def stock_server(apache_factory, with_wsock_conf):
    extra = ("Include %s\n" % WSOCK_CONF if with_wsock_conf else "") + debian_stock.IDLE_ECHO
    return apache_factory("event", extra_conf=extra, mpm_conf=debian_stock.EVENT,
                          launcher=debian_stock.launcher())


@heavy
def test_stock_event_with_wsock_conf_holds_10000(apache_factory):
    if raise_fd_limit(TARGET + 500) < TARGET + 100:
        pytest.skip("this process may not open %d sockets" % TARGET)
    inst = stock_server(apache_factory, True)
    assert not {"WSOCK1410", "WSOCK1411", "WSOCK1412"} & new_tags(inst, 0)
    before = memory.sample(inst.pid)
    opened = open_many(inst.port, TARGET, deadline=50.0)
    try:
        assert len(opened.sockets) == TARGET, (
            "%d of %d WebSockets opened (failed %d, still waiting %d, statuses %r)"
            % (len(opened.sockets), TARGET, opened.failed, opened.waiting, opened.statuses))
        held = memory.sample(inst.pid)
        # Every one still echoes: a sample of them, spread over the children.
        for i, s in enumerate(random.Random(14).sample(opened.sockets, 40)):
            assert echo_roundtrip(s, "still here %d" % i) == "still here %d" % i
        # ... and the server still takes more.
        more = open_many(inst.port, 5, deadline=20.0)
        assert len(more.sockets) == 5, more.statuses
        more.close()
        print("\ncapacity: %d idle WebSockets in %d children; %s before, %s with them "
              "(%.1f KiB PSS each)" % (TARGET, len(inst.child_pids()), before, held,
                                      (held.pss_kib - before.pss_kib) / TARGET))
        # Generous bound (measured ~25 KiB each): what 10,000 idle WebSockets
        # may cost the server.
        assert held.pss_kib - before.pss_kib < TARGET * 64, memory.report(
            before=before, held=held)
    finally:
        opened.close()
    crash_check(inst)


def test_stock_event_without_wsock_conf_stops_at_450(apache_factory):
    inst = stock_server(apache_factory, False)
    # The startup warning names the cap and the directive.
    m = inst.wait_log(r"WSOCK1410: .*stops accepting at about (\d+) WebSockets.*"
                      r"AsyncRequestWorkerFactor", timeout=5)
    assert m and int(m.group(1)) == STOCK_CAP, inst.error_log()[-2000:]
    assert inst.error_log().count("WSOCK1410") == 1      # once per start
    # The server stops answering handshakes there: the rest wait in the
    # listen queue (no answer for 4 s after the last child was full; the
    # parent looks for children to start once a second while they fill).
    opened = open_many(inst.port, STOCK_CAP + 150, window=200, deadline=25.0, quiet=4.0)
    try:
        print("\ncapacity without wsock.conf: %d WebSockets opened, %d left waiting"
              % (len(opened.sockets), opened.waiting))
        assert STOCK_CAP * 2 // 3 <= len(opened.sockets) <= STOCK_CAP, (
            len(opened.sockets), opened.statuses, opened.waiting)
        assert opened.waiting > 0
    finally:
        opened.close()


@heavy
def test_stock_event_keeps_websockets_when_load_drops(apache_factory):
    """After a peak, the event MPM reaps children while its idle workers are
    more than MaxSpareThreads (75 on Debian): an open WebSocket holds no
    worker, so a child full of them looks idle and would be stopped, its
    clients told 1001.  wsock.conf keeps every child (MaxSpareThreads): the
    WebSockets left after most of the peak went are all still there."""
    if raise_fd_limit(TARGET + 500) < TARGET + 100:
        pytest.skip("this process may not open %d sockets" % TARGET)
    inst = stock_server(apache_factory, True)
    opened = open_many(inst.port, TARGET, deadline=50.0)
    try:
        assert len(opened.sockets) == TARGET, (len(opened.sockets), opened.statuses)
        children = len(inst.child_pids())
        assert children >= 4, children     # enough for the MPM to want fewer
        rng = random.Random(15)
        rng.shuffle(opened.sockets)
        keep, drop = opened.sockets[:TARGET // 4], opened.sockets[TARGET // 4:]
        for s in drop:
            s.close()
        opened.sockets = keep
        # The parent's maintenance runs every second; give it a few rounds
        # to reap what it would (bounded: a child's graceful stop is quick).
        time.sleep(6)
        for i, s in enumerate(keep):
            assert echo_roundtrip(s, "kept %d" % i) == "kept %d" % i, i
        assert len(inst.child_pids()) == children
    finally:
        opened.close()
    crash_check(inst)
