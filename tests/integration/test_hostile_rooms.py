"""Hostile use of rooms, through a real apache2 (event with two children,
and prefork) and the test plugins of tests/integration/plugins, built with
apxs against the public header:

- roomcmd (tp_roomcmd.c): join / leave / publish / count on command, within
  one connection;
- joinrefuse (tp_joinrefuse.c): joins a room (and more), queues a greeting,
  publishes to the room, then refuses (an HTTP status, or a close code).

Attacks: a client that hops through tens of thousands of distinct rooms
(every room it leaves must be forgotten: memory comes back, the bus's
shared room table does not fill up); the chat handler's rooms hopped by
reconnecting with new ?room= names; handshakes refused after their handler
joined a room (issue 12, item 2: every join undone, counts equal the live
members, a publish reaches exactly them, no crash: the suite also runs
under ASan); refused upgrades pipelined on one keep-alive connection.
Throughout, members of other rooms must get every message.
"""

import asyncio
import socket
import time

import pytest
import websockets

import hostile
import rawws
from conftest import new_instance, run, serve, session_dir
from hostile import KiB, MiB

HOPPERS = 4
CONNS = 12                        # at most at once: members, hoppers, watchers


@pytest.fixture(scope="module", params=["event", "prefork"])
def rserver(request):
    sos = hostile.build_plugins(["tp_roomcmd", "tp_joinrefuse"], session_dir())
    conf = """\
WSockPlugin roomcmd {tp_roomcmd}
WSockPlugin joinrefuse {tp_joinrefuse}
<Location /cmd>
    WSockHandler roomcmd
</Location>
<Location /refuse>
    WSockHandler joinrefuse
</Location>
<Location /chat>
    WSockHandler chat room=query
</Location>
""".format(**sos)
    yield from serve(new_instance(request.param, conf,
                                  mpm_conf=hostile.sizing(request.param, CONNS)))


# ------------------------------------------------------------ the clients
class Member:
    """A roomcmd client: commands out, texts in (bounded waits)."""

    def __init__(self, inst, room=None):
        self.c = rawws.RawWS.connect(inst.port, "/cmd" + ("?room=" + room if room else ""))
        self.c.send_text("pid")
        self.pid = int(self.next(10).split()[1])

    def send(self, text):
        self.c.send_text(text)

    def send_many(self, texts):
        """Many commands in one write (one frame each)."""
        self.c.send_raw(b"".join(rawws.build_frame(rawws.OP_TEXT, t.encode()) for t in texts))

    def next(self, timeout=10):
        _, data, _ = self.c.recv_message(timeout=timeout)
        return data.decode()

    def ask(self, command, timeout=10):
        """Sends a command that answers, skips what rooms delivered before
        the answer (returned too)."""
        self.send(command)
        word = command.split()[0]
        skipped = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.1, deadline - time.monotonic()))
            if m.split(" ", 1)[0] == word:
                return m, skipped
            skipped.append(m)

    def count(self, room):
        """(members in this child, members in the server)."""
        m, _ = self.ask("count " + room)
        _, name, local, total = m.split()
        assert name == room
        return int(local), int(total)

    def close(self):
        self.c.close_socket()


def members_in_two_children(inst, room, want=2, tries=8):
    """Members of room, in at least two child processes if the server has
    them (event: two children; prefork: one connection per child); bounded
    by `tries` connections."""
    members = [Member(inst, room)]
    while len(members) < tries and (len({m.pid for m in members}) < 2 or len(members) < want):
        members.append(Member(inst, room))
    return members


def publish_and_check(sender, members, room, text):
    """sender publishes text to room: every member gets it, once, and
    nothing else arrives before it."""
    sender.send("pub %s %s" % (room, text))
    got = [m.next(15) for m in members]
    return got == [text] * len(members), got


def hop(hoppers, prefix, rooms_each, batch=1000):
    """Each hopper joins and then leaves rooms_each distinct rooms, at most
    `batch` at a time (a connection may be in WSOCK_MAX_ROOMS rooms)."""
    for start in range(0, rooms_each, batch):
        for k, h in enumerate(hoppers):
            names = ["%s-%d-%d" % (prefix, k, i) for i in range(start, start + batch)]
            h.send_many(["join " + n for n in names])
            h.send_many(["leave " + n for n in names])
        for h in hoppers:
            m, skipped = h.ask("sync", 30)
            assert skipped == [], "a hopper got %r" % skipped[:3]


# ----------------------------------------------------------------- tests
def test_room_hopping_gives_rooms_back(rserver):
    since = rserver.log_offset()
    members = members_in_two_children(rserver, "stable")
    hoppers = [Member(rserver) for _ in range(HOPPERS)]
    try:
        hop(hoppers, "warm", 2000)                 # the tables have grown once
        meter = hostile.Meter(rserver, keep=len(members) + len(hoppers))
        delivered = []
        for rnd in range(hostile.ROUNDS):
            # 12,000 distinct rooms per hopper and round, a message to the
            # stable room after every 1,000 of them
            for step in range(12):
                hop(hoppers, "r%d-s%d" % (rnd, step), 1000)
                meter.poll()
                delivered.append(publish_and_check(members[0], members, "stable",
                                                   "m%d-%d" % (rnd, step)))
            meter.round_done(HOPPERS)          # (the hoppers stay connected)
        counts = [m.count("stable") for m in members]
        left_behind = hoppers[0].count("r0-s0-0-0")
    finally:
        for c in members + hoppers:
            c.close()
    pids = {m.pid for m in members}
    facts = meter.facts() + "; members in %d children" % len(pids)
    print(facts)
    assert all(ok for ok, _ in delivered), [got for ok, got in delivered if not ok][:3]
    # counts: in each member's child, and in the whole server
    assert all(total == len(members) for _, total in counts), (counts, facts)
    assert all(local == sum(1 for m in members if m.pid == mine.pid)
               for mine, (local, _) in zip(members, counts)), (counts, facts)
    assert left_behind == (0, 0), left_behind
    # the bus's room table never filled up: rooms left were forgotten
    assert "WSOCK0507" not in rserver.error_log(since), rserver.error_log(since)[-2000:]
    # 4 x 1000 memberships at once at most: 1 MiB each hopper is generous
    meter.check("room hoppers", HOPPERS, 1 * MiB, 6 * MiB)


def test_chat_room_hopping_by_reconnecting(rserver):
    """The chat handler joins per connection: 300 connections, each to a
    room of its own; the room of two steady members keeps working."""
    async def go():
        a = await websockets.connect(rserver.url("/chat?room=steady"))
        b = await websockets.connect(rserver.url("/chat?room=steady"))
        try:
            got = []
            for i in range(300):
                raw = rawws.RawWS.connect(rserver.port, "/chat?room=hop%d" % i)
                raw.send_text("x%d" % i)
                assert raw.recv_message(timeout=10)[1] == b"x%d" % i   # its own echo
                raw.close_socket()
                if i % 50 == 0:
                    await a.send("s%d" % i)
                    got.append((await _recv(a), await _recv(b)))
            return got
        finally:
            await a.close()
            await b.close()

    async def _recv(ws):
        return await asyncio.wait_for(ws.recv(), 15)

    got = run(go(), timeout=120)
    assert got == [("s%d" % i, "s%d" % i) for i in range(0, 300, 50)]


def test_join_then_refuse_leaves_no_member_behind(rserver):
    """Issue 12, item 2: 20 handshakes whose handler joined the room (and
    20 more rooms) and queued output before refusing; then members join,
    and more refusals come while they are in the room."""
    since = rserver.log_offset()
    req = lambda q: rawws.handshake_request("/refuse?" + q, host="127.0.0.1:%d" % rserver.port)
    for i in range(20):
        resp = rawws.http_exchange(rserver.port, req("room=jr&extra=20&refuse=%d"
                                                     % (403 if i % 2 else 503)))
        assert resp.status == (403 if i % 2 else 503), resp
        assert resp.header("Upgrade") is None and b"greeting" not in resp.body
    members = members_in_two_children(rserver, "jr")
    try:
        counts = [m.count("jr") for m in members]
        assert all(total == len(members) for _, total in counts), counts
        assert members[0].count("jr.7") == (0, 0)
        ok, got = publish_and_check(members[0], members, "jr", "after-refusals")
        assert ok, got
        # refusals while the room has members: their on_open publishes
        # reach the members, the refused clients themselves get nothing
        for i in range(20):
            resp = rawws.http_exchange(rserver.port, req("room=jr&extra=5"))
            assert resp.status == 403 and b"greeting" not in resp.body, resp
        # refused with a close code after the upgrade: left when it ends
        for i in range(5):
            with rawws.RawWS.connect(rserver.port, "/refuse?room=jr&refuse=4003") as c:
                code, _, _, before = c.recv_close(timeout=10)
                assert code == 4003
        for m in members:
            got = [m.next(15) for _ in range(25)]
            assert got == ["joined-then-refused"] * 25, got
        # The ones closed with 4003 leave when their connections end, which
        # the server may still be noticing: bounded wait for the count.
        for _ in range(100):
            counts = [m.count("jr") for m in members]
            if all(total == len(members) for _, total in counts):
                break
            time.sleep(0.05)
        assert all(total == len(members) for _, total in counts), counts
        ok, got = publish_and_check(members[-1], members, "jr", "still-right")
        assert ok, got
    finally:
        for m in members:
            m.close()
    assert rserver.wait_log(r"WSOCK0203: handler joinrefuse refused WebSocket /refuse with 403",
                            since=since)


def refused_on_one_connection(inst, requests):
    """Sends the pipelined requests on one new connection; returns what the
    server answered by the time it closed it (bounded: 10 s, or a second
    response)."""
    with socket.create_connection(("127.0.0.1", inst.port), timeout=10) as s:
        try:
            s.sendall(requests)
        except OSError:
            pass                    # closed before taking it all: fine
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                return data
            data += chunk
            if data.count(b"HTTP/1.1 ") > 1:
                break
    pytest.fail("the connection stayed open after a refused upgrade: %r" % data[:300])


def test_refused_upgrades_do_not_pile_up_on_a_keepalive_connection(rserver):
    """Fifty upgrade requests pipelined on one connection, all refused after
    their handler joined the room "ka" and published to it: only the first
    is served (the members of "ka" get one message per connection), then
    the connection closes; 100 such connections a round leave nothing
    behind, in memory or in the room."""
    requests = b"".join(
        rawws.handshake_request("/refuse?room=ka&extra=3", host="127.0.0.1:%d" % rserver.port)
        for _ in range(50))
    members = members_in_two_children(rserver, "ka")
    meter = hostile.Meter(rserver, keep=len(members), kept_per_conn=16 * KiB)
    try:
        for rnd in range(hostile.ROUNDS):
            for i in range(100):
                data = refused_on_one_connection(rserver, requests)
                answers = data.count(b"HTTP/1.1 ")
                assert answers == 1 and data.startswith(b"HTTP/1.1 403"), (
                    "connection %d: %d responses to 50 pipelined refused upgrades: %r"
                    % (i, answers, data[:300]))
                if i % 10 == 9:
                    meter.poll()
                    for m in members:
                        got = [m.next(15) for _ in range(10)]
                        assert got == ["joined-then-refused"] * 10, got
            meter.round_done(0)
        counts = [m.count("ka") for m in members]
        assert all(total == len(members) for _, total in counts), counts
        assert all(m.c.nothing_pending(0.2) for m in members), "more than one per connection"
    finally:
        for m in members:
            m.close()
    meter.check("connections of refused upgrades", 100, 64 * KiB, 6 * MiB)
