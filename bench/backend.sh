#!/usr/bin/env bash
# backend.sh — the backend handler (docs/backend.md), issue 15's targets:
#
#   1. messages/s of a client -> Apache -> application -> client round trip:
#      mod_wsock's backend handler (WebSocket-over-HTTP to a trivial Node
#      http backend, node/events-echo.js) against Apache + mod_proxy_wstunnel
#      to a Node `ws` app doing the same echo (node/echo-server.js).
#      Target: backend/proxy >= 1.
#   2. the 16-byte echo of other connections (mod_wsock's echo handler in
#      the same server) alone, and while SLEEPERS clients of a backend that
#      sleeps 5 s per request send a message every 100 ms (node/sleepers.js).
#      Target: p99 with sleepers / p99 alone <= 2.
#
#   bench/backend.sh [-c CONNS] [-s BYTES] [-d SECONDS] [-w WARMUP] [-r ROUNDS]
#                    [-k SLEEPERS]
#
# Same settings via the environment: CONNS=50 SIZE=16 DURATION=10 WARMUP=2
# ROUNDS=3 SLEEPERS=50 (options win).  Both apache2 servers have the event
# MPM sized for 2 cores (2 children, as run.sh's mod_wsock2 and proxy).
# Everything it starts is stopped on exit.  Exit status: 0 only if every
# run was clean.
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=backend.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-50} SIZE=${SIZE:-16} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3} SLEEPERS=${SLEEPERS:-50} PIN=0
while getopts "c:s:d:w:r:k:h" opt; do
    case $opt in
    c) CONNS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    k) SLEEPERS=$OPTARG ;;
    *) sed -n '2,23p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers CONNS SIZE DURATION WARMUP ROUNDS SLEEPERS
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"

setup wsbench
set_pinning

SIZING="ServerLimit 2
StartServers 2
ThreadLimit 64
ThreadsPerChild 64
MinSpareThreads 16
MaxSpareThreads 128
MaxRequestWorkers 128"

start_server events node "$BENCH/node/events-echo.js"
start_server sleepy node "$BENCH/node/events-echo.js" --sleep=5000
start_server node node "$BENCH/node/echo-server.js"
start_apache backend "$SIZING
<Location /echo>
    WSockHandler backend http://127.0.0.1:${PORT[events]}/ws requests=256
    WSockMaxMessageSize 64M
</Location>
<Location /sleep>
    WSockHandler backend http://127.0.0.1:${PORT[sleepy]}/ws timeout=30
</Location>
<Location /fast>
    WSockHandler echo
</Location>" || die "the backend server did not start"
start_apache proxy "$SIZING
$(proxy_echo_conf "${PORT[node]}")" || die "the proxy did not start"

ARGS=(-c "$CONNS" -s "$SIZE" -d "$DURATION" -w "$WARMUP")
NAMES=(backend proxy alone sleepers)
for r in $(seq "$ROUNDS"); do
    order=("${NAMES[@]:$(( (r - 1) % 4 ))}" "${NAMES[@]:0:$(( (r - 1) % 4 ))}")
    for name in "${order[@]}"; do
        case $name in
        backend) url="ws://127.0.0.1:${PORT[backend]}/echo" pids="${PID[backend]} ${PID[events]}" ;;
        proxy) url="ws://127.0.0.1:${PORT[proxy]}/echo" pids="${PID[proxy]} ${PID[node]}" ;;
        alone|sleepers) url="ws://127.0.0.1:${PORT[backend]}/fast" pids="${PID[backend]}" ;;
        esac
        if [[ $name == sleepers ]]; then
            node "$BENCH/node/sleepers.js" "ws://127.0.0.1:${PORT[backend]}/sleep" \
                "$SLEEPERS" 100 >"$WORK/sleepers.out" 2>&1 &
            SLEEPERS_PID=$!
            SERVER_PIDS+=("$SLEEPERS_PID")
            sleep 1                 # their OPENs answered (the backend sleeps after)
        fi
        run_client "$name" "$r" "$pids" $((WARMUP + DURATION + 40)) \
            "$BENCH/wsbench" -u "$url" "${ARGS[@]}"
        if [[ $name == sleepers ]]; then
            kill -TERM "$SLEEPERS_PID"
            wait "$SLEEPERS_PID" || true
            cat "$WORK/sleepers.out"
        fi
    done
done
apache_log_check backend
apache_log_check proxy

# ----------------------------------------------------------------- report
label() {
    case $1 in
    backend) echo "mod_wsock backend -> Node http" ;;
    proxy) echo "Apache proxy -> Node ws" ;;
    alone) echo "mod_wsock echo, alone" ;;
    sleepers) echo "mod_wsock echo, $SLEEPERS sleepers" ;;
    esac
}
say "results: $SIZE-byte binary messages, $CONNS connections, ${WARMUP}s warm-up +" \
    "${DURATION}s, $ROUNDS round(s)"
machine_line
FMT='%-40s %10s %9s %9s %7s %8s %8s\n'
KEYS=(msgs_per_sec p50_us p99_us errors server_cpu other_cpu)
printf "$FMT" run msgs/s "p50 us" "p99 us" errors "srv CPU%" "oth CPU%"
for r in $(seq "$ROUNDS"); do
    for name in "${NAMES[@]}"; do
        report_line "$FMT" "$(label "$name"), round $r" "$name" "$r" "${KEYS[@]}"
    done
done
TABLE="conns=$CONNS size=$SIZE duration=$DURATION rounds=$ROUNDS sleepers=$SLEEPERS"
for name in "${NAMES[@]}"; do
    report_line "$FMT" "$(label "$name") (median)" "$name" median "${KEYS[@]}"
    for key in msgs_per_sec p50_us p99_us; do
        TABLE+=" ${name}_$key=$(median "$name" "$key")"
    done
done
rt=$(ratio "$(median backend msgs_per_sec)" "$(median proxy msgs_per_sec)")
p99=$(ratio "$(median sleepers p99_us)" "$(median alone p99_us)")
echo "round trip msgs/s, backend / proxy: $rt (target >= 1)"
echo "echo p99 with sleepers / alone: $p99 (target <= 2)"
echo "TABLE $TABLE ratio_backend_proxy=$rt ratio_p99_sleepers_alone=$p99"
exit $FAILED
