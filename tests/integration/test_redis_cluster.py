"""The multi-node setup of conf/cluster/ (the same configuration files as
the demo): a front apache2 with mod_proxy_balancer + mod_proxy_wstunnel
before two mod_wsock nodes sharing one redis-server.  A node is killed
behind the balancer while a room keeps talking; its clients reconnect
through the front to the other node and resume with nothing lost and
nothing twice.
"""

import asyncio
import os
import signal

import websockets

from conftest import run
from test_redis import RedisServer, close_all, fresh_room, recv_json
from test_redis_history import id_key

CLUSTER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "conf", "cluster")


def cluster_conf(name, **values):
    with open(os.path.join(CLUSTER, name)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def start_cluster(apache_factory, redis):
    node_conf = cluster_conf("node.conf.in", REDIS_PORT=redis.port)
    node1 = apache_factory("event", node_conf)
    node2 = apache_factory("event", node_conf)
    front = apache_factory("event", cluster_conf(
        "front.conf.in", MODULES="/usr/lib/apache2/modules", NODE1=node1.port,
        NODE2=node2.port), load_module=False)
    return front, node1, node2


async def via_front(front, query, route, attempts=40):
    """Connects through the front with a sticky route cookie; a node that
    just died may cost the balancer an attempt or two (bounded)."""
    last = None
    for _ in range(attempts):
        try:
            ws = await websockets.connect(front.url("/chat?" + query), open_timeout=15,
                                          close_timeout=5, ping_interval=None,
                                          extra_headers={"Cookie": "WSROUTE=." + route})
        except (OSError, websockets.InvalidStatusCode, websockets.InvalidHandshake) as e:
            last = e
            await asyncio.sleep(0.25)
            continue
        w = await recv_json(ws)
        assert w["type"] == "welcome", w
        if w["relay"] == "down":            # a node just started: wait for its relay
            while (await recv_json(ws))["type"] != "relay":
                pass
        return ws, w
    raise AssertionError("no connection through the front: %r" % last)


async def messages_until_resumed(ws):
    got = []
    while True:
        n = await recv_json(ws)
        if n["type"] == "resumed":
            return got, n
        if n["type"] == "message":
            got.append(n)


def test_delivery_across_nodes_through_the_balancer(apache_factory):
    redis = RedisServer().start()
    try:
        front, _, _ = start_cluster(apache_factory, redis)
        room = fresh_room("c")

        async def go():
            a, wa = await via_front(front, "room=" + room, "node1")
            b, wb = await via_front(front, "room=" + room, "node2")
            try:
                # one child token per node process: different nodes
                assert wa["member"].split("-")[0] != wb["member"].split("-")[0]
                for i in range(10):
                    await a.send("a%d" % i)
                    await b.send("b%d" % i)
                seqs = []
                for ws in (a, b):
                    seqs.append([(await recv_json(ws))["data"] for _ in range(20)])
                assert seqs[0] == seqs[1]
                for p in "ab":
                    assert [d for d in seqs[0] if d[0] == p] == ["%s%d" % (p, i)
                                                                 for i in range(10)]
            finally:
                await close_all([a, b])

        run(go())
    finally:
        redis.kill()


def test_a_node_killed_behind_the_balancer_loses_its_clients_nothing(apache_factory):
    redis = RedisServer().start()
    try:
        front, node1, node2 = start_cluster(apache_factory, redis)
        room = fresh_room("kill")
        total = 300

        async def go():
            sender, _ = await via_front(front, "room=" + room, "node2")
            r1, w1 = await via_front(front, "room=" + room, "node1")
            r2, w2 = await via_front(front, "room=" + room, "node1")
            got = {1: [], 2: []}

            async def send_all():
                for i in range(total):
                    await sender.send(str(i))
                    await asyncio.sleep(0.005)

            task = asyncio.ensure_future(send_all())
            try:
                for _ in range(40):
                    for k, ws in ((1, r1), (2, r2)):
                        got[k].append(await recv_json(ws))
                os.killpg(node1.pid, signal.SIGKILL)
                # what was on its way still arrives, then the connection ends
                for k, ws in ((1, r1), (2, r2)):
                    try:
                        while True:
                            n = await recv_json(ws, 20)
                            got[k].append(n)
                    except websockets.ConnectionClosed:
                        pass
                # back through the front, same (dead) route: the other node;
                # r1 by its session (same room, same member id), r2 by room
                last1, last2 = got[1][-1]["id"], got[2][-1]["id"]
                r1b, w1b = await via_front(
                    front, "session=%s&last_id=%s" % (w1["session"], last1), "node1")
                r2b, _ = await via_front(front, "room=%s&last_id=%s" % (room, last2), "node1")
                assert (w1b["member"], w1b["room"]) == (w1["member"], room)
                for k, ws in ((1, r1b), (2, r2b)):
                    missed, resumed = await messages_until_resumed(ws)
                    assert resumed["complete"] is True, resumed
                    got[k] += missed
                await task
                for k, ws in ((1, r1b), (2, r2b)):
                    while int(got[k][-1]["data"]) != total - 1:
                        got[k].append(await recv_json(ws))
                await close_all([r1b, r2b])
            finally:
                task.cancel()
                await close_all([sender, r1, r2])
            return got

        got = run(go(), timeout=180)
        for k in (1, 2):
            data = [int(n["data"]) for n in got[k]]
            assert data == list(range(total)), k
            ids = [n["id"] for n in got[k]]
            assert ids == sorted(ids, key=id_key)
        assert node2.running() and not node1.running()
    finally:
        redis.kill()
