"""WSockFragmentSize: outgoing messages larger than it leave as several frames.

/frag has WSockFragmentSize 1000.
"""

import asyncio
import os

import pytest
import websockets

import rawws
from rawws import OP_BINARY, OP_CONT, OP_TEXT
from conftest import run


def check_fragments(frames, opcode, total):
    assert frames[0].opcode == opcode
    assert all(f.opcode == OP_CONT for f in frames[1:]), frames
    assert all(not f.fin for f in frames[:-1]) and frames[-1].fin, frames
    assert all(not f.masked and f.rsv == 0 for f in frames)
    assert all(len(f.payload) <= 1000 for f in frames), [len(f.payload) for f in frames]
    assert len(frames) >= -(-total // 1000)


@pytest.mark.parametrize("n", [1001, 2500, 10000, 65536])
def test_binary_is_fragmented(server, n):
    data = os.urandom(n)
    with rawws.RawWS.connect(server.port, "/frag") as c:
        c.send_binary(data)
        op, got, frames = c.recv_message(timeout=10)
        assert got == data
        assert len(frames) > 1, "a %d-byte message came as one frame" % n
        check_fragments(frames, OP_BINARY, n)


def test_text_is_fragmented_and_reassembles_to_valid_utf8(server):
    text = ("\u20ac\U0001F600 multi-byte across fragment boundaries " * 80)
    data = text.encode()
    with rawws.RawWS.connect(server.port, "/frag") as c:
        c.send_text(data)
        op, got, frames = c.recv_message(timeout=10)
        assert got == data
        assert got.decode("utf-8") == text
        assert len(frames) > 1
        check_fragments(frames, OP_TEXT, len(data))


@pytest.mark.parametrize("n", [0, 1, 999, 1000])
def test_small_messages_are_one_frame(server, n):
    data = os.urandom(n)
    with rawws.RawWS.connect(server.port, "/frag") as c:
        c.send_binary(data)
        op, got, frames = c.recv_message(timeout=10)
        assert got == data and len(frames) == 1 and frames[0].fin


def test_no_fragmentation_by_default(server):
    data = os.urandom(100000)
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_binary(data)
        op, got, frames = c.recv_message(timeout=10)
        assert got == data and len(frames) == 1


def test_pong_answered_between_outgoing_fragments_or_after(server):
    """A ping sent right after a big message still gets its pong, unfragmented."""
    with rawws.RawWS.connect(server.port, "/frag") as c:
        c.send_binary(b"q" * 20000)
        c.send_frame(rawws.OP_PING, b"pp")
        frames = c.recv_frames_until(lambda f: f.opcode == rawws.OP_PONG, timeout=10)
        assert frames[-1].payload == b"pp" and frames[-1].fin
        data = [f for f in frames if f.opcode in (OP_BINARY, OP_CONT)]
        if not data or not data[-1].fin:
            _, rest, more = c.recv_message(timeout=10)
            data += more
        assert b"".join(f.payload for f in data) == b"q" * 20000


def test_websockets_client_reassembles(server):
    async def go():
        async with websockets.connect(server.url("/frag"), ping_interval=None,
                                      max_size=None) as ws:
            msgs = [os.urandom(5000), "t" * 4321, os.urandom(300000)]
            out = []
            for m in msgs:
                await ws.send(m)
                out.append(await asyncio.wait_for(ws.recv(), 10))
            return msgs, out
    msgs, out = run(go())
    assert out == msgs
