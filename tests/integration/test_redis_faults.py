"""The Redis relay when Redis fails: killed and restarted mid-stream,
unreachable from the start, refusing our password, stalled.  The server
keeps serving, clients are told ({"type":"relay","state":"down"|"up"},
{"type":"dropped",...}), one log line per state change, and the relay
comes back with every room subscribed again.
"""

import asyncio
import json
import re
import signal
import time

import pytest
import websockets

from conftest import run
from test_redis import (TWO_EVENT_CHILDREN, RedisServer, close_all, free_port,
                        fresh_room, join, recv_json, recv_type, redis_conf)
from test_redis_history import resume


@pytest.fixture
def redis():
    r = RedisServer().start()
    yield r
    r.kill()


def log_lines(inst, tag, since):
    return [ln for ln in inst.error_log(since).splitlines() if tag in ln]


def per_pid(lines):
    counts = {}
    for ln in lines:
        pid = re.search(r"\[pid (\d+)", ln).group(1)
        counts[pid] = counts.get(pid, 0) + 1
    return counts


async def until_delivered(sender, receivers, text, timeout=30):
    """Sends text until every receiver got it (the relay may still be
    coming back); returns nothing, fails after timeout."""
    deadline = time.monotonic() + timeout
    pending = set(range(len(receivers)))
    while pending:
        assert time.monotonic() < deadline, "relay did not come back"
        await sender.send(text)
        for i in list(pending):
            try:
                while True:
                    n = await recv_json(receivers[i], 1)
                    if n["type"] == "message" and n["data"] == text:
                        pending.discard(i)
                        break
            except asyncio.TimeoutError:
                pass


def test_redis_killed_and_restarted_mid_stream(apache_factory, redis):
    a = apache_factory("event", redis_conf(redis), mpm_conf=TWO_EVENT_CHILDREN)
    b = apache_factory("prefork", redis_conf(redis))
    room = fresh_room("k")

    async def go():
        x, _ = await join(a.url("/relay?room=" + room))
        y, _ = await join(b.url("/relay?room=" + room))
        conns = [x, y]
        try:
            for i in range(20):
                await x.send("before %d" % i)
            for ws in (x, y):
                for i in range(20):
                    assert (await recv_json(ws))["data"] == "before %d" % i

            redis.kill()
            for ws in (x, y):
                assert await recv_type(ws, "relay") == {"type": "relay", "state": "down"}
            # the servers keep serving: messages are refused, not lost silently
            await x.send("while down")
            assert await recv_type(x, "dropped") == {"type": "dropped",
                                                     "reason": "relay unavailable"}
            z, wz = await join(a.url("/relay?room=" + room), up=False)
            conns.append(z)
            assert wz["relay"] == "down"
            for i in range(5):                  # no log line per message
                await y.send("down %d" % i)
                assert (await recv_type(y, "dropped"))["reason"] == "relay unavailable"
            await asyncio.sleep(1.5)            # a few reconnect attempts

            redis.start()
            for ws in (x, y, z):
                assert await recv_type(ws, "relay", 30) == {"type": "relay", "state": "up"}
            # every room subscribed again, on both servers
            await until_delivered(y, [x, y, z], "after")
            for i in range(10):
                await x.send("then %d" % i)
            for ws in (x, y, z):
                got = []
                while len(got) < 10:
                    n = await recv_json(ws)
                    if n["type"] == "message" and n["data"].startswith("then"):
                        got.append(n["data"])
                assert got == ["then %d" % i for i in range(10)]
        finally:
            await close_all(conns)

    run(go(), timeout=150)
    for inst in (a, b):
        down = per_pid(log_lines(inst, "WSOCK0802", 0))
        up = per_pid(log_lines(inst, "WSOCK0801", 0))
        # one line per state change and child, however many reconnect
        # attempts: up at start, down, up again (children without clients
        # may still be waiting for their next attempt)
        assert down and all(n == 1 for n in down.values()), down
        assert all(up.get(pid, 0) <= 2 for pid in down), (up, down)
        assert 2 in up.values(), up


def test_unreachable_redis_is_logged_and_clients_are_told(apache_factory):
    port = free_port()          # nothing listens there
    a = apache_factory("event", "WSockRedis 127.0.0.1:%d\nWSockRedisTimeout 1\n" % port
                       + redis_conf_locations())
    m = a.wait_log(r"WSOCK0802: redis relay: 127\.0\.0\.1:%d unavailable \(connect: "
                   r"Connection refused\)" % port, timeout=20)
    assert m, a.error_log()

    async def go():
        ws, w = await join(a.url("/relay?room=lonely"), up=False)
        try:
            assert w["relay"] == "down"
            await ws.send("anyone?")
            assert await recv_json(ws) == {"type": "dropped", "reason": "relay unavailable"}
        finally:
            await ws.close()

    run(go())
    time.sleep(2)               # retries with back-off, without a line each
    lines = log_lines(a, "WSOCK0802", 0)
    assert all(n == 1 for n in per_pid(lines).values()), lines


def redis_conf_locations():
    return "<Location /relay>\n    WSockHandler redis room=query\n</Location>\n"


def test_password_acl_user_and_database(apache_factory):
    r = RedisServer(["--requirepass", "s3cret",
                     "--user", "relay", "on", ">relaypw", "~*", "&*", "+@all"]).start()
    try:
        base = "WSockRedis 127.0.0.1:%d\nWSockRedisTimeout 2\n" % r.port
        bad = apache_factory("event", base + "WSockRedisAuth wrong\n" + redis_conf_locations())
        assert bad.wait_log(r"WSOCK0802: .*\(AUTH: WRONGPASS", timeout=20), bad.error_log()
        nodb = apache_factory("event", base + "WSockRedisAuth s3cret\nWSockRedisDatabase 99\n"
                              + redis_conf_locations())
        assert nodb.wait_log(r"WSOCK0802: .*\(SELECT: ERR DB index is out of range",
                             timeout=20), nodb.error_log()
        good = apache_factory("event", base + "WSockRedisAuth s3cret\n"
                              "WSockRedisPrefix t1:\n" + redis_conf_locations())
        acl = apache_factory("prefork", base + "WSockRedisAuth relay relaypw\n"
                             "WSockRedisPrefix t1:\nWSockRedisDatabase 2\n"
                             + redis_conf_locations())

        async def go():
            g, wg = await join(good.url("/relay?room=pw"))
            h, wh = await join(acl.url("/relay?room=pw"))
            try:
                assert wg["relay"] == wh["relay"] == "up"
                chans = r.cli("PUBSUB", "CHANNELS", "*", password="s3cret").split()
                assert "t1:/relay?pw" in chans, chans
                await g.send("through auth")
                for ws in (g, h):
                    assert (await recv_json(ws))["data"] == "through auth"
            finally:
                await close_all([g, h])

        run(go())
    finally:
        r.kill()


def test_a_stalled_redis_never_blocks_clients(apache_factory, redis):
    """Redis stops answering (SIGSTOP): the publisher's queue fills and
    further messages are refused at once with "relay busy" — the client's
    connection is never held up — and the relay recovers afterwards."""
    a = apache_factory("event", redis_conf(redis, "WSockRedisQueue 2\n").replace(
        "WSockRedisTimeout 2", "WSockRedisTimeout 30"))

    async def go():
        x, _ = await join(a.url("/relay?room=stall"))
        y, _ = await join(a.url("/relay?room=stall"))
        try:
            redis.proc.send_signal(signal.SIGSTOP)
            try:
                for i in range(10):
                    await x.send("stalled %d" % i)
                n = await recv_type(x, "dropped", 20)
                assert n == {"type": "dropped", "reason": "relay busy"}
                # the connection still answers while Redis is stalled
                pong = await x.ping()
                await asyncio.wait_for(pong, 10)
            finally:
                redis.proc.send_signal(signal.SIGCONT)
            await until_delivered(x, [x, y], "moving again")
        finally:
            await close_all([x, y])

    run(go(), timeout=120)



def test_with_history_a_resuming_client_gets_every_published_message_once(apache_factory):
    """A room with history keeps talking while Redis (with its append-only
    file, so that history survives) is killed and restarted; a receiver that
    left before the outage comes back afterwards, to the other server, with
    its last id.  It gets exactly what was published (what the sender got
    back), once each, in order."""
    redis = RedisServer(["--appendonly", "yes", "--appendfsync", "always"]).start()
    conf = redis_conf(redis, """
<Location /hist>
    WSockHandler redis room=query history=10000
</Location>
""")
    a = apache_factory("event", conf, mpm_conf=TWO_EVENT_CHILDREN)
    b = apache_factory("prefork", conf)
    room = fresh_room("hk")
    total = 150

    async def go():
        s, _ = await join(a.url("/hist?room=" + room))
        r, _ = await join(b.url("/hist?room=" + room))
        echoed, relay, got = [], [], []

        async def read_sender():
            while True:
                n = await recv_json(s, 60)
                (echoed if n["type"] == "message" else relay).append(n)

        reader = asyncio.ensure_future(read_sender())
        try:
            for i in range(total):
                if i == 30:                 # the receiver leaves
                    while len(got) < 20:
                        got.append(await recv_json(r))
                    await r.close()
                if i == 60:
                    redis.kill()
                if i == 90:
                    redis.start()
                    deadline = time.monotonic() + 30
                    while {"type": "relay", "state": "up"} not in relay:
                        assert time.monotonic() < deadline, "relay did not come back"
                        await asyncio.sleep(0.1)
                await s.send(str(i))
                await asyncio.sleep(0.01)
            deadline = time.monotonic() + 30
            while not echoed or echoed[-1]["data"] != str(total - 1):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            r2, _, missed, resumed = await resume(
                a.url("/hist?room=%s&last_id=%s" % (room, got[-1]["id"])))
            await r2.close()
            return echoed, got, missed, resumed, relay
        finally:
            reader.cancel()
            await close_all([s, r])

    try:
        echoed, got, missed, resumed, relay = run(go(), timeout=150)
        # what was published: the stream (a message stored just before the
        # kill may never have come back to the sender)
        lines = redis.cli("XRANGE", "wsock:/hist?" + room, "-", "+").splitlines()
        published = [(lines[i], json.loads(lines[i + 2])["data"])
                     for i in range(0, len(lines) - 2, 3)]
    finally:
        redis.kill()
    assert len(set(published)) == len(published)
    assert set((n["id"], n["data"]) for n in echoed) <= set(published)
    # some messages were sent while Redis was down: not published
    assert {"type": "dropped", "reason": "relay unavailable"} in relay
    assert len(published) < total
    assert [(n["id"], n["data"]) for n in got + missed] == published
    assert resumed == {"type": "resumed", "count": len(missed), "complete": True}


def test_unix_socket_and_graceful_restart(apache_factory):
    """WSockRedis unix:/path; a graceful restart ends the old children's
    relays cleanly (clients get 1001) and the new generation's relays come
    up and serve the reconnecting clients."""
    r = RedisServer(unix=True).start()
    sock = r.socket
    try:
        a = apache_factory("event", "WSockRedis unix:%s\n" % sock + redis_conf_locations())

        async def chat_once(tag):
            x, w = await join(a.url("/relay?room=unix"))
            try:
                assert w["relay"] == "up"
                await x.send(tag)
                assert (await recv_json(x))["data"] == tag
            finally:
                await x.close()
            return w["member"]

        async def go():
            first = await chat_once("before")
            x, _ = await join(a.url("/relay?room=unix"))
            a.graceful()
            with pytest.raises(websockets.ConnectionClosed) as e:
                while True:
                    await recv_json(x, 30)
            assert e.value.rcvd.code == 1001
            # the new generation (new child tokens) relays again
            deadline = time.monotonic() + 30
            while True:
                try:
                    second = await chat_once("after")
                    if second.split("-")[0] != first.split("-")[0]:
                        return
                except (OSError, websockets.WebSocketException, AssertionError):
                    pass
                assert time.monotonic() < deadline, "no new generation"
                await asyncio.sleep(0.2)

        run(go(), timeout=90)
        assert a.wait_log(r"WSOCK0801: redis relay: connected to unix:" + re.escape(sock))
    finally:
        r.kill()
