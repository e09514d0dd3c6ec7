"""Server pings, the idle timeout and the close timeout.

Locations (see conftest.COMMON_CONF):
  /ping       WSockPingInterval 0.5, WSockIdleTimeout 0
  /idle       WSockPingInterval 0,   WSockIdleTimeout 2
  /idleping   WSockPingInterval 0.5, WSockIdleTimeout 2
  /closewait  WSockPingInterval 0,   WSockIdleTimeout 1, WSockCloseTimeout 1
Waits are upper bounds only.
"""

import asyncio
import time

import websockets

import rawws
from rawws import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT
from conftest import run


def test_server_sends_pings(server):
    with rawws.RawWS.connect(server.port, "/ping") as c:
        frames = c.recv_frames_until(lambda f: f.opcode == OP_PING, timeout=10)
        ping = frames[-1]
        assert ping.fin and not ping.masked and ping.rsv == 0
        assert len(ping.payload) <= 125
        assert not [f for f in frames if f.opcode == OP_CLOSE]
        c.send_frame(OP_PONG, ping.payload)
        # a second ping follows (the interval repeats)
        c.recv_frames_until(lambda f: f.opcode == OP_PING, timeout=10, answer_pings=True)
        c.send_text("still open")
        op, data, _ = c.recv_message(timeout=5)
        assert (op, data) == (OP_TEXT, b"still open")


def test_no_pings_when_interval_is_zero(server):
    """/idle has WSockPingInterval 0: nothing at all arrives before the idle close."""
    with rawws.RawWS.connect(server.port, "/idle") as c:
        code, reason, _, skipped = c.recv_close(timeout=15)
        assert [f.opcode for f in skipped] == [], "frames before the idle close: %r" % skipped
        assert code == 1001


def test_websockets_client_answers_server_pings(server):
    async def go():
        async with websockets.connect(server.url("/ping"), ping_interval=None) as ws:
            await asyncio.sleep(2.0)           # several server pings, answered by the client
            await ws.send("after pings")
            return await asyncio.wait_for(ws.recv(), 5)
    assert run(go()) == "after pings"


def test_idle_timeout_closes_silent_client(server):
    since = server.log_offset()
    with rawws.RawWS.connect(server.port, "/idle") as c:
        code, reason, frame, _ = c.recv_close(timeout=15)
        assert code == 1001
        assert reason == "idle timeout"
        assert not frame.masked
        c.send_close(1001)
        assert c.wait_eof(8), "server did not close TCP after the idle close"
    m = server.wait_log(r"WSOCK\d{4}[^\n]*idle", timeout=5, since=since)
    assert m, "idle timeout not logged with a WSOCK tag:\n" + server.error_log(since)


def test_idle_timeout_without_client_close(server):
    """The silent client never answers the close: the server still closes TCP
    (an idle timeout closes at once, without waiting for WSockCloseTimeout)."""
    with rawws.RawWS.connect(server.port, "/closewait") as c:
        code, reason, _, _ = c.recv_close(timeout=15)
        assert code == 1001
        assert c.wait_eof(4), "TCP still open well after WSockCloseTimeout 1"


def test_idle_timeout_with_websockets_client(server):
    async def go():
        async with websockets.connect(server.url("/idle"), ping_interval=None) as ws:
            try:
                await asyncio.wait_for(ws.recv(), 15)
            except websockets.ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else None
            return "no close"
    assert run(go()) == (1001, "idle timeout")


def test_pongs_count_as_activity(server):
    """/idleping pings every 0.5 s with a 2 s idle timeout: a client that only
    answers pings stays connected for twice the idle timeout."""
    with rawws.RawWS.connect(server.port, "/idleping") as c:
        deadline = time.monotonic() + 4.5
        pings = 0
        while time.monotonic() < deadline:
            try:
                f = c.recv_frame(timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            assert f.opcode != OP_CLOSE, "closed (%r %r) though every ping was answered" % (
                f.close_code, f.close_reason)
            if f.opcode == OP_PING:
                pings += 1
                c.send_frame(OP_PONG, f.payload)
        assert pings >= 2
        c.send_text("alive")
        op, data, _ = c.recv_message(timeout=5)
        assert data == b"alive"


def test_unanswered_pings_do_not_keep_connection_alive(server):
    """Server pings are not peer activity: a client ignoring them is closed."""
    with rawws.RawWS.connect(server.port, "/idleping") as c:
        code, reason, _, skipped = c.recv_close(timeout=15)
        assert code == 1001 and reason == "idle timeout"
        assert any(f.opcode == OP_PING for f in skipped)


def test_data_counts_as_activity(server):
    with rawws.RawWS.connect(server.port, "/idle") as c:
        for i in range(8):                  # 4 s of chatter against a 2 s idle timeout
            c.send_text("tick %d" % i)
            op, data, _ = c.recv_message(timeout=5)
            assert data == b"tick %d" % i
            time.sleep(0.5)
