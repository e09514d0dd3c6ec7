#!/usr/bin/python3
"""How many idle WebSockets does a stock Debian apache2 hold, with and
without the shipped conf/wsock.conf, and what do they cost in memory?

    bench/capacity.py [-n 16000] [--nofile 8192]

Starts Debian's apache2 with the stock event MPM settings of
mods-available/mpm_event.conf and the open-file limit apache2ctl sets
(8192), once without and once with conf/wsock.conf, opens up to -n idle
WebSockets to an echo location (raw sockets, massws.py), stops when the
server answers no handshake for 4 s, and prints what it held, what the
formula of docs/operations.md predicts, and the memory (PSS and RSS of
all apache2 processes) before and with them.  Last line: TABLE key=value.
"""

import argparse
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import apache_instance  # noqa: E402
import debian_stock  # noqa: E402
import memory  # noqa: E402
from massws import echo_roundtrip, open_many, raise_fd_limit  # noqa: E402



def run(label, with_conf, count, nofile, factor):
    extra = ("Include %s\n" % os.path.join(REPO, "conf", "wsock.conf")
             if with_conf else "") + debian_stock.IDLE_ECHO
    root = tempfile.mkdtemp(prefix="wsock-capacity-")
    inst = apache_instance.ApacheInstance(
        mpm="event", extra_conf=extra, mpm_conf=debian_stock.EVENT, root=root,
        launcher=debian_stock.launcher(nofile))
    inst.start()
    try:
        before = memory.settled(inst.pid)
        opened = open_many(inst.port, count, window=400, deadline=120.0, quiet=4.0)
        held = memory.sample(inst.pid)
        echoes = sum(1 for i, s in enumerate(opened.sockets[::max(1, len(opened.sockets) // 20)])
                     if echo_roundtrip(s, "e%d" % i) == "e%d" % i)
        n = len(opened.sockets)
        predicted = 6 * 25 * (1 + factor)
        per = (held.pss_kib - before.pss_kib) / n if n else 0.0
        print("%-22s held %6d of %6d (formula: %6d), %d still waiting, %d children; "
              "%d sampled echoes ok; PSS %.1f -> %.1f MiB (%.1f KiB each), RSS %.1f -> %.1f MiB"
              % (label, n, count, predicted, opened.waiting, len(inst.child_pids()), echoes,
                 before.pss_mib, held.pss_mib, per, before.rss_mib, held.rss_mib))
        opened.close()
        return n, per
    finally:
        inst.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=16000, help="WebSockets to try (default 16000)")
    ap.add_argument("--nofile", type=int, default=debian_stock.NOFILE,
                    help="open-file limit of apache2 (apache2ctl's default 8192)")
    args = ap.parse_args()
    if raise_fd_limit(args.n + 500) < args.n + 100:
        sys.exit("cannot raise this process's open-file limit to %d" % (args.n + 500))
    print("stock Debian event MPM (ThreadsPerChild 25, MaxRequestWorkers 150), "
          "nofile %d, apache2 %s" % (args.nofile, apache_instance.APACHE_BIN))
    stock, _ = run("without wsock.conf", False, min(args.n, 1000), args.nofile, 2)
    shipped, per = run("with wsock.conf", True, args.n, args.nofile, 100)
    print("TABLE stock=%d shipped=%d kib_per_ws=%.1f nofile=%d"
          % (stock, shipped, per, args.nofile))


if __name__ == "__main__":
    main()
