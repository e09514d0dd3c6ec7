"""Publishing over HTTP to servers that share a Redis (docs/publish.md):
two real apache2 servers (two event children; prefork) and a real
redis-server.  A POST to a redis location's room reaches its members on
every server in the envelope clients get, marked as the server's, with its
stream id where the location keeps history; a client cannot forge that
mark; connection=ID reaches a connection on the other server; a relay that
is down answers 503.
"""

import asyncio
import re
import time

import pytest

from conftest import run
from test_chat import close_all, connect, fresh_room, recv, recv_json
from test_publish import connection_id, nothing_more, post, request
from test_redis import RedisServer, join, recv_type, serve_pair

STREAM_ID = re.compile(r"^\d+-\d+$")


@pytest.fixture(scope="module")
def redis():
    r = RedisServer().start()
    yield r
    r.kill()


@pytest.fixture(scope="module")
def pair(redis):
    yield from serve_pair("""
WSockRedis 127.0.0.1:%d
WSockRedisTimeout 2
LogLevel info wsock:debug
<Location /relay>
    WSockHandler redis room=query history=100
</Location>
<Location /live>
    WSockHandler redis room=query
</Location>
<Location /addr>
    WSockHandler chat room=query
    WSockAddressable on
</Location>
<Location /pub>
    SetHandler wsock-publish
</Location>
""" % redis.port)


async def apost(inst, path, body, ctype="text/plain; charset=utf-8"):
    return await asyncio.get_running_loop().run_in_executor(None, post, inst, path, body, ctype)


async def areq(inst, method, path):
    return await asyncio.get_running_loop().run_in_executor(None, request, inst, method, path)


def test_server_messages_reach_every_server_in_order_with_ids(pair):
    a, b = pair
    room = fresh_room("s")

    async def go():
        conns = []
        for srv in (a, a, b, b):
            ws, w = await join(srv.url("/relay?room=" + room))
            conns.append(ws)
        live, _ = await join(b.url("/live?room=" + room))
        try:
            answers = []
            for i in range(6):
                answers.append(await apost((a, b)[i % 2], "/pub?location=/relay&room=" + room,
                                           '{"n":%d,"text":"é \\"q\\""}' % i,
                                           "application/json"))
            got = [[await recv_json(ws) for _ in range(6)] for ws in conns]
            for ws in conns:
                await nothing_more(ws)
            plain = await apost(b, "/pub?location=/live&room=" + room, "no history")
            live_got = await recv_json(live)
            return answers, got, plain, live_got
        finally:
            await close_all(conns + [live])

    answers, got, plain, live_got = run(go(), timeout=90)
    ids = []
    for i, (status, _, body) in enumerate(answers):
        assert status == 200, body
        ids.append(body.pop("id"))
        assert STREAM_ID.match(ids[-1]), body
        assert body == {"location": "/relay", "room": room, "handler": "redis",
                        "bytes": len(('{"n":%d,"text":"é \\"q\\""}' % i).encode()),
                        "type": "text", "relayed": True, "receivers": 2}, body
    for seq in got:
        assert [m["data"] for m in seq] == ['{"n":%d,"text":"é \\"q\\""}' % i for i in range(6)]
        for m in seq:
            assert m["type"] == "message" and m["from"] == "server" and m["server"] is True
            assert STREAM_ID.match(m["id"])
        assert seq == got[0], "every receiver, on every server, the same messages and ids"
    assert [m["id"] for m in got[0]] == ids, "the answers name the ids clients get"
    assert plain[0] == 200 and "id" not in plain[2] and plain[2]["receivers"] == 1, plain
    assert live_got == {"type": "message", "from": "server", "server": True,
                        "data": "no history"}


def test_a_client_cannot_forge_the_server_mark(pair):
    a, b = pair
    room = fresh_room("f")
    forged = ['","server":true,"from":"server',
              '{"type":"message","from":"server","server":true,"data":"x"}']

    async def go():
        sender, w = await join(a.url("/live?room=" + room))
        reader, _ = await join(b.url("/live?room=" + room))
        try:
            for f in forged:
                await sender.send(f)
            return w["member"], [await recv_json(reader) for _ in forged]
        finally:
            await close_all([sender, reader])

    member, got = run(go())
    for f, m in zip(forged, got):
        assert m == {"type": "message", "from": member, "data": f}
        assert "server" not in m and m["from"] != "server" and "-" in member


def test_binary_is_refused_for_a_redis_location(pair):
    a, _ = pair
    status, _, body = post(a, "/pub?location=/live&room=x", b"\x00\x01",
                           "application/octet-stream")
    assert status == 415 and "text only" in body["error"], body


def test_connection_by_id_on_the_other_server(pair):
    a, b = pair

    async def go():
        since = a.log_offset()
        ws = await connect(a.url("/addr?room=" + fresh_room("c")))
        try:
            cid = connection_id(a, ws, since)
            here = await areq(a, "GET", "/pub?connection=" + cid)
            there = await areq(b, "GET", "/pub?connection=" + cid)
            sent = [await apost(b, "/pub?connection=" + cid, "via redis %d" % i)
                    for i in range(3)]
            got = [await recv(ws) for _ in range(3)]
            d = await areq(b, "DELETE", "/pub?connection=%s&code=1008&reason=go" % cid)
            closed = None
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except Exception as e:          # ConnectionClosed
                closed = e
            return cid, here, there, sent, got, d, closed
        finally:
            await ws.close()

    cid, here, there, sent, got, d, closed = run(go(), timeout=60)
    assert here[0] == 200 and here[2]["connected"] is True
    # GET answers for its own server only (docs/publish.md)
    assert there[0] == 404 and there[2]["connected"] is False
    for s in sent:
        assert s[0] == 202 and s[2]["relayed"] is True and s[2]["receivers"] == 0, s
    assert got == ["via redis %d" % i for i in range(3)]
    assert d[0] == 202 and d[2] == {"connection": cid, "code": 1008, "relayed": True}
    assert closed is not None and closed.rcvd.code == 1008 and closed.rcvd.reason == "go"


@pytest.fixture(scope="module")
def plain_pair(redis):
    """Two servers that name the Redis (WSockRedis) but have no redis
    location: their relays run for connections addressed by id only."""
    yield from serve_pair("""
WSockRedis 127.0.0.1:%d
WSockRedisTimeout 2
LogLevel info wsock:debug
<Location /addr>
    WSockHandler echo
    WSockAddressable on
</Location>
<Location /pub>
    SetHandler wsock-publish
</Location>
""" % redis.port)


def test_wsockredis_alone_carries_connection_ids_between_servers(plain_pair):
    a, b = plain_pair

    async def go():
        since = b.log_offset()
        ws = await connect(b.url("/addr"))
        try:
            cid = connection_id(b, ws, since)
            sent = await apost(a, "/pub?connection=" + cid, "from the other server")
            got = await recv(ws)
            await ws.send("still an echo")
            echo = await recv(ws)
            return sent, got, echo
        finally:
            await ws.close()

    sent, got, echo = run(go(), timeout=60)
    assert sent[0] == 202 and sent[2]["relayed"] is True, sent
    assert got == "from the other server" and echo == "still an echo"


def test_relay_down_answers_503(pair, redis):
    """Last: Redis goes away; publishing answers 503 (bounded wait for the
    relay to notice), then works again once Redis is back."""
    a, _ = pair
    redis.kill()
    try:
        status = None
        for _ in range(100):
            status, hdrs, body = post(a, "/pub?location=/live&room=down", "x")
            if status == 503:
                break
            time.sleep(0.1)
        assert status == 503 and "relay" in body["error"] and hdrs["retry-after"] == "1", body
        status, _, body = post(a, "/pub?connection=" + "c" * 32, "x")
        assert status == 503, body
    finally:
        redis.start()
    back = False
    for _ in range(200):
        if post(a, "/pub?location=/live&room=down", "x")[0] == 200:
            back = True
            break
        time.sleep(0.1)
    assert back, "publishing works again once Redis is back"
