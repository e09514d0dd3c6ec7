"""After the upgrade: framing rules, close codes, control frames, limits."""

import os
import time

import pytest

import rawws
from rawws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, build_frame,
                   close_payload)
from conftest import TAG_RE, new_tags

F = build_frame


def cp(code, reason=b""):
    return close_payload(code, reason)


# (id, bytes the client sends after the handshake, expected close code)
VIOLATIONS = [
    ("unmasked-text", F(OP_TEXT, b"hello", mask=False), 1002),
    ("unmasked-binary", F(OP_BINARY, b"\x00\x01", mask=False), 1002),
    ("unmasked-ping", F(OP_PING, b"p", mask=False), 1002),
    ("rsv1", F(OP_TEXT, b"hello", rsv=0b100), 1002),
    ("rsv2", F(OP_TEXT, b"hello", rsv=0b010), 1002),
    ("rsv3", F(OP_BINARY, b"hello", rsv=0b001), 1002),
    ("rsv-on-ping", F(OP_PING, b"p", rsv=0b100), 1002),
    ("opcode-3", F(0x3, b"x"), 1002),
    ("opcode-4", F(0x4, b"x"), 1002),
    ("opcode-7", F(0x7, b"x"), 1002),
    ("opcode-B", F(0xB, b"x"), 1002),
    ("opcode-F", F(0xF, b"x"), 1002),
    ("continuation-without-message", F(OP_CONT, b"orphan"), 1002),
    # the complete "done" message is echoed before the orphan continuation fails
    ("continuation-after-finished-message",
     F(OP_TEXT, b"done") + F(OP_CONT, b"more"), 1002, [b"done"]),
    ("text-inside-fragmented-text", F(OP_TEXT, b"a", fin=False) + F(OP_TEXT, b"b"), 1002),
    ("binary-inside-fragmented-text", F(OP_TEXT, b"a", fin=False) + F(OP_BINARY, b"b"), 1002),
    ("text-inside-fragmented-binary",
     F(OP_BINARY, b"a", fin=False) + F(OP_CONT, b"b", fin=False) + F(OP_TEXT, b"c"), 1002),
    ("ping-126-bytes", F(OP_PING, b"p" * 126), 1002),
    ("pong-126-bytes", F(OP_PONG, b"p" * 126), 1002),
    ("close-126-bytes", F(OP_CLOSE, cp(1000, b"r" * 124)), 1002),
    ("ping-fragmented", F(OP_PING, b"p", fin=False), 1002),
    ("pong-fragmented", F(OP_PONG, b"p", fin=False), 1002),
    ("close-fragmented", F(OP_CLOSE, cp(1000), fin=False), 1002),
    ("len16-for-5-bytes", F(OP_TEXT, b"hello", length_encoding=16), 1002),
    ("len16-for-125-bytes", F(OP_BINARY, b"b" * 125, length_encoding=16), 1002),
    ("len64-for-200-bytes", F(OP_BINARY, b"b" * 200, length_encoding=64), 1002),
    ("len64-for-65535-bytes", F(OP_BINARY, b"b" * 65535, length_encoding=64), 1002),
    ("len64-top-bit", F(OP_BINARY, b"", length_encoding=64, length=1, top_bit=True), 1002),
    ("len64-for-ping", F(OP_PING, b"p", length_encoding=64), 1002),
    ("utf8-ff", F(OP_TEXT, b"ok \xff"), 1007),
    ("utf8-overlong", F(OP_TEXT, b"\xc0\xaf"), 1007),
    ("utf8-surrogate", F(OP_TEXT, b"\xed\xa0\x80"), 1007),
    ("utf8-above-10ffff", F(OP_TEXT, b"\xf4\x90\x80\x80"), 1007),
    ("utf8-truncated-at-end", F(OP_TEXT, b"euro \xe2\x82"), 1007),
    ("utf8-truncated-at-end-of-fragments",
     F(OP_TEXT, b"euro ", fin=False) + F(OP_CONT, b"\xe2\x82"), 1007),
    ("utf8-bad-in-last-fragment",
     F(OP_TEXT, b"fine ", fin=False) + F(OP_CONT, b"\x80 bad"), 1007),
    ("close-1-byte", F(OP_CLOSE, b"\x03"), 1002),
    ("close-reason-not-utf8", F(OP_CLOSE, cp(1000, b"bad \xff reason")), 1007),
] + [
    ("close-code-%d" % code, F(OP_CLOSE, cp(code)), 1002)
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)
]


@pytest.fixture(scope="module")
def clean_tags(server):
    """WSOCK tags an ordinary session logs; a protocol error must log more."""
    since = server.log_offset()
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_text("hello")
        c.recv_message()
        c.send_close(1000)
        c.recv_close()
        c.wait_eof(5)
    time.sleep(0.3)   # let late lines land
    return new_tags(server, since)


@pytest.mark.parametrize("data,code,echoes", [(v[1], v[2], v[3] if len(v) > 3 else [])
                                               for v in VIOLATIONS],
                         ids=[v[0] for v in VIOLATIONS])
def test_violation_close_code(server, clean_tags, data, code, echoes):
    since = server.log_offset()
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_raw(data)
        got, reason, frame, skipped = c.recv_close(timeout=5)
        assert got == code, "expected close %d, got %r (%r)" % (code, got, reason)
        assert not frame.masked
        assert [f.payload for f in skipped if f.opcode in (OP_TEXT, OP_BINARY, OP_CONT)] \
            == echoes, "data frames before the close: %r" % skipped
        # the server closes the TCP connection; a polite client answers the
        # server's close unless it already sent one
        if not (data[0] & 0x0F) == OP_CLOSE:
            try:
                c.send_close(1000)
            except OSError:
                pass
        assert c.wait_eof(8), "server kept the TCP connection open after close %d" % code

    # the error is logged with a WSOCKnnnn tag: either a tag a clean session
    # does not log, or a tagged line naming the close code
    deadline = time.monotonic() + 3
    while True:
        text = server.error_log(since)
        tagged_lines = [ln for ln in text.splitlines() if TAG_RE.search(ln)]
        extra = new_tags(server, since) - clean_tags
        if extra or any(str(code) in ln for ln in tagged_lines):
            break
        assert time.monotonic() < deadline, (
            "no WSOCKnnnn line for this protocol error (a clean session logs %s):\n%s"
            % (sorted(clean_tags), text))
        time.sleep(0.05)


def test_invalid_first_fragment_fails_fast(server):
    """An invalid first fragment is failed right away, though the message never ends."""
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_frame(OP_TEXT, b"abc \xff def", fin=False)
        code, _, _, _ = c.recv_close(timeout=5)
        assert code == 1007


def test_truncated_sequence_at_fragment_end_is_not_an_error_yet(server):
    """A code point split across fragments is valid UTF-8."""
    euro = "\u20ac".encode()          # e2 82 ac
    smile = "\U0001F600".encode()     # 4 bytes
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_frame(OP_TEXT, b"a" + euro[:1], fin=False)
        c.send_frame(OP_CONT, euro[1:2], fin=False)
        c.send_frame(OP_CONT, euro[2:] + smile[:3], fin=False)
        c.send_frame(OP_CONT, smile[3:] + b"z", fin=True)
        op, data, _ = c.recv_message()
        assert op == OP_TEXT and data == b"a" + euro + smile + b"z"


def test_fragmented_input_with_interleaved_ping(server):
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_frame(OP_TEXT, b"Hello, ", fin=False)
        c.send_frame(OP_PING, b"mid-message")
        c.send_frame(OP_CONT, b"", fin=False)           # empty fragment is legal
        c.send_frame(OP_CONT, b"World", fin=False)
        c.send_frame(OP_PING, b"second")
        c.send_frame(OP_CONT, b"!", fin=True)
        frames = c.recv_frames_until(lambda f: f.opcode == OP_TEXT and f.fin, timeout=5)
        pongs = [f.payload for f in frames if f.opcode == OP_PONG]
        data = [f for f in frames if f.opcode in (OP_TEXT, OP_CONT)]
        assert pongs == [b"mid-message", b"second"]
        assert len(data) == 1 and data[0].payload == b"Hello, World!"
        assert not any(f.opcode == OP_CLOSE for f in frames)


def test_fragmented_binary_many_pieces(server):
    blob = os.urandom(70000)
    pieces = [blob[i:i + 7000] for i in range(0, len(blob), 7000)]
    with rawws.RawWS.connect(server.port, "/echo") as c:
        for i, p in enumerate(pieces):
            c.send_frame(OP_BINARY if i == 0 else OP_CONT, p, fin=(i == len(pieces) - 1))
        op, data, _ = c.recv_message(timeout=10)
        assert op == OP_BINARY and data == blob


def test_message_split_across_tcp_writes(server):
    """Frames arriving a few bytes at a time still parse."""
    frame = F(OP_TEXT, b"dribbled " * 40)
    with rawws.RawWS.connect(server.port, "/echo") as c:
        for i in range(0, len(frame), 37):
            c.send_raw(frame[i:i + 37])
            time.sleep(0.005)
        op, data, _ = c.recv_message()
        assert data == b"dribbled " * 40


def test_two_frames_in_one_write(server):
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_raw(F(OP_TEXT, b"one") + F(OP_BINARY, b"two") + F(OP_PING, b"3"))
        got = c.recv_frames_until(lambda f: f.opcode == OP_PONG, timeout=5)
        got = [(f.opcode, f.payload) for f in got]
        assert got == [(OP_TEXT, b"one"), (OP_BINARY, b"two"), (OP_PONG, b"3")]


@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(125))],
                         ids=["empty", "short", "125-bytes"])
def test_ping_gets_pong_with_same_payload(server, payload):
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_frame(OP_PING, payload)
        f = c.recv_frame(timeout=5)
        assert f.opcode == OP_PONG and f.fin and not f.masked
        assert f.payload == payload


def test_ping_with_websockets_client(server):
    import asyncio
    import websockets
    from conftest import run

    async def go():
        async with websockets.connect(server.url("/echo"), ping_interval=None) as ws:
            waiter = await ws.ping(b"abc")
            await asyncio.wait_for(waiter, 5)
            return True
    assert run(go())


def test_unsolicited_pong_is_ignored(server):
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_frame(OP_PONG, b"nobody asked")
        c.send_frame(OP_PONG, b"")
        c.send_text("still here")
        f = c.recv_frame(timeout=5)
        assert (f.opcode, f.payload) == (OP_TEXT, b"still here")


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1008, 1011, 1014, 3000, 4000, 4999])
def test_client_close_code_is_echoed(server, code):
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_close(code, "bye \u2713")
        got, _, frame, skipped = c.recv_close(timeout=5)
        assert got == code
        assert not frame.masked
        assert skipped == []
        assert c.wait_eof(8), "server did not close TCP after the close handshake"


def test_empty_close_is_answered(server):
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_frame(OP_CLOSE, b"")
        got, _, frame, _ = c.recv_close(timeout=5)
        assert frame.payload == b"" or got == 1000, frame
        assert c.wait_eof(8)


def test_close_with_websockets_client(server):
    import websockets
    from conftest import run

    async def go():
        async with websockets.connect(server.url("/echo"), ping_interval=None) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(code=4321, reason="done")
            return ws.close_code, ws.close_reason
    code, _ = run(go())
    assert code == 4321


def test_nothing_processed_after_close(server):
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_raw(F(OP_CLOSE, cp(1000)) + F(OP_TEXT, b"ghost") + F(OP_PING, b"ghost"))
        code, _, _, skipped = c.recv_close(timeout=5)
        assert code == 1000
        assert skipped == [], "frames before the close: %r" % skipped
        assert c.wait_eof(8)
        # anything that arrived after the close frame
        rest = c.buf
        assert b"ghost" not in rest, "server answered a frame sent after its close"


# --------------------------------------------------------------- max size
def test_max_size_exact_limit_passes(server):
    with rawws.RawWS.connect(server.port, "/small") as c:
        c.send_binary(b"x" * 1000)
        op, data, _ = c.recv_message()
        assert len(data) == 1000


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_max_size_exceeded_1009(server, kind):
    with rawws.RawWS.connect(server.port, "/small") as c:
        c.send_frame(OP_TEXT if kind == "text" else OP_BINARY, b"x" * 1001)
        code, _, _, skipped = c.recv_close(timeout=5)
        assert code == 1009
        assert not [f for f in skipped if f.opcode in (OP_TEXT, OP_BINARY)]


def test_max_size_decided_from_header(server):
    """Only a header announcing 2000 bytes is sent: the close comes anyway."""
    with rawws.RawWS.connect(server.port, "/small") as c:
        c.send_raw(F(OP_BINARY, b"", length=2000)[:8])     # 2+2 header bytes + mask key
        code, _, _, _ = c.recv_close(timeout=5)
        assert code == 1009


def test_max_size_huge_64bit_header(server):
    with rawws.RawWS.connect(server.port, "/small") as c:
        c.send_raw(F(OP_BINARY, b"", length=1 << 40)[:14])
        code, _, _, _ = c.recv_close(timeout=5)
        assert code == 1009


def test_max_size_counts_whole_fragmented_message(server):
    with rawws.RawWS.connect(server.port, "/small") as c:
        c.send_frame(OP_BINARY, b"a" * 600, fin=False)
        # second fragment: header only, announcing 600 more (total 1200 > 1000)
        c.send_raw(F(OP_CONT, b"", length=600)[:8])
        code, _, _, skipped = c.recv_close(timeout=5)
        assert code == 1009
        assert not [f for f in skipped if f.opcode in (OP_TEXT, OP_BINARY)]


def test_nested_location_overrides_max_size(server):
    """/small/larger inherits the echo handler from /small and raises the limit."""
    with rawws.RawWS.connect(server.port, "/small/larger") as c:
        c.send_binary(b"y" * 3000)
        op, data, _ = c.recv_message()
        assert data == b"y" * 3000
        c.send_binary(b"y" * 5001)
        code, _, _, _ = c.recv_close(timeout=5)
        assert code == 1009


def test_max_size_with_websockets_client(server):
    import asyncio
    import websockets
    from conftest import run

    async def go():
        async with websockets.connect(server.url("/small"), ping_interval=None) as ws:
            await ws.send("z" * 1000)
            assert await asyncio.wait_for(ws.recv(), 5) == "z" * 1000
            await ws.send("z" * 1001)
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 5)
            return ei.value.rcvd.code if ei.value.rcvd else None
    assert run(go()) == 1009
