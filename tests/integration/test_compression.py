"""permessage-deflate (RFC 7692, WSockCompression) through a real apache2.

python3-websockets (it offers `permessage-deflate; client_max_window_bits`,
as Chromium and Node's ws do) for round trips; the raw client (rawws, with
Python's zlib) for what is on the wire: RSV1 on the first frame of a
compressed message only, the threshold, fragmented compressed messages both
ways, the negotiated windows and context takeover; raw handshakes for the
negotiation; and the errors: RSV1 where it is not allowed (1002), corrupt
deflate data and invalid UTF-8 after inflating (1007), a deflate bomb
(1009, decided while inflating, with the apache tree's memory bounded and
other clients served).

One apache per MPM for the whole module: event (loop threads) for
everything, prefork (the blocking driver) for the round trips, the wire
checks and the errors.
"""

import asyncio
import os
import re
import threading
import time
import zlib

import pytest
import websockets

import hostile
import memory
import rawws
from conftest import new_instance, run, serve
from rawws import OP_BINARY, OP_CONT, OP_PING, OP_TEXT, RSV1

KiB = 1024
MiB = 1024 * 1024

CONF = """\
<Location /z>
    WSockHandler echo
    WSockCompression on
    WSockMaxMessageSize 4M
</Location>
# nested: the same echo, compression switched off again
<Location /z/off>
    WSockCompression off
</Location>
# no WSockCompression at all
<Location /plain>
    WSockHandler echo
    WSockMaxMessageSize 4M
</Location>
<Location /zfrag>
    WSockHandler echo
    WSockCompression on
    WSockFragmentSize 1000
</Location>
<Location /zbomb>
    WSockHandler echo
    WSockCompression on
    WSockMaxMessageSize 1M
</Location>
<Location /zping>
    WSockHandler echo
    WSockCompression on threshold=0
    WSockPingInterval 0.2
</Location>
<Location /zthreshold>
    WSockHandler echo
    WSockCompression on level=9 threshold=1000
</Location>
<Location /zcmwb>
    WSockHandler echo
    WSockCompression on client_max_window_bits=10
</Location>
<Location /zsctx>
    WSockHandler echo
    WSockCompression on server_no_context_takeover=off
    WSockMaxMessageSize 4M
</Location>
<Location /zcctx>
    WSockHandler echo
    WSockCompression on client_no_context_takeover=off
    WSockMaxMessageSize 4M
</Location>
"""

# The answer to every offer the defaults accept as they are (server and
# client no_context_takeover on, windows 15): docs/directives.md.
DEFAULT_ANSWER = ("permessage-deflate",
                  {"server_no_context_takeover": True, "client_no_context_takeover": True})

# What browsers and the common clients offer.
CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"
FIREFOX_OFFER = "permessage-deflate"

THRESHOLD = 128         # the default: shorter messages go out uncompressed
SIZES = [0, 1, 127, 128, 129, 1000, 65536, MiB]


@pytest.fixture(scope="module")
def zs():
    """The event MPM (two children, loop threads)."""
    yield from serve(new_instance("event", CONF))


@pytest.fixture(scope="module", params=["event", "prefork"])
def zany(request, zs):
    """Both drivers: the event server above, and prefork."""
    if request.param == "event":
        yield zs
    else:
        # as many children as the bomb test warms up (hostile.sizing): a
        # child's first large message would count as the attack's memory
        yield from serve(new_instance("prefork", CONF,
                                      mpm_conf=hostile.sizing("prefork", BOMBERS + 1)))


# ------------------------------------------------------------------ helpers
def text_bytes(n, seed=0):
    """n bytes of valid UTF-8 with 1- to 4-byte characters, compressible
    like text (a character cut at the end is replaced by ASCII)."""
    unit = "héllo wörld %d € 😀 ∑ " % seed
    out = (unit * (n // len(unit.encode()) + 1)).encode()[:n]
    while out:
        try:
            out.decode("utf-8")
            break
        except UnicodeDecodeError:
            out = out[:-1]
    return out + b"x" * (n - len(out))


def chatty(n, seed=0):
    """n compressible bytes that are not one repeated unit (JSON-like)."""
    parts, i = [], 0
    while sum(map(len, parts)) < n:
        parts.append(b'{"user":"u%d","seq":%d,"text":"message number %d of seed %d"}\n'
                     % (i % 7, i, i * 31 % 1000, seed))
        i += 1
    return b"".join(parts)[:n]


def answer(resp):
    """The parsed Sec-WebSocket-Extensions answer (None if there is none);
    there must be at most one such header and one extension in it."""
    values = resp.header_all("Sec-WebSocket-Extensions")
    assert len(values) <= 1, values
    if not values:
        return None
    exts = rawws.parse_extensions(values[0])
    assert len(exts) == 1, values[0]
    return exts[0]


def pmd_connect(inst, path="/z", offer=CHROMIUM_OFFER, **kw):
    c = rawws.RawWS.connect(inst.port, path, timeout=10, extensions=offer, **kw)
    return c


def ws_connect(url, **kw):
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 5)
    return websockets.connect(url, **kw)


def expect_close(inst, c, code, path, since):
    """The server closes c with code (a close frame without RSV bits),
    ends TCP, and logs why: WSOCK0201 for a protocol error (1002), WSOCK1301
    for a compressed message it refused (1007, 1009)."""
    got, reason, frame, skipped = c.recv_close(timeout=10)
    assert got == code, "close %r (%r), expected %d" % (got, reason, code)
    assert frame.rsv == 0 and frame.fin and not frame.masked, frame
    assert c.wait_eof(10), "TCP still open after close %d" % code
    tag = "0201" if code == 1002 else "1301"
    assert inst.wait_log(r"WSOCK%s: closing WebSocket %s with %d: \S"
                         % (tag, re.escape(path), code), since=since, timeout=5), \
        inst.error_log(since)
    return reason


# ============================================================ python websockets
def test_websockets_negotiates_the_default_answer(zany):
    async def go():
        async with ws_connect(zany.url("/z")) as ws:
            hdr = ws.response_headers.get("Sec-WebSocket-Extensions")
            ext = [(type(e).__name__, e.remote_no_context_takeover, e.local_no_context_takeover)
                   for e in ws.extensions]
            await ws.send("x" * 300)
            return hdr, ext, await asyncio.wait_for(ws.recv(), 10)
    hdr, ext, echoed = run(go(), timeout=30)
    assert rawws.parse_extensions(hdr) == [DEFAULT_ANSWER], hdr
    assert ext == [("PerMessageDeflate", True, True)]
    assert echoed == "x" * 300


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_websockets_round_trips(zany, kind):
    """Every size, on one compressed connection."""
    msgs = []
    for k, n in enumerate(SIZES):
        if kind == "text":
            msgs.append(text_bytes(n, k).decode("utf-8"))
        else:
            # half compressible, half not: both kinds of deflate blocks
            msgs.append(chatty(n - n // 2, k) + os.urandom(n // 2))

    async def go():
        got = []
        async with ws_connect(zany.url("/z")) as ws:
            assert ws.extensions, "permessage-deflate was not negotiated"
            for m in msgs:
                await ws.send(m)
                got.append(await asyncio.wait_for(ws.recv(), 20))
        return got
    got = run(go(), timeout=60)
    for n, m, g in zip(SIZES, msgs, got):
        assert type(g) is type(m) and g == m, "size %d: %r... came back as %r..." % (
            n, m[:20], g[:20])


@pytest.mark.parametrize("path", ["/z/off", "/plain"])
def test_websockets_no_extension_where_compression_is_off(zs, path):
    async def go():
        async with ws_connect(zs.url(path)) as ws:
            hdr = ws.response_headers.get("Sec-WebSocket-Extensions")
            await ws.send("y" * 1000)
            return hdr, ws.extensions, await asyncio.wait_for(ws.recv(), 10)
    hdr, ext, echoed = run(go(), timeout=30)
    assert hdr is None and ext == []
    assert echoed == "y" * 1000


# ====================================================================== wire
def test_server_messages_on_the_wire(zany):
    """Messages of THRESHOLD bytes and more leave compressed (RSV1 on their
    one frame), shorter ones plain; each inflates on its own (the server
    keeps no context) to exactly what was sent.  The client sends them
    compressed and plain in turn."""
    with pmd_connect(zany) as c:
        assert answer(c.response) == DEFAULT_ANSWER
        for k, n in enumerate(SIZES):
            for op, data in ((OP_TEXT, text_bytes(n, k)), (OP_BINARY, chatty(n, k))):
                if k % 2:
                    c.send_deflated(op, data)
                else:
                    c.send_frame(op, data)
                got_op, got, frames, compressed = c.recv_inflated(timeout=20)
                assert got_op == op and got == data, "size %d op %d" % (n, op)
                assert compressed == (n >= THRESHOLD), (n, frames[:2])
                assert all(f.rsv == 0 for f in frames[1:]), frames[:3]
                assert all(f.rsv & 0b011 == 0 for f in frames)
                if compressed:
                    wire = sum(len(f.payload) for f in frames)
                    assert wire < n, "%d bytes of text went out as %d" % (n, wire)


def test_threshold_and_level_parameters(zs):
    """/zthreshold: threshold=1000: 999 bytes go out plain, 1000 compressed."""
    with pmd_connect(zs, "/zthreshold") as c:
        assert answer(c.response) == DEFAULT_ANSWER
        for n, want in ((128, False), (999, False), (1000, True), (5000, True)):
            data = chatty(n)
            c.send_binary(data)
            _, got, frames, compressed = c.recv_inflated(timeout=10)
            assert got == data and compressed == want, (n, frames)


def test_no_rsv1_without_the_extension(zany):
    """A client that offers nothing, and any client of a location without
    compression, get every message plain."""
    for path, offer in (("/z", None), ("/z/off", CHROMIUM_OFFER), ("/plain", CHROMIUM_OFFER)):
        with pmd_connect(zany, path, offer) as c:
            assert answer(c.response) is None, (path, offer, c.response)
            data = chatty(70000)
            c.send_binary(data)
            _, got, frames = c.recv_message(timeout=10)
            assert got == data and all(f.rsv == 0 for f in frames), (path, offer, frames[:2])


def test_server_pings_have_no_rsv1(zs):
    """/zping: the server's own pings on a compressed connection."""
    with pmd_connect(zs, "/zping") as c:
        assert answer(c.response) == DEFAULT_ANSWER
        frames = c.recv_frames_until(lambda f: f.opcode == OP_PING, timeout=10)
        assert frames[-1].rsv == 0, frames
        c.send_frame(rawws.OP_PONG, frames[-1].payload)


def test_fragmented_compressed_server_message(zany):
    """/zfrag: WSockFragmentSize 1000: a compressed message goes out as
    several frames of at most 1000 bytes; RSV1 on the first only."""
    data = text_bytes(64 * KiB) + os.urandom(8 * KiB).hex().encode()
    with pmd_connect(zany, "/zfrag") as c:
        c.send_deflated(OP_TEXT, data)
        op, got, frames, compressed = c.recv_inflated(timeout=20)
        assert op == OP_TEXT and got == data
        assert compressed and len(frames) > 1, frames[:2]
        assert frames[0].opcode == OP_TEXT and all(f.opcode == OP_CONT for f in frames[1:])
        assert frames[0].rsv == RSV1 and all(f.rsv == 0 for f in frames[1:]), frames[:3]
        assert all(len(f.payload) <= 1000 for f in frames)
        assert sum(len(f.payload) for f in frames) < len(data) * 0.9


@pytest.mark.parametrize("split", [2, 7, 300])
def test_fragmented_compressed_client_message(zany, split):
    """A compressed message from the client in several frames (RSV1 on the
    first, continuations without) is understood, text and binary; a ping
    between two of its frames is answered (without RSV1) on the way."""
    with pmd_connect(zany) as c:
        for op, data in ((OP_TEXT, text_bytes(20000, split)),
                         (OP_BINARY, chatty(20000, split) + os.urandom(3000))):
            frames = rawws.deflated_frame_list(op, rawws.Deflater().compress(data), split)
            if len(frames) > 2:
                # the first frame, a ping, the rest
                c.send_raw(frames[0] + rawws.build_frame(OP_PING, b"between"))
                c.send_raw(b"".join(frames[1:]))
                pong = c.recv_frame(timeout=10)
                assert pong.opcode == rawws.OP_PONG and pong.payload == b"between", pong
                assert pong.rsv == 0
            else:
                c.send_raw(b"".join(frames))
            got_op, got, _, compressed = c.recv_inflated(timeout=10)
            assert got_op == op and got == data and compressed


def test_empty_and_final_block_client_messages(zany):
    """Compressed messages of other shapes RFC 7692 allows (§7.2.3): an
    empty message deflated (one byte), an empty payload with RSV1, and a
    message whose deflate data ends with a final block (BFINAL=1, the way
    a sender without sync flush ends it; the 00 00 ff ff the receiver
    appends then follows the end of the stream)."""
    def final_block(data):
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        return z.compress(data) + z.flush(zlib.Z_FINISH)

    with pmd_connect(zany) as c:
        for what, op, data, payload in (
                ("deflated empty", OP_TEXT, b"", rawws.Deflater().compress(b"")),
                ("empty payload", OP_BINARY, b"", b""),
                ("final block", OP_TEXT, text_bytes(3000), final_block(text_bytes(3000))),
                ("final block again", OP_BINARY, chatty(300), final_block(chatty(300)))):
            c.send_raw(rawws.deflated_frames(op, payload))
            got_op, got, frames, _ = c.recv_inflated(timeout=10)
            assert (got_op, got) == (op, data), what


def test_client_window_bits_9(zs):
    """A client that offers client_max_window_bits=9 and compresses with a
    512-byte window is understood; the server asks for no larger window."""
    with pmd_connect(zs, offer="permessage-deflate; client_max_window_bits=9") as c:
        name, params = answer(c.response)
        assert name == "permessage-deflate"
        assert int(params.get("client_max_window_bits", 9)) <= 9, params
        d = rawws.Deflater(wbits=9)
        for k in range(3):
            data = chatty(5000, k)
            c.send_deflated(OP_BINARY, data, deflater=d)
            _, got, _, compressed = c.recv_inflated(timeout=10)
            assert got == data and compressed


def test_server_window_bits_10(zs):
    """The client limits the server's window to 2**10: the answer says so
    and the server's messages inflate with a 1 KiB window (zlib refuses a
    reference further back: the data repeats random blocks 1.5 KiB apart,
    which a larger window would use)."""
    offer = "permessage-deflate; server_max_window_bits=10"
    with pmd_connect(zs, offer=offer) as c:
        name, params = answer(c.response)
        assert name == "permessage-deflate"
        bits = int(params["server_max_window_bits"])
        assert 9 <= bits <= 10, params
        block = os.urandom(768) + b"a" * 768
        data = block * 20
        c.send_binary(data)
        _, got, frames, compressed = c.recv_inflated(timeout=10, inflater=rawws.Inflater(bits))
        assert compressed and got == data, frames[:1]
        # and a larger window would have been used without the limit:
        with pmd_connect(zs) as c15:
            c15.send_binary(data)
            _, got15, frames15, _ = c15.recv_inflated(timeout=10)
            assert got15 == data
            with pytest.raises(zlib.error):
                rawws.Inflater(bits).inflate(frames15[0].payload)


def test_server_window_bits_8_sends_plain(zs):
    """server_max_window_bits=8 is accepted (answered as 8), but zlib
    cannot write a 256-byte window: messages go out uncompressed; the
    client may still compress."""
    offer = "permessage-deflate; server_max_window_bits=8"
    with pmd_connect(zs, offer=offer) as c:
        name, params = answer(c.response)
        assert name == "permessage-deflate" and params.get("server_max_window_bits") == "8", \
            c.response
        for k in range(2):
            data = chatty(10000, k)
            c.send_deflated(OP_BINARY, data)
            _, got, frames, compressed = c.recv_inflated(timeout=10)
            assert got == data and not compressed and frames[0].rsv == 0


# =============================================================== negotiation
# (id, path, Sec-WebSocket-Extensions values, expected answer: a (name,
# params) tuple, None for no extension, or a function of the params)
NEGOTIATION = [
    ("chromium", "/z", [CHROMIUM_OFFER], DEFAULT_ANSWER),
    ("firefox", "/z", [FIREFOX_OFFER], DEFAULT_ANSWER),
    ("asks-server-nctx", "/z", ["permessage-deflate; server_no_context_takeover"],
     DEFAULT_ANSWER),
    ("offers-client-nctx", "/z", ["permessage-deflate; client_no_context_takeover"],
     DEFAULT_ANSWER),
    ("all-params", "/z", ["permessage-deflate; server_no_context_takeover; "
                          "client_no_context_takeover; server_max_window_bits=15; "
                          "client_max_window_bits=15"],
     lambda p: (p.pop("server_max_window_bits", "15") == "15"
                and p.pop("client_max_window_bits", "15") == "15"
                and p == DEFAULT_ANSWER[1])),
    ("quoted-value", "/z", ['permessage-deflate; server_max_window_bits="12"'],
     lambda p: p.pop("server_max_window_bits", None) in ("9", "10", "11", "12")
     and p == DEFAULT_ANSWER[1]),
    ("smwb-12", "/z", ["permessage-deflate; server_max_window_bits=12"],
     lambda p: p.pop("server_max_window_bits", None) in ("9", "10", "11", "12")
     and p == DEFAULT_ANSWER[1]),
    ("cmwb-12", "/z", ["permessage-deflate; client_max_window_bits=12"],
     lambda p: int(p.pop("client_max_window_bits", 12)) <= 12 and p == DEFAULT_ANSWER[1]),
    # declined offers: still a WebSocket, without the extension
    ("unknown-param", "/z", ["permessage-deflate; foo"], None),
    ("unknown-param-value", "/z", ["permessage-deflate; foo=1"], None),
    ("repeated-param", "/z", ["permessage-deflate; server_no_context_takeover; "
                              "server_no_context_takeover"], None),
    ("value-on-flag", "/z", ["permessage-deflate; server_no_context_takeover=1"], None),
    ("smwb-no-value", "/z", ["permessage-deflate; server_max_window_bits"], None),
    ("smwb-7", "/z", ["permessage-deflate; server_max_window_bits=7"], None),
    ("smwb-16", "/z", ["permessage-deflate; server_max_window_bits=16"], None),
    ("smwb-leading-zero", "/z", ["permessage-deflate; server_max_window_bits=010"], None),
    ("cmwb-16", "/z", ["permessage-deflate; client_max_window_bits=16"], None),
    ("cmwb-word", "/z", ["permessage-deflate; client_max_window_bits=ten"], None),
    ("other-extension-only", "/z", ["x-webkit-deflate-frame"], None),
    # the first acceptable offer wins
    ("fallback", "/z", ["permessage-deflate; foo, permessage-deflate"], DEFAULT_ANSWER),
    ("fallback-windows", "/z", ["permessage-deflate; server_max_window_bits=7, "
                                "permessage-deflate; server_max_window_bits=10"],
     lambda p: p.pop("server_max_window_bits", None) in ("9", "10") and p == DEFAULT_ANSWER[1]),
    ("after-other-extension", "/z", ["x-webkit-deflate-frame, " + CHROMIUM_OFFER],
     DEFAULT_ANSWER),
    ("two-headers", "/z", ["permessage-deflate; foo", FIREFOX_OFFER], DEFAULT_ANSWER),
    # no compression in the location: nothing is answered
    ("off-nested", "/z/off", [CHROMIUM_OFFER], None),
    ("no-directive", "/plain", [CHROMIUM_OFFER], None),
    # the directive's parameters change the answer
    ("cmwb-config-asked", "/zcmwb", [CHROMIUM_OFFER],
     ("permessage-deflate", dict(DEFAULT_ANSWER[1], client_max_window_bits="10"))),
    ("cmwb-config-offer-12", "/zcmwb", ["permessage-deflate; client_max_window_bits=12"],
     ("permessage-deflate", dict(DEFAULT_ANSWER[1], client_max_window_bits="10"))),
    ("cmwb-config-offer-9", "/zcmwb", ["permessage-deflate; client_max_window_bits=9"],
     lambda p: int(p.pop("client_max_window_bits", 9)) <= 9 and p == DEFAULT_ANSWER[1]),
    ("cmwb-config-not-offered", "/zcmwb", [FIREFOX_OFFER], DEFAULT_ANSWER),
    ("sctx-off", "/zsctx", [CHROMIUM_OFFER],
     ("permessage-deflate", {"client_no_context_takeover": True})),
    ("sctx-off-client-asks", "/zsctx", ["permessage-deflate; server_no_context_takeover"],
     DEFAULT_ANSWER),
    ("cctx-off", "/zcctx", [CHROMIUM_OFFER],
     ("permessage-deflate", {"server_no_context_takeover": True})),
]


@pytest.mark.parametrize("path,offers,want", [r[1:] for r in NEGOTIATION],
                         ids=[r[0] for r in NEGOTIATION])
def test_negotiation(zs, path, offers, want):
    extra = [("Sec-WebSocket-Extensions", v) for v in offers]
    with rawws.RawWS.connect(zs.port, path, timeout=10, extra_headers=extra) as c:
        got = answer(c.response)
        if want is None:
            assert got is None, c.response
        elif callable(want):
            assert got is not None and got[0] == "permessage-deflate", c.response
            assert want(dict(got[1])), c.response
        else:
            assert got == want, c.response
        # whatever was agreed, the connection works
        data = chatty(3000)
        if got is not None:
            cbits = int(got[1].get("client_max_window_bits", 15))
            c.send_deflated(OP_BINARY, data, deflater=rawws.Deflater(wbits=cbits))
        else:
            c.send_binary(data)
        bits = int(got[1].get("server_max_window_bits", 15)) if got else 15
        _, echoed, frames, compressed = c.recv_inflated(timeout=10,
                                                        inflater=rawws.Inflater(bits))
        assert echoed == data
        assert compressed == (got is not None), frames[:1]


MALFORMED = [
    ("empty-param-name", "permessage-deflate; =10"),
    ("unterminated-quote", 'permessage-deflate; client_max_window_bits="10'),
    ("empty-value", "permessage-deflate; server_max_window_bits="),
    ("two-tokens", "permessage-deflate foo"),
]


@pytest.mark.parametrize("offer", [r[1] for r in MALFORMED], ids=[r[0] for r in MALFORMED])
def test_malformed_offer_is_400(zs, offer):
    since = zs.log_offset()
    resp = rawws.RawWS.connect(zs.port, "/z", timeout=10, extensions=offer, refused="return")
    assert isinstance(resp, rawws.HTTPResponse) and resp.status == 400, resp
    assert resp.header("Sec-WebSocket-Accept") is None
    assert zs.wait_log(r"WSOCK1303: .*malformed Sec-WebSocket-Extensions", since=since,
                       timeout=5), zs.error_log(since)
    # where compression is off the header is not read: the upgrade goes on
    with rawws.RawWS.connect(zs.port, "/plain", timeout=10, extensions=offer) as c:
        assert answer(c.response) is None


# ==================================================================== errors
@pytest.mark.parametrize("case", ["ping", "pong", "close"])
def test_rsv1_on_a_control_frame_is_1002(zany, case):
    since = zany.log_offset()
    op, payload = {"ping": (OP_PING, b"p"), "pong": (rawws.OP_PONG, b"p"),
                   "close": (rawws.OP_CLOSE, rawws.close_payload(1000))}[case]
    with pmd_connect(zany) as c:
        assert answer(c.response) == DEFAULT_ANSWER
        c.send_frame(op, payload, rsv=RSV1)
        expect_close(zany, c, 1002, "/z", since)


@pytest.mark.parametrize("first", ["compressed", "plain"])
def test_rsv1_on_a_continuation_is_1002(zany, first):
    since = zany.log_offset()
    with pmd_connect(zany) as c:
        if first == "compressed":
            payload = rawws.Deflater().compress(chatty(4000))
            c.send_raw(rawws.deflated_frames(OP_BINARY, payload, split=2, rsv_on=(0, 1)))
        else:
            c.send_frame(OP_BINARY, b"a" * 200, fin=False)
            c.send_frame(OP_CONT, rawws.Deflater().compress(b"b" * 200), rsv=RSV1)
        expect_close(zany, c, 1002, "/z", since)


@pytest.mark.parametrize("path,offer", [("/z", None), ("/plain", CHROMIUM_OFFER),
                                        ("/z", "permessage-deflate; foo")])
def test_rsv1_without_the_extension_is_1002(zany, path, offer):
    since = zany.log_offset()
    with pmd_connect(zany, path, offer) as c:
        assert answer(c.response) is None
        c.send_deflated(OP_TEXT, b"hello hello hello hello")
        expect_close(zany, c, 1002, path, since)


CORRUPT = [
    ("reserved-block-type", b"\xff\xff\xff\xff"),
    ("stored-length-mismatch", b"\x00\x05\x00\x00\x00abcde"),
    ("distance-too-far", b"\x4a\x04\x12"),
]


@pytest.mark.parametrize("data", [r[1] for r in CORRUPT], ids=[r[0] for r in CORRUPT])
def test_corrupt_deflate_data_is_1007(zany, data):
    since = zany.log_offset()
    # the control: each corrupt payload really is what zlib refuses
    with pytest.raises(zlib.error):
        rawws.Inflater().inflate(data)
    with pmd_connect(zany) as c:
        c.send_raw(rawws.deflated_frames(OP_BINARY, data))
        expect_close(zany, c, 1007, "/z", since)


@pytest.mark.parametrize("split", [1, 3])
def test_compressed_text_inflating_to_invalid_utf8_is_1007(zany, split):
    since = zany.log_offset()
    bad = text_bytes(3000) + b"\xc3\x28" + text_bytes(3000)
    with pmd_connect(zany) as c:
        c.send_deflated(OP_TEXT, bad, split=split)
        expect_close(zany, c, 1007, "/z", since)


def test_compressed_message_over_the_limit_is_1009(zany):
    """/zbomb has WSockMaxMessageSize 1M: 1 MiB + 1 inflated is too much,
    1 MiB is not, even when its deflated form is larger (the inflated size
    counts, not the wire size)."""
    since = zany.log_offset()
    with pmd_connect(zany, "/zbomb") as c:
        data = chatty(MiB)
        c.send_deflated(OP_BINARY, data)
        _, got, _, compressed = c.recv_inflated(timeout=20)
        assert got == data and compressed
        # incompressible: the deflated form is a little larger than the
        # limit (stored blocks), the message itself is not
        data = os.urandom(MiB)
        wire = c.send_deflated(OP_BINARY, data)
        assert len(wire) > MiB
        _, got, _, _ = c.recv_inflated(timeout=20)
        assert got == data
        c.send_deflated(OP_BINARY, chatty(MiB) + b"!")
        expect_close(zany, c, 1009, "/zbomb", since)


# ---------------------------------------------------------------- the bomb
BOMB_SIZE = 200 * MiB
BOMBERS = 4             # at once, half of them fragmenting the bomb
_bomb = []


def bomb_payload():
    """200 MiB of zeros, deflated (about 200 KB), made once."""
    if not _bomb:
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        chunk = bytes(MiB)
        out = [z.compress(chunk) for _ in range(BOMB_SIZE // MiB)]
        out.append(z.flush(zlib.Z_SYNC_FLUSH))
        payload = b"".join(out)
        assert payload.endswith(rawws.PMD_TAIL)
        _bomb.append(payload[:-4])
    return _bomb[0]


class CompressedEcho(threading.Thread):
    """A well-behaved compressing client that echoes a message after
    another, a few per 10 ms, until told to stop (bounded by `limit`
    seconds); counts the right answers and records what went wrong."""

    def __init__(self, inst, path="/z", limit=120.0):
        super().__init__(daemon=True)
        self.c = pmd_connect(inst, path)
        self.stop = threading.Event()
        self.deadline = time.monotonic() + limit
        self.ok = 0
        self.errors = []

    def run(self):
        try:
            k = 0
            while not self.stop.wait(0.01) and time.monotonic() < self.deadline:
                data = chatty(2000, k)
                self.c.send_deflated(OP_TEXT, data)
                _, got, _, compressed = self.c.recv_inflated(timeout=10)
                if got != data or not compressed:
                    self.errors.append("round %d: wrong answer" % k)
                    break
                self.ok += 1
                k += 1
        except Exception as e:          # recorded, judged by the test
            self.errors.append(repr(e))
        finally:
            self.c.close_socket()

    def finish(self):
        self.stop.set()
        self.join(30)
        assert not self.is_alive(), "the echo client hangs"


def warm_up(inst, conns):
    """conns compressed connections at once, each echoing a small and a
    large compressed message: zlib's state and the message buffers have
    been used in every child before the baseline is taken."""
    opened = []
    try:
        for _ in range(conns):
            opened.append(pmd_connect(inst, "/zbomb"))
        for size in (2000, 900 * KiB):
            data = chatty(size)
            for c in opened:
                c.send_deflated(OP_BINARY, data)
            for c in opened:
                assert c.recv_inflated(timeout=30)[1] == data
    finally:
        hostile.close_all(opened)
    memory.wait_connections_gone(inst.port)


def bomb(conns, payload, splits):
    """Each connection sends the bomb as one message (split into the given
    number of frames); a send the server cuts short is fine."""
    for c, split in zip(conns, splits):
        try:
            c.send_raw(rawws.deflated_frames(OP_BINARY, payload, split=split))
        except OSError:
            pass


def test_deflate_bomb(zany):
    """200 MiB of zeros in ~200 KB of deflate, sent whole and in 64
    fragments, to /zbomb (WSockMaxMessageSize 1M): every bomber gets 1009
    without the server inflating 200 MiB or holding more than a few MiB;
    a compressing client of the same server keeps getting its echoes."""
    payload = bomb_payload()
    assert len(payload) < 400 * KiB, len(payload)
    n = BOMBERS
    warm_up(zany, hostile.warm_conns(zany.mpm, n + 1))
    watcher = CompressedEcho(zany)
    meter = hostile.Meter(zany, keep=1)
    watcher.start()
    try:
        for rnd in range(hostile.ROUNDS):
            since = zany.log_offset()
            conns = [pmd_connect(zany, "/zbomb") for _ in range(n)]
            try:
                for c in conns:
                    assert answer(c.response) == DEFAULT_ANSWER
                ok_before = watcher.ok
                bomb(conns, payload, [1, 64] * (n // 2))
                meter.poll()
                for c in conns:
                    expect_close(zany, c, 1009, "/zbomb", since)
                    meter.poll()
            finally:
                hostile.close_all(conns)
            meter.round_done(n)
            # the echo client was answered while the round was on
            deadline = time.monotonic() + 10
            while watcher.ok <= ok_before and not watcher.errors and \
                    time.monotonic() < deadline:
                meter.poll()
                time.sleep(0.05)
            assert watcher.ok > ok_before and not watcher.errors, watcher.errors
    finally:
        watcher.finish()
    assert not watcher.errors, watcher.errors
    # what a bomber may cost: the 1 MiB it inflates up to the limit, its
    # compressed frame and zlib's inflate state (measured: ~1.1 MiB each);
    # a server that inflated the bomb whole would grow by 200 MiB each
    meter.check("bombers", n, per_conn=3 * MiB // 2, slack=3 * MiB)


# =========================================================== context takeover
def test_client_context_takeover(zs):
    """/zcctx: client_no_context_takeover=off: python websockets keeps its
    compression context across messages, the server its inflate context;
    many similar messages come back right."""
    msgs = [chatty(200 + 37 * k, k % 5).decode() for k in range(300)]

    async def go():
        got = []
        async with ws_connect(zs.url("/zcctx")) as ws:
            hdr = ws.response_headers.get("Sec-WebSocket-Extensions")
            ext = ws.extensions[0]
            for m in msgs:
                await ws.send(m)
                got.append(await asyncio.wait_for(ws.recv(), 10))
            return hdr, ext.local_no_context_takeover, got
    hdr, client_resets, got = run(go(), timeout=60)
    assert rawws.parse_extensions(hdr) == [
        ("permessage-deflate", {"server_no_context_takeover": True})], hdr
    assert client_resets is False
    assert got == msgs


def test_client_context_takeover_raw(zs):
    """The same with the raw client: messages that refer back to the
    previous ones (the client's context) are inflated right, so the server
    kept its window; they are a fraction of the first on the wire."""
    with pmd_connect(zs, "/zcctx", offer=FIREFOX_OFFER) as c:
        d = rawws.Deflater(keep_context=True)
        data = chatty(3000, 1)
        wire = []
        for k in range(20):
            msg = data + b"%d" % k
            wire.append(len(c.send_deflated(OP_BINARY, msg, deflater=d)))
            _, got, _, _ = c.recv_inflated(timeout=10)
            assert got == msg, k
        assert max(wire[1:]) < wire[0] / 4, wire[:5]


def test_server_context_takeover(zs):
    """/zsctx: server_no_context_takeover=off: the server keeps its deflate
    context, so the same message repeated is much smaller on the wire
    after the first; the raw client inflates them with one context."""
    with pmd_connect(zs, "/zsctx", offer=FIREFOX_OFFER) as c:
        assert answer(c.response) == ("permessage-deflate", {"client_no_context_takeover": True})
        inf = rawws.Inflater(keep_context=True)
        data = chatty(4000, 3)
        sizes = []
        for k in range(50):
            msg = data + b"%d" % k
            c.send_binary(msg)
            _, got, frames, compressed = c.recv_inflated(timeout=10, inflater=inf)
            assert got == msg and compressed, k
            sizes.append(sum(len(f.payload) for f in frames))
        assert max(sizes[1:]) < sizes[0] / 2, sizes[:5]


# ==================================================================== config
BAD_VALUES = [
    "maybe", "on level=10", "on level=-1", "on threshold=abc", "on threshold=-5",
    "on server_no_context_takeover=yes", "on client_no_context_takeover=1",
    "on server_max_window_bits=8", "on server_max_window_bits=16",
    "on client_max_window_bits=7", "on client_max_window_bits=16", "on mem_level=0",
    "on mem_level=10", "on colour=red", "on threshold",
]


def test_configtest_refuses_bad_values(apache_factory):
    """apachectl configtest catches every bad WSockCompression value and
    accepts the full good line."""
    good = ("on level=9 threshold=4K server_no_context_takeover=off "
            "client_no_context_takeover=off server_max_window_bits=9 "
            "client_max_window_bits=8 mem_level=1")
    for value, ok in [(good, True), ("off", True)] + [(v, False) for v in BAD_VALUES]:
        inst = apache_factory(extra_conf="<Location /c>\n    WSockHandler echo\n"
                              "    WSockCompression %s\n</Location>\n" % value, start=False)
        rc, out = inst.configtest()
        assert (rc == 0) == ok, "WSockCompression %s: rc %d\n%s" % (value, rc, out)
        if not ok:
            assert "WSockCompression" in out, out
