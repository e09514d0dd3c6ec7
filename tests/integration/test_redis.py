"""The redis handler (Redis relay) through real apache2 instances sharing one
real redis-server, with python3-websockets as the client.

Each test module starts its own redis-server on a free loopback port in a
temporary directory (no persistence); RedisServer.kill()/start() simulate
Redis going away and coming back on the same port.
"""

import asyncio
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import websockets

from conftest import new_instance, run, serve, session_dir
from test_chat import close_all, fresh_room, recv_json
from test_chat import join as chat_join

REDIS_BIN = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"

# Two event children: a server whose rooms span child processes, each with
# its own subscriber.
TWO_EVENT_CHILDREN = """\
StartServers 2
ServerLimit 2
ThreadLimit 32
ThreadsPerChild 32
MinSpareThreads 64
MaxSpareThreads 64
MaxRequestWorkers 64
MaxConnectionsPerChild 0
"""

PREFORK_FEW = """\
StartServers 6
MinSpareServers 6
MaxSpareServers 30
ServerLimit 30
MaxRequestWorkers 30
MaxConnectionsPerChild 0
"""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throw-away redis-server on 127.0.0.1:port (no RDB, no AOF)."""

    def __init__(self, extra_args=(), unix=False):
        """unix: listen on a unix socket (self.socket) instead of TCP."""
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=session_dir())
        os.chmod(self.dir, 0o755)           # apache's children reach the socket
        self.socket = os.path.join(self.dir, "redis.sock") if unix else None
        self.port = 0 if unix else free_port()
        self.extra_args = list(extra_args)
        if unix:
            self.extra_args += ["--unixsocket", self.socket, "--unixsocketperm", "777"]
        self.proc = None

    def _address(self):
        if self.socket:
            return socket.AF_UNIX, self.socket
        return socket.AF_INET, ("127.0.0.1", self.port)

    def start(self, timeout=15):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self.dir] + self.extra_args,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited: %s" % self.log()[-2000:])
            family, addr = self._address()
            try:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(1)
                    s.connect(addr)
                    s.sendall(b"PING\r\n")
                    if s.recv(64)[:1] in (b"+", b"-"):     # +PONG, or -NOAUTH
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer on port %d" % self.port)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def cli(self, *args, password=None):
        cmd = [REDIS_CLI] + (["-s", self.socket] if self.socket else
                             ["-h", "127.0.0.1", "-p", str(self.port)]) + ["--raw"]
        if password:
            cmd += ["--no-auth-warning", "-a", password]
        p = subprocess.run(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=15)
        return p.stdout.decode("utf-8", "replace")

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()
        except OSError:
            return ""


def redis_conf(redis, extra="", prefix=None):
    lines = ["WSockRedis 127.0.0.1:%d" % redis.port, "WSockRedisTimeout 2"]
    if prefix:
        lines.append("WSockRedisPrefix %s" % prefix)
    return "\n".join(lines) + "\n" + extra + """
<Location /relay>
    WSockHandler redis room=query
</Location>
<Location /quiet>
    WSockHandler redis room=query echo=off
</Location>
<Location /fixed>
    WSockHandler redis
</Location>
"""


@pytest.fixture(scope="module")
def redis():
    r = RedisServer().start()
    yield r
    r.kill()


def serve_pair(conf):
    """Fixture body: two apache2 servers with conf (two event children;
    prefork), yielded as (event, prefork); both stopped afterwards."""
    gens = [serve(new_instance("event", conf, mpm_conf=TWO_EVENT_CHILDREN)),
            serve(new_instance("prefork", conf, mpm_conf=PREFORK_FEW))]
    insts = []
    try:
        for g in gens:
            insts.append(next(g))
        yield tuple(insts)
    finally:
        for g in gens[:len(insts)]:
            next(g, None)


@pytest.fixture(scope="module")
def pair(redis):
    """Two apache2 servers (two event children; prefork) sharing one Redis."""
    yield from serve_pair(redis_conf(redis))


async def join(url, up=True):
    """Connects and returns (ws, welcome).  With up, a client welcomed
    while its child's relay is still connecting (just after start) waits
    for the relay's "up" notice."""
    ws, w = await chat_join(url)
    if up and w["relay"] == "down":
        while (await recv_type(ws, "relay", 30))["state"] != "up":
            pass
        w = dict(w, relay="up")
    return ws, w


async def recv_type(ws, kind, timeout=20):
    """The next notice of type kind; every message before it must be of
    another type that is allowed to interleave (relay notices)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError(kind)
        n = await recv_json(ws, left)
        if n["type"] == kind:
            return n


async def nothing_more(ws, wait=0.5):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.recv(), wait)


# ================================================================ configuration
@pytest.mark.parametrize("line, message", [
    ("WSockRedis localhost", "WSockRedis: 'localhost' is not host:port (port 1-65535) or "
                             "unix:/path"),
    ("WSockRedis 127.0.0.1:0", "WSockRedis: '127.0.0.1:0' is not host:port"),
    ("WSockRedis 127.0.0.1:65536", "WSockRedis: '127.0.0.1:65536' is not host:port"),
    ("WSockRedis :6379", "WSockRedis: ':6379' is not host:port"),
    ("WSockRedis unix:relative/path", "WSockRedis: 'unix:relative/path' is not "
                                      "unix:/absolute/path"),
    ("WSockRedis [::1:6379", "an IPv6 address goes in brackets"),
    ("WSockRedis no-such-host.invalid:6379", "WSockRedis: cannot resolve host "
                                             "'no-such-host.invalid'"),
    ("WSockRedisDatabase -1", "WSockRedisDatabase: '-1' is not a database number (0-65535)"),
    ("WSockRedisDatabase one", "WSockRedisDatabase: 'one' is not a database number"),
    ("WSockRedisTimeout 0", "WSockRedisTimeout: '0' is not a number of seconds from 0.1 "
                            "to 3600"),
    ("WSockRedisTimeout soon", "WSockRedisTimeout: 'soon' is not a number of seconds"),
    ("WSockRedisPrefix \"a b\"", "WSockRedisPrefix: 'a b' is not 1-64 printable ASCII"),
    ("WSockRedisQueue 0", "WSockRedisQueue: '0' is not a number of messages (1-1000000)"),
    ("WSockRedisQueue 10 lots", "WSockRedisQueue: 'lots' is not a size from 64K to 4G"),
    ("WSockRedisQueue 10 1K", "WSockRedisQueue: '1K' is not a size from 64K to 4G"),
    ("WSockRedisQueue 10 5G", "WSockRedisQueue: '5G' is not a size from 64K to 4G"),
    ("WSockRedisQueue 10 16M 3", "WSockRedisQueue takes 1-2 arguments"),
    ("WSockRedisAuth a b c", "WSockRedisAuth takes 1-2 arguments"),
    ("<Location /x>\nWSockRedis 127.0.0.1:6379\n</Location>", "WSockRedis not allowed in "
                                                             "<Location> context"),
    ("<VirtualHost 127.0.0.1:9>\nWSockRedisPrefix x\n</VirtualHost>",
     "WSockRedisPrefix cannot occur within <VirtualHost> section"),
    ("<Location /x>\nWSockHandler redis room=url\n</Location>",
     "WSockHandler redis: bad value in 'room=url' (room=location|query, echo=on|off, "
     "history=N, history-age=SECONDS, session=SECONDS, resume=N, resume-bytes=SIZE)"),
    ("<Location /x>\nWSockHandler redis session=forever\n</Location>",
     "WSockHandler redis: bad value in 'session=forever'"),
    ("<Location /x>\nWSockHandler redis history=0\n</Location>",
     "WSockHandler redis: bad value in 'history=0'"),
    ("<Location /x>\nWSockHandler redis history=lots\n</Location>",
     "WSockHandler redis: bad value in 'history=lots'"),
    ("<Location /x>\nWSockHandler redis history-age=1h\n</Location>",
     "WSockHandler redis: bad value in 'history-age=1h'"),
    ("<Location /x>\nWSockHandler redis resume=0\n</Location>",
     "WSockHandler redis: bad value in 'resume=0'"),
    ("<Location /x>\nWSockHandler redis resume=100001\n</Location>",
     "WSockHandler redis: bad value in 'resume=100001'"),
    ("<Location /x>\nWSockHandler redis resume-bytes=1X\n</Location>",
     "WSockHandler redis: bad value in 'resume-bytes=1X'"),
    ("<Location /x>\nWSockHandler redis resume-bytes=512\n</Location>",
     "WSockHandler redis: bad value in 'resume-bytes=512'"),
    ("<Location /x>\nWSockHandler redis colour=red\n</Location>",
     "WSockHandler redis: unknown argument 'colour=red'"),
])
def test_configtest_rejects_bad_redis_settings(apache_factory, line, message):
    inst = apache_factory("event", start=False, extra_conf=line + "\n")
    rc, out = inst.configtest()
    assert rc != 0 and message in out, out


def test_configtest_accepts_good_redis_settings(apache_factory):
    inst = apache_factory("event", start=False, extra_conf="""
WSockRedis [::1]:6380
WSockRedis unix:/run/redis/redis.sock
WSockRedis localhost:6379
WSockRedisAuth secret
WSockRedisAuth relay secret
WSockRedisDatabase 3
WSockRedisPrefix app1:
WSockRedisTimeout 0.5
WSockRedisQueue 100
WSockRedisQueue 100 4M
<Location /r>
    WSockHandler redis ROOM=Query echo=OFF
</Location>
<Location /h>
    WSockHandler redis history=1000 History-Age=3600 session=86400
</Location>
<Location /c>
    WSockHandler redis history=10 resume=50 Resume-Bytes=512k
</Location>
""")
    rc, out = inst.configtest()
    assert rc == 0, out


# ===================================================================== relay
def test_cross_server_delivery_in_one_order_for_everyone(pair):
    """Clients on two servers (three child processes and more) in one room:
    everyone gets every message exactly once, each sender's in its order,
    and all receivers see the same sequence (the order Redis gave)."""
    a, b = pair
    room = fresh_room("x")
    per_server, per_sender = 3, 15

    async def go():
        conns, ids = [], []
        for srv in (a, b):
            for _ in range(per_server):
                ws, w = await join(srv.url("/relay?room=" + room))
                assert w["room"] == room and w["relay"] == "up", w
                conns.append(ws)
                ids.append(w["member"])
        try:
            async def send_all(k, ws):
                for i in range(per_sender):
                    await ws.send("%d:%d" % (k, i))

            async def recv_all(ws):
                got = []
                while len(got) < len(conns) * per_sender:
                    n = await recv_json(ws)
                    assert n["type"] == "message", n
                    got.append((n["from"], n["data"]))
                await nothing_more(ws)
                return got

            receivers = [asyncio.ensure_future(recv_all(ws)) for ws in conns]
            await asyncio.gather(*[send_all(k, ws) for k, ws in enumerate(conns)])
            return ids, await asyncio.gather(*receivers)
        finally:
            await close_all(conns)

    ids, got = run(go(), timeout=120)
    assert len(set(ids)) == len(ids), "member ids are unique across servers"
    want = sorted((ids[k], "%d:%d" % (k, i)) for k in range(len(ids))
                  for i in range(per_sender))
    for seq in got:
        assert sorted(seq) == want
        for k in range(len(ids)):
            mine = [int(d.split(":")[1]) for f, d in seq if f == ids[k]]
            assert mine == list(range(per_sender))
        assert seq == got[0], "every receiver sees the room in one order"


def test_echo_off_rooms_apart_and_section_rooms(pair):
    a, b = pair
    room, other = fresh_room("q"), fresh_room("q")

    async def go():
        s, _ = await join(a.url("/quiet?room=" + room))
        r, _ = await join(b.url("/quiet?room=" + room))
        o, _ = await join(b.url("/quiet?room=" + other))
        # same query room under another section: another room
        rel, _ = await join(b.url("/relay?room=" + room))
        f1, w1 = await join(a.url("/fixed"))
        f2, _ = await join(b.url("/fixed?room=ignored"))
        try:
            await s.send("to the room")
            n = await recv_json(r)
            assert n["data"] == "to the room"
            await f1.send("fixed")
            assert (await recv_json(f2))["data"] == "fixed"
            assert (await recv_json(f1))["from"] == w1["member"]    # echo=on by default
            for ws in (s, o, rel):
                await nothing_more(ws)
            assert w1["room"] == "/fixed"
        finally:
            await close_all([s, r, o, rel, f1, f2])

    run(go())


def test_text_is_escaped_and_binary_is_refused(pair):
    a, b = pair
    room = fresh_room("j")

    async def go():
        x, _ = await join(a.url("/relay?room=" + room))
        y, _ = await join(b.url("/relay?room=" + room))
        try:
            text = 'hi "all"\n\\ \x00 <b>ünï</b> {"type":"relay","state":"down"}'
            await x.send(text)
            for ws in (x, y):
                n = await recv_json(ws)
                assert n["type"] == "message" and n["data"] == text
            await x.send(b"\x01\x02")
            with pytest.raises(websockets.ConnectionClosed) as e:
                await asyncio.wait_for(x.recv(), 10)
            assert e.value.rcvd.code == 1003
        finally:
            await close_all([x, y])

    run(go())


def test_subscriptions_follow_the_rooms(pair, redis):
    """A child subscribes to a room's channel while it has members there."""
    a, _ = pair
    room = fresh_room("s")
    channel = "wsock:/relay?" + room

    def channels():
        return redis.cli("PUBSUB", "CHANNELS", "wsock:*").split()

    async def go():
        ws, _ = await join(a.url("/relay?room=" + room))
        assert channel in channels()       # the welcome comes after the SUBSCRIBE
        await ws.close()
        deadline = time.monotonic() + 15
        while channel in channels() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert channel not in channels()

    run(go())


def test_messages_from_other_publishers_are_ignored(pair, redis):
    a, _ = pair
    room = fresh_room("i")

    async def go():
        ws, _ = await join(a.url("/relay?room=" + room))
        try:
            assert redis.cli("PUBLISH", "wsock:/relay?" + room, "not an envelope").strip() \
                in ("1", "2")
            await ws.send("after")
            n = await recv_json(ws)
            assert n["data"] == "after"
        finally:
            await ws.close()

    run(go())
