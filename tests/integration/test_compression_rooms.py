"""Broadcasts to a room whose members compress and don't (WSockCompression
on a chat location), through a real apache2: two event children and
prefork with many children, so members sit in different child processes
and the in-server bus carries the messages between them.

Members: python3-websockets with its default compression and with
compression=None, Node's ws with perMessageDeflate and without
(tests/node/ws_member.js), and raw clients (rawws) that offer the
extension and that don't, which check the wire: a message of 128 bytes or
more reaches a compressing member compressed (RSV1 on its first frame),
every other member plain.  Every kind of member sends some of the
messages, large and small, text and binary; every member receives every
message byte for byte.
"""

import asyncio
import base64
import hashlib
import json
import os
import shutil
import socket

import pytest
import websockets

import rawws
from conftest import PREFORK_MANY, new_instance, run, serve
from rawws import OP_BINARY, OP_TEXT, RSV1
from test_chat import TWO_EVENT_CHILDREN
from test_compression import CHROMIUM_OFFER, DEFAULT_ANSWER, THRESHOLD, chatty, text_bytes

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")
NODE_MEMBER = os.path.join(NODE_DIR, "ws_member.js")

CONF = """\
<Location /zchat>
    WSockHandler chat room=query
    WSockCompression on
</Location>
"""

SERVERS = {"event-2-children": ("event", TWO_EVENT_CHILDREN), "prefork": ("prefork", PREFORK_MANY)}


@pytest.fixture(scope="module", params=list(SERVERS))
def zchat(request):
    if shutil.which("node") is None or not os.path.isdir(os.path.join(NODE_DIR, "node_modules",
                                                                      "ws")):
        pytest.fail("Node and tests/node/node_modules are needed: run scripts/test.sh "
                    "(it installs them)", pytrace=False)
    mpm, sizing = SERVERS[request.param]
    yield from serve(new_instance(mpm, CONF, mpm_conf=sizing))


# ------------------------------------------------------------- which child
def serving_pids(inst, client_ports):
    """{client port: pid of the child process that holds the server side
    of that connection}, from /proc/net/tcp and the children's fds."""
    inodes = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == inst.port:
                    inodes["socket:[%s]" % inode] = int(remote.rsplit(":", 1)[1], 16)
    wanted = set(client_ports)
    out = {}
    for pid in inst.child_pids():
        fd_dir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                port = inodes.get(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                continue
            if port in wanted:
                out[port] = pid
    return out


# ----------------------------------------------------------------- members
def digest(is_binary, data):
    return (is_binary, len(data), hashlib.sha256(data).hexdigest())


class WsMember:
    """python3-websockets, compression on by default or off."""

    def __init__(self, compress):
        self.kind = "websockets-" + ("deflate" if compress else "plain")
        self.compress = compress

    async def open(self, url):
        self.ws = await websockets.connect(
            url, compression="deflate" if self.compress else None, open_timeout=15,
            close_timeout=5, ping_interval=None, max_size=None)
        self.answer = self.ws.response_headers.get("Sec-WebSocket-Extensions")
        self.port = self.ws.local_address[1]

    async def send(self, is_binary, data):
        await self.ws.send(data if is_binary else data.decode("utf-8"))

    async def recv(self):
        m = await asyncio.wait_for(self.ws.recv(), 30)
        return digest(isinstance(m, bytes), m if isinstance(m, bytes) else m.encode("utf-8"))

    async def close(self):
        await self.ws.close()


class RawMember:
    """rawws: offers Chromium's permessage-deflate or nothing, and records
    how each message came on the wire."""

    def __init__(self, compress):
        self.kind = "raw-" + ("deflate" if compress else "plain")
        self.compress = compress
        self.wire = []          # per message: (compressed, payload bytes on the wire)

    async def open(self, url):
        port = int(url.split("/")[2].rsplit(":", 1)[1])
        path = "/" + url.split("/", 3)[3]
        self.c = await asyncio.to_thread(rawws.RawWS.connect, port, path, timeout=15,
                                         extensions=CHROMIUM_OFFER if self.compress else None)
        self.answer = self.c.response.header("Sec-WebSocket-Extensions")
        self.port = self.c.sock.getsockname()[1]

    async def send(self, is_binary, data):
        op = OP_BINARY if is_binary else OP_TEXT
        if self.compress and len(data) > 10000:
            # a fragmented compressed message, RSV1 on the first frame only
            await asyncio.to_thread(self.c.send_deflated, op, data, split=3)
        else:
            await asyncio.to_thread(self.c.send_frame, op, data)

    async def recv(self):
        op, data, frames, compressed = await asyncio.to_thread(self.c.recv_inflated, 30)
        assert all(f.rsv == 0 for f in frames[1:]), frames[:3]
        self.wire.append((compressed, b"".join(f.payload for f in frames)))
        return digest(op == OP_BINARY, data)

    async def close(self):
        try:
            self.c.sock.shutdown(socket.SHUT_RDWR)    # wakes a recv in a thread
        except OSError:
            pass
        self.c.close_socket()


class NodeMember:
    """Node's ws (tests/node/ws_member.js), perMessageDeflate or not."""

    def __init__(self, compress):
        self.kind = "node-" + ("deflate" if compress else "plain")
        self.compress = compress

    async def _line(self, tag):
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        assert line, "ws_member.js ended"
        got, _, body = line.decode().partition(" ")
        assert got == tag, line
        return json.loads(body)

    async def open(self, url):
        self.proc = await asyncio.create_subprocess_exec(
            "node", NODE_MEMBER, url, "deflate" if self.compress else "plain",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20)
        opened = await self._line("OPEN")
        self.answer, self.port = opened["extensions"], opened["port"]

    async def send(self, is_binary, data):
        self.proc.stdin.write(b"SEND %s %s\n" % (b"bin" if is_binary else b"text",
                                                base64.b64encode(data)))
        await self.proc.stdin.drain()

    async def recv(self):
        m = await self._line("GOT")
        return (m["bin"], m["len"], m["sha"])

    async def close(self):
        try:
            self.proc.stdin.write(b"CLOSE\n")
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 10)
        except (asyncio.TimeoutError, OSError):
            pass
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


# (sender kind, binary?, payload): small and large, text and binary, below
# and above the threshold, compressible and not, from every kind of member
MESSAGES = [
    ("websockets-deflate", False, b"hi"),
    ("raw-plain", True, os.urandom(THRESHOLD - 1)),
    ("node-deflate", False, text_bytes(THRESHOLD, 1)),
    ("websockets-plain", False, chatty(5000, 2)),
    ("raw-deflate", True, chatty(40000, 3) + os.urandom(30000)),
    ("node-plain", True, os.urandom(200000)),
    ("websockets-deflate", False, text_bytes(300000, 4)),
    ("raw-deflate", False, text_bytes(20000, 5)),
    ("node-deflate", True, chatty(100000, 6)),
    ("websockets-plain", True, b""),
    ("node-plain", False, text_bytes(THRESHOLD + 1, 7)),
    ("raw-plain", False, chatty(700000, 8)),
]

KINDS = [(cls, compress) for cls in (WsMember, NodeMember, RawMember) for compress in (True, False)]


def test_mixed_room_broadcast(zchat):
    room = "mixed%d" % (os.getpid() % 10000)
    url = zchat.url("/zchat?room=" + room)

    async def go():
        members = []
        try:
            for cls, compress in KINDS:
                m = cls(compress)
                await m.open(url)
                members.append(m)
            # more raw members, alternately compressing and not, until
            # both kinds are in at least two child processes (prefork: at
            # once; two event children: as the kernel hands them out)
            for k in range(24):
                pids = serving_pids(zchat, [m.port for m in members])
                spread = [len({pids.get(m.port) for m in members if m.compress == c}) >= 2
                          for c in (True, False)]
                if all(spread):
                    break
                m = RawMember(compress=not spread[0] if spread[0] != spread[1] else k % 2 == 0)
                await m.open(url)
                members.append(m)
            pids = serving_pids(zchat, [m.port for m in members])
            for c in (True, False):
                where = {pids.get(m.port) for m in members if m.compress == c}
                assert len(where - {None}) >= 2, (
                    "%s members all in one child: %r" % ("compressing" if c else "plain",
                                                         [(m.kind, pids.get(m.port))
                                                          for m in members]))
            # each message goes out only when every member has the one before
            got = {id(m): [] for m in members}
            by_kind = {m.kind: m for m in members}
            for kind, is_binary, data in MESSAGES:
                await by_kind[kind].send(is_binary, data)
                for m, d in zip(members, await asyncio.gather(*[m.recv() for m in members])):
                    got[id(m)].append(d)
            return members, got, pids
        finally:
            await asyncio.gather(*[m.close() for m in members], return_exceptions=True)

    members, got, pids = run(go(), timeout=150)

    want = [digest(b, d) for _, b, d in MESSAGES]
    for m in members:
        where = "%s (port %d, pid %s)" % (m.kind, m.port, pids.get(m.port))
        if m.compress:
            assert rawws.parse_extensions(m.answer) == [DEFAULT_ANSWER], (where, m.answer)
        else:
            assert m.answer is None, (where, m.answer)
        for k, (g, w) in enumerate(zip(got[id(m)], want)):
            assert g == w, "%s: message %d (%s) arrived as %r" % (where, k, MESSAGES[k][0], g)
        if isinstance(m, RawMember):
            for k, (compressed, _) in enumerate(m.wire):
                should = m.compress and len(MESSAGES[k][2]) >= THRESHOLD
                assert compressed == should, "%s: message %d of %d bytes compressed=%r" % (
                    where, k, len(MESSAGES[k][2]), compressed)
    # the compressing raw members got the same compressed bytes
    raws = [m for m in members if isinstance(m, RawMember) and m.compress]
    for m in raws[1:]:
        assert m.wire == raws[0].wire


def test_large_messages_cross_children(zchat):
    """Plain members in two child processes: messages larger than the bus
    delivery thread's first buffer (64 KiB) reach the other child, the
    first one after a quiet spell included (the chat above depends on it;
    src/bus/wsock_bus.c grows its buffer and must then read the same record
    again)."""
    room = "big%d" % (os.getpid() % 10000)

    async def go():
        members = [RawMember(False), RawMember(False)]
        try:
            for m in members:
                await m.open(zchat.url("/zchat?room=" + room))
            # Bounded: under load the second child may take a moment to
            # listen, so every few tries give it a little time.
            for k in range(64):
                pids = serving_pids(zchat, [m.port for m in members])
                if len(set(pids.values())) >= 2:
                    break
                if k % 8 == 7:
                    await asyncio.sleep(0.25)
                m = RawMember(False)
                await m.open(zchat.url("/zchat?room=" + room))
                members.append(m)
            pids = serving_pids(zchat, [m.port for m in members])
            assert len(set(pids.values())) >= 2, pids
            sender = members[0]
            got = []
            for n in (1000, 70000, 300000, 66000, 900000):
                data = os.urandom(n)
                await sender.send(True, data)
                got.append(await asyncio.gather(*[m.recv() for m in members],
                                                return_exceptions=True))
                assert got[-1] == [digest(True, data)] * len(members), (n, got[-1], pids)
        finally:
            await asyncio.gather(*[m.close() for m in members], return_exceptions=True)
    run(go(), timeout=120)
