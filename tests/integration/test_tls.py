"""wss:// — the module's I/O goes through Apache's filters, so mod_ssl works
unchanged: echo of small and large messages, many frames in one TLS burst
(mod_ssl hands them over one record at a time and the module must drain
it), a fragmented message, and the close handshake, over TLS 1.2+ with a
self-signed certificate made by openssl for the test.
"""

import asyncio
import os
import socket

import pytest
import websockets

import rawws



@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    from conftest import new_instance, serve, tls_conf

    conf, cert = tls_conf(str(tmp_path_factory.mktemp("tls")))
    conf += """
<Location /echo>
    WSockHandler echo
    WSockMaxMessageSize 4M
</Location>
"""
    inst = new_instance("event", conf)
    inst.cert = cert
    yield from serve(inst)


def client_ctx(cert):
    from conftest import client_tls
    return client_tls(cert)


def wss(server, path="/echo"):
    return "wss://127.0.0.1:%d%s" % (server.port, path)


@pytest.mark.parametrize("size", [0, 125, 70000, 3 * 1024 * 1024])
def test_wss_echo_sizes(tls_server, size):
    async def run():
        async with websockets.connect(wss(tls_server), ssl=client_ctx(tls_server.cert),
                                      max_size=None, open_timeout=10) as ws:
            text = "é" * (size // 2)
            blob = os.urandom(size)
            await ws.send(text)
            assert await asyncio.wait_for(ws.recv(), 20) == text
            await ws.send(blob)
            assert await asyncio.wait_for(ws.recv(), 20) == blob
            await ws.close()
            assert ws.close_code == 1000

    asyncio.run(run())


def test_wss_burst_of_small_frames_all_answered(tls_server):
    """200 masked frames written at once arrive as many TLS records in one
    read; every one must be echoed without the client sending more."""
    raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    sock = client_ctx(tls_server.cert).wrap_socket(raw, server_hostname="127.0.0.1")
    sock.sendall(rawws.handshake_request("/echo"))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)        # byte by byte: nothing past the 101 is taken
        assert chunk, "no handshake answer"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101")
    want = b"".join(b"m%03d" % i for i in range(200))
    # Each sendall on an SSL socket is its own TLS record: 200 records.
    for i in range(200):
        sock.sendall(rawws.build_frame(0x1, b"m%03d" % i))
    got = bytearray()
    need = 200 * (2 + 4)
    while len(got) < need:
        chunk = sock.recv(65536)
        assert chunk, "server closed early"
        got += chunk
    payloads = b"".join(bytes(got[i + 2:i + 6]) for i in range(0, need, 6))
    assert payloads == want
    sock.close()


def test_wss_fragmented_message_and_close_code(tls_server):
    async def run():
        async with websockets.connect(wss(tls_server), ssl=client_ctx(tls_server.cert),
                                      open_timeout=10) as ws:
            await ws.send(["frag", "mented ", "über TLS"])
            assert await asyncio.wait_for(ws.recv(), 10) == "fragmented über TLS"
            await ws.close(code=4001, reason="bye")
            assert ws.close_code == 4001

    asyncio.run(run())
