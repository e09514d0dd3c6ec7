"""Apache's own authentication and authorization protect a WebSocket
location: they run (check_user_id, auth_checker) before any handler, so
before mod_wsock's upgrade handler; a client without valid credentials gets
401 and no upgrade, and the handler never sees it.  The user Apache
authenticated is what wsock_user() tells the handler (test plugin
tp_facts sends it back).  The password file is made with htpasswd
(apache2-utils), bcrypt.
"""

import asyncio
import base64
import json
import os
import subprocess

import pytest
import websockets

import rawws
from conftest import new_instance, run, serve, session_dir
from test_plugins import PLUGIN_SRC, REPO, apxs_build

MODULES = "/usr/lib/apache2/modules"
USERS = {"alice": "alice pw", "bob": "b0b:pw", "carol": "c4rol"}

AUTH_CONF = """\
LoadModule auth_basic_module {mods}/mod_auth_basic.so
LoadModule authn_file_module {mods}/mod_authn_file.so
LoadModule authz_user_module {mods}/mod_authz_user.so
WSockPlugin facts {facts}

<Location /auth>
    WSockHandler facts
    AuthType Basic
    AuthName "wsock"
    AuthBasicProvider file
    AuthUserFile "{htpasswd}"
    Require valid-user
</Location>
# nested: same realm, only bob
<Location /auth/bob>
    Require user bob
</Location>
<Location /auth-origin>
    WSockHandler echo
    WSockAllowedOrigins https://app.example.com
    AuthType Basic
    AuthName "wsock"
    AuthBasicProvider file
    AuthUserFile "{htpasswd}"
    Require user alice
</Location>
<Location /open>
    WSockHandler facts
</Location>
"""


@pytest.fixture(scope="module")
def facts_so():
    out = os.path.join(session_dir(), "auth-plugins")
    return apxs_build(os.path.join(PLUGIN_SRC, "tp_facts.c"), out,
                      os.path.join(REPO, "include"))


@pytest.fixture(scope="module", params=["event", "prefork"])
def aserver(request, facts_so):
    inst = new_instance(request.param, "", loglevel="info wsock:debug")
    htpasswd = os.path.join(inst.root, "conf", "htpasswd")
    for i, (user, pw) in enumerate(USERS.items()):
        subprocess.run(["htpasswd", "-B", "-b"] + (["-c"] if i == 0 else []) +
                       [htpasswd, user, pw], check=True, capture_output=True, timeout=60)
    os.chmod(htpasswd, 0o644)
    inst.extra_conf = AUTH_CONF.format(mods=MODULES, facts=facts_so, htpasswd=htpasswd)
    yield from serve(inst)


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def handshake(inst, path, auth=None, origin=None):
    extra = []
    if auth is not None:
        extra.append(("Authorization", auth))
    if origin is not None:
        extra.append(("Origin", origin))
    req = rawws.handshake_request(path, host="127.0.0.1:%d" % inst.port, extra_headers=extra)
    return rawws.http_exchange(inst.port, req)


def facts(url, **kw):
    async def go():
        async with websockets.connect(url, open_timeout=10, ping_interval=None, **kw) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))
    return run(go())


def refused_status(url, **kw):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            async with websockets.connect(url, open_timeout=10, **kw):
                pass
        return ei.value.status_code
    return run(go())


def wsock_lines(inst, since):
    return [ln for ln in inst.error_log(since).splitlines() if "WSOCK" in ln]


@pytest.mark.parametrize("auth", [
    None,
    basic("alice", "wrong"),
    basic("mallory", "alice pw"),
    "Basic !!!notbase64",
    "Bearer abc.def.ghi",
], ids=["none", "wrong-password", "unknown-user", "garbage", "other-scheme"])
def test_no_or_bad_credentials_401_no_upgrade(aserver, auth):
    since = aserver.log_offset()
    resp = handshake(aserver, "/auth", auth=auth)
    assert resp.status == 401, resp
    assert resp.header("WWW-Authenticate", "").startswith('Basic realm="wsock"')
    assert resp.header("Upgrade") is None and resp.header("Sec-WebSocket-Accept") is None
    # The upgrade handler never ran: not a line of mod_wsock's (it logs at
    # debug every open), and the handler saw nothing.
    assert wsock_lines(aserver, since) == []
    assert "TPFACTS" not in aserver.error_log(since)


def test_good_credentials_reach_the_handler_with_the_user(aserver):
    since = aserver.log_offset()
    got = facts(aserver.url("/auth"), extra_headers={"Authorization": basic("alice",
                                                                            "alice pw")})
    assert got["user"] == "alice" and got["uri"] == "/auth"
    assert aserver.wait_log(r"WSOCK0303: WebSocket /auth open", since=since)
    # credentials in the URL, as a client library sends them
    url = "ws://carol:c4rol@127.0.0.1:%d/auth" % aserver.port
    assert facts(url)["user"] == "carol"


def test_no_user_without_auth(aserver):
    assert facts(aserver.url("/open"))["user"] is None


def test_require_user_refuses_other_users(aserver):
    """authz: alice is authenticated but not allowed at /auth/bob."""
    since = aserver.log_offset()
    resp = handshake(aserver, "/auth/bob", auth=basic("alice", "alice pw"))
    assert resp.status == 401, resp
    assert resp.header("Sec-WebSocket-Accept") is None
    assert wsock_lines(aserver, since) == []
    assert refused_status(aserver.url("/auth/bob"), extra_headers={
        "Authorization": basic("alice", "alice pw")}) == 401
    got = facts(aserver.url("/auth/bob"), extra_headers={"Authorization": basic("bob",
                                                                                "b0b:pw")})
    assert got["user"] == "bob" and got["uri"] == "/auth/bob"


def test_auth_comes_before_the_origin_check(aserver):
    """Apache's 401 first (no credentials), then mod_wsock's 403 (origin)."""
    alice = basic("alice", "alice pw")
    assert handshake(aserver, "/auth-origin", origin="https://evil.example").status == 401
    assert handshake(aserver, "/auth-origin", auth=alice,
                     origin="https://evil.example").status == 403
    assert handshake(aserver, "/auth-origin", auth=alice,
                     origin="https://app.example.com").status == 101
    assert handshake(aserver, "/auth-origin", auth=basic("bob", "b0b:pw"),
                     origin="https://app.example.com").status == 401
