"""The asynchronous driver (src/transport/wsock_loop.c) under the event MPM.

Upgraded connections are handed from the MPM's worker threads to the
module's loop threads, so an open WebSocket holds no worker thread.  These
tests size the server so that the blocking driver (one worker thread per
WebSocket) could not pass them, and check what the hand-over must keep:
echo, timers, slow readers, the end of the request (access log), and the
connection slots the MPM gives back.
"""

import os
import re
import socket
import time

import pytest

import rawws
from conftest import COMMON_CONF

# Four worker threads in one child.  The event MPM keeps accepting while
# its connections stay under ThreadsPerChild + idle workers x
# AsyncRequestWorkerFactor (4 + 4 x 40 here), suspended ones included.
FEW_THREADS = """\
StartServers 1
ServerLimit 1
ThreadLimit 4
ThreadsPerChild 4
MinSpareThreads 1
MaxSpareThreads 4
MaxRequestWorkers 4
AsyncRequestWorkerFactor 40
MaxConnectionsPerChild 0
"""

ACCESS_LOG = """\
LogFormat "%h \\"%r\\" %>s" wsock
CustomLog "{root}/logs/access.log" wsock
"""


def few_threads(apache_factory, extra="", **kw):
    return apache_factory("event", COMMON_CONF + extra, mpm_conf=FEW_THREADS, **kw)


def echo_once(c, text, timeout=10):
    c.send_text(text)
    op, data, _ = c.recv_message(timeout=timeout)
    assert (op, data) == (rawws.OP_TEXT, text.encode())


def child_threads(inst):
    """Thread counts of the server's child processes."""
    return [len(os.listdir("/proc/%d/task" % pid)) for pid in inst.child_pids()]


def test_many_open_websockets_with_four_worker_threads(apache_factory):
    inst = few_threads(apache_factory)
    before = child_threads(inst)
    clients = []
    try:
        # 60 at once, each answered: with a worker thread per WebSocket the
        # fifth handshake would never be served.
        for i in range(60):
            c = rawws.RawWS.connect(inst.port, "/echo", timeout=10)
            clients.append(c)
            echo_once(c, "first %d" % i)
        for i, c in enumerate(clients):
            echo_once(c, "again %d" % i)
        assert child_threads(inst) == before     # no thread per connection
    finally:
        for c in clients:
            c.close_socket()


def test_connection_slots_come_back(apache_factory):
    # 4 + 4 x 40 = 164 slots: 400 connections, opened and closed 50 at a
    # time, only fit if every ended WebSocket gives its slot back.
    inst = few_threads(apache_factory)
    for batch in range(8):
        clients = [rawws.RawWS.connect(inst.port, "/echo", timeout=10) for _ in range(50)]
        for i, c in enumerate(clients):
            echo_once(c, "b%d c%d" % (batch, i))
        for c in clients:
            c.send_close(1000)
            f = c.recv_frame(timeout=10)
            assert f.opcode == rawws.OP_CLOSE and f.close_code == 1000
            c.close_socket()


def test_slow_reader_does_not_stall_its_loop(apache_factory):
    # One loop thread: the client that never reads shares it with the others.
    inst = few_threads(apache_factory, "WSockLoopThreads 1\n")
    hog = rawws.RawWS.connect(inst.port, "/big")
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    others = [rawws.RawWS.connect(inst.port, "/echo") for _ in range(5)]
    try:
        # 24 MiB of echo the hog never reads: far beyond the socket buffers.
        blob = b"x" * (1 << 20)
        hog.sock.settimeout(0.5)
        sent = 0
        for _ in range(24):
            try:
                hog.send_binary(blob)
                sent += 1
            except socket.timeout:
                break               # the server stopped reading it: fine
        assert sent >= 1
        for round_ in range(20):
            for i, c in enumerate(others):
                echo_once(c, "r%d c%d" % (round_, i), timeout=5)
    finally:
        hog.close_socket()
        for c in others:
            c.close_socket()


def test_timers_run_on_the_loop(apache_factory):
    inst = few_threads(apache_factory)
    with rawws.RawWS.connect(inst.port, "/ping") as c:
        f = c.recv_frame(timeout=5)
        assert f.opcode == rawws.OP_PING
    with rawws.RawWS.connect(inst.port, "/idle") as c:
        f = c.recv_frame(timeout=6)
        assert f.opcode == rawws.OP_CLOSE and f.close_code == 1001
        with pytest.raises(rawws.Closed):
            c.recv_frame(timeout=5)          # and the server closes TCP


def access_log_line(inst, needle, timeout=10):
    """The access log line that mentions needle, waited for (None if none)."""
    log = os.path.join(inst.root, "logs", "access.log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(log):
            with open(log) as f:
                line = next((x for x in f if needle in x), None)
            if line is not None:
                return line
        time.sleep(0.1)
    return None


def test_request_is_logged_when_the_websocket_ends(apache_factory):
    inst = few_threads(apache_factory, start=False)
    inst.extra_conf += ACCESS_LOG.format(root=inst.root)
    inst.start()
    with rawws.RawWS.connect(inst.port, "/echo?logged=1") as c:
        echo_once(c, "hi")
        assert access_log_line(inst, "/echo?logged=1", timeout=1) is None
        c.send_close(1000)
        assert c.recv_frame(timeout=5).opcode == rawws.OP_CLOSE
    line = access_log_line(inst, "/echo?logged=1")
    assert line is not None and re.search(r'" 101$', line.strip()), line


FULL_LOG = """\
LoadModule setenvif_module {mods}/mod_setenvif.so
LoadModule remoteip_module {mods}/mod_remoteip.so
SetEnvIf User-Agent "^probe/" WSOCK_PROBE=yes
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1
LogFormat "%a|%h|%r|%>s|%U|%q|%{{User-Agent}}i|%{{Sec-WebSocket-Key}}i|%{{WSOCK_PROBE}}e|%D|%I|%O" full
CustomLog "{root}/logs/access.log" full
"""


def test_log_line_at_the_end_has_the_request_and_the_whole_websocket(apache_factory):
    """WSockAccessLog end (the default): once a loop thread holds the
    connection, the request's pool is freed and what its log line needs is
    kept (wsock_reqlog.c).  The line, written at the end, still has the
    request (the client address mod_remoteip gave it, the request line,
    headers, the environment) and covers the whole WebSocket:
    %D spans the quiet spell in which the freed memory was given back, and
    %I counts what the client sent after the handshake."""
    inst = few_threads(apache_factory, start=False)
    inst.extra_conf += FULL_LOG.format(root=inst.root, mods="/usr/lib/apache2/modules")
    inst.start()
    key = rawws.make_key()
    with rawws.RawWS.connect(inst.port, "/echo?kept=1", key=key,
                             extra_headers=[("User-Agent", "probe/1"),
                                            ("X-Forwarded-For", "203.0.113.7")]) as c:
        echo_once(c, "before")
        time.sleep(3)                       # quiet: the connection trims its memory
        echo_once(c, "x" * 5000)
        c.send_close(1000)
        assert c.recv_frame(timeout=5).opcode == rawws.OP_CLOSE
    line = access_log_line(inst, "/echo?kept=1")
    assert line is not None
    f = line.strip().split("|")
    assert f[0] == "203.0.113.7" and f[1] == "203.0.113.7", f
    assert f[2] == "GET /echo?kept=1 HTTP/1.1" and f[3] == "101", f
    assert f[4] == "/echo" and f[5] == "?kept=1", f
    assert f[6] == "probe/1" and f[7] == key and f[8] == "yes", f
    assert int(f[9]) >= 3000000, f          # microseconds: the whole WebSocket
    assert int(f[10]) > 5000, f             # the 5000-byte message came in
    assert int(f[11]) > 0, f


def test_access_log_at_upgrade(apache_factory):
    """WSockAccessLog upgrade: the line is written while the WebSocket is
    still open (its request's memory goes with it), and the connection
    keeps working, facts included (the echo's location)."""
    inst = few_threads(apache_factory, start=False)
    inst.extra_conf += ACCESS_LOG.format(root=inst.root) + "WSockAccessLog upgrade\n"
    inst.start()
    with rawws.RawWS.connect(inst.port, "/echo?early=1") as c:
        line = access_log_line(inst, "/echo?early=1")
        assert line is not None and re.search(r'" 101$', line.strip()), line
        for i in range(5):
            echo_once(c, "still open %d" % i)
        c.send_close(1000)
        assert c.recv_frame(timeout=5).opcode == rawws.OP_CLOSE
    time.sleep(0.5)
    with open(os.path.join(inst.root, "logs", "access.log")) as f:
        assert sum("/echo?early=1" in x for x in f) == 1     # logged once


def loop_threads_line(inst):
    m = inst.wait_log(r"WSOCK011[45]: .*")
    assert m, inst.error_log()
    return m.group(0)


def test_default_loop_threads_follow_the_affinity_mask(apache_factory):
    # A server pinned to one core (taskset, cpusets, containers) gets one
    # loop thread per child, not the machine's count: two loop threads on
    # one allowed core only add scheduler delay.
    inst = few_threads(apache_factory, launcher=["taskset", "-c", "0"])
    line = loop_threads_line(inst)
    assert re.search(r"WSOCK0115: 1 WebSocket loop thread\(s\) per child: 1 CPU\(s\) usable "
                     r"\(\d+ online, 1 in the affinity mask, cgroup quota", line), line
    c = rawws.RawWS.connect(inst.port, "/echo", timeout=10)
    try:
        echo_once(c, "pinned")
    finally:
        c.close_socket()


def test_default_loop_threads_use_every_allowed_core(apache_factory):
    inst = few_threads(apache_factory)
    line = loop_threads_line(inst)
    m = re.search(r"WSOCK0115: (\d+) WebSocket loop thread\(s\) per child: (\d+) CPU\(s\) "
                  r"usable \((\d+) online, (\d+) in the affinity mask", line)
    assert m, line
    threads, usable, online, affinity = map(int, m.groups())
    assert affinity == len(os.sched_getaffinity(0)), line
    assert usable <= min(online, affinity), line
    # one child (ServerLimit 1): every usable core, up to 8
    assert threads == min(usable, 8), line


def test_configured_loop_threads_are_logged(apache_factory):
    inst = few_threads(apache_factory, "WSockLoopThreads 3\n")
    line = loop_threads_line(inst)
    assert "WSOCK0114: 3 WebSocket loop thread(s) per child (WSockLoopThreads)" in line, line


def test_blocking_driver_can_be_chosen(apache_factory):
    inst = apache_factory("event", COMMON_CONF + "WSockDriver blocking\n")
    with rawws.RawWS.connect(inst.port, "/echo") as c:
        echo_once(c, "blocking")


@pytest.mark.parametrize("line", ["WSockDriver sometimes", "WSockLoopThreads 0",
                                  "WSockLoopThreads lots",
                                  "<Location /x>\nWSockDriver auto\n</Location>",
                                  "WSockBusSize 1K", "WSockBusSize 2G", "WSockBusSize lots",
                                  "WSockAccessLog sometimes",
                                  "<Location /x>\nWSockBusSize 1M\n</Location>"])
def test_bad_server_directives_fail_configtest(apache_factory, line):
    inst = apache_factory("event", COMMON_CONF + line + "\n", start=False)
    rc, out = inst.configtest()
    assert rc != 0
    assert "WSock" in out
