"""The opening handshake: statuses, Sec-WebSocket-Accept, subprotocols, extensions."""

import asyncio
import base64

import pytest
import websockets

import rawws
from conftest import run


def exchange(server, path="/echo", **kw):
    req = rawws.handshake_request(path, host="127.0.0.1:%d" % server.port, **kw)
    return rawws.http_exchange(server.port, req)


KEY15 = base64.b64encode(b"0123456789abcde").decode()      # 15 bytes
KEY17 = base64.b64encode(b"0123456789abcdefg").decode()    # 17 bytes

# (id, handshake_request kwargs, expected status)
BAD_HANDSHAKES = [
    ("plain-get", dict(omit=("Upgrade", "Connection", "Sec-WebSocket-Key",
                             "Sec-WebSocket-Version")), 426),
    ("no-upgrade-header", dict(omit=("Upgrade",)), 426),
    ("version-missing", dict(omit=("Sec-WebSocket-Version",)), 426),
    ("version-8", dict(version="8"), 426),
    ("version-14", dict(version="14"), 426),
    ("version-junk", dict(version="thirteen"), 426),
    ("method-post", dict(method="POST", extra_headers=[("Content-Length", "0")]), 400),
    ("method-put", dict(method="PUT", extra_headers=[("Content-Length", "0")]), 400),
    ("method-head", dict(method="HEAD"), 400),
    ("http-1.0", dict(http_version="HTTP/1.0"), 400),
    ("upgrade-not-websocket", dict(upgrade="h2c"), 400),
    ("connection-missing", dict(omit=("Connection",)), 400),
    ("connection-keep-alive", dict(connection="keep-alive"), 400),
    ("connection-upgradex", dict(connection="upgradex"), 400),
    ("key-missing", dict(omit=("Sec-WebSocket-Key",)), 400),
    ("key-empty", dict(key=""), 400),
    ("key-not-base64", dict(key="this is not base64!!!!=="), 400),
    ("key-15-bytes", dict(key=KEY15), 400),
    ("key-17-bytes", dict(key=KEY17), 400),
]


@pytest.mark.parametrize("kw,status", [b[1:] for b in BAD_HANDSHAKES],
                         ids=[b[0] for b in BAD_HANDSHAKES])
def test_bad_handshake_status(server, kw, status):
    resp = exchange(server, **kw)
    assert resp.status == status, "%r" % resp
    assert resp.header("Sec-WebSocket-Accept") is None
    if status == 426 and "Upgrade" not in kw.get("omit", ()):
        # a version problem: tell the client which version we speak
        assert resp.header("Sec-WebSocket-Version") == "13", "%r" % resp


@pytest.mark.parametrize("kw", [
    dict(),
    dict(connection="keep-alive, Upgrade"),
    dict(connection="UPGRADE"),
    dict(connection="Upgrade ,  keep-alive"),
    dict(upgrade="WebSocket"),
], ids=["plain", "conn-token-list", "conn-uppercase", "conn-spaces", "upgrade-mixed-case"])
def test_good_handshake(server, kw):
    key = rawws.make_key()
    resp = exchange(server, key=key, **kw)
    assert resp.status == 101, "%r" % resp
    assert resp.header("Sec-WebSocket-Accept") == rawws.accept_for(key)
    assert (resp.header("Upgrade") or "").lower() == "websocket"
    assert "upgrade" in (resp.header("Connection") or "").lower()
    assert resp.header("Sec-WebSocket-Protocol") is None
    assert resp.header("Sec-WebSocket-Extensions") is None


def test_accept_known_vector(server):
    """RFC 6455 section 1.3 example key."""
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    resp = exchange(server, key=key)
    assert resp.status == 101
    assert resp.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("ext", [
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate, x-webkit-deflate-frame",
    "x-unknown-extension; foo=1",
])
def test_extensions_never_answered(server, ext):
    resp = exchange(server, extensions=ext)
    assert resp.status == 101
    assert resp.header("Sec-WebSocket-Extensions") is None
    assert resp.header_all("Sec-WebSocket-Extensions") == []


def test_location_without_handler_is_not_upgraded(server):
    resp = exchange(server, path="/not-a-websocket")
    assert resp.status != 101
    assert resp.header("Sec-WebSocket-Accept") is None


def test_upgrade_then_echo_on_same_socket(server):
    with rawws.RawWS.connect(server.port, "/echo") as c:
        c.send_text("after handshake")
        op, data, _ = c.recv_message()
        assert (op, data) == (rawws.OP_TEXT, b"after handshake")


# ----------------------------------------------------------- subprotocols
# /proto allows: chat superchat v2.json ; /proto/strict adds WSockRequireProtocol On
@pytest.mark.parametrize("path,offer,expect_status,expect_proto", [
    ("/proto", "superchat, chat", 101, "superchat"),
    ("/proto", "chat, superchat", 101, "chat"),
    ("/proto", "foo, v2.json, chat", 101, "v2.json"),
    ("/proto", "foo,chat", 101, "chat"),
    ("/proto", "foo", 101, None),
    ("/proto", None, 101, None),
    ("/proto", "Chat", 101, None),             # tokens compare exactly
    ("/echo", "chat", 101, None),              # no WSockProtocols here
    ("/proto/strict", "foo, superchat", 101, "superchat"),
    ("/proto/strict", "foo", 400, None),
    ("/proto/strict", None, 400, None),
], ids=["first-offered-wins", "first-offered-wins-2", "skip-unknown", "no-space",
        "no-match", "no-offer", "case-sensitive", "none-configured",
        "strict-match", "strict-no-match", "strict-no-offer"])
def test_subprotocol_selection(server, path, offer, expect_status, expect_proto):
    resp = exchange(server, path=path, protocols=offer)
    assert resp.status == expect_status, "%r" % resp
    assert resp.header("Sec-WebSocket-Protocol") == expect_proto
    assert len(resp.header_all("Sec-WebSocket-Protocol")) <= 1


def test_subprotocol_offer_in_two_headers(server):
    req = rawws.handshake_request("/proto", host="127.0.0.1:%d" % server.port,
                                  extra_headers=[("Sec-WebSocket-Protocol", "foo"),
                                                 ("Sec-WebSocket-Protocol", "v2.json, chat")])
    resp = rawws.http_exchange(server.port, req)
    assert resp.status == 101
    assert resp.header("Sec-WebSocket-Protocol") == "v2.json"


def test_subprotocol_with_websockets_client(server):
    async def go():
        async with websockets.connect(server.url("/proto"), subprotocols=["bogus", "superchat",
                                                                          "chat"],
                                      ping_interval=None, open_timeout=10) as ws:
            await ws.send("hi")
            return ws.subprotocol, await asyncio.wait_for(ws.recv(), 10)
    assert run(go()) == ("superchat", "hi")


def test_required_protocol_refused_with_websockets_client(server):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            async with websockets.connect(server.url("/proto/strict"), subprotocols=["nope"],
                                          ping_interval=None, open_timeout=10):
                pass
        return ei.value.status_code
    assert run(go()) == 400


def test_no_stray_bytes_after_101(server):
    """Nothing follows the 101 head until the client speaks (no body, no chunk)."""
    with rawws.RawWS.connect(server.port, "/echo") as c:
        assert c.buf == b""
        assert c.nothing_pending(0.3)
        assert c.response.header("Content-Length") in (None, "0")
        assert c.response.header("Transfer-Encoding") is None


def test_frame_pipelined_with_handshake(server):
    """A client frame sent in the same write as the handshake is not lost."""
    import socket
    key = rawws.make_key()
    req = rawws.handshake_request("/echo", host="127.0.0.1:%d" % server.port, key=key)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(req + rawws.build_frame(rawws.OP_TEXT, b"early bird"))
        resp, rest = rawws.read_http_response(s)
        assert resp.status == 101
        c = rawws.RawWS(s, resp, rest)
        op, data, _ = c.recv_message(timeout=5)
        assert (op, data) == (rawws.OP_TEXT, b"early bird")


def test_many_frames_pipelined_with_handshake(server):
    """Frames worth several socket reads, written with the handshake: the
    ones the server read along with the request are kept when the
    connection changes hands (event MPM: the loop's own input filter)."""
    import socket
    key = rawws.make_key()
    req = rawws.handshake_request("/echo", host="127.0.0.1:%d" % server.port, key=key)
    msgs = [bytes([65 + i]) * (9000 + i) for i in range(5)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(req + b"".join(rawws.build_frame(rawws.OP_BINARY, m) for m in msgs))
        resp, rest = rawws.read_http_response(s)
        assert resp.status == 101
        c = rawws.RawWS(s, resp, rest)
        for m in msgs:
            op, data, _ = c.recv_message(timeout=5)
            assert (op, data) == (rawws.OP_BINARY, m)


def test_upgrade_after_keepalive_request(server):
    """An ordinary keep-alive request first, then the upgrade on the same socket."""
    import socket
    key = rawws.make_key()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        resp, rest = rawws.read_http_response(s)
        assert resp.status == 200 and resp.body == b"ok\n" and rest == b""
        s.sendall(rawws.handshake_request("/echo", host="127.0.0.1:%d" % server.port, key=key))
        resp, rest = rawws.read_http_response(s)
        assert resp.status == 101, resp
        assert resp.header("Sec-WebSocket-Accept") == rawws.accept_for(key)
        c = rawws.RawWS(s, resp, rest)
        c.send_text("second request")
        assert c.recv_message(timeout=5)[1] == b"second request"
