#!/usr/bin/env bash
# redis-fanout.sh — the Redis relay (issue 5): one sender, RECEIVERS receivers
# in one room, spread over two mod_wsock servers that share one redis-server.
#
#   bench/redis-fanout.sh [-c RECEIVERS] [-R RATE] [-d SECONDS] [-w WARMUP] [-r ROUNDS]
#
# Same settings via the environment: RECEIVERS=500 RATE=200 DURATION=10
# WARMUP=2 ROUNDS=3 (options win).  WSOCK_MODULE as for run.sh.
#
# Starts a redis-server (no persistence) and two apache2 (event MPM, one
# child each, `WSockHandler redis echo=off`) on free loopback ports, then runs
# node/redis-fanout.js ROUNDS times at RATE messages/s: the sender on the
# first server, the receivers alternately on both, so that half of them get
# every message through Redis from the other server.  Prints each round,
# the medians, the conditions, and a TABLE line.  Exit status 0 only if
# every round was clean (nothing lost, duplicated or refused).
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=redis-fanout.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECEIVERS=${RECEIVERS:-500} RATE=${RATE:-200} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
while getopts "c:R:d:w:r:h" opt; do
    case $opt in
    c) RECEIVERS=$OPTARG ;;
    R) RATE=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers RECEIVERS RATE DURATION WARMUP ROUNDS
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"
((RATE >= 1)) || die "RATE must be at least 1"

apt_install_missing redis-server
setup
set_pinning
ulimit -n "$(ulimit -Hn)"

# redis-server on a free port, in the work directory, nothing kept on disk.
REDIS_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/redis"
say "starting redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK/redis" >"$WORK/redis.out" 2>&1 &
SERVER_PIDS+=("$!")
for _ in $(seq 100); do                  # up to 10 s
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG || die "redis-server did not start"

NODE_CONF="$(many_websockets_sizing 1)
WSockRedis 127.0.0.1:$REDIS_PORT
<Location /relay>
    WSockHandler redis echo=off
</Location>"
start_apache node1 "$NODE_CONF" || die "node1 did not start"
start_apache node2 "$NODE_CONF" || die "node2 did not start"

URL1=ws://127.0.0.1:${PORT[node1]}/relay
URL2=ws://127.0.0.1:${PORT[node2]}/relay
declare -A RES
for round in $(seq "$ROUNDS"); do
    out=$WORK/round.$round.out
    say "round $round: $RECEIVERS receivers over 2 servers, $RATE msgs/s"
    busy0=$(busy_ticks)
    rc=0
    timeout $((WARMUP + DURATION + 180)) node "$BENCH/node/redis-fanout.js" "$URL1" "$URL1" "$URL2" \
        -- "$RECEIVERS" "$RATE" "$DURATION" "$WARMUP" >"$out" 2>&1 || rc=$?
    cat "$out"
    ((rc == 0)) || FAILED=1
    kvs=$(sed -n 's/^RESULT //p' "$out")
    for kv in $kvs; do
        RES[relay.$round.${kv%%=*}]=${kv#*=}
    done
    RES[relay.$round.busy]=$(($(busy_ticks) - busy0))
done
apache_log_check node1
apache_log_check node2

med() { median relay "$1"; }
say "results: 1 sender -> $RECEIVERS receivers over 2 servers through Redis, $RATE msgs/s, ${WARMUP}s + ${DURATION}s, $ROUNDS round(s)"
machine_line
FMT="%-20s %14s %10s %10s %8s %9s\n"
printf "$FMT" "round" "deliveries/s" "p50 ms" "p99 ms" "errors" "cli CPU%"
for r in $(seq "$ROUNDS"); do
    printf "$FMT" "round $r" "${RES[relay.$r.deliveries_per_sec]:--}" "${RES[relay.$r.p50_ms]:--}" \
        "${RES[relay.$r.p99_ms]:--}" "${RES[relay.$r.errors]:--}" "${RES[relay.$r.client_cpu_pct]:--}"
done
printf "$FMT" "median" "$(med deliveries_per_sec)" "$(med p50_ms)" "$(med p99_ms)" \
    "$(med errors)" "$(med client_cpu_pct)"
echo "The client is one Node.js thread that parses every delivery's JSON: at high"
echo "rates its CPU (cli CPU%), not the servers', sets the limit."
echo "TABLE receivers=$RECEIVERS rate=$RATE duration=$DURATION rounds=$ROUNDS" \
     "deliveries_per_sec=$(med deliveries_per_sec) p50_ms=$(med p50_ms) p99_ms=$(med p99_ms)" \
     "errors=$(med errors) load_before=\"$LOAD_BEFORE\""
exit "$FAILED"
