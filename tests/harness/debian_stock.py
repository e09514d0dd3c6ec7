"""Debian bookworm's stock apache2 settings, as a fresh install has them,
for tests and benchmarks that must measure what admins get out of the box
(docs/operations.md, "Capacity")."""

# /etc/apache2/mods-available/mpm_event.conf
EVENT = """\
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
"""

# /etc/apache2/mods-available/mpm_prefork.conf
PREFORK = """\
StartServers 5
MinSpareServers 5
MaxSpareServers 10
MaxRequestWorkers 150
MaxConnectionsPerChild 0
"""

# The open-file limit apache2ctl gives apache2 and its children when run as
# root (APACHE_ULIMIT_MAX_FILES in /etc/apache2/envvars, default
# "ulimit -n 8192"); systemd's apache2.service runs apache2ctl.
NOFILE = 8192


def launcher(nofile=NOFILE):
    """A command prefix that starts apache2 with that open-file limit."""
    return ["prlimit", "--nofile=%d:%d" % (nofile, nofile), "--"]


# An echo location with its timers off: capacity runs measure how many
# connections a server holds, not how it treats clients that never answer
# a ping.
IDLE_ECHO = """\
<Location /echo>
    WSockHandler echo
    WSockPingInterval 0
    WSockIdleTimeout 0
</Location>
"""
