#!/usr/bin/env bash
# Installs the Debian packages mod_wsock needs, only those that are missing.
# Idempotent; run as root on Debian bookworm.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --node     also Node.js/npm (benchmark, Node ws client)
#   scripts/install-deps.sh --browser  also Chromium (browser tests)
#   scripts/install-deps.sh --fuzz     also clang and its libFuzzer runtime (fuzz/run.sh)
#   scripts/install-deps.sh --deb      also what builds the Debian package (scripts/build-deb.sh)
set -euo pipefail

pkgs=(
    gcc make autoconf automake libtool pkg-config     # build
    apache2 apache2-dev libapr1-dev libaprutil1-dev   # Apache, apxs, APR
    libssl-dev check                                  # OpenSSL, unit tests
    libjansson-dev                                    # JSON (token claims)
    libhiredis-dev redis-server                       # redis handler, its tests
    zlib1g-dev                                        # permessage-deflate
    libcurl4-openssl-dev php-cli                      # backend handler, its PHP example
    python3 python3-pytest python3-websockets         # integration tests
    python3-h2                                        # HTTP/2 client (test_h2.py)
    curl procps openssl ca-certificates               # test helpers (TLS certs, npm)
    gdb                                               # backtraces of a crashed child
    prometheus                                        # promtool checks wsock-metrics
    php-cli                                           # examples/publish/push.php, its test
)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for opt in "$@"; do
    case "$opt" in
    --node)
        if ! { command -v node && command -v npm; } >/dev/null 2>&1; then
            missing+=(nodejs npm)
        fi ;;
    --browser)
        dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" \
            || missing+=(chromium) ;;
    --fuzz)
        # libFuzzer ships in clang's runtime package, which clang only
        # recommends (bookworm: libclang-rt-14-dev, via libclang-rt-dev).
        for p in clang libclang-rt-dev; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
                || missing+=("$p")
        done ;;
    --deb)
        for p in dpkg-dev debhelper fakeroot; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
                || missing+=("$p")
        done ;;
    *) echo "unknown option: $opt" >&2; exit 2 ;;
    esac
done

if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
# prometheus is here for promtool only: its postinst would start (and, under
# systemd, enable) a Prometheus server on :9090.  A policy-rc.d that denies
# every start keeps it off while we install (containers often have one).
new_prometheus=
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    new_prometheus=1
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [[ -n $new_prometheus && -d /run/systemd/system ]]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
