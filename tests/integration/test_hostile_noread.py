"""A client that sends and never reads (issue 12, item 4), through a real
apache2: event with two children, and prefork.

Ten raw clients flood /echo with 64 KiB messages, as fast as their sockets
take them (4 MiB at a time, a 4 MiB send buffer), and never read; each has
a 4 KiB receive window, so the echoes back up at once.  What one such
connection may make the server hold is bounded by its settings (defaults
here): a read's worth of input (256 KiB), the unwritten output's high-water
mark (256 KiB) and the message being assembled (64 KiB here, up to
WSockMaxMessageSize): about 1 MiB.  The test allows twice that per attacker,
plus a fixed slack for the server's own threads and allocators, at the
peak of the attack; after the attackers are gone the memory must come back
(hostile.Meter: three rounds).  Meanwhile a well-behaved echo client on the
same server must get every answer.
"""

import pytest

import hostile
from conftest import new_instance, serve
from hostile import KiB, MiB

CONF = """\
<Location /echo>
    WSockHandler echo
</Location>
"""

ATTACKERS = 10
PER_ATTACKER = 2 * MiB           # twice the ~1 MiB the settings allow
SLACK = 6 * MiB                  # threads' stacks and arenas touched


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request):
    yield from serve(new_instance(request.param, CONF,
                                  mpm_conf=hostile.sizing(request.param, ATTACKERS + 1)))


def test_senders_that_never_read_are_bounded(server):
    hostile.warm_up(server, "/echo", hostile.warm_conns(server.mpm, ATTACKERS + 1),
                    [64 * KiB, 1 * MiB - 64])
    meter = hostile.Meter(server)
    watcher = hostile.EchoWatcher(server.port, "/echo")
    sent = []

    def tick():
        meter.poll()
        watcher.step()

    for _ in range(hostile.ROUNDS):
        attackers = [hostile.connect(server.port, "/echo", rcvbuf=4096, sndbuf=4 * MiB)
                     for _ in range(ATTACKERS)]
        try:
            sent.append(hostile.flood_without_reading(
                attackers, hostile.echo_burst(64 * KiB, 64), duration=10, tick=tick))
            # held, still not reading: the server must not creep up either
            for _ in range(5):
                tick()
        finally:
            hostile.close_all(attackers)
        meter.round_done(ATTACKERS)
        for _ in range(3):
            watcher.step()
    watcher.close()
    extra = "; sent per attacker (MiB): %s; %r" % (
        [[round(b / MiB, 1) for b in r] for r in sent], watcher)
    print(meter.facts() + extra)
    assert watcher.errors == [] and watcher.answered == watcher.sent, meter.facts() + extra
    meter.check("clients that never read", ATTACKERS, PER_ATTACKER, SLACK, extra)
