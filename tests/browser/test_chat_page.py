"""The demo chat page (conf/demo/htdocs) in Debian's headless Chromium,
driven by playwright-core (chat_page.js), against a real apache2 serving
the demo's own WebSocket configuration (conf/demo/wsock-demo.conf).

Two pages in one room: a message typed in one shows in the other with its
sender; markup in a message stays text (no element, no dialog); the state
indicator says open; when the server stops the page says it is
reconnecting, and when it is back both pages reconnect by themselves.
Screenshots go to tests/browser/artifacts/ (not in git).

Run: /usr/bin/python3 -m pytest -q tests/browser   (after make; needs
chromium and tests/node/node_modules, see scripts/test.sh)
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from apache_instance import APACHE_MODULES, ApacheInstance, free_port  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE_MODULES = os.path.join(REPO, "tests", "node", "node_modules")
ARTIFACTS = os.path.join(HERE, "artifacts")
DEMO = os.path.join(REPO, "conf", "demo")

# Two event children, as the demo runs: the two pages may land on different
# child processes, which the in-server bus joins.
TWO_CHILDREN = """\
StartServers 2
ServerLimit 2
ThreadLimit 32
ThreadsPerChild 32
MinSpareThreads 8
MaxSpareThreads 64
MaxRequestWorkers 64
MaxConnectionsPerChild 0
"""


def demo_conf():
    with open(os.path.join(DEMO, "wsock-demo.conf")) as f:
        locations = f.read()
    return ("LoadModule mime_module %s/mod_mime.so\n"
            "LoadModule dir_module %s/mod_dir.so\n"
            "TypesConfig /etc/mime.types\n"
            "DirectoryIndex index.html\n" % (APACHE_MODULES, APACHE_MODULES)) + locations


def line_reader(stream):
    """A queue of the stream's lines, filled by a thread."""
    q = queue.Queue()

    def pump():
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def install_demo_pages(inst):
    """The demo's pages (conf/demo/htdocs) into inst's DocumentRoot."""
    htdocs = os.path.join(inst.root, "htdocs")
    for name in os.listdir(os.path.join(DEMO, "htdocs")):
        shutil.copy(os.path.join(DEMO, "htdocs", name), htdocs)
        os.chmod(os.path.join(htdocs, name), 0o644)


def serve_checked(inst, after_stop=None):
    """Generator body for a fixture: start inst, yield it, stop it, and fail
    on a crash line in its error log."""
    inst.start()
    try:
        yield inst
    finally:
        inst.stop()
        crash = inst.crash_lines()
        if after_stop:
            after_stop()
        assert not crash, "\n".join(crash)


def require_browser():
    """Fails the test (not skips it) when what drives the page is missing."""
    missing = [what for what, ok in (
        ("node", shutil.which("node")),
        (CHROMIUM, os.access(CHROMIUM, os.X_OK)),
        ("tests/node/node_modules/playwright-core",
         os.path.isdir(os.path.join(NODE_MODULES, "playwright-core"))),
    ) if not ok]
    if missing:
        pytest.fail("the browser test needs %s: run scripts/test.sh (it installs them)"
                    % ", ".join(missing), pytrace=False)


@pytest.fixture
def demo_server():
    require_browser()
    # A fixed port, so that the server comes back where the page looks for
    # it; its own ServerRoot (readable by the children), kept across the
    # restart and removed at the end.
    inst = ApacheInstance("event", extra_conf=demo_conf(), mpm_conf=TWO_CHILDREN,
                          port=free_port(), keep=True)
    install_demo_pages(inst)

    def remove_root():
        if os.environ.get("WSOCK_KEEP_DIRS") != "1":
            shutil.rmtree(inst.root, ignore_errors=True)
    yield from serve_checked(inst, remove_root)


def test_chat_page_in_chromium(demo_server):
    inst = demo_server
    base = "http://127.0.0.1:%d" % inst.port
    # the echo page stays reachable, linked from the chat page
    with urllib.request.urlopen(base + "/", timeout=10) as r:
        assert 'href="echo.html"' in r.read().decode()
    with urllib.request.urlopen(base + "/echo.html", timeout=10) as r:
        assert "/echo" in r.read().decode()

    os.makedirs(ARTIFACTS, exist_ok=True)
    proc = subprocess.Popen(["node", os.path.join(HERE, "chat_page.js"), base, ARTIFACTS],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    lines = line_reader(proc.stdout)
    result, steps = None, []
    deadline = time.monotonic() + 150
    try:
        while result is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "chat_page.js ended without a RESULT"
            if line.startswith("STEP "):
                what = line[5:]
                steps.append(what)
                if what == "stop":
                    inst.stop()
                    assert not inst.running()
                elif what == "start":
                    time.sleep(1.0)             # let the page count down a while
                    inst.start()
                proc.stdin.write("ok\n")
                proc.stdin.flush()
            elif line.startswith("RESULT "):
                result = json.loads(line[7:])
    except queue.Empty:
        pytest.fail("chat_page.js gave no result within 150 s")
    finally:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    assert result.get("ok"), "%s\n--- error log:\n%s" % (result.get("error") or result,
                                                    inst.error_log()[-3000:])
    c = result["checks"]
    id_a, id_b = c["ids"]
    assert id_a and id_b and id_a != id_b
    assert c["roomField"].startswith("browser")
    # the other page shows the message with A's id; A sees it as its own
    assert c["atB"] == [id_a, id_a + "hello from A"]
    assert c["atA"] == ["you", "you" + "hello from A"]
    # markup stays text
    assert c["evilAtA"] == [id_b, id_b + "<img src=x onerror=alert(1)>"]
    assert c["imgElements"] == 0 and c["logHTMLHasTag"] is False
    assert result["dialogs"] == [] and result["pageErrors"] == []
    # the outage was shown, with the retry countdown, and healed
    assert "reconnecting in" in c["whileDown"]
    assert c["afterRestart"].startswith("Connected as ")
    assert c["afterRestartAtA"][1].endswith("back again")
    assert steps == ["stop", "start"]
    assert os.path.getsize(os.path.join(ARTIFACTS, "chat.png")) > 0
