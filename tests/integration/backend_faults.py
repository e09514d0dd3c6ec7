"""A backend that misbehaves on purpose, for tests of the backend handler:
a real HTTP server (in a thread of the test process) speaking
WebSocket-over-HTTP, with one fault per path:

  /sleep     OPEN answered at once (or after 3 s with ?opensleep in the
             client's URI); every later request answered after 3 s
  /garbage   OPEN accepted (?opengarbage: answered 200 text/html;
             ?openbad: events that do not start with OPEN; ?openclose: OPEN,
             TEXT bye, CLOSE 4003 "no room"); later answers
             are 200 websocket-events bodies that are not events
  /slowok    every request after the OPEN answered after 0.5 s, empty
  /headers   OPEN accepted, answered with a TEXT event carrying the
             request headers it got, as JSON
  /keepalive OPEN accepted with GRIP and a keep-alive control message:
             "still there?" after 1 s without messages
  /prefix    OPEN accepted with GRIP and message-prefix="x>", answered
             with TEXT x>hello and TEXT m:kept

It uses the event codec of the Python example (examples/python/backend.py),
which also serves over TLS here (serve_example_tls).
"""
import importlib.util
import json
import os
import ssl
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    "example_backend", os.path.join(REPO, "examples", "python", "backend.py"))
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


class Faults(example.Backend):
    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass                        # mod_wsock gave up waiting: that is the test

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        events = example.parse_events(body)
        opening = bool(events) and events[0][0] == "OPEN"
        path = urlsplit(self.path).path
        query = parse_qs(urlsplit(self.headers.get("Wsock-Uri", "")).query)
        if opening:
            if path == "/sleep" and "opensleep" in query:
                time.sleep(3)
            if path == "/garbage" and "opengarbage" in query:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", "6")
                self.end_headers()
                return self.wfile.write(b"<html>")
            if path == "/garbage" and "openclose" in query:   # accepted, then closed
                return self.answer(200, example.event("OPEN") + example.event("TEXT", b"bye") +
                                   example.event("CLOSE", b"\x0f\xa3no room"))
            if path == "/garbage" and "openbad" in query:
                return self.answer(200, b"TEXT 5\r\nhello\r\n")   # no OPEN first
            out = example.event("OPEN")
            if path == "/keepalive":
                ka = b'c:{"type":"keep-alive","content":"still there?","timeout":1}'
                return self.answer(200, out + example.event("TEXT", ka),
                                   [("Sec-WebSocket-Extensions", "grip")])
            if path == "/prefix":
                out += example.event("TEXT", b"x>hello") + example.event("TEXT", b"m:kept")
                return self.answer(200, out, [("Sec-WebSocket-Extensions",
                                               'grip; message-prefix="x>"')])
            if path == "/headers":
                out += example.event("TEXT", json.dumps(dict(self.headers.items())).encode())
            return self.answer(200, out)
        if path == "/sleep":
            time.sleep(3)
            return self.answer(200, b"")
        if path == "/garbage":
            return self.answer(200, b"<html>this is not an event</html>")
        if path == "/slowok":
            time.sleep(0.5)
            return self.answer(200, b"")
        return self.answer(200, b"")


def _serve(srv):
    srv.daemon_threads = True
    srv.keep_alive = 0
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


def serve_faults(port):
    return _serve(ThreadingHTTPServer(("127.0.0.1", port), Faults))


def serve_example_tls(port, cert, key):
    """The Python example's backend over HTTPS with a self-signed certificate."""
    srv = ThreadingHTTPServer(("127.0.0.1", port), example.Backend)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.out = open(os.devnull, "w")     # its event lines are not the tests' output
    return _serve(srv)
