"""WebSockets over HTTP/2 (RFC 8441) are not served yet: with mod_http2's
`H2WebSockets on`, a client's extended CONNECT reaches mod_wsock as an
internal upgrade on an HTTP/2 stream, and is refused with 501, a body that
says why, and a log line (WSOCK1415); the server warned about it at start
(WSOCK1414).  The same location still answers HTTP/1.1 with 101.

The client is Debian's python3-h2, over TLS with ALPN h2 (what browsers
use) and over h2c with prior knowledge.
"""

import asyncio
import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
import websockets

from apache_instance import APACHE_MODULES
from conftest import COMMON_CONF, client_tls, run, tls_conf

H2_CONF = """\
LoadModule http2_module {mods}/mod_http2.so
Protocols h2 h2c http/1.1
H2WebSockets on
""".format(mods=APACHE_MODULES) + COMMON_CONF


@pytest.fixture(params=["h2c", "h2-tls"])
def h2_server(request, apache_factory, tmp_path):
    """An event server with H2WebSockets on; .tls: a client SSL context
    (ALPN h2), or None for h2c."""
    if request.param == "h2c":
        inst = apache_factory("event", extra_conf=H2_CONF)
        inst.tls = None
        return inst
    conf, cert = tls_conf(str(tmp_path))
    inst = apache_factory("event", extra_conf=conf + H2_CONF)
    inst.scheme = "wss"
    inst.tls = client_tls(cert)
    inst.tls.set_alpn_protocols(["h2"])
    inst.cert = cert
    return inst


def h2_socket(inst, timeout):
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=timeout)
    if inst.tls is None:
        return s
    t = inst.tls.wrap_socket(s, server_hostname="127.0.0.1")
    assert t.selected_alpn_protocol() == "h2"
    return t


def extended_connect(inst, path, timeout=10.0):
    """Open HTTP/2, wait for the server's SETTINGS, send an RFC 8441
    extended CONNECT for `path`; return (server allowed extended CONNECT,
    status, body)."""
    port = inst.port
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    deadline = time.monotonic() + timeout
    with h2_socket(inst, timeout) as s:
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        allowed, sent, status, body, ended = None, False, None, b"", False
        while not ended:
            if time.monotonic() > deadline:
                raise TimeoutError("no complete answer within %.0fs" % timeout)
            data = s.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    cs = ev.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                    if cs is not None:
                        allowed = cs.new_value
                elif isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended = True
            if not sent and allowed is not None:
                conn.send_headers(1, [
                    (":method", "CONNECT"), (":protocol", "websocket"),
                    (":scheme", "http" if inst.tls is None else "https"),
                    (":path", path), (":authority", "127.0.0.1:%d" % port),
                    ("sec-websocket-version", "13"), ("origin", "%s://127.0.0.1:%d" % ("http" if inst.tls is None else "https", port)),
                ])
                sent = True
            s.sendall(conn.data_to_send())
        return allowed, status, body


def test_websocket_over_http2_is_refused_with_501(h2_server):
    inst = h2_server
    # warned once at start, naming the directive
    assert inst.error_log().count("WSOCK1414") == 1, inst.error_log()[-2000:]
    since = inst.log_offset()

    allowed, status, body = extended_connect(inst, "/echo")
    assert allowed == 1                 # mod_http2 offered RFC 8441
    assert status == 501, (status, body)
    assert b"WebSockets over HTTP/2" in body and b"HTTP/1.1" in body
    assert inst.wait_log(r"WSOCK1415: WebSocket handshake for /echo over HTTP/2 refused "
                         r"with 501", since=since, timeout=5)

    # HTTP/1.1 on the same server and location still upgrades.
    async def echo():
        tls = client_tls(inst.cert) if inst.tls else None     # ALPN http/1.1
        async with websockets.connect(inst.url("/echo"), ssl=tls, open_timeout=10) as ws:
            await ws.send("h1")
            return await asyncio.wait_for(ws.recv(), 10)

    assert run(echo()) == "h1"


def test_plain_http2_request_to_a_websocket_location_is_not_501(apache_factory):
    # Not a WebSocket attempt (no extended CONNECT): the usual answer of a
    # WebSocket location to a plain GET, not the HTTP/2 refusal.
    inst = apache_factory("event", extra_conf=H2_CONF)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with socket.create_connection(("127.0.0.1", inst.port), timeout=10) as s:
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "/echo"),
                              (":authority", "127.0.0.1:%d" % inst.port)], end_stream=True)
        s.sendall(conn.data_to_send())
        status, deadline = None, time.monotonic() + 10
        while status is None and time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[b":status"])
            s.sendall(conn.data_to_send())
    assert status is not None and status != 501, status
    assert "WSOCK1415" not in inst.error_log()
