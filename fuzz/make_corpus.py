#!/usr/bin/python3
"""Writes the seed corpus of the fuzz harnesses into fuzz/corpus/.

frame_parser/: the example frames of RFC 6455 section 5.7, then frames that
break each framing rule, each prefixed with the harness's 3 settings bytes
(settings, then 2 bytes seeding the chunking; see fuzz_frame_parser.c).
handshake/: the opening handshake of RFC 6455 section 1.3 and variants that
break each rule of section 4.2.
pmd/: Sec-WebSocket-Extensions values (the offers of real clients and of
Autobahn's section 13, then offers declined and headers broken for each
rule), each prefixed with the harness's policy byte (see fuzz_pmd.c).
inflate/: permessage-deflate payloads (RFC 7692 section 7.2.3's examples,
zlib's raw deflate at several windows, a deflate bomb, broken streams), each
prefixed with the harness's 4 settings bytes (see fuzz_inflate.c).

Deterministic (fixed mask keys), so rerunning it changes nothing; the files
are committed.  Frames are built by tests/integration/rawws.py.
"""

import base64
import os
import shutil
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

from rawws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: E402
                   build_frame, close_payload)

KEY = b"\x37\xfa\x21\x3d"        # the RFC's example masking key

SERVER, CLIENT = 0x00, 0x01       # settings bit 0: the parser's role
MAX_125, MAX_1000, MAX_70000 = 0x02, 0x04, 0x06
RSV1_OK = 0x08


def F(op, payload=b"", **kw):
    """A client frame (masked with the fixed key) unless mask=False."""
    kw.setdefault("mask_key", KEY)
    return build_frame(op, payload, **kw)


def U(op, payload=b"", **kw):
    """A server frame (unmasked)."""
    return build_frame(op, payload, mask=False, **kw)


def cp(code, reason=b""):
    return close_payload(code, reason)


FRAMES = {
    # RFC 6455 section 5.7, exactly as printed there
    "rfc-unmasked-hello": (CLIENT, bytes.fromhex("810548656c6c6f")),
    "rfc-masked-hello": (SERVER, bytes.fromhex("818537fa213d7f9f4d5158")),
    "rfc-fragmented-hello": (CLIENT, bytes.fromhex("010348656c8002 6c6f".replace(" ", ""))),
    "rfc-unmasked-ping": (CLIENT, bytes.fromhex("890548656c6c6f")),
    "rfc-masked-pong": (SERVER, bytes.fromhex("8a8537fa213d7f9f4d5158")),
    "rfc-256-bytes-binary": (CLIENT, bytes.fromhex("827e0100") + bytes(range(256))),
    "rfc-64k-binary": (CLIENT | MAX_70000,
                       bytes.fromhex("827f0000000000010000") + bytes(65536)),
    # valid client streams
    "text-and-binary": (SERVER, F(OP_TEXT, b"hello") + F(OP_BINARY, b"\x00\xff")),
    "fragments-with-ping": (SERVER, F(OP_TEXT, b"Hel", fin=False) + F(OP_PING, b"p")
                            + F(OP_CONT, b"", fin=False) + F(OP_CONT, b"lo")),
    "utf8-split-across-fragments": (SERVER, F(OP_TEXT, b"\xe2", fin=False)
                                    + F(OP_CONT, b"\x82", fin=False) + F(OP_CONT, b"\xac")),
    "close-with-reason": (SERVER, F(OP_CLOSE, cp(1000, "bye \u2713"))),
    "close-empty": (SERVER, F(OP_CLOSE, b"")),
    "pong-125": (SERVER, F(OP_PONG, b"p" * 125)),
    "len16-200": (SERVER | MAX_1000, F(OP_BINARY, b"b" * 200)),
    "rsv1-allowed": (SERVER | RSV1_OK, F(OP_TEXT, b"x", rsv=0b100)),
    "empty-text": (SERVER, F(OP_TEXT, b"")),
    # each rule broken once
    "unmasked-in-server-role": (SERVER, U(OP_TEXT, b"hello")),
    "masked-in-client-role": (CLIENT, F(OP_TEXT, b"hello")),
    "rsv2": (SERVER, F(OP_TEXT, b"x", rsv=0b010)),
    "opcode-3": (SERVER, F(0x3, b"x")),
    "opcode-b": (SERVER, F(0xB, b"x")),
    "continuation-without-start": (SERVER, F(OP_CONT, b"orphan")),
    "text-inside-fragmented": (SERVER, F(OP_TEXT, b"a", fin=False) + F(OP_TEXT, b"b")),
    "fragmented-ping": (SERVER, F(OP_PING, b"p", fin=False)),
    "ping-126": (SERVER, F(OP_PING, b"p" * 126)),
    "len16-for-5": (SERVER, F(OP_TEXT, b"hello", length_encoding=16)),
    "len64-for-200": (SERVER, F(OP_BINARY, b"b" * 200, length_encoding=64)),
    "len64-top-bit": (SERVER, F(OP_BINARY, b"", length_encoding=64, length=1, top_bit=True)),
    "utf8-invalid": (SERVER, F(OP_TEXT, b"ok \xff")),
    "utf8-truncated": (SERVER, F(OP_TEXT, b"\xe2\x82")),
    "close-1-byte": (SERVER, F(OP_CLOSE, b"\x03")),
    "close-code-1005": (SERVER, F(OP_CLOSE, cp(1005))),
    "close-reason-not-utf8": (SERVER, F(OP_CLOSE, cp(1000, b"\xff"))),
    "too-big": (SERVER | MAX_125, F(OP_BINARY, b"x" * 126)),
    "too-big-fragmented": (SERVER | MAX_125, F(OP_BINARY, b"x" * 100, fin=False)
                           + F(OP_CONT, b"x" * 100)),
    "header-only-huge": (SERVER, F(OP_BINARY, b"", length=1 << 40)),
}


def handshake(method="GET", path="/chat", version="HTTP/1.1", headers=None, eol="\r\n",
              drop=()):
    base = [("Host", "server.example.com"), ("Upgrade", "websocket"),
            ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Origin", "http://example.com"), ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Version", "13")]
    hs = [(n, v) for n, v in base if n not in drop]
    override = dict(headers or ())
    hs = [(n, override.pop(n, v)) for n, v in hs] + list(override.items())
    lines = ["%s %s %s" % (method, path, version)] + ["%s: %s" % h for h in hs if h[1] is not None]
    return (eol.join(lines) + eol + eol).encode("latin-1")


K15 = base64.b64encode(b"0123456789abcde").decode()
HANDSHAKES = {
    "rfc-example": handshake(),
    "lf-only": handshake(eol="\n"),
    "no-protocol": handshake(drop=("Sec-WebSocket-Protocol",)),
    "protocol-unknown": handshake(headers={"Sec-WebSocket-Protocol": "mqtt"}),
    "connection-list": handshake(headers={"Connection": "keep-alive, Upgrade"}),
    "upgrade-mixed-case": handshake(headers={"Upgrade": "WebSocket"}),
    "repeated-connection": handshake().replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
    "post": handshake(method="POST"),
    "http-1.0": handshake(version="HTTP/1.0"),
    "no-upgrade": handshake(drop=("Upgrade",)),
    "upgrade-h2c": handshake(headers={"Upgrade": "h2c"}),
    "connection-keep-alive": handshake(headers={"Connection": "keep-alive"}),
    "key-15-bytes": handshake(headers={"Sec-WebSocket-Key": K15}),
    "key-not-base64": handshake(headers={"Sec-WebSocket-Key": "this is not base64!!!!=="}),
    "key-missing": handshake(drop=("Sec-WebSocket-Key",)),
    "version-8": handshake(headers={"Sec-WebSocket-Version": "8"}),
    "version-missing": handshake(drop=("Sec-WebSocket-Version",)),
}


# the first byte of a fuzz_pmd input: the location's policy
POL_DEFAULT = 0x03        # both no_context_takeover, windows 15 (the defaults)
POL_OPEN = 0x00           # asks nothing
POL_SMALL = 0xb4          # server window 10, client window 10
POL_MIN = 0xff            # both no_context_takeover, server window 9, client 8
CMWB = "permessage-deflate; client_max_window_bits"
PMD = {
    # what clients send
    "chromium": (POL_DEFAULT, CMWB),          # Node ws and Python websockets too
    "chromium-small": (POL_SMALL, CMWB),
    "firefox": (POL_DEFAULT, "permessage-deflate"),
    "firefox-min": (POL_MIN, "permessage-deflate"),
    # Autobahn section 13
    "ab-client-nct": (POL_OPEN, CMWB + "; client_no_context_takeover"),
    "ab-cmwb-8": (POL_OPEN, "permessage-deflate; client_max_window_bits=8"),
    "ab-smwb-8": (POL_OPEN, "permessage-deflate; client_max_window_bits; server_max_window_bits=8"),
    "ab-smwb-15-quoted": (POL_MIN, 'permessage-deflate; server_max_window_bits="15"'),
    "ab-all": (POL_OPEN, "permessage-deflate; server_no_context_takeover; "
                         "client_no_context_takeover; server_max_window_bits=10; "
                         "client_max_window_bits=9"),
    "ab-fallback": (POL_OPEN, "permessage-deflate; client_max_window_bits=8, permessage-deflate"),
    "other-extensions": (POL_SMALL, 'x-webkit-deflate-frame, foo; a="b\\c"; d, ' + CMWB),
    "case-and-whitespace": (POL_OPEN, " , PerMessage-Deflate ;\tClient_Max_Window_Bits = "
                                      '"1\\1" ,, '),
    # declined, each rule once
    "decline-unknown": (POL_OPEN, "permessage-deflate; foo, permessage-deflate"),
    "decline-repeated": (POL_OPEN, "permessage-deflate; server_no_context_takeover; "
                                   "server_no_context_takeover"),
    "decline-nct-value": (POL_OPEN, "permessage-deflate; client_no_context_takeover=1"),
    "decline-smwb-no-value": (POL_OPEN, "permessage-deflate; server_max_window_bits"),
    "decline-smwb-7": (POL_OPEN, "permessage-deflate; server_max_window_bits=7"),
    "decline-cmwb-leading-zero": (POL_OPEN, "permessage-deflate; client_max_window_bits=08"),
    "none": (POL_DEFAULT, "x-webkit-deflate-frame"),
    # malformed, each rule once
    "bad-empty-param": (POL_DEFAULT, "permessage-deflate;"),
    "bad-no-name": (POL_DEFAULT, "; server_no_context_takeover"),
    "bad-equals-no-value": (POL_DEFAULT, "permessage-deflate; server_max_window_bits="),
    "bad-unterminated": (POL_DEFAULT, 'permessage-deflate; server_max_window_bits="10'),
    "bad-quoted-not-token": (POL_DEFAULT, 'permessage-deflate; x="a b"'),
    "bad-space-in-name": (POL_DEFAULT, "permessage deflate"),
    "bad-after-accepted": (POL_DEFAULT, "permessage-deflate, foo;"),
}


def deflate_settings(window=15, limit=1000, keep=False, level=1, rt_mem=8, rt_window=15):
    """The 4 settings bytes of fuzz_inflate.c."""
    b0 = ((window - 8) | ([64, 1000, 20000, 1 << 20].index(limit) << 3) | (int(keep) << 5)
          | ([0, 1, 6, 9].index(level) << 6))
    b1 = next(b for b in range(256) if b % 9 == rt_mem - 1 and (b >> 4) % 7 == rt_window - 9)
    return bytes([b0, b1, 0x5e, 0xed])


def pmd_messages(texts, window=15, level=6, keep=True):
    """Payloads as an RFC 7692 sender writes them (sync flush, tail removed)."""
    out = []
    c = zlib.compressobj(level, zlib.DEFLATED, -window)
    for t in texts:
        if not keep:
            c = zlib.compressobj(level, zlib.DEFLATED, -window)
        data = c.compress(t) + c.flush(zlib.Z_SYNC_FLUSH)
        out.append(data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data)
    return out


def bomb(size):
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    data = b"".join(c.compress(bytes(1 << 16)) for _ in range(size >> 16))
    return (data + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


CHAT = [b'{"room":"lobby","user":"alice","text":"hello world"}',
        b'{"room":"lobby","user":"bob","text":"hello alice"}',
        b'{"room":"lobby","user":"alice","text":"the quick brown fox"}']
SEP = b"MSG|"
INFLATE = {
    "rfc-hello": (deflate_settings(), bytes.fromhex("f248cdc9c90700")),
    "rfc-shared-window": (deflate_settings(keep=True),
                          bytes.fromhex("f248cdc9c90700") + SEP + bytes.fromhex("f200110000")),
    "rfc-bfinal": (deflate_settings(), bytes.fromhex("f348cdc9c9070000")),
    "rfc-two-blocks": (deflate_settings(), bytes.fromhex("f248050000" "00ffffcac9c90700")),
    "rfc-stored": (deflate_settings(), bytes.fromhex("000500faff48656c6c6f00")),
    "rfc-empty": (deflate_settings(), b"\x00" + SEP + b"" + SEP + b"\x00"),
    "chat-takeover": (deflate_settings(keep=True, level=6), SEP.join(pmd_messages(CHAT))),
    "chat-no-takeover": (deflate_settings(limit=64, level=0, rt_mem=1, rt_window=9),
                         SEP.join(pmd_messages(CHAT, keep=False))),
    "chat-window-9": (deflate_settings(window=9, keep=True, level=9, rt_mem=9, rt_window=9),
                      SEP.join(pmd_messages(CHAT * 3, window=9))),
    "bomb-10m": (deflate_settings(limit=20000), bomb(10 << 20)),
    "invalid-block-type": (deflate_settings(), b"\x06"),
    "truncated": (deflate_settings(), pmd_messages(CHAT)[0][:20]),
    "bfinal-then-data": (deflate_settings(), bytes.fromhex("f348cdc9c90700" "f248cdc9c90700")),
    "too-far-back": (deflate_settings(), bytes.fromhex("4a044200")),
}


def write(dirname, items):
    d = os.path.join(HERE, "corpus", dirname)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in items.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    write("frame_parser", {name: struct.pack("!BH", cfg, 0x5eed) + stream
                           for name, (cfg, stream) in FRAMES.items()})
    write("handshake", HANDSHAKES)
    write("pmd", {name: bytes([pol]) + header.encode("latin-1")
                  for name, (pol, header) in PMD.items()})
    write("inflate", {name: settings + payload for name, (settings, payload) in INFLATE.items()})


if __name__ == "__main__":
    main()
