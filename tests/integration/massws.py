"""Open many idle WebSockets from one process, cheaply: raw non-blocking
sockets and one selector, a bounded number of handshakes in flight, every
loop bounded by a deadline.  Used by the capacity tests.

Each WebSocket costs the test a socket and a few bytes; its handshake uses
one fixed key (RFC 6455's example), so checking the 101 is a byte compare.
"""

import os
import resource
import selectors
import socket
import struct
import time

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def raise_fd_limit(need):
    """Make sure this process may hold `need` descriptors; returns the soft
    limit now in force (may stay lower if the hard limit forbids more and
    we are not root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return need
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return need


def _request(port, path):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, KEY)).encode()


class Opened:
    """The outcome of open_many(): the open sockets (each got a valid 101),
    and how many attempts failed otherwise (refused, reset, other status)
    or were still waiting when the run ended."""

    def __init__(self):
        self.sockets = []
        self.failed = 0
        self.waiting = 0
        self.statuses = {}

    def close(self):
        for s in self.sockets:
            s.close()
        self.sockets = []


def open_many(port, count, path="/echo", window=400, deadline=45.0, quiet=None):
    """Open `count` WebSockets to 127.0.0.1:port, at most `window`
    handshakes in flight.  Ends when all are answered, at `deadline`
    seconds, or (with `quiet`) once no handshake completed for `quiet`
    seconds while some were waiting: the server stopped accepting."""
    req = _request(port, path)
    sel = selectors.DefaultSelector()
    out = Opened()
    started = 0
    pending = {}                      # fd -> [sock, buffer, connected]
    end = time.monotonic() + deadline
    last_progress = time.monotonic()
    try:
        while started < count or pending:
            now = time.monotonic()
            if now > end or (quiet is not None and pending and now - last_progress > quiet):
                break
            while started < count and len(pending) < window:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                pending[s.fileno()] = [s, b"", False]
                sel.register(s, selectors.EVENT_WRITE)
                started += 1
            for key, _ in sel.select(timeout=0.2):
                st = pending.get(key.fd)
                if st is None:
                    continue
                s = st[0]
                if not st[2]:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        _drop(sel, pending, s)
                        out.failed += 1
                        continue
                    st[2] = True
                    s.send(req)       # ~150 bytes: fits in a fresh socket's buffer
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    _drop(sel, pending, s)
                    out.failed += 1
                    continue
                st[1] += data
                if b"\r\n\r\n" not in st[1]:
                    continue
                head = st[1].split(b"\r\n\r\n", 1)[0]
                status = head.split(b" ", 2)[1:2]
                code = int(status[0]) if status and status[0].isdigit() else 0
                out.statuses[code] = out.statuses.get(code, 0) + 1
                sel.unregister(s)
                del pending[s.fileno()]
                if code == 101 and (b"Sec-WebSocket-Accept: " + ACCEPT) in head:
                    out.sockets.append(s)
                    last_progress = time.monotonic()
                else:
                    s.close()
                    out.failed += 1
    finally:
        out.waiting = len(pending)
        for st in pending.values():
            sel.unregister(st[0])
            st[0].close()
        sel.close()
    return out


def _drop(sel, pending, s):
    sel.unregister(s)
    del pending[s.fileno()]
    s.close()


def echo_roundtrip(s, text, timeout=10.0):
    """Send one masked text frame on an open WebSocket and return the
    payload of the server's answer (a text frame of under 126 bytes)."""
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.setblocking(True)
    s.settimeout(timeout)
    s.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
        if time.monotonic() > deadline:
            raise TimeoutError("no echo within %.0fs" % timeout)
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the echo")
        data += chunk
    assert data[0] == 0x81, data[:2]
    return data[2:2 + (data[1] & 0x7F)].decode()
