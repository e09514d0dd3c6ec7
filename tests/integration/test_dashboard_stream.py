"""The live dashboard's stream (SetHandler wsock-status) through a real
apache2 with two event children: a WebSocket on the status URL gets the
history of the last minutes at once, then a snapshot a second whose counts
are exactly what the test did (WebSockets opened and closed by code in
both children, rooms and their sizes, refused handshakes, messages in);
the page and its files are served with a strict CSP; the stream takes no
input; a client that is not on loopback is refused unless WSockStatusAccess
says otherwise (authenticated, any); a cross-site page cannot read it.
"""

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets

from apache_instance import APACHE_MODULES
from conftest import new_instance, run, serve
from test_chat import TWO_EVENT_CHILDREN
from test_compression_rooms import serving_pids

XSS = "<img src=x onerror=alert(1)>"
XSS_PATH = "/x%3Cimg%20src=x%20onerror=alert(1)%3E"

CONF = """\
LoadModule remoteip_module %s/mod_remoteip.so
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1
<Location /status>
    SetHandler wsock-status
</Location>
<Location /status-denied>
    SetHandler wsock-status
    WSockStatusAccess any
    Require all denied
</Location>
<Location /status-open>
    SetHandler wsock-status
    WSockStatusAccess any
</Location>
<Location /status-auth>
    SetHandler wsock-status
    WSockStatusAccess authenticated
</Location>
<Location /echo>
    WSockHandler echo
</Location>
<Location /chat>
    WSockHandler chat room=query
</Location>
<Location "/x%s">
    WSockHandler chat
</Location>
""" % (APACHE_MODULES, XSS)


@pytest.fixture(scope="module")
def dash():
    yield from serve(new_instance("event", CONF, mpm_conf=TWO_EVENT_CHILDREN))


def ws_url(inst, path):
    return "ws://127.0.0.1:%d%s" % (inst.port, path)


def status(inst, path="/status", **kw):
    return websockets.connect(ws_url(inst, path), origin="http://127.0.0.1:%d" % inst.port,
                              max_size=2 ** 22, **kw)


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def snapshot_until(ws, pred, timeout=15):
    """The first snapshot for which pred holds (the last one seen if none
    does within timeout)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        m = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        if m["type"] == "snapshot":
            last = m
            if pred(m):
                return m
    return last


def location(snap, path):
    return next((l for l in snap["locations"] if l["location"] == path), None)


def test_history_is_there_on_first_connect(dash):
    async def go():
        async with status(dash) as ws:
            first = await recv_json(ws)
            assert first["type"] == "history" and first["interval"] == 1
            cols = first["columns"]
            assert cols[:3] == ["t", "children", "open"] and "closed_1000" in cols
            # the server samples every second from its start, watched or not
            snap = await snapshot_until(ws, lambda s: True)
        assert snap["type"] == "snapshot" and snap["columns"] == cols
        # nobody watches for a while: the samplers go on writing history
        clients = [await websockets.connect(ws_url(dash, "/echo")) for _ in range(3)]
        clients += [await websockets.connect(ws_url(dash, "/chat?room=hist")) for _ in range(2)]
        # from when all are open (the handshakes may cross a second, under ASan)
        opened_at = time.time()
        try:
            await asyncio.sleep(3.5)
            async with status(dash) as ws:
                hist = await recv_json(ws)
                snap = await recv_json(ws)
        finally:
            for c in clients:
                await c.close()
        rows = hist["rows"]
        ts = [r[0] for r in rows]
        assert ts == sorted(set(ts)), "one row per second, oldest first"
        assert len(rows) >= 3, rows     # 3.5 s passed since the echoes opened
        # rows from before this client connected, while nobody watched
        watched_from = int(time.time())
        unwatched = [r for r in rows if int(opened_at) + 1 <= r[0] < watched_from]
        assert unwatched, (opened_at, watched_from, ts)
        assert all(r[cols.index("open")] >= 5 for r in unwatched), unwatched
        # each row has its largest rooms: the room filled while nobody watched
        assert len(hist["rooms"]) == len(rows)
        by_t, before = {}, []
        for r, rooms in zip(rows, hist["rooms"]):
            before = before if rooms is None else rooms     # null: as the row before
            by_t[r[0]] = dict(map(tuple, before))
        assert hist["rooms"][0] is not None
        assert any(by_t[r[0]].get("/chat?hist") == 2 for r in unwatched), by_t
        assert all(r[cols.index("children")] == 2 for r in rows[-3:])
        assert abs(ts[-1] - time.time()) <= 2
        assert snap["type"] == "snapshot" and snap["sample"][0] >= ts[-1]
        assert len(snap["sample"]) == len(cols)
    run(go())


def test_exact_counts_across_two_children(dash):
    async def go():
        async with status(dash) as ws:
            base = await snapshot_until(ws, lambda s: True)
        echo0 = location(base, "/echo") or {"open": 0, "opened": 0, "closed": {}}
        refused0 = base["refused"].get("origin", {}).get("403", 0)
        in0 = base["traffic"]["messages_in"]

        # 12 echo WebSockets, in both children (opened until they are)
        echoes = []
        for _ in range(40):
            echoes.append(await websockets.connect(ws_url(dash, "/echo")))
            pids = serving_pids(dash, [c.local_address[1] for c in echoes])
            if len(echoes) >= 12 and len(set(pids.values())) == 2:
                break
        assert len(set(pids.values())) == 2, pids
        n = len(echoes)
        for i, c in enumerate(echoes):
            await c.send("m%d" % i)
            assert await asyncio.wait_for(c.recv(), 5) == "m%d" % i
        # 3 close with 1000, 2 with 4001 (counted as "other")
        for c in echoes[:3]:
            await c.close(1000)
        for c in echoes[3:5]:
            await c.close(4001, "bye")
        lobby = [await websockets.connect(ws_url(dash, "/chat?room=lobby")) for _ in range(3)]
        xss = [await websockets.connect(ws_url(dash, XSS_PATH)) for _ in range(2)]
        for _ in range(2):
            with pytest.raises(websockets.InvalidStatusCode) as e:
                await websockets.connect(ws_url(dash, "/echo"), origin="http://evil.example")
            assert e.value.status_code == 403

        # ... and this test's own dashboard WebSocket, counted apart
        want_open = (n - 5) + 3 + 2 + 1

        def check(snap):
            assert snap["children"] == 2
            assert snap["open"] == want_open, snap
            echo = location(snap, "/echo")
            assert echo["handler"] == "echo"
            assert echo["open"] == n - 5
            assert echo["opened"] == echo0["opened"] + n
            assert echo["closed"].get("1000", 0) == echo0["closed"].get("1000", 0) + 3
            assert echo["closed"].get("other", 0) == echo0["closed"].get("other", 0) + 2
            assert location(snap, "/chat")["open"] == 3
            assert location(snap, "/x" + XSS)["open"] == 2
            assert location(snap, "(wsock-status)")["handler"] == "status"
            assert location(snap, "(wsock-status)")["open"] == 1
            rooms = {r["name"]: r["members"] for r in snap["rooms"]}
            assert rooms.get("/chat?lobby") == 3, rooms
            assert rooms.get("/x" + XSS) == 2, rooms
            assert not any(name.startswith("\x01") for name in rooms), "the dashboard's own room"
            assert snap["refused"]["origin"]["403"] == refused0 + 2
            assert snap["traffic"]["messages_in"] == in0 + n
            # the sample row carries the same counts
            row = dict(zip(snap["columns"], snap["sample"]))
            assert row["open"] == want_open and row["refused_origin"] >= refused0 + 2

        def settled(snap):
            # Some counts land a moment after the client saw the event: a
            # refusal is counted when Apache logs the request, after the
            # 403 went out; each child lists its rooms once a second, so a
            # room can show up to 1 s late.  Wait (bounded) for all of them.
            try:
                check(snap)
                return True
            except (AssertionError, KeyError, TypeError):
                return False

        try:
            async with status(dash) as ws:
                snap = await snapshot_until(ws, settled)
        finally:
            for c in echoes[5:] + lobby + xss:
                await c.close()
        check(snap)
    run(go())


def test_stream_takes_no_input(dash):
    async def go():
        async with status(dash) as ws:
            await recv_json(ws)
            await ws.send("hello")
            with pytest.raises(websockets.ConnectionClosed) as e:
                for _ in range(10):
                    await asyncio.wait_for(ws.recv(), 5)
            assert e.value.rcvd.code == 1003
        async with status(dash) as ws:
            await ws.send("x" * 5000)       # over the stream's 1 KiB limit
            with pytest.raises(websockets.ConnectionClosed) as e:
                for _ in range(10):
                    await asyncio.wait_for(ws.recv(), 5)
            assert e.value.rcvd.code == 1009
    run(go())
    dash.wait_log(r"WSOCK1453: wsock-status /status: a 5-byte message")


def get(inst, path, headers=None, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (inst.port, path),
                                 headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode(errors="replace")


def test_page_files_and_access(dash):
    code, headers, body = get(dash, "/status")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/status/_/dashboard.js"' in body and "http" not in body.lower()
    for name, ctype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        code, headers, text = get(dash, "/status/_/" + name)
        assert code == 200 and headers["Content-Type"].startswith(ctype)
        assert "http://" not in text and "https://" not in text and "innerHTML" not in text
    assert get(dash, "/status/_/nothing.js")[0] == 404
    assert get(dash, "/status", method="POST")[0] == 405
    # the same page under another URL points at its own files
    assert 'href="/status-open/_/dashboard.css"' in get(dash, "/status-open/")[2]
    assert 'href="/status/a/_/b/_/dashboard.css"' in get(dash, "/status/a/_/b/")[2]
    assert get(dash, "/status/a/_/b/_/dashboard.css")[1]["Content-Type"].startswith("text/css")

    # not on loopback (mod_remoteip's client address): refused by default
    # (local), page and stream alike; with any, Require decides; with
    # authenticated, only a user Apache authenticated (none here) gets in
    since = dash.log_offset()
    away = {"X-Forwarded-For": "203.0.113.7"}
    assert get(dash, "/status", away)[0] == 403
    assert get(dash, "/status-open", away)[0] == 200
    assert get(dash, "/status-denied")[0] == 403
    assert get(dash, "/status-auth")[0] == 403

    async def stream_refusals():
        for path, headers in (("/status", away), ("/status-denied", {}), ("/status-auth", {})):
            with pytest.raises(websockets.InvalidStatusCode) as e:
                await status(dash, path, extra_headers=headers)
            assert e.value.status_code == 403
        # a page of another site cannot open the stream (same-origin policy)
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect(ws_url(dash, "/status"), origin="http://evil.example")
        assert e.value.status_code == 403
        async with status(dash, "/status-open", extra_headers=away) as ws:
            assert (await recv_json(ws))["type"] == "history"
    run(stream_refusals())
    log = dash.error_log(since)
    assert "WSOCK1454: wsock-status /status refused (403) to 203.0.113.7: " \
        "WSockStatusAccess local" in log
    assert "WSOCK1454: wsock-status /status-auth refused (403) to 127.0.0.1: " \
        "WSockStatusAccess authenticated" in log


def test_configtest_checks_status_access(apache_factory):
    for value, ok in (("local", True), ("AUTHENTICATED", True), ("any", True),
                      ("loopback", False), ("", False)):
        inst = apache_factory(extra_conf="<Location /s>\n    SetHandler wsock-status\n"
                              "    WSockStatusAccess %s\n</Location>\n" % value, start=False)
        rc, out = inst.configtest()
        assert (rc == 0) == ok, "WSockStatusAccess %s: rc %d\n%s" % (value, rc, out)
        if not ok:
            assert "WSockStatusAccess" in out, out
