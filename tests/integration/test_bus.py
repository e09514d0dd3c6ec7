"""The in-server bus (src/bus, docs/bus.md) through a real apache2: what
test_chat.py does not already cover by running every chat test on servers
with several child processes.

- room sizes are server-wide, and forget the members of a child that died
  without cleaning up (the parent, when the MPM reports the child gone);
- a message larger than the bus takes reaches its own child's members, is
  logged, and does not stop later messages;
- the bus survives a graceful restart;
- WSockBusSize is checked by configtest (bad values: test_async_driver.py).

Attacks on the bus (colliding room names, a full room table, kill -9 in the
middle of a broadcast) and WSockBusRooms: test_bus_attacks.py.
"""

import asyncio
import json
import os
import signal

import websockets

from conftest import COMMON_CONF, PREFORK_MANY, new_tags, run

CHAT = """\
<Location /chat>
    WSockHandler chat room=query presence=on
    WSockMaxMessageSize 1M
</Location>
"""


async def connect(inst, room):
    return await websockets.connect(inst.url("/chat?room=" + room), open_timeout=15,
                                    close_timeout=5, ping_interval=None, max_size=None)


async def recv_json(ws, timeout=20):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def join(inst, room):
    """A new member and its welcome notice."""
    ws = await connect(inst, room)
    welcome = await recv_json(ws)
    assert welcome["type"] == "welcome"
    return ws, welcome


def member_pid(notice):
    """The chat handler's member ids start with the child's pid in hex."""
    return int(notice["member"].split("-")[0], 16)


def children_of(inst):
    """The live child processes of the instance's parent."""
    return inst.child_pids()


async def wait_for(probe, timeout):
    """probe()'s first true value, asked every 50 ms for at most timeout
    seconds (for what nothing announces: a child process starting or
    ending)."""
    for _ in range(int(timeout / 0.05)):
        value = probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    return probe()


def test_room_size_forgets_a_killed_child(apache_factory):
    inst = apache_factory("prefork", COMMON_CONF + CHAT, mpm_conf=PREFORK_MANY)
    killed = []
    real_crash_lines = inst.crash_lines
    # The child killed on purpose is not a crash.
    inst.crash_lines = lambda since=0: [
        ln for ln in real_crash_lines(since)
        if not any("child pid %d exit signal Killed" % p in ln for p in killed)]

    async def go():
        members = []
        for _ in range(5):
            members.append(await join(inst, "k"))
        assert members[-1][1]["count"] == 5
        pids = {member_pid(w) for _, w in members}
        assert len(pids) == 5, "prefork: one child per connection"
        victim = members[0]
        killed.append(member_pid(victim[1]))
        since = inst.log_offset()
        os.kill(killed[0], signal.SIGKILL)
        # The parent forgets it when the MPM reports the child gone (or,
        # failing that, its monitor's sweep finds it); a newcomer's welcome
        # then counts itself and the 4 members left.
        assert inst.wait_log(r"WSOCK0508: .* %d, " % killed[0], timeout=30, since=since)
        ws, welcome = await join(inst, "k")
        assert welcome["count"] == 5, "room size after a child was killed: %r" % welcome
        await ws.close()
        victim[0].transport.abort()
        for ws, _ in members[1:]:
            await ws.close()

    run(go(), timeout=90)


def test_message_larger_than_the_bus(apache_factory):
    inst = apache_factory("prefork", COMMON_CONF + "WSockBusSize 64K\n" + CHAT,
                          mpm_conf=PREFORK_MANY)
    since = inst.log_offset()
    big = "x" * 40000                # over half of 64K: the bus cannot take it

    async def go():
        a, wa = await join(inst, "big")
        b, wb = await join(inst, "big")
        assert member_pid(wa) != member_pid(wb)
        assert (await recv_json(a))["type"] == "join"
        await a.send(big)
        own = await recv_json(a)         # its own child: delivered
        assert own["type"] == "message" and own["data"] == big
        await a.send("small")
        got = await recv_json(b)         # b's first message is the small one
        assert got["type"] == "message" and got["data"] == "small", got
        await a.close()
        await b.close()

    run(go())
    assert "WSOCK0504" in new_tags(inst, since)


def test_bus_survives_a_graceful_restart(apache_factory):
    inst = apache_factory("prefork", COMMON_CONF + CHAT, mpm_conf=PREFORK_MANY)
    since = inst.log_offset()
    old = children_of(inst)
    inst.graceful()
    assert inst.wait_log(r"resuming normal operations", timeout=15, since=since)

    async def go():
        # An old child may still accept a connection before it stops (and
        # tells its WebSockets 1001): the new generation's children only.
        assert await wait_for(lambda: not children_of(inst) & old, timeout=30)
        a, wa = await join(inst, "g")
        b, wb = await join(inst, "g")
        assert member_pid(wa) != member_pid(wb)
        assert wb["count"] == 2
        assert (await recv_json(a))["type"] == "join"
        await b.send("after graceful")
        got = await recv_json(a)
        assert got["data"] == "after graceful"
        await a.close()
        await b.close()

    run(go())


def test_bus_size_accepted(apache_factory):
    inst = apache_factory("event", COMMON_CONF + "WSockBusSize 1M\n", start=False)
    rc, out = inst.configtest()
    assert rc == 0, out
