"""WSockTokenAuth: a handshake must carry an HS256 JWT signed with the
secret in a file; tokens are made here with hmac + base64 (no JWT library).

Convention tested: the client offers "Sec-WebSocket-Protocol: access_token,
<jwt>"; the server answers "access_token" (or a real subprotocol it
chose), never the token.  Also: query argument and cookie sources,
exp/nbf/aud/leeway, an open WebSocket closed with 1008 when its token
expires (WSockTokenExpiry), 401 with WWW-Authenticate: Bearer and a log line that
says why without the token, claims read by a handler (tp_whoami), and the
secret file's configtest errors and permission warning.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time

import pytest
import websockets

import rawws
from conftest import new_instance, run, serve, session_dir
from test_plugins import PLUGIN_SRC, REPO, apxs_build

SECRET = b"this is the HS256 secret of the tests, 48 bytes!"
OTHER_SECRET = b"and this one is another secret of enough length!"

TOKEN_CONF = """\
# room for the oversized token to reach mod_wsock (Apache's default, 8190
# bytes per header line, refuses it with 400 first)
LimitRequestFieldSize 16384
WSockPlugin whoami {whoami}

<Location /tok>
    WSockHandler whoami
    WSockTokenAuth "{secret}"
</Location>
<Location /tok/aud>
    WSockTokenAudience chat
</Location>
<Location /tok/free>
    WSockTokenAuth off
</Location>
<Location /tok-strict>
    WSockHandler whoami
    WSockTokenAuth "{secret}"
    WSockTokenLeeway 0
</Location>
<Location /tok-proto>
    WSockHandler whoami
    WSockTokenAuth "{secret}"
    WSockProtocols chat.v1
</Location>
<Location /tok-query>
    WSockHandler whoami
    WSockTokenAuth "{secret}"
    WSockTokenSource query t
</Location>
<Location /tok-cookie>
    WSockHandler whoami
    WSockTokenAuth "{secret}"
    WSockTokenSource cookie jwt
</Location>
<Location /tok-query-default>
    WSockHandler whoami
    WSockTokenAuth "{secret}"
    WSockTokenSource query
</Location>
<Location /notok>
    WSockHandler whoami
</Location>
<Location /tok-expiring>
    WSockHandler echo
    WSockTokenAuth "{secret}"
    WSockTokenLeeway 1
</Location>
<Location /tok-expiring/keep>
    WSockTokenExpiry keep
</Location>
"""


# ------------------------------------------------------------------ tokens
def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims, key=SECRET, header=None):
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing + "." + b64url(hmac.new(key, signing.encode(), hashlib.sha256).digest())


def claims(**kw):
    c = {"sub": "alice", "exp": int(time.time()) + 600}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


# ------------------------------------------------------------------ server
@pytest.fixture(scope="module")
def whoami_so():
    return apxs_build(os.path.join(PLUGIN_SRC, "tp_whoami.c"),
                      os.path.join(session_dir(), "token-plugins"), os.path.join(REPO, "include"))


def write_secret(inst, data=SECRET, mode=0o600, name="jwt.secret"):
    path = os.path.join(inst.root, "conf", name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


@pytest.fixture(scope="module", params=["event", "prefork"])
def tserver(request, whoami_so):
    inst = new_instance(request.param, "")
    # with a trailing newline, as `echo ... > file` leaves it
    secret = write_secret(inst, SECRET + b"\n")
    inst.extra_conf = TOKEN_CONF.format(whoami=whoami_so, secret=secret)
    yield from serve(inst)


# ------------------------------------------------------------------ clients
def open_with(url, subprotocols=None, **kw):
    async def go():
        async with websockets.connect(url, subprotocols=subprotocols, open_timeout=10,
                                      ping_interval=None, **kw) as ws:
            facts = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send("role")
            facts["role"] = await asyncio.wait_for(ws.recv(), 10)
            await ws.send("nested")
            facts["nested"] = await asyncio.wait_for(ws.recv(), 10)
            facts["chosen"] = ws.subprotocol
            return facts
    return run(go())


def handshake(inst, path, protocols=None, headers=()):
    req = rawws.handshake_request(path, host="127.0.0.1:%d" % inst.port, protocols=protocols,
                                  extra_headers=list(headers))
    return rawws.http_exchange(inst.port, req)


def refused(inst, path, token=None, why=None, protocols=None, headers=()):
    """The handshake gets 401 + WWW-Authenticate and a log line with why."""
    since = inst.log_offset()
    if protocols is None and token is not None:
        protocols = "access_token, " + token
    resp = handshake(inst, path, protocols=protocols, headers=headers)
    assert resp.status == 401, resp
    assert resp.header("Sec-WebSocket-Accept") is None
    assert resp.header("WWW-Authenticate") == ('Bearer error="invalid_token"'
                                               if token else "Bearer"), resp
    m = inst.wait_log(r"WSOCK0711: WebSocket handshake for %s refused with 401: token (.*)"
                      % path.split("?")[0], since=since)
    assert m, inst.error_log(since)[-2000:]
    if why:
        assert why in m.group(1), m.group(0)
    if token:
        log = inst.error_log(since)
        assert not [part for part in token.split(".") if len(part) >= 8 and part in log]
    return m.group(1)


# ------------------------------------------------------------------ the tests
def test_valid_token_in_protocol_offer(tserver):
    tok = make_jwt(claims(role="admin", nested={"a": 1}))
    facts = open_with(tserver.url("/tok"), subprotocols=["access_token", tok])
    assert facts["sub"] == "alice" and facts["role"] == "admin"
    assert facts["nested"] == "(null)"               # not a string or number
    assert facts["user"] is None
    # the marker is chosen (browsers need one back), the token never
    assert facts["chosen"] == facts["protocol"] == "access_token"
    resp = handshake(tserver, "/tok", protocols="access_token, " + tok)
    assert resp.status == 101
    assert resp.header_all("Sec-WebSocket-Protocol") == ["access_token"]


def test_claims_exp_and_numbers(tserver):
    exp = int(time.time()) + 1234
    facts = open_with(tserver.url("/tok"), ["access_token", make_jwt(claims(exp=exp, role=7))])
    assert facts["exp"] == str(exp) and facts["role"] == "7"


def test_real_subprotocol_is_chosen_over_the_marker(tserver):
    tok = make_jwt(claims())
    facts = open_with(tserver.url("/tok-proto"), ["chat.v1", "access_token", tok])
    assert facts["chosen"] == "chat.v1" and facts["sub"] == "alice"
    resp = handshake(tserver, "/tok-proto", protocols="access_token, %s, chat.v1" % tok)
    assert resp.status == 101 and resp.header("Sec-WebSocket-Protocol") == "chat.v1"


@pytest.mark.parametrize("offer", [None, "chat.v1", "access_token", "%s, access_token" % "x",
                                   "bearer, abc"])
def test_missing_token(tserver, offer):
    assert "missing" in refused(tserver, "/tok", protocols=offer)


def test_no_token_with_a_real_client(tserver):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            async with websockets.connect(tserver.url("/tok"), open_timeout=10):
                pass
        return ei.value.status_code
    assert run(go()) == 401


@pytest.mark.parametrize("name,make,why", [
    ("expired", lambda: make_jwt(claims(exp=int(time.time()) - 300)), "expired"),
    ("no-exp", lambda: make_jwt(claims(exp=None)), "no exp"),
    ("nbf-future", lambda: make_jwt(claims(nbf=int(time.time()) + 300)), "nbf"),
    ("other-secret", lambda: make_jwt(claims(), key=OTHER_SECRET), "bad signature"),
    ("tampered", lambda: tamper(make_jwt(claims())), "bad signature"),
    ("alg-none", lambda: unsigned(make_jwt(claims(), header={"alg": "none"})), "not HS256"),
    ("alg-hs512", lambda: make_jwt(claims(), header={"alg": "HS512"}), "not HS256"),
    ("garbage", lambda: "not.a.jwt", "malformed"),
    ("aud-unexpected", lambda: make_jwt(claims(aud="chat")), "audience"),
    ("huge", lambda: make_jwt(claims(pad="p" * 9000)), "longer than"),
])
def test_bad_tokens(tserver, name, make, why):
    refused(tserver, "/tok", token=make(), why=why)


def tamper(tok):
    h, p, s = tok.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    body["sub"] = "admin"
    return ".".join([h, b64url(json.dumps(body).encode()), s])


def unsigned(tok):
    return tok.rsplit(".", 1)[0] + "."


def test_leeway(tserver):
    tok = make_jwt(claims(exp=int(time.time()) - 5))
    assert open_with(tserver.url("/tok"), ["access_token", tok])["sub"] == "alice"  # 30 s
    refused(tserver, "/tok-strict", token=tok, why="expired")


def open_expiring(inst, path, lifetime):
    """A raw WebSocket on path whose token expires in lifetime seconds; it
    echoes at once."""
    tok = make_jwt(claims(exp=int(time.time()) + lifetime))
    c = rawws.RawWS.connect(inst.port, path, protocols="access_token, " + tok)
    c.send_text("fresh")
    assert c.recv_message(timeout=5)[1] == b"fresh"
    return c


def test_websocket_is_closed_when_its_token_expires(tserver):
    """Once exp plus the leeway (1 s here) has passed, the server closes
    with 1008 "token expired", waits for the reply, and logs WSOCK0712; it
    does not wait for the next message or ping."""
    since = tserver.log_offset()
    start = time.monotonic()
    with open_expiring(tserver, "/tok-expiring", 2) as c:
        code, reason, _, skipped = c.recv_close(timeout=10)
        assert (code, reason) == (1008, "token expired"), (code, reason, skipped)
        assert time.monotonic() - start >= 1.5          # not before exp (whole seconds)
        c.send_close(1008)
        assert c.wait_eof(timeout=5)
    assert tserver.wait_log(r"WSOCK0712: WebSocket /tok-expiring: its token expired; "
                            r"closing with 1008", since=since)


def test_token_expiry_keep_leaves_the_websocket_open(tserver):
    with open_expiring(tserver, "/tok-expiring/keep", 1) as c:
        time.sleep(3.5)                                 # past exp plus the leeway
        c.send_text("still here")
        assert c.recv_message(timeout=5)[1] == b"still here"
        c.send_close(1000)
        assert c.recv_close(timeout=5)[0] == 1000


@pytest.mark.parametrize("aud", ["chat", ["x", "chat"]])
def test_audience(tserver, aud):
    tok = make_jwt(claims(aud=aud))
    facts = open_with(tserver.url("/tok/aud"), ["access_token", tok])
    assert facts["sub"] == "alice"
    refused(tserver, "/tok/aud", token=make_jwt(claims(aud="other")), why="audience")
    refused(tserver, "/tok/aud", token=make_jwt(claims()), why="audience")


def test_query_source(tserver):
    tok = make_jwt(claims(sub="bob"))
    assert open_with(tserver.url("/tok-query?x=1&t=" + tok))["sub"] == "bob"
    assert open_with(tserver.url("/tok-query-default?access_token=" + tok))["sub"] == "bob"
    assert "missing (expected in query argument t)" in refused(tserver, "/tok-query?x=1")
    # the protocol offer is not looked at there
    assert "missing" in refused(tserver, "/tok-query", protocols="access_token, " + tok)
    bad = make_jwt(claims(), key=OTHER_SECRET)
    refused(tserver, "/tok-query?t=" + bad, token=bad, why="signature")


def test_cookie_source(tserver):
    tok = make_jwt(claims(sub="carol"))
    headers = {"Cookie": "theme=dark; jwt=%s; other=1" % tok}
    assert open_with(tserver.url("/tok-cookie"), extra_headers=headers)["sub"] == "carol"
    assert "missing (expected in cookie jwt)" in refused(
        tserver, "/tok-cookie", headers=[("Cookie", "access_token=" + tok)])


def test_nested_off_and_no_token_locations(tserver):
    assert open_with(tserver.url("/tok/free"))["sub"] is None
    facts = open_with(tserver.url("/notok"), ["access_token", make_jwt(claims())])
    # without WSockTokenAuth the offer is not read and no claim is kept
    assert facts["sub"] is None and facts["chosen"] is None


# ------------------------------------------------------------------ configtest
def conf_with(inst, line):
    return "<Location /x>\n    WSockHandler echo\n    %s\n</Location>\n" % line


@pytest.mark.parametrize("content,mode,message", [
    (None, 0o600, "cannot read the secret file"),
    (b"", 0o600, "is empty"),
    (b"\n\n", 0o600, "is empty"),
    (b"short secret", 0o600, "HS256 needs at least 32"),
])
def test_configtest_secret_errors(content, mode, message):
    inst = new_instance("event", "")
    path = os.path.join(inst.root, "conf", "jwt.secret")
    if content is not None:
        path = write_secret(inst, content, mode)
    inst.extra_conf = conf_with(inst, 'WSockTokenAuth "%s"' % path)
    rc, out = inst.configtest()
    assert rc != 0 and message in out, out


def test_configtest_world_readable_secret_warns():
    inst = new_instance("event", "")
    path = write_secret(inst, SECRET, 0o644)
    inst.extra_conf = conf_with(inst, 'WSockTokenAuth "%s"' % path)
    rc, out = inst.configtest()
    assert rc == 0 and "WSOCK0710" in out and "readable by every user" in out, out
    path = write_secret(inst, SECRET, 0o600)
    rc, out = inst.configtest()
    assert rc == 0 and "WSOCK0710" not in out, out


@pytest.mark.parametrize("line,message", [
    ("WSockTokenSource header", "is not protocol, query or cookie"),
    ("WSockTokenSource protocol x", "takes no name"),
    ("WSockTokenLeeway -1", "is not a number of seconds"),
    ("WSockTokenLeeway 3601", "is not a number of seconds"),
    ("WSockTokenLeeway soon", "is not a number of seconds"),
    ("WSockTokenExpiry sometimes", "is not close or keep"),
])
def test_configtest_directive_errors(line, message):
    inst = new_instance("event", "")
    inst.extra_conf = conf_with(inst, line)
    rc, out = inst.configtest()
    assert rc != 0 and message in out, out
