#!/usr/bin/python3
"""dashboard.py — what the live dashboard's sampler costs (issue 14).

    bench/dashboard.py [-r ROOMS] [-m MEMBERS] [-w WATCHERS] [-t SECONDS]

Every child process runs a sampler thread (named wsock-sampler) that wakes
once a second: it sums the counters, lists the child's largest rooms (a
short hold of the rooms mutex, a pass over every room of the child), writes
the second's history sample if it claims it, and -- only while dashboards
watch -- builds one JSON snapshot and hands it to them.  This starts
apache2 (event MPM, two children, the harness's config) with a `chat
room=query` location and a `wsock-status` location, then measures, for
SECONDS each:

  idle      no room, no dashboard;
  rooms     ROOMS rooms of MEMBERS members each (chat clients, spread over
            the children), no dashboard;
  watched   the same rooms and WATCHERS dashboard WebSockets (each gets a
            snapshot a second).

For each phase it prints the CPU time the sampler threads used (summed
over the children, from /proc/PID/task/TID/stat), per second of wall time,
the snapshot's size, and the PSS of the apache process tree.  The shared
memory of the history is fixed: printed from the layout.  Uses Debian's
python3-websockets; everything runs on 127.0.0.1 and is stopped at the end.
"""

import argparse
import asyncio
import json
import os
import sys
import time

import websockets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from apache_instance import ApacheInstance  # noqa: E402
import memory  # noqa: E402

CONF = """\
<Location /chat>
    WSockHandler chat room=query
</Location>
<Location /status>
    SetHandler wsock-status
</Location>
"""
SIZING = """\
StartServers 2
ServerLimit 2
ThreadLimit 64
ThreadsPerChild 64
MinSpareThreads 128
MaxSpareThreads 128
MaxRequestWorkers 128
MaxConnectionsPerChild 0
AsyncRequestWorkerFactor 100
"""


def sampler_cpu_s(inst):
    """CPU seconds of every wsock-sampler thread (schedstat: nanoseconds)."""
    total = 0
    for pid in inst.child_pids():
        task = "/proc/%d/task" % pid
        for tid in os.listdir(task):
            try:
                with open(os.path.join(task, tid, "comm")) as f:
                    if f.read().strip() != "wsock-sampler":
                        continue
                with open(os.path.join(task, tid, "schedstat")) as f:
                    total += int(f.read().split()[0])
            except OSError:
                continue
    return total / 1e9


async def phase(inst, name, seconds, watchers):
    sizes = []

    async def watch(ws):
        while True:
            m = json.loads(await ws.recv())
            if m["type"] == "snapshot":
                sizes.append(len(json.dumps(m, separators=(",", ":"))))

    tasks = [asyncio.ensure_future(watch(w)) for w in watchers]
    cpu0, t0 = sampler_cpu_s(inst), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, t1 = sampler_cpu_s(inst), time.monotonic()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pss = memory.sample(inst.pid).pss_kib
    print("%-8s sampler CPU %7.3f ms/s (all children)   snapshot %6s bytes   PSS %7d KiB"
          % (name, (cpu1 - cpu0) * 1000 / (t1 - t0),
             max(sizes) if sizes else "-", pss))
    return (cpu1 - cpu0) * 1000 / (t1 - t0)


async def main(args):
    inst = ApacheInstance("event", extra_conf=CONF, mpm_conf=SIZING, loglevel="warn")
    inst.start()
    try:
        base = "ws://127.0.0.1:%d" % inst.port
        print("history shared memory: %d bytes (600 samples of 1424 B, 2 room slots of "
              "2368 B, head 64 B)" % (64 + 600 * 1424 + 2 * 2368))
        await phase(inst, "idle", args.seconds, [])
        members = []
        for r in range(args.rooms):
            for _ in range(args.members):
                members.append(await websockets.connect(base + "/chat?room=r%d" % r))
        await phase(inst, "rooms", args.seconds, [])
        watchers = [await websockets.connect(base + "/status", max_size=2 ** 22,
                                             origin="http://127.0.0.1:%d" % inst.port)
                    for _ in range(args.watchers)]
        await phase(inst, "watched", args.seconds, watchers)
        for c in watchers + members:
            await c.close()
    finally:
        inst.stop()
    print("TABLE rooms=%d members=%d watchers=%d" % (args.rooms, args.members, args.watchers))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--rooms", type=int, default=1000)
    ap.add_argument("-m", "--members", type=int, default=1)
    ap.add_argument("-w", "--watchers", type=int, default=5)
    ap.add_argument("-t", "--seconds", type=float, default=10.0)
    asyncio.run(main(ap.parse_args()))
