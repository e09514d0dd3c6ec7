#!/usr/bin/env bash
# backend-sleep.sh — does a backend that sleeps slow down the other
# WebSockets of the server?  (issue 15)
#
#   bench/backend-sleep.sh [-c CONNS] [-s BYTES] [-n SLOW] [-z SLEEP_MS]
#                          [-i SLOW_INTERVAL] [-d SECONDS] [-w WARMUP]
#                          [-r ROUNDS] [-p]
#
# Same settings via the environment: CONNS=50 SIZE=16 SLOW=32 SLEEP_MS=5000
# SLOW_INTERVAL=100 DURATION=10 WARMUP=2 ROUNDS=3 PIN=0 (options win).  One apache2 (event
# MPM, one child with `WSockLoopThreads 1`, so every connection shares one
# loop thread, as in fairness.sh) serves two locations:
#   /echo  `WSockHandler echo`: CONNS connections run wsbench's closed loop
#          of SIZE-byte echoes; their round trips are the figures
#   /slow  `WSockHandler backend http://127.0.0.1:PORT/events/sleep/SLEEP_MS`
#          to node/backend.js, which answers every request (OPEN included)
#          SLEEP_MS late: SLOW connections (a second wsbench) each send a
#          SIZE-byte message there every SLOW_INTERVAL ms, whether the echoes
#          came back or not (wsbench -i): while a request sleeps, the next
#          messages queue in the server and go to the backend together in
#          the connection's next request (several events per request); with
#          SLOW_INTERVAL=0 a closed loop instead (one message at a time).
#          Either way SLOW requests are always being slept on
# Every round measures the echo twice, in rotating order:
#   base   alone (the backend idle, nothing waiting on it)
#   sleep  while the SLOW connections wait on the sleeping backend: the
#          measured window starts only once the backend holds SLOW message
#          requests (its /stats, bounded wait), and the slow wsbench runs
#          until after it (its echoes are checked too: each must come back,
#          right, after SLEEP_MS)
# The target (issue 15): the echo's p99 under `sleep` within 2x of `base`.
# The backend's request limit per child (requests=, 64 by default) must
# stay above SLOW, or the slow connections' requests queue for a slot.
# WSOCK_MODULE as for run.sh (a module with the backend handler);
# WSOCK_CONF: more arguments for the WSockHandler backend line (its
# timeout= must exceed SLEEP_MS; the default, 10 s, does for 5 s).
#
# One command: installs what is missing, builds wsbench, starts everything
# on free loopback ports, prints every round, the medians, the ratios and
# the conditions.  Everything it starts is stopped on exit.  Exit status 0
# only if every run was clean (the measured and the slow echoes).
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=backend-sleep.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-50} SIZE=${SIZE:-16} SLOW=${SLOW:-32} SLEEP_MS=${SLEEP_MS:-5000}
SLOW_INTERVAL=${SLOW_INTERVAL:-100} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} ROUNDS=${ROUNDS:-3} PIN=${PIN:-0}
while getopts "c:s:n:z:i:d:w:r:ph" opt; do
    case $opt in
    c) CONNS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    n) SLOW=$OPTARG ;;
    z) SLEEP_MS=$OPTARG ;;
    i) SLOW_INTERVAL=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    p) PIN=1 ;;
    *) sed -n '2,43p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers CONNS SIZE SLOW SLEEP_MS SLOW_INTERVAL DURATION WARMUP ROUNDS
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"
((SLOW >= 1)) || die "SLOW must be at least 1"
((SLEEP_MS >= 1 && SLEEP_MS <= 60000)) || die "SLEEP_MS must be 1..60000"
SLEEP_S=$(( (SLEEP_MS + 999) / 1000 ))
VARIANTS=(base sleep)

setup wsbench
apt_install_missing curl       # the backend's counters
set_pinning

start_server backend node "$BENCH/node/backend.js"
# One child, all of its threads up front (a handshake waits for the
# backend's answer to OPEN on a worker thread), one loop thread.
start_apache mod_wsock "ServerLimit 1
StartServers 1
ThreadLimit 128
ThreadsPerChild 128
MinSpareThreads 16
MaxSpareThreads 128
MaxRequestWorkers 128
WSockLoopThreads 1
<Location /echo>
    WSockHandler echo
</Location>
<Location /slow>
    WSockHandler backend http://127.0.0.1:${PORT[backend]}/events/sleep/$SLEEP_MS ${WSOCK_CONF:-}
</Location>" || die "apache2 did not start"

# backend_stat KEY: that counter of node/backend.js's /stats (empty if none).
backend_stat() {
    curl -s --max-time 2 "http://127.0.0.1:${PORT[backend]}/stats" \
        | grep -o "\"$1\":[0-9]*" | cut -d: -f2 || true
}
# wait_backend KEY MIN|0 SECONDS: until KEY >= MIN (or, with 0, KEY = 0),
# polling every 0.1 s for at most SECONDS; 1 if it did not happen.
wait_backend() {
    local v _
    for _ in $(seq $(($3 * 10))); do
        v=$(backend_stat "$1")
        if [[ -n $v ]] && { (($2 == 0 && v == 0)) || (($2 > 0 && v >= $2)); }; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

SLOW_PID=""
# shellcheck disable=SC2317  # called from the EXIT trap
stop_slow() {
    if [[ -n $SLOW_PID ]]; then
        kill "$SLOW_PID" 2>/dev/null || true
        wait "$SLOW_PID" 2>/dev/null || true
        SLOW_PID=""
    fi
}
trap 'stop_slow; cleanup' EXIT

ARGS=(-c "$CONNS" -s "$SIZE" -d "$DURATION" -w "$WARMUP")
# The slow connections: connected (OPEN slept on), then their loop through
# the whole measured run and a little more; their echoes in flight at the
# end are awaited (-D): a message may wait for the request before it and
# then for its own, 2 x SLEEP_MS.
SLOW_D=$((WARMUP + DURATION + SLEEP_S + 5))
SLOW_TMO=$((SLOW_D + 5 * SLEEP_S + 30))
for r in $(seq "$ROUNDS"); do
    k=$(( (r - 1) % 2 ))
    for v in "${VARIANTS[@]:$k}" "${VARIANTS[@]:0:$k}"; do
        # Nothing left waiting on the backend from before (the slow
        # connections' closes are slept on too).
        wait_backend sleeping 0 $((3 * SLEEP_S + 10)) \
            || echo "$PROG: the backend still sleeps on requests from before"
        if [[ $v == sleep ]]; then
            say "round $r, sleep: $SLOW connections on /slow (backend sleeps ${SLEEP_MS} ms," \
                "$( ((SLOW_INTERVAL)) && echo "a message every $SLOW_INTERVAL ms each" \
                || echo "closed loop"))"
            "${CLI_CPU[@]}" timeout "$SLOW_TMO" "$BENCH/wsbench" \
                -u "ws://127.0.0.1:${PORT[mod_wsock]}/slow" -c "$SLOW" -s "$SIZE" -w 0 \
                -d "$SLOW_D" -D $((2 * SLEEP_S + 5)) -i "$SLOW_INTERVAL" \
                >"$WORK/slow.out" 2>&1 &
            SLOW_PID=$!
            if ! wait_backend sleeping_messages "$SLOW" $((2 * SLEEP_S + 20)); then
                echo "$PROG: the backend never held $SLOW message requests" \
                    "(sleeping_messages=$(backend_stat sleeping_messages))"
                FAILED=1
            fi
            RES[sleep.$r.held]=$(backend_stat sleeping_messages)
        fi
        run_client "$v" "$r" "${PID[mod_wsock]}" $((WARMUP + DURATION + 40)) \
            "$BENCH/wsbench" -u "ws://127.0.0.1:${PORT[mod_wsock]}/echo" "${ARGS[@]}"
        if [[ $v == sleep ]]; then
            RES[sleep.$r.held_after]=$(backend_stat sleeping_messages)
            rc=0
            wait "$SLOW_PID" || rc=$?
            SLOW_PID=""
            echo "--- the slow connections (wsbench on /slow):"
            cat "$WORK/slow.out"
            read -r -a kvs <<<"$(grep '^RESULT ' "$WORK/slow.out" | cut -d' ' -f2-)"
            for kv in "${kvs[@]}"; do
                case ${kv%%=*} in
                msgs|msgs_per_sec|p50_us|p99_us|errors) RES[sleep.$r.slow_${kv%%=*}]=${kv#*=} ;;
                esac
            done
            if ((rc != 0)) || [[ -z ${RES[sleep.$r.slow_msgs]:-} ]]; then
                FAILED=1
                echo "$PROG: the slow connections' wsbench exited with $rc"
            fi
        fi
    done
done
apache_log_check mod_wsock
echo "backend (node/backend.js): $(curl -s --max-time 5 "http://127.0.0.1:${PORT[backend]}/stats" \
    || echo "no answer")"

# ----------------------------------------------------------------- report
say "results: $CONNS connections echoing $SIZE bytes on /echo; sleep: beside $SLOW" \
    "connections whose backend sleeps $SLEEP_MS ms per request, sending" \
    "$( ((SLOW_INTERVAL)) && echo "a message every $SLOW_INTERVAL ms each" \
    || echo "in a closed loop"); ${WARMUP}s warm-up +" \
    "${DURATION}s, $ROUNDS round(s), one loop thread," \
    "$( ((PIN)) && echo "pinned (servers: CPU $SRV_CPU_ID)" || echo unpinned)"
machine_line
FMT='%-20s %10s %9s %9s %10s %7s %8s %8s %6s %6s %9s %11s %8s\n'
KEYS=(msgs_per_sec p50_us p99_us max_us errors server_cpu other_cpu held held_after slow_msgs
      slow_p50_us slow_errors)
printf "$FMT" run msgs/s "p50 us" "p99 us" "max us" errors "srv CPU%" "oth CPU%" held \
    "at end" "slow msgs" "slow p50 us" "slow err"
report_rounds "$FMT" echo "${VARIANTS[*]}" "${KEYS[@]}"
TABLE="conns=$CONNS size=$SIZE slow=$SLOW sleep_ms=$SLEEP_MS slow_interval=$SLOW_INTERVAL duration=$DURATION warmup=$WARMUP"
TABLE+=" rounds=$ROUNDS pin=$PIN"
for v in "${VARIANTS[@]}"; do
    report_line "$FMT" "$v (median)" "$v" median "${KEYS[@]}"
    for key in msgs_per_sec p50_us p99_us max_us; do
        TABLE+=" ${v}_$key=$(median "$v" "$key")"
    done
    TABLE+=" ${v}_errors=$(total "$v" errors)"
done
TABLE+=" slow_msgs=$(total sleep slow_msgs) slow_errors=$(total sleep slow_errors)"
q=$(ratio "$(median sleep p99_us)" "$(median base p99_us)")
q50=$(ratio "$(median sleep p50_us)" "$(median base p50_us)")
qm=$(ratio "$(median sleep msgs_per_sec)" "$(median base msgs_per_sec)")
printf '%-20s msgs/s %s, p50 %s, p99 %s of base (target: p99 at most 2x)\n' "sleep/base" \
    "$qm" "$q50" "$q"
TABLE+=" p99_sleep_vs_base=$q p50_sleep_vs_base=$q50 msgs_sleep_vs_base=$qm"
echo "held, at end: message requests the backend was sleeping on when the measured run"
echo "began, and when it ended (of $SLOW); slow msgs, p50: echoes of the slow connections"
echo "in their own window and their round trip ($SLEEP_MS to 2 x $SLEEP_MS ms); slow err:"
echo "their wrong, reordered or lost echoes."
echo "TABLE $TABLE load_before=\"$LOAD_BEFORE\""
exit $FAILED
