"""Clients that send slowly on purpose, through a real apache2 with raw sockets.

Before the upgrade mod_reqtimeout (Debian's own reqtimeout.conf) cuts a
slowloris handshake.  After it, WSockFrameTimeout closes a frame or
fragmented message that has started and does not complete: a client that
dribbles a byte now and then is never idle, so WSockIdleTimeout alone lets it
hold the connection (and a partial message buffer) for ever.

Locations:
  /ft       WSockFrameTimeout 2, idle timeout 60 s, no pings
  /ft-off   WSockFrameTimeout 0, WSockIdleTimeout 2: the idle timeout alone
Waits are upper bounds only.
"""

import select
import socket
import time

import pytest

import rawws
from rawws import OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, build_frame
from conftest import COMMON_CONF, new_instance, serve

CONF = COMMON_CONF + """
<Location /ft>
    WSockHandler echo
    WSockFrameTimeout 2
    WSockIdleTimeout 60
    WSockPingInterval 0
</Location>
<Location /ft-off>
    WSockHandler echo
    WSockFrameTimeout 0
    WSockIdleTimeout 2
    WSockPingInterval 0
</Location>
"""

DEBIAN_REQTIMEOUT = "/etc/apache2/mods-available/reqtimeout.conf"


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request):
    yield from serve(new_instance(request.param, CONF))


def dribble(c, data, pause, limit):
    """Sends data one byte every `pause` seconds until the server sends
    something or `limit` seconds pass; returns the bytes sent."""
    deadline = time.monotonic() + limit
    sent = 0
    while sent < len(data) and time.monotonic() < deadline:
        try:
            c.send_raw(data[sent:sent + 1])
        except OSError:
            break
        sent += 1
        r, _, _ = select.select([c.sock], [], [], pause)
        if r:
            break
    return sent


def test_dribbled_frame_is_closed_1008(server):
    since = server.log_offset()
    frame = build_frame(OP_TEXT, b"d" * 100)      # 106 bytes: 30 s at this pace
    with rawws.RawWS.connect(server.port, "/ft") as c:
        sent = dribble(c, frame, 0.3, 20)
        assert sent < len(frame), "the whole frame went through"
        code, reason, _, skipped = c.recv_close(timeout=10)
        assert (code, reason) == (1008, "frame timeout")
        assert skipped == []
        assert c.wait_eof(8)
    assert server.wait_log(r"WSOCK0751: WebSocket /ft: a frame or fragmented message is "
                           r"still incomplete after \d+ ms", since=since)


def test_dribbled_header_is_closed_1008(server):
    """Two bytes of a 14-byte header, then nothing: still an unfinished frame."""
    with rawws.RawWS.connect(server.port, "/ft") as c:
        c.send_raw(build_frame(OP_BINARY, b"x" * 70000)[:2])
        code, reason, _, _ = c.recv_close(timeout=15)
        assert (code, reason) == (1008, "frame timeout")


def test_never_finished_fragmented_message_is_closed(server):
    """Complete fragments, a ping in between, but never the last one."""
    with rawws.RawWS.connect(server.port, "/ft") as c:
        deadline = time.monotonic() + 20
        c.send_frame(OP_TEXT, b"start ", fin=False)
        close = None
        while close is None and time.monotonic() < deadline:
            c.send_frame(OP_CONT, b"more ", fin=False)
            c.send_frame(rawws.OP_PING, b"alive")
            r, _, _ = select.select([c.sock], [], [], 0.4)
            while r and close is None:
                f = c.recv_frame(timeout=5)
                if f.opcode == OP_CLOSE:
                    close = f
                r, _, _ = select.select([c.sock], [], [], 0)
        assert close is not None, "no close within 20 s"
        assert (close.close_code, close.close_reason) == (1008, "frame timeout")


def test_slow_whole_messages_are_fine(server):
    """Whole messages every 0.5 s for twice the frame timeout: never closed."""
    with rawws.RawWS.connect(server.port, "/ft") as c:
        for i in range(9):
            c.send_text("tick %d" % i)
            op, data, _ = c.recv_message(timeout=5)
            assert data == b"tick %d" % i
            time.sleep(0.5)
        # a frame sent in two halves, well within the bound, is fine too
        frame = build_frame(OP_TEXT, b"two halves")
        c.send_raw(frame[:5])
        time.sleep(0.5)
        c.send_raw(frame[5:])
        assert c.recv_message(timeout=5)[1] == b"two halves"


def test_idle_timeout_alone_does_not_stop_a_dribbler(server):
    """Why WSockFrameTimeout exists: with only WSockIdleTimeout 2, a byte every
    0.5 s keeps an unfinished frame open for twice the idle timeout."""
    frame = build_frame(OP_TEXT, b"slow" * 3)     # 18 bytes: 9 s at this pace
    with rawws.RawWS.connect(server.port, "/ft-off") as c:
        start = time.monotonic()
        sent = dribble(c, frame[:-1], 0.5, 12)
        assert sent == len(frame) - 1, "the server interrupted the dribble"
        assert time.monotonic() - start > 4           # the idle timeout is 2 s
        c.send_raw(frame[-1:])
        assert c.recv_message(timeout=5)[1] == b"slow" * 3


def test_slowloris_handshake_cut_by_reqtimeout(apache_factory):
    """Debian's reqtimeout.conf (header=20-40,minrate=500): handshake headers
    sent a few bytes a second are cut, on a WebSocket location too."""
    inst = apache_factory("event", extra_conf=CONF + "Include %s\n" % DEBIAN_REQTIMEOUT,
                          reqtimeout=True)
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
    try:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        deadline = time.monotonic() + 50             # 40 s is reqtimeout's maximum
        cut = False
        i = 0
        while time.monotonic() < deadline and not cut:
            try:
                s.sendall(b"X-Slow-%d: ." % i + b"\r\n")
            except OSError:
                cut = True
                break
            i += 1
            r, _, _ = select.select([s], [], [], 1.0)
            if r:
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
                cut = True
        assert cut, "a slowloris handshake was still open after 50 s"
    finally:
        s.close()
    # the server itself is fine: a normal handshake still works
    with rawws.RawWS.connect(inst.port, "/echo") as c:
        c.send_text("after")
        assert c.recv_message(timeout=5)[1] == b"after"
