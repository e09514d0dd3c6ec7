"""Attacks on the in-server bus (src/bus, docs/bus.md) through a real apache2
with the chat handler (WSockHandler chat room=query presence=on), on two
event children and on prefork with many children:

- room names chosen to share one probe chain of the bus's room table (easy to
  compute while it hashed names with unkeyed FNV-1a) must not put the table
  into "full" mode: other rooms keep exact server-wide counts and delivery;
- a genuinely full table (WSockBusRooms 16): rooms that got their slots keep
  exact counts, rooms that did not fit still get every message in every
  child, and once those are left the table is exact again, without a
  restart;
- kill -9 of a child that holds members, in the middle of a broadcast across
  children: the others keep delivering, the MPM's new child joins the bus,
  the dead child's members are forgotten, nothing wedges.

Every wait is bounded.  The presence notices carry the room's size as
wsock_room_count() says it: when the bus cannot tell, the chat handler
falls back to the size in the member's own child, which is how a test sees
a count that is not server-wide.
"""

import asyncio
import os
import signal

import pytest

from conftest import PREFORK_MANY, new_tags, run
from test_bus import children_of, connect, join, member_pid, recv_json, wait_for
from test_chat import TWO_EVENT_CHILDREN

CHAT = """\
<Location /chat>
    WSockHandler chat room=query presence=on
</Location>
"""

SERVERS = {
    "event-2-children": ("event", TWO_EVENT_CHILDREN),
    "prefork": ("prefork", PREFORK_MANY),
}

# prefork with a child for each of the attack's connections from the start
# (growing to them takes prefork several seconds)
PREFORK_ATTACK = PREFORK_MANY.replace("StartServers 16", "StartServers 78")

FNV_OFFSET = 14695981039346656037
FNV_PRIME = 1099511628211
OLD_SLOTS = 16384                  # the old table: FNV-1a & (16384 - 1), 64 probes


def fnv_colliding_names(n, prefix=b"/chat?", nslots=OLD_SLOTS):
    """n room names (for ?room=) that FNV-1a puts at one home slot of an
    nslots table, as anyone could compute them.  Only the low bits of FNV-1a
    decide the slot, and they depend only on the low bits of its state."""
    mask = nslots - 1
    state = FNV_OFFSET
    for b in prefix:
        state = ((state ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    state &= mask
    prime = FNV_PRIME & mask
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    names, want = [], None
    for i in range(100000):
        stem = b"x%x" % i
        s = state
        for b in stem:
            s = ((s ^ b) * prime) & mask
        for a in alphabet:
            sa = ((s ^ a) * prime) & mask
            for c in alphabet:
                slot = ((sa ^ c) * prime) & mask
                want = slot if want is None else want
                if slot == want:
                    names.append((stem + bytes((a, c))).decode())
                    if len(names) == n:
                        return names
    raise AssertionError("no %d colliding names" % n)


# ---------------------------------------------------------------- clients
async def join_in(inst, room, want, timeout=30):
    """A member of room in a child process for which want(pid) is true.
    The kernel decides which child a connection lands in, and a child may
    still be starting: tries until one lands there, for at most timeout
    seconds, pausing a little more after each miss."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for miss in range(10000):
        ws, welcome = await join(inst, room)
        if want(member_pid(welcome)):
            return ws, welcome
        await ws.close()
        if loop.time() > deadline:
            break
        await asyncio.sleep(min(miss, 10) * 0.01)
    raise AssertionError("no connection to %s landed in the wanted child" % room)


async def next_message(ws, timeout=20):
    """The next relayed message (presence notices skipped)."""
    for _ in range(1000):
        m = await recv_json(ws, timeout)
        if m["type"] == "message":
            return m["data"]
    raise AssertionError("only notices")


async def close_all(conns):
    await asyncio.gather(*[ws.close() for ws in conns], return_exceptions=True)


def tolerate_kills(inst, killed):
    """The children killed on purpose are not crashes."""
    real = inst.crash_lines
    inst.crash_lines = lambda since=0: [
        ln for ln in real(since)
        if not any("child pid %d exit signal Killed" % p in ln for p in killed)]


# ========================================================== (a) collisions
@pytest.mark.parametrize("server", list(SERVERS))
def test_colliding_room_names_leave_other_rooms_exact(apache_factory, server):
    mpm, sizing = SERVERS[server]
    inst = apache_factory(mpm, CHAT, mpm_conf=PREFORK_ATTACK if mpm == "prefork" else sizing)
    since = inst.log_offset()
    names = fnv_colliding_names(70)          # more than the 64 probes of one chain

    async def go():
        a, wa = await join(inst, "z")
        b, wb = await join_in(inst, "z", lambda pid: pid != member_pid(wa))
        attackers = []
        for k in range(0, len(names), 10):
            attackers += await asyncio.gather(*[connect(inst, n) for n in names[k:k + 10]])
        # the room elsewhere still counts server-wide and delivers
        c, wc = await join(inst, "z")
        assert wc["count"] == 3, "size of z during the attack: %r" % wc
        await a.send("during")
        for ws in (a, b, c):                 # the sender too (echo=on)
            assert await next_message(ws) == "during"
        await close_all(attackers)
        await c.close()
        d, wd = await join(inst, "z")
        assert wd["count"] == 3, "size of z after the attack: %r" % wd
        await d.send("after")
        for ws in (a, b, d):
            assert await next_message(ws) == "after"
        await close_all([a, b, d])

    run(go(), timeout=120)
    assert "WSOCK0507" not in new_tags(inst, since)


# ===================================================== (b) a full table
FULL_SLOTS = 16


def test_full_table_degrades_only_rooms_that_did_not_fit(apache_factory):
    inst = apache_factory("event", "WSockBusRooms %d\n" % FULL_SLOTS + CHAT,
                          mpm_conf=TWO_EVENT_CHILDREN)
    since = inst.log_offset()

    async def go():
        # 8 rooms with a member in each child: 16 (room, child) pairs
        a, wa = await join(inst, "fit0")
        pid_a = member_pid(wa)
        b, _ = await join_in(inst, "fit0", lambda pid: pid != pid_a)
        fit = {"fit0": [a, b]}               # room -> [member in child A, in child B]
        for k in range(1, FULL_SLOTS // 2):
            room = "fit%d" % k
            a, _ = await join_in(inst, room, lambda pid: pid == pid_a)
            b, _ = await join_in(inst, room, lambda pid: pid != pid_a)
            fit[room] = [a, b]
        # 16 (room, child) pairs: the table is full.  "over" finds no slot in
        # either child.
        oa, _ = await join_in(inst, "over", lambda pid: pid == pid_a)
        ob, wob = await join_in(inst, "over", lambda pid: pid != pid_a)
        assert wob["count"] == 1, "over cannot tell its size: its child's only %r" % wob
        assert inst.wait_log(r"WSOCK0507:.*WSockBusRooms", timeout=10, since=since)

        # rooms that got their slots: exact server-wide sizes and delivery
        for room in ("fit0", "fit3"):
            c, wc = await join(inst, room)
            assert wc["count"] == 3, "size of %s in a full table: %r" % (room, wc)
            await c.send("to " + room)
            for ws in fit[room] + [c]:
                assert await next_message(ws) == "to " + room
            await c.close()
        # rooms that did not: every message reaches every child, in order
        for i in range(20):
            await oa.send("a%d" % i)
            await ob.send("b%d" % i)
        got_a = [await next_message(oa) for _ in range(40)]
        got_b = [await next_message(ob) for _ in range(40)]
        for got in (got_a, got_b):
            assert [m for m in got if m[0] == "a"] == ["a%d" % i for i in range(20)]
            assert [m for m in got if m[0] == "b"] == ["b%d" % i for i in range(20)]

        # Left: the table has room again, with no restart.
        mark = inst.log_offset()
        await close_all([oa, ob])
        assert inst.wait_log(r"WSOCK0509:", timeout=10, since=mark)
        await close_all(fit.pop("fit7"))   # two slots free up
        oa, _ = await join_in(inst, "over", lambda pid: pid == pid_a)
        ob, wob = await join_in(inst, "over", lambda pid: pid != pid_a)
        assert wob["count"] == 2, "over fits now, its size is server-wide: %r" % wob
        await oa.send("fits")
        for ws in (oa, ob):
            assert await next_message(ws) == "fits"
        await close_all([oa, ob] + [ws for pair in fit.values() for ws in pair])

    run(go(), timeout=150)


# ================================================ (c) kill -9 of a child
@pytest.mark.parametrize("server", list(SERVERS))
def test_kill_a_child_during_a_broadcast(apache_factory, server):
    mpm, sizing = SERVERS[server]
    inst = apache_factory(mpm, CHAT, mpm_conf=sizing)
    since = inst.log_offset()
    killed = []
    tolerate_kills(inst, killed)
    total, kill_at = 200, 60

    async def go():
        sender, ws_ = await join(inst, "k")
        s_pid = member_pid(ws_)
        # the victim holds members; the others hear the sender through the bus
        # (prefork: each in a child of its own; event: the other child)
        victim, wv = await join_in(inst, "k", lambda pid: pid != s_pid)
        v_pid = member_pid(wv)
        others = []
        if mpm == "prefork":
            for _ in range(3):
                ws, _ = await join_in(inst, "k", lambda pid: pid not in (s_pid, v_pid))
                others.append(ws)
        else:
            ws, _ = await join_in(inst, "k", lambda pid: pid == s_pid)
            others.append(ws)
        held = [victim]
        if mpm == "event":                   # prefork: a child, a connection
            held.append((await join_in(inst, "k", lambda pid: pid == v_pid))[0])
        before = children_of(inst)

        async def broadcast():
            for i in range(total):
                await sender.send("m%d" % i)
                if i == kill_at:
                    killed.append(v_pid)
                    os.kill(v_pid, signal.SIGKILL)
                await asyncio.sleep(0)       # let the receivers read meanwhile

        async def hear_all(ws):
            return [await next_message(ws) for _ in range(total)]

        got = await asyncio.gather(broadcast(), *[hear_all(ws) for ws in [sender] + others])
        for heard in got[1:]:
            assert heard == ["m%d" % i for i in range(total)]
        # The dead child's members are forgotten (when the MPM reports it).
        assert inst.wait_log(r"WSOCK0508:", timeout=15, since=since)
        live = 1 + len(others)
        if mpm == "event":
            # ServerLimit 2: the MPM starts a new child, which joins the bus
            new = await wait_for(lambda: children_of(inst) - before, timeout=15)
            assert new, "no new child after the kill"
            n, wn = await join_in(inst, "k", lambda pid: pid in new)
        else:
            n, wn = await join_in(inst, "k", lambda pid: pid not in (s_pid, v_pid))
        assert wn["count"] == live + 1, "size after the kill: %r" % wn
        await sender.send("later")
        for ws in [sender, n] + others:
            assert await next_message(ws) == "later"
        await n.send("from the new one")
        for ws in [sender, n] + others:
            assert await next_message(ws) == "from the new one"
        for ws in held:                      # their server side is gone
            ws.transport.abort()
        await close_all([sender, n] + others)

    run(go(), timeout=120)
    tags = new_tags(inst, since)
    assert "WSOCK0507" not in tags


# ================================================= the directive
@pytest.mark.parametrize("value", ["100", "8", "0", "2097152", "lots", "16K", "-16"])
def test_bus_rooms_bad_values_fail_configtest(apache_factory, value):
    inst = apache_factory("event", "WSockBusRooms %s\n" % value + CHAT, start=False)
    rc, out = inst.configtest()
    assert rc != 0 and "WSockBusRooms" in out and "power of two" in out, out


def test_bus_rooms_only_in_server_config(apache_factory):
    inst = apache_factory("event", "<Location /x>\n    WSockBusRooms 64\n</Location>\n",
                          start=False)
    rc, out = inst.configtest()
    assert rc != 0 and "WSockBusRooms" in out, out


def test_bus_rooms_good_values(apache_factory):
    inst = apache_factory("event", "WSockBusRooms 16\nWSockBusRooms 1048576\n" + CHAT,
                          start=False)
    rc, out = inst.configtest()
    assert rc == 0, out
