"""Handler plugins through a real apache2: the example plugin
(examples/reverse), and the test plugins in tests/integration/plugins,
built with apxs against the public header only.

- tp_facts: reports the request facts, refuses or fails on request;
- tp_wrong_api: built for WSOCK_API_VERSION + 1;
- tp_nosym: a .so without the "wsock_plugin" symbol;
- tp_strict: a create_config that rejects bad arguments.

The example is built twice: against include/ of this tree, and out of tree
with its own Makefile against the wsock.h that `make install DESTDIR=...`
installs; the live tests load the out-of-tree build.
"""

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import websockets

import rawws
from conftest import crash_check, new_instance, run, serve, session_dir

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PLUGIN_SRC = os.path.join(HERE, "plugins")
EXAMPLE_SRC = os.path.join(REPO, "examples", "reverse")
TEST_PLUGINS = ("tp_facts", "tp_wrong_api", "tp_nosym", "tp_strict")
WARN = ["-Wc,-Wall", "-Wc,-Wextra", "-Wc,-Werror"]


# ------------------------------------------------------------------ building
def _run(cmd, cwd, timeout=180):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "%s failed (rc %d):\n%s" % (" ".join(cmd), p.returncode,
                                                          out[-4000:])
    return out


def apxs_build(src, outdir, include):
    """apxs -c one plugin source in outdir; returns the path of the .so."""
    os.makedirs(outdir, exist_ok=True)
    shutil.copy(src, outdir)
    name = os.path.splitext(os.path.basename(src))[0]
    _run(["apxs", "-c", "-I" + include] + WARN + [name + ".c"], outdir)
    so = os.path.join(outdir, ".libs", name + ".so")
    assert os.path.isfile(so), so
    return so


def apxs_query(var):
    return subprocess.run(["apxs", "-q", var], check=True, stdout=subprocess.PIPE,
                          timeout=30).stdout.decode().strip()


@pytest.fixture(scope="module")
def plugins():
    """Builds everything once per test module; returns {name: path of .so}."""
    base = tempfile.mkdtemp(prefix="plugins-", dir=session_dir())
    os.chmod(base, 0o755)
    include = os.path.join(REPO, "include")
    sos = {}
    for name in TEST_PLUGINS:
        sos[name] = apxs_build(os.path.join(PLUGIN_SRC, name + ".c"),
                               os.path.join(base, "tp"), include)
    sos["reverse_in_tree"] = apxs_build(os.path.join(EXAMPLE_SRC, "wsock_reverse.c"),
                                        os.path.join(base, "reverse-in-tree"), include)

    # Out of tree: the installed header and the example's own Makefile.
    dest = os.path.join(base, "dest")
    _run(["make", "-s", "install", "DESTDIR=" + dest], REPO)
    installed = dest + apxs_query("INCLUDEDIR")
    assert os.path.isfile(os.path.join(installed, "wsock.h"))
    tree = os.path.join(base, "reverse-out-of-tree")
    os.makedirs(tree)
    for f in ("wsock_reverse.c", "Makefile"):
        shutil.copy(os.path.join(EXAMPLE_SRC, f), tree)
    _run(["make", "WSOCK_INCLUDE=" + installed, "WARN=" + " ".join(WARN)], tree)
    sos["reverse"] = os.path.join(tree, ".libs", "wsock_reverse.so")
    for dirpath, dirnames, filenames in os.walk(base):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    return sos


# -------------------------------------------------------------------- server
SERVER_CONF = """\
LoadModule auth_basic_module {mods}/mod_auth_basic.so
LoadModule authn_file_module {mods}/mod_authn_file.so
LoadModule authz_user_module {mods}/mod_authz_user.so

WSockPlugin reverse {reverse}
# the same .so under a second name: child_init must still run once
WSockPlugin mirror {reverse}
WSockPlugin facts {tp_facts}
WSockPlugin strict {tp_strict}

<Location /reverse>
    WSockHandler reverse
</Location>
<Location /prefixed>
    WSockHandler reverse "prefix=>> "
</Location>
<Location /mirror>
    WSockHandler mirror prefix=M:
</Location>

<Location /facts>
    WSockHandler facts "arg one" two
    WSockProtocols chat
</Location>
<Location /facts-auth>
    WSockHandler facts
    AuthType Basic
    AuthName "wsock test"
    AuthBasicProvider file
    AuthUserFile "{root}/conf/htpasswd"
    Require valid-user
</Location>
<Location /strict>
    WSockHandler strict level=3
</Location>
<Location /facts-early-log>
    WSockHandler facts
    WSockAccessLog upgrade
</Location>

# nesting: the children inherit what they don't set
<Location /nest>
    WSockHandler reverse prefix=X
    WSockMaxMessageSize 100
</Location>
<Location /nest/big>
    WSockMaxMessageSize 10000
</Location>
<Location /nest/other>
    WSockHandler reverse prefix=Y
</Location>
<Location /nest/plain>
    WSockHandler none
</Location>
"""

USER, PASSWORD = "alice", "s3cret pw"


def write_file(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def make_instance(mpm, sos, extra=""):
    """A not yet started instance with SERVER_CONF (+ extra) and its files."""
    inst = new_instance(mpm, extra_conf="")
    inst.extra_conf = SERVER_CONF.format(mods="/usr/lib/apache2/modules", root=inst.root,
                                         **sos) + extra
    sha = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    write_file(os.path.join(inst.root, "conf", "htpasswd"), "%s:{SHA}%s\n" % (USER, sha))
    write_file(os.path.join(inst.root, "htdocs", "nest", "plain", "hello.txt"), "plain\n")
    for d in ("nest", os.path.join("nest", "plain")):
        os.chmod(os.path.join(inst.root, "htdocs", d), 0o755)
    return inst


@pytest.fixture(scope="module", params=["event", "prefork"])
def pserver(request, plugins):
    yield from serve(make_instance(request.param, plugins))


# ------------------------------------------------------------------- helpers
def connect(url, **kw):
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 5)
    return websockets.connect(url, **kw)


async def exchange(url, messages, **kw):
    """Send each message, collect one reply each."""
    async with connect(url, **kw) as ws:
        out = []
        for m in messages:
            await ws.send(m)
            out.append(await asyncio.wait_for(ws.recv(), 10))
        return out


def after_restart(attempt, tries=20):
    """attempt() again (bounded) while the server answers 1001 Going Away:
    right after a graceful restart an old child may still take a
    connection on its way out."""
    for i in range(tries):
        try:
            return attempt()
        except websockets.exceptions.ConnectionClosed as e:
            if e.rcvd is None or e.rcvd.code != 1001 or i == tries - 1:
                raise
            time.sleep(0.2)


def facts_of(url, **kw):
    async def go():
        async with connect(url, **kw) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))
    return run(go())


def handshake(inst, path, **kw):
    req = rawws.handshake_request(path, host="127.0.0.1:%d" % inst.port, **kw)
    return rawws.http_exchange(inst.port, req)


def plain_get(inst, path, headers=()):
    req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (path, inst.port)
    for name, value in headers:
        req += "%s: %s\r\n" % (name, value)
    req += "Connection: close\r\n\r\n"
    return rawws.http_exchange(inst.port, req.encode("latin-1"))


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


# ================================================================== building
def test_example_builds_in_and_out_of_tree(plugins):
    # Both builds exist, and the out-of-tree one really saw no include/ of
    # this tree: its Makefile was given only the DESTDIR header.
    assert os.path.isfile(plugins["reverse_in_tree"])
    assert os.path.isfile(plugins["reverse"])
    out = subprocess.run(["nm", "-D", "--defined-only", plugins["reverse"]],
                         stdout=subprocess.PIPE, timeout=30).stdout.decode()
    assert re.search(r"\bwsock_plugin\b", out), out


# ============================================================ example plugin
def test_reverse_text_by_character(pserver):
    msgs = ["h\u00e9llo w\u00f6rld", "a\U0001F600b\u4e2d\u6587", "", "x"]
    got = run(exchange(pserver.url("/reverse"), msgs))
    assert got == ["dlr\u00f6w oll\u00e9h", "\u6587\u4e2db\U0001F600a", "", "x"]
    assert all(isinstance(g, str) for g in got)


def test_reverse_binary_by_byte(pserver):
    data = bytes(range(256)) + b"\xc3\xa9"
    got = run(exchange(pserver.url("/reverse"), [data, b""]))
    assert got == [data[::-1], b""]
    assert all(isinstance(g, bytes) for g in got)


def test_reverse_prefix_argument(pserver):
    # "prefix=>> " is one quoted word; the prefix goes on text replies only
    got = run(exchange(pserver.url("/prefixed"), ["abc", b"\x01\x02"]))
    assert got == [">> cba", b"\x02\x01"]
    # the same .so registered as "mirror", with its own per-location config
    assert run(exchange(pserver.url("/mirror"), ["h\u00e9"])) == ["M:\u00e9h"]


def test_reverse_counts_messages_per_connection(pserver):
    async def go():
        async with connect(pserver.url("/reverse")) as ws:
            port = ws.local_address[1]
            for m in ("one", "two", b"three"):
                await ws.send(m)
                await asyncio.wait_for(ws.recv(), 10)
        return port

    since = pserver.log_offset()
    port = run(go())
    # on_close logs the counter it kept in the connection's user data
    m = pserver.wait_log(r"REV0002: 127\.0\.0\.1:%d closed \((\d+)[^)]*\) after (\d+) messages"
                         % port, since=since)
    assert m, pserver.error_log(since)[-3000:]
    assert m.group(1) == "1000"
    assert m.group(2) == "3"


def test_child_init_logs_once_per_child(pserver):
    # a connection so that at least one child certainly served something
    run(exchange(pserver.url("/reverse"), ["abc"]))
    log = pserver.error_log()
    ready = re.findall(r"\[pid (\d+)[^\]]*\].*REV0001: reverse plugin ready in child (\d+)",
                       log)
    assert ready, log[-3000:]
    pids = [child for _, child in ready]
    assert all(a == b for a, b in ready), ready
    # once per child, although the .so is registered under two names
    assert len(pids) == len(set(pids)), sorted(pids)
    assert str(pserver.pid) not in pids, "child_init ran in the parent"
    # every child that served a plugin connection ran child_init first
    served = set(re.findall(r"\[pid (\d+)[^\]]*\].*(?:REV0002|TPFACTS):", log))
    assert served, log[-3000:]
    assert served <= set(pids), (served, pids)


# ================================================================= the facts
def test_facts_of_the_request(pserver):
    facts = facts_of(pserver.url("/facts?name=J%C3%BCrgen+K&x=1"), subprotocols=["chat"],
                     extra_headers={"X-Test": 'a "quoted" value'})
    assert facts["uri"] == "/facts"
    assert facts["query"] == "name=J%C3%BCrgen+K&x=1"
    assert facts["name"] == "J\u00fcrgen K"
    assert facts["remote_ip"] == "127.0.0.1"
    assert facts["user"] is None
    assert facts["protocol"] == "chat"
    assert facts["x_test"] == 'a "quoted" value'
    assert facts["config"] == "arg one|two"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", facts["conn_id"])
    assert facts["location"] == "/facts"

    bare = facts_of(pserver.url("/facts"))
    assert bare["query"] is None and bare["name"] is None
    assert bare["protocol"] is None and bare["x_test"] is None

    # a URL below the section: the location is still the section's path
    deep = facts_of(pserver.url("/facts/deeper/x"))
    assert deep["uri"] == "/facts/deeper/x" and deep["location"] == "/facts"


def test_facts_outlive_the_request(pserver):
    """With WSockAccessLog upgrade the request and its pool end at the
    upgrade (event MPM): the facts read later must not come from it."""
    async def go():
        async with connect(pserver.url("/facts-early-log?name=later"),
                           extra_headers={"X-Test": "kept"}) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await asyncio.sleep(0.5)            # the request has ended by now
            replies = []
            for _ in range(3):
                await ws.send("facts")
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return first, replies
    first, replies = run(go())
    assert first["x_test"] == "kept" and first["name"] == "later"
    assert all(r == first for r in replies), (first, replies)


def test_facts_user_from_basic_auth(pserver):
    # no credentials, or wrong ones: Apache answers 401, no upgrade
    for headers in ([], [("Authorization", basic(USER, "wrong"))]):
        resp = handshake(pserver, "/facts-auth", extra_headers=headers)
        assert resp.status == 401, resp
        assert resp.header("WWW-Authenticate", "").startswith("Basic")
        assert resp.header("Upgrade") is None and resp.header("Sec-WebSocket-Accept") is None

    facts = facts_of(pserver.url("/facts-auth"),
                     extra_headers={"Authorization": basic(USER, PASSWORD)})
    assert facts["user"] == USER
    assert facts["uri"] == "/facts-auth"
    assert facts["location"] == "/facts-auth"
    assert facts["config"] is None          # "WSockHandler facts" without arguments


@pytest.mark.parametrize("status", [403, 503])
def test_on_open_refuses_with_http_status(pserver, status):
    since = pserver.log_offset()
    resp = handshake(pserver, "/facts?refuse=%d" % status)
    assert resp.status == status, resp
    assert resp.header("Upgrade") is None and resp.header("Sec-WebSocket-Accept") is None
    assert pserver.wait_log(r"WSOCK0203: handler facts refused WebSocket /facts with %d"
                            % status, since=since)

    async def with_client():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            async with connect(pserver.url("/facts?refuse=%d" % status)):
                pass
        return ei.value.status_code
    assert run(with_client()) == status


def test_on_open_refusal_closes_the_http_connection(pserver):
    # a refused upgrade is an ordinary HTTP response, and then the connection
    # closes: what the attempt took (the request's facts, its buffers) lives
    # in the connection's pool, and a client must not pile up refused
    # attempts on one keep-alive connection (as Node's ws does too)
    import socket
    with socket.create_connection(("127.0.0.1", pserver.port), timeout=5) as s:
        s.sendall(rawws.handshake_request("/facts?refuse=403",
                                          host="127.0.0.1:%d" % pserver.port))
        resp, rest = rawws.read_http_response(s)
        assert resp.status == 403
        assert (resp.header("Connection") or "").lower() == "close"
        buf = rest
        for _ in range(100):
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
        else:
            pytest.fail("the connection stayed open after the refusal")
        assert b"HTTP/1.1" not in buf[len(rest):]


def test_on_open_refuses_with_close_code(pserver):
    since = pserver.log_offset()
    with rawws.RawWS.connect(pserver.port, "/facts?refuse=4003") as c:
        assert c.response.status == 101
        port = c.sock.getsockname()[1]
        f = c.recv_frame(timeout=5)          # first and only frame: the close
        assert f.opcode == rawws.OP_CLOSE, f
        assert f.close_code == 4003
        c.send_close(4003)
        assert c.wait_eof(10)
    # not accepted, so no on_close for it (wsock.h: only after an accepted on_open)
    assert pserver.wait_log(r"WSOCK0203: handler facts refused WebSocket /facts with 4003",
                            since=since)
    assert "TPFACTS: 127.0.0.1:%d on_close" % port not in pserver.error_log(since)


def test_fail_closes_only_that_connection(pserver):
    async def go():
        async with connect(pserver.url("/facts")) as a, connect(pserver.url("/facts")) as b:
            await asyncio.wait_for(a.recv(), 10)          # the facts
            await asyncio.wait_for(b.recv(), 10)
            await b.send("before")
            assert await asyncio.wait_for(b.recv(), 10) == "before"
            port_a = a.local_address[1]
            await a.send("fail")
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await asyncio.wait_for(a.recv(), 10)
            for m in ("after", b"\x00binary"):
                await b.send(m)
                assert await asyncio.wait_for(b.recv(), 10) == m
            return ei.value, port_a

    since = pserver.log_offset()
    exc, port_a = run(go())
    assert exc.rcvd is not None and exc.rcvd.code == 4001, exc
    assert pserver.wait_log(r"WSOCK0205: handler facts closes WebSocket /facts with 4001",
                            since=since)
    assert pserver.wait_log(r"TPFACTS: 127\.0\.0\.1:%d on_close 4001" % port_a, since=since)


def test_send_refuses_text_that_is_not_utf8(pserver):
    """wsock_send checks a handler's text, even when it is a slice of the
    message being delivered (already checked whole by the codec)."""
    async def go():
        async with connect(pserver.url("/facts")) as a:
            await asyncio.wait_for(a.recv(), 10)          # the facts
            await a.send("cut:abc")                       # "cut:ab" is still text
            first = [await asyncio.wait_for(a.recv(), 10) for _ in range(2)]
            await a.send("cut:\u00e9")                     # cuts "é" in half
            second = await asyncio.wait_for(a.recv(), 10)
            return first, second

    first, second = run(go())
    assert first == ["cut:ab", "SENT"]
    assert second == "EINVAL"


@pytest.mark.parametrize("returned", [1005, 1006, 2000, 1015])
def test_invalid_close_code_from_plugin_becomes_1011(pserver, returned):
    """A handler returning a code no peer may receive must not put it on the
    wire (the client would fail the connection): the server says 1011."""
    async def go():
        async with connect(pserver.url("/facts")) as a:
            await asyncio.wait_for(a.recv(), 10)
            await a.send("fail:%d" % returned)
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await asyncio.wait_for(a.recv(), 10)
            return ei.value

    since = pserver.log_offset()
    exc = run(go())
    assert exc.rcvd is not None and exc.rcvd.code == 1011, exc
    assert pserver.wait_log(r"WSOCK0205: handler facts closes WebSocket /facts with 1011",
                            since=since)


@pytest.mark.parametrize("size,repeat", [(10, 1), (10000, 3), (70000, 1), (300000, 1),
                                         (10000, 8)])
def test_messages_sent_in_on_open_follow_the_101(pserver, size, repeat):
    # wsock.h: messages sent in on_open "go out right after the 101", whatever
    # their size (one above 64 KiB, or several adding up to more)
    with rawws.RawWS.connect(pserver.port, "/facts?big=%d&repeat=%d" % (size, repeat)) as c:
        op, data, _ = c.recv_message(timeout=10)
        assert op == rawws.OP_TEXT and json.loads(data)["uri"] == "/facts"
        for _ in range(repeat):
            op, data, _ = c.recv_message(timeout=10)
            assert op == rawws.OP_BINARY and data == b"b" * size


# ================================================================== nesting
def test_nested_location_keeps_handler_config_and_overrides_limit(pserver):
    small, large = "s" * 50 + "!", "L" * 150 + "!"
    assert run(exchange(pserver.url("/nest"), [small])) == ["X!" + "s" * 50]

    async def too_big():
        async with connect(pserver.url("/nest")) as ws:
            await ws.send(large)
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 10)
            return ei.value
    exc = run(too_big())
    assert exc.rcvd is not None and exc.rcvd.code == 1009, exc

    # /nest/big overrides only WSockMaxMessageSize: handler and prefix stay
    assert run(exchange(pserver.url("/nest/big"), [large])) == ["X!" + "L" * 150]
    # /nest/other names the handler again, with its own arguments
    assert run(exchange(pserver.url("/nest/other"), ["ab"])) == ["Yba"]


def test_nested_location_with_handler_none_is_plain(pserver):
    # the parent is a WebSocket location: a plain GET gets 426
    resp = plain_get(pserver, "/nest")
    assert resp.status == 426, resp
    # the child is not: ordinary Apache answers, for plain GETs and upgrades alike
    assert plain_get(pserver, "/nest/plain/hello.txt").status == 200
    assert plain_get(pserver, "/nest/plain/hello.txt").body == b"plain\n"
    assert plain_get(pserver, "/nest/plain/missing").status == 404
    resp = handshake(pserver, "/nest/plain/missing")
    assert resp.status == 404, resp
    resp = handshake(pserver, "/nest/plain/hello.txt")
    assert resp.status == 200 and resp.header("Sec-WebSocket-Accept") is None, resp


def test_strict_plugin_accepts_good_arguments(pserver):
    assert run(exchange(pserver.url("/strict"), ["ok"])) == ["ok"]


# =============================================================== configtest
def configtest(apache_factory, conf):
    inst = apache_factory("event", start=False, extra_conf=conf)
    rc, out = inst.configtest()
    return inst, rc, out


def test_configtest_accepts_plugins(plugins):
    inst = make_instance("event", plugins)
    rc, out = inst.configtest()
    assert rc == 0 and "Syntax OK" in out, out


# (id, config using {<plugin>} placeholders, strings the error must contain,
# which may also use {root}, the ServerRoot)
BAD_CONFIGS = [
    ("wrong-path",
     "WSockPlugin gone /nonexistent/dir/gone.so\n",
     ["WSockPlugin gone", "cannot load /nonexistent/dir/gone.so"]),
    ("relative-path-is-under-serverroot",
     "WSockPlugin rel plugins/missing.so\n",
     ["WSockPlugin rel", "cannot load {root}/plugins/missing.so"]),
    ("no-symbol",
     "WSockPlugin nosym {tp_nosym}\n",
     ["WSockPlugin nosym", "{tp_nosym} has no symbol 'wsock_plugin'"]),
    ("wrong-api-version",
     "WSockPlugin wrongapi {tp_wrong_api}\n",
     ["{tp_wrong_api}", "WSOCK_API_VERSION 3", "has 2", "rebuild"]),
    ("unknown-handler",
     "<Location /x>\n    WSockHandler nosuch\n</Location>\n",
     ["unknown handler 'nosuch'"]),
    ("handler-before-its-plugin",
     "<Location /x>\n    WSockHandler reverse\n</Location>\nWSockPlugin reverse {reverse}\n",
     ["unknown handler 'reverse'", "load others with WSockPlugin before this line"]),
    ("strict-bad-level",
     "WSockPlugin strict {tp_strict}\n<Location /x>\n    WSockHandler strict level=12\n"
     "</Location>\n",
     ["WSockHandler strict: bad level '12'"]),
    ("strict-no-argument",
     "WSockPlugin strict {tp_strict}\n<Location /x>\n    WSockHandler strict\n</Location>\n",
     ["WSockHandler strict: expects exactly one argument"]),
    ("example-unknown-argument",
     "WSockPlugin reverse {reverse}\n<Location /x>\n    WSockHandler reverse bogus\n"
     "</Location>\n",
     ["WSockHandler reverse: unknown argument 'bogus'"]),
    ("no-args-handler-given-args",
     "<Location /x>\n    WSockHandler echo extra\n</Location>\n",
     ["handler 'echo' takes no arguments"]),
    ("name-taken",
     "WSockPlugin echo {reverse}\n",
     ["WSockPlugin echo", "{reverse}", "that name is already taken"]),
    ("name-none",
     "WSockPlugin none {reverse}\n",
     ["{reverse}", "cannot be registered under that name"]),
    ("plugin-in-location",
     "<Location /x>\n    WSockPlugin reverse {reverse}\n</Location>\n",
     ["WSockPlugin", "<Location"]),
    ("plugin-in-virtualhost",
     "<VirtualHost 127.0.0.1:*>\n    WSockPlugin reverse {reverse}\n</VirtualHost>\n",
     ["WSockPlugin", "<VirtualHost"]),
]


@pytest.mark.parametrize("conf,expect", [b[1:] for b in BAD_CONFIGS],
                         ids=[b[0] for b in BAD_CONFIGS])
def test_configtest_rejects(apache_factory, plugins, conf, expect):
    inst, rc, out = configtest(apache_factory, conf.format(**plugins))
    assert rc != 0, "configtest accepted:\n%s\n%s" % (conf, out)
    assert "Syntax OK" not in out
    # Apache names the configuration file and line; the message says the rest
    assert re.search(r"Syntax error on line \d+ of %s" % re.escape(inst.conf_path), out), out
    for s in expect:
        s = s.format(root=inst.root, **plugins)
        assert s in out, "%r not in:\n%s" % (s, out)


# ========================================================= graceful restart
@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_graceful_restart_reloads_plugins(apache_factory, plugins, mpm):
    inst = make_instance(mpm, plugins)
    inst.start()
    try:
        assert run(exchange(inst.url("/prefixed"), ["abc"])) == [">> cba"]
        since = inst.log_offset()
        inst.graceful()
        assert inst.wait_log(r"resuming normal operations", timeout=15, since=since)
        # the reloaded .so serves, with its configuration, in new children
        # (a connection may still reach an old child that is going away:
        # it is told so with 1001, and the client comes back)
        assert after_restart(lambda: run(exchange(inst.url("/prefixed"), ["abc"]))) \
            == [">> cba"]
        assert after_restart(lambda: facts_of(inst.url("/facts")))["config"] == "arg one|two"
        assert inst.wait_log(r"REV0001: reverse plugin ready", since=since)
    finally:
        inst.stop()
    crash_check(inst)
