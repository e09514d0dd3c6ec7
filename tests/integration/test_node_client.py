"""Node's ws (a second client nobody here wrote) against mod_wsock: text,
binary, a 200 kB message, a fragmented message, subprotocol choice, ping and
a close code, under the event and prefork MPMs."""

import json
import os
import shutil
import subprocess

import pytest

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")


@pytest.fixture(scope="module")
def node_client():
    if shutil.which("node") is None or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
        pytest.fail("Node and tests/node/node_modules are needed: run scripts/test.sh "
                    "(it installs them)", pytrace=False)
    return os.path.join(NODE_DIR, "ws_client.js")


def test_node_ws_client_round_trip(server, node_client):
    out = subprocess.run(["node", node_client, server.url("/proto")], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["errors"] == []
    assert res["protocol"] == "v2.json"          # the client's first allowed choice
    assert res["echoes"] == [
        {"text": "héllo from node"},
        {"bin": 4, "sum": 258},
        {"bin": 200000, "sum": 1400000},
        {"text": "frag-mented"},
    ]
    assert res["pong"] == "node-ping"
    assert res["close"] == {"code": 4321, "reason": ""}
