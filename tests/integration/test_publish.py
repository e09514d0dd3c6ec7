"""Publishing over HTTP (SetHandler wsock-publish, docs/publish.md) through
real apache2 servers (event with two children; prefork), with
python3-websockets clients and http.client publishers.

Rooms of the chat handler are reached in every child process (the bus);
connections addressed by id (WSockAddressable on) from whichever child takes
the POST; the access default (loopback only), WSockPublishAccess and
Apache's own basic auth; the error answers; a hostile publisher's huge and
slow bodies.  The Redis cases (other servers, the server's envelope) are in
test_publish_redis.py.
"""

import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest
import websockets

import memory
from conftest import new_instance, run, serve, session_dir
from test_chat import close_all, connect, fresh_room, recv
from test_redis import PREFORK_FEW, TWO_EVENT_CHILDREN

MODS = "/usr/lib/apache2/modules"
USER, PASSWORD = "pusher", "s3cret-pw"


def publish_conf(htpasswd):
    return """
LoadModule remoteip_module {m}/mod_remoteip.so
LoadModule auth_basic_module {m}/mod_auth_basic.so
LoadModule authn_file_module {m}/mod_authn_file.so
LoadModule authz_user_module {m}/mod_authz_user.so
# a proxy on the loopback says who the client is: then it is not local
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1
Timeout 3
LogLevel info wsock:debug
<IfModule mpm_event_module>
    # WebSockets live on mod_wsock's loop threads: let a child hold 500
    AsyncRequestWorkerFactor 400
</IfModule>

<Location /chat>
    WSockHandler chat room=query
    WSockMaxMessageSize 64K
    WSockAddressable on
</Location>
<Location /fixed>
    WSockHandler chat
</Location>
<Location /plain>
    WSockHandler echo
</Location>
# clients of /members authenticate; the publisher does not need to
<Location /members>
    WSockHandler chat
    AuthType Basic
    AuthName members
    AuthUserFile {pw}
    Require valid-user
</Location>

<Location /pub>
    SetHandler wsock-publish
    WSockMaxMessageSize 16K
</Location>
<Location /pub-any>
    SetHandler wsock-publish
    WSockPublishAccess any
</Location>
<Location /pub-auth>
    SetHandler wsock-publish
    WSockPublishAccess authenticated
    AuthType Basic
    AuthName publish
    AuthUserFile {pw}
    Require valid-user
</Location>
<Location /pub-noauth>
    SetHandler wsock-publish
    WSockPublishAccess authenticated
</Location>
""".format(m=MODS, pw=htpasswd)


def make_htpasswd():
    path = os.path.join(session_dir(), "publish.htpasswd")
    digest = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    with open(path, "w") as f:
        f.write("%s:{SHA}%s\n" % (USER, digest))
    os.chmod(path, 0o644)
    return path


@pytest.fixture(scope="module", params=["event", "prefork"])
def srv(request):
    sizing = TWO_EVENT_CHILDREN if request.param == "event" else PREFORK_FEW
    yield from serve(new_instance(request.param, publish_conf(make_htpasswd()),
                                  mpm_conf=sizing))


def request(inst, method, path, body=None, headers=None, timeout=20):
    """One request on a new connection (a new connection may land in any
    child): (status, headers, parsed JSON or raw bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if hdrs.get("content-type", "").startswith("application/json"):
            data = json.loads(data)
        return r.status, hdrs, data
    finally:
        c.close()


def post(inst, path, body, ctype="text/plain; charset=utf-8", headers=None):
    h = {"Content-Type": ctype} if ctype else {}
    h.update(headers or {})
    if isinstance(body, str):
        body = body.encode("utf-8")     # (http.client would send Latin-1)
    return request(inst, "POST", path, body, h)


def connection_id(inst, ws, since, timeout=10):
    """The id the server gave the client ws (its WSOCK1508 debug line)."""
    port = ws.local_address[1]
    pat = re.compile(r"WSOCK1508: WebSocket \S+ from 127\.0\.0\.1:%d is addressable as "
                     r"connection=([0-9a-f]{32})" % port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = pat.search(inst.error_log(since))
        if m:
            return m.group(1)
        time.sleep(0.05)
    raise AssertionError("no WSOCK1508 line for port %d" % port)


async def nothing_more(ws, wait=0.4):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.recv(), wait)


# ================================================================= rooms
def test_publish_reaches_every_member_in_every_child_in_order(srv):
    """Eight members of a room (over the children); twelve POSTs, each on a
    new connection (any child): every member gets every message, in the
    publisher's order, text as text and binary as binary; the answers say
    exactly what was published and to how many."""
    room = fresh_room("p")
    members, count = 8, 12

    async def go():
        conns = [await connect(srv.url("/chat?room=" + room)) for _ in range(members)]
        try:
            loop = asyncio.get_running_loop()
            answers = []
            for i in range(count):
                if i % 3 == 2:
                    a = await loop.run_in_executor(None, post, srv, "/pub?location=/chat&room="
                                                   + room, bytes([i, 0, 255]),
                                                   "application/octet-stream")
                else:
                    a = await loop.run_in_executor(None, post, srv, "/pub?location=/chat&room="
                                                   + room, "msg %d ü" % i)
                answers.append(a)
            got = []
            for ws in conns:
                got.append([await recv(ws) for _ in range(count)])
                await nothing_more(ws)
            return answers, got
        finally:
            await close_all(conns)

    answers, got = run(go(), timeout=90)
    for i, (status, hdrs, body) in enumerate(answers):
        binary = i % 3 == 2
        assert status == 200, body
        assert hdrs["content-type"].startswith("application/json")
        assert body == {"location": "/chat", "room": room, "handler": "chat",
                        "bytes": 3 if binary else len(("msg %d ü" % i).encode()),
                        "type": "binary" if binary else "text", "receivers": members}, body
    want = [bytes([i, 0, 255]) if i % 3 == 2 else "msg %d ü" % i for i in range(count)]
    for seq in got:
        assert seq == want


def test_room_naming_follows_the_subscribers(srv):
    """room=location handlers: the section's room (a request to /fixed/x is
    in /fixed's room), and room= is refused there; a room=query location
    without room= is its location's room; a location with no handler: 404."""
    async def go():
        a = await connect(srv.url("/fixed/sub/path"))
        b = await connect(srv.url("/chat"))          # no room argument
        c = await connect(srv.url("/chat?room=other"))
        try:
            loop = asyncio.get_running_loop()
            s1 = await loop.run_in_executor(None, post, srv, "/pub?location=/fixed/sub/path",
                                            "to fixed")
            s2 = await loop.run_in_executor(None, post, srv, "/pub?location=/chat", "to chat")
            s3 = await loop.run_in_executor(None, post, srv,
                                            "/pub?location=/fixed&room=lobby", "x")
            s4 = await loop.run_in_executor(None, post, srv, "/pub?location=/nowhere", "x")
            s5 = await loop.run_in_executor(None, post, srv, "/pub?location=/plain", "x")
            assert await recv(a) == "to fixed"
            assert await recv(b) == "to chat"
            await nothing_more(c)
            return s1, s2, s3, s4, s5
        finally:
            await close_all([a, b, c])

    s1, s2, s3, s4, s5 = run(go())
    assert s1[0] == 200 and s1[2]["location"] == "/fixed" and s1[2]["receivers"] == 1, s1
    assert s2[0] == 200 and s2[2]["room"] is None and s2[2]["receivers"] == 1, s2
    assert s3[0] == 400 and "room=query" in s3[2]["error"], s3
    assert s4[0] == 404 and "no WebSocket handler" in s4[2]["error"], s4
    assert s5[0] == 200 and s5[2]["receivers"] == 0, s5    # echo: nobody in rooms


@pytest.mark.parametrize("method, path, body, ctype, status, allow", [
    ("GET", "/pub?location=/chat", None, None, 405, "POST"),
    ("PUT", "/pub?location=/chat", "x", "text/plain", 405, "POST"),
    ("PUT", "/pub?connection=" + "a" * 32, "x", "text/plain", 405, "GET, POST, DELETE"),
    ("POST", "/pub", "x", "text/plain", 400, None),
    ("POST", "/pub?location=/chat&connection=" + "a" * 32, "x", "text/plain", 400, None),
    ("POST", "/pub?location=chat", "x", "text/plain", 400, None),
    ("POST", "/pub?location=/chat&room=a%20b", "x", "text/plain", 400, None),
    ("POST", "/pub?location=/chat&room=" + "r" * 65, "x", "text/plain", 400, None),
    ("POST", "/pub?connection=XYZ", "x", "text/plain", 400, None),
    ("POST", "/pub?connection=" + "A" * 32, "x", "text/plain", 400, None),
    ("POST", "/pub?location=/chat", b"\xff\xfe", "text/plain", 400, None),
    ("POST", "/pub?location=/chat", b"\xc3\xa9", "application/json", 200, None),
    ("POST", "/pub?location=/chat", b"\xc3\xa9", "text/plain; charset=iso-8859-1", 415, None),
    ("POST", "/pub?location=/chat", b"\xff\xfe", "application/octet-stream", 200, None),
    ("POST", "/pub?location=/chat", b"x" * 65536, "text/plain", 200, None),
    ("POST", "/pub?location=/chat", b"x" * 65537, "text/plain", 413, None),
    ("POST", "/pub?location=/fixed", b"x" * (1024 * 1024 + 1), None, 413, None),
    # connection=: the endpoint's own WSockMaxMessageSize (16K)
    ("POST", "/pub?connection=" + "b" * 32, b"x" * 16385, None, 413, None),
    ("POST", "/pub?connection=" + "b" * 32, b"x" * 16384, None, 404, None),
    ("DELETE", "/pub?connection=" + "b" * 32 + "&code=1001", None, None, 400, None),
    ("DELETE", "/pub?connection=" + "b" * 32 + "&code=x", None, None, 400, None),
])
def test_bad_requests_get_clear_answers(srv, method, path, body, ctype, status, allow):
    since = srv.log_offset()
    h = {"Content-Type": ctype} if ctype else {}
    got, hdrs, data = request(srv, method, path, body, h)
    assert got == status, data
    assert hdrs["content-type"].startswith("application/json"), hdrs
    if allow:
        assert hdrs["allow"] == allow
    if status >= 400:
        assert "error" in data or data.get("receivers") == 0 or "closed" in data, data
        if status != 404:
            assert re.search(r"WSOCK150[2-6]:", srv.error_log(since)), srv.error_log(since)


def test_chunked_body_over_the_limit_is_refused_without_reading_it_all(srv):
    """A chunked body that never ends: 413 once it passes the limit."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    try:
        s.sendall(b"POST /pub?location=/chat HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"4000\r\n" + b"z" * 0x4000 + b"\r\n"
        answer = b""
        s.settimeout(0.2)
        for _ in range(64 * 16):            # 16 MiB at most
            try:
                s.sendall(chunk)
            except OSError:
                break
            try:
                answer += s.recv(4096)
            except socket.timeout:
                continue
            if answer:
                break
        s.settimeout(20)
        while b"\r\n\r\n" not in answer:
            more = s.recv(4096)
            if not more:
                break
            answer += more
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    finally:
        s.close()


def test_the_target_locations_own_access_control_does_not_apply_to_publishers(srv):
    """Its subscribers authenticate; the publisher (already let in by the
    publish location) reaches them without their credentials."""
    async def go():
        ws = await connect(srv.url("/members"), extra_headers=auth(USER, PASSWORD))
        try:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(None, post, srv, "/pub?location=/members",
                                                "members only")
            return answer, await recv(ws)
        finally:
            await ws.close()

    answer, got = run(go())
    assert answer[0] == 200 and answer[2]["receivers"] == 1, answer
    assert got == "members only"


# ============================================================ connection=ID
def test_connection_by_id_from_any_child_get_and_delete(srv):
    """A client of an addressable location: POSTs to its id from new
    connections (any child) reach it in order; GET says it is connected;
    DELETE closes it with the code and reason asked; then GET says 404."""
    since = srv.log_offset()

    async def go():
        ws = await connect(srv.url("/chat?room=" + fresh_room("c")))
        other = await connect(srv.url("/chat?room=" + fresh_room("c")))
        loop = asyncio.get_running_loop()
        try:
            cid = connection_id(srv, ws, since)
            oid = connection_id(srv, other, since)
            assert cid != oid
            res = []
            for i in range(8):
                res.append(await loop.run_in_executor(None, post, srv, "/pub?connection=" + cid,
                                                      "direct %d" % i))
            res.append(await loop.run_in_executor(None, post, srv, "/pub?connection=" + cid,
                                                  b"\x00\x01", "application/octet-stream"))
            got = [await recv(ws) for _ in range(9)]
            await nothing_more(other)
            g = await loop.run_in_executor(None, request, srv, "GET", "/pub?connection=" + cid)
            d = await loop.run_in_executor(
                None, request, srv, "DELETE", "/pub?connection=%s&code=4001&reason=bye%%20now" % cid)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            # gone: GET answers 404 once the close went through (bounded)
            deadline = time.monotonic() + 10
            while True:
                g2 = await loop.run_in_executor(None, request, srv, "GET", "/pub?connection=" + cid)
                if g2[0] == 404 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            d2 = await loop.run_in_executor(None, request, srv, "DELETE", "/pub?connection=" + cid)
            p2 = await loop.run_in_executor(None, post, srv, "/pub?connection=" + cid, "late")
            return cid, res, got, g, d, closed.value, g2, d2, p2
        finally:
            await close_all([ws, other])

    cid, res, got, g, d, closed, g2, d2, p2 = run(go(), timeout=60)
    for i, r in enumerate(res):
        assert r[0] == 200, r
        assert r[2] == {"connection": cid, "bytes": 2 if i == 8 else len("direct %d" % i),
                        "type": "binary" if i == 8 else "text", "receivers": 1}
    assert got == ["direct %d" % i for i in range(8)] + [b"\x00\x01"]
    assert g[0] == 200 and g[2] == {"connection": cid, "connected": True}
    assert d[0] == 200 and d[2] == {"connection": cid, "code": 4001, "closed": True}
    assert closed.rcvd.code == 4001 and closed.rcvd.reason == "bye now"
    assert g2[0] == 404 and g2[2] == {"connection": cid, "connected": False}
    assert d2[0] == 404 and d2[2]["closed"] is False
    assert p2[0] == 404 and p2[2]["receivers"] == 0


def test_connections_are_addressable_only_where_configured(srv):
    """/plain has no WSockAddressable: no id is logged for it, and so a
    publisher cannot reach it by any id (its id is only in its own facts)."""
    since = srv.log_offset()

    async def go():
        ws = await connect(srv.url("/plain"))
        try:
            await ws.send("hi")
            assert await recv(ws) == "hi"
        finally:
            await ws.close()
        return ws.local_address[1]

    port = run(go())
    assert ":%d is addressable" % port not in srv.error_log(since)


# ================================================================ access
def auth(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode())
            .decode()}


def test_access_default_is_loopback_only_and_apache_auth_protects(srv):
    room = "/pub?location=/chat&room=" + fresh_room("a")
    remote = {"X-Forwarded-For": "203.0.113.7"}
    since = srv.log_offset()
    # the default: a client that is not on the loopback is refused
    assert post(srv, room, "x", headers=remote)[0] == 403
    assert "WSOCK1501" in srv.error_log(since)
    assert post(srv, room, "x")[0] == 200
    # WSockPublishAccess any: whoever Apache lets through
    assert post(srv, room.replace("/pub?", "/pub-any?"), "x", headers=remote)[0] == 200
    # authenticated, behind basic auth: Apache's own 401s, then the user
    p = room.replace("/pub?", "/pub-auth?")
    assert post(srv, p, "x", headers=remote)[0] == 401
    assert post(srv, p, "x", headers=dict(remote, **auth(USER, "wrong")))[0] == 401
    ok = post(srv, p, "x", headers=dict(remote, **auth(USER, PASSWORD)))
    assert ok[0] == 200, ok
    # authenticated without any authentication configured: never
    assert post(srv, room.replace("/pub?", "/pub-noauth?"), "x")[0] == 403


def test_configtest_checks_the_directives(apache_factory):
    for line, message in [
            ("<Location /p>\nWSockPublishAccess everyone\n</Location>",
             "WSockPublishAccess: local, authenticated or any"),
            ("<Location /p>\nWSockAddressable maybe\n</Location>",
             "WSockAddressable must be On or Off")]:
        inst = apache_factory("event", start=False, extra_conf=line + "\n")
        rc, out = inst.configtest()
        assert rc != 0 and message in out, out


# ============================================================ hostile
def test_hostile_publishers_cost_bounded_memory_and_time_out(srv):
    """Bodies far over the limit (announced and chunked) and bodies that
    stall: the server's memory comes back, a stalled body is cut off by
    Apache's Timeout (3 s here), and publishing still works."""
    base = memory.settled(srv.pid)
    peak = memory.Peak(srv.pid)
    socks = []
    try:
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
            s.sendall(b"POST /pub?location=/chat HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 1073741824\r\n\r\n")
            socks.append(s)
        for s in socks:
            assert s.recv(200).startswith(b"HTTP/1.1 413")
        stalled = []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
            s.sendall(b"POST /pub?location=/chat HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 60000\r\n\r\n" + b"y" * 30000)
            stalled.append(s)
        peak.poll()
        start = time.monotonic()
        for s in stalled:
            data = b""
            while True:
                more = s.recv(4096)           # the server's Timeout ends it
                if not more:
                    break
                data += more
            assert not data.startswith(b"HTTP/1.1 200"), data[:100]
        waited = time.monotonic() - start
        assert waited < 15, "Timeout 3 cut the stalled bodies off (%.1f s)" % waited
        socks += stalled
    finally:
        for s in socks:
            s.close()
    peak.poll()
    after = memory.wait_below(srv.pid, base.pss_kib + 8 * 1024)
    assert peak.max.pss_kib - base.pss_kib < 32 * 1024, (base, peak.max)
    assert after.pss_kib <= base.pss_kib + 8 * 1024, (base, after)
    assert post(srv, "/pub?location=/chat&room=" + fresh_room("h"), "still here")[0] == 200


def test_cost_of_500_addressable_connections(srv):
    """500 addressable WebSockets (bench/publish.py measures ~23 KiB each,
    +0.1 KiB for being addressable): a generous bound, every one reachable
    by its id, and everything given back when they go."""
    if srv.mpm != "event":
        pytest.skip("one MPM is enough for the bound")
    n = 500
    base = memory.settled(srv.pid)
    since = srv.log_offset()

    async def go():
        conns = []
        for i in range(0, n, 100):
            conns += await asyncio.gather(*[connect(srv.url("/chat?room=" + fresh_room("m")))
                                            for _ in range(100)])
        try:
            held = memory.settled(srv.pid)
            ids = re.findall(r"addressable as connection=([0-9a-f]{32})", srv.error_log(since))
            probe = [ids[0], ids[len(ids) // 2], ids[-1]]
            loop = asyncio.get_running_loop()
            seen = [(await loop.run_in_executor(None, request, srv, "GET",
                                                "/pub?connection=" + i))[0] for i in probe]
            return held, len(set(ids)), probe, seen
        finally:
            await close_all(conns)

    held, count, probe, seen = run(go(), timeout=120)
    assert count == n
    assert seen == [200, 200, 200]
    assert held.pss_kib - base.pss_kib < n * 100, (base, held)
    memory.wait_connections_gone(srv.port, timeout=20)
    deadline = time.monotonic() + 10
    while request(srv, "GET", "/pub?connection=" + probe[1])[0] != 404:
        assert time.monotonic() < deadline, "the id is forgotten when it goes"
        time.sleep(0.05)


def test_node_ws_client_gets_room_and_direct_messages(srv):
    """Node's ws (tests/node/ws_member.js) as the subscriber: a room's text
    and binary, a message to its id, and the close DELETE asks for."""
    node_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "node")
    if shutil.which("node") is None or not os.path.isdir(os.path.join(node_dir, "node_modules",
                                                                      "ws")):
        pytest.fail("Node and tests/node/node_modules are needed", pytrace=False)
    room = fresh_room("n")
    since = srv.log_offset()
    p = subprocess.Popen(["node", os.path.join(node_dir, "ws_member.js"),
                          srv.url("/chat?room=" + room), "plain"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        def line(tag):
            got = p.stdout.readline()       # ws_member.js gives up after 90 s
            assert got.startswith(tag + " "), got
            return json.loads(got[len(tag) + 1:])

        port = line("OPEN")["port"]
        pat = re.compile(r":%d is addressable as connection=([0-9a-f]{32})" % port)
        deadline = time.monotonic() + 10
        while not pat.search(srv.error_log(since)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cid = pat.search(srv.error_log(since)).group(1)
        sent = [("text", "für alle".encode()), ("bin", bytes(range(256)) * 4)]
        assert post(srv, "/pub?location=/chat&room=" + room, sent[0][1])[0] == 200
        assert post(srv, "/pub?location=/chat&room=" + room, sent[1][1],
                    "application/octet-stream")[0] == 200
        assert post(srv, "/pub?connection=" + cid, b"just you", "text/plain")[0] == 200
        for n, (kind, data) in enumerate(sent + [("text", b"just you")]):
            assert line("GOT") == {"n": n, "bin": kind == "bin", "len": len(data),
                                   "sha": hashlib.sha256(data).hexdigest()}
        assert request(srv, "DELETE", "/pub?connection=%s&code=4002" % cid)[0] == 200
        assert line("CLOSED") == {"code": 4002}
    finally:
        p.kill()
        p.wait(10)


def test_the_readme_php_example_pushes_to_a_browser_room(srv):
    """examples/publish/push.php (the README's example) with Debian's php-cli."""
    if shutil.which("php") is None:
        pytest.fail("php-cli is needed for the README example's test", pytrace=False)
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "examples", "publish", "push.php")
    room = fresh_room("php")

    async def go():
        ws = await connect(srv.url("/chat?room=" + room))
        try:
            out = await asyncio.get_running_loop().run_in_executor(None, lambda: subprocess.run(
                ["php", script, "http://127.0.0.1:%d" % srv.port, room],
                capture_output=True, text=True, timeout=30))
            return out, await recv(ws)
        finally:
            await ws.close()

    out, got = run(go())
    assert out.returncode == 0, out
    assert json.loads(out.stdout) == {"location": "/chat", "room": room, "handler": "chat",
                                      "bytes": 33, "type": "text", "receivers": 1}
    assert json.loads(got) == {"order": 1234, "status": "shipped"}
