"""A tiny raw-socket WebSocket client for the things a polite client won't do.

Builds the opening handshake by hand, serialises frames with arbitrary header
bits (FIN, RSV, opcode, mask bit, length encoding), and reads frames back
without any checking, so the tests can judge exactly what the server sent.
Every read is bounded by a timeout.  Talks to 127.0.0.1 only.

permessage-deflate (RFC 7692) is done by hand too, with Python's zlib:
Deflater/Inflater compress and inflate one message the way the RFC's
section 7.2 says (raw deflate, the 00 00 ff ff tail of a sync flush taken
off or put back), RawWS.send_deflated puts a compressed message on the
wire (RSV1 on its first frame only, or wherever a test wants it) and
RawWS.recv_inflated reads one back, saying whether it came compressed.
"""

import base64
import hashlib
import os
import select
import socket
import struct
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

RSV1 = 0b100            # the rsv value of build_frame/Frame with RSV1 set


def make_key(nbytes=16):
    return base64.b64encode(os.urandom(nbytes)).decode("ascii")


def accept_for(key):
    k = key.encode("ascii") if isinstance(key, str) else key
    return base64.b64encode(hashlib.sha1(k + GUID).digest()).decode("ascii")


def handshake_request(path="/", host="127.0.0.1", key=None, version="13",
                      method="GET", http_version="HTTP/1.1", upgrade="websocket",
                      connection="Upgrade", protocols=None, extensions=None,
                      extra_headers=None, omit=()):
    """Bytes of an opening handshake; any header can be changed, or left out
    by naming it in `omit` (case-insensitive) or passing None."""
    if key is None:
        key = make_key()
    headers = [("Host", host), ("Upgrade", upgrade), ("Connection", connection),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    if protocols is not None:
        headers.append(("Sec-WebSocket-Protocol", protocols))
    if extensions is not None:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    for h in extra_headers or ():
        headers.append(h)
    omit_l = {o.lower() for o in omit}
    lines = ["%s %s %s" % (method, path, http_version)]
    for name, value in headers:
        if value is None or name.lower() in omit_l:
            continue
        lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HTTPResponse:
    def __init__(self, status, reason, headers, body, raw):
        self.status = status
        self.reason = reason
        self.headers = headers      # list of (name, value) in order
        self.body = body
        self.raw = raw

    def header(self, name, default=None):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return "<HTTPResponse %d %s %r>" % (self.status, self.reason, self.headers)


def _parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        name, _, value = ln.partition(":")
        headers.append((name.strip(), value.strip()))
    return status, reason, headers


def _recv_until(sock, buf, done, deadline):
    """Appends what sock receives to buf until done(buf), EOF or deadline."""
    while not done(buf) and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def read_http_response(sock, timeout=5.0, read_body=True):
    """Read one HTTP response head (and, for non-101, a Content-Length body
    or everything until EOF). Returns (HTTPResponse, leftover bytes)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete HTTP response head within %.1fs: %r" % (timeout, buf))
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before a complete response head: %r" % buf)
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status, reason, headers = _parse_head(head)
    body = b""
    if status != 101 and read_body:
        clen = None
        chunked = False
        for n, v in headers:
            if n.lower() == "content-length":
                clen = int(v)
            if n.lower() == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        if clen is not None:
            rest = _recv_until(sock, rest, lambda b: len(b) >= clen, deadline)
            body, rest = rest[:clen], rest[clen:]
        elif chunked:
            rest = _recv_until(sock, rest, lambda b: b.endswith(b"0\r\n\r\n"), deadline)
            body, rest = rest, b""
    return HTTPResponse(status, reason, headers, body, head), rest


def http_exchange(port, request, timeout=5.0):
    """Send raw request bytes, return the HTTPResponse (connection closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        resp, _ = read_http_response(s, timeout=timeout)
        return resp


# --------------------------------------------------------------- frames
def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None,
                length_encoding=None, length=None, top_bit=False):
    """Serialise one frame.

    rsv: 3-bit value (0b100 = RSV1, 0b010 = RSV2, 0b001 = RSV3).
    mask: apply a masking key (clients must); mask_key: 4 bytes.
    length_encoding: None (minimal), 7, 16 or 64 — force the length field form.
    length: announce this length instead of len(payload) (payload still sent
    as given, so a header can announce more than follows).
    top_bit: set the most significant bit of a 64-bit length.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    enc = length_encoding
    if enc is None:
        enc = 7 if n <= 125 else (16 if n <= 0xFFFF else 64)
    if enc == 7:
        if n > 125:
            raise ValueError("length %d does not fit 7 bits" % n)
        hdr = struct.pack("!BB", b0, mbit | n)
    elif enc == 16:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    elif enc == 64:
        v = n | (1 << 63) if top_bit else n
        hdr = struct.pack("!BBQ", b0, mbit | 127, v)
    else:
        raise ValueError("length_encoding must be 7, 16 or 64")
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return hdr + key + apply_mask(payload, key)
    return hdr + payload


def apply_mask(data, key):
    if not data:
        return b""
    k = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(len(data), "big")


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload, length_field=7):
        self.length_field = length_field   # 7, 16 or 64: how the length was encoded
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.masked = masked
        self.payload = payload

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self):
        return self.payload[2:].decode("utf-8", "replace") if self.opcode == OP_CLOSE else None

    def minimal_length(self):
        n = len(self.payload)
        return self.length_field == (7 if n <= 125 else 16 if n <= 0xFFFF else 64)

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return "<Frame fin=%d rsv=%d op=0x%x masked=%d len=%d %r>" % (
            self.fin, self.rsv, self.opcode, self.masked, len(self.payload), p)


class Closed(Exception):
    """The TCP connection ended (EOF or reset) while reading a frame."""


class RawWS:
    """A WebSocket connection over a plain socket, with no manners."""

    def __init__(self, sock, response, leftover=b""):
        self.sock = sock
        self.response = response
        self.buf = leftover

    # -------------------------------------------------------------- connect
    @classmethod
    def connect(cls, port, path="/", timeout=5.0, key=None, rcvbuf=None, sndbuf=None,
                refused=None, **handshake_kw):
        """Open a connection and complete the handshake; raises if not 101
        (with refused="return": returns the HTTPResponse instead).  rcvbuf,
        sndbuf: socket buffer sizes, set before connecting (so that the TCP
        window follows them)."""
        key = key or make_key()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if sndbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            s.settimeout(timeout)
            s.connect(("127.0.0.1", port))
            s.sendall(handshake_request(path, host="127.0.0.1:%d" % port, key=key,
                                        **handshake_kw))
            resp, rest = read_http_response(s, timeout=timeout)
        except BaseException:
            s.close()
            raise
        if resp.status != 101:
            s.close()
            if refused == "return":
                return resp
            raise ConnectionError("handshake refused: %d %s %r" % (resp.status, resp.reason,
                                                                  resp.body[:200]))
        if resp.header("Sec-WebSocket-Accept") != accept_for(key):
            s.close()
            raise ConnectionError("bad Sec-WebSocket-Accept %r for key %r" % (
                resp.header("Sec-WebSocket-Accept"), key))
        return cls(s, resp, rest)

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_socket()
        return False

    # ---------------------------------------------------------------- write
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.send_raw(build_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_close(self, code=1000, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    # ----------------------------------------------------------------- read
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out waiting for %d bytes (have %d)" % (n, len(self.buf)))
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
            except socket.timeout:
                raise TimeoutError("timed out waiting for %d bytes (have %d)"
                                   % (n, len(self.buf)))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed("connection reset: %s" % e)
            if not chunk:
                raise Closed("EOF with %d bytes buffered" % len(self.buf))
            self.buf += chunk

    def _take(self, n, deadline):
        self._fill(n, deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=5.0):
        """The next frame as sent (no reassembly, no checks). Raises
        TimeoutError, or Closed if the TCP connection ended first."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._take(2, deadline)
        n = b1 & 0x7F
        lf = 7
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline))[0]
            lf = 16
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline))[0]
            lf = 64
        key = self._take(4, deadline) if b1 & 0x80 else None
        payload = self._take(n, deadline)
        if key:
            payload = apply_mask(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, bool(b1 & 0x80), payload, lf)

    def recv_frames_until(self, pred, timeout=5.0, answer_pings=False):
        """Read frames until pred(frame) is true; returns all frames read
        (the matching one last). With answer_pings, pings get a pong."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            f = self.recv_frame(timeout=max(0.0, deadline - time.monotonic()))
            frames.append(f)
            if answer_pings and f.opcode == OP_PING:
                self.send_frame(OP_PONG, f.payload)
            if pred(f):
                return frames

    def recv_message(self, timeout=5.0, answer_pings=True):
        """A whole data message: (opcode, payload, frames). Control frames in
        between are skipped (pings answered). Raises if a close comes first."""
        deadline = time.monotonic() + timeout
        frames = []
        opcode = None
        data = b""
        while True:
            f = self.recv_frame(timeout=max(0.0, deadline - time.monotonic()))
            if f.opcode == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                raise AssertionError("got close %r (%r) while waiting for a message"
                                     % (f.close_code, f.close_reason))
            frames.append(f)
            if opcode is None:
                opcode = f.opcode
            data += f.payload
            if f.fin:
                return opcode, data, frames

    def recv_close(self, timeout=5.0):
        """Skip frames until a close frame; returns (code, reason, frame,
        skipped_frames). Raises Closed if TCP ends without a close frame."""
        frames = self.recv_frames_until(lambda f: f.opcode == OP_CLOSE, timeout=timeout)
        f = frames[-1]
        return f.close_code, f.close_reason, f, frames[:-1]

    def wait_eof(self, timeout=5.0):
        """True if the server closes the TCP connection (EOF or reset) within
        timeout; bytes arriving meanwhile are collected in self.buf."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], remaining)
            if not r:
                return False
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def nothing_pending(self, wait=0.2):
        """True if no bytes arrive within `wait` seconds (and no EOF)."""
        if self.buf:
            return False
        r, _, _ = select.select([self.sock], [], [], wait)
        return not r

    # ------------------------------------------------- permessage-deflate
    def send_deflated(self, opcode, data, deflater=None, split=1, rsv_on=(0,), **kw):
        """Sends data as one compressed message (RFC 7692 §7.2.1): the
        deflated payload cut into `split` frames, RSV1 on the frames whose
        index is in rsv_on (the first only, as the RFC says, by default).
        Returns the compressed payload."""
        payload = (deflater or Deflater()).compress(data)
        self.send_raw(deflated_frames(opcode, payload, split, rsv_on, **kw))
        return payload

    def recv_inflated(self, timeout=5.0, inflater=None, answer_pings=True):
        """The next data message: (opcode, data, frames, compressed).  A
        message whose first frame has RSV1 is inflated (with inflater, or a
        fresh window-15 one); compressed says whether it was."""
        opcode, payload, frames = self.recv_message(timeout=timeout, answer_pings=answer_pings)
        compressed = bool(frames[0].rsv & RSV1)
        if compressed:
            payload = (inflater or Inflater()).inflate(payload)
        return opcode, payload, frames, compressed


# ----------------------------------------------- permessage-deflate (RFC 7692)
PMD_TAIL = b"\x00\x00\xff\xff"


class Deflater:
    """Compresses messages as a permessage-deflate sender does: raw deflate
    (no zlib header) with a window of 2**wbits, each message ended by a
    sync flush whose empty stored block (00 00 ff ff) is taken off.
    keep_context: the window carries over to the next message (context
    takeover); otherwise every message is a stream of its own."""

    def __init__(self, wbits=15, level=6, keep_context=False):
        self.wbits, self.level, self.keep_context = wbits, level, keep_context
        self._z = None

    def compress(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self._z is None or not self.keep_context:
            self._z = zlib.compressobj(self.level, zlib.DEFLATED, -self.wbits)
        out = self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(PMD_TAIL), out[-8:]
        return out[:-len(PMD_TAIL)]


class Inflater:
    """Inflates what a permessage-deflate sender compressed: puts the
    00 00 ff ff tail back and inflates raw deflate with a window of
    2**wbits (a reference further back is refused: a sender that ignored
    a negotiated window fails here).  keep_context: one stream
    across messages (the sender's context takeover); otherwise every
    message is inflated by a fresh stream, which fails if the sender
    referred to an earlier message.  Raises zlib.error on corrupt data."""

    def __init__(self, wbits=15, keep_context=False):
        self.wbits, self.keep_context = wbits, keep_context
        self._z = None

    def inflate(self, payload):
        if self._z is None or not self.keep_context:
            self._z = zlib.decompressobj(-self.wbits)
        if self.wbits == 15:
            return self._z.decompress(payload + PMD_TAIL)
        # zlib checks a distance against its window plus what the current
        # call has written: with a small window, write a quarter of it per
        # call, so that a reference beyond the window is refused
        step = 1 << (self.wbits - 2)
        out, data = [], payload + PMD_TAIL
        for _ in range(64 * 1024 * 1024 // step):
            chunk = self._z.decompress(data, step)
            data = self._z.unconsumed_tail
            out.append(chunk)
            if not data and not chunk:
                return b"".join(out)
        raise zlib.error("more than 64 MiB inflated")


def deflated_frame_list(opcode, payload, split=1, rsv_on=(0,), **kw):
    """A compressed payload as a list of `split` serialised frames (masked,
    as a client sends): the first with opcode, the others continuations,
    RSV1 on the frames whose index is in rsv_on."""
    n = max(1, min(split, len(payload) or 1))
    step = -(-len(payload) // n) if payload else 0
    parts = [payload[i * step:(i + 1) * step] for i in range(n)] if payload else [b""]
    parts = [p for p in parts if p] or [b""]
    return [build_frame(opcode if i == 0 else OP_CONT, part, fin=(i == len(parts) - 1),
                        rsv=RSV1 if i in rsv_on else 0, **kw)
            for i, part in enumerate(parts)]


def deflated_frames(opcode, payload, split=1, rsv_on=(0,), **kw):
    """The bytes of deflated_frame_list(...)."""
    return b"".join(deflated_frame_list(opcode, payload, split, rsv_on, **kw))


def parse_extensions(value):
    """A Sec-WebSocket-Extensions value as [(name, {param: value})], a
    parameter without a value as True, quoted values unquoted; names
    lower-cased.  Enough for the answers a server writes."""
    out = []
    if value is None:
        return out
    for ext in _split_outside_quotes(value, ","):
        if not ext.strip():
            continue
        parts = _split_outside_quotes(ext, ";")
        params = {}
        for p in parts[1:]:
            name, eq, v = p.strip().partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            params[name.strip().lower()] = v if eq else True
        out.append((parts[0].strip().lower(), params))
    return out


def _split_outside_quotes(text, sep):
    parts, cur, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts
