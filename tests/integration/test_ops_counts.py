"""The server's counters as operations read them: mod_status's
server-status (?auto lines and the HTML section) and SetHandler
wsock-metrics (Prometheus text, checked by `promtool check metrics`).

On event with two children and on prefork, known numbers of WebSockets
are opened and closed with known close codes (1000, 1001 and a dropped TCP
connection, 1006, from clients; 1008 from WSockRateLimit, 1009 from
WSockMaxMessageSize; 1001 from the server at a graceful restart), known handshakes are refused (origin 403, token 401,
per-IP cap 429, bad request 400, Apache's basic auth 401), known messages
and bytes go both ways, and the exact counts come back from both outputs,
which must agree.  Each test reads the counts before and after and checks
the difference, so the tests share one server per MPM.  Gauges come back
to 0 when connections close; totals survive a graceful restart; the gauges
of a child killed with SIGKILL are zeroed once the parent reaps it.  A
location named with <script> is escaped in the HTML page and in the
Prometheus label.
"""

import asyncio
import base64
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import websockets

import hostile
import rawws
from conftest import PREFORK_MANY, new_instance, run, serve, session_dir
from test_chat import TWO_EVENT_CHILDREN

MODS = "/usr/lib/apache2/modules"
PROMTOOL = "/usr/bin/promtool"
XSS_LOC = '/x<script>alert(1)</script>"q'
SECRET = "the HS256 secret of the ops counting test, 48 bytes"

CONF = """\
LoadModule status_module {mods}/mod_status.so
LoadModule auth_basic_module {mods}/mod_auth_basic.so
LoadModule authn_file_module {mods}/mod_authn_file.so
LoadModule authz_user_module {mods}/mod_authz_user.so
WSockPlugin roomcmd {tp_roomcmd}
<Location /server-status>
    SetHandler server-status
</Location>
<Location /metrics>
    SetHandler wsock-metrics
</Location>
<Location /c/cmd>
    WSockHandler roomcmd
</Location>
<Location /c/echo>
    WSockHandler echo
    WSockMaxMessageSize 1000
</Location>
<Location /c/rate>
    WSockHandler echo
    WSockRateLimit messages=2,burst=2
</Location>
<Location /c/origin>
    WSockHandler echo
    WSockAllowedOrigins https://app.example.com
</Location>
<Location /c/token>
    WSockHandler echo
    WSockTokenAuth "{secret}"
</Location>
<Location /c/cap>
    WSockHandler echo
    WSockMaxConnectionsPerIP 1
</Location>
<Location /c/auth>
    WSockHandler echo
    AuthType Basic
    AuthName "ops"
    AuthBasicProvider file
    AuthUserFile "{htpasswd}"
    Require valid-user
</Location>
<Location "{xss}">
    WSockHandler echo
</Location>
<Location /c/chat>
    WSockHandler chat
</Location>
<Location /pub>
    SetHandler wsock-publish
</Location>
"""

SERVERS = {
    "event-2-children": ("event", TWO_EVENT_CHILDREN),
    "prefork": ("prefork", PREFORK_MANY),
}


@pytest.fixture(scope="module")
def plugins():
    return hostile.build_plugins(["tp_roomcmd"], session_dir())


@pytest.fixture(scope="module", params=list(SERVERS))
def srv(request, plugins):
    if not os.path.exists(PROMTOOL):
        pytest.fail("%s not found: scripts/install-deps.sh installs it (Debian's prometheus)"
                    % PROMTOOL, pytrace=False)
    mpm, sizing = SERVERS[request.param]
    conf_dir = os.path.join(session_dir(), "ops-" + request.param)
    os.makedirs(conf_dir, exist_ok=True)
    os.chmod(conf_dir, 0o755)
    htpasswd = os.path.join(conf_dir, "htpasswd")
    subprocess.run(["htpasswd", "-c", "-b", htpasswd, "alice", "alice pw"], check=True,
                   capture_output=True, timeout=30)
    os.chmod(htpasswd, 0o644)
    secret = os.path.join(conf_dir, "token-secret")
    with open(secret, "w") as f:
        f.write(SECRET)
    os.chmod(secret, 0o600)
    conf = CONF.format(mods=MODS, secret=secret, htpasswd=htpasswd,
                       xss=XSS_LOC.replace('"', '\\"'), **plugins)
    inst = new_instance(mpm, conf, mpm_conf=sizing)
    inst.killed = []
    real_crash_lines = inst.crash_lines
    # The child killed on purpose is not a crash.
    inst.crash_lines = lambda since=0: [
        ln for ln in real_crash_lines(since)
        if not any("child pid %d exit signal Killed" % p in ln for p in inst.killed)]
    yield from serve(inst)


# ------------------------------------------------------------ reading counts
def http_get(inst, path, method="GET"):
    req = urllib.request.Request(inst.url(path, scheme="http"), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


REASONS = ["bad_request", "origin", "auth", "token", "ip_cap", "protocol", "handler", "other"]
CAMEL = {"".join(w.capitalize() for w in r.split("_")): r for r in REASONS}
# ?auto key -> Prometheus name, for the figures that are one number each
PLAIN = {
    "MessagesIn": "wsock_received_messages_total",
    "BytesIn": "wsock_received_bytes_total",
    "MessagesOut": "wsock_sent_messages_total",
    "BytesOut": "wsock_sent_bytes_total",
    "RateLimitCloses": "wsock_rate_limit_closes_total",
    "QueueDrops": "wsock_send_queue_drops_total",
    "SlowCloses": "wsock_slow_consumer_closes_total",
    "Rooms": "wsock_rooms",
    "RoomMembers": "wsock_room_members",
    "BusRoomSlotsUsed": "wsock_bus_room_slots_used",
    "BusRoomSlots": "wsock_bus_room_slots",
    "Children": "wsock_child_processes",
    "Published": "wsock_publish_requests_total",
    "PublishRefused": "wsock_publish_refused_total",
}
AUTO_LINE = re.compile(r"^WSock(\w+?)(?: (\S+) (\S+))?: (-?\d+)$")
PROM_LINE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')
PROM_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def read_auto(inst):
    status, _, body = http_get(inst, "/server-status?auto")
    assert status == 200, body
    out = {}
    for ln in body.splitlines():
        if not ln.startswith("WSock"):
            continue
        m = AUTO_LINE.match(ln)
        assert m, "not a WSock key: value line: %r" % ln
        key, loc, handler, v = m.groups()
        v = int(v)
        if loc is not None:
            loc = urllib.parse.unquote(loc)
            if key in ("Open", "Opened"):
                out[(key.lower(), loc, handler)] = v
            elif key.startswith("Closed") and key != "Closed":
                out[("closed", loc, handler, key[6:].lower())] = v
            elif key.startswith("Refused"):
                out[("refused_at", loc, handler, CAMEL[key[7:]])] = v
        elif key.startswith("Refused") and key != "Refused":
            m2 = re.match(r"^([A-Za-z]+)(\d+|Other)$", key[7:])
            if m2:
                out[("refused", CAMEL[m2.group(1)], m2.group(2).lower())] = v
        if loc is None and key in PLAIN:
            out[key] = v
        if loc is None:
            out[("auto", key)] = v
    return out


def unescape_label(v):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def read_prom(inst):
    status, headers, body = http_get(inst, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        "promtool check metrics: %r %r\n%s" % (p.stdout, p.stderr, body)
    reverse = {v: k for k, v in PLAIN.items()}
    out, raw = {}, {}
    for ln in body.splitlines():
        if ln.startswith("#"):
            continue
        m = PROM_LINE.match(ln)
        assert m, "not a sample: %r" % ln
        name, labels, v = m.groups()
        lab = {k: unescape_label(x) for k, x in PROM_LABEL.findall(labels or "")}
        raw[(name, tuple(sorted(lab.items())))] = v
        if "." in v or "e" in v or "Inf" in v:
            continue
        v = int(v)
        if name == "wsock_connections_open":
            out[("open", lab["location"], lab["handler"])] = v
        elif name == "wsock_connections_opened_total":
            out[("opened", lab["location"], lab["handler"])] = v
        elif name == "wsock_connections_closed_total":
            out[("closed", lab["location"], lab["handler"], lab["code"])] = v
        elif name == "wsock_handshakes_refused_total":
            out[("refused", lab["reason"], lab["status"])] = v
        elif name == "wsock_handshakes_refused_by_location_total":
            out[("refused_at", lab["location"], lab["handler"], lab["reason"])] = v
        elif name in reverse:
            out[reverse[name]] = v
    return out, raw, body


def _common(auto):
    return {k: v for k, v in auto.items() if not (isinstance(k, tuple) and k[0] == "auto")}


def _disagree(a, b):
    return {k: (a.get(k, 0), b.get(k, 0)) for k in set(a) | set(b) if a.get(k, 0) != b.get(k, 0)}


def snapshot(inst, tries=50):
    """The counts, read from ?auto and from the Prometheus text; the two
    must agree on everything both show (absent = 0).  ?auto is read before
    and after the metrics: a count that moved meanwhile (a close, a child
    reaped) reads again, boundedly.  A gauge can also move and come back
    between the two ?auto reads (prefork spawning and reaping children
    through a graceful restart: 15, 13, 15), so a read where the metrics
    disagree is tried again too; a real disagreement stays one, and fails
    after the last try."""
    for _ in range(tries):
        auto = read_auto(inst)
        prom, _, _ = read_prom(inst)
        again = read_auto(inst)
        diff = _disagree(_common(auto), prom)
        if not diff and not _disagree(_common(auto), _common(again)):
            break
    assert not diff, "server-status?auto and wsock-metrics disagree: %r" % diff
    return auto


def delta(after, before):
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys
            if after.get(k, 0) != before.get(k, 0)}


async def wait_counts(inst, want, before, timeout=15.0):
    """Reads until the difference from `before` is `want` on want's keys
    (bounded: the server counts a close when it has seen it, which the
    client cannot know); returns the last snapshot and its whole
    difference.  Waits without blocking the clients' event loop."""
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot(inst)
        d = delta(now, before)
        got = {k: d.get(k, 0) for k in want}
        if got == want or time.monotonic() > deadline:
            assert got == want, "counts: got %r, want %r (whole difference %r)" % (got, want, d)
            return now, d
        await asyncio.sleep(0.05)


# ------------------------------------------------------------ clients
def ws_url(inst, path):
    return "ws://127.0.0.1:%d%s" % (inst.port, path)


async def roomcmd_conns(inst, room, want_pids=2, cap=100, timeout=20.0):
    """roomcmd connections in `room`, opened until they are served by
    want_pids child processes (bounded); returns [(ws, pid, reply bytes)].
    Which child accepts is the kernel's choice among the listeners awake:
    a child still starting (ASan, a loaded machine) takes none, so after a
    few connections to one child the next ones are paced."""
    conns, pids = [], set()
    deadline = time.monotonic() + timeout
    while len(pids) < want_pids or len(conns) < 2:
        assert len(conns) < cap and time.monotonic() < deadline, \
            "connections did not spread over %d children (%d to %r)" % (
                want_pids, len(conns), sorted(pids))
        if len(conns) >= 4:
            await asyncio.sleep(0.1)
        ws = await websockets.connect(ws_url(inst, "/c/cmd?room=" + room), max_size=None)
        await ws.send("pid")
        reply = await asyncio.wait_for(ws.recv(), 10)
        assert reply.startswith("pid ")
        pid = int(reply.split()[1])
        pids.add(pid)
        conns.append((ws, pid, len(reply)))
    return conns


def expect_traffic(msgs_in, bytes_in, msgs_out, bytes_out):
    return {"MessagesIn": msgs_in, "BytesIn": bytes_in, "MessagesOut": msgs_out,
            "BytesOut": bytes_out}


# ------------------------------------------------------------ the tests
def test_opens_closes_messages_and_gauges(srv):
    before = snapshot(srv)
    cmd, echo = ("/c/cmd", "roomcmd"), ("/c/echo", "echo")

    async def scenario():
        conns = await roomcmd_conns(srv, "ops-lobby")
        pids = {pid for _, pid, _ in conns}
        echoes = [await websockets.connect(ws_url(srv, "/c/echo")) for _ in range(4)]
        payload = "0123456789abcdef"                       # 16 bytes
        for ws in echoes:
            for _ in range(5):
                await ws.send(payload)
                assert await asyncio.wait_for(ws.recv(), 10) == payload
        n = len(conns)
        replies = sum(r for _, _, r in conns)
        want = dict(expect_traffic(n + 20, 3 * n + 320, n + 20, replies + 320))
        want.update({("open",) + cmd: n, ("opened",) + cmd: n,
                     ("open",) + echo: 4, ("opened",) + echo: 4,
                     "Rooms": len(pids), "RoomMembers": n, "BusRoomSlotsUsed": len(pids)})
        now, _ = await wait_counts(srv, want, before)
        # the HTML page shows the same: the row of /c/cmd
        _, _, page = http_get(srv, "/server-status")
        row = re.search(r'<tr><td>/c/cmd</td><td>roomcmd</td><td align="right">(\d+)</td>'
                        r'<td align="right">(\d+)</td>', page)
        assert row and (int(row.group(1)), int(row.group(2))) == \
            (now[("open",) + cmd], now[("opened",) + cmd]), page
        for ws, _, _ in conns:
            await ws.close()                               # 1000
        await echoes[0].close()
        await echoes[1].close()
        await echoes[2].close(code=1001, reason="going away")
        echoes[3].transport.abort()                        # no close frame: 1006
        want.update({("open",) + cmd: 0, ("open",) + echo: 0,
                     ("closed",) + cmd + ("1000",): n,
                     ("closed",) + echo + ("1000",): 2, ("closed",) + echo + ("1001",): 1,
                     ("closed",) + echo + ("1006",): 1,
                     "Rooms": 0, "RoomMembers": 0, "BusRoomSlotsUsed": 0})
        _, d = await wait_counts(srv, want, before)
        # nothing else moved: no refusal, no other close code
        assert not [k for k in d if k not in want
                    and k[0] in ("closed", "refused", "refused_at")], d

    run(scenario())


def test_policy_closes_1008_and_1009(srv):
    before = snapshot(srv)
    echo, rate = ("/c/echo", "echo"), ("/c/rate", "echo")

    async def scenario():
        big = await websockets.connect(ws_url(srv, "/c/echo"), max_size=None)
        await big.send("x" * 1001)                         # WSockMaxMessageSize 1000
        with pytest.raises(websockets.ConnectionClosed) as e:
            await asyncio.wait_for(big.recv(), 10)
        assert e.value.rcvd.code == 1009
        fast = await websockets.connect(ws_url(srv, "/c/rate"))
        for _ in range(3):                                 # burst 2: the third breaks it
            try:
                await fast.send("m")
            except websockets.ConnectionClosed:
                break
        with pytest.raises(websockets.ConnectionClosed) as e:
            for _ in range(3):
                await asyncio.wait_for(fast.recv(), 10)
        assert e.value.rcvd.code == 1008
        await wait_counts(srv, {("opened",) + echo: 1, ("closed",) + echo + ("1009",): 1,
                          ("opened",) + rate: 1, ("closed",) + rate + ("1008",): 1,
                          ("open",) + echo: 0, ("open",) + rate: 0,
                          "RateLimitCloses": 1}, before)

    run(scenario())


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def handshake_status(inst, path, **kw):
    return rawws.http_exchange(inst.port, rawws.handshake_request(path, **kw)).status


def test_refusals_by_reason_and_status(srv):
    before = snapshot(srv)

    async def scenario():
        assert handshake_status(srv, "/c/origin",
                                extra_headers=[("Origin", "https://evil.example")]) == 403
        assert handshake_status(srv, "/c/token") == 401
        assert handshake_status(srv, "/c/echo", key="not a key") == 400
        assert handshake_status(srv, "/c/auth") == 401
        assert handshake_status(srv, "/c/auth",
                                extra_headers=[("Authorization", basic("alice", "bad"))]) == 401
        held = await websockets.connect(ws_url(srv, "/c/cap"))
        assert handshake_status(srv, "/c/cap") == 429
        # Apache's auth passed: the upgrade goes on, nothing refused
        ok = await websockets.connect(ws_url(srv, "/c/auth"),
                                      extra_headers={"Authorization": basic("alice", "alice pw")})
        await ok.close()
        await held.close()
        _, d = await wait_counts(srv, {("refused", "origin", "403"): 1,
                                 ("refused", "token", "401"): 1,
                                 ("refused", "bad_request", "400"): 1,
                                 ("refused", "auth", "401"): 2,
                                 ("refused", "ip_cap", "429"): 1,
                                 ("refused_at", "/c/origin", "echo", "origin"): 1,
                                 ("refused_at", "/c/token", "echo", "token"): 1,
                                 ("refused_at", "/c/echo", "echo", "bad_request"): 1,
                                 ("refused_at", "/c/auth", "echo", "auth"): 2,
                                 ("refused_at", "/c/cap", "echo", "ip_cap"): 1,
                                 ("auto", "Refused"): 6,
                                 ("opened", "/c/cap", "echo"): 1,
                                 ("opened", "/c/auth", "echo"): 1,
                                 ("open", "/c/cap", "echo"): 0}, before)
        assert not [k for k in d if k[0] in ("refused", "refused_at") and d[k]
                    and (k[0], ) + k[1:] not in (
            ("refused", "origin", "403"), ("refused", "token", "401"),
            ("refused", "bad_request", "400"), ("refused", "auth", "401"),
            ("refused", "ip_cap", "429"), ("refused_at", "/c/origin", "echo", "origin"),
            ("refused_at", "/c/token", "echo", "token"),
            ("refused_at", "/c/echo", "echo", "bad_request"),
            ("refused_at", "/c/auth", "echo", "auth"),
            ("refused_at", "/c/cap", "echo", "ip_cap"))], d

    run(scenario())


def test_status_page_escapes_names_and_metrics_labels(srv):
    status, _, page = http_get(srv, "/server-status")
    assert status == 200 and "<h2><a name=\"wsock\">mod_wsock</a></h2>" in page
    assert "/x&lt;script&gt;alert(1)&lt;/script&gt;&quot;q" in page
    assert "<script>" not in page
    status, _, page = http_get(srv, "/server-status?notable")
    assert status == 200 and "&lt;script&gt;" in page and "<script>" not in page
    _, raw, body = read_prom(srv)
    assert 'location="/x<script>alert(1)</script>\\"q"' in body
    assert raw[("wsock_connections_opened_total",
                (("handler", "echo"), ("location", XSS_LOC)))] is not None
    # the lateness histogram: cumulative buckets in seconds, +Inf = _count
    buckets = [(k[1][0][1], int(v)) for k, v in raw.items()
               if k[0] == "wsock_loop_turn_lateness_seconds_bucket"]
    assert buckets[0][0] == "0.00005" and buckets[-1][0] == "+Inf"
    assert [n for _, n in buckets] == sorted(n for _, n in buckets)
    assert str(buckets[-1][1]) == raw[("wsock_loop_turn_lateness_seconds_count", ())]


def test_publish_requests_counted(srv):
    before = snapshot(srv)
    for path, want in (("/pub?location=/c/chat", 200), ("/pub?location=/c/chat", 200),
                       ("/pub?location=/c/chat", 200), ("/pub?location=/nowhere", 404)):
        req = urllib.request.Request(srv.url(path, scheme="http"), data=b"hi", method="POST",
                                     headers={"Content-Type": "text/plain"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status == want, path
    d = delta(snapshot(srv), before)
    assert d.get("Published") == 3 and d.get("PublishRefused") == 1, d


def test_metrics_methods(srv):
    status, headers, body = http_get(srv, "/metrics", method="HEAD")
    assert status == 200 and body == ""
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    status, headers, _ = http_get(srv, "/metrics", method="POST")
    assert status == 405 and "GET" in headers.get("Allow", "").split(",")


def test_totals_survive_graceful_restart_killed_child_gauges_zeroed(srv):
    before = snapshot(srv)
    cmd = ("/c/cmd", "roomcmd")

    async def scenario():
        conns = await roomcmd_conns(srv, "ops-kill")
        n = len(conns)
        await wait_counts(srv, {("open",) + cmd: n, "RoomMembers": n}, before)
        victim = conns[0][1]
        lost = sum(1 for _, pid, _ in conns if pid == victim)
        srv.killed.append(victim)
        os.kill(victim, signal.SIGKILL)
        # the parent reaps it: its slot's gauges go (open, rooms, members)
        await wait_counts(srv, {("open",) + cmd: n - lost, "RoomMembers": n - lost}, before)
        for ws, pid, _ in conns:
            if pid == victim:
                ws.transport.abort()
            else:
                await ws.close()
        mid, d = await wait_counts(srv, {("open",) + cmd: 0, "RoomMembers": 0, "Rooms": 0,
                                   ("opened",) + cmd: n,
                                   ("closed",) + cmd + ("1000",): n - lost}, before)
        # the killed child's connections were never counted closed
        assert d.get(("closed",) + cmd + ("1006",), 0) == 0
        return mid

    mid = run(scenario())
    echo = ("/c/echo", "echo")

    async def restart():
        # A WebSocket open across the graceful restart: its old child asks
        # it to close with 1001 ("going away") and counts that close.
        ws = await websockets.connect(ws_url(srv, "/c/echo"))
        await ws.send("before")
        assert await asyncio.wait_for(ws.recv(), 10) == "before"
        start = srv.log_offset()
        srv.graceful()
        await asyncio.wait_for(ws.wait_closed(), 20)
        assert ws.close_code == 1001
        # "resuming normal operations" again: the new generation runs
        assert srv.wait_log(r"resuming normal operations", timeout=20, since=start)
        return (await wait_counts(srv, {("open",) + echo: 0, ("opened",) + echo: 1,
                                        ("closed",) + echo + ("1001",): 1,
                                        "MessagesIn": 1, "MessagesOut": 1}, mid))

    after, d = run(restart())
    # every total of before the restart is still there, unchanged but for
    # that one WebSocket
    assert not [k for k in d if k not in (("opened",) + echo, ("closed",) + echo + ("1001",),
                                          "MessagesIn", "MessagesOut", "BytesIn", "BytesOut")
                and (k[0] in ("opened", "closed", "refused", "refused_at")
                     or k in ("RateLimitCloses",))], d
    assert d.get("BytesIn", 0) == d.get("BytesOut", 0) == len("before")
    assert after[("auto", "Since")] == mid[("auto", "Since")]
