"""The live dashboard (SetHandler wsock-status) in Debian's headless
Chromium (dashboard_page.js), against a real apache2 with two event
children: the test opens and closes known numbers of WebSockets in both
children, fills rooms of known sizes (one named by a location whose path is
markup, <img src=x onerror=alert(1)>), has handshakes refused, then opens
the page and reads back what it rendered -- the tiles' numbers, the rooms,
locations, closes and refusals tables, the charts' data and drawn pixels --
and compares it with what the test did and with the snapshot the server
streams to the test's own WebSocket at the same moment.  The markup name is
text (no element, no dialog), the page fetches nothing from elsewhere and
breaks no rule of its Content-Security-Policy (no console error).  The
screenshot is tests/browser/artifacts/dashboard.png.

Run: /usr/bin/python3 -m pytest -q tests/browser   (after make; needs
chromium and tests/node/node_modules, see scripts/test.sh)
"""

import asyncio
import json
import os
import sys

import pytest
import websockets

from test_chat_page import (ARTIFACTS, HERE, REPO, TWO_CHILDREN, ApacheInstance,
                            require_browser, serve_checked)

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from test_compression_rooms import serving_pids  # noqa: E402
# the locations of the stream's test: /status, /echo, /chat, the markup one
from test_dashboard_stream import CONF, XSS, XSS_PATH  # noqa: E402


@pytest.fixture
def server():
    require_browser()
    yield from serve_checked(ApacheInstance("event", extra_conf=CONF, mpm_conf=TWO_CHILDREN))


async def snapshot_after(ws, time_ms, timeout=5):
    """The first snapshot taken after time_ms (older ones wait in the
    client's buffer)."""
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if m["type"] == "snapshot" and m["time_ms"] > time_ms:
            return m


async def scenario(inst):
    ws_base = "ws://127.0.0.1:%d" % inst.port
    page_url = "http://127.0.0.1:%d/status" % inst.port
    # Echo WebSockets until both children hold some (at least 8).
    echoes = []
    for _ in range(40):
        echoes.append(await websockets.connect(ws_base + "/echo"))
        pids = serving_pids(inst, [c.local_address[1] for c in echoes])
        if len(echoes) >= 8 and len(set(pids.values())) == 2:
            break
    assert len(set(pids.values())) == 2, pids
    for c in echoes[:3]:
        await c.close(1000)
    await echoes[3].close(4001)
    lobby = [await websockets.connect(ws_base + "/chat?room=lobby") for _ in range(4)]
    xss = [await websockets.connect(ws_base + XSS_PATH) for _ in range(2)]
    for _ in range(2):
        with pytest.raises(websockets.InvalidStatusCode):
            await websockets.connect(ws_base + "/echo", origin="http://evil.example")
    # open: and two dashboards (the test's own and the page's), counted apart
    want = {"open": len(echoes) - 4 + 4 + 2 + 2, "rooms": {"/chat?lobby": 4, "/x" + XSS: 2}}

    async with websockets.connect(ws_base + "/status", max_size=2 ** 22,
                                  origin="http://127.0.0.1:%d" % inst.port) as mine:
        # A fresh server has no history until its samplers' first turn (on
        # the next whole second); a page opened before then rightly gets an
        # empty one.  Two snapshots here mean a second was sampled and its
        # row written a second ago, so the page's history holds it.
        await snapshot_after(mine, 0)
        await snapshot_after(mine, 0)
        proc = await asyncio.create_subprocess_exec(
            "node", os.path.join(HERE, "dashboard_page.js"), page_url, ARTIFACTS,
            json.dumps(want), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        dom = result = snap = None
        try:
            while result is None:
                line = (await asyncio.wait_for(proc.stdout.readline(), 70)).decode()
                assert line, "dashboard_page.js ended without a RESULT"
                if line.startswith("DOM "):
                    dom = json.loads(line[4:])
                    # the server's own numbers, read while the page shows its own
                    snap = await snapshot_after(mine, dom["snapshotTime"])
                    proc.stdin.write(b"ok\n")
                    await proc.stdin.drain()
                elif line.startswith("RESULT "):
                    result = json.loads(line[7:])
        finally:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
    for c in echoes[4:] + lobby + xss:
        await c.close()
    return want, len(echoes), dom, snap, result


def test_dashboard_in_chromium(server):
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "dashboard.png")
    if os.path.exists(shot):
        os.unlink(shot)
    want, n, dom, snap, result = asyncio.run(asyncio.wait_for(scenario(server), 100))
    assert result.get("ok"), "%s\n--- error log:\n%s" % (result.get("error") or result,
                                                    server.error_log()[-3000:])
    # nothing ran that should not, nothing came from elsewhere, the CSP held
    assert result["dialogs"] == [] and result["pageErrors"] == []
    assert result["consoleErrors"] == [] and result["foreign"] == []
    assert dom["imgElements"] == 0
    assert dom["state"] == "live"

    # the page shows what the server reports ...
    t = dom["tiles"]
    assert int(t["v-open"]) == snap["open"]
    assert int(t["v-children"]) == snap["children"] == 2
    assert int(t["v-rooms"]) == snap["gauges"]["rooms"]
    assert int(t["v-members"]) == snap["gauges"]["room_members"]
    assert {r["name"]: r["members"] for r in dom["rooms"]} == \
        {r["name"]: r["members"] for r in snap["rooms"]}
    assert {(l["location"], l["handler"], l["open"], l["opened"]) for l in dom["locations"]} == \
        {(l["location"], l["handler"], l["open"], l["opened"]) for l in snap["locations"]}
    assert {c["code"]: c["total"] for c in dom["closes"]} == snap["closed"]
    assert {r["reason"]: r["total"] for r in dom["refusals"]} == \
        {k: sum(v.values()) for k, v in snap["refused"].items()}
    # ... which is what the test did (a fresh server: the window is all of it)
    assert snap["open"] == want["open"]
    assert {c["code"]: (c["recent"], c["total"]) for c in dom["closes"]} == \
        {"1000": (3, 3), "other": (1, 1)}
    assert int(t["v-closed-window"]) == 4
    assert [(r["reason"], r["recent"], r["total"], r["statuses"]) for r in dom["refusals"]] == \
        [("origin", 2, 2, "403 \u00d7 2")]
    assert int(t["v-refused-window"]) == 2
    assert t["v-in-rate"] == "0"                # nothing sent in the last second
    rooms = {r["name"]: r for r in dom["rooms"]}
    assert rooms["/chat?lobby"]["members"] == 4
    # the markup is the room's and the location's name, as text
    assert rooms["/x" + XSS]["members"] == 2 and rooms["/x" + XSS]["nameElements"] == 0
    locs = {l["location"]: l for l in dom["locations"]}
    assert locs["/echo"]["open"] == n - 4 and locs["/echo"]["opened"] == n
    assert locs["/x" + XSS]["open"] == 2 and locs["/chat"]["open"] == 4
    assert locs["(wsock-status)"]["open"] == 2

    # the charts: the history drawn, its last point the current count
    assert dom["historyRows"] >= 1
    c_open = dom["charts"]["c-open"]
    assert c_open["points"] >= 2 and int(c_open["last"]) == snap["open"]
    assert c_open["drawn"] > 20, c_open
    assert dom["charts"]["c-msgs"]["points"] >= 1
    # the largest rooms over time: one line each, their newest points now's sizes
    assert dom["roomLegend"] == [{"name": "/chat?lobby", "elements": 0},
                                 {"name": "/x" + XSS, "elements": 0}]
    assert dom["charts"]["c-rooms"]["lasts"] == "4,2"
    assert os.path.getsize(shot) > 10000
