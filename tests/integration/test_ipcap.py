"""WSockMaxConnectionsPerIP: a client address holds at most N WebSockets at
once across every child process of the server; one more gets 429 before
the upgrade.  Closing a connection gives its place back; so does a
refusal by the handler after admission, and the death of a child that
held connections (the parent gives back what a killed child held).

When the shared table of counted connections is full (WSockIPTableSize,
small here so that a test can fill it), a new WebSocket is refused with
503 and Retry-After rather than let in uncounted: otherwise whoever fills
the table lifts every client's limit.  The refusals are logged at most
once a minute, with how many there were.

Prefork with 8 children: three open WebSockets are necessarily held by
three processes (one connection each), so the count really crosses
processes.  A second client address is 127.0.0.2 (still loopback).  IPv6
clients, counted per /64 network, come through mod_remoteip from
127.0.0.1 (X-Forwarded-For).
"""

import asyncio
import os
import re
import signal
import socket
import time

import pytest
import websockets

import rawws
from conftest import crash_check, new_instance, run, serve, session_dir
from test_plugins import PLUGIN_SRC, REPO, apxs_build

CAP_CONF = """\
WSockPlugin facts {facts}
<Location /cap>
    WSockHandler echo
    WSockMaxConnectionsPerIP 3
    WSockPingInterval 0
    WSockIdleTimeout 0
</Location>
# nested: a lower limit over the same count
<Location /cap/one>
    WSockMaxConnectionsPerIP 1
</Location>
<Location /cap/off>
    WSockMaxConnectionsPerIP 0
</Location>
<Location /cap-facts>
    WSockHandler facts
    WSockMaxConnectionsPerIP 1
</Location>
"""


REMOTEIP_CONF = """\
LoadModule remoteip_module /usr/lib/apache2/modules/mod_remoteip.so
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1
<Location /cap>
    WSockHandler echo
    WSockMaxConnectionsPerIP 2
</Location>
"""


# Room for 4 counted WebSockets: two clients at their limit fill it.
FULL_CONF = """\
WSockIPTableSize 4
<Location /cap>
    WSockHandler echo
    WSockMaxConnectionsPerIP 2
    WSockPingInterval 0
    WSockIdleTimeout 0
</Location>
<Location /uncounted>
    WSockHandler echo
</Location>
"""


@pytest.fixture(scope="module")
def facts_so():
    return apxs_build(os.path.join(PLUGIN_SRC, "tp_facts.c"),
                      os.path.join(session_dir(), "ipcap-plugins"), os.path.join(REPO, "include"))


@pytest.fixture(scope="module", params=["prefork", "event"])
def cserver(request, facts_so):
    inst = new_instance(request.param, CAP_CONF.format(facts=facts_so),
                        loglevel="info wsock:debug")
    yield from serve(inst)


# ------------------------------------------------------------------ helpers
async def open_ws(inst, path="/cap", source="127.0.0.1"):
    ws = await websockets.connect(inst.url(path), open_timeout=10, ping_interval=None,
                                  close_timeout=5, local_addr=(source, 0))
    await ws.send("hi")
    assert await asyncio.wait_for(ws.recv(), 10) == "hi"
    return ws


async def refused_status(inst, path="/cap", source="127.0.0.1"):
    with pytest.raises(websockets.InvalidStatusCode) as ei:
        ws = await open_ws(inst, path, source)
        await ws.close()
    return ei.value.status_code


async def open_eventually(inst, path="/cap", source="127.0.0.1", timeout=15.0):
    """A place given back is free once the server has finished with the
    closed connection (its lingering close): retry, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await open_ws(inst, path, source)
        except websockets.InvalidStatusCode as e:
            if e.status_code != 429 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def open_pids(inst, since):
    """pid of every WebSocket opened since the offset (from WSOCK0303)."""
    return [int(p) for p in re.findall(r"\[pid (\d+)(?::tid \d+)?\][^\n]*WSOCK0303: WebSocket "
                                       r"/cap open", inst.error_log(since))]


# ------------------------------------------------------------------ the tests
def test_cap_across_children_and_release(cserver):
    async def go():
        since = cserver.log_offset()
        held = [await open_ws(cserver) for _ in range(3)]
        if cserver.mpm == "prefork":
            # one connection per prefork process: three processes count together
            assert len(set(open_pids(cserver, since))) == 3, cserver.error_log(since)
        assert await refused_status(cserver) == 429
        m = cserver.wait_log(r"WSOCK0720: WebSocket handshake for /cap refused with 429: "
                             r"client 127\.0\.0\.1 has 3 WebSockets open, "
                             r"WSockMaxConnectionsPerIP here is 3", since=since)
        assert m, cserver.error_log(since)[-2000:]
        # the ones held still work
        for ws in held:
            await ws.send("still")
            assert await asyncio.wait_for(ws.recv(), 10) == "still"
        # another address has its own count
        other = [await open_ws(cserver, source="127.0.0.2") for _ in range(3)]
        assert await refused_status(cserver, source="127.0.0.2") == 429
        # closing one gives its place back
        await held.pop().close()
        held.append(await open_eventually(cserver))
        assert await refused_status(cserver) == 429
        for ws in held + other:
            await ws.close()
        # all given back
        again = [await open_eventually(cserver) for _ in range(3)]
        for ws in again:
            await ws.close()
    run(go(), timeout=120)


# Each test below comes from its own loopback address: places given back
# by the test before may still be held for a moment (lingering close).
def test_nested_limits_share_the_count(cserver):
    src = "127.0.0.4"

    async def go():
        a = await open_ws(cserver, "/cap/one", src)
        assert await refused_status(cserver, "/cap/one", src) == 429
        # /cap allows 3: one held at /cap/one counts there too
        b = await open_ws(cserver, "/cap", src)
        c = await open_ws(cserver, "/cap", src)
        since = cserver.log_offset()
        assert await refused_status(cserver, "/cap", src) == 429
        assert await refused_status(cserver, "/cap/one", src) == 429
        assert cserver.wait_log(r"WSOCK0720: WebSocket handshake for /cap/one refused with 429: "
                                r"client 127\.0\.0\.4 has 3 WebSockets open, "
                                r"WSockMaxConnectionsPerIP here is 1", since=since)
        # no limit: not refused, and not counted
        free = [await open_ws(cserver, "/cap/off", src) for _ in range(4)]
        for ws in [a, b, c] + free:
            await ws.close()
    run(go(), timeout=120)


def test_refusal_after_admission_gives_the_place_back(cserver):
    """The handler refuses (403) after the count was taken: the place is free
    again at once, before the refused connection's memory goes."""
    host = "127.0.0.1:%d" % cserver.port
    src = "127.0.0.3"
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", cserver.port), timeout=10,
                                      source_address=(src, 0)) as s:
            s.sendall(rawws.handshake_request("/cap-facts?refuse=403", host=host))
            resp, rest = rawws.read_http_response(s)
            assert resp.status == 403 and rest == b"", resp

        async def go():
            ws = await open_ws_facts(cserver, src)
            assert await refused_status_facts(cserver, src) == 429
            await ws.close()
        run(go())


async def open_ws_facts(inst, source):
    ws = await websockets.connect(inst.url("/cap-facts"), open_timeout=10, ping_interval=None,
                                  local_addr=(source, 0))
    await asyncio.wait_for(ws.recv(), 10)      # the facts
    return ws


async def refused_status_facts(inst, source):
    with pytest.raises(websockets.InvalidStatusCode) as ei:
        await websockets.connect(inst.url("/cap-facts"), open_timeout=10,
                                 local_addr=(source, 0))
    return ei.value.status_code


def test_killed_child_gives_its_places_back(cserver):
    """A child killed with its WebSockets open never closes them; the parent
    finds the dead pid and frees its places."""
    src = "127.0.0.5"

    async def go():
        since = cserver.log_offset()
        held = [await open_ws(cserver, "/cap", src) for _ in range(3)]
        assert await refused_status(cserver, "/cap", src) == 429
        pids = open_pids(cserver, since)
        assert len(pids) == 3, cserver.error_log(since)
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        m = cserver.wait_log(r"WSOCK0723: gave back (\d+) per-IP WebSocket counts", timeout=15,
                             since=since)
        assert m, cserver.error_log(since)[-2000:]
        # its connections, and any the victim was still lingering on
        assert int(m.group(1)) >= pids.count(victim)
        ws = await open_ws(cserver, "/cap", src)
        await ws.close()
        for w in held:
            await w.close()
    run(go(), timeout=120)


# ------------------------------------------------------------------ a full table
def raw_handshake(inst, source, path="/cap", headers=()):
    """The server's answer to a handshake from source; (response, socket):
    the socket stays open (a WebSocket after a 101)."""
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=10,
                                 source_address=(source, 0))
    s.sendall(rawws.handshake_request(path, host="127.0.0.1:%d" % inst.port,
                                      extra_headers=list(headers)))
    resp, _ = rawws.read_http_response(s)
    return resp, s


def finish(sock, websocket=False):
    """Ends a raw connection in order and waits (bounded) until the server
    has closed its side too, so that nothing of it is in flight when the
    test's server stops: a WebSocket with a close frame, a refused request
    by closing for writing."""
    try:
        if websocket:
            sock.sendall(rawws.build_frame(0x8, rawws.close_payload(1000)))
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        while sock.recv(4096):
            pass
    except OSError:
        pass
    finally:
        sock.close()


def raw_open_eventually(inst, source, path="/cap", timeout=15.0):
    """The socket of a WebSocket from source, retried (bounded) while the
    server refuses: a place given back is free once the server has finished
    with the closed connection."""
    deadline = time.monotonic() + timeout
    while True:
        resp, s = raw_handshake(inst, source, path)
        if resp.status == 101:
            return s
        finish(s)
        assert time.monotonic() < deadline, resp
        time.sleep(0.2)


def test_full_table_refuses_with_503(apache_factory):
    """Two clients at their limit fill a table of 4: a third client gets 503
    with Retry-After (not an uncounted WebSocket), logged once however many
    are refused; a place given back lets the next one in; locations without
    a limit are not counted, so not refused."""
    inst = apache_factory("event", FULL_CONF)
    assert inst.wait_log(r"WSOCK0726: per-IP connection table: room for 4 WebSockets, "
                         r"\d+ bytes of shared memory"), inst.error_log()[-2000:]
    held = []
    try:
        for src in ("127.0.0.11", "127.0.0.11", "127.0.0.12", "127.0.0.12"):
            resp, s = raw_handshake(inst, src)
            held.append(s)
            assert resp.status == 101, resp
        since = inst.log_offset()
        for src in ("127.0.0.13", "127.0.0.14", "127.0.0.13"):
            resp, s = raw_handshake(inst, src)
            finish(s)
            assert resp.status == 503, resp
            assert resp.header("Retry-After") == "30", resp
            assert resp.header("Upgrade") is None
        # the clients at their limit still get 429 first
        resp, s = raw_handshake(inst, "127.0.0.11")
        finish(s)
        assert resp.status == 429, resp
        assert inst.wait_log(r"WSOCK0721: the per-IP connection table is full \(4 WebSockets "
                             r"counted, WSockIPTableSize\); refused 1 WebSocket with 503",
                             since=since), inst.error_log(since)[-2000:]
        assert inst.error_log(since).count("WSOCK0721") == 1, inst.error_log(since)
        # not counted here: no table needed
        with rawws.RawWS.connect(inst.port, "/uncounted") as ws:
            ws.send_text("free")
            assert ws.recv_message(timeout=5)[1] == b"free"
        # one closes: its place is free once the server has done with it
        finish(held.pop(0), websocket=True)
        held.append(raw_open_eventually(inst, "127.0.0.13"))
        resp, s = raw_handshake(inst, "127.0.0.14")
        finish(s)
        assert resp.status == 503, resp
    finally:
        for s in held:
            finish(s, websocket=True)
    crash_check(inst)


def test_table_size_changes_at_a_restart_with_nothing_counted(apache_factory):
    """The table lives across restarts (connections of old children keep
    counting in it); a new size takes effect when nothing is counted."""
    inst = apache_factory("event", FULL_CONF)
    since = inst.log_offset()
    inst.extra_conf = FULL_CONF.replace("WSockIPTableSize 4", "WSockIPTableSize 6")
    inst.write_conf()
    inst.graceful()
    assert inst.wait_log(r"WSOCK0726: per-IP connection table: room for 6 WebSockets",
                         since=since, timeout=20), inst.error_log(since)[-2000:]
    held = []
    try:
        # (the old generation's children may still answer for a moment)
        for src in ("127.0.0.21", "127.0.0.21", "127.0.0.22", "127.0.0.22", "127.0.0.23"):
            held.append(raw_open_eventually(inst, src))
        # a restart while some are counted keeps the table, and says so
        since = inst.log_offset()
        inst.extra_conf = FULL_CONF.replace("WSockIPTableSize 4", "WSockIPTableSize 16")
        inst.write_conf()
        inst.graceful()
        assert inst.wait_log(r"WSOCK0727: WSockIPTableSize 16 takes effect at a restart "
                             r"with no WebSocket counted; the table keeps room for 6",
                             since=since, timeout=20), inst.error_log(since)[-2000:]
    finally:
        for s in held:
            finish(s, websocket=True)


@pytest.mark.parametrize("value", ["0", "-4", "lots", "4194305", "1.5", "16K"])
def test_configtest_rejects_table_size(value):
    inst = new_instance("event", "WSockIPTableSize %s\n" % value)
    rc, out = inst.configtest()
    assert rc != 0 and "WSockIPTableSize: '%s' is not a number" % value in out, out


@pytest.mark.parametrize("conf", [
    "<VirtualHost *:*>\n    WSockIPTableSize 64\n</VirtualHost>\n",
    "<Location /x>\n    WSockIPTableSize 64\n</Location>\n",
])
def test_configtest_table_size_is_server_wide(conf):
    inst = new_instance("event", conf)
    rc, out = inst.configtest()
    assert rc != 0 and "WSockIPTableSize" in out, out
    assert "not allowed" in out or "cannot occur within" in out, out


# ------------------------------------------------------------------ configtest
@pytest.mark.parametrize("value", ["-1", "lots", "1000001", "2.5"])
def test_configtest_rejects(value):
    inst = new_instance("event", "<Location /x>\n    WSockHandler echo\n"
                                 "    WSockMaxConnectionsPerIP %s\n</Location>\n" % value)
    rc, out = inst.configtest()
    assert rc != 0 and "WSockMaxConnectionsPerIP: '%s' is not a number" % value in out, out


def test_ipv6_clients_count_per_64(apache_factory):
    """An IPv6 client owns a /64: its addresses share one count, so it
    cannot open the limit again from each of them; another /64 and an IPv4
    client have their own counts.  Addresses come from mod_remoteip."""
    inst = apache_factory("event", REMOTEIP_CONF)

    def connect(addr):
        return rawws.RawWS.connect(inst.port, "/cap", extra_headers=[("X-Forwarded-For", addr)])

    def status(addr):
        req = rawws.handshake_request("/cap", host="127.0.0.1:%d" % inst.port,
                                      extra_headers=[("X-Forwarded-For", addr)])
        return rawws.http_exchange(inst.port, req).status

    since = inst.log_offset()
    held = [connect("2001:db8:1:2::1"), connect("2001:db8:1:2:abcd::7")]
    try:
        assert status("2001:db8:1:2:ffff:ffff:ffff:ffff") == 429
        assert inst.wait_log(r"WSOCK0720: WebSocket handshake for /cap refused with 429: "
                             r"client 2001:db8:1:2:ffff:ffff:ffff:ffff has 2 WebSockets open",
                             since=since)
        held.append(connect("2001:db8:1:3::1"))          # the next /64
        held.append(connect("192.0.2.7"))
        held.append(connect("192.0.2.8"))                 # IPv4: per address
        for c in held:
            c.send_text("ok")
            assert c.recv_message(timeout=5)[1] == b"ok"
    finally:
        for c in held:
            c.close_socket()


def test_remoteip_believes_listed_proxies_only(apache_factory):
    """With RemoteIPInternalProxy (docs/security.md), a client that reaches
    Apache directly cannot dodge its count by naming another address in
    X-Forwarded-For; through the listed proxy, the address the proxy
    appended counts, not what the client wrote before it."""
    inst = apache_factory("event", REMOTEIP_CONF)
    held = []

    def status(source, xff):
        resp, s = raw_handshake(inst, source, headers=[("X-Forwarded-For", xff)])
        if resp.status == 101:
            held.append(s)
        else:
            finish(s)
        return resp.status

    try:
        since = inst.log_offset()
        # direct, not a listed proxy: a new address each time, counted as itself
        assert status("127.0.0.2", "198.51.100.1") == 101
        assert status("127.0.0.2", "198.51.100.2") == 101
        assert status("127.0.0.2", "198.51.100.3") == 429
        assert inst.wait_log(r"WSOCK0720: WebSocket handshake for /cap refused with 429: "
                             r"client 127\.0\.0\.2 has 2 WebSockets open", since=since)
        # through the proxy: the hop it appended (192.0.2.50) is the client
        assert status("127.0.0.1", "203.0.113.1, 192.0.2.50") == 101
        assert status("127.0.0.1", "203.0.113.2, 192.0.2.50") == 101
        assert status("127.0.0.1", "203.0.113.3, 192.0.2.50") == 429
        assert inst.wait_log(r"WSOCK0720: WebSocket handshake for /cap refused with 429: "
                             r"client 192\.0\.2\.50 has 2 WebSockets open", since=since)
        assert status("127.0.0.1", "192.0.2.51") == 101
    finally:
        for s in held:
            finish(s, websocket=True)
