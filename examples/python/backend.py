#!/usr/bin/env python3
"""A WebSocket application in plain Python behind mod_wsock's backend handler
(protocol=websocket-events, Pushpin's WebSocket-over-HTTP; docs/backend.md).

    WSockHandler backend http://127.0.0.1:8081/ws

    python3 examples/python/backend.py 8081 [--keep-alive SECONDS]

Every client event arrives as a POST; the answer carries the events for the
client.  What it does:
  - OPEN: a client must come with ?token=<BACKEND_TOKEN> (environment,
    default "secret"): none is 401, a wrong one 403, and mod_wsock refuses
    the upgrade with that status.  Otherwise it accepts, greets the client
    and remembers the client's name (?name=) in a Meta header, so that the
    next requests bring it back (no session store needed).
  - TEXT: "whoami" answers with the name the Meta header brought back;
    "keepalives" with how many keep-alive requests this connection made;
    anything else is echoed as "echo: <text>".
  - BINARY: echoed.
  - CLOSE: answered with CLOSE (the same code); DISCONNECT noted.
Each event is printed as one line on stdout ("EVENT <connection id> ...").
"""
import argparse
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = os.environ.get("BACKEND_TOKEN", "secret")
keepalives = {}
lock = threading.Lock()


def parse_events(body):
    """application/websocket-events -> [(name, bytes or None)]"""
    events, i = [], 0
    while i < len(body):
        eol = body.index(b"\r\n", i)
        line = body[i:eol].decode("ascii")
        i = eol + 2
        if " " in line:
            name, size = line.split(" ", 1)
            n = int(size, 16)
            events.append((name, body[i:i + n]))
            if body[i + n:i + n + 2] != b"\r\n":
                raise ValueError("bad event")
            i += n + 2
        else:
            events.append((line, None))
    return events


def event(name, content=None):
    if content is None:
        return name.encode() + b"\r\n"
    return b"%s %x\r\n%s\r\n" % (name.encode(), len(content), content)


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"           # keep-alive connections

    def log_message(self, *args):
        pass

    def say(self, *words):
        """One line of what happened, on the server's `out` (stdout)."""
        print(*words, file=getattr(self.server, "out", sys.stdout), flush=True)

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/websocket-events" if status == 200
                         else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        cid = self.headers.get("Connection-Id", "")
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        events = parse_events(body)
        out, headers = [], []
        if not events:
            with lock:
                keepalives[cid] = keepalives.get(cid, 0) + 1
            self.say("KEEPALIVE", cid)
        for name, content in events:
            self.say("EVENT", cid, name, (content or b"")[:60])
            if name == "OPEN":
                query = parse_qs(urlsplit(self.headers.get("Wsock-Uri", "")).query)
                token = query.get("token", [None])[0]
                if token is None:
                    return self.answer(401, b"a token is required\n")
                if token != TOKEN:
                    return self.answer(403, b"that token is not valid\n")
                user = query.get("name", ["anonymous"])[0]
                out.append(event("OPEN"))
                out.append(event("TEXT", ("welcome %s" % user).encode()))
                headers.append(("Set-Meta-User", user))
                if self.server.keep_alive:
                    headers.append(("Keep-Alive-Interval", str(self.server.keep_alive)))
            elif name == "TEXT":
                if content == b"whoami":
                    out.append(event("TEXT", self.headers.get("Meta-User", "?").encode()))
                elif content == b"keepalives":
                    with lock:
                        n = keepalives.get(cid, 0)
                    out.append(event("TEXT", str(n).encode()))
                else:
                    out.append(event("TEXT", b"echo: " + content))
            elif name == "BINARY":
                out.append(event("BINARY", content))
            elif name == "CLOSE":
                out.append(event("CLOSE", content))
        self.answer(200, b"".join(out), headers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--keep-alive", type=int, default=0,
                    help="ask for a keep-alive request after this many idle seconds")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Backend)
    srv.daemon_threads = True
    srv.keep_alive = args.keep_alive
    print("LISTENING", args.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
