"""Flow control for handlers (include/wsock.h, WSOCK_API_MINOR 1):
wsock_send_try() and wsock_on_writable() let a producer send as fast as its
client reads, through a bounded queue, without being dropped or closed as a
slow consumer; wsock_ref() keeps the connection valid for a thread of the
handler that outlives it.

The test plugin tests/integration/plugins/tp_producer.c starts a thread per
"produce N SIZE" that sends N numbered binary messages with wsock_send_try()
and waits on wsock_on_writable() whenever it says APR_EAGAIN; "produce-send"
uses plain wsock_send() for comparison.  The location's WSockSendQueue is
tiny (4 messages, 64K), so a client that reads more slowly than the thread
produces fills it at once.
"""

import asyncio
import os
import struct
import tempfile

import pytest
import websockets

from conftest import new_instance, run, serve, session_dir
from test_plugins import PLUGIN_SRC, apxs_build, REPO

CONF = """\
WSockPlugin producer {so}
<Location /produce>
    WSockHandler producer
    WSockSendQueue 4 64K close
    WSockPingInterval 0
</Location>
"""


@pytest.fixture(scope="module")
def producer_so():
    base = tempfile.mkdtemp(prefix="producer-", dir=session_dir())
    so = apxs_build(os.path.join(PLUGIN_SRC, "tp_producer.c"), base,
                    os.path.join(REPO, "include"))
    for dirpath, dirnames, _ in os.walk(base):
        os.chmod(dirpath, 0o755)
    return so


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request, producer_so):
    inst = new_instance(request.param, CONF.format(so=producer_so))
    yield from serve(inst)


async def slow_reader(ws, expect, size, pause_every=8, pause=0.02):
    """Reads `expect` numbered messages, pausing now and then; returns the
    final text message."""
    for i in range(expect):
        msg = await asyncio.wait_for(ws.recv(), 20)
        assert isinstance(msg, bytes) and len(msg) == size, (i, type(msg), len(msg))
        assert struct.unpack(">I", msg[:4])[0] == i, "message %d out of order" % i
        if i % pause_every == 0:
            await asyncio.sleep(pause)
    return await asyncio.wait_for(ws.recv(), 20)


def test_send_try_follows_a_slow_reader_without_loss(server):
    # 400 x 32 KiB = 12.5 MiB through a queue of 4 messages / 64 KiB: every
    # message arrives, in order, and the producer was held back (EAGAIN)
    # instead of the client being closed as a slow consumer.
    n, size = 400, 32768

    async def go():
        async with websockets.connect(server.url("/produce"), max_size=None, close_timeout=1,
                                      ping_interval=None) as ws:
            await ws.send("produce %d %d" % (n, size))
            return await slow_reader(ws, n, size)
    done = run(go(), timeout=120)
    word, sent, eagains = done.split()
    assert (word, int(sent)) == ("done", n), done
    assert int(eagains) > 0, "the producer was never held back: %s" % done


def test_plain_send_to_the_same_slow_reader_is_closed_1008(server):
    # The same producer with wsock_send(): the queue's close policy applies.
    since = server.log_offset()

    async def go():
        async with websockets.connect(server.url("/produce"), max_size=None, close_timeout=1,
                                      ping_interval=None) as ws:
            await ws.send("produce-send 400 32768")
            await asyncio.sleep(1)          # let the queue fill
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 20)
            except websockets.ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else None
    code = run(go(), timeout=60)
    assert code in (1008, None), code       # None: the socket was cut (WSOCK0603)
    assert server.wait_log(r"WSOCK0602: WebSocket /produce: client .* does not keep up",
                           since=since), server.error_log(since)[-3000:]


def test_producer_thread_outlives_its_connection(server):
    # The client leaves while the thread is held back: its reference keeps
    # the connection valid until it notices (APR_EOF) and stops; the server
    # goes on (the ASan build of the suite checks the memory).
    async def leave_early():
        ws = await websockets.connect(server.url("/produce"), max_size=None, close_timeout=1,
                                      ping_interval=None)
        await ws.send("produce 100000 16384")
        for _ in range(20):
            await asyncio.wait_for(ws.recv(), 20)
        ws.transport.abort()                # gone, with plenty left to produce

    async def later():
        async with websockets.connect(server.url("/produce"), max_size=None, close_timeout=1,
                                      ping_interval=None) as ws:
            await ws.send("produce 50 100")
            return await slow_reader(ws, 50, 100, pause=0)

    for _ in range(5):
        run(leave_early(), timeout=60)
    assert run(later(), timeout=60).startswith("done 50 ")
