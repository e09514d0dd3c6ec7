"""Clients that start a frame and do not finish it, through a real apache2
(event with two children, and prefork): WSockFrameTimeout must close them
with 1008, what they made the server hold must be bounded and given back,
and a well-behaved echo client on the same server keeps getting answers.

- half frames: a header cut short, a header announcing 1 MiB and nothing
  after it, half of a 1 MiB frame's payload, the first fragment of a
  message whose last fragment never comes;
- slow dribble: a byte every 0.25 s, each within the frame timeout, so the
  connection is never idle; it is closed when the frame timeout has passed
  since the frame's first byte, not kept alive by each byte.

/ft has WSockFrameTimeout 2 (idle timeout 60 s, no pings); the default
WSockMaxMessageSize (1 MiB) applies.
"""

import pytest

import hostile
from conftest import new_instance, serve
from hostile import KiB, MiB
from rawws import OP_TEXT, build_frame

CONF = """\
<Location /echo>
    WSockHandler echo
</Location>
<Location /ft>
    WSockHandler echo
    WSockFrameTimeout 2
    WSockIdleTimeout 60
    WSockPingInterval 0
</Location>
"""

EACH = 6                          # connections of each kind of half frame
CONNS = 4 * EACH + 1              # at once: the half frames and the echo client
# What one may hold: the message being assembled (WSockMaxMessageSize) and
# a read's worth of input (256 KiB); twice that is allowed.
PER_CONN = int(2 * (1 * MiB + 256 * KiB))
SLACK = 6 * MiB
CLOSE_WAIT = 20                   # s: the frame timeout is 2 s


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request):
    yield from serve(new_instance(request.param, CONF,
                                  mpm_conf=hostile.sizing(request.param, CONNS)))


def start_half_frames(inst, meter, watcher):
    """EACH connections of every kind of unfinished frame."""
    conns = []
    for kind in range(4):
        for _ in range(EACH):
            c = hostile.connect(inst.port, "/ft")
            conns.append(c)
            if kind == 0:        # two bytes of a 10-byte header
                c.send_raw(build_frame(OP_TEXT, b"x" * 70000)[:2])
            elif kind == 1:      # a header that announces 1 MiB, then nothing
                c.send_raw(build_frame(OP_TEXT, b"", length=1 * MiB))
            elif kind == 2:      # half of a 1 MiB frame
                c.send_raw(build_frame(OP_TEXT, b"y" * (512 * KiB), length=1 * MiB))
            else:                # a first fragment, never the last
                c.send_frame(OP_TEXT, b"z" * (512 * KiB), fin=False)
        meter.poll()
        watcher.step()
    return conns


def test_half_frames_are_closed_1008_and_given_back(server):
    n = 4 * EACH
    hostile.warm_up(server, "/echo", hostile.warm_conns(server.mpm, CONNS),
                    [512 * KiB, 1 * MiB - 64])
    meter = hostile.Meter(server)
    since = server.log_offset()
    watcher = hostile.EchoWatcher(server.port, "/echo")
    closes = []
    for _ in range(hostile.ROUNDS):
        conns = []
        try:
            conns = start_half_frames(server, meter, watcher)
            for _ in range(5):
                meter.poll()
                watcher.step()
            closes += hostile.wait_closed_with(conns, 1008, "frame timeout", CLOSE_WAIT)
            meter.poll()
        finally:
            hostile.close_all(conns)
        meter.round_done(n)
        for _ in range(3):
            watcher.step()
    watcher.close()
    extra = "; %r" % watcher
    print(meter.facts() + extra)
    total = n * hostile.ROUNDS
    assert closes == [(1008, "frame timeout")] * total, "closes: %r; %s" % (closes, extra)
    assert server.error_log(since).count("WSOCK0751:") >= total, meter.facts()
    assert watcher.errors == [] and watcher.answered == watcher.sent, meter.facts() + extra
    meter.check("half-frame clients", n, PER_CONN, SLACK, extra)


def test_slow_dribblers_are_closed_when_the_frame_timeout_passes(server):
    since = server.log_offset()
    watcher = hostile.EchoWatcher(server.port, "/echo")
    frame = build_frame(OP_TEXT, b"d" * 194)          # 200 bytes: 50 s at this pace
    conns = [hostile.connect(server.port, "/ft") for _ in range(10)]
    try:
        results = hostile.dribble(conns, frame, pause=0.25, limit=CLOSE_WAIT)
        for _ in range(3):
            watcher.step()
        closes = hostile.wait_closed_with(conns, 1008, "frame timeout", 10)
    finally:
        hostile.close_all(conns)
    watcher.close()
    facts = "dribbled (bytes sent, s until the server answered): %r; %r" % (results, watcher)
    print(facts)
    # each one got an answer before its frame was complete (it would have
    # taken 50 s): the close, not the echo of a finished frame
    assert all(sent < len(frame) and t is not None for sent, t in results), facts
    assert closes == [(1008, "frame timeout")] * len(conns), "closes: %r; %s" % (closes, facts)
    assert server.wait_log(r"WSOCK0751: WebSocket /ft: a frame or fragmented message is still "
                           r"incomplete after \d+ ms", since=since), facts
    assert watcher.errors == [] and watcher.answered == watcher.sent, facts
