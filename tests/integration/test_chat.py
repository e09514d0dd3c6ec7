"""The chat handler and WSockSendQueue through a real apache2, with
python3-websockets and raw sockets.

Every test runs on three servers: one event child, two event children,
and prefork with many children, so rooms are spread over several child
processes and only the in-server bus (src/bus) can bring them together;
and again over wss:// (mod_ssl) on two event children and on prefork, where
broadcasts from other threads and processes reach connections whose owner
thread is reading TLS records at the same time.
"""

import asyncio
import json
import re
import socket
import tempfile
import time

import pytest
import websockets

import rawws
from conftest import PREFORK_MANY, client_tls, new_instance, run, serve, session_dir, tls_conf
from test_rooms import ONE_CHILD as ONE_EVENT_CHILD



TWO_EVENT_CHILDREN = """\
StartServers 2
ServerLimit 2
ThreadLimit 48
ThreadsPerChild 48
MinSpareThreads 96
MaxSpareThreads 96
MaxRequestWorkers 96
MaxConnectionsPerChild 0
"""


CHAT_CONF = """\
<Location /chat>
    WSockHandler chat room=query presence=on
</Location>
<Location /plain>
    WSockHandler chat room=query
</Location>
<Location /quiet>
    WSockHandler chat room=query echo=off presence=on
</Location>
<Location /loc-a>
    WSockHandler chat presence=on
</Location>
# nested without a handler: same handler, same location, same room
<Location /loc-a/nested>
    WSockMaxMessageSize 2K
</Location>
<Location /loc-b>
    WSockHandler chat room=location presence=on
</Location>
<Location /slow-close>
    WSockHandler chat room=query
    WSockSendQueue 64 1M close
</Location>
<Location /slow-drop>
    WSockHandler chat room=query
    WSockSendQueue 64 1M drop
</Location>
<Location /small-queue>
    WSockHandler chat room=query
    WSockSendQueue 4 16K close
</Location>
"""

SERVERS = {
    "event": ("event", ONE_EVENT_CHILD),
    "event-2-children": ("event", TWO_EVENT_CHILDREN),
    "prefork": ("prefork", PREFORK_MANY),
    "event-2-children-tls": ("event", TWO_EVENT_CHILDREN),
    "prefork-tls": ("prefork", PREFORK_MANY),
}

# wss:// client contexts, by server port
TLS_CLIENTS = {}


@pytest.fixture(scope="module", params=list(SERVERS))
def chat(request):
    mpm, sizing = SERVERS[request.param]
    conf = CHAT_CONF
    cert = None
    if request.param.endswith("-tls"):
        tls, cert = tls_conf(tempfile.mkdtemp(prefix="tls-", dir=session_dir()))
        conf = tls + CHAT_CONF
    inst = new_instance(mpm, conf, mpm_conf=sizing)
    if cert:
        inst.scheme = "wss"
        inst.tls = client_tls(cert)
    try:
        for started in serve(inst):
            if cert:
                TLS_CLIENTS[inst.port] = inst.tls
            yield started
    finally:
        TLS_CLIENTS.pop(inst.port, None)


def is_tls(inst):
    return getattr(inst, "scheme", "ws") == "wss"


_rooms = [0]


def fresh_room(prefix="r"):
    """A room name no other test uses (the server is shared)."""
    _rooms[0] += 1
    return "%s%d-%d" % (prefix, _rooms[0], int(time.time() * 1000) % 100000)


def tls_client_for(url):
    """The client context of a wss:// URL's server (None for ws://)."""
    if not url.startswith("wss://"):
        return None
    return TLS_CLIENTS[int(url.split("/")[2].rsplit(":", 1)[1])]


async def connect(url, **kw):
    ctx = tls_client_for(url)
    if ctx is not None:
        kw["ssl"] = ctx
    return await websockets.connect(url, open_timeout=15, close_timeout=5,
                                    ping_interval=None, max_size=None, **kw)


async def recv(ws, timeout=20):
    return await asyncio.wait_for(ws.recv(), timeout)


async def recv_json(ws, timeout=20):
    m = await recv(ws, timeout)
    assert isinstance(m, str), m
    return json.loads(m)


async def join(url):
    """Connects and returns (ws, welcome notice)."""
    ws = await connect(url)
    w = await recv_json(ws)
    assert w["type"] == "welcome", w
    return ws, w


async def close_all(conns):
    await asyncio.gather(*[ws.close() for ws in conns], return_exceptions=True)


# ===================================================================== fan-out
def test_every_client_gets_its_rooms_messages_once_in_sender_order(chat):
    rooms, per_room, per_sender = 3, 15, 10

    async def client_run(ws, me, tag):
        """Sends its messages, then collects the room's, until the room's
        END marker after all of them; returns (messages, notices)."""
        for i in range(per_sender):
            await ws.send("%s:%s:%d" % (tag, me, i))
        got, notices = [], []
        expected = per_room * per_sender
        while True:
            n = await recv_json(ws)
            if n["type"] != "message":
                notices.append(n)
                continue
            got.append((n["from"], n["data"]))
            if n["data"] == "END":
                return got, notices
            if len(got) == expected and me == 0:
                await ws.send("END")        # everything is in: close the room

    async def go():
        names = [fresh_room("fan") for _ in range(rooms)]
        conns, ids = {}, {}
        for r in names:
            conns[r] = []
            for k in range(per_room):
                ws, w = await join(chat.url("/chat?room=" + r))
                assert w["room"] == r
                conns[r].append(ws)
                ids[(r, k)] = w["member"]
        try:
            # every client of every room at once
            flat = await asyncio.gather(*[client_run(ws, k, r) for r in names
                                          for k, ws in enumerate(conns[r])])
            results = {r: flat[i * per_room:(i + 1) * per_room] for i, r in enumerate(names)}
            return names, ids, results
        finally:
            await close_all([ws for r in names for ws in conns[r]])

    names, ids, results = run(go(), timeout=180)
    assert len(set(ids.values())) == rooms * per_room, "member ids must be unique"
    for r in names:
        members = {ids[(r, k)]: k for k in range(per_room)}
        for k, (got, notices) in enumerate(results[r]):
            data = [d for _, d in got[:-1]]
            # nothing from another room, every message of this one exactly once
            assert sorted(data) == sorted("%s:%d:%d" % (r, s, i) for s in range(per_room)
                                          for i in range(per_sender)), (r, k)
            assert got[-1] == (ids[(r, 0)], "END")
            for frm, d in got[:-1]:
                # "from" is the id the sender was welcomed with
                assert members[frm] == int(d.split(":")[1])
            for s in range(per_room):
                seq = [int(d.split(":")[2]) for d in data if d.split(":")[1] == str(s)]
                assert seq == list(range(per_sender)), (r, k, s)
            assert all(n["type"] in ("join", "leave") for n in notices), notices


def test_rooms_busy_at_the_same_time(chat):
    """Several rooms publishing concurrently: no message leaks across."""
    rooms, per_room, per_sender = 4, 6, 20

    async def go():
        names = [fresh_room("busy") for _ in range(rooms)]
        conns = {r: [await connect(chat.url("/plain?room=" + r)) for _ in range(per_room)]
                 for r in names}
        try:
            async def send_all(ws, r, k):
                for i in range(per_sender):
                    await ws.send("%s|%d|%d" % (r, k, i))

            async def recv_all(ws):
                return [await recv(ws) for _ in range(per_room * per_sender)]

            await asyncio.gather(*[send_all(ws, r, k) for r in names
                                   for k, ws in enumerate(conns[r])])
            got = {r: await asyncio.gather(*[recv_all(ws) for ws in conns[r]]) for r in names}
            # and nothing more arrives for anyone
            for r in names:
                for ws in conns[r]:
                    with pytest.raises(asyncio.TimeoutError):
                        await asyncio.wait_for(ws.recv(), 0.2)
            return names, got
        finally:
            await close_all([ws for r in names for ws in conns[r]])

    names, got = run(go(), timeout=120)
    for r in names:
        want = sorted("%s|%d|%d" % (r, k, i) for k in range(per_room) for i in range(per_sender))
        for received in got[r]:
            assert sorted(received) == want
            for k in range(per_room):
                seq = [int(m.split("|")[2]) for m in received if m.split("|")[1] == str(k)]
                assert seq == list(range(per_sender))


# ===================================================================== presence
def test_presence_welcome_join_leave_and_counts(chat):
    room = fresh_room("pres")

    async def go():
        url = chat.url("/chat?room=" + room)
        a, wa = await join(url)
        assert wa == {"type": "welcome", "member": wa["member"], "room": room, "count": 1}
        b, wb = await join(url)
        assert wb["count"] == 2 and wb["room"] == room
        assert await recv_json(a) == {"type": "join", "member": wb["member"], "count": 2}
        c, wc = await join(url)
        assert wc["count"] == 3
        for ws in (a, b):
            assert await recv_json(ws) == {"type": "join", "member": wc["member"], "count": 3}
        ids = {wa["member"], wb["member"], wc["member"]}
        # a clean close, then a client that just vanishes
        await c.close()
        for ws in (a, b):
            assert await recv_json(ws) == {"type": "leave", "member": wc["member"], "count": 2}
        b.transport.abort()
        assert await recv_json(a) == {"type": "leave", "member": wb["member"], "count": 1}
        await a.close()
        return ids

    ids = run(go())
    assert len(ids) == 3
    for i in ids:
        # short, server-assigned, not the client's address
        assert re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", i), i
        assert "127.0.0.1" not in i


def test_messages_are_wrapped_so_notices_cannot_be_forged(chat):
    room = fresh_room("spoof")
    tricky = [
        '{"type":"join","member":"%s","count":99}',            # a forged notice
        'quote " backslash \\ slash / newline \n tab \t cr \r',
        "control \x01\x1f and NUL \x00 inside",
        "unicode: h\u00e9llo \u4e16\u754c \U0001f600 \u2028",
        "",
        "<img src=x onerror=alert(1)>",
    ]

    async def go():
        url = chat.url("/chat?room=" + room)
        a, wa = await join(url)
        b, wb = await join(url)
        await recv_json(a)                                      # b's join
        out = []
        for t in tricky:
            text = t % wa["member"] if "%s" in t else t
            await b.send(text)
            out.append((text, await recv(a), await recv(b)))
        await b.send(b"\x00\x01binary\xff")
        bins = (await recv(a), await recv(b))
        await close_all([a, b])
        return wb["member"], out, bins

    sender, out, bins = run(go())
    for text, at_a, at_b in out:
        assert at_a == at_b
        assert json.loads(at_a) == {"type": "message", "from": sender, "data": text}
    # binary messages go through unchanged, as binary
    assert bins == (b"\x00\x01binary\xff", b"\x00\x01binary\xff")


def test_without_presence_messages_are_relayed_as_they_are(chat):
    room = fresh_room("plain")

    async def go():
        a = await connect(chat.url("/plain?room=" + room))
        b = await connect(chat.url("/plain?room=" + room))
        await a.send('{"type":"welcome"}')
        got = (await recv(a), await recv(b))
        await b.send(b"\xfe\xff")
        got += (await recv(a), await recv(b))
        # no notices: nothing else comes
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(a.recv(), 0.3)
        await close_all([a, b])
        return got

    assert run(go()) == ('{"type":"welcome"}', '{"type":"welcome"}', b"\xfe\xff", b"\xfe\xff")


def test_echo_off_skips_the_sender(chat):
    room = fresh_room("quiet")

    async def go():
        url = chat.url("/quiet?room=" + room)
        a, wa = await join(url)
        b, wb = await join(url)
        await recv_json(a)                                      # b's join
        await a.send("from a")
        at_b = await recv_json(b)
        await b.send("from b")
        # a's own message would be written before b ever saw it: a's first
        # message must be b's
        at_a = await recv_json(a)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.recv(), 0.3)
        await close_all([a, b])
        return wa["member"], wb["member"], at_a, at_b

    ida, idb, at_a, at_b = run(go())
    assert at_b == {"type": "message", "from": ida, "data": "from a"}
    assert at_a == {"type": "message", "from": idb, "data": "from b"}


# ========================================================================= rooms
def test_room_by_location(chat):
    async def go():
        # ?room= is ignored where the room is the location
        a, wa = await join(chat.url("/loc-a?room=elsewhere"))
        n, wn = await join(chat.url("/loc-a/nested/deeper"))
        b, wb = await join(chat.url("/loc-b"))
        await recv_json(a)                                      # n's join
        await n.send("to loc-a")
        got = (await recv_json(a), await recv_json(n))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.recv(), 0.3)
        await close_all([a, n, b])
        return wa, wn, wb, got

    wa, wn, wb, got = run(go())
    assert (wa["room"], wn["room"], wb["room"]) == ("/loc-a", "/loc-a", "/loc-b")
    assert (wa["count"], wn["count"]) == (1, 2)
    assert got[0] == got[1] == {"type": "message", "from": wn["member"], "data": "to loc-a"}


def test_room_query_argument_is_checked(chat):
    if is_tls(chat):
        pytest.skip("the handshake's checks do not depend on TLS (raw HTTP here)")
    bad = ["x" * 65, "", "a/b", "a%20b", "caf%C3%A9", "a%00b", "a%3Cb%3E", "..%2F"]

    for value in bad:
        since = chat.log_offset()
        resp = rawws.http_exchange(chat.port, rawws.handshake_request(
            "/chat?room=" + value, host="127.0.0.1:%d" % chat.port))
        assert resp.status == 400, (value, resp)
        assert chat.wait_log(r"WSOCK0610: chat /chat: refused", since=since), value

    async def go():
        # the longest name, and the allowed characters
        ok, w = await join(chat.url("/chat?room=" + "A" * 64))
        ok2, w2 = await join(chat.url("/chat?room=az-AZ_09.x"))
        # no room argument: the location's room, separate from query rooms
        d1, wd1 = await join(chat.url("/chat"))
        d2, wd2 = await join(chat.url("/chat?other=1"))
        await close_all([ok, ok2, d1, d2])
        return w, w2, wd1, wd2

    w, w2, wd1, wd2 = run(go())
    assert (w["room"], w["count"]) == ("A" * 64, 1)
    assert w2["room"] == "az-AZ_09.x"
    assert (wd1["room"], wd1["count"]) == ("/chat", 1)
    assert (wd2["room"], wd2["count"]) == ("/chat", 2)


# ============================================================== slow consumers
def stuck_client(inst, path):
    """A client that completes the handshake and then never reads, with a
    tiny receive buffer so that the server's writes to it stall early."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", inst.port))
    if is_tls(inst):
        s = inst.tls.wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(rawws.handshake_request(path, host="127.0.0.1:%d" % inst.port))
    resp, rest = rawws.read_http_response(s, timeout=10)
    assert resp.status == 101, resp
    return rawws.RawWS(s, resp, rest), "127.0.0.1:%d" % s.getsockname()[1]


def flood_room(inst, path, readers=3, count=300, size=16000, ahead=20, tick=None):
    """One reader publishes count messages of size bytes to the room while
    every reader receives them all; the publisher stays at most `ahead`
    messages ahead of the slowest reader, so readers are never slow
    consumers (tick(), if given, is called every 25 messages).
    Returns what each reader got (the message numbers)."""
    payload = "x" * size

    async def go():
        conns = [await connect(inst.url(path)) for _ in range(readers)]
        got = [[] for _ in conns]
        try:
            async def publish():
                for i in range(count):
                    await conns[0].send("%d:%s" % (i, payload))
                    deadline = time.monotonic() + 20
                    while i - min(len(g) for g in got) > ahead:
                        assert time.monotonic() < deadline, "readers stalled"
                        await asyncio.sleep(0.002)
                    if tick and i % 25 == 0:
                        tick()

            async def read(k):
                while len(got[k]) < count:
                    got[k].append(int((await recv(conns[k])).split(":")[0]))

            await asyncio.gather(publish(), *[read(k) for k in range(readers)])
            return got
        finally:
            await close_all(conns)

    return run(go(), timeout=120)


def drain_until_end(raw, timeout=20):
    """Reads everything the server still sends; returns the close frame's
    (code, reason), or None if TCP ended without one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            f = raw.recv_frame(timeout=max(0.1, deadline - time.monotonic()))
        except rawws.Closed:
            return None
        if f.opcode == rawws.OP_CLOSE:
            return f.close_code, f.close_reason
    raise AssertionError("the connection did not end within %ss" % timeout)


def flood_past_a_stuck_client(inst, location, tag, what):
    """A client that never reads joins a fresh room of location, and three
    readers flood it: they must get all 300 messages in order, and the
    stuck client must be logged with tag (WSOCK0601/0602) and what the
    policy did.  Returns (stuck client, its address, log offset, match)."""
    path = "%s?room=%s" % (location, fresh_room("slow"))
    since = inst.log_offset()
    raw, raw_id = stuck_client(inst, path)
    try:
        got = flood_room(inst, path)
        # the others got everything, in order
        assert all(g == list(range(300)) for g in got)
        m = inst.wait_log(r"%s: WebSocket %s: client %s does not keep up, its outbound queue "
                          r"is full \((\d+) messages, (\d+) bytes\); %s"
                          % (tag, location, re.escape(raw_id), what), since=since)
        assert m, inst.error_log(since)[-3000:]
    except BaseException:
        raw.close_socket()
        raise
    return raw, raw_id, since, m


def test_slow_consumer_is_closed_without_holding_up_the_room(chat):
    raw, raw_id, since, m = flood_past_a_stuck_client(chat, "/slow-close", "WSOCK0602",
                                                      "closing it with 1008")
    try:
        assert int(m.group(1)) <= 64 and int(m.group(2)) <= 1024 * 1024
        # Its thread was stuck writing to it: the socket is shut down, and
        # the connection ends on the server's side while the client still
        # reads nothing (not after Timeout, 60 s here).
        assert chat.wait_log(r"WSOCK0603: WebSocket /slow-close: client %s does not read; "
                             r"its connection is shut down" % re.escape(raw_id), since=since)
        assert chat.wait_log(r"\[(?:client|remote) %s\] WSOCK0604: WebSocket /slow-close ended with "
                             r"1008; \d+ messages for it were dropped" % re.escape(raw_id),
                             since=since, timeout=10)
        # A client that reads now gets what was under way, then the end (a
        # close 1008 if it still fitted).
        end = drain_until_end(raw)
        assert end in (None, (1008, "slow consumer")), end
        # only one line per event, never one per message
        assert len(re.findall(r"WSOCK060[12]: .*%s" % re.escape(raw_id),
                              chat.error_log(since))) == 1
    finally:
        raw.close_socket()


def test_slow_consumer_messages_are_dropped_and_counted(chat):
    raw, raw_id, since, _ = flood_past_a_stuck_client(chat, "/slow-drop", "WSOCK0601",
                                                      "dropping messages for it")
    # dropping: the connection stays open
    assert "WSOCK0602" not in chat.error_log(since)
    raw.close_socket()
    # when it ends, the total
    m = chat.wait_log(r"\[(?:client|remote) %s\] WSOCK0604: WebSocket /slow-drop ended with \d+; "
                      r"(\d+) messages for it were dropped" % re.escape(raw_id), since=since)
    assert m and int(m.group(1)) > 0
    assert len(re.findall(r"WSOCK0601: .*%s" % re.escape(raw_id), chat.error_log(since))) == 1


def test_a_message_larger_than_the_queue_reaches_clients_that_keep_up(chat):
    """The byte bound is about slow clients, not big messages: a message
    larger than the whole queue still goes into an empty one."""
    room = fresh_room("big")
    since = chat.log_offset()

    async def go():
        conns = [await connect(chat.url("/small-queue?room=" + room)) for _ in range(3)]
        got = []
        for i in range(3):
            await conns[0].send(("%d" % i) * 40000)
            got.append([len(await recv(ws)) for ws in conns])
        await close_all(conns)
        return got

    assert run(go()) == [[40000] * 3] * 3
    assert "WSOCK0602" not in chat.error_log(since)


# =================================================================== configtest
@pytest.mark.parametrize("args, message", [
    ("bogus", "WSockHandler chat: unknown argument 'bogus' (room=location|query"),
    ("colour=red", "WSockHandler chat: unknown argument 'colour=red'"),
    ("room=url", "WSockHandler chat: bad value in 'room=url'"),
    ("echo=maybe", "WSockHandler chat: bad value in 'echo=maybe'"),
    ("presence=", "WSockHandler chat: bad value in 'presence='"),
    ("room=query echo=off presence=yes", "WSockHandler chat: bad value in 'presence=yes'"),
])
def test_configtest_rejects_bad_chat_arguments(apache_factory, args, message):
    inst = apache_factory("event", start=False,
                          extra_conf="<Location /c>\n    WSockHandler chat %s\n</Location>\n"
                          % args)
    rc, out = inst.configtest()
    assert rc != 0 and message in out, out


@pytest.mark.parametrize("args, message", [
    ("0 1M", "WSockSendQueue: '0' is not a number of messages"),
    ("many 1M", "WSockSendQueue: 'many' is not a number of messages"),
    ("1000001 1M", "WSockSendQueue: '1000001' is not a number of messages"),
    ("10 0", "WSockSendQueue: '0' is not a size in bytes"),
    ("10 1Q", "WSockSendQueue: '1Q' is not a size in bytes"),
    ("10 1M later", "WSockSendQueue: 'later' is not a policy (drop or close)"),
    ("10", "WSockSendQueue takes two or three arguments"),
    ("10 1M drop now", "WSockSendQueue takes two or three arguments"),
])
def test_configtest_rejects_bad_send_queue(apache_factory, args, message):
    inst = apache_factory("event", start=False, extra_conf="<Location /c>\n    WSockHandler "
                          "chat\n    WSockSendQueue %s\n</Location>\n" % args)
    rc, out = inst.configtest()
    assert rc != 0 and message in out, out


def test_configtest_accepts_good_chat_and_queue_settings(apache_factory):
    inst = apache_factory("event", start=False, extra_conf="""
<Location /c>
    WSockHandler chat room=Query ECHO=Off presence=on
    WSockSendQueue 1 1 DROP
</Location>
<Location /c/d>
    WSockSendQueue 1000000 4G
</Location>
<Location /e>
    WSockHandler chat
    WSockSendQueue 10 64K close
</Location>
""")
    rc, out = inst.configtest()
    assert rc == 0, out
