#!/usr/bin/python3
"""Soak: thousands of connections, well-behaved and hostile, opened and
closed for a bounded time against a real apache2 (event with two children,
then prefork), normally with the ASan build of mod_wsock.

    /usr/bin/python3 tests/soak/soak.py [--short] [--seconds N] [--seed S]
                                         [--mpm event|prefork|both]

The module is $WSOCK_MODULE (default .libs/mod_wsock.so); for the sanitizer
build set WSOCK_APACHE_PRELOAD as for the integration tests (`make
check-soak` does both and runs --short).  A full run takes about 3.5
minutes and serves ~6000 connections, --short about one minute and ~1200.

A fixed number of workers (--workers, 12) each run one behaviour after the
other, drawn at random (the seed is printed; --seed repeats the draws):

  well-behaved: echo round trips of 1 B - 64 KiB; a chat pair (one sends,
    the other must get every message, in order, across child processes);
    a room member that publishes and must see its own messages; compressed
    echoes (permessage-deflate both ways, fragmented or not, sometimes with
    the contexts kept on both sides);
  hostile: a sender that never reads (64 KiB echoes until its socket
    blocks); a half frame (header, half a payload, or a first fragment)
    left to WSockFrameTimeout; a slow dribble; a room hopper (thousands of
    distinct rooms joined and left); refused opens (a plugin that joins the
    room "hub" and then refuses, pipelined on keep-alive); a stuck member
    of the busy room (never reads: a slow consumer); an abrupt disconnect
    (RST) in the middle of a message; invalid frames; deflate bombs (a few
    KB that inflate past the limit: 1009) and compressed messages left
    half-sent.

Beside them, for the whole run: a publisher and a reader of the busy room
(the reader must get every message, in order), and a member of "hub", the
room every refused open joins.

Each MPM: warm-up (1 MiB echoes through every child, then the same mix,
shorter), then the baseline memory of the apache tree (PSS, once the server
holds no connection), the soak, and the memory again once every connection
is gone: it must be within a small margin of the baseline (margin_for).
Under ASan, ASAN_OPTIONS (unless set) keeps a 4 MiB quarantine per
process.  Then: every well-behaved client got every answer, the rooms count
exactly their live members, and the error log has no crash or sanitizer
line.  Exit status 0 if all of that holds.
"""

import argparse
import os
import random
import select
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "harness"))
sys.path.insert(0, os.path.join(TESTS, "integration"))

import hostile  # noqa: E402
import memory  # noqa: E402
import rawws  # noqa: E402
from apache_instance import ApacheInstance, default_module_path  # noqa: E402
from hostile import KiB, MiB  # noqa: E402
from rawws import OP_BINARY, OP_PING, OP_TEXT, Deflater, Inflater, build_frame  # noqa: E402

CONF = """\
WSockPlugin roomcmd {tp_roomcmd}
WSockPlugin joinrefuse {tp_joinrefuse}
<Location /echo>
    WSockHandler echo
    WSockFrameTimeout 1.5
</Location>
<Location /small>
    WSockHandler echo
    WSockMaxMessageSize 1000
</Location>
<Location /chat>
    WSockHandler chat room=query
</Location>
<Location /cmd>
    WSockHandler roomcmd
    WSockSendQueue 32 64K close
</Location>
# the long-lived members that must read everything: the default queue
<Location /cmdbig>
    WSockHandler roomcmd
</Location>
<Location /refuse>
    WSockHandler joinrefuse
</Location>
# permessage-deflate: messages compressed on their own, or with the server's
# context (a deflater per connection); a small limit for deflate bombs
<Location /zecho>
    WSockHandler echo
    WSockCompression on threshold=64
    WSockFrameTimeout 1.5
</Location>
<Location /zctx>
    WSockHandler echo
    WSockCompression on server_no_context_takeover=off client_no_context_takeover=off
</Location>
<Location /zsmall>
    WSockHandler echo
    WSockCompression on
    WSockMaxMessageSize 64K
</Location>
"""

# Under ASan: a quarantine small enough to be full (and steady) after the
# warm-up, instead of growing through the soak up to its default 256 MiB
# per process; freed memory goes back to the system as under glibc.
ASAN_OPTIONS = "detect_leaks=0:quarantine_size_mb=4:allocator_release_to_os_interval_ms=500"

# After the soak, what may stay above the baseline (PSS of the whole tree):
# a fixed slack, a share of the baseline, and per process what its
# allocator keeps for reuse, which depends on what that child happened to
# serve last: glibc's heap top (plain build: up to 1 MiB per prefork child
# measured); under ASan its quarantine, which a prefork child fills only
# over many connections (up to quarantine_size_mb each; 2.5 MiB a child on
# average after a full run), and its free lists.  A leak grows with the
# connections served: the short run serves ~1200, the full one ~6000.
MARGIN_FIXED = 8 * MiB
MARGIN_SHARE = 0.10


def margin_per_process():
    if not memory.under_asan():
        return MiB // 2
    opts = dict(o.split("=", 1) for o in os.environ.get("ASAN_OPTIONS", "").split(":")
                if "=" in o)
    return (int(opts.get("quarantine_size_mb", 256)) + 1) * MiB


def margin_for(base):
    return (MARGIN_FIXED + int(MARGIN_SHARE * base.pss_kib * KiB)
            + margin_per_process() * len(base.pids))


class Failures:
    """What went wrong for well-behaved clients, and what the run did."""

    def __init__(self):
        self.lock = threading.Lock()
        self.errors = []
        self.counts = {}
        self.conns = 0
        self.hopped = []            # a few rooms the hoppers joined and left

    def hopped_room(self, name):
        with self.lock:
            if len(self.hopped) < 5:
                self.hopped.append(name)

    def fail(self, what, detail):
        with self.lock:
            self.errors.append("%s: %s" % (what, detail))

    def done(self, what, conns):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1
            self.conns += conns


# ================================================================ behaviours
# Each takes (port, rnd, out) and returns the number of connections it
# opened; well-behaved ones record failures in out; hostile ones only
# require that the server answers as documented, within bounds.

def close_cleanly(c, what, out):
    """The close handshake a well-behaved client ends with: 1000 back."""
    c.send_close(1000)
    code, _, _, _ = c.recv_close(timeout=20)
    if code != 1000:
        out.fail(what, "closed with %r" % code)


def b_echo(port, rnd, out):
    with rawws.RawWS.connect(port, "/echo", timeout=15) as c:
        for i in range(rnd.randint(1, 20)):
            size = rnd.choice((1, 100, 4 * KiB, 64 * KiB, rnd.randint(0, 64 * KiB)))
            payload = os.urandom(size)
            c.send_binary(payload)
            _, data, _ = c.recv_message(timeout=20)
            if data != payload:
                out.fail("echo", "message %d of %d bytes came back wrong" % (i, size))
                return 1
        close_cleanly(c, "echo", out)
    return 1


def b_chat_pair(port, rnd, out):
    room = "pair%d" % rnd.getrandbits(40)
    n = rnd.randint(5, 40)
    with rawws.RawWS.connect(port, "/chat?room=" + room, timeout=15) as a, \
            rawws.RawWS.connect(port, "/chat?room=" + room, timeout=15) as b:
        for i in range(n):
            a.send_text("%s:%d" % (room, i))
        for who, c in (("receiver", b), ("sender", a)):
            for i in range(n):
                _, data, _ = c.recv_message(timeout=20)
                if data.decode() != "%s:%d" % (room, i):
                    out.fail("chat pair", "%s got %r instead of message %d" % (who, data, i))
                    return 2
        for c in (a, b):
            c.send_close(1000)
    return 2


def b_room_member(port, rnd, out):
    room = "own%d" % rnd.getrandbits(40)
    with rawws.RawWS.connect(port, "/cmd?room=" + room, timeout=15) as c:
        n = rnd.randint(1, 20)
        for i in range(n):
            c.send_text("pub %s m%d" % (room, i))
        for i in range(n):
            _, data, _ = c.recv_message(timeout=20)
            if data != b"m%d" % i:
                out.fail("room member", "got %r instead of m%d" % (data, i))
                return 1
        c.send_text("count " + room)
        _, data, _ = c.recv_message(timeout=20)
        if data != ("count %s 1 1" % room).encode():
            out.fail("room member", "alone in its room, but %r" % data)
    return 1


CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"


def b_compressed_echo(port, rnd, out):
    """Compressed both ways (as a browser), fragmented or not; on /zctx with
    the contexts kept on both sides."""
    ctx = rnd.random() < 0.3
    deflater, inflater = Deflater(keep_context=ctx), Inflater(keep_context=ctx)
    with rawws.RawWS.connect(port, "/zctx" if ctx else "/zecho", timeout=15,
                             extensions=CHROMIUM_OFFER) as c:
        for i in range(rnd.randint(1, 20)):
            size = rnd.choice((1, 100, 4 * KiB, 64 * KiB, rnd.randint(0, 64 * KiB)))
            payload = (b"chat %d " % i) * (size // 8) + os.urandom(rnd.randint(0, 64))
            c.send_deflated(OP_BINARY, payload, deflater=deflater, split=rnd.randint(1, 4))
            try:
                _, data, _, _ = c.recv_inflated(timeout=20, inflater=inflater)
            except zlib.error as e:
                out.fail("compressed echo", "message %d: corrupt answer: %s" % (i, e))
                return 1
            if data != payload:
                out.fail("compressed echo", "message %d of %d bytes came back wrong"
                         % (i, len(payload)))
                return 1
        close_cleanly(c, "compressed echo", out)
    return 1


def b_deflate_bomb(port, rnd, out):
    """A few KB that inflate to megabytes, past the 64 KiB limit: 1009; or
    half a compressed message, then gone."""
    with rawws.RawWS.connect(port, "/zsmall", timeout=15, extensions=CHROMIUM_OFFER) as c:
        bomb = Deflater(level=9).compress(bytes(rnd.choice((1, 4, 16)) * MiB))
        frames = rawws.deflated_frames(OP_BINARY, bomb, split=3)
        if rnd.random() < 0.3:
            c.send_raw(frames[:len(frames) // 2])      # and gone, mid-message
            return 1
        c.send_raw(frames)
        code, _, _, _ = c.recv_close(timeout=15)
        if code != 1009:
            out.fail("deflate bomb", "closed with %r, not 1009" % code)
    return 1


def b_never_reads(port, rnd, out):
    c = hostile.connect(port, "/echo", rcvbuf=4096, sndbuf=rnd.choice((None, 1 * MiB)))
    try:
        hostile.flood_without_reading([c], hostile.echo_burst(64 * KiB, rnd.randint(1, 16)),
                                      duration=rnd.uniform(0.5, 3), quiet=0.5, cap=16 * MiB)
    finally:
        c.close_socket()
    return 1


def b_half_frame(port, rnd, out):
    with hostile.connect(port, "/echo") as c:
        kind = rnd.randrange(4)
        if kind == 0:
            c.send_raw(build_frame(OP_TEXT, b"x" * 70000)[:rnd.randint(1, 3)])
        elif kind == 1:
            c.send_raw(build_frame(OP_BINARY, b"", length=rnd.randint(126, 1 * MiB)))
        elif kind == 2:
            c.send_raw(build_frame(OP_BINARY, b"y" * rnd.randint(1, 256 * KiB), length=1 * MiB))
        else:
            c.send_frame(OP_TEXT, b"z" * rnd.randint(0, 64 * KiB), fin=False)
        if rnd.random() < 0.5:
            code, reason, _, _ = c.recv_close(timeout=15)     # WSockFrameTimeout 1.5
            if (code, reason) != (1008, "frame timeout"):
                out.fail("half frame", "closed with %r %r" % (code, reason))
    return 1


def b_dribble(port, rnd, out):
    with hostile.connect(port, "/echo") as c:
        frame = build_frame(OP_TEXT, b"d" * 200)
        ((sent, answered),) = hostile.dribble([c], frame, pause=0.2, limit=10)
        if answered is None or sent >= len(frame):
            out.fail("dribble", "not closed by the frame timeout (%d bytes sent)" % sent)
            return 1
        code, reason, _, _ = c.recv_close(timeout=10)
        if (code, reason) != (1008, "frame timeout"):
            out.fail("dribble", "closed with %r %r" % (code, reason))
    return 1


def b_room_hopper(port, rnd, out):
    with rawws.RawWS.connect(port, "/cmd", timeout=15) as c:
        tag = rnd.getrandbits(40)
        out.hopped_room("hop%d-0" % tag)
        for start in range(0, rnd.choice((200, 1000, 3000)), 1000):
            names = ["hop%d-%d" % (tag, i) for i in range(start, start + 1000)]
            cmds = ["join " + n for n in names] + ["leave " + n for n in names]
            c.send_raw(b"".join(build_frame(OP_TEXT, x.encode()) for x in cmds))
        if rnd.random() < 0.5:
            c.send_text("sync")
            _, data, _ = c.recv_message(timeout=30)
            if data != b"sync":
                out.fail("room hopper", "got %r" % data)
    return 1


def b_refused(port, rnd, out):
    pipelined = rnd.randint(1, 20)
    req = rawws.handshake_request("/refuse?room=hub&extra=%d&refuse=%d"
                                  % (rnd.randint(0, 10), rnd.choice((403, 503, 429))),
                                  host="127.0.0.1:%d" % port)
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        try:
            s.sendall(req * pipelined)
        except OSError:
            pass
        data = b""
        closed = False
        deadline = time.monotonic() + 15
        while not closed and time.monotonic() < deadline and data.count(b"HTTP/1.1 ") <= 1:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                break
            closed = not chunk
            data += chunk
        # the server answers the first request and closes (no pile-up)
        if not closed or data.count(b"HTTP/1.1 ") != 1:
            out.fail("refused open", "%d answers to %d pipelined refused opens, %s"
                     % (data.count(b"HTTP/1.1 "), pipelined,
                        "then closed" if closed else "still open after 15 s"))
    return 1


def b_stuck_member(port, rnd, out):
    c = hostile.connect(port, "/cmd?room=busy", rcvbuf=4096)
    try:
        time.sleep(rnd.uniform(0.5, 4))          # never reads what the room sends
    finally:
        c.close_socket()
    return 1


def b_abrupt(port, rnd, out):
    c = rawws.RawWS.connect(port, rnd.choice(("/echo", "/chat?room=abrupt", "/cmd")),
                            timeout=15)
    frame = build_frame(OP_TEXT, b"a" * rnd.randint(0, 200 * KiB))
    c.send_raw(frame[:rnd.randint(0, len(frame))])
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close_socket()                                 # RST
    return 1


INVALID = [
    # (what, frame bytes, path, expected close code)
    ("unmasked", lambda: build_frame(OP_TEXT, b"hi", mask=False), "/echo", 1002),
    ("reserved opcode", lambda: build_frame(0x3, b"x"), "/echo", 1002),
    ("rsv1", lambda: build_frame(OP_TEXT, b"x", rsv=0b100), "/echo", 1002),
    ("bad utf-8", lambda: build_frame(OP_TEXT, b"\xff\xfe"), "/echo", 1007),
    ("long ping", lambda: build_frame(OP_PING, b"p" * 126), "/echo", 1002),
    ("too big", lambda: build_frame(OP_BINARY, b"b" * 1001), "/small", 1009),
]


def b_invalid(port, rnd, out):
    what, make, path, want = rnd.choice(INVALID)
    with rawws.RawWS.connect(port, path, timeout=15) as c:
        c.send_raw(make())
        code, _, _, _ = c.recv_close(timeout=15)
        if code != want:
            out.fail("invalid frame", "%s: closed with %r, not %d" % (what, code, want))
    return 1


# weight, name, function, well-behaved
BEHAVIOURS = [
    (20, "echo", b_echo),
    (12, "chat pair", b_chat_pair),
    (8, "room member", b_room_member),
    (8, "never reads", b_never_reads),
    (8, "half frame", b_half_frame),
    (4, "dribble", b_dribble),
    (6, "room hopper", b_room_hopper),
    (10, "refused open", b_refused),
    (6, "stuck member", b_stuck_member),
    (10, "abrupt", b_abrupt),
    (8, "invalid frame", b_invalid),
    (10, "compressed echo", b_compressed_echo),
    (4, "deflate bomb", b_deflate_bomb),
]


# ================================================================ background
class Busy:
    """The busy room: a publisher, paced so that its reader (the only
    member that reads) is never a slow consumer itself, and the reader,
    which must get every message in order.  Stuck members come and go."""

    AHEAD = 8

    def __init__(self, port):
        self.pub = rawws.RawWS.connect(port, "/cmdbig", timeout=15)
        self.reader = rawws.RawWS.connect(port, "/cmdbig?room=busy", timeout=15)
        self.sent = 0
        self.got = 0
        self.error = None
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._publish, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]
        for t in self.threads:
            t.start()

    def _publish(self):
        filler = "f" * 1000
        try:
            while not self.stop.is_set():
                with self.cond:
                    if not self.cond.wait_for(
                            lambda: self.sent - self.got < self.AHEAD or self.stop.is_set()
                            or self.error, timeout=30):
                        self.error = "the reader stalled at %d of %d" % (self.got, self.sent)
                    if self.stop.is_set() or self.error:
                        return
                    n = self.sent
                    self.sent += 1
                self.pub.send_text("pub busy %d %s" % (n, filler))
                # a steady 200 messages a second, not a spin that takes the
                # workers' CPU (the room is busy for its stuck members all
                # the same: 200 KB/s)
                self.stop.wait(0.005)
        except Exception as e:      # noqa: BLE001 (reported at the end)
            self.error = "publisher: %r" % e

    def _read(self):
        try:
            while True:
                with self.cond:
                    if self.stop.is_set() and self.got >= self.sent:
                        return
                    waiting_for = self.got < self.sent
                if not self.reader.buf and not waiting_for:
                    # nothing due: look again soon (the stop may come)
                    select.select([self.reader.sock], [], [], 0.1)
                    if not self.reader.buf and not select.select([self.reader.sock], [], [],
                                                                 0)[0]:
                        continue
                _, data, _ = self.reader.recv_message(timeout=30)
                n = int(data.split(b" ", 1)[0])
                with self.cond:
                    if n != self.got:
                        self.error = "reader got message %d, expected %d" % (n, self.got)
                        return
                    self.got += 1
                    self.cond.notify_all()
        except Exception as e:      # noqa: BLE001
            self.error = "reader at %d of %d: %r" % (self.got, self.sent, e)

    def finish(self):
        self.stop.set()
        with self.cond:
            self.cond.notify_all()
        for t in self.threads:
            t.join(40)
        self.pub.close_socket()
        self.reader.close_socket()
        return self.sent, self.got, self.error


class Hub:
    """The member of "hub", the room every refused open joins: reads what
    the refusals publish there, and counts the room at the end."""

    def __init__(self, port):
        self.c = rawws.RawWS.connect(port, "/cmdbig?room=hub", timeout=15)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seen = 0
        self.answers = []
        self.error = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while not self.stop.is_set():
                r, _, _ = select.select([self.c.sock], [], [], 0.2)
                if not r and not self.c.buf:
                    continue
                _, data, _ = self.c.recv_message(timeout=30)
                if data == b"joined-then-refused":
                    self.seen += 1
                else:
                    with self.lock:
                        self.answers.append(data.decode())
        except Exception as e:      # noqa: BLE001
            self.error = repr(e)

    def ask(self, command, timeout=20):
        with self.lock:
            before = len(self.answers)
        try:
            self.c.send_text(command)
        except OSError as e:
            return "no answer: %r" % e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.answers) > before:
                    return self.answers[before]
            time.sleep(0.01)
        return None

    def finish(self):
        self.stop.set()
        self.thread.join(40)
        self.c.close_socket()


# ================================================================== the run
def growth_by_process(base, after):
    """Where the memory went: the processes that grew most (PSS, KiB)."""
    grew = sorted(((after.pids[p][0] - base.pids.get(p, (0, 0))[0], p) for p in after.pids),
                  reverse=True)
    return "most growth: %s" % ", ".join("pid %d +%d KiB" % (p, g) for g, p in grew[:4])



def run_mix(port, seconds, workers, rnd, out):
    """`workers` threads run behaviours drawn from rnd until `seconds`
    have passed (each finishes the one it has started: all are bounded)."""
    deadline = time.monotonic() + seconds
    draw_lock = threading.Lock()
    weights = [w for w, _, _ in BEHAVIOURS]

    def draw():
        with draw_lock:
            (_, name, fn), = rnd.choices(BEHAVIOURS, weights)
            return name, fn, random.Random(rnd.getrandbits(64))

    def worker():
        while time.monotonic() < deadline:
            name, fn, r = draw()
            try:
                n = fn(port, r, out)
            except Exception as e:          # noqa: BLE001
                # hostile clients may see the server cut them: only the
                # well-behaved ones must not
                if name in WELL_BEHAVED:
                    out.fail(name, "%s\n%s" % (e, traceback.format_exc(limit=3)))
                n = 1
            out.done(name, n)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
        if t.is_alive():
            out.fail("soak", "a worker did not finish its behaviour within 120 s")


WELL_BEHAVED = {"echo", "chat pair", "room member", "compressed echo"}


def soak_one(mpm, args, sos, seed):
    """One MPM's soak; True if everything held."""
    print("== %s: seed %d, %d s (+%d s warm-up), %d workers, module %s"
          % (mpm, seed, args.seconds, args.warmup, args.workers, default_module_path()),
          flush=True)
    conns = 2 * args.workers + 4
    inst = ApacheInstance(mpm=mpm, extra_conf=CONF.format(**sos),
                          mpm_conf=hostile.sizing(mpm, conns), keep=True)
    inst.start()
    try:
        problems = soak(inst, mpm, conns, args, random.Random(seed))
    except Exception:                       # noqa: BLE001 (a broken run is a failure)
        problems = ["the soak broke off:\n" + traceback.format_exc()]
    finally:
        inst.stop(timeout=30)
    crashes = inst.crash_lines()
    if crashes:
        problems.append("crash lines in the error log:\n      " + "\n      ".join(crashes[:20]))
    for p in problems:
        print("   FAIL %s" % p)
    if problems or args.keep:
        print("   error log and server root kept in %s" % inst.root)
    else:
        shutil.rmtree(inst.root, ignore_errors=True)
    return not problems


def soak(inst, mpm, conns, args, rnd):
    """Warm-up, baseline, the soak, the checks: returns the problems."""
    # Every child and thread has freed megabytes before the baseline: the
    # allocators' caches (and ASan's quarantine) are full already.
    t0 = time.monotonic()
    hostile.warm_up(inst, "/echo", hostile.warm_conns(mpm, conns), [1 * MiB - 64] * 3)
    warm = Failures()
    hub = Hub(inst.port)
    busy = Busy(inst.port)
    run_mix(inst.port, args.warmup, args.workers, rnd, warm)
    busy_warm = busy.finish()
    hub.finish()
    memory.wait_connections_gone(inst.port, timeout=30)
    base = memory.settled(inst.pid, timeout=20)
    print("   warm-up and baseline: %.0f s" % (time.monotonic() - t0), flush=True)

    out = Failures()
    hub = Hub(inst.port)
    busy = Busy(inst.port)
    start = time.monotonic()
    run_mix(inst.port, args.seconds, args.workers, rnd, out)
    took = time.monotonic() - start
    busy_sent, busy_got, busy_error = busy.finish()
    hub_count = hub.ask("count hub")
    hops_left = [hub.ask("count " + r) for r in out.hopped]
    hub.finish()
    left = memory.wait_connections_gone(inst.port, timeout=30)
    margin = margin_for(base)
    after = memory.wait_below(inst.pid, base.pss_kib + margin // KiB, timeout=30)

    print("   %d connections in %.0f s: %s" % (out.conns, took, ", ".join(
        "%s %d" % kv for kv in sorted(out.counts.items()))))
    print("   busy room: %d published, %d read; hub member saw %d refused joins"
          % (busy_sent, busy_got, hub.seen))
    print("   memory: %s; %s" % (memory.report(baseline=base, after=after),
                                   growth_by_process(base, after)), flush=True)
    problems = list(warm.errors) + list(out.errors)
    if busy_warm[2] or busy_error:
        problems.append("busy room: %s" % (busy_warm[2] or busy_error))
    if hub.error:
        problems.append("hub member: %s" % hub.error)
    if hub.seen != out.counts.get("refused open", 0):
        problems.append("the hub member got %d messages from %d refused opens"
                        % (hub.seen, out.counts.get("refused open", 0)))
    if hub_count != "count hub 1 1":
        problems.append("room hub should hold its one member, the server says %r" % hub_count)
    if hops_left != ["count %s 0 0" % r for r in out.hopped]:
        problems.append("hopped rooms still counted: %r" % hops_left)
    if left:
        problems.append("%d connections still open on the server 30 s after the end" % left)
    if after.pss_kib > base.pss_kib + margin // KiB:
        problems.append("memory did not come back: %.1f MiB over the baseline (margin %.1f MiB)"
                        % ((after.pss_kib - base.pss_kib) / 1024, margin / MiB))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", action="store_true", help="CI mode: about a minute in all")
    ap.add_argument("--seconds", type=float, help="soak time per MPM (default 75, --short 12)")
    ap.add_argument("--warmup", type=float, help="warm-up per MPM (default 15, --short 5)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: new, printed)")
    ap.add_argument("--mpm", choices=("event", "prefork", "both"), default="both")
    ap.add_argument("--workers", type=int, default=12, help="behaviours at once (default 12)")
    ap.add_argument("--keep", action="store_true", help="keep the server roots")
    args = ap.parse_args(argv)
    if args.seconds is None:
        args.seconds = 12 if args.short else 75
    if args.warmup is None:
        args.warmup = 5 if args.short else 15
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    print("soak seed %d (repeat with --seed %d)" % (seed, seed), flush=True)
    if memory.under_asan():
        os.environ.setdefault("ASAN_OPTIONS", ASAN_OPTIONS)
    args.keep = args.keep or os.environ.get("WSOCK_KEEP_DIRS") == "1"
    plugdir = tempfile.mkdtemp(prefix="wsock-soak-")
    os.chmod(plugdir, 0o755)
    sos = hostile.build_plugins(["tp_roomcmd", "tp_joinrefuse"], plugdir)
    mpms = ("event", "prefork") if args.mpm == "both" else (args.mpm,)
    try:
        results = {m: soak_one(m, args, sos, seed + k) for k, m in enumerate(mpms)}
    finally:
        shutil.rmtree(plugdir, ignore_errors=True)
    print("soak: %s (seed %d)" % (", ".join("%s %s" % (m, "ok" if r else "FAILED")
                                            for m, r in results.items()), seed))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
