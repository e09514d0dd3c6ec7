"""Every malformed handshake and every malformed frame, in one table, against
a real apache2 (event and prefork) with raw sockets.

HANDSHAKES: raw request bytes -> the HTTP status (and, for 426, the headers
that tell the client what would work), with a WSOCK0301 line in the log.
FRAMES: raw bytes sent after a good handshake -> the close code, then the
server ends TCP, with a WSOCK0201 line naming the code in the log.

The rules are those of RFC 6455 section 4.2 (handshake) and sections 5 and
7.4 (framing, close codes); the README's "What clients get" lists the
answers.  test_handshake.py and test_protocol.py test many of the same rules
with more detail each; this table is the one place that lists them all.
"""

import base64
import re

import pytest

import rawws
from rawws import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, close_payload

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def req(method="GET", path="/echo", version="HTTP/1.1", drop=(), **headers):
    """Raw request bytes: a valid handshake unless told otherwise.  Header
    names come from keyword names (Sec_WebSocket_Key -> Sec-WebSocket-Key);
    `drop` leaves headers out."""
    hs = {"Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
          "Sec-WebSocket-Key": RFC_KEY, "Sec-WebSocket-Version": "13"}
    hs.update({k.replace("_", "-"): v for k, v in headers.items()})
    lines = ["%s %s %s" % (method, path, version)]
    lines += ["%s: %s" % (k, v) for k, v in hs.items() if k not in drop]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def b64(n):
    return base64.b64encode(b"k" * n).decode()


# (id, raw request, expected status)
HANDSHAKES = [
    # the control row: everything right
    ("valid", req(), 101),
    # method and protocol version
    ("method-post", req("POST", Content_Length="0"), 400),
    ("method-put", req("PUT", Content_Length="0"), 400),
    ("method-delete", req("DELETE"), 400),
    ("method-head", req("HEAD"), 400),
    ("http-1.0", req(version="HTTP/1.0"), 400),
    # Upgrade
    ("upgrade-missing", req(drop=("Upgrade",)), 426),
    ("upgrade-h2c", req(Upgrade="h2c"), 400),
    ("upgrade-websocketx", req(Upgrade="websocketx"), 400),
    ("upgrade-empty", req(Upgrade=""), 400),
    # Connection
    ("connection-missing", req(drop=("Connection",)), 400),
    ("connection-keep-alive", req(Connection="keep-alive"), 400),
    ("connection-close", req(Connection="close"), 400),
    ("connection-upgradex", req(Connection="upgradex"), 400),
    # Sec-WebSocket-Key: 16 bytes of canonical base64
    ("key-missing", req(drop=("Sec-WebSocket-Key",)), 400),
    ("key-empty", req(Sec_WebSocket_Key=""), 400),
    ("key-15-bytes", req(Sec_WebSocket_Key=b64(15)), 400),
    ("key-17-bytes", req(Sec_WebSocket_Key=b64(17)), 400),
    ("key-32-bytes", req(Sec_WebSocket_Key=b64(32)), 400),
    ("key-not-base64", req(Sec_WebSocket_Key="this is not base64!!!!=="), 400),
    ("key-no-padding", req(Sec_WebSocket_Key=RFC_KEY.rstrip("=")), 400),
    ("key-non-canonical", req(Sec_WebSocket_Key=RFC_KEY[:21] + "R=="), 400),
    # Sec-WebSocket-Version: 13 only (426 names it)
    ("version-missing", req(drop=("Sec-WebSocket-Version",)), 426),
    ("version-8", req(Sec_WebSocket_Version="8"), 426),
    ("version-12", req(Sec_WebSocket_Version="12"), 426),
    ("version-14", req(Sec_WebSocket_Version="14"), 426),
    ("version-junk", req(Sec_WebSocket_Version="thirteen"), 426),
    # a plain browser request to the endpoint
    ("plain-get", req(drop=("Upgrade", "Connection", "Sec-WebSocket-Key",
                            "Sec-WebSocket-Version")), 426),
    # subprotocol required (WSockRequireProtocol On) and none acceptable
    ("protocol-required-none", req(path="/proto/strict"), 400),
    ("protocol-required-unknown", req(path="/proto/strict", Sec_WebSocket_Protocol="mqtt"), 400),
    # Apache's own limits apply before mod_wsock sees the request
    ("header-too-long", req(X_Junk="x" * 9000), 400),
]
# rows answered by httpd itself, before mod_wsock runs (no WSOCK0301 line)
ANSWERED_BY_HTTPD = {"header-too-long"}


def cp(code, reason=b""):
    return close_payload(code, reason)


F = rawws.build_frame

# (id, path, raw bytes after the handshake, expected close code)
FRAMES = [
    # masking (client frames must be masked)
    ("unmasked-text", "/echo", F(OP_TEXT, b"hello", mask=False), 1002),
    ("unmasked-ping", "/echo", F(OP_PING, b"", mask=False), 1002),
    # reserved bits (no extension is ever negotiated)
    ("rsv1", "/echo", F(OP_TEXT, b"x", rsv=0b100), 1002),
    ("rsv2", "/echo", F(OP_BINARY, b"x", rsv=0b010), 1002),
    ("rsv3", "/echo", F(OP_TEXT, b"x", rsv=0b001), 1002),
    ("rsv-on-close", "/echo", F(OP_CLOSE, cp(1000), rsv=0b100), 1002),
] + [
    # reserved opcodes, data (3-7) and control (B-F)
    ("opcode-%X" % op, "/echo", F(op, b"x"), 1002) for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD,
                                                               0xE, 0xF)
] + [
    # fragmentation
    ("continuation-without-start", "/echo", F(OP_CONT, b"orphan"), 1002),
    ("text-mid-message", "/echo", F(OP_TEXT, b"a", fin=False) + F(OP_TEXT, b"b"), 1002),
    ("binary-mid-message", "/echo", F(OP_TEXT, b"a", fin=False) + F(OP_BINARY, b"b"), 1002),
    ("ping-fragmented", "/echo", F(OP_PING, b"p", fin=False), 1002),
    ("pong-fragmented", "/echo", F(OP_PONG, b"p", fin=False), 1002),
    ("close-fragmented", "/echo", F(OP_CLOSE, cp(1000), fin=False), 1002),
    # control frames longer than 125 bytes
    ("ping-126", "/echo", F(OP_PING, b"p" * 126), 1002),
    ("pong-126", "/echo", F(OP_PONG, b"p" * 126), 1002),
    ("close-126", "/echo", F(OP_CLOSE, cp(1000, b"r" * 124)), 1002),
    ("ping-len16", "/echo", F(OP_PING, b"p" * 200), 1002),
    # lengths: minimal encoding only, 64-bit top bit clear
    ("len16-for-5", "/echo", F(OP_TEXT, b"hello", length_encoding=16), 1002),
    ("len16-for-125", "/echo", F(OP_BINARY, b"b" * 125, length_encoding=16), 1002),
    ("len64-for-200", "/echo", F(OP_BINARY, b"b" * 200, length_encoding=64), 1002),
    ("len64-for-65535", "/echo", F(OP_BINARY, b"b" * 65535, length_encoding=64), 1002),
    ("len64-top-bit", "/echo", F(OP_BINARY, b"", length_encoding=64, length=1, top_bit=True),
     1002),
    # text must be UTF-8 (1007), decided at the fragment that proves it
    ("utf8-ff", "/echo", F(OP_TEXT, b"ok \xff"), 1007),
    ("utf8-lone-continuation", "/echo", F(OP_TEXT, b"\x80"), 1007),
    ("utf8-overlong", "/echo", F(OP_TEXT, b"\xc0\xaf"), 1007),
    ("utf8-surrogate", "/echo", F(OP_TEXT, b"\xed\xa0\x80"), 1007),
    ("utf8-above-10ffff", "/echo", F(OP_TEXT, b"\xf4\x90\x80\x80"), 1007),
    ("utf8-truncated", "/echo", F(OP_TEXT, b"euro \xe2\x82"), 1007),
    ("utf8-bad-first-fragment", "/echo", F(OP_TEXT, b"\xff", fin=False), 1007),
    ("utf8-truncated-last-fragment", "/echo",
     F(OP_TEXT, b"euro ", fin=False) + F(OP_CONT, b"\xe2\x82"), 1007),
    # close frames: payload of 1 byte, codes no peer may send, reason not UTF-8
    ("close-1-byte", "/echo", F(OP_CLOSE, b"\x03"), 1002),
] + [
    ("close-code-%d" % code, "/echo", F(OP_CLOSE, cp(code)), 1002)
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535)
] + [
    ("close-reason-not-utf8", "/echo", F(OP_CLOSE, cp(1000, b"bad \xff")), 1007),
    # WSockMaxMessageSize (1000 on /small): 1009, from the header alone
    ("too-big", "/small", F(OP_BINARY, b"x" * 1001), 1009),
    ("too-big-text", "/small", F(OP_TEXT, b"x" * 1001), 1009),
    ("too-big-header-only", "/small", F(OP_BINARY, b"", length=1 << 40)[:14], 1009),
    ("too-big-fragments", "/small",
     F(OP_BINARY, b"a" * 600, fin=False) + F(OP_CONT, b"", length=600)[:8], 1009),
]


def _ids(rows):
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate row ids"
    return ids


@pytest.mark.parametrize("row,raw,status", HANDSHAKES, ids=_ids(HANDSHAKES))
def test_handshake_row(server, row, raw, status):
    since = server.log_offset()
    raw = raw.replace(b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1:%d\r\n" % server.port)
    resp = rawws.http_exchange(server.port, raw)
    assert resp.status == status, "%r" % resp
    if status == 101:
        assert resp.header("Sec-WebSocket-Accept") == rawws.accept_for(RFC_KEY)
        return
    assert resp.header("Sec-WebSocket-Accept") is None
    if status == 426:
        assert resp.header("Sec-WebSocket-Version") == "13", "%r" % resp
        assert (resp.header("Upgrade") or "").lower() == "websocket", "%r" % resp
    if row not in ANSWERED_BY_HTTPD:
        assert server.wait_log(r"WSOCK0301: WebSocket handshake for /\S* refused with %d"
                               % status, since=since, timeout=5), server.error_log(since)


@pytest.mark.parametrize("path,raw,code", [r[1:] for r in FRAMES], ids=_ids(FRAMES))
def test_frame_row(server, path, raw, code):
    since = server.log_offset()
    with rawws.RawWS.connect(server.port, path) as c:
        c.send_raw(raw)
        got, reason, frame, skipped = c.recv_close(timeout=10)
        assert got == code, "close %r (%r), expected %d" % (got, reason, code)
        assert not frame.masked and frame.fin and frame.rsv == 0
        assert not [f for f in skipped if f.opcode in (OP_TEXT, OP_BINARY, OP_CONT)], skipped
        assert c.wait_eof(10), "TCP still open after close %d" % code
    assert server.wait_log(r"WSOCK0201: closing WebSocket %s with %d: \S"
                           % (re.escape(path), code), since=since, timeout=5), \
        server.error_log(since)
