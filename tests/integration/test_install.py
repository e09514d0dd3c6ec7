"""`make install` puts everything where an admin on Debian expects it, and
the installed wsock.load/wsock.conf pair is what `a2enmod wsock` enables:
an apache2 configured only through them serves the echo endpoint.

The install goes into a DESTDIR, so the machine is left untouched.
"""

import asyncio
import os
import subprocess

import websockets

from apache_instance import ApacheInstance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def apxs(var):
    return subprocess.run(["apxs", "-q", var], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_make_install_layout_and_a2enmod_pair(tmp_path):
    dest = tmp_path / "dest"
    subprocess.run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=REPO, check=True,
                   capture_output=True, timeout=120)

    libexec, sysconf, incdir = apxs("LIBEXECDIR"), apxs("SYSCONFDIR"), apxs("INCLUDEDIR")
    so = dest / libexec.lstrip("/") / "mod_wsock.so"
    load = dest / sysconf.lstrip("/") / "mods-available" / "wsock.load"
    conf = dest / sysconf.lstrip("/") / "mods-available" / "wsock.conf"
    header = dest / incdir.lstrip("/") / "wsock.h"
    for f in (so, load, conf, header):
        assert f.is_file(), f"make install did not install {f}"
    assert "WSOCK_API_VERSION" in header.read_text()

    # wsock.load names the module where apxs installs it.
    load_text = load.read_text()
    assert f"LoadModule wsock_module {libexec}/mod_wsock.so" in load_text

    # Enable the module the way a2enmod does (Include the .load and .conf),
    # pointing only the path into DESTDIR, and serve an echo endpoint with it.
    (tmp_path / "wsock.load").write_text(load_text.replace(libexec, str(so.parent)))
    os.chmod(tmp_path, 0o755)
    os.chmod(so, 0o755)
    extra = (f"Include {tmp_path}/wsock.load\nInclude {conf}\n"
             "<Location /echo>\n    WSockHandler echo\n</Location>\n")
    with ApacheInstance(mpm="event", extra_conf=extra, load_module=False) as ap:
        rc, out = ap.configtest()
        assert rc == 0, out

        async def echo():
            async with websockets.connect(ap.url("/echo"), open_timeout=10) as ws:
                await ws.send("installed")
                return await asyncio.wait_for(ws.recv(), 10)

        assert asyncio.run(echo()) == "installed"
