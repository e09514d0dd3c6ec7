"""History and resume of the redis handler: every message carries its
stream id, and a client that reconnects with ?last_id= (to the same or the
other server) gets what it missed, then live messages, with no gap and no
duplicate — also while the room keeps talking during the hand-over.
"""

import asyncio
import re

import pytest
import websockets

from conftest import run
from test_redis import (RedisServer, close_all, fresh_room, join, nothing_more, recv_json,
                        serve_pair)

ID_RE = re.compile(r"^\d+-\d+$")

HISTORY_LOCATIONS = """
<Location /hist>
    WSockHandler redis room=query history=100000
</Location>
<Location /short>
    WSockHandler redis room=query history=5
</Location>
<Location /aged>
    WSockHandler redis room=query history-age=3600
</Location>
<Location /live>
    WSockHandler redis room=query
</Location>
<Location /sess>
    WSockHandler redis room=query history=1000 session=600
</Location>
"""


def id_key(i):
    ms, seq = i.split("-")
    return int(ms), int(seq)


@pytest.fixture(scope="module")
def redis():
    # small stream nodes, so that MAXLEN ~ 5 really trims in a test
    r = RedisServer(["--stream-node-max-entries", "4"]).start()
    yield r
    r.kill()


@pytest.fixture(scope="module")
def pair(redis):
    conf = "WSockRedis 127.0.0.1:%d\nWSockRedisTimeout 5\n%s" % (redis.port,
                                                                 HISTORY_LOCATIONS)
    yield from serve_pair(conf)


async def resume(url):
    """Connects with last_id (or a session) in url: returns (ws, welcome,
    missed, resumed)."""
    ws = await websockets.connect(url, open_timeout=30, close_timeout=5, ping_interval=None,
                                  max_size=None)
    w = await recv_json(ws)
    assert w["type"] == "welcome", w
    missed = []
    while True:
        n = await recv_json(ws)
        if n["type"] == "resumed":
            return ws, w, missed, n
        assert n["type"] == "message", n
        missed.append(n)


def test_messages_carry_one_stream_id_everywhere(pair, redis):
    a, b = pair
    room = fresh_room("h")

    async def go():
        x, _ = await join(a.url("/hist?room=" + room))
        y, _ = await join(b.url("/hist?room=" + room))
        try:
            for i in range(30):
                await (x if i % 2 else y).send("m%d" % i)
            got = []
            for ws in (x, y):
                seq = [await recv_json(ws) for _ in range(30)]
                got.append(seq)
            return got
        finally:
            await close_all([x, y])

    gx, gy = run(go())
    assert gx == gy, "same messages, same ids, same order on both servers"
    ids = [m["id"] for m in gx]
    assert all(ID_RE.match(i) for i in ids), ids
    assert ids == sorted(ids, key=id_key) and len(set(ids)) == 30
    assert list(gx[0]) == ["type", "id", "from", "data"]
    entries = redis.cli("XRANGE", "wsock:/hist?" + room, "-", "+").split()
    assert [e for e in entries if ID_RE.match(e)] == ids


def test_history_is_bounded(pair, redis):
    a, _ = pair
    room = fresh_room("b")

    async def go():
        x, _ = await join(a.url("/short?room=" + room))
        try:
            for i in range(100):
                await x.send("n%d" % i)
            for i in range(100):
                assert (await recv_json(x))["data"] == "n%d" % i
        finally:
            await x.close()

    run(go())
    # MAXLEN ~ 5 trims whole stream nodes (4 entries here): a few more may stay
    assert 5 <= int(redis.cli("XLEN", "wsock:/short?" + room)) < 20
    ttl = int(redis.cli("PTTL", "wsock:/aged?x"))
    assert ttl == -2                            # no such key yet

    async def aged():
        x, _ = await join(a.url("/aged?room=" + room))
        try:
            await x.send("kept an hour")
            assert (await recv_json(x))["data"] == "kept an hour"
        finally:
            await x.close()

    run(aged())
    assert 0 < int(redis.cli("PTTL", "wsock:/aged?" + room)) <= 3600 * 1000


def test_resume_on_the_other_server_gets_what_was_missed_then_live(pair):
    a, b = pair
    room = fresh_room("r")

    async def go():
        x, _ = await join(a.url("/hist?room=" + room))
        s, _ = await join(b.url("/hist?room=" + room))
        try:
            for i in range(5):
                await s.send("seen %d" % i)
            seen = [await recv_json(x) for _ in range(5)]
            last = seen[-1]["id"]
            await x.close()
            for i in range(20):
                await s.send("missed %d" % i)
            # all 20 are in the stream once their sender has them back
            while (await recv_json(s))["data"] != "missed 19":
                pass
            x2, w, missed, resumed = await resume(
                b.url("/hist?room=%s&last_id=%s" % (room, last)))
            try:
                assert w["relay"] == "up" and w["room"] == room
                assert [m["data"] for m in missed] == ["missed %d" % i for i in range(20)]
                assert all(id_key(m["id"]) > id_key(last) for m in missed)
                assert resumed == {"type": "resumed", "count": 20, "complete": True}
                await s.send("live")
                n = await recv_json(x2)
                assert n["data"] == "live" and id_key(n["id"]) > id_key(missed[-1]["id"])
                await nothing_more(x2)
            finally:
                await x2.close()
        finally:
            await close_all([x, s])

    run(go())


def test_resume_while_the_room_keeps_talking_has_no_gap_and_no_duplicate(pair):
    """A sender publishes without pause while a client disconnects and
    resumes ten times, alternating servers: what the client receives,
    all connections together, is every message exactly once, in order."""
    a, b = pair
    room = fresh_room("race")
    total = 400

    async def go():
        s, _ = await join(a.url("/hist?room=" + room))
        got, ids = [], []

        async def sender():
            for i in range(total):
                await s.send(str(i))
                if i % 20 == 0:
                    await asyncio.sleep(0.01)

        x, _ = await join(b.url("/hist?room=" + room))
        task = asyncio.ensure_future(sender())
        try:
            for k in range(10):
                for _ in range(min(15, total - len(got))):
                    n = await recv_json(x)
                    got.append(int(n["data"]))
                    ids.append(n["id"])
                await x.close()
                srv = a if k % 2 == 0 else b
                x, _, missed, resumed = await resume(
                    srv.url("/hist?room=%s&last_id=%s" % (room, ids[-1])))
                assert resumed["complete"] is True, resumed
                assert resumed["count"] == len(missed)
                for n in missed:
                    got.append(int(n["data"]))
                    ids.append(n["id"])
            await task
            while len(got) < total:
                n = await recv_json(x)
                got.append(int(n["data"]))
                ids.append(n["id"])
            await nothing_more(x)
        finally:
            task.cancel()
            await close_all([s, x])
        return got, ids

    got, ids = run(go(), timeout=180)
    assert got == list(range(total))
    assert ids == sorted(ids, key=id_key) and len(set(ids)) == total


def test_resume_reports_what_history_no_longer_holds(pair):
    a, _ = pair
    room = fresh_room("t")

    async def go():
        x, _ = await join(a.url("/short?room=" + room))
        try:
            for i in range(40):
                await x.send("t%d" % i)
            msgs = [await recv_json(x) for _ in range(40)]
        finally:
            await x.close()
        # from the start: the oldest were trimmed
        y, _, missed, resumed = await resume(a.url("/short?room=%s&last_id=0" % room))
        await y.close()
        assert resumed["complete"] is False and 5 <= resumed["count"] < 40
        assert [m["data"] for m in missed] == ["t%d" % i for i in range(40 - len(missed), 40)]
        # from a recent id: nothing after it was trimmed
        z, _, missed, resumed = await resume(
            a.url("/short?room=%s&last_id=%s" % (room, msgs[-3]["id"])))
        await z.close()
        assert resumed == {"type": "resumed", "count": 2, "complete": True}
        assert [m["data"] for m in missed] == ["t38", "t39"]

    run(go())


def refused_with_400(url):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect(url, open_timeout=15)
        assert e.value.status_code == 400

    run(go())


@pytest.mark.parametrize("bad", ["abc", "1-", "-1", "1-2-3", "1.5", "%00"])
def test_a_malformed_last_id_is_refused_before_the_upgrade(pair, bad):
    a, _ = pair
    refused_with_400(a.url("/hist?room=x&last_id=" + bad))
    assert a.wait_log(r"WSOCK0806: redis /hist: refused, last_id is not a stream id")


def test_last_id_is_ignored_without_history(pair):
    a, _ = pair

    async def go():
        ws, w = await join(a.url("/live?room=nohist&last_id=0"))
        try:
            await ws.send("plain")
            n = await recv_json(ws)
            assert n == {"type": "message", "from": w["member"], "data": "plain"}
        finally:
            await ws.close()

    run(go())


def test_resume_while_redis_is_down_says_so(apache_factory):
    r = RedisServer().start()
    a = apache_factory("event", "WSockRedis 127.0.0.1:%d\nWSockRedisTimeout 1\n%s"
                       % (r.port, HISTORY_LOCATIONS))
    r.kill()
    assert a.wait_log(r"WSOCK0802", timeout=20)

    async def go():
        ws, w, missed, resumed = await resume(a.url("/hist?room=down&last_id=5-0"))
        await ws.close()
        assert w["relay"] == "down" and missed == []
        assert resumed == {"type": "resumed", "count": 0, "complete": False}

    run(go())


# ==================================================================== sessions
def test_a_session_brings_a_client_back_to_its_room_on_another_server(pair, redis):
    a, b = pair
    room = fresh_room("s")

    async def go():
        x, w = await join(a.url("/sess?room=%s&name=Ada%%20L." % room))
        s, _ = await join(b.url("/sess?room=" + room))
        token = w["session"]
        assert re.match(r"^[0-9a-f]{32}$", token) and w["name"] == "Ada L."
        record = redis.cli("HGETALL", "wsock:session:" + token).split("\n")
        assert record[:4] == ["room", "/sess?" + room, "member", w["member"]], record
        assert 0 < int(redis.cli("TTL", "wsock:session:" + token)) <= 600
        try:
            await x.send("hello")
            for ws in (x, s):
                n = await recv_json(ws)
                assert (n["from"], n["name"], n["data"]) == (w["member"], "Ada L.", "hello")
            await x.close()
            for i in range(10):
                await s.send("while away %d" % i)
            while (await recv_json(s))["data"] != "while away 9":
                pass
            # only the token: room, member id, name and last id come back
            x2, w2, missed, resumed = await resume(b.url("/sess?session=" + token))
            try:
                assert (w2["room"], w2["member"], w2["name"], w2["session"]) == \
                    (room, w["member"], "Ada L.", token)
                assert [m["data"] for m in missed] == ["while away %d" % i for i in range(10)]
                assert resumed == {"type": "resumed", "count": 10, "complete": True}
                await x2.send("back")
                n = await recv_json(s)
                assert (n["from"], n["data"]) == (w["member"], "back")
            finally:
                await x2.close()
        finally:
            await close_all([x, s])

    run(go())


def test_an_unknown_session_starts_a_new_one(pair):
    a, _ = pair

    async def go():
        ws, w = await join(a.url("/sess?room=fresh&session=" + "0" * 32))
        await ws.close()
        assert w["room"] == "fresh" and w["session"] != "0" * 32

    run(go())


@pytest.mark.parametrize("query", ["session=abc", "session=" + "G" * 32, "session=",
                                   "name=", "name=" + "x" * 65, "name=a%0Ab", "name=%C3%A9"])
def test_a_malformed_session_or_name_is_refused(pair, query):
    a, _ = pair
    refused_with_400(a.url("/sess?room=x&" + query))
    assert a.wait_log(r"WSOCK0807: redis /sess: refused, session must be a token")


def test_a_message_redis_refuses_is_logged_and_the_relay_stays_up(pair, redis):
    a, _ = pair
    room = fresh_room("wt")
    redis.cli("SET", "wsock:/hist?" + room, "not a stream")

    async def go():
        x, _ = await join(a.url("/hist?room=" + room))
        y, _ = await join(a.url("/hist?room=" + room + "ok"))
        try:
            await x.send("into a string key")
            await y.send("elsewhere")
            assert (await recv_json(y))["data"] == "elsewhere"
            await nothing_more(x)
        finally:
            await close_all([x, y])

    run(go())
    assert a.wait_log(r"WSOCK0808: redis relay: Redis refused a message \(.*WRONGTYPE")
    assert "WSOCK0802" not in a.error_log()
