"""The backend handler (WSockHandler backend URL ..., docs/backend.md)
against the example backends of examples/ as real processes -- Python
(websocket-events by hand), PHP's built-in server (protocol=plain), Node
with Fanout's GRIP library -- and a backend that fails on purpose
(backend_faults.py), under the event MPM with two children and prefork,
with Python websockets and Node ws clients.
"""
import asyncio
import http.client as http_client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import websockets

import memory
from backend_faults import REPO, serve_example_tls, serve_faults
from conftest import new_instance, run, serve
from apache_instance import free_ports
from test_redis import PREFORK_FEW, TWO_EVENT_CHILDREN

NODE_DIR = os.path.join(REPO, "tests", "node")


def wait_line(path, pattern, timeout=10.0):
    """The first line of a backend's output file matching pattern (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            for line in f:
                if re.search(pattern, line):
                    return line
        time.sleep(0.1)
    return None


class Proc:
    """A backend process whose output goes to a file; started and stopped
    by the tests (start waits until it listens)."""

    def __init__(self, argv, port, out, cwd=None, ready=None):
        self.argv, self.port, self.out, self.cwd = argv, port, out, cwd
        self.ready = ready or "LISTENING"
        self.p = None

    def start(self):
        f = open(self.out, "a")
        self.p = subprocess.Popen(self.argv, stdout=f, stderr=subprocess.STDOUT, cwd=self.cwd,
                                  start_new_session=True)
        f.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                assert self.p.poll() is None, open(self.out).read()
                time.sleep(0.05)
        raise RuntimeError("backend %s did not listen" % self.argv)

    def kill(self):
        if self.p and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(10)


@pytest.fixture(scope="module")
def backends():
    d = tempfile.mkdtemp(prefix="wsock-backends-")
    os.chmod(d, 0o755)
    # "down": a port nobody listens on
    names = ("py", "py2", "php", "node", "fault", "tls", "down")
    ports = dict(zip(names, free_ports(len(names))))     # distinct: see free_ports
    py = [shutil.which("python3") or "/usr/bin/python3",
          os.path.join(REPO, "examples", "python", "backend.py")]
    # the Node example imports @fanoutio/grip: run a copy next to tests/node's modules
    os.symlink(os.path.join(NODE_DIR, "node_modules"), os.path.join(d, "node_modules"))
    shutil.copy(os.path.join(REPO, "examples", "node", "backend.mjs"), d)
    procs = {
        "py": Proc(py + [str(ports["py"]), "--keep-alive", "1"], ports["py"],
                   os.path.join(d, "py.out")),
        "py2": Proc(py + [str(ports["py2"])], ports["py2"], os.path.join(d, "py2.out")),
        "php": Proc(["php", "-S", "127.0.0.1:%d" % ports["php"],
                     os.path.join(REPO, "examples", "php", "backend.php")], ports["php"],
                    os.path.join(d, "php.out")),
        "node": Proc(["node", os.path.join(d, "backend.mjs"), str(ports["node"])],
                     ports["node"], os.path.join(d, "node.out")),
    }
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    os.chmod(cert, 0o644)
    servers = [serve_faults(ports["fault"]), serve_example_tls(ports["tls"], cert, key)]
    try:
        for p in procs.values():
            p.start()
        yield {"ports": ports, "procs": procs, "dir": d, "cert": cert}
    finally:
        for p in procs.values():
            p.kill()
        for s in servers:
            s.shutdown()
        shutil.rmtree(d, ignore_errors=True)


def backend_conf(b):
    p = b["ports"]
    return """
<Location /py>
    WSockHandler backend http://127.0.0.1:{py}/ws timeout=5
</Location>
<Location /php>
    WSockHandler backend http://127.0.0.1:{php}/ protocol=plain
    WSockProtocols chat
</Location>
<Location /node>
    WSockHandler backend http://127.0.0.1:{node}/ws
</Location>
<Location /restart>
    WSockHandler backend http://127.0.0.1:{py2}/ws timeout=2 retries=4
</Location>
<Location /slow>
    WSockHandler backend http://127.0.0.1:{fault}/sleep timeout=1
</Location>
<Location /garbage>
    WSockHandler backend http://127.0.0.1:{fault}/garbage
</Location>
<Location /flood>
    WSockHandler backend http://127.0.0.1:{fault}/slowok timeout=30 queue=64 queue-bytes=64K
</Location>
<Location /creds>
    WSockHandler backend http://127.0.0.1:{fault}/headers credentials=on headers=X-Trace
</Location>
<Location /keepalive>
    WSockHandler backend http://127.0.0.1:{fault}/keepalive
</Location>
<Location /prefix>
    WSockHandler backend http://127.0.0.1:{fault}/prefix
</Location>
<Location /nocreds>
    WSockHandler backend http://127.0.0.1:{fault}/headers
</Location>
<Location /tls>
    WSockHandler backend https://127.0.0.1:{tls}/ws ca={cert}
</Location>
<Location /pub>
    SetHandler wsock-publish
</Location>
<Location /down>
    WSockHandler backend http://127.0.0.1:{down}/ws timeout=2
</Location>
""".format(cert=b["cert"], **p)


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request, backends):
    mpm_conf = TWO_EVENT_CHILDREN if request.param == "event" else PREFORK_FEW
    yield from serve(new_instance(request.param, backend_conf(backends), mpm_conf=mpm_conf))


def url(inst, path):
    return "ws://127.0.0.1:%d%s" % (inst.port, path)


async def recv(ws, timeout=10):
    return await asyncio.wait_for(ws.recv(), timeout)


async def closed_code(ws, timeout=10):
    """The close code the server sends, reading (and dropping) what comes first."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed:
        return ws.close_code


async def status_of(u, **kw):
    try:
        ws = await websockets.connect(u, **kw)
    except websockets.InvalidStatusCode as e:
        return e.status_code
    await ws.close()
    return 101


# ---------------------------------------------------------------- open
def test_open_refused_with_the_backends_status(server):
    async def go():
        return [await status_of(url(server, "/py")),
                await status_of(url(server, "/py?token=wrong")),
                await status_of(url(server, "/py?token=secret")),
                await status_of(url(server, "/php")),
                await status_of(url(server, "/php?user=mallory")),
                await status_of(url(server, "/php?user=bob"))]
    assert run(go()) == [401, 403, 101, 401, 403, 101]
    assert server.wait_log(r"WSOCK1542: .*refused the client with 403")


def handshake_answer(inst, path):
    """An upgrade request by hand: (status, Content-Type, body) of a refusal."""
    c = http_client.HTTPConnection("127.0.0.1", inst.port, timeout=15)
    c.request("GET", path, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    r = c.getresponse()
    out = (r.status, r.getheader("Content-Type"), r.read())
    c.close()
    return out


def test_refusal_carries_the_backends_body(server):
    assert handshake_answer(server, "/py?token=wrong") == \
        (403, "text/plain", b"that token is not valid\n")
    st, ct, body = handshake_answer(server, "/php?user=mallory")
    assert (st, body) == (403, b"not you, mallory\n") and ct.startswith("text/html"), ct
    # no answer at all: Apache's own page
    st, ct, body = handshake_answer(server, "/down")
    assert st == 502 and b"Bad Gateway" in body


def test_open_without_answer_is_504_or_502(server):
    assert run(status_of(url(server, "/slow?opensleep=1"))) == 504
    assert server.wait_log(r"WSOCK1541: .*/slow: refused the client with 504")
    assert run(status_of(url(server, "/down"))) == 502
    assert server.wait_log(r"WSOCK1541: .*/down: refused the client with 502.*connect")
    assert run(status_of(url(server, "/garbage?opengarbage=1"))) == 502
    assert server.wait_log(r"WSOCK1543: .*/garbage: refused the client with 502")
    assert run(status_of(url(server, "/garbage?openbad=1"))) == 502
    assert server.wait_log(r"WSOCK1547: .*/garbage .*must start with OPEN")


# ---------------------------------------------------------------- websocket-events
def test_events_request_reply_meta_and_close(server, backends):
    out = backends["procs"]["py"].out

    async def go():
        ws = await websockets.connect(url(server, "/py?token=secret&name=alice"))
        got = [await recv(ws)]
        await ws.send("hello")
        got.append(await recv(ws))
        await ws.send(b"\x00\x01\xff")
        got.append(await recv(ws))
        await ws.send("whoami")                 # the name came back as Meta-User
        got.append(await recv(ws))
        # several at once: they queue while one request is out, order holds
        for i in range(20):
            await ws.send("m%d" % i)
        got += [await recv(ws) for _ in range(20)]
        await ws.close(4001, "bye")
        return got
    got = run(go())
    assert got[:4] == ["welcome alice", "echo: hello", b"\x00\x01\xff", "alice"]
    assert got[4:] == ["echo: m%d" % i for i in range(20)]
    # the backend got CLOSE with the client's code
    assert wait_line(out, r"EVENT \w{32} CLOSE b'\\x0f\\xa1'")


def test_keep_alive_interval(server):
    async def go():
        ws = await websockets.connect(url(server, "/py?token=secret"))
        await recv(ws)
        n = 0
        for _ in range(8):                  # bounded: 8 idle pauses at most
            await asyncio.sleep(1.6)
            await ws.send("keepalives")
            n = int(await recv(ws))
            if n >= 2:
                break
        await ws.close()
        return n
    # the example asks for Keep-Alive-Interval: 1; each "keepalives" request
    # resets the idle time, hence pauses longer than the interval
    assert run(go(), 30) >= 2


def test_trust_and_credentials_headers(server):
    async def seen(path):
        ws = await websockets.connect(
            url(server, path), extra_headers={
                "Cookie": "sid=abc", "Authorization": "Bearer t0k",
                "Wsock-User": "admin", "Connection-Id": "forged", "X-Trace": "t-1",
                "Meta-Role": "root"})
        h = {k.lower(): v for k, v in json.loads(await recv(ws)).items()}
        await ws.close()
        return h
    on, off = run(seen("/creds")), run(seen("/nocreds"))
    for h in (on, off):
        assert re.fullmatch(r"[0-9a-f]{32}", h["connection-id"])
        assert h["wsock-remote-addr"] == "127.0.0.1"
        assert "wsock-user" not in h            # no Apache auth: a client cannot claim one
        assert "meta-role" not in h
        assert h["content-type"] == "application/websocket-events"
        assert h["accept"] == "application/websocket-events"
        assert h["sec-websocket-extensions"] == "grip"
    assert on["cookie"] == "sid=abc" and on["authorization"] == "Bearer t0k"
    assert on["x-trace"] == "t-1"
    assert "cookie" not in off and "authorization" not in off and "x-trace" not in off


def test_https_backend(server):
    async def go():
        ws = await websockets.connect(url(server, "/tls?token=secret&name=tls"))
        got = [await recv(ws)]
        await ws.send("over tls")
        got.append(await recv(ws))
        await ws.close()
        return got
    assert run(go()) == ["welcome tls", "echo: over tls"]


# ---------------------------------------------------------------- plain (PHP)
def test_plain_php(server, backends):
    out = backends["procs"]["php"].out

    async def go():
        ws = await websockets.connect(url(server, "/php?user=bob"), subprotocols=["chat"])
        got = [await recv(ws)]
        await ws.send("shout this")
        got.append(await recv(ws))
        await ws.send(b"\x01\x02")
        got.append(await recv(ws))
        await ws.send("whoami")
        got.append(json.loads(await recv(ws)))
        await ws.close(1000)
        return got
    got = run(go())
    assert got[:3] == ["hello bob", "SHOUT THIS", b"\x01\x02"]
    me = got[3]
    assert me["user"] == "bob" and me["address"] == "127.0.0.1" and me["protocol"] == "chat"
    assert re.fullmatch(r"[0-9a-f]{32}", me["connection"])
    assert wait_line(out, r"CLOSE %s 1000" % me["connection"])


# ---------------------------------------------------------------- GRIP (Node)
def node_talk(inst, path, expected, *messages):
    p = subprocess.run(["node", os.path.join(NODE_DIR, "ws_talk.js"), url(inst, path),
                        str(expected)] + list(messages),
                       capture_output=True, text=True, timeout=30)
    return json.loads(p.stdout)


def test_grip_backend_with_node_client(server):
    r = node_talk(server, "/node?channel=news", 4, "hi", "join sports", "leave news", "bye")
    # control messages (c:...) never reach the client; m: prefixes are taken off
    assert r["received"] == ["node: hi", "joined sports", "left news"] or \
        r["received"][:3] == ["node: hi", "joined sports", "left news"], r
    assert not r["errors"], r
    r = node_talk(server, "/node", 2, "bye")
    assert r["received"] == [] and r["close"]["code"] == 4000, r


def http(inst, method, target, body=b""):
    c = http_client.HTTPConnection("127.0.0.1", inst.port, timeout=10)
    c.request(method, target, body=body, headers={"Content-Type": "text/plain; charset=utf-8"})
    r = c.getresponse()
    out = (r.status, r.read())
    c.close()
    return out


def test_grip_channels_reached_by_the_publish_endpoint(server):
    """The Node GRIP backend subscribes its clients to channels; the publish
    endpoint reaches a channel as room=<channel> of the backend's location,
    in whichever child holds the client."""
    async def go():
        a = await websockets.connect(url(server, "/node?channel=news"))
        b = await websockets.connect(url(server, "/node?channel=weather"))
        await a.send("join sports")
        assert await recv(a) == "joined sports"
        # the subscriptions are in place once the answers came back
        await b.send("ping")
        assert await recv(b) == "node: ping"
        got = []
        for room, text in (("news", "n1"), ("sports", "s1"), ("weather", "w1")):
            st, body = await asyncio.to_thread(
                http, server, "POST", "/pub?location=/node&room=%s" % room, text.encode())
            assert st == 200, body
        got.append([await recv(a), await recv(a)])
        got.append([await recv(b)])
        await a.send("leave news")
        assert await recv(a) == "left news"
        for room, text in (("news", "n2"), ("sports", "s2")):
            await asyncio.to_thread(http, server, "POST", "/pub?location=/node&room=%s" % room,
                                    text.encode())
        got.append([await recv(a)])         # s2 only: n2 went to nobody
        await a.close()
        await b.close()
        return got
    assert run(go()) == [["n1", "s1"], ["w1"], ["s2"]]


def test_backend_pushes_to_one_connection_by_its_id(server):
    """The id the backend gets in Connection-Id addresses that client at the
    publish endpoint (push, is it connected, disconnect)."""
    async def go():
        a = await websockets.connect(url(server, "/php?user=ann"))
        b = await websockets.connect(url(server, "/php?user=ben"))
        await recv(a)
        await recv(b)
        await a.send("whoami")
        cid = json.loads(await recv(a))["connection"]
        st, _ = await asyncio.to_thread(http, server, "POST", "/pub?connection=" + cid,
                                        b"just for ann")
        assert st == 200
        assert await recv(a) == "just for ann"
        await b.send("and ben?")
        assert await recv(b) == "AND BEN?"          # b got nothing else before
        st, _ = await asyncio.to_thread(http, server, "GET", "/pub?connection=" + cid)
        assert st == 200
        st, _ = await asyncio.to_thread(http, server, "DELETE",
                                        "/pub?connection=%s&code=4009" % cid)
        assert st == 200
        code = await closed_code(a)
        await b.close()
        return code
    assert run(go()) == 4009


def test_open_answer_may_close_at_once(server):
    async def go():
        ws = await websockets.connect(url(server, "/garbage?openclose=1"))
        got = await recv(ws)
        code = await closed_code(ws)
        return got, code, ws.close_reason
    assert run(go()) == ("bye", 4003, "no room")


def test_grip_keep_alive_control_message(server):
    async def go():
        ws = await websockets.connect(url(server, "/keepalive"))
        got = [await recv(ws, 5), await recv(ws, 5)]
        await ws.close()
        return got
    assert run(go()) == ["still there?", "still there?"]


def test_grip_message_prefix_parameter(server):
    async def go():
        ws = await websockets.connect(url(server, "/prefix"))
        got = [await recv(ws), await recv(ws)]
        await ws.close()
        return got
    assert run(go()) == ["hello", "m:kept"]


# ---------------------------------------------------------------- failures
def test_backend_timeout_closes_1011_others_unaffected(server):
    since = server.log_offset()

    async def go():
        slow = await websockets.connect(url(server, "/slow"))
        other = await websockets.connect(url(server, "/py?token=secret"))
        await recv(other)
        await slow.send("anyone?")
        # while the slow backend sleeps, another client's round trips go on
        for i in range(5):
            await other.send("still here %d" % i)
            assert await recv(other) == "echo: still here %d" % i
        code = await closed_code(slow)
        await other.close()
        return code
    assert run(go()) == 1011
    assert server.wait_log(r"WSOCK1544: .*/slow .*(Timeout|timed out)", since=since)
    assert server.wait_log(r"WSOCK1558: .*/slow", since=since)


def test_garbage_answer_closes_1011(server):
    since = server.log_offset()

    async def go():
        ws = await websockets.connect(url(server, "/garbage"))
        await ws.send("x")
        return await closed_code(ws)
    assert run(go()) == 1011
    assert server.wait_log(r"WSOCK1547: .*/garbage .*not application/websocket-events",
                           since=since)


def test_backend_killed_and_restarted(server, backends):
    py2 = backends["procs"]["py2"]
    since = server.log_offset()

    async def go():
        ws = await websockets.connect(url(server, "/restart?token=secret"))
        await recv(ws)
        await ws.send("one")
        assert await recv(ws) == "echo: one"
        py2.kill()
        await ws.send("two")
        code = await closed_code(ws)
        return code
    assert run(go()) == 1011
    assert server.wait_log(r"WSOCK1544: .*/restart", since=since)
    # the DISCONNECT is tried again (1, 2, 3 s apart): the restarted backend gets it
    assert server.wait_log(r"WSOCK1548: .*/restart", since=since)
    py2.start()
    assert wait_line(py2.out, r"EVENT \w{32} DISCONNECT", timeout=15)

    async def again():
        ws = await websockets.connect(url(server, "/restart?token=secret"))
        await recv(ws)
        await ws.send("three")
        got = await recv(ws)
        await ws.close()
        return got
    assert run(again()) == "echo: three"


def test_flooding_client_is_bounded(server):
    """Clients that send far faster than a slow backend answers are closed
    with 1013 once their queue is full (queue=64 queue-bytes=64K); the
    server's memory does not grow with what they send."""
    since = server.log_offset()
    before = memory.settled(server.pid)
    peak = memory.Peak(server.pid)
    payload = "x" * 1024

    async def flood():
        ws = await websockets.connect(url(server, "/flood"), max_queue=None)
        try:
            for i in range(4000):           # 4 MiB each
                await ws.send(payload)
                if i % 500 == 0:
                    peak.poll()
        except websockets.ConnectionClosed:
            pass
        return await closed_code(ws)

    async def go():
        return await asyncio.gather(*[flood() for _ in range(8)])
    codes = run(go(), 60)
    peak.poll()
    # Pss: prefork starts spare children meanwhile, whose shared pages Rss
    # would count again and again
    grown = peak.max.pss_kib - before.pss_kib
    print("flood (%s): 8 clients x 4 MiB against queue-bytes=64K: apache tree Pss %d -> "
          "%d KiB (peak +%d KiB)" % (server.mpm, before.pss_kib, peak.max.pss_kib, grown))
    assert codes == [1013] * 8
    assert server.wait_log(r"WSOCK1557: .*/flood .*closing with 1013", since=since)
    if memory.bounds_apply():
        assert grown < 16 * 1024, memory.report(before=before, peak=peak.max)


def test_stopping_server_tells_the_backend(apache_factory, backends):
    """A graceful stop closes the clients with 1001; their CLOSE still
    reaches the backend (the HTTP thread drains for up to 1 s)."""
    out = backends["procs"]["py"].out
    inst = apache_factory("event", backend_conf(backends), mpm_conf=TWO_EVENT_CHILDREN)

    async def go():
        ws = await websockets.connect(url(inst, "/py?token=secret&name=stopper"))
        await recv(ws)
        await ws.send("before the stop")
        assert await recv(ws) == "echo: before the stop"
        with open(out) as f:
            seen = len(f.read().splitlines())
        await asyncio.to_thread(inst.graceful_stop)
        code = await closed_code(ws)
        return seen, code
    seen, code = run(go())
    assert code == 1001
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(out) as f:
            later = f.read().splitlines()[seen:]
        if any(re.search(r"CLOSE b'\\x03\\xe9'", ln) for ln in later):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the backend never got CLOSE 1001: %r" % later)


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("args,why", [
    ("ftp://x/", "http:// or https:// URL"),
    ("http://127.0.0.1:1/ protocol=soap", "bad value in 'protocol=soap'"),
    ("http://127.0.0.1:1/ timeout=0", "bad value in 'timeout=0'"),
    ("http://127.0.0.1:1/ queue-bytes=12", "bad value"),
    ("http://127.0.0.1:1/ ca=/nonexistent.pem", "no such file"),
    ("http://127.0.0.1:1/ headers=Bad:Name", "bad value"),
    ("http://127.0.0.1:1/ headers=X-A,Meta-Role", "bad value"),
    ("http://127.0.0.1:1/ headers=wsock-user", "bad value"),
    ("http://127.0.0.1:1/ colour=red", "unknown argument 'colour=red'"),
])
def test_configtest_catches_bad_arguments(args, why):
    inst = new_instance("event", "<Location /b>\n    WSockHandler backend %s\n</Location>\n"
                        % args)
    rc, out = inst.configtest()
    assert rc != 0 and why in out, out
