"""With mod_reqtimeout loaded (Debian's defaults: header=20-40,MinRate=500
body=20,MinRate=500), an upgraded connection that stays silent for 30 s is
still open and still echoes.

Two endpoints are checked in the same 30 s window, on every MPM at once:
  /quiet  WSockPingInterval 0, WSockIdleTimeout 0: nothing at all travels for
          30 s, so only mod_wsock taking the connection out of mod_reqtimeout's
          reach keeps it alive (reqtimeout would cut it after 20 s);
  /echo   the defaults (ping 30 s, idle 60 s): what a site gets out of the box.
A control connection that never finishes its request headers shows that
mod_reqtimeout is really active in the same window.
"""

import re
import socket
import time

import rawws
from conftest import COMMON_CONF

CONF = COMMON_CONF + """
<Location /quiet>
    WSockHandler echo
    WSockPingInterval 0
    WSockIdleTimeout 0
</Location>
"""

IDLE_SECONDS = 31


def test_idle_30s_with_reqtimeout(apache_factory):
    insts = [apache_factory(mpm, extra_conf=CONF, reqtimeout=True)
             for mpm in ("event", "worker", "prefork")]
    conns = []
    controls = []
    try:
        for inst in insts:
            assert "reqtimeout_module" in open(inst.conf_path).read()
            for path in ("/quiet", "/echo"):
                c = rawws.RawWS.connect(inst.port, path)
                c.send_text("before")
                assert c.recv_message(timeout=5)[1] == b"before"
                conns.append((inst, path, c))
            s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n")   # never finished
            controls.append((inst, s))

        time.sleep(IDLE_SECONDS)

        for inst, s in controls:
            s.settimeout(5)
            try:
                data = s.recv(4096)
                # EOF, or a 408 response followed by EOF
                assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]
            except ConnectionResetError:
                pass
            except socket.timeout:
                raise AssertionError("%s: mod_reqtimeout did not cut an unfinished request "
                                     "within %ds; the test would show nothing" % (
                                         inst.mpm, IDLE_SECONDS))

        for inst, path, c in conns:
            where = "%s %s" % (inst.mpm, path)
            if path == "/quiet":
                assert c.nothing_pending(0.05), "%s: data or EOF arrived while idle" % where
            c.send_text("after %s" % where)
            op, data, _ = c.recv_message(timeout=5, answer_pings=True)
            assert data == ("after %s" % where).encode(), where
            port = c.sock.getsockname()[1]
            log = inst.error_log()
            assert not re.search(r"AH01382.*127\.0\.0\.1:%d\]" % port, log) and \
                not re.search(r"127\.0\.0\.1:%d\].*AH01382" % port, log), log
    finally:
        for _, _, c in conns:
            c.close_socket()
        for _, s in controls:
            s.close()
