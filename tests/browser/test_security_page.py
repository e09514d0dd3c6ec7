"""The handshake's security checks with a real browser (Debian's headless
Chromium via playwright-core, security_page.js): a browser always sends
Origin, so the default same-origin policy lets the page's own WebSockets in
(by the server's ServerName or address, and as localhost on loopback) and
refuses a page of another site whose name resolves to the server's address
(DNS rebinding, simulated with Chromium's --host-resolver-rules: the page,
its Origin and its Host header all say evil.example); the token convention (subprotocols ["access_token",
token]) opens a WebSocket in the browser, which fails a handshake that
offered subprotocols and got none back.

Run: /usr/bin/python3 -m pytest -q tests/browser   (after make; needs
chromium and tests/node/node_modules, see scripts/test.sh)
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest

# the chat page test's paths, and the harness it put on sys.path
from test_chat_page import HERE, ApacheInstance, require_browser, serve_checked

SECRET = b"the secret of the browser test, long enough for HS256"

CONF = """\
<Location /ws>
    WSockHandler echo
</Location>
<Location /ws-token>
    WSockHandler echo
    WSockTokenAuth "{secret}"
</Location>
<Location /ws-token-proto>
    WSockHandler echo
    WSockTokenAuth "{secret}"
    WSockProtocols chat.v1
</Location>
"""


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims):
    signing = (b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." +
               b64url(json.dumps(claims).encode()))
    return signing + "." + b64url(hmac.new(SECRET, signing.encode(), hashlib.sha256).digest())


@pytest.fixture
def server():
    require_browser()
    inst = ApacheInstance("event", loglevel="info")
    secret = os.path.join(inst.root, "conf", "jwt.secret")
    with open(secret, "wb") as f:
        f.write(SECRET)
    os.chmod(secret, 0o600)
    inst.extra_conf = CONF.format(secret=secret)
    with open(os.path.join(inst.root, "htdocs", "sec.html"), "w") as f:
        f.write("<!doctype html><title>security</title>\n")
    os.chmod(os.path.join(inst.root, "htdocs", "sec.html"), 0o644)
    yield from serve_checked(inst)


def test_origin_and_token_in_chromium(server):
    token = make_jwt({"sub": "page", "exp": int(time.time()) + 300})
    base = "http://127.0.0.1:%d" % server.port
    p = subprocess.run(["node", os.path.join(HERE, "security_page.js"), base, token],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=90)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, p.stdout[-3000:]
    r = json.loads(lines[-1][7:])
    assert "error" not in r, r

    # the page's own origin: open, echoed
    assert r["same"]["opened"] and r["same"]["echo"] == "ping", r
    # the same server under another name: the page's origin is still the server's
    assert r["otherName"]["opened"] and r["otherName"]["echo"] == "ping", r
    # a page of http://localhost:PORT (a loopback address by its name)
    assert r["localhostPage"]["opened"] and r["localhostPage"]["echo"] == "ping", r
    # DNS rebinding: refused, although Origin and Host agree
    assert not r["rebound"]["opened"] and r["rebound"]["closeCode"] == 1006, r
    assert server.wait_log(r"WSOCK0701: WebSocket handshake for /ws refused with 403: origin "
                           r"'http://evil\.example:%d' is not allowed" % server.port)
    # the token convention works in a browser, with and without a real subprotocol
    assert r["token"]["opened"] and r["token"]["echo"] == "ping", r
    assert r["token"]["protocol"] == "access_token", r
    assert r["tokenAndProtocol"]["opened"] and r["tokenAndProtocol"]["protocol"] == "chat.v1", r
    assert not r["noToken"]["opened"], r
    assert server.wait_log(r"WSOCK0711: WebSocket handshake for /ws-token refused with 401: "
                           r"token missing")
    assert token.split(".")[2] not in server.error_log()
