"""Echo through a real client (python3-websockets) and a raw one, on every MPM."""

import asyncio
import os

import pytest
import websockets

import rawws
from conftest import run

SIZES = [0, 125, 126, 65535, 65536]
MiB = 1024 * 1024


def connect(url, **kw):
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 5)
    return websockets.connect(url, **kw)


def text_of(n):
    return ("abcdefghijklmnopqrstuvwxyz0123456789" * (n // 36 + 1))[:n]


async def echo_one(url, msg, **kw):
    async with connect(url, **kw) as ws:
        await ws.send(msg)
        got = await asyncio.wait_for(ws.recv(), 20)
        return got


@pytest.mark.parametrize("n", SIZES)
def test_echo_text(server3, n):
    msg = text_of(n)
    got = run(echo_one(server3.url("/echo"), msg))
    assert isinstance(got, str), "text message came back as %r" % type(got)
    assert got == msg


@pytest.mark.parametrize("n", SIZES)
def test_echo_binary(server3, n):
    msg = os.urandom(n)
    got = run(echo_one(server3.url("/echo"), msg))
    assert isinstance(got, bytes), "binary message came back as %r" % type(got)
    assert got == msg


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_echo_1mib(server3, kind):
    # /big raises WSockMaxMessageSize to 4 MiB
    msg = text_of(MiB) if kind == "text" else os.urandom(MiB)
    got = run(echo_one(server3.url("/big"), msg))
    assert type(got) is type(msg)
    assert len(got) == len(msg)
    assert got == msg


def test_default_max_size_is_1mib(server3):
    """/echo keeps the default 1048576: exactly 1 MiB passes, one byte more is 1009."""
    msg = os.urandom(MiB)
    assert run(echo_one(server3.url("/echo"), msg)) == msg

    async def too_big():
        async with connect(server3.url("/echo")) as ws:
            await ws.send(os.urandom(MiB + 1))
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 20)
            return ei.value
    exc = run(too_big())
    assert exc.rcvd is not None, "no close frame from the server: %r" % exc
    assert exc.rcvd.code == 1009


def test_echo_unicode_text(server3):
    msg = "h\u00e9llo w\u00f6rld \u2713 \U0001F600 \u4e2d\u6587"
    assert run(echo_one(server3.url("/echo"), msg)) == msg


def test_many_messages_in_order(server3):
    async def go():
        async with connect(server3.url("/echo")) as ws:
            msgs = ["m%d-%s" % (i, "x" * (i * 37 % 300)) for i in range(200)]
            msgs += [os.urandom(i * 53 % 2000) for i in range(50)]
            for m in msgs:
                await ws.send(m)
            got = [await asyncio.wait_for(ws.recv(), 20) for _ in msgs]
            assert got == msgs
            await ws.close()
            return ws.close_code
    assert run(go()) == 1000


def test_extensions_not_negotiated(server3):
    """websockets offers permessage-deflate by default; the server must not accept it."""
    async def go():
        async with connect(server3.url("/echo"), compression="deflate") as ws:
            assert ws.response_headers.get("Sec-WebSocket-Extensions") is None
            assert ws.extensions == []
            await ws.send("plain")
            return await asyncio.wait_for(ws.recv(), 10)
    assert run(go()) == "plain"


@pytest.mark.parametrize("n", SIZES + [MiB])
def test_raw_echo_frames_unmasked_minimal(server3, n):
    """The server's frames are unmasked, unfragmented (no WSockFragmentSize),
    FIN set, RSV clear, and use the minimal length encoding."""
    path = "/echo" if n < MiB else "/big"
    with rawws.RawWS.connect(server3.port, path) as c:
        data = os.urandom(n)
        c.send_binary(data)
        op, payload, frames = c.recv_message(timeout=20)
        assert op == rawws.OP_BINARY
        assert payload == data
        assert len(frames) == 1
        f = frames[0]
        assert f.fin and f.rsv == 0 and not f.masked
        assert f.minimal_length(), "length encoded in %d bits for %d bytes" % (
            f.length_field, len(f.payload))


@pytest.mark.parametrize("nclients", [50])
def test_concurrent_clients(server3, nclients):
    """50 clients connected at once, each echoing its own 20 messages."""
    nmsgs = 20

    async def client(i, ready, go):
        async with connect(server3.url("/echo"), open_timeout=20) as ws:
            ready.append(i)
            await asyncio.wait_for(go.wait(), 30)
            sent = []
            for j in range(nmsgs):
                m = ("client %d message %d " % (i, j)) + "y" * ((i * 31 + j * 7) % 500)
                if j % 3 == 2:
                    m = m.encode()
                sent.append(m)
                await ws.send(m)
            got = [await asyncio.wait_for(ws.recv(), 30) for _ in range(nmsgs)]
            assert got == sent, "client %d got other data" % i
            return i

    async def main():
        ready = []
        go = asyncio.Event()
        tasks = [asyncio.create_task(client(i, ready, go)) for i in range(nclients)]
        # all connections are open at the same time before anyone sends
        for _ in range(600):
            if len(ready) == nclients:
                break
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()
            await asyncio.sleep(0.05)
        assert len(ready) == nclients, "only %d of %d clients connected" % (len(ready), nclients)
        go.set()
        return await asyncio.gather(*tasks)

    assert sorted(run(main(), timeout=90)) == list(range(nclients))


def test_bulk_echo_with_concurrent_reader(server3):
    """16 MiB of 64 KiB messages written as fast as possible while another
    thread reads the echoes: no loss, no reordering, no deadlock."""
    import threading
    n, size = 256, 65536
    blobs = [os.urandom(size) for _ in range(4)]
    with rawws.RawWS.connect(server3.port, "/echo", timeout=30) as c:
        err = []

        def writer():
            try:
                for i in range(n):
                    c.send_frame(rawws.OP_BINARY, bytes([i % 256]) + blobs[i % 4][1:])
            except Exception as e:      # reported by the main thread
                err.append(e)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        for i in range(n):
            op, data, _ = c.recv_message(timeout=30)
            assert op == rawws.OP_BINARY and len(data) == size
            assert data == bytes([i % 256]) + blobs[i % 4][1:], "message %d differs" % i
        t.join(30)
        assert not err, err


def test_client_tcp_close_without_close_frame(server3):
    """A client that just shuts its side down: the server closes too."""
    with rawws.RawWS.connect(server3.port, "/echo") as c:
        c.send_text("bye")
        assert c.recv_message()[1] == b"bye"
        c.shutdown_write()
        assert c.wait_eof(10), "server kept the connection after the client's FIN"
