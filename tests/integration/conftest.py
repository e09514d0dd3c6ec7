"""Shared fixtures for the mod_wsock integration tests.

Every test talks to a real /usr/sbin/apache2 on 127.0.0.1 that loads
mod_wsock (env WSOCK_MODULE, default <repo>/.libs/mod_wsock.so).
Run with Debian's interpreter:  /usr/bin/python3 -m pytest -q tests/integration
"""

import asyncio
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
sys.path.insert(0, HERE)

from apache_instance import ApacheInstance, default_module_path  # noqa: E402

# ---------------------------------------------------------------- the config
# One configuration holds every location the tests need, so one apache per
# MPM and test module is enough.
COMMON_CONF = """\
<Location /echo>
    WSockHandler echo
</Location>

<Location /big>
    WSockHandler echo
    WSockMaxMessageSize 4194304
</Location>

<Location /small>
    WSockHandler echo
    WSockMaxMessageSize 1000
</Location>
# nested: inherits the handler, overrides the limit
<Location /small/larger>
    WSockMaxMessageSize 5000
</Location>

<Location /proto>
    WSockHandler echo
    WSockProtocols chat superchat v2.json
</Location>
# nested: inherits handler and protocols, adds the requirement
<Location /proto/strict>
    WSockRequireProtocol On
</Location>

<Location /frag>
    WSockHandler echo
    WSockFragmentSize 1000
</Location>

<Location /ping>
    WSockHandler echo
    WSockPingInterval 0.5
    WSockIdleTimeout 0
</Location>

<Location /idle>
    WSockHandler echo
    WSockPingInterval 0
    WSockIdleTimeout 2
</Location>

<Location /idleping>
    WSockHandler echo
    WSockPingInterval 0.5
    WSockIdleTimeout 2
</Location>

<Location /closewait>
    WSockHandler echo
    WSockPingInterval 0
    WSockIdleTimeout 1
    WSockCloseTimeout 1
</Location>
"""

# prefork with many children: clients spread over child processes, so rooms
# only meet through the in-server bus.
PREFORK_MANY = """\
StartServers 16
MinSpareServers 8
MaxSpareServers 80
ServerLimit 80
MaxRequestWorkers 80
MaxConnectionsPerChild 0
"""

MODULE_PATH = default_module_path()

_session_dir = None
_started = []          # every instance started in this session
_failed = [False]


def session_dir():
    global _session_dir
    if _session_dir is None:
        _session_dir = tempfile.mkdtemp(prefix="wsock-it-")
        os.chmod(_session_dir, 0o755)
    return _session_dir


def new_instance(mpm="event", extra_conf=COMMON_CONF, **kw):
    """Create (not start) an instance whose ServerRoot lives in the session
    dir and is kept until the session ends (removed if everything passed)."""
    if not os.path.exists(MODULE_PATH):
        pytest.fail("mod_wsock.so not found at %s: build it (./autogen.sh && ./configure "
                    "&& make) or set WSOCK_MODULE" % MODULE_PATH, pytrace=False)
    root = tempfile.mkdtemp(prefix="%s-" % mpm, dir=session_dir())
    inst = ApacheInstance(mpm=mpm, extra_conf=extra_conf, root=root, keep=True,
                          module=MODULE_PATH, **kw)
    _started.append(inst)
    return inst


def crash_check(inst, since=0):
    lines = inst.crash_lines(since)
    assert not lines, "crash lines in %s:\n%s\n%s" % (
        inst.error_log_path, "\n".join(lines), inst.core_backtraces())


@pytest.fixture
def apache_factory():
    """Function-scoped: start instances on demand; all are stopped after the
    test (SIGKILL of the process group as a last resort)."""
    made = []

    def make(mpm="event", extra_conf=COMMON_CONF, start=True, **kw):
        inst = new_instance(mpm, extra_conf, **kw)
        made.append(inst)
        if start:
            inst.start()
        return inst

    yield make
    for inst in made:
        inst.stop()
    for inst in made:
        crash_check(inst)


def serve(inst):
    """Generator body for a fixture: start inst, yield it, stop it, and fail
    if it logged a crash."""
    try:
        inst.start()
        yield inst
    finally:
        inst.stop()
    crash_check(inst)


def _module_server(request, mpm):
    yield from serve(new_instance(mpm))


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request):
    """One apache per test module and MPM (event, prefork) with COMMON_CONF."""
    yield from _module_server(request, request.param)


@pytest.fixture(scope="module", params=["event", "worker", "prefork"])
def server3(request):
    """Like `server`, over all three MPMs."""
    yield from _module_server(request, request.param)


@pytest.fixture(autouse=True)
def no_crash_lines(request):
    """After every test: no instance logged a crashed child during it."""
    offsets = {id(i): i.log_offset() for i in _started}
    request.node._wsock_offsets = offsets
    yield
    for inst in list(_started):
        crash_check(inst, offsets.get(id(inst), 0))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        _failed[0] = True
        offsets = getattr(item, "_wsock_offsets", None)
        if offsets is not None and call.when in ("call", "teardown"):
            for inst in _started:
                text = inst.error_log(offsets.get(id(inst), 0))
                if text.strip():
                    rep.sections.append(("apache %s error log (%s)" % (inst.mpm, inst.root),
                                         text[-6000:]))


def pytest_sessionfinish(session, exitstatus):
    for inst in _started:
        try:
            inst.stop()
        except Exception:
            pass
    if _session_dir is None:
        return
    if _failed[0] or exitstatus not in (0, 5) or os.environ.get("WSOCK_KEEP_DIRS") == "1":
        sys.stderr.write("\nmod_wsock integration: server roots and logs kept in %s\n"
                         % _session_dir)
    else:
        shutil.rmtree(_session_dir, ignore_errors=True)


# ------------------------------------------------------------------ TLS
APACHE_MODULES_DIR = "/usr/lib/apache2/modules"


def tls_conf(dirpath):
    """mod_ssl on, with a fresh self-signed certificate for 127.0.0.1 made
    by openssl in dirpath.  Returns (config lines, certificate path)."""
    os.chmod(dirpath, 0o755)
    cert, key = os.path.join(dirpath, "cert.pem"), os.path.join(dirpath, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)
    conf = """
LoadModule socache_shmcb_module {mods}/mod_socache_shmcb.so
LoadModule ssl_module {mods}/mod_ssl.so
SSLEngine on
SSLCertificateFile {cert}
SSLCertificateKeyFile {key}
SSLSessionCache shmcb:{d}/ssl_scache(512000)
""".format(mods=APACHE_MODULES_DIR, cert=cert, key=key, d=dirpath)
    return conf, cert


def client_tls(cert):
    """A client context that trusts exactly that certificate."""
    return ssl.create_default_context(cafile=cert)


# ------------------------------------------------------------------ helpers
def run(coro, timeout=60):
    """Run a coroutine with an overall upper bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


TAG_RE = re.compile(r"WSOCK\d{4}")


def new_tags(inst, since):
    return set(TAG_RE.findall(inst.error_log(since)))
