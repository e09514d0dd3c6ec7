"""The demo chat page with permessage-deflate (the demo's /chat location
has WSockCompression on) in Debian's headless Chromium, driven by playwright-core
(compression_page.js): Chromium's own offer is accepted with the answer
the defaults give, the page's WebSocket reports the extension
(ws.extensions), and a large message typed in one page shows exactly in
the other, through two event children.

Run: /usr/bin/python3 -m pytest -q tests/browser   (after make; needs
chromium and tests/node/node_modules, see scripts/test.sh)
"""

import json
import os
import subprocess
import sys

import pytest

from test_chat_page import (HERE, REPO, TWO_CHILDREN, demo_conf, install_demo_pages,
                            require_browser, serve_checked)
from test_chat_page import ApacheInstance

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from rawws import parse_extensions  # noqa: E402

DEFAULT_ANSWER = ("permessage-deflate",
                  {"server_no_context_takeover": True, "client_no_context_takeover": True})


@pytest.fixture
def deflate_demo():
    require_browser()
    conf = demo_conf()
    chat = conf[conf.index("<Location /chat>"):]
    chat = chat[:chat.index("</Location>")]
    assert "\n    WSockCompression on\n" in chat, "the demo's chat no longer compresses"
    inst = ApacheInstance("event", extra_conf=conf, mpm_conf=TWO_CHILDREN)
    install_demo_pages(inst)
    yield from serve_checked(inst)


def test_chat_page_compressed_in_chromium(deflate_demo):
    inst = deflate_demo
    out = subprocess.run(["node", os.path.join(HERE, "compression_page.js"),
                          "http://127.0.0.1:%d" % inst.port],
                         capture_output=True, text=True, timeout=90)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, "compression_page.js gave no result: %s\n%s" % (out.stdout[-2000:],
                                                                  out.stderr[-2000:])
    result = json.loads(lines[-1][len("RESULT "):])
    assert result.get("ok"), "%s\n--- error log:\n%s" % (result.get("error") or result,
                                                    inst.error_log()[-3000:])
    c = result["checks"]
    hs = c["handshake"]
    # Chromium's offer, and the answer the defaults give to it
    assert parse_extensions(hs["offer"]) == [
        ("permessage-deflate", {"client_max_window_bits": True})], hs
    assert hs["status"] == 101 and parse_extensions(hs["answer"]) == [DEFAULT_ANSWER], hs
    # each page's one WebSocket says permessage-deflate is in use
    for sockets in c["extensions"]:
        assert len(sockets) == 1 and parse_extensions(sockets[0]) == [DEFAULT_ANSWER], sockets
    assert c["bigBytes"] > 4096
    assert c["atB"] is True and c["atA"] is True
    assert result["pageErrors"] == []
