"""WSockRateLimit through a real apache2: a client within the limits is
served, a flooding client gets close 1008 (logged once), other clients of
the same location carry on.  Python's websockets and raw sockets as clients.

Locations:
  /rl-msgs         messages=20,burst=20
  /rl-msgs/off     WSockRateLimit off below a limited location
  /rl-bytes        bytes=32K,burst=64K
  /rl-both         messages=20,burst=20 (inherited by /rl-both/bytes)
  /rl-both/bytes   adds bytes=32K,burst=64K, keeps the message limit

Clients within the limits stay well below them (a quarter of the rate, with
the burst to spare), so a slow machine cannot push them over; floods exceed
them by orders of magnitude.  No timing is asserted.
"""

import asyncio
import re

import pytest
import websockets

import rawws
from rawws import OP_BINARY, OP_CONT, OP_PING, OP_TEXT
from conftest import COMMON_CONF, new_instance, run, serve

CONF = COMMON_CONF + """
<Location /rl-msgs>
    WSockHandler echo
    WSockRateLimit messages=20/s,burst=20
</Location>
<Location /rl-msgs/off>
    WSockRateLimit off
</Location>
<Location /rl-bytes>
    WSockHandler echo
    WSockRateLimit bytes=32K,burst=64K
</Location>
<Location /rl-both>
    WSockHandler echo
    WSockRateLimit messages=20
</Location>
<Location /rl-both/bytes>
    WSockRateLimit bytes=32K/s,burst=64K
</Location>
"""

LOG_RE = re.compile(r"WSOCK0750: WebSocket (\S+): client exceeds WSockRateLimit (\w+)=")


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request):
    yield from serve(new_instance(request.param, CONF))


async def polite(url, count, size=16, pause=0.2):
    """count request/response round trips, one every `pause` seconds;
    returns the echoes."""
    got = []
    async with websockets.connect(url, ping_interval=None, max_size=None) as ws:
        for i in range(count):
            msg = ("%d:" % i).ljust(size, "x")
            await ws.send(msg)
            got.append(await asyncio.wait_for(ws.recv(), 10))
            await asyncio.sleep(pause)
    return got


async def flood(url, count, payload):
    """Sends count messages without reading, then waits for the close;
    returns (code, reason) of the server's close frame."""
    async with websockets.connect(url, ping_interval=None, max_size=None,
                                  close_timeout=2) as ws:
        try:
            for _ in range(count):
                await ws.send(payload)
            while True:        # echoes of what got in, then the close
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as e:
            return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, str(e))
    return ("not closed", None)


def flooded_lines(server, since):
    return LOG_RE.findall(server.error_log(since))


def test_client_within_limits_is_served(server):
    """A burst up to the limit at once, then a steady rate well below it."""
    async def go():
        async with websockets.connect(server.url("/rl-msgs"), ping_interval=None) as ws:
            for i in range(15):
                await ws.send("burst %d" % i)
            got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(15)]
        return got + await polite(server.url("/rl-msgs"), 10)
    got = run(go())
    assert got[:15] == ["burst %d" % i for i in range(15)]
    assert len(got) == 25


@pytest.mark.parametrize("path", ["/rl-msgs", "/rl-both/bytes"])
def test_message_flood_is_closed_1008(server, path):
    since = server.log_offset()
    code, reason = run(flood(server.url(path), 500, "spam"))
    assert (code, reason) == (1008, "rate limit exceeded")
    m = server.wait_log(r"WSOCK0750: WebSocket %s: client exceeds WSockRateLimit messages=20/s,"
                        r"burst=20; closing with 1008" % re.escape(path), since=since)
    assert m, server.error_log(since)


@pytest.mark.parametrize("path", ["/rl-bytes", "/rl-both/bytes"])
def test_byte_flood_is_closed_1008(server, path):
    """Few, large messages: under the message limit, over the byte limit."""
    since = server.log_offset()
    code, reason = run(flood(server.url(path), 12, b"\x00" * 32768))
    assert (code, reason) == (1008, "rate limit exceeded")
    assert server.wait_log(r"WSOCK0750: WebSocket %s: client exceeds WSockRateLimit "
                           r"bytes=32768/s,burst=65536" % re.escape(path), since=since)


def test_bytes_within_limits_are_served(server):
    """8 KiB four times a second is a quarter of bytes=32K."""
    got = run(polite(server.url("/rl-bytes"), 12, size=8192, pause=0.25))
    assert len(got) == 12 and all(len(m) == 8192 for m in got)


def test_other_clients_unaffected(server):
    """A polite client keeps being served while, and after, two others on
    the same location are closed for flooding."""
    since = server.log_offset()

    async def go():
        url = server.url("/rl-msgs")
        return await asyncio.gather(polite(url, 15), flood(url, 500, "spam"),
                                    flood(url, 500, b"binary spam"))
    got, flood1, flood2 = run(go())
    assert len(got) == 15 and got[-1].startswith("14:")
    assert flood1 == (1008, "rate limit exceeded")
    assert flood2 == (1008, "rate limit exceeded")
    assert server.wait_log(r"(WSOCK0750.*){2}", since=since, flags=re.S)
    # logged once per flooding connection, not once per refused message
    assert len(flooded_lines(server, since)) == 2, server.error_log(since)


def test_fragments_count_as_one_message(server):
    """Messages are counted when complete: 60 fragments are one message."""
    with rawws.RawWS.connect(server.port, "/rl-msgs") as c:
        for i in range(60):
            c.send_frame(OP_BINARY if i == 0 else OP_CONT, b"f%d," % i, fin=(i == 59))
        op, data, _ = c.recv_message(timeout=10)
        assert op == OP_BINARY and data == b"".join(b"f%d," % i for i in range(60))


def test_pings_count_as_messages(server):
    since = server.log_offset()
    with rawws.RawWS.connect(server.port, "/rl-msgs") as c:
        c.send_raw(b"".join(rawws.build_frame(OP_PING, b"p") for _ in range(200)))
        code, reason, _, skipped = c.recv_close(timeout=10)
        assert (code, reason) == (1008, "rate limit exceeded")
        # the burst of 20 got its pongs; far from all 200 did
        assert 1 <= len(skipped) < 100
        assert c.wait_eof(8)
    assert server.wait_log(r"WSOCK0750", since=since)


def test_over_limit_message_is_not_delivered(server):
    """The message that breaks the limit is refused before the handler sees
    it: exactly the burst comes back, then the close."""
    with rawws.RawWS.connect(server.port, "/rl-msgs") as c:
        c.send_raw(b"".join(rawws.build_frame(OP_TEXT, b"m%d" % i) for i in range(40)))
        code, _, _, skipped = c.recv_close(timeout=10)
        assert code == 1008
        echoes = [f.payload for f in skipped if f.opcode == OP_TEXT]
        # 20 in the burst, maybe one more earned while they were parsed
        assert 20 <= len(echoes) <= 21
        assert echoes == [b"m%d" % i for i in range(len(echoes))]


def test_nested_off_lifts_the_limit(server):
    since = server.log_offset()
    with rawws.RawWS.connect(server.port, "/rl-msgs/off") as c:
        c.send_raw(b"".join(rawws.build_frame(OP_TEXT, b"n%d" % i) for i in range(300)))
        for i in range(300):
            op, data, _ = c.recv_message(timeout=10)
            assert data == b"n%d" % i
    assert not flooded_lines(server, since)


def configtest_line(apache_factory, line):
    """apache2 -t of an echo location holding `line`: (returncode, output)."""
    inst = apache_factory("event", start=False, extra_conf="<Location /x>\n    WSockHandler "
                          "echo\n    %s\n</Location>\n" % line)
    return inst.configtest()


@pytest.mark.parametrize("line, message", [
    ("WSockRateLimit", "WSockRateLimit takes off, or messages="),
    ("WSockRateLimit fast", "WSockRateLimit: 'fast' is not messages=RATE"),
    ("WSockRateLimit messages=ten", "WSockRateLimit: 'ten' is not a count"),
    ("WSockRateLimit messages=-1", "WSockRateLimit: '-1' is not a count"),
    ("WSockRateLimit messages=10,burst=0", "WSockRateLimit: '0' is not a count from 1"),
    ("WSockRateLimit messages=10,peak=5", "after the rate only ',burst=N' may follow"),
    ("WSockRateLimit bytes=1Q", "WSockRateLimit: '1Q' is not a size"),
    ("WSockRateLimit bytes=1M,burst=2T", "WSockRateLimit: '2T' is not a size"),
    ("WSockRateLimit bytes=2048G", "WSockRateLimit: '2048G' is not a size"),
    ("WSockRateLimit messages=1 messages=2", "(each at most once)"),
    ("WSockRateLimit messages=1 bytes=1K off", "WSockRateLimit takes off, or"),
    ("WSockFrameTimeout soon", "WSockFrameTimeout: 'soon' is not a number of seconds"),
])
def test_bad_limits_fail_configtest(apache_factory, line, message):
    rc, out = configtest_line(apache_factory, line)
    assert rc != 0 and message in out, out


@pytest.mark.parametrize("line", ["WSockRateLimit off", "WSockRateLimit messages=0",
                                  "WSockRateLimit BYTES=1G,BURST=2G messages=1000000/S",
                                  "WSockFrameTimeout 0", "WSockFrameTimeout 2.5"])
def test_good_limits_pass_configtest(apache_factory, line):
    rc, out = configtest_line(apache_factory, line)
    assert rc == 0, out
