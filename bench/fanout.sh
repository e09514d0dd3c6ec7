#!/usr/bin/env bash
# fanout.sh — mod_wsock (chat handler) vs Node `ws` (broadcast server): one
# sender, many receivers in one room (issue 4).
#
#   bench/fanout.sh [-c RECEIVERS] [-s BYTES] [-d SECONDS] [-w WARMUP]
#                   [-W WINDOW] [-R RATE] [-t THREADS] [-r ROUNDS] [-p]
#
# Same settings via the environment: RECEIVERS=1000 SIZE=16 DURATION=10
# WARMUP=2 WINDOW=128 RATE=0 THREADS=1 ROUNDS=3 PIN=0 (options win).
# RATE=0: the sender sends as fast as the window allows (saturation: the
# deliveries/s are the figure); RATE=N: N messages/s (the latency is the
# figure).  CHILDREN=1: apache2 child processes (2 = across children, which
# needs the in-server bus).  WSOCK_MODULE as for run.sh.
#
# One command: installs what is missing, builds fanout, starts both servers
# on free loopback ports, runs fanout against each, ROUNDS times, alternating,
# and prints every round, the medians and the ratio mod_wsock / Node.
# Everything it starts is stopped on exit.  Exit status 0 only if every run
# was clean (no message lost, duplicated, reordered or corrupted).
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=fanout.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECEIVERS=${RECEIVERS:-1000} SIZE=${SIZE:-16} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
WINDOW=${WINDOW:-128} RATE=${RATE:-0} THREADS=${THREADS:-1} ROUNDS=${ROUNDS:-3}
PIN=${PIN:-0} CHILDREN=${CHILDREN:-1}
while getopts "c:s:d:w:W:R:t:r:ph" opt; do
    case $opt in
    c) RECEIVERS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    W) WINDOW=$OPTARG ;;
    R) RATE=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    p) PIN=1 ;;
    *) sed -n '2,19p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers RECEIVERS SIZE DURATION WARMUP WINDOW RATE THREADS ROUNDS CHILDREN
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"
((CHILDREN >= 1 && CHILDREN <= 16)) || die "CHILDREN must be 1..16"

setup fanout
set_pinning
# 1000 receivers + the sender + apache's own: more than the usual 1024 fds.
ulimit -n "$(ulimit -Hn)"

# mod_wsock: the chat handler relays each message as it came (presence=off)
# to everybody but its sender (echo=off).
start_apache mod_wsock "$(many_websockets_sizing "$CHILDREN")
<Location /fanout>
    WSockHandler chat echo=off presence=off
</Location>" || true
start_server node node "$BENCH/node/broadcast-server.js"

ARGS=(-c "$RECEIVERS" -s "$SIZE" -d "$DURATION" -w "$WARMUP" -W "$WINDOW" -r "$RATE"
      -t "$THREADS")
TMO=$((WARMUP + DURATION + 90))
for r in $(seq "$ROUNDS"); do
    # Alternate who goes first, so slow drift on the machine hits both alike.
    if ((r % 2)); then order=(mod_wsock node); else order=(node mod_wsock); fi
    for name in "${order[@]}"; do
        [[ -n ${PORT[$name]} ]] || continue
        run_client "$name" "$r" "${PID[$name]}" "$TMO" \
            "$BENCH/fanout" -u "ws://127.0.0.1:${PORT[$name]}/fanout" "${ARGS[@]}"
    done
done
apache_log_check mod_wsock

say "results: 1 sender -> $RECEIVERS receivers, $SIZE-byte binary messages, window $WINDOW," \
    "$( ((RATE)) && echo "$RATE msgs/s" || echo "as fast as delivered"), ${WARMUP}s warm-up" \
    "+ ${DURATION}s, $ROUNDS round(s), fanout threads $THREADS, apache children $CHILDREN," \
    "$( ((PIN)) && echo "pinned (servers: CPU $SRV_CPU_ID)" || echo unpinned)"
machine_line
FMT='%-24s %12s %9s %11s %11s %7s %8s %8s %8s\n'
KEYS=(deliveries_per_sec msgs_per_sec p50_us p99_us errors server_cpu client_cpu_pct other_cpu)
printf "$FMT" server deliveries/s msgs/s "p50 us" "p99 us" errors "srv CPU%" "cli CPU%" \
    "oth CPU%"
for r in $(seq "$ROUNDS"); do
    report_line "$FMT" "mod_wsock, round $r" mod_wsock "$r" "${KEYS[@]}"
    report_line "$FMT" "Node ws, round $r" node "$r" "${KEYS[@]}"
done
report_line "$FMT" "mod_wsock (median)" mod_wsock median "${KEYS[@]}"
report_line "$FMT" "Node ws (median)" node median "${KEYS[@]}"
W_RATE=$(median mod_wsock deliveries_per_sec) N_RATE=$(median node deliveries_per_sec)
W_P50=$(median mod_wsock p50_us) N_P50=$(median node p50_us)
W_P99=$(median mod_wsock p99_us) N_P99=$(median node p99_us)
printf "$FMT" "ratio mod_wsock/Node" "$(ratio "$W_RATE" "$N_RATE")" "" \
    "$(ratio "$W_P50" "$N_P50")" "$(ratio "$W_P99" "$N_P99")" "" "" "" ""
echo "deliveries/s (messages x receivers): higher is better; latency send -> arrival: lower"
echo "is better (with RATE=0 it is mostly the window's queueing).  errors: lost +"
echo "duplicated + reordered + corrupt + failed connections.  CPU% is of one core."
echo "TABLE receivers=$RECEIVERS size=$SIZE window=$WINDOW rate=$RATE duration=$DURATION" \
     "warmup=$WARMUP rounds=$ROUNDS children=$CHILDREN pin=$PIN" \
     "wsock_deliveries_per_sec=$W_RATE wsock_p50_us=$W_P50 wsock_p99_us=$W_P99" \
     "wsock_errors=$(total mod_wsock errors) node_deliveries_per_sec=$N_RATE" \
     "node_p50_us=$N_P50 node_p99_us=$N_P99 node_errors=$(total node errors)" \
     "ratio_deliveries_per_sec=$(ratio "$W_RATE" "$N_RATE")" \
     "load_before=\"$LOAD_BEFORE\""
exit $FAILED
