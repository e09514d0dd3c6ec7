"""Rooms (wsock_join / wsock_leave / wsock_publish) through a real apache2,
with the test plugin tests/integration/plugins/tp_room.c.

Rooms reach every connection of the server, across its threads (one child
of the event or worker MPM) and across its child processes (prefork, many
children: the in-server bus).
"""

import asyncio
import os
import tempfile

import pytest
import websockets

from conftest import PREFORK_MANY, new_instance, run, serve, session_dir
from test_plugins import PLUGIN_SRC, REPO, apxs_build

ONE_CHILD = """\
StartServers 1
ServerLimit 1
ThreadLimit 64
ThreadsPerChild 64
MinSpareThreads 1
MaxSpareThreads 64
MaxRequestWorkers 64
MaxConnectionsPerChild 0
"""


@pytest.fixture(scope="module", params=["event", "worker", "prefork"])
def rserver(request):
    base = tempfile.mkdtemp(prefix="rooms-", dir=session_dir())
    os.chmod(base, 0o755)
    so = apxs_build(os.path.join(PLUGIN_SRC, "tp_room.c"), base, os.path.join(REPO, "include"))
    for d, dirs, _ in os.walk(base):
        for x in dirs:
            os.chmod(os.path.join(d, x), 0o755)
    conf = "WSockPlugin room %s\n<Location /room>\n    WSockHandler room\n</Location>\n" % so
    sizing = PREFORK_MANY if request.param == "prefork" else ONE_CHILD
    yield from serve(new_instance(request.param, conf, mpm_conf=sizing))


async def recv_n(ws, n, timeout=20):
    return [await asyncio.wait_for(ws.recv(), timeout) for _ in range(n)]


def test_publish_reaches_the_room_only_in_per_sender_order(rserver):
    senders_a, msgs_a, senders_b, msgs_b = 6, 20, 3, 5

    async def go():
        a = [await websockets.connect(rserver.url("/room?room=alpha")) for _ in range(senders_a)]
        b = [await websockets.connect(rserver.url("/room?room=beta")) for _ in range(senders_b)]
        try:
            async def send_all(ws, tag, count):
                for i in range(count):
                    await ws.send("%s:%d" % (tag, i))
            # Everybody sends at once, from as many server threads.
            await asyncio.gather(*[send_all(ws, "a%d" % k, msgs_a) for k, ws in enumerate(a)],
                                 *[send_all(ws, "b%d" % k, msgs_b) for k, ws in enumerate(b)])
            got_a = await asyncio.gather(*[recv_n(ws, senders_a * msgs_a) for ws in a])
            got_b = await asyncio.gather(*[recv_n(ws, senders_b * msgs_b) for ws in b])
            return got_a, got_b
        finally:
            for ws in a + b:
                await ws.close()

    got_a, got_b = run(go())
    for got, senders, count, tag in ((got_a, senders_a, msgs_a, "a"),
                                     (got_b, senders_b, msgs_b, "b")):
        for received in got:
            # exactly every message of the room, once, nothing from the other
            assert sorted(received) == sorted("%s%d:%d" % (tag, k, i)
                                              for k in range(senders) for i in range(count))
            # and each sender's messages in the order they were sent
            for k in range(senders):
                seq = [int(m.split(":")[1]) for m in received if m.startswith("%s%d:" % (tag, k))]
                assert seq == list(range(count))


def test_leave_stops_delivery_and_closed_members_are_dropped(rserver):
    async def go():
        stay = await websockets.connect(rserver.url("/room?room=gamma"))
        leaver = await websockets.connect(rserver.url("/room?room=gamma"))
        # Members that vanish without a close frame while the room is busy.
        gone = [await websockets.connect(rserver.url("/room?room=gamma")) for _ in range(10)]
        await leaver.send("leave")
        # The leaver's frames are handled in order on its own server thread:
        # once its next message reaches the room, the leave is done.
        await leaver.send("left")
        assert await asyncio.wait_for(stay.recv(), 20) == "left"
        for ws in gone:
            ws.transport.abort()
        for i in range(50):
            await stay.send("m%d" % i)
        got = await recv_n(stay, 50)
        # The leaver must get none of them (bounded wait for a stray one).
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(leaver.recv(), 1.0)
        await stay.close()
        await leaver.close()
        return got

    assert run(go()) == ["m%d" % i for i in range(50)]


def test_room_name_is_required(rserver):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            await websockets.connect(rserver.url("/room"))
        return ei.value.status_code

    assert run(go()) == 400
