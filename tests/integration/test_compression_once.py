"""A broadcast to a room is compressed once per form, not once per member.

The rooms log, at trace1, how many shared forms each local delivery made
(WSOCK1305): all-compressing members of one child must share one compressed
form; members that compress and members that don't, two forms.  If every
member compressed its own copy, no shared form would be made (0), or one
per member.  The messages are checked too, byte for byte.
"""

import asyncio
import re
import time

import pytest
import websockets

from conftest import new_instance, run, serve

CONF = """\
<Location /room>
    WSockHandler chat room=query
    WSockCompression on threshold=64
</Location>
"""

LINE = re.compile(r"WSOCK1305: room (\S+): a (\d+)-byte message to (\d+) member\(s\), "
                  r"serialized in (\d+) shared form\(s\)")


@pytest.fixture(scope="module", params=["event", "prefork"])
def inst(request):
    yield from serve(new_instance(mpm=request.param, extra_conf=CONF,
                                  loglevel="info wsock:trace1"))


def deliveries(inst, since, size):
    return [(int(m.group(3)), int(m.group(4))) for m in LINE.finditer(inst.error_log(since))
            if int(m.group(2)) == size]


async def broadcast(url, members, message):
    conns = [await websockets.connect(url, compression=c, ping_interval=None)
             for c in members]
    try:
        sender = conns[0]
        await sender.send(message)
        for ws in conns:
            got = await asyncio.wait_for(ws.recv(), 10)
            assert got == message
    finally:
        for ws in conns:
            await ws.close()


@pytest.mark.parametrize("mixed", [False, True], ids=["all-compress", "mixed"])
def test_broadcast_compressed_once_per_form(inst, mixed):
    room = "once-%s" % ("mixed" if mixed else "all")
    members = ["deflate"] * 8 + ([None] * 8 if mixed else [])
    message = '{"user":"alice","text":"%s"}' % ("hello room " * 100)
    since = inst.log_offset()
    run(broadcast(inst.url("/room?room=" + room), members, message))
    # The line is written once the delivery is done, maybe after the
    # members got the message: wait for it (bounded).
    deadline = time.monotonic() + 10
    seen = deliveries(inst, since, len(message))
    while sum(n for n, _ in seen) < len(members) - 1 and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = deliveries(inst, since, len(message))
    assert seen, "no WSOCK1305 line for the broadcast"
    assert sum(n for n, _ in seen) >= len(members) - 1
    for n, forms in seen:
        # a child's members of one kind share one form; of two kinds, two
        assert 1 <= forms <= (2 if mixed else 1), seen
    if mixed and inst.mpm == "event":
        assert any(forms == 2 for _, forms in seen), seen
