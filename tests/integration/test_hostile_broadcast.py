"""Slow consumers in a busy room, through a real apache2 (event with two
children, and prefork) and the chat handler: members that never read (a
4 KiB receive window, no reads) while the room carries megabytes.

WSockSendQueue 64 512K, with each policy: "close" closes every stuck member
(1008, WSOCK0602), "drop" keeps it and counts what it missed (WSOCK0601,
WSOCK0604).  Either way the members that read get every message in order,
and what the stuck ones make the server hold is bounded by the queue (and
the unwritten output's high-water mark), and given back.
"""

import re

import pytest

import hostile
import memory
from conftest import new_instance, serve
from hostile import KiB, MiB
from test_chat import drain_until_end, flood_room

CONF = """\
<Location /bc-close>
    WSockHandler chat room=query
    WSockSendQueue 64 512K close
</Location>
<Location /bc-drop>
    WSockHandler chat room=query
    WSockSendQueue 64 512K drop
</Location>
"""

STUCK = 6
READERS = 3
MESSAGES = 600                    # of 16 KiB: 9.6 MiB for each member, more
SIZE = 16 * KiB                   # than a stuck member's socket buffers hold
AHEAD = 8                         # messages the publisher may be ahead: 128 KiB
# A stuck member: its queue (512 KiB) and unwritten output (high-water mark
# 256 KiB, plus a message): twice that is allowed.
PER_STUCK = int(2 * (512 * KiB + 256 * KiB + 64 * KiB))
SLACK = 6 * MiB

_rooms = iter(range(1000))


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request):
    yield from serve(new_instance(request.param, CONF,
                                  mpm_conf=hostile.sizing(request.param, STUCK + READERS)))


def flood(inst, path, tick=None):
    """READERS members read while the first of them publishes MESSAGES
    messages, at most AHEAD ahead of the slowest reader; what each got."""
    return flood_room(inst, path, readers=READERS, count=MESSAGES, size=SIZE, ahead=AHEAD,
                      tick=tick)


@pytest.mark.parametrize("policy", ["close", "drop"])
def test_stuck_members_of_a_busy_room(server, policy):
    location = "/bc-" + policy
    # warm-up: the same traffic with members that all read
    warm = flood(server, "%s?room=warm%d" % (location, next(_rooms)))
    assert all(g == list(range(MESSAGES)) for g in warm)
    meter = hostile.Meter(server, keep=0)
    since = server.log_offset()
    ends, ids = [], []
    for _ in range(hostile.ROUNDS):
        path = "%s?room=busy%d" % (location, next(_rooms))
        stuck = [hostile.connect(server.port, path, rcvbuf=4096) for _ in range(STUCK)]
        try:
            ids += [hostile.conn_id(c) for c in stuck]
            got = flood(server, path, tick=meter.poll)
            meter.poll()
            assert all(g == list(range(MESSAGES)) for g in got), \
                "readers missed messages: %r" % [len(g) for g in got]
            if policy == "close":
                ends += [drain_until_end(c) for c in stuck]
            else:
                # the readers are gone; the stuck members are still served
                ends.append(memory.wait_connections_gone(server.port, at_most=STUCK))
        finally:
            hostile.close_all(stuck)
        meter.round_done(STUCK)
    log = server.error_log(since)
    facts = meter.facts()
    print(facts)
    tag = "WSOCK0602" if policy == "close" else "WSOCK0601"
    for cid in ids:
        assert re.search(r"%s: WebSocket %s: client %s does not keep up" % (
            tag, location, re.escape(cid)), log), "no %s for %s: %s" % (tag, cid, log[-3000:])
    if policy == "close":
        # what was under way, then a close 1008, or the TCP connection cut
        assert all(e in (None, (1008, "slow consumer")) for e in ends), ends
    else:
        assert ends == [STUCK] * hostile.ROUNDS, "server-side connections: %r" % ends
        assert "WSOCK0602" not in log
        for cid in ids:
            m = server.wait_log(r"\[(?:client|remote) %s\] WSOCK0604: WebSocket %s ended with "
                                r"\d+; (\d+) messages for it were dropped"
                                % (re.escape(cid), location), since=since)
            assert m and int(m.group(1)) > 0, cid
    meter.check("stuck members", STUCK, PER_STUCK, SLACK)
