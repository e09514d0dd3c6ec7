"""Startup warnings about capacity (docs/operations.md, "Startup warnings"):
each configuration that should trigger one does, in `apache2 -t`
(configtest) output, and a configuration with no WebSocket location, or a
sized one, stays quiet.  That they reach the error log once per start is
shown by test_capacity.py (WSOCK1410) and test_h2.py (WSOCK1414).

configtest runs no server, so these take a fraction of a second each.
"""

import os
import subprocess

import pytest

import debian_stock
from apache_instance import APACHE_BIN, APACHE_MODULES
from conftest import TAG_RE, new_instance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WSOCK_CONF = os.path.join(REPO, "conf", "wsock.conf")

STOCK_EVENT = debian_stock.EVENT
STOCK_PREFORK = debian_stock.PREFORK
ECHO = "<Location /echo>\n    WSockHandler echo\n</Location>\n"
H2 = "LoadModule http2_module %s/mod_http2.so\n" % APACHE_MODULES
CAPACITY_TAGS = {"WSOCK1410", "WSOCK1411", "WSOCK1412", "WSOCK1413", "WSOCK1414"}


def configtest(mpm, extra, mpm_conf, nofile=debian_stock.NOFILE):
    """`apache2 -t` of a generated configuration, with the open-file limit
    apache2ctl would set; returns (exit code, output, the instance)."""
    inst = new_instance(mpm, extra_conf=extra, mpm_conf=mpm_conf)
    inst.write_conf()
    p = subprocess.run(debian_stock.launcher(nofile) + [APACHE_BIN, "-f", inst.conf_path, "-t"],
                       stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30, env=inst._env())
    return p.returncode, p.stdout.decode("utf-8", "replace"), inst


def tags(out):
    return set(TAG_RE.findall(out)) & CAPACITY_TAGS


def test_event_defaults_warn_with_the_cap_and_the_directive():
    rc, out, _ = configtest("event", ECHO, STOCK_EVENT)
    assert rc == 0, out
    assert tags(out) == {"WSOCK1410"}, out
    assert "stops accepting at about 450 WebSockets" in out
    assert "AsyncRequestWorkerFactor" in out and "MaxRequestWorkers" in out


def test_shipped_wsock_conf_is_quiet():
    rc, out, _ = configtest("event", "Include %s\n%s" % (WSOCK_CONF, ECHO), STOCK_EVENT)
    assert rc == 0, out
    assert tags(out) == set(), out


def test_no_websocket_location_no_warning():
    for mpm, sizing in (("event", STOCK_EVENT), ("prefork", STOCK_PREFORK)):
        extra = "<Location /echo>\n    WSockHandler none\n</Location>\n"
        rc, out, _ = configtest(mpm, extra, sizing)
        assert rc == 0, out
        assert tags(out) == set(), out


def test_more_connections_per_child_than_open_files():
    sizing = STOCK_EVENT.replace("ThreadsPerChild 25", "ThreadsPerChild 64") \
                        .replace("MaxRequestWorkers 150", "MaxRequestWorkers 128")
    extra = "AsyncRequestWorkerFactor 200\n" + ECHO
    rc, out, _ = configtest("event", extra, sizing, nofile=8192)
    assert rc == 0, out
    assert tags(out) == {"WSOCK1411"}, out
    assert "12864 connections" in out and "8192 files" in out   # 64 x (1 + 200)


def test_factor_set_twice_names_both_places():
    # An admin's value in mpm_event.conf, then wsock.conf read after it.
    _, _, probe = configtest("event", "", STOCK_EVENT)
    mine = os.path.join(probe.root, "conf", "mpm_event.conf")
    with open(mine, "w") as f:
        f.write("AsyncRequestWorkerFactor 50\n")
    os.chmod(mine, 0o644)
    extra = "Include %s\nInclude %s\n%s" % (mine, WSOCK_CONF, ECHO)
    rc, out, _ = configtest("event", extra, STOCK_EVENT)
    assert rc == 0, out
    assert "WSOCK1412" in out, out
    assert "%s:" % WSOCK_CONF in out and "%s:1" % mine in out, out


def test_blocking_driver_with_few_workers():
    rc, out, _ = configtest("prefork", ECHO, STOCK_PREFORK)
    assert rc == 0, out
    assert tags(out) == {"WSOCK1413"}, out
    assert "at most 150 WebSockets (MaxRequestWorkers)" in out
    # event with WSockDriver blocking: the same
    rc, out, _ = configtest("event", "WSockDriver blocking\n" + ECHO, STOCK_EVENT)
    assert rc == 0, out
    assert tags(out) == {"WSOCK1413"}, out


@pytest.mark.parametrize("where", ["main", "vhost"])
def test_h2websockets_on_over_a_websocket_location(where):
    if where == "main":
        # two virtual hosts that inherit both: one warning, the main server's
        extra = (H2 + "Protocols h2c http/1.1\nH2WebSockets on\n" + ECHO
                 + "<VirtualHost 127.0.0.1:*>\n    ServerName a.test\n</VirtualHost>\n"
                 + "<VirtualHost 127.0.0.1:*>\n    ServerName b.test\n</VirtualHost>\n")
    else:
        extra = (H2 + "Protocols h2c http/1.1\n"
                 "<VirtualHost 127.0.0.1:*>\n    ServerName ws.test\n    H2WebSockets on\n"
                 "    <Location /ws>\n        WSockHandler echo\n    </Location>\n"
                 "</VirtualHost>\n")
    rc, out, _ = configtest("event", "Include %s\n%s" % (WSOCK_CONF, extra), STOCK_EVENT)
    assert rc == 0, out
    assert tags(out) == {"WSOCK1414"}, out
    assert "H2WebSockets on" in out and out.count("WSOCK1414") == 1, out
    if where == "vhost":
        assert "<VirtualHost 127.0.0.1:*>" in out


def test_h2websockets_on_elsewhere_is_quiet():
    # H2WebSockets on in a virtual host with no WebSocket location, the
    # WebSocket location in another one: nothing to say.
    extra = (H2 + "Protocols h2c http/1.1\n"
             "<VirtualHost 127.0.0.1:*>\n    ServerName plain.test\n    H2WebSockets on\n"
             "</VirtualHost>\n"
             "<VirtualHost 127.0.0.1:*>\n    ServerName ws.test\n"
             "    <Location /ws>\n        WSockHandler echo\n    </Location>\n"
             "</VirtualHost>\n")
    rc, out, _ = configtest("event", "Include %s\n%s" % (WSOCK_CONF, extra), STOCK_EVENT)
    assert rc == 0, out
    assert tags(out) == set(), out


def test_configtest_still_refuses_bad_factor():
    rc, out, _ = configtest("event", "Include %s\nAsyncRequestWorkerFactor 0\n%s"
                            % (WSOCK_CONF, ECHO), STOCK_EVENT)
    assert rc != 0 and "AsyncRequestWorkerFactor" in out, out
