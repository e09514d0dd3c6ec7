#!/usr/bin/env bash
# Installs what is missing, builds mod_wsock and (re)starts the demo server:
# http://127.0.0.1:8080/ (chat page, endpoint ws://127.0.0.1:8080/chat?room=NAME),
# http://127.0.0.1:8080/echo.html (echo page, endpoint ws://127.0.0.1:8080/echo) and
# http://127.0.0.1:8080/status (the live dashboard, loopback only).
# Stop it with: scripts/demo.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
root=${WSOCK_DEMO_ROOT:-/var/tmp/mod_wsock-demo}
port=${WSOCK_DEMO_PORT:-8080}
conf="$root/conf/httpd.conf"

stop_demo() {
    if [[ -f "$conf" && -f "$root/run/httpd.pid" ]]; then
        /usr/sbin/apache2 -f "$conf" -k stop 2>/dev/null || true
        for _ in $(seq 50); do [[ -f "$root/run/httpd.pid" ]] || break; sleep 0.1; done
    fi
}
if [[ "${1:-}" == "stop" ]]; then
    stop_demo
    exit 0
fi

scripts/install-deps.sh
scripts/build.sh
stop_demo

# A private ServerRoot the unprivileged children can read.
mkdir -p "$root"/{conf,logs,run,htdocs}
chmod 755 "$root" "$root"/htdocs
cp "$repo/.libs/mod_wsock.so" "$root/mod_wsock.so"
cp -r "$repo/conf/demo/htdocs/." "$root/htdocs/"
cp "$repo/conf/demo/wsock-demo.conf" "$root/conf/wsock-demo.conf"
chmod -R a+rX "$root/htdocs" "$root/mod_wsock.so"
user_group=""
[[ $(id -u) -eq 0 ]] && user_group=$'User www-data\nGroup www-data'
sed -e "s|@SERVER_ROOT@|$root|g" -e "s|@PORT@|$port|g" -e "s|@MODULE@|$root/mod_wsock.so|g" \
    "$repo/conf/demo/httpd.conf.in" | awk -v ug="$user_group" '{ sub(/@USER_GROUP@/, ug) } 1' > "$conf"

out=$(/usr/sbin/apache2 -f "$conf" -t 2>&1) || { echo "$out" >&2; exit 1; }
/usr/sbin/apache2 -f "$conf" -k start
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
curl -fs -o /dev/null "http://127.0.0.1:$port/"
echo "mod_wsock demo running: http://127.0.0.1:$port/  (chat; echo: http://127.0.0.1:$port/echo.html; live status: http://127.0.0.1:$port/status)"
echo "logs: $root/logs/error.log   stop: scripts/demo.sh stop"
