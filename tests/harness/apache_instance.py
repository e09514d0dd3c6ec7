#!/usr/bin/python3
"""Start and stop a throw-away Debian apache2 that loads mod_wsock.

Used three ways:

* as a library by the integration tests (``ApacheInstance``),
* as a CLI by the benchmark and the demo script::

      /usr/bin/python3 tests/harness/apache_instance.py start --mpm event \\
          --conf EXTRA.conf [--port N] --dir DIR [--reqtimeout] [--loglevel L]
      /usr/bin/python3 tests/harness/apache_instance.py stop --dir DIR [--graceful]

  ``start`` prints the port on stdout and leaves apache2 running (detached, in
  its own session); ``stop`` stops it (as ApacheInstance.stop does, or only
  SIGWINCH with --graceful) and waits, bounded, until the process group is
  gone.

Everything is bound to 127.0.0.1.  The module path is taken from the
``WSOCK_MODULE`` environment variable, else ``<repo>/.libs/mod_wsock.so``.
Only the Python standard library is used.
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref

APACHE_BIN = os.environ.get("APACHE_BIN", "/usr/sbin/apache2")
APACHE_MODULES = os.environ.get("APACHE_MODULES", "/usr/lib/apache2/modules")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPMS = ("event", "worker", "prefork")

# Lines that mean a child died badly.  Checked by the tests after each test.
CRASH_RE = re.compile(r"child pid \d+ exit signal|AH00052|AH00051|AH02149|"
                      r"Segmentation fault|\bdumped core\b|AH00060|"
                      r"AddressSanitizer|LeakSanitizer|runtime error:")

# Small sizing for a 2-core box that still leaves room for ~100 concurrent
# WebSocket connections on the threaded MPMs (a blocking driver holds a
# thread per connection) and ~60 on prefork (a process per connection).
_THREADED_SIZING = """\
StartServers 2
ServerLimit 4
ThreadLimit 64
ThreadsPerChild 32
MinSpareThreads 16
MaxSpareThreads 128
MaxRequestWorkers 128
MaxConnectionsPerChild 0
"""

MPM_SIZING = {
    "event": _THREADED_SIZING,
    "worker": _THREADED_SIZING,
    "prefork": """\
StartServers 8
MinSpareServers 4
MaxSpareServers 80
ServerLimit 80
MaxRequestWorkers 80
MaxConnectionsPerChild 0
""",
}

# How long stop() lets the event MPM's children finish gracefully before it
# falls back to SIGTERM (see stop_signals): enough for lingering closes (2 s)
# and for clients that answer mod_wsock's 1001, below the
# GracefulShutdownTimeout of the generated config (10 s).  A client that
# never answers holds its child for WSockCloseTimeout (5 s) + 2 s.
GRACEFUL_STOP_WAIT = 5.0

REQTIMEOUT_CONF = "RequestReadTimeout handshake=5 header=20-40,MinRate=500 body=20,MinRate=500\n"


def default_module_path():
    return os.environ.get("WSOCK_MODULE") or os.path.join(REPO_ROOT, ".libs", "mod_wsock.so")


def free_port():
    """A currently free TCP port on 127.0.0.1 (racy by nature; start() retries)."""
    return free_ports(1)[0]


def free_ports(n):
    """n distinct free ports on 127.0.0.1: each socket stays bound until all
    are picked (picked one by one, the kernel may hand out again a port it
    just took back, and two servers would share it)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        state = stat.rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _live_members(pgid):
    """The pids of the group's processes that are alive (not zombies)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                yield int(entry)
        except (OSError, IndexError, ValueError):
            continue


def children_map():
    """{ppid: [pid, ...]} of every live (not zombie) process, from /proc."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def _pgroup_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds while only zombies remain; look at /proc.
    return any(True for _ in _live_members(pgid))


def _children_alive(pgid):
    """True while a process of the group other than its leader (apache2's
    parent) is alive; zombies do not count (the parent reaps them later)."""
    return any(pid != pgid for pid in _live_members(pgid))


def stop_signals(pid, mpm, graceful_wait=None):
    """Tell apache2 (parent pid, leader of its process group) to stop, the
    way every stop of this harness does it; returns at once after the last
    signal.  Returns True if the event MPM's children had all finished after
    the graceful part (always True for the other MPMs).

    Event MPM: a graceful stop (SIGWINCH) first, then SIGTERM once the
    children are gone or after graceful_wait seconds.  Why: a stop with
    SIGTERM alone makes each event child run close_worker_sockets(), which
    closes the socket of every worker thread that is still busy; a worker
    that is finishing its connection at that moment may already have
    destroyed the connection's pool, and the child then dies with SIGSEGV
    reading the freed socket (httpd's race, with or without mod_wsock:
    docs/drivers.md, "Known issues"; bench/stopcrash.py measures it).  The
    graceful path never calls close_worker_sockets().  The SIGTERM that
    follows is still needed: the parent polls for its exited children only
    once a second, and SIGTERM ends that wait at once.  If the children do
    not finish within graceful_wait (a client that keeps a request or a
    WebSocket open), the SIGTERM ends the parent's wait and apache2 stops
    the children that are left itself (SIGTERM, then SIGKILL some seconds
    later); stop() kills what is left after its timeout.  Tests of what
    SIGTERM does call terminate() themselves."""
    if mpm != "event":
        _signal_pid(pid, signal.SIGTERM)
        return True
    if graceful_wait is None:
        graceful_wait = GRACEFUL_STOP_WAIT
    _signal_pid(pid, signal.SIGWINCH)
    deadline = time.monotonic() + graceful_wait
    while _children_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    finished = not _children_alive(pid)
    _signal_pid(pid, signal.SIGTERM)
    return finished


def _signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class ApacheError(RuntimeError):
    pass


class ApacheInstance:
    """One apache2 process tree with a generated configuration.

    Parameters: mpm ('event'|'worker'|'prefork'), extra_conf (appended to
    httpd.conf), reqtimeout (load mod_reqtimeout with Debian's defaults),
    port (None: pick a free loopback port), loglevel (the whole LogLevel
    value, e.g. "info wsock:trace1"), module (path of mod_wsock.so),
    root (ServerRoot directory; None: a new temp dir), keep (do not remove
    the temp dir on stop; also forced by env WSOCK_KEEP_DIRS=1),
    mpm_conf (replaces the default MPM sizing), load_module (False: no
    LoadModule line for mod_wsock; extra_conf loads it, e.g. via wsock.load),
    launcher (a command prefix for apache2, e.g. ["taskset", "-c", "0"]).
    """

    def __init__(self, mpm="event", extra_conf="", reqtimeout=False, port=None,
                 loglevel="info", module=None, root=None, keep=False, mpm_conf=None,
                 start_timeout=20.0, load_module=True, launcher=None):
        if mpm not in MPMS:
            raise ValueError("mpm must be one of %s" % (MPMS,))
        self.mpm = mpm
        self.extra_conf = extra_conf or ""
        self.reqtimeout = reqtimeout
        self._fixed_port = port
        self.port = port
        self.loglevel = loglevel
        self.module = os.path.abspath(module or default_module_path())
        self.load_module = load_module
        self.keep = keep or os.environ.get("WSOCK_KEEP_DIRS") == "1"
        self.mpm_conf = mpm_conf if mpm_conf is not None else MPM_SIZING[mpm]
        self.start_timeout = start_timeout
        self.launcher = list(launcher or [])
        self._own_root = root is None
        self.root = os.path.abspath(root) if root else tempfile.mkdtemp(prefix="wsock-apache-")
        self.proc = None
        self.pid = None
        self._detached = False
        self._finalizer = None
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)
        for sub in ("conf", "logs", "run", "htdocs", "mutex"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
            os.chmod(os.path.join(self.root, sub), 0o755)
        # a crashed child leaves its core here (CoreDumpDirectory), and a
        # failing crash check prints its backtrace (core_backtraces)
        os.makedirs(os.path.join(self.root, "cores"), exist_ok=True)
        os.chmod(os.path.join(self.root, "cores"), 0o1777)
        with open(os.path.join(self.root, "htdocs", "index.html"), "w") as f:
            f.write("ok\n")
        os.chmod(os.path.join(self.root, "htdocs", "index.html"), 0o644)

    # ----------------------------------------------------------------- paths
    @property
    def conf_path(self):
        return os.path.join(self.root, "conf", "httpd.conf")

    @property
    def error_log_path(self):
        return os.path.join(self.root, "logs", "error.log")

    @property
    def stderr_path(self):
        return os.path.join(self.root, "logs", "stderr.log")

    @property
    def pidfile_path(self):
        return os.path.join(self.root, "run", "httpd.pid")

    # ---------------------------------------------------------------- config
    def render_conf(self):
        m = APACHE_MODULES
        r = self.root
        lines = [
            "# generated by tests/harness/apache_instance.py",
            'ServerRoot "%s"' % r,
            "Listen 127.0.0.1:%d" % self.port,
            'PidFile "%s"' % self.pidfile_path,
            'ErrorLog "%s"' % self.error_log_path,
            "LogLevel %s" % self.loglevel,
            'DefaultRuntimeDir "%s"' % os.path.join(r, "run"),
            'Mutex file:%s default' % os.path.join(r, "mutex"),
            'ScoreBoardFile "%s"' % os.path.join(r, "run", "scoreboard"),
            'CoreDumpDirectory "%s"' % os.path.join(r, "cores"),
            "ServerName 127.0.0.1",
            'DocumentRoot "%s"' % os.path.join(r, "htdocs"),
            "LoadModule mpm_%s_module %s/mod_mpm_%s.so" % (self.mpm, m, self.mpm),
            "LoadModule authz_core_module %s/mod_authz_core.so" % m,
            "LoadModule authn_core_module %s/mod_authn_core.so" % m,
        ]
        if self.reqtimeout:
            lines.append("LoadModule reqtimeout_module %s/mod_reqtimeout.so" % m)
            lines.append(REQTIMEOUT_CONF.rstrip("\n"))
        if self.load_module:
            lines.append('LoadModule wsock_module "%s"' % self.module)
        if os.geteuid() == 0:
            lines += ["User www-data", "Group www-data"]
        lines += [
            "GracefulShutdownTimeout 10",
            "Timeout 60",
            "KeepAlive On",
            self.mpm_conf.rstrip("\n"),
            "<Directory />",
            "    Require all granted",
            "</Directory>",
            "# ---- extra_conf",
            self.extra_conf.rstrip("\n"),
            "",
        ]
        return "\n".join(lines)

    def write_conf(self):
        if self.port is None:
            self.port = free_port()
        with open(self.conf_path, "w") as f:
            f.write(self.render_conf())
        os.chmod(self.conf_path, 0o644)
        return self.conf_path

    def configtest(self, timeout=30):
        """Run `apache2 -f conf -t`; returns (returncode, combined output)."""
        self.write_conf()
        p = subprocess.run([APACHE_BIN, "-f", self.conf_path, "-t"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=self._env())
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def _env(self):
        env = dict(os.environ)
        # Debian's apache2 expects these only through apache2ctl; harmless here.
        env.setdefault("APACHE_RUN_DIR", os.path.join(self.root, "run"))
        env.setdefault("APACHE_LOCK_DIR", os.path.join(self.root, "mutex"))
        env.setdefault("APACHE_LOG_DIR", os.path.join(self.root, "logs"))
        # A sanitizer-built module needs its runtime preloaded into apache2
        # (and only there: not into the test process).  Reports go to the
        # error log, where CRASH_RE finds them.
        preload = os.environ.get("WSOCK_APACHE_PRELOAD")
        if preload:
            env["LD_PRELOAD"] = preload
            # httpd frees its pools at exit only in part, by design.
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
            env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        return env

    # ----------------------------------------------------------------- start
    def start(self, detached=False):
        """Start apache2 and wait (bounded) until it serves. Returns self."""
        if self.proc is not None or self.pid is not None:
            raise ApacheError("already started")
        if self.load_module and not os.path.exists(self.module):
            raise ApacheError("mod_wsock not found at %s (build it, or set WSOCK_MODULE)"
                              % self.module)
        attempts = 1 if self._fixed_port else 4
        last = None
        for _ in range(attempts):
            if not self._fixed_port:
                self.port = None
            try:
                self._start_once(detached)
                return self
            except ApacheError as e:
                last = e
                self._kill_now()
                if "Address already in use" not in str(e) and "AH00072" not in str(e):
                    break
        raise last

    def _start_once(self, detached):
        self.write_conf()
        self._log_offset_at_start = self._log_size()
        out = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.launcher + [APACHE_BIN, "-f", self.conf_path, "-DFOREGROUND"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, env=self._env(), close_fds=True,
                preexec_fn=_allow_cores)
        finally:
            out.close()
        self.pid = self.proc.pid
        self._detached = detached
        if not detached:
            self._finalizer = weakref.finalize(self, _finalize_kill, self.pid, self.proc)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise ApacheError("apache2 exited with %s during startup:\n%s\n%s" % (
                    self.proc.returncode, self._read(self.stderr_path)[-4000:],
                    self.error_log()[-4000:]))
            if self._serves():
                return
            if time.monotonic() > deadline:
                raise ApacheError("apache2 did not serve on port %d within %.0fs:\n%s" % (
                    self.port, self.start_timeout, self.error_log()[-4000:]))
            time.sleep(0.05)

    def _serves(self):
        """The port accepts and a child answers a plain HTTP request."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.settimeout(3)
                s.sendall(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Connection: close\r\n\r\n")
                data = s.recv(64)
                return data.startswith(b"HTTP/1.")
        except OSError:
            return False

    # ------------------------------------------------------------ inspection
    def url(self, path="/", scheme=None):
        """ws:// (or the instance's .scheme, e.g. wss) URL of path."""
        scheme = scheme or getattr(self, "scheme", "ws")
        if not path.startswith("/"):
            path = "/" + path
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    @staticmethod
    def _read(path, offset=0):
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _log_size(self):
        try:
            return os.path.getsize(self.error_log_path)
        except OSError:
            return 0

    def log_offset(self):
        """Current size of the error log, for error_log(since=...)."""
        return self._log_size()

    def error_log(self, since=0):
        """Text of the error log (from byte offset `since`)."""
        return self._read(self.error_log_path, since)

    def wait_log(self, regex, timeout=10.0, since=0, flags=0):
        """Wait (bounded) for a line matching regex; returns the match or None."""
        rx = re.compile(regex, flags) if isinstance(regex, str) else regex
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.error_log(since))
            if m:
                return m
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def crash_lines(self, since=0):
        return [ln for ln in self.error_log(since).splitlines() if CRASH_RE.search(ln)]

    def core_backtraces(self, limit=12000):
        """Every thread's backtrace from each core a crashed child left (gdb,
        bounded in time and size); "" when there is none or no gdb."""
        cores = os.path.join(self.root, "cores")
        names = sorted(os.listdir(cores)) if os.path.isdir(cores) else []
        out = []
        for name in names[:3]:
            try:
                text = subprocess.run(
                    ["gdb", "-batch", "-nx", "-ex", "bt 40", "-ex", "thread apply all bt 25",
                     APACHE_BIN, os.path.join(cores, name)],
                    stdin=subprocess.DEVNULL, capture_output=True, text=True,
                    timeout=90).stdout
            except (OSError, subprocess.TimeoutExpired) as e:
                text = "gdb: %s" % e
            # the crashing thread comes first
            out.append("---- %s ----\n%s" % (name, text[:limit]))
        return "\n".join(out)

    def child_pids(self):
        """The live (not zombie) child processes of the parent, from /proc."""
        return set(children_map().get(self.pid, ())) if self.pid is not None else set()

    def running(self):
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and _pid_alive(self.pid)

    # -------------------------------------------------------------- signals
    def _signal(self, sig):
        if self.pid is None:
            raise ApacheError("not started")
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def graceful(self):
        """Graceful restart (SIGUSR1); returns without waiting."""
        self._signal(signal.SIGUSR1)

    def graceful_stop(self, wait=True, timeout=30.0):
        """Graceful stop (SIGWINCH). With wait, blocks (bounded) until gone."""
        self._signal(signal.SIGWINCH)
        if wait:
            return self.wait_exit(timeout)
        return None

    def terminate(self):
        """Send SIGTERM (stop) and return at once; see wait_exit()/stop()."""
        self._signal(signal.SIGTERM)

    def stop(self, timeout=20.0):
        """Stop (see stop_signals: event MPM graceful first, then SIGTERM),
        wait bounded, then SIGKILL the process group and clean up. Safe to
        call more than once and after graceful_stop."""
        if self.pid is None:
            return
        if self.running():
            stop_signals(self.pid, self.mpm)
        self.wait_exit(timeout)
        self._kill_now()
        if self._own_root and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def wait_exit(self, timeout=20.0):
        """Wait (bounded) until the parent and its children are gone.
        Returns True if they went away by themselves."""
        if self.pid is None:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running() and not _pgroup_alive(self.pid):
                return True
            time.sleep(0.05)
        return False

    def _kill_now(self):
        if self.pid is None:
            return
        _killpg(self.pid, signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # children are reaped by init; wait until they vanish (bounded)
        deadline = time.monotonic() + 10
        while _pgroup_alive(self.pid) and time.monotonic() < deadline:
            _killpg(self.pid, signal.SIGKILL)
            time.sleep(0.05)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self.proc = None
        self.pid = None

    def __enter__(self):
        if self.pid is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return "<ApacheInstance mpm=%s port=%s root=%s>" % (self.mpm, self.port, self.root)


def _allow_cores():
    """In the forked apache2, before exec: core files allowed (the shell's
    soft limit is often 0), so CoreDumpDirectory gets one on a crash.  No
    import here: another thread may have held the import lock at the fork."""
    try:
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    except (ValueError, OSError):
        pass


def _finalize_kill(pid, proc):
    """Last resort at garbage collection / interpreter exit."""
    _killpg(pid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except Exception:
        pass


# ====================================================================== CLI
STATE_FILE = "harness.json"


def _cli_start(args):
    extra = ""
    if args.conf:
        with open(args.conf) as f:
            extra = f.read()
    inst = ApacheInstance(mpm=args.mpm, extra_conf=extra, reqtimeout=args.reqtimeout,
                          port=args.port, loglevel=args.loglevel, module=args.module,
                          root=args.dir, keep=True)
    state_path = os.path.join(inst.root, STATE_FILE)
    if os.path.exists(state_path):
        with open(state_path) as f:
            old = json.load(f)
        if _pid_alive(old.get("pid", -1)):
            sys.stderr.write("an instance is already running from %s (pid %d)\n"
                             % (inst.root, old["pid"]))
            return 1
    try:
        inst.start(detached=True)
    except ApacheError as e:
        sys.stderr.write("%s\n" % e)
        return 1
    with open(state_path, "w") as f:
        json.dump({"pid": inst.pid, "port": inst.port, "mpm": inst.mpm,
                   "conf": inst.conf_path, "error_log": inst.error_log_path}, f)
    # Leave it running: forget the Popen without killing it.
    inst.proc = None
    print(inst.port)
    return 0


def _cli_stop(args):
    state_path = os.path.join(os.path.abspath(args.dir), STATE_FILE)
    try:
        with open(state_path) as f:
            state = json.load(f)
    except FileNotFoundError:
        sys.stderr.write("no instance recorded in %s\n" % args.dir)
        return 1
    pid = state["pid"]
    if _pid_alive(pid):
        if args.graceful:
            _signal_pid(pid, signal.SIGWINCH)
        else:
            stop_signals(pid, state.get("mpm", "event"))
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and (_pid_alive(pid) or _pgroup_alive(pid)):
        time.sleep(0.05)
    clean = not (_pid_alive(pid) or _pgroup_alive(pid))
    deadline = time.monotonic() + 10
    while _pgroup_alive(pid) and time.monotonic() < deadline:
        _killpg(pid, signal.SIGKILL)
        time.sleep(0.05)
    os.unlink(state_path)
    if not clean:
        sys.stderr.write("apache2 (pid %d) did not stop within %.0fs; killed\n"
                         % (pid, args.timeout))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start apache2 detached and print its port")
    s.add_argument("--mpm", choices=MPMS, default="event")
    s.add_argument("--conf", help="file whose text is appended to httpd.conf")
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--dir", required=True, help="ServerRoot (created if missing)")
    s.add_argument("--reqtimeout", action="store_true", help="load mod_reqtimeout")
    s.add_argument("--loglevel", default="info", help='LogLevel value, e.g. "info wsock:trace1"')
    s.add_argument("--module", default=None, help="mod_wsock.so (default: $WSOCK_MODULE "
                   "or <repo>/.libs/mod_wsock.so)")
    t = sub.add_parser("stop", help="stop an instance started with `start`")
    t.add_argument("--dir", required=True)
    t.add_argument("--graceful", action="store_true", help="graceful-stop (SIGWINCH)")
    t.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args(argv)
    return _cli_start(args) if args.cmd == "start" else _cli_stop(args)


if __name__ == "__main__":
    sys.exit(main())
