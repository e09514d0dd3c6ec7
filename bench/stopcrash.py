#!/usr/bin/python3
"""stopcrash.py — does apache2 (event MPM) crash at stop, with and without mod_wsock?

    bench/stopcrash.py [-n CYCLES] [-V VARIANT,...] [--stop sigterm|harness]
                       [--load-ms MS] [--out DIR] [--keep-cores N]

Issue 12, item 7: a child of the event MPM sometimes dies with SIGSEGV in
close_worker_sockets() when the server is stopped with SIGTERM (about one
stop in 150 in the integration suite).  This loops CYCLES times over the
variants, interleaved (so a disturbance on the machine hits all alike):

  plain       the harness's event-MPM config (tests/harness/apache_instance.py,
              its sizing) with no LoadModule for mod_wsock and no WSock
              directive; plain HTTP load (requests for a 404, keep-alive and
              not);
  wsock-http  the same config plus `LoadModule wsock_module` and a
              `<Location /echo> WSockHandler echo`; the same plain HTTP load
              only (is loading the module enough?);
  wsock       that config with the HTTP load plus open WebSockets (echoing)
              and handshakes in flight (half sent) at the moment of the stop;
  wsock-reset (only when named) the wsock-http config and load plus clients
              that send a whole handshake and reset the connection (RST)
              tens of microseconds later, so that the 101 often cannot be
              written: it reproduces a crash of mod_wsock's own, at any time
              rather than at the stop (docs/drivers.md, "Known issues").

Each cycle: start apache2, put the load on it for LOAD_MS, stop it the way
the tests did (SIGTERM to the parent; --stop harness: as the harness's
stop does now, stop_signals(): for the event MPM a graceful stop first,
SIGTERM once the children are gone or after 5 s), keep the load on
until the process group is gone, then count "child pid N exit signal
Segmentation fault" in the error log (AH00052; AH00051 when the child
dumped core) and every other crash line the tests look for.  Core dumps
are on (RLIMIT_CORE unlimited, CoreDumpDirectory in the ServerRoot; the
kernel's core_pattern must be a relative name such as "core"; run as root,
so that the children, which run as www-data, may dump); for each core, gdb
writes every thread's backtrace, the crashing thread's frames with their
offsets in their files (Debian's modules are stripped: the offsets lead to
the instructions in `objdump -d`), its registers and the faulting
instructions into the crash's directory under --out, and the crashing
thread's frames are printed; a crash whose crashing thread has a frame in
mod_wsock counts as the module's ("in module").  The error log, the config
and the first --keep-cores cores of each variant are kept there too.

Everything talks to 127.0.0.1 only; every wait is bounded.  Prints one line
per crash and, at the end, the counts per variant and a last line
`TABLE key=value ...`.  Exit status: 0 (the counts are the result), 2 on a
usage or setup error.
"""

import argparse
import glob
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import apache_instance  # noqa: E402
import rawws  # noqa: E402

VARIANTS = ("plain", "wsock-http", "wsock", "wsock-reset")
DEFAULT_VARIANTS = VARIANTS[:3]
ECHO_CONF = "<Location /echo>\n    WSockHandler echo\n</Location>\n"
SEGV_LINE = "exit signal Segmentation fault"
IO_TIMEOUT = 1.0           # every socket operation of the load
STOP_TIMEOUT = 30.0        # the whole stop, whatever the stop procedure


# ----------------------------------------------------------------- the load
class Load:
    """Client threads that hammer one instance until told to stop.

    HTTP threads send GETs for a missing file (a 404 is the cheapest full
    request), a few per keep-alive connection, some with Connection: close,
    and now and then a connection that is dropped in the middle of a
    request.  WebSocket threads (variant wsock) keep up to 16 WebSockets
    open each, echo a small message on one of them per turn, open new ones,
    close some (close frame, or just the socket), and leave handshakes half
    sent.  Reset threads (variant wsock-reset) send whole handshakes and
    reset each connection a moment later."""

    def __init__(self, port, http_threads, ws_threads, reset_threads=0):
        self.port = port
        self.stopping = threading.Event()
        self.requests = 0            # answered (any status), for the report
        self.ws_opened = 0
        self.resets = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._http, args=(i,), daemon=True)
                        for i in range(http_threads)]
        self.threads += [threading.Thread(target=self._ws, args=(i,), daemon=True)
                         for i in range(ws_threads)]
        self.threads += [threading.Thread(target=self._reset, args=(i,), daemon=True)
                         for i in range(reset_threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)

    def _count(self, attr):
        with self.lock:
            setattr(self, attr, getattr(self, attr) + 1)

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def _http(self, seed):
        rnd = random.Random(seed)
        n = 0
        while not self.stopping.is_set():
            try:
                with self._connect() as s:
                    for k in range(rnd.randint(1, 5)):
                        n += 1
                        last = k == 4 or rnd.random() < 0.2
                        req = ("GET /missing-%d HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                               % (n, "Connection: close\r\n" if last else ""))
                        if rnd.random() < 0.05:      # dropped mid-request
                            s.sendall(req[:20].encode())
                            break
                        s.sendall(req.encode())
                        resp, _ = rawws.read_http_response(s, timeout=IO_TIMEOUT)
                        self._count("requests")
                        if last or resp.header("Connection", "").lower() == "close":
                            break
            except (OSError, ValueError, IndexError, AssertionError, rawws.Closed):
                # Refused or reset while the server stops: try again soon.
                self.stopping.wait(0.002)

    def _reset(self, seed):
        rnd = random.Random(2000 + seed)
        req = rawws.handshake_request("/echo")
        while not self.stopping.is_set():
            try:
                s = self._connect()
            except OSError:
                self.stopping.wait(0.002)
                continue
            try:
                s.sendall(req)
                # The server reads the request and answers within some tens
                # of microseconds: reset somewhere in that window.
                until = time.perf_counter() + rnd.uniform(0, 400e-6)
                while time.perf_counter() < until:
                    pass
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self._count("resets")
            except OSError:
                pass
            finally:
                s.close()

    def _ws(self, seed):
        rnd = random.Random(1000 + seed)
        open_ws, half = [], []
        try:
            while not self.stopping.is_set():
                try:
                    self._ws_turn(rnd, open_ws, half)
                except (OSError, ValueError, IndexError, AssertionError, rawws.Closed):
                    self.stopping.wait(0.002)
        finally:
            for w in open_ws:
                w.close_socket()
            for s in half:
                s.close()

    def _ws_turn(self, rnd, open_ws, half):
        # A new WebSocket (its handshake), up to 16 open.
        if len(open_ws) < 16:
            open_ws.append(rawws.RawWS.connect(self.port, "/echo", timeout=IO_TIMEOUT))
            self._count("ws_opened")
        # An echo on one of them.
        w = rnd.choice(open_ws)
        try:
            w.send_text("x" * rnd.randint(1, 200))
            w.recv_message(timeout=IO_TIMEOUT)
        except (OSError, rawws.Closed, ValueError, AssertionError):
            open_ws.remove(w)
            w.close_socket()
            raise
        # Some end: politely or not.
        if rnd.random() < 0.2:
            w = open_ws.pop(rnd.randrange(len(open_ws)))
            if rnd.random() < 0.5:
                try:
                    w.send_close(1000)
                except OSError:
                    pass
            w.close_socket()
        # A handshake left half sent; the previous one completed (its
        # answer not awaited) or dropped.
        if half:
            s = half.pop()
            try:
                if rnd.random() < 0.5:
                    s.sendall(b"\r\n\r\n")
            finally:
                s.close()
        s = self._connect()
        req = rawws.handshake_request("/echo")
        s.sendall(req[:rnd.randrange(10, len(req) - 4)])
        half.append(s)


# ---------------------------------------------------------------- one cycle
def cores_in(d):
    return sorted(glob.glob(os.path.join(d, "core*")))


def stop_instance(inst, how):
    """Stop it; return (seconds until the process group was gone, whether
    the graceful part ran out of time and SIGTERM stopped the children)."""
    t0 = time.monotonic()
    timed_out = False
    if how == "harness":
        timed_out = not apache_instance.stop_signals(inst.pid, inst.mpm)
    else:
        inst.terminate()
    inst.wait_exit(STOP_TIMEOUT)
    return time.monotonic() - t0, timed_out


def run_gdb(core, cmds):
    args = ["gdb", "-batch", "-nx", "-ex", "set pagination off"]
    for c in cmds:
        args += ["-ex", c]
    args += [apache_instance.APACHE_BIN, core]
    try:
        return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=120).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return "gdb failed: %s\n" % e


def crashed_thread(bt_all):
    """(gdb thread number, its frame lines) of the thread that took the
    fatal signal.  When apache2's own handler (sig_coredump) ran, it
    re-raised the signal with kill() from that thread, so it is the one
    whose stack shows "<signal handler called>" (the frames below that
    marker are where it crashed); otherwise it is the thread gdb names
    current in the core."""
    current = None
    threads = {}
    num = None
    for ln in bt_all.splitlines():
        if ln.startswith("[Current thread is "):
            current = ln.split()[3]
        elif ln.startswith("Thread "):
            num = ln.split()[1]
            threads[num] = []
        elif ln.startswith("#") and num is not None:
            threads[num].append(ln.strip())
    for n, frames in threads.items():
        if any("<signal handler called>" in f for f in frames):
            return n, frames
    return current, threads.get(current, [])


def mappings(text):
    """[(start, end, objfile)] from gdb's `info proc mappings`."""
    out = []
    for ln in text.splitlines():
        f = ln.split()
        if len(f) == 5 and f[0].startswith("0x") and f[4].startswith("/"):
            out.append((int(f[0], 16), int(f[1], 16), f[4]))
    return out


def with_offsets(frames, maps):
    """Each frame plus "[file+0xOFFSET]": the address relative to where its
    file is mapped, which names the same instruction in `objdump -d` of that
    file (Debian's apache2 modules are stripped: no function names)."""
    base = {}
    for lo, _, obj in maps:
        base[obj] = min(lo, base.get(obj, lo))
    out = []
    for fr in frames:
        words = fr.split()
        addr = next((int(w, 16) for w in words[1:3] if w.startswith("0x")), None)
        obj = next((o for lo, hi, o in maps if addr is not None and lo <= addr < hi), None)
        out.append(fr + ("  [%s+0x%x]" % (os.path.basename(obj), addr - base[obj])
                         if obj else ""))
    return out


def gdb_report(core, path):
    """Every thread's backtrace, then the crashing thread again with each
    frame's file offset, its registers and the faulting instructions.  Debian's
    apache2 has no debug info here: frames in mod_mpm_event.so show as "??",
    the offsets say where to look in its disassembly."""
    first = run_gdb(core, ["info threads", "thread apply all bt 30",
                           "info proc mappings"])
    num, frames = crashed_thread(first)
    frames = with_offsets(frames, mappings(first))
    text = "== crashing thread: %s\n%s\n\n" % (num, "\n".join(frames))
    if num:
        mark = next((i + 1 for i, f in enumerate(frames)
                     if "<signal handler called>" in f), 0)
        text += run_gdb(core, ["thread %s" % num, "frame %d" % mark,
                               "info registers", "x/16i $pc-32"])
    text += "\n== all threads\n" + first
    with open(path, "w") as f:
        f.write(text)
    return frames


def cycle(variant, args, stats, n):
    conf = ECHO_CONF if variant != "plain" else ""
    inst = apache_instance.ApacheInstance(
        mpm="event", load_module=variant != "plain", keep=True, loglevel="info",
        extra_conf=conf)
    cores = os.path.join(inst.root, "cores")
    os.makedirs(cores)
    os.chmod(cores, 0o1777)                 # the children dump as www-data
    inst.extra_conf += 'CoreDumpDirectory "%s"\n' % cores
    st = stats[variant]
    try:
        inst.start()
    except apache_instance.ApacheError as e:
        st["start_failed"] += 1
        print("%s cycle %d: did not start: %s" % (variant, n, str(e)[:300]), flush=True)
        inst.stop()
        shutil.rmtree(inst.root, ignore_errors=True)
        return
    load = Load(inst.port, args.http_threads, args.ws_threads if variant == "wsock" else 0,
                args.ws_threads if variant == "wsock-reset" else 0)
    load.start()
    time.sleep(args.load_ms / 1000.0)       # the load runs while it stops
    secs, timed_out = stop_instance(inst, args.stop)
    load.stop()
    clean = not inst.running()
    inst.stop()                             # SIGKILL whatever is left
    log = inst.error_log()
    st["cycles"] += 1
    st["stop_seconds"] += secs
    st["stop_max"] = max(st["stop_max"], secs)
    st["graceful_timeouts"] += timed_out
    st["requests"] += load.requests
    st["ws_opened"] += load.ws_opened
    st["resets"] += load.resets
    st["killed"] += not clean
    if secs >= args.keep_slow:
        st["slow"] += 1
        slow = os.path.join(args.out, "slow-%s-%04d" % (variant, n))
        os.makedirs(slow, exist_ok=True)
        shutil.copy(inst.error_log_path, slow)
    segv = [ln for ln in log.splitlines() if SEGV_LINE in ln]
    other = [ln for ln in log.splitlines()
             if apache_instance.CRASH_RE.search(ln) and SEGV_LINE not in ln
             and "AH00052" not in ln]
    found = cores_in(cores)
    if segv or other or found:
        st["crash_cycles"] += 1
        st["segv_lines"] += len(segv)
        st["other_crash_lines"] += len(other)
        st["cores"] += len(found)
        keep = os.path.join(args.out, "%s-%04d" % (variant, n))
        os.makedirs(keep, exist_ok=True)
        shutil.copy(inst.error_log_path, keep)
        shutil.copy(inst.conf_path, keep)
        print("%s cycle %d: %s" % (variant, n, "; ".join((segv + other)[:3]) or
                                   "a core, no log line"), flush=True)
        for i, core in enumerate(found):
            frames = gdb_report(core, os.path.join(keep, "gdb-%d.txt" % i))
            # Whose crash: a frame of the crashing thread in mod_wsock
            # (its own code has debug info: "at src/...", or the .so).
            st["in_module"] += any("mod_wsock" in f or " at src/" in f for f in frames)
            for ln in frames[:9] or ["(no thread with a signal frame; see gdb-%d.txt)" % i]:
                print("    " + ln, flush=True)
            if st["cores_kept"] < args.keep_cores:
                st["cores_kept"] += 1
                shutil.move(core, os.path.join(keep, "core-%d" % i))
    shutil.rmtree(inst.root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("-n", "--cycles", type=int, default=300,
                    help="start/stop cycles per variant (default 300)")
    ap.add_argument("-V", "--variants", default=",".join(DEFAULT_VARIANTS),
                    help="comma-separated, of %s (default: %s)"
                    % (", ".join(VARIANTS), ",".join(DEFAULT_VARIANTS)))
    ap.add_argument("--stop", choices=("sigterm", "harness"), default="sigterm",
                    help="sigterm: SIGTERM alone (what the tests did); harness: what "
                    "ApacheInstance.stop() does now (a graceful stop first)")
    ap.add_argument("--load-ms", type=int, default=300,
                    help="load before the stop signal, ms (default 300)")
    ap.add_argument("--http-threads", type=int, default=6)
    ap.add_argument("--ws-threads", type=int, default=3)
    ap.add_argument("--out", default=None, help="where crashes are kept "
                    "(default /tmp/stopcrash-<time>)")
    ap.add_argument("--keep-cores", type=int, default=3,
                    help="cores kept per variant (default 3; each is tens of MB)")
    ap.add_argument("--keep-slow", type=float, default=2.0,
                    help="keep the error log of a stop that took this long or more, "
                    "seconds (default 2)")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if not variants or any(v not in VARIANTS for v in variants):
        ap.error("variants are %s" % ", ".join(VARIANTS))
    if not 1 <= args.cycles <= 100000:
        ap.error("--cycles must be 1..100000")
    if os.geteuid() != 0:
        ap.error("run as root: the children dump core only after apache2 drops "
                 "privileges with CoreDumpDirectory set, which needs a root start")
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    if pattern.startswith("|") or "/" in pattern:
        print("stopcrash: core_pattern is %r: cores will not land in CoreDumpDirectory; "
              "crashes are still counted" % pattern, file=sys.stderr)
    if shutil.which("gdb") is None:
        print("stopcrash: no gdb: cores are kept, not symbolized", file=sys.stderr)
    if any(v != "plain" for v in variants) and \
            not os.path.exists(apache_instance.default_module_path()):
        ap.error("no module at %s (build it, or set WSOCK_MODULE)"
                 % apache_instance.default_module_path())
    args.out = args.out or time.strftime("/tmp/stopcrash-%Y%m%d-%H%M%S")
    os.makedirs(args.out, exist_ok=True)
    resource.setrlimit(resource.RLIMIT_CORE,
                       (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))

    stats = {v: dict(cycles=0, crash_cycles=0, segv_lines=0, other_crash_lines=0,
                     cores=0, in_module=0, cores_kept=0, start_failed=0, killed=0,
                     graceful_timeouts=0, stop_seconds=0.0, stop_max=0.0,
                     requests=0, ws_opened=0, resets=0, slow=0) for v in variants}
    t0 = time.monotonic()
    print("stopcrash: %d cycles x %s, stop by %s, load %d ms, module %s, out %s"
          % (args.cycles, "/".join(variants), args.stop, args.load_ms,
             apache_instance.default_module_path(), args.out), flush=True)
    try:
        for n in range(1, args.cycles + 1):
            for v in variants:
                cycle(v, args, stats, n)
            if n % 25 == 0:
                print("after %d cycles (%.0f s): %s" % (
                    n, time.monotonic() - t0, ", ".join(
                        "%s %d/%d" % (v, stats[v]["crash_cycles"], stats[v]["cycles"])
                        for v in variants)), flush=True)
    finally:
        print("\n== stopcrash: %s, %s, stop by %s, load %d ms, %.0f s"
              % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 subprocess.run([apache_instance.APACHE_BIN, "-v"], stdout=subprocess.PIPE)
                 .stdout.decode().splitlines()[0], args.stop, args.load_ms,
                 time.monotonic() - t0))
        fmt = "%-11s %7s %13s %6s %6s %6s %10s %9s %9s %10s %8s"
        print(fmt % ("variant", "cycles", "crash cycles", "segv", "other", "cores",
                     "in module", "stop avg", "stop max", "requests", "ws"))
        table = ["stop=%s" % args.stop, "load_ms=%d" % args.load_ms]
        for v in variants:
            s = stats[v]
            print(fmt % (v, s["cycles"], s["crash_cycles"], s["segv_lines"],
                         s["other_crash_lines"], s["cores"], s["in_module"],
                         "%.2f s" % (s["stop_seconds"] / max(1, s["cycles"])),
                         "%.2f s" % s["stop_max"], s["requests"], s["ws_opened"]))
            if s["slow"]:
                print("  %s: %d stops took %.0f s or more (error logs kept)"
                      % (v, s["slow"], args.keep_slow))
            if s["resets"]:
                print("  %s: %d handshakes reset by the client" % (v, s["resets"]))
            if s["start_failed"] or s["killed"] or s["graceful_timeouts"]:
                print("  %s: %d failed to start, %d had to be killed, %d graceful stops "
                      "timed out" % (v, s["start_failed"], s["killed"],
                                     s["graceful_timeouts"]))
            for key in ("cycles", "crash_cycles", "segv_lines", "cores", "in_module"):
                table.append("%s_%s=%d" % (v.replace("-", "_"), key, s[key]))
        print("crashes kept in %s" % args.out)
        print("TABLE " + " ".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
