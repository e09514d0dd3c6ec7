"""The Debian packages (debian/, scripts/build-deb.sh) install into the
machine's apache2 the way Debian's own modules do, and leave it as found.

Built from this tree (or taken from WSOCK_DEB_DIR, where an earlier step of
the same run put them), installed with `apt-get install ./...deb`: the
module package ships mod_wsock.so in Debian's module directory and
wsock.load/wsock.conf in mods-available without enabling them; `a2enmod
wsock` enables them, and an apache2 configured like Debian's apache2.conf
(Include mods-enabled/*.load and *.conf, nothing else of ours) loads the
packaged module and serves a <Location> with a 101 and an echo.  The -dev
package puts wsock.h where `apxs -q INCLUDEDIR` says, and the example plugin
it ships builds against it with apxs and serves from that same apache2.
`apt-get purge` then removes every file and the module's a2enmod state.

Root only (it installs packages); the plain run only: the sanitizer run
checks the module, and the package holds the plain build.
"""

import asyncio
import contextlib
import fcntl
import glob
import os
import shutil
import subprocess
import time

import pytest
import websockets

from apache_instance import ApacheInstance, default_module_path
from conftest import run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG, DEV = "libapache2-mod-wsock", "libapache2-mod-wsock-dev"
PACKAGED_SO = "/usr/lib/apache2/modules/mod_wsock.so"
MODS = "/etc/apache2/mods-available"
ENABLED = "/etc/apache2/mods-enabled"
# apache2-maintscript-helper's record of who enabled or disabled a module
STATE = "/var/lib/apache2/module"
EXAMPLES = "/usr/share/doc/%s/examples/reverse" % DEV

pytestmark = [
    pytest.mark.skipif(bool(os.environ.get("WSOCK_APACHE_PRELOAD")),
                       reason="packaging is tested in the plain run only"),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("apt-get"),
                       reason="installs Debian packages: needs root and apt"),
]

APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
# Others may hold the dpkg lock for a moment (another test run): wait for it.
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=120"]


def sh(cmd, timeout=300, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    assert p.returncode == 0, "%s failed (%d):\n%s" % (" ".join(cmd), p.returncode,
                                                      p.stdout[-4000:])
    return p.stdout


def dpkg_status(pkg):
    """dpkg's status line of pkg, None when dpkg has never heard of it."""
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                       text=True)
    return p.stdout if p.returncode == 0 else None


def installed(pkg):
    return "ok installed" in (dpkg_status(pkg) or "")


def apxs(var):
    return sh(["apxs", "-q", var]).strip()


def package_files():
    """What the packages put on the machine, and the a2enmod state."""
    return [PACKAGED_SO, MODS + "/wsock.load", MODS + "/wsock.conf",
            ENABLED + "/wsock.load", ENABLED + "/wsock.conf",
            os.path.join(apxs("INCLUDEDIR"), "wsock.h"), EXAMPLES,
            ] + glob.glob(STATE + "/*/wsock")


def build_debs(tmp_path_factory):
    given = os.environ.get("WSOCK_DEB_DIR")
    if given:
        return given
    out = str(tmp_path_factory.mktemp("debs"))
    # --nocheck: the suite that runs this test runs the unit tests itself.
    sh([os.path.join(REPO, "scripts", "build-deb.sh"), "--nocheck", out], timeout=600)
    return out


def one(pattern):
    found = glob.glob(pattern)
    assert len(found) == 1, "expected one %s, found %s" % (pattern, found)
    return found[0]


@contextlib.contextmanager
def machine_lock(timeout=600):
    """One run of this test at a time on a machine: another run's purge
    would pull the packages from under this one's apache2."""
    with open("/run/lock/mod_wsock-debian-package-test.lock", "w") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "another run holds the package test"
                time.sleep(0.5)
        yield


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """Install both packages; purge them at the end and check nothing is left."""
    with machine_lock():
        yield from install_and_purge(tmp_path_factory)


def install_and_purge(tmp_path_factory):
    for pkg in (PKG, DEV):
        if installed(pkg):
            pytest.skip("%s is installed on this machine; the test would purge it" % pkg)
    before = [f for f in package_files() if os.path.lexists(f)]
    if before:
        pytest.skip("files the packages own exist already (make install?): %s" % before)
    debs = build_debs(tmp_path_factory)
    module_deb = one(os.path.join(debs, PKG + "_*.deb"))
    dev_deb = one(os.path.join(debs, DEV + "_*.deb"))
    try:
        sh(APT + ["install", module_deb, dev_deb], env=APT_ENV)
        yield
    finally:
        known = [pkg for pkg in (PKG, DEV) if dpkg_status(pkg) is not None]
        if known:
            sh(APT + ["purge"] + known, env=APT_ENV)
    left = [f for f in package_files() if os.path.lexists(f)]
    assert not left, "apt-get purge left %s" % left


def enabled_mpm():
    """The MPM the machine's apache2 has enabled (Debian: event)."""
    mpm = [os.path.basename(f)[4:-5] for f in glob.glob(ENABLED + "/mpm_*.load")]
    assert len(mpm) == 1, "mods-enabled holds %s" % mpm
    return mpm[0]


def mapped_modules(inst):
    """Paths of every mod_wsock.so mapped into apache2's processes."""
    paths = set()
    for pid in {inst.pid} | inst.child_pids():
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                path = line.split()[-1]
                if path.endswith("/mod_wsock.so"):
                    paths.add(path)
    return paths


async def round_trip(url, text):
    async with websockets.connect(url, open_timeout=10) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), 10)


@pytest.fixture(scope="module")
def reverse_plugin(packages, tmp_path_factory):
    """The example plugin the -dev package ships, built with its own Makefile,
    whose default header directory is `apxs -q INCLUDEDIR`: nothing points it
    at this tree."""
    top = tmp_path_factory.mktemp("plugin")
    os.chmod(top, 0o755)
    example = top / "reverse"
    shutil.copytree(EXAMPLES, example)
    sh(["make", "-C", str(example)], timeout=120)
    return example / ".libs" / "wsock_reverse.so"


def test_dev_package_header_and_example_plugin(reverse_plugin):
    header = os.path.join(apxs("INCLUDEDIR"), "wsock.h")
    with open(header) as f, open(os.path.join(REPO, "include", "wsock.h")) as g:
        assert f.read() == g.read(), "the -dev package's wsock.h is not this tree's"
    assert reverse_plugin.is_file()


def test_a2enmod_and_the_packaged_module_serves(packages, reverse_plugin):
    # Installed, not enabled (debian/rules: dh_apache2 --noenable).
    for name in ("wsock.load", "wsock.conf"):
        assert os.path.isfile(os.path.join(MODS, name))
        assert not os.path.lexists(os.path.join(ENABLED, name))
    with open(os.path.join(MODS, "wsock.load")) as f:
        assert "LoadModule wsock_module %s" % PACKAGED_SO in f.read()

    sh(["a2enmod", "wsock"])
    for name in ("wsock.load", "wsock.conf"):
        assert os.path.realpath(os.path.join(ENABLED, name)) == os.path.join(MODS, name)

    # As Debian's apache2.conf enables modules; the MPM sizing is the
    # machine's (mods-enabled/mpm_*.conf) plus the packaged wsock.conf.
    extra = ("IncludeOptional %s/*.load\nIncludeOptional %s/*.conf\n" % (ENABLED, ENABLED) +
             "WSockPlugin reverse %s\n" % reverse_plugin +
             "<Location /echo>\n    WSockHandler echo\n</Location>\n"
             "<Location /reverse>\n    WSockHandler reverse\n</Location>\n")
    ap = ApacheInstance(mpm=enabled_mpm(), extra_conf=extra, load_module=False, mpm_conf="")
    rc, out = ap.configtest()
    assert rc == 0, out
    with ap:
        assert run(round_trip(ap.url("/echo"), "packaged")) == "packaged"
        assert run(round_trip(ap.url("/reverse"), "deb")) == "bed"
        assert mapped_modules(ap) == {PACKAGED_SO}
        assert not ap.crash_lines()

    # The other tests load the build tree's module by path, package or not.
    with ApacheInstance(extra_conf="<Location /echo>\n    WSockHandler echo\n</Location>\n") as ap:
        assert run(round_trip(ap.url("/echo"), "tree")) == "tree"
        assert mapped_modules(ap) == {os.path.realpath(default_module_path())}


def test_package_version_is_the_projects():
    """debian/changelog and configure.ac name the same version."""
    deb = sh(["dpkg-parsechangelog", "-l", os.path.join(REPO, "debian", "changelog"),
              "-S", "Version"]).strip()
    with open(os.path.join(REPO, "configure.ac")) as f:
        ac_init = next(line for line in f if line.startswith("AC_INIT("))
    assert ac_init.split(",")[1].strip(" []") == deb, (ac_init, deb)
