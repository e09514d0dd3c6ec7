"""WSockAllowedOrigins: cross-site WebSocket hijacking is refused (403)
before the upgrade, by origin; requests without an Origin header (not a
browser) pass; same-origin by default, over ws:// and wss://.

Same-origin means what the server is configured to be, not what the
request's Host header says: the ServerName and ServerAliases (wildcards as
Apache matches them) of the virtual host that serves the request, or the
address the connection arrived on (localhost too when that is a loopback
address), with the port the connection arrived on or the one ServerName
names.  A DNS-rebinding page (http://evil.example:PORT, its name rebound
to the server's address) sends Origin and Host both evil.example:PORT and
is refused.
"""

import asyncio

import pytest
import websockets

import rawws
from conftest import COMMON_CONF, new_instance, run, serve
from test_tls import client_ctx, tls_server  # noqa: F401  (the fixture)

ORIGIN_CONF = COMMON_CONF + """
<Location /o-list>
    WSockHandler echo
    WSockAllowedOrigins https://app.example.com http://LocalHost:3000
    WSockAllowedOrigins https://*.example.org
</Location>
# nested: inherits the list
<Location /o-list/nested>
    WSockMaxMessageSize 2000
</Location>
<Location /o-same-plus>
    WSockHandler echo
    WSockAllowedOrigins same-origin https://app.example.com
</Location>
<Location /o-any>
    WSockHandler echo
    WSockAllowedOrigins any
</Location>

# Name-based virtual hosts on the one listener; the first (127.0.0.1) also
# answers every Host no other one claims.  The <Location>s above apply in
# each.
<VirtualHost *:*>
    ServerName 127.0.0.1
</VirtualHost>
<VirtualHost *:*>
    ServerName app.example
    ServerAlias alias.example *.wild.example
</VirtualHost>
# behind a TLS terminator (port 443 outside), a plain connection here
<VirtualHost *:*>
    ServerName https://proxied.example
</VirtualHost>
# behind a plain HTTP proxy on port 80
<VirtualHost *:*>
    ServerName plain.example:80
</VirtualHost>
"""


@pytest.fixture(scope="module", params=["event", "prefork"])
def oserver(request):
    yield from serve(new_instance(request.param, ORIGIN_CONF))


def handshake(inst, path, origin=None, host=None):
    extra = [("Origin", origin)] if origin is not None else []
    req = rawws.handshake_request(path, host=host or "127.0.0.1:%d" % inst.port,
                                  extra_headers=extra)
    return rawws.http_exchange(inst.port, req)


def self_origin(inst, scheme="http"):
    return "%s://127.0.0.1:%d" % (scheme, inst.port)


# ------------------------------------------------------- the default: same-origin
def test_default_no_origin_header_is_allowed(oserver):
    """Non-browser clients send no Origin; python-websockets does not by default."""
    assert handshake(oserver, "/echo").status == 101

    async def go():
        async with websockets.connect(oserver.url("/echo"), open_timeout=10) as ws:
            await ws.send("no origin")
            return await asyncio.wait_for(ws.recv(), 10)
    assert run(go()) == "no origin"


@pytest.mark.parametrize("origin_fmt,host_fmt", [
    ("http://127.0.0.1:{port}", None),            # ServerName, and the listening address
    ("HTTP://127.0.0.1:{port}", None),            # scheme case-insensitive
    ("http://127.0.0.1:{port}", "app.example:{port}"),   # the address, whatever the vhost
    ("http://localhost:{port}", "localhost:{port}"),     # a loopback address by its name
    ("http://LocalHost:{port}", None),
    ("http://app.example:{port}", "app.example:{port}"),   # ServerName
    ("http://APP.example.:{port}", "app.example:{port}"),  # case, a trailing dot
    ("http://alias.example:{port}", "alias.example:{port}"),   # ServerAlias
    ("http://a.wild.example:{port}", "a.wild.example:{port}"),  # ServerAlias *.wild.example
    ("http://a.b.wild.example:{port}", "a.b.wild.example:{port}"),  # * spans dots (Apache)
    ("https://proxied.example", "proxied.example"),  # ServerName https://: its scheme, 443
    ("https://proxied.example:{port}", "proxied.example:{port}"),  # the port arrived on
    ("http://plain.example", "plain.example"),      # ServerName plain.example:80
    ("http://plain.example:{port}", "plain.example:{port}"),
])
def test_default_same_origin_allowed(oserver, origin_fmt, host_fmt):
    fmt = dict(port=oserver.port)
    resp = handshake(oserver, "/echo", origin=origin_fmt.format(**fmt),
                     host=host_fmt.format(**fmt) if host_fmt else None)
    assert resp.status == 101, resp


@pytest.mark.parametrize("origin_fmt,host_fmt", [
    ("http://evil.example", None),
    ("https://127.0.0.1:{port}", None),           # https page, http connection
    ("http://127.0.0.1:{other}", None),           # another port is another origin
    ("http://127.0.0.1", None),                   # port 80
    ("null", None),                               # sandboxed iframe, file: page
    ("http://127.0.0.1:{port}/path", None),       # not an origin
    ("", None),
    # DNS rebinding: the attacker's name, rebound to this server's address;
    # the browser sends its page's origin and that name as Host
    ("http://evil.example:{port}", "evil.example:{port}"),
    ("http://www.example.com", "www.example.com"),
    ("http://evil.example:{other}", "evil.example:{other}"),
    ("http://127.0.0.2:{port}", "127.0.0.2:{port}"),   # not the address it arrived on
    ("http://localhost.evil.example:{port}", "localhost.evil.example:{port}"),
    # a configured name on a port that is neither the listener's nor ServerName's
    ("http://app.example:{other}", "app.example:{other}"),
    ("http://app.example", "app.example"),        # ServerName without a port: port 80 is not ours
    ("http://app.example:{other}", "app.example:{port}"),
    ("https://proxied.example:8443", "proxied.example:8443"),
    ("http://proxied.example:{port}", "proxied.example:{port}"),   # ServerName says https
    ("http://plain.example:81", "plain.example:81"),
    # names of another virtual host than the one that serves the request
    ("http://alias.example:{port}", None),
    ("http://app.example:{port}", "plain.example:{port}"),
    ("http://wild.example:{port}", "wild.example:{port}"),  # *.wild.example needs the dot
])
def test_default_cross_origin_refused(oserver, origin_fmt, host_fmt):
    fmt = dict(port=oserver.port, other=oserver.port + 1)
    origin = origin_fmt.format(**fmt)
    since = oserver.log_offset()
    resp = handshake(oserver, "/echo", origin=origin,
                     host=host_fmt.format(**fmt) if host_fmt else None)
    assert resp.status == 403, resp
    assert resp.header("Upgrade") is None and resp.header("Sec-WebSocket-Accept") is None
    m = oserver.wait_log(r"WSOCK0701: WebSocket handshake for /echo refused with 403: "
                         r"origin '([^']*)' is not allowed", since=since)
    assert m and m.group(1) == origin, oserver.error_log(since)[-2000:]


def test_dns_rebinding_with_a_real_client(oserver):
    """What a browser does on a page of http://evil.example:PORT once the
    attacker's DNS answers evil.example with this server's address: it
    connects to the address and sends its page's origin and evil.example as
    Host.  Same origin by the Host header, not by what the server is."""
    evil = "evil.example:%d" % oserver.port

    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            async with websockets.connect("ws://%s/echo" % evil, host="127.0.0.1",
                                          port=oserver.port, origin="http://" + evil,
                                          open_timeout=10):
                pass
        return ei.value.status_code
    assert run(go()) == 403


def test_cross_origin_refused_for_a_real_client(oserver):
    """What a browser on another site does: the client sends its page's origin."""
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            async with websockets.connect(oserver.url("/echo"), origin="https://evil.example",
                                          open_timeout=10):
                pass
        return ei.value.status_code
    assert run(go()) == 403

    async def same():
        async with websockets.connect(oserver.url("/echo"), origin=self_origin(oserver),
                                      open_timeout=10) as ws:
            await ws.send("same site")
            return await asyncio.wait_for(ws.recv(), 10)
    assert run(same()) == "same site"


# ------------------------------------------------------------------ a list
@pytest.mark.parametrize("origin,status", [
    ("https://app.example.com", 101),
    ("HTTPS://APP.EXAMPLE.COM", 101),
    ("https://app.example.com:443", 101),          # default port normalised
    ("https://app.example.com:8443", 403),
    ("http://app.example.com", 403),               # scheme differs
    ("https://app.example.com.evil.example", 403),
    ("https://xapp.example.com", 403),
    ("http://localhost:3000", 101),
    ("http://localhost", 403),
    ("https://a.example.org", 101),                # wildcard
    ("https://a.b.example.org", 101),
    ("https://example.org", 403),                  # the wildcard's domain itself
    ("https://evilexample.org", 403),
    ("https://a.example.org:444", 403),
    ("http://a.example.org", 403),
    ("https://a.example.org.evil.example", 403),
    ("null", 403),
    (None, 101),                                   # no Origin: not a browser
])
def test_list(oserver, origin, status):
    for path in ("/o-list", "/o-list/nested"):
        resp = handshake(oserver, path, origin=origin)
        assert resp.status == status, (path, resp)


def test_list_replaces_same_origin(oserver):
    """A list without same-origin does not allow the server's own origin."""
    assert handshake(oserver, "/o-list", origin=self_origin(oserver)).status == 403
    assert handshake(oserver, "/o-same-plus", origin=self_origin(oserver)).status == 101
    assert handshake(oserver, "/o-same-plus", origin="https://app.example.com").status == 101
    assert handshake(oserver, "/o-same-plus", origin="https://evil.example").status == 403


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "garbage", None])
def test_any(oserver, origin):
    assert handshake(oserver, "/o-any", origin=origin).status == 101


def test_refused_origin_comes_before_the_upgrade_rules(oserver):
    """A plain GET (no upgrade) still gets 426, whatever its origin."""
    req = ("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: https://evil.example\r\n"
           "Connection: close\r\n\r\n" % oserver.port)
    assert rawws.http_exchange(oserver.port, req.encode()).status == 426


# ------------------------------------------------------------------ configtest
@pytest.mark.parametrize("words,message", [
    ("https://example.com/", "is not an origin"),
    ("example.com", "is not an origin"),
    ("https://*", "is not an origin"),
    ("https://a.*.example.com", "is not an origin"),
    ("https://example.com:0", "is not an origin"),
    ("https://example.com:65536", "is not an origin"),
    ("https://user@example.com", "is not an origin"),
    ("any same-origin", "stands alone"),
    ("https://example.com any", "stands alone"),
])
def test_configtest_rejects(words, message):
    inst = new_instance("event", "<Location /x>\n    WSockHandler echo\n"
                                 "    WSockAllowedOrigins %s\n</Location>\n" % words)
    rc, out = inst.configtest()
    assert rc != 0 and "WSockAllowedOrigins" in out and message in out, out


# ----------------------------------------------------------------- over TLS
# test_tls's server: mod_ssl, /echo with the default (same-origin).


# The refusal first: a server stopped (SIGTERM) while a worker is still
# closing a plain HTTP connection can crash in the event MPM's
# close_worker_sockets() (a stale socket of a pool already given back;
# also with the module before these checks, a 404 in place of the 403),
# so the last connection before the fixture's stop is a WebSocket.
@pytest.mark.parametrize("scheme,expect", [("http", 403), ("https", None)])
def test_same_origin_over_tls_needs_https(tls_server, scheme, expect):
    ctx = client_ctx(tls_server.cert)

    async def go():
        async with websockets.connect("wss://127.0.0.1:%d/echo" % tls_server.port, ssl=ctx,
                                      origin=self_origin(tls_server, scheme),
                                      open_timeout=10) as ws:
            await ws.send("tls")
            return await asyncio.wait_for(ws.recv(), 10)

    if expect is None:
        assert run(go()) == "tls"
    else:
        async def refused():
            with pytest.raises(websockets.InvalidStatusCode) as ei:
                await go()
            return ei.value.status_code
        assert run(refused()) == expect
