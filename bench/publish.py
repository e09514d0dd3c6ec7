#!/usr/bin/python3
"""publish.py — what publishing over HTTP costs (issue 15, docs/publish.md).

    bench/publish.py [-n CONNS] [-s SUBSCRIBERS] [-p PUBLISHERS] [-d SECONDS] [-b BYTES]

Starts a real apache2 (event MPM, two children, sized for many WebSockets)
with mod_wsock on a free 127.0.0.1 port and measures, in one run:

1. Addressable connections (WSockAddressable on): the server's memory
   (PSS of the whole process tree) with CONNS idle echo WebSockets that
   are not addressable, then with CONNS that are, then not again (after a
   warm-up round of each); per connection, and the difference (the private room
   and its slot in the bus's room table).
2. Publishing: SUBSCRIBERS WebSockets in one chat room, PUBLISHERS threads
   POSTing BYTES-byte messages to /pub (keep-alive) for SECONDS: POSTs/s,
   deliveries/s counted by the subscribers, and whether every subscriber
   got every message in each publisher's order.

Prints the figures and a last line `TABLE key=value ...`.  Everything runs
on 127.0.0.1; every wait is bounded.  WSOCK_MODULE picks the module
(default .libs/mod_wsock.so of this repository).  Exit status 0 if every
connection opened and every message arrived.
"""

import argparse
import asyncio
import http.client
import os
import resource
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

import websockets  # noqa: E402

import memory  # noqa: E402
from apache_instance import ApacheInstance, default_module_path  # noqa: E402

SIZING = """\
ServerLimit 2
StartServers 2
ThreadLimit 25
ThreadsPerChild 25
MinSpareThreads 5
MaxSpareThreads 50
MaxRequestWorkers 50
AsyncRequestWorkerFactor 400
"""

CONF = """
<Location /plain>
    WSockHandler echo
</Location>
<Location /addr>
    WSockHandler echo
    WSockAddressable on
</Location>
<Location /chat>
    WSockHandler chat
    WSockSendQueue 100000 64M drop
</Location>
<Location /pub>
    SetHandler wsock-publish
</Location>
"""


async def hold(url, n, batch=100):
    conns = []
    for i in range(0, n, batch):
        conns += await asyncio.gather(*[
            websockets.connect(url, open_timeout=30, ping_interval=None, close_timeout=2)
            for _ in range(min(batch, n - i))])
    return conns


def idle_cost(inst, path, n):
    """PSS growth (KiB) of the tree with n idle WebSockets to path."""
    base = memory.settled(inst.pid)

    async def go():
        conns = await hold(inst.url(path), n)
        # every one answers (it is held, not half-open)
        await asyncio.gather(*[c.send("x") for c in conns])
        await asyncio.gather(*[asyncio.wait_for(c.recv(), 30) for c in conns])
        held = memory.settled(inst.pid)
        await asyncio.gather(*[c.close() for c in conns], return_exceptions=True)
        return held

    held = asyncio.run(asyncio.wait_for(go(), 300))
    memory.wait_connections_gone(inst.port, timeout=30)
    return held.pss_kib - base.pss_kib


def publish_rate(inst, subscribers, publishers, seconds, size):
    stop = threading.Event()
    sent = [[] for _ in range(publishers)]
    errors = []

    def publisher(k):
        c = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=30)
        i = 0
        pad = b"." * max(0, size - 16)
        while not stop.is_set():
            body = b"%d:%d:" % (k, i) + pad
            c.request("POST", "/pub?location=/chat", body=body,
                      headers={"Content-Type": "text/plain"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)
                break
            sent[k].append(i)
            i += 1
        c.close()

    async def go():
        conns = await hold(inst.url("/chat"), subscribers)
        got = [[] for _ in conns]

        async def reader(j, ws):
            try:
                while True:
                    m = await asyncio.wait_for(ws.recv(), 5)
                    got[j].append(m)
            except (asyncio.TimeoutError, websockets.ConnectionClosed):
                pass

        readers = [asyncio.ensure_future(reader(j, ws)) for j, ws in enumerate(conns)]
        threads = [threading.Thread(target=publisher, args=(k,)) for k in range(publishers)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        await asyncio.sleep(seconds)
        stop.set()
        for t in threads:
            await asyncio.get_running_loop().run_in_executor(None, t.join, 30)
        elapsed = time.monotonic() - t0
        await asyncio.gather(*readers)      # each ends 5 s after the last message
        await asyncio.gather(*[c.close() for c in conns], return_exceptions=True)
        return elapsed, got

    elapsed, got = asyncio.run(asyncio.wait_for(go(), seconds + 300))
    posts = sum(len(s) for s in sent)
    delivered = sum(len(g) for g in got)
    in_order = True
    for g in got:
        per = {}
        for m in g:
            k, i = m.split(":")[:2]
            per.setdefault(k, []).append(int(i))
        if any(v != list(range(len(v))) for v in per.values()) or len(g) != posts:
            in_order = False
    return posts, delivered, elapsed, in_order, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="idle connections (default 2000)")
    ap.add_argument("-s", type=int, default=200, help="subscribers (default 200)")
    ap.add_argument("-p", type=int, default=4, help="publisher threads (default 4)")
    ap.add_argument("-d", type=float, default=5, help="seconds of publishing (default 5)")
    ap.add_argument("-b", type=int, default=64, help="bytes per message (default 64)")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    inst = ApacheInstance(mpm="event", extra_conf=CONF, mpm_conf=SIZING, loglevel="warn",
                          module=os.environ.get("WSOCK_MODULE", default_module_path()))
    ok = True
    try:
        inst.start()
        # a first round of each warms the allocators up (their figures are
        # not kept); then plain, addressable, plain again: the mean of the
        # plains against the addressable
        idle_cost(inst, "/plain", a.n)
        idle_cost(inst, "/addr", a.n)
        plain1 = idle_cost(inst, "/plain", a.n)
        addr = idle_cost(inst, "/addr", a.n)
        plain2 = idle_cost(inst, "/plain", a.n)
        plain = (plain1 + plain2) / 2
        print("rounds (KiB per connection, after a warm-up round of each): plain %.2f, "
              "addressable %.2f, plain %.2f" % (plain1 / a.n, addr / a.n, plain2 / a.n))
        print("idle WebSockets: %d not addressable: %.2f KiB each; addressable: %.2f KiB "
              "each; addressable costs %+.2f KiB per connection"
              % (a.n, plain / a.n, addr / a.n, (addr - plain) / a.n))
        posts, delivered, elapsed, in_order, errors = publish_rate(inst, a.s, a.p, a.d, a.b)
        print("publishing: %d publishers, %d subscribers, %d-byte messages: %.0f POSTs/s, "
              "%.0f deliveries/s, every message to every subscriber in order: %s%s"
              % (a.p, a.s, a.b, posts / elapsed, delivered / elapsed,
                 "yes" if in_order else "NO",
                 (", errors %s" % errors[:5]) if errors else ""))
        ok = in_order and not errors
        print("TABLE conns=%d idle_kib=%.2f addressable_kib=%.2f extra_kib=%.2f "
              "subscribers=%d posts_per_s=%.0f deliveries_per_s=%.0f in_order=%d"
              % (a.n, plain / a.n, addr / a.n, (addr - plain) / a.n, a.s, posts / elapsed,
                 delivered / elapsed, int(in_order)))
    finally:
        inst.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
