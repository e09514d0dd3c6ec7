#!/usr/bin/env bash
# idle.sh — many idle WebSockets (issue 7): memory and threads the server
# needs to hold them, and whether every one still answers.  mod_wsock (echo
# handler, event MPM) vs Node `ws` vs the C limit reference (limit-echo) vs
# Apache + mod_proxy_wstunnel in front of Node (what Apache sites do today).
#
#   bench/idle.sh [-c CONNS] [-b BATCH] [-k WARM] [-S "SERVER..."]
#
# Same settings via the environment: CONNS=10000 BATCH=200 WARM=0 SETTLE=3
# CHILDREN=2 SERVERS="mod_wsock node limit proxy" (options win).  WSOCK_MODULE as
# for run.sh.  WSOCK_CONF: more directives for mod_wsock's echo location,
# e.g. WSOCK_CONF="WSockAccessLog upgrade" (the request ends at the 101).
# The compressed variants mod_wsock_z (WSockCompression on) and node_z (ws's
# perMessageDeflate) may be named too (lib.sh): their clients offer
# permessage-deflate as Chromium does.  -k WARM: every connection sends WARM
# JSON chat messages of 200..400 bytes (echo checked; compressed both ways
# on the _z servers) before it idles, as a client that has chatted.
#
# For each server in turn: its memory (PSS, summed over all its processes:
# apache's parent and children; the proxy's includes its own Node backend)
# and thread count; then `idle` opens CONNS connections (BATCH handshakes at
# a time) and holds them; after SETTLE seconds the memory and threads again;
# then every connection sends one message at the same moment and must get
# its echo within 5 s.  Prints memory per connection and the echo check.
# Everything it starts is stopped on exit.  Exit status 0 only if every
# connection opened and echoed.
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=idle.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-10000} BATCH=${BATCH:-200} SETTLE=${SETTLE:-3} CHILDREN=${CHILDREN:-2}
WARM=${WARM:-0}
SERVERS=${SERVERS:-mod_wsock node limit proxy}
while getopts "c:b:k:S:h" opt; do
    case $opt in
    c) CONNS=$OPTARG ;;
    b) BATCH=$OPTARG ;;
    k) WARM=$OPTARG ;;
    S) SERVERS=$OPTARG ;;
    *) sed -n '2,26p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers CONNS BATCH SETTLE CHILDREN WARM
read -r -a NAMES <<<"$SERVERS"
for name in "${NAMES[@]}"; do
    [[ $name =~ ^(mod_wsock|mod_wsock_z|node|node_z|limit|proxy)$ ]] \
        || die "unknown server '$name'"
done
has() { [[ " ${NAMES[*]} " == *" $1 "* ]]; }

setup idle limit-echo
set_pinning
# Every server and the client need a descriptor per connection.
ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) > CONNS + 100)) || die "ulimit -n $(ulimit -n) is too low for $CONNS connections"

# mod_wsock as issue 7 asks: event MPM, 25 threads per child.
for name in mod_wsock mod_wsock_z; do
    has "$name" || continue
    start_apache "$name" "$(many_websockets_sizing "$CHILDREN")
<Location /echo>
    WSockHandler echo
    $(compression_conf "$name")
    ${WSOCK_CONF:-}
</Location>" || true
done
has node && start_server node node "$BENCH/node/echo-server.js"
has node_z && start_server node_z node "$BENCH/node/echo-server.js" "$(node_deflate node_z)"
has limit && start_server limit "$BENCH/limit-echo"
if has proxy; then
    # What Apache sites do today, with Apache's defaults but for the
    # numbers: mod_proxy_http tunnels each WebSocket to a Node backend of
    # its own (not the one measured above) and keeps a worker thread per
    # tunnel, so the server may grow to CONNS workers in children of 25
    # threads, started as the connections come.  Its memory counts Node's.
    start_server node_proxy node "$BENCH/node/echo-server.js"
    PROXY_CHILDREN=$(( (CONNS + 64 + 250 + 24) / 25 ))   # + MinSpareThreads
    start_apache proxy "ServerLimit $PROXY_CHILDREN
StartServers 2
ThreadLimit 25
ThreadsPerChild 25
MinSpareThreads 250
MaxSpareThreads $((PROXY_CHILDREN * 25))
MaxRequestWorkers $((PROXY_CHILDREN * 25))
$(proxy_echo_conf "${PORT[node_proxy]}")" || true
fi

# measure NAME: one idle run against server NAME; figures into RES[NAME.1.*].
measure() {
    local name=$1 pid=${PID[$1]} fifo=$WORK/go.$1 out=$WORK/idle.$1.out rc=0 _ kv kvs
    [[ $name != proxy ]] || pid+=" ${PID[node_proxy]}"
    local before after
    say "$name: $CONNS idle connections"
    before=$(server_mem "$pid")
    mkfifo "$fifo"
    # idle waits on the fifo for "go" while we measure; timeout bounds it all.
    # shellcheck disable=SC2046  # the client's pmd options, split
    timeout $((CONNS * 30 / BATCH + 260)) "$BENCH/idle" -u "ws://127.0.0.1:${PORT[$name]}/echo" \
        -c "$CONNS" -b "$BATCH" -k "$WARM" -H 180 $(pmd_client_args "$name") \
        <"$fifo" >"$out" 2>&1 &
    CLIENT_PID=$!
    exec 4>"$fifo"
    for _ in $(seq $((CONNS * 300 / BATCH + 600))); do     # bounded: as idle's own
        grep -q '^OPEN ' "$out" && break
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.1
    done
    sleep "$SETTLE"
    after=$(server_mem "$pid")
    echo go >&4
    exec 4>&-
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    cat "$out"
    read -r -a kvs <<<"$(grep '^RESULT ' "$out" | cut -d' ' -f2-)"
    for kv in "${kvs[@]}"; do
        RES[$name.1.${kv%%=*}]=${kv#*=}
    done
    [[ -n ${RES[$name.1.errors]:-} ]] || RES[$name.1.errors]=1
    read -r "RES[$name.1.rss0]" "RES[$name.1.threads0]" <<<"$before"
    read -r "RES[$name.1.rss1]" "RES[$name.1.threads1]" <<<"$after"
    RES[$name.1.kib_per_conn]=$(awk -v a="${RES[$name.1.rss0]}" -v b="${RES[$name.1.rss1]}" \
        -v n="${RES[$name.1.opened]:-0}" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n }')
    if ((rc != 0)); then
        FAILED=1
        echo "$PROG: idle against $name exited with $rc"
    fi
}
for name in "${NAMES[@]}"; do
    [[ -n ${PORT[$name]} ]] && measure "$name"
done
apache_log_check mod_wsock
apache_log_check mod_wsock_z
apache_log_check proxy

label() {
    case $1 in
    mod_wsock) echo "mod_wsock (${CHILDREN}x25 thr)" ;;
    mod_wsock_z) echo "mod_wsock, compression" ;;
    node) echo "Node ws" ;;
    node_z) echo "Node ws, deflate (ws)" ;;
    limit) echo "limit (C epoll)" ;;
    proxy) echo "Apache proxy->Node" ;;
    esac
}
say "results: $CONNS idle connections ($BATCH handshakes at a time), $WARM JSON message(s)" \
    "echoed on each before idling, then one 16-byte echo on each at once"
machine_line
FMT='%-24s %7s %9s %9s %8s %8s %9s %8s %8s %9s %7s\n'
KEYS=(opened rss0 rss1 kib_per_conn threads0 threads1 echo_ok echo_failed p99_us connect_s)
printf "$FMT" server opened "PSS0 KiB" "PSS1 KiB" "KiB/conn" "threads0" "threads1" "echo ok" \
    "echo bad" "echo p99us" "open s"
TABLE="conns=$CONNS batch=$BATCH children=$CHILDREN warm=$WARM"
for name in "${NAMES[@]}"; do
    report_line "$FMT" "$(label "$name")" "$name" 1 "${KEYS[@]}"
    for key in opened kib_per_conn threads0 threads1 echo_failed; do
        TABLE+=" ${name}_$key=${RES[$name.1.$key]:-}"
    done
done
# Every server to Node and to the limit; a compressed one to the same
# server uncompressed (the target of issue 13: at most 1.5x).
for name in "${NAMES[@]}"; do
    refs=(node limit)
    [[ ${name%_z} == node ]] || refs+=("${name%_z}")
    for ref in "${refs[@]}"; do
        if [[ $name == "$ref" || $name == limit ]] || ! has "$ref"; then
            continue
        fi
        rt=$(ratio "${RES[$name.1.kib_per_conn]:-}" "${RES[$ref.1.kib_per_conn]:-}")
        printf '%-24s %s KiB/conn of %s\n' "ratio $name/$ref" "$rt" "$ref"
        [[ $name != "${ref}_z" ]] || TABLE+=" ratio_${name}_${ref}=$rt"
    done
done
echo "PSS0/threads0: the server before the connections; PSS1/threads1: with all of them"
echo "open and idle.  KiB/conn = (PSS1 - PSS0) / opened.  echo: one message per"
echo "connection, all sent at once, each due back within 5 s.  _z: compressed (the"
echo "clients offered permessage-deflate as Chromium does and the server accepted)."
echo "TABLE $TABLE load_before=\"$LOAD_BEFORE\""
exit "$FAILED"
