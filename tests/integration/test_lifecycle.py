"""Server lifecycle: stop, graceful-stop, graceful restart, configtest."""

import asyncio
import json
import threading
import time

import pytest
import websockets

import rawws
from conftest import COMMON_CONF, crash_check, run

CHAT_CONF = """\
<Location /chat>
    WSockHandler chat room=query presence=on
</Location>
"""

MPMS = ["event", "worker", "prefork"]


def open_clients(inst, n=4):
    clients = []
    for i in range(n):
        c = rawws.RawWS.connect(inst.port, "/echo" if i % 2 == 0 else "/ping")
        c.send_text("hello %d" % i)
        op, data, _ = c.recv_message(timeout=5)
        assert data == b"hello %d" % i
        clients.append(c)
    return clients


@pytest.mark.parametrize("how", ["graceful_stop", "stop"])
@pytest.mark.parametrize("mpm", MPMS)
def test_shutdown_sends_1001_to_every_client(apache_factory, mpm, how):
    inst = apache_factory(mpm)
    clients = open_clients(inst, 4)

    # plus one real client, idle, in a thread of its own event loop
    result = {}

    def ws_client():
        async def go():
            async with websockets.connect(inst.url("/echo"), ping_interval=None) as ws:
                await ws.send("x")
                await ws.recv()
                ready.set()
                try:
                    await asyncio.wait_for(ws.recv(), 25)
                except websockets.ConnectionClosed as e:
                    return e.rcvd.code if e.rcvd else None
                return "no close"
        try:
            result["code"] = run(go(), timeout=40)
        except Exception as e:           # reported below
            result["code"] = repr(e)
            ready.set()

    ready = threading.Event()
    t = threading.Thread(target=ws_client, daemon=True)
    t.start()
    assert ready.wait(15)

    if how == "graceful_stop":
        inst.graceful_stop(wait=False)
    else:
        inst.terminate()                      # SIGTERM, without waiting

    try:
        for i, c in enumerate(clients):
            code, reason, _, _ = c.recv_close(timeout=15)
            assert code == 1001, "client %d: close %r %r" % (i, code, reason)
            try:
                c.send_close(1001)
            except OSError:
                pass
            assert c.wait_eof(10)
    finally:
        for c in clients:
            c.close_socket()
    t.join(45)
    assert result.get("code") == 1001, "websockets client: %r" % result.get("code")
    assert inst.wait_exit(25), "apache2 did not exit after %s" % how


def stuck_client(inst):
    """An echo client that sends 64 KiB messages until the server stops
    reading it (its echoes wait for a socket it never reads)."""
    import socket
    c = rawws.RawWS.connect(inst.port, "/echo")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.settimeout(0.5)
    frame = rawws.build_frame(rawws.OP_BINARY, b"\x01" * 65536)
    sent = 0
    try:
        for _ in range(1000):
            c.sock.sendall(frame)
            sent += 1
    except socket.timeout:
        pass
    assert sent < 1000, "the server never stopped reading a client that does not read"
    return c


@pytest.mark.parametrize("how", ["graceful_stop", "stop"])
@pytest.mark.parametrize("mpm", MPMS)
def test_client_that_does_not_read_does_not_hold_the_stop(apache_factory, mpm, how):
    # Its 1001 can never be written: the child must still go, without being
    # killed.  Under event and worker the stopping hook ends such a
    # connection at once; prefork runs no such hook, and its graceful stop
    # waits for GracefulShutdownTimeout (10 s here), whose SIGTERM must then
    # end the child rather than be held by a write that cannot progress.
    inst = apache_factory(mpm)
    since = inst.log_offset()
    c = stuck_client(inst)
    try:
        if how == "graceful_stop":
            inst.graceful_stop(wait=False)
        else:
            inst.terminate()
        assert inst.wait_exit(30), "apache2 did not exit after %s" % how
    finally:
        c.close_socket()
    log = inst.error_log(since)
    assert "AH00046" not in log, "a child had to be killed:\n" + log[-3000:]
    if mpm != "prefork" or how == "stop":
        assert "AH00045" not in log, "a child did not exit when told:\n" + log[-3000:]


class FloodingClient:
    """An echo client that keeps a stream of small messages in flight (a
    writer thread) and reads the echoes back (a reader thread), so the
    child serving it always has input: it is hardly ever asleep in poll,
    where a stop signal would interrupt it.

    paced: at most 2048 messages unanswered, so the server's output never
    backs up.  backed_up: no limit, so the server's output for it stays
    full (it reads only when that drains), yet the client reads; a small
    receive buffer keeps what is in flight small, so that a Python reader
    takes it in well within the test's bound, however loaded the machine.
    """

    BATCH = 16

    def __init__(self, inst, flood):
        self.window = 2048 if flood == "paced" else None
        self.c = rawws.RawWS.connect(inst.port, "/echo",
                                     rcvbuf=32768 if flood == "backed_up" else None)
        self.frame = rawws.build_frame(rawws.OP_TEXT, b"f" * 64)
        self.stop_writing = threading.Event()
        self.echoes = 0
        self.close_code = None
        self.closed_at = None
        self.error = None
        self.threads = [threading.Thread(target=self._write, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]
        for t in self.threads:
            t.start()

    def _write(self):
        sent = 0
        try:
            for _ in range(2000000):            # bounded; stopped long before
                if self.stop_writing.is_set() or self.close_code is not None:
                    return
                if self.window and sent - self.echoes >= self.window:
                    time.sleep(0.001)
                    continue
                self.c.sock.sendall(self.frame * self.BATCH)
                sent += self.BATCH
        except OSError:
            pass                                # the server closed: fine

    def _read(self):
        try:
            for _ in range(50000000):
                f = self.c.recv_frame(timeout=30)
                if f.opcode == rawws.OP_CLOSE:
                    self.close_code = f.close_code
                    self.closed_at = time.monotonic()
                    return
                self.echoes += 1
        except Exception as e:                  # reported by the test
            self.error = repr(e)

    def finish(self, timeout):
        for t in self.threads:
            t.join(timeout)
        self.c.close_socket()


@pytest.mark.parametrize("flood", ["paced", "backed_up"])
@pytest.mark.parametrize("how", ["graceful", "graceful_stop"])
@pytest.mark.parametrize("mpm", MPMS)
def test_stop_while_every_child_is_busy(apache_factory, mpm, how, flood):
    # Clients that flood their echo connections across a graceful restart
    # or stop each get 1001, promptly.  prefork says "stop" to a child only
    # with a signal, which interrupts a poll but not a read or a write (they
    # restart): the child used to look only when its poll was interrupted,
    # so once the flood stopped it slept in poll until the next ping (30 s).
    # And a stop's sweep used to cut any blocking-driver connection whose
    # socket was full at that instant, as if its client did not read (and
    # the event loop any whose output was backed up).
    inst = apache_factory(mpm)
    clients = [FloodingClient(inst, flood) for _ in range(8)]
    try:
        for _ in range(200):
            if all(c.echoes > 1000 or c.error for c in clients):
                break
            time.sleep(0.05)
        assert all(c.echoes > 1000 for c in clients), \
            [(c.echoes, c.error) for c in clients]
        signalled = time.monotonic()
        if how == "graceful":
            inst.graceful()
        else:
            inst.graceful_stop(wait=False)
        time.sleep(1.0)                 # the flood goes on across the signal
        for c in clients:
            c.stop_writing.set()
        for c in clients:
            c.finish(15)
        late = [(c.close_code, c.error, c.echoes,
                 c.closed_at and round(c.closed_at - signalled, 2)) for c in clients
                if c.close_code != 1001 or c.closed_at - signalled > 10]
        assert not late, "clients not told 1001 within 10 s of the %s: %r" % (how, late)
    finally:
        for c in clients:
            c.stop_writing.set()
            c.c.close_socket()
    crash_check(inst)


def test_stop_while_handshakes_are_under_way(apache_factory):
    # Handshakes to chat rooms, and the server told to stop within a
    # millisecond of them: connections may then be ended by the MPM before
    # it hands them over (WSOCK0116), after their on_open joined a room.
    # Whatever the order, no child may crash (the ASan run of the suite
    # checks the memory).  Races: each round hits them or not.
    import signal
    import socket
    conf = COMMON_CONF + CHAT_CONF
    for round_ in range(20):
        inst = apache_factory("event", conf)
        socks = []
        try:
            for i in range(6):
                s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
                s.sendall(rawws.handshake_request("/chat?room=r%d" % (i % 2),
                                                  host="127.0.0.1:%d" % inst.port))
                socks.append(s)
            time.sleep(0.0005 * (round_ % 4))
            if round_ % 2:
                inst.terminate()
            else:
                inst._signal(signal.SIGWINCH)
        finally:
            for s in socks:
                s.close()
        assert inst.wait_exit(30), "apache2 did not exit (round %d)" % round_
        crash_check(inst)
        inst.stop()


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_client_that_resets_right_after_its_handshake(apache_factory, mpm):
    # The 101 cannot be written (or the MPM sees the connection aborted):
    # what on_open did (a room joined, a presence notice) is undone, and the
    # server goes on, its rooms exact.  It crashed the child on the next
    # WebSocket or at stop before.
    import socket
    import struct
    inst = apache_factory(mpm, COMMON_CONF + CHAT_CONF)
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
        s.sendall(rawws.handshake_request("/chat?room=reset%d" % (i % 3),
                                          host="127.0.0.1:%d" % inst.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()                           # RST, before reading the 101

    async def alone():
        # The server may still be noticing the last resets: a room holds
        # them until then, and not a moment longer (bounded wait).
        for _ in range(100):
            async with websockets.connect(inst.url("/chat?room=reset0"),
                                          ping_interval=None) as a:
                welcome = json.loads(await asyncio.wait_for(a.recv(), 10))
                assert welcome["type"] == "welcome", welcome
                if welcome["count"] == 1:
                    return True
            await asyncio.sleep(0.05)
        return False

    async def go():
        async with websockets.connect(inst.url("/chat?room=reset0"),
                                      ping_interval=None) as a:
            await asyncio.wait_for(a.recv(), 10)        # welcome
            async with websockets.connect(inst.url("/chat?room=reset0"),
                                          ping_interval=None) as b:
                assert json.loads(await asyncio.wait_for(b.recv(), 10))["count"] == 2
                await b.send("still here")
                for _ in range(50):
                    m = json.loads(await asyncio.wait_for(a.recv(), 10))
                    if m["type"] == "message":
                        return m["data"]
    assert run(alone()), "members of reset connections stayed in the room"
    assert run(go()) == "still here"
    crash_check(inst)


def test_graceful_restart_keeps_serving(apache_factory):
    inst = apache_factory("event")
    since = inst.log_offset()
    old = inst.child_pids()
    inst.graceful()
    assert inst.wait_log(r"resuming normal operations", timeout=15, since=since)
    # An old child may still accept a connection before it stops (and tells
    # its WebSockets 1001): the new generation's children only.
    for _ in range(600):
        if not inst.child_pids() & old:
            break
        time.sleep(0.05)
    assert not inst.child_pids() & old, "the old generation did not go"

    async def go():
        async with websockets.connect(inst.url("/echo"), ping_interval=None,
                                      open_timeout=10) as ws:
            await ws.send("after graceful")
            return await asyncio.wait_for(ws.recv(), 5)
    assert run(go()) == "after graceful"


def test_configtest_accepts_the_test_config(apache_factory):
    inst = apache_factory("event", start=False)
    rc, out = inst.configtest()
    assert rc == 0, out
    assert "Syntax OK" in out


def test_configtest_accepts_decimal_and_zero_intervals(apache_factory):
    inst = apache_factory("event", start=False, extra_conf="""
<Location /a>
    WSockHandler echo
    WSockPingInterval 0.25
    WSockIdleTimeout 0
    WSockCloseTimeout 2.5
    WSockMaxMessageSize 1
    WSockFragmentSize 0
    WSockRequireProtocol Off
    WSockProtocols one two three
</Location>
""")
    rc, out = inst.configtest()
    assert rc == 0, out


@pytest.mark.parametrize("line", [
    "WSockHandler no-such-handler",
    "WSockMaxMessageSize lots",
    "WSockMaxMessageSize -5",
    "WSockPingInterval soon",
    "WSockPingInterval -1",
    "WSockIdleTimeout forever",
    "WSockCloseTimeout x",
    "WSockFragmentSize big",
    "WSockRequireProtocol maybe",
])
def test_configtest_rejects_bad_values(apache_factory, line):
    inst = apache_factory("event", start=False, extra_conf="""
<Location /bad>
    WSockHandler echo
    %s
</Location>
""" % line)
    rc, out = inst.configtest()
    assert rc != 0, "configtest accepted %r:\n%s" % (line, out)
    assert "Syntax OK" not in out
