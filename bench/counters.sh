#!/usr/bin/env bash
# counters.sh — what the server's counters (src/ops/wsock_counters, issue
# 14) cost: the same module built twice alike, once with the counting calls
# compiled out (-DWSOCK_NO_COUNTERS; `make counters-bench-modules`), each in
# its own apache2 (event MPM, one child), both running for the whole run:
#
#   echo    16-byte binary echo, CONNS connections, one loop thread (as
#           run.sh's mod_wsock): messages/s
#   fanout  1 sender -> RECEIVERS receivers of a chat room, 16-byte
#           messages, as fast as delivered (as fanout.sh's mod_wsock):
#           deliveries/s
#
# Each round runs both benchmarks against both builds, alternating which
# build goes first, so a disturbance on the machine hits both alike; the
# medians and the ratio counted/uncounted are printed (target: within 3 %,
# i.e. >= 0.97x), with the server CPU per message.
#
#   bench/counters.sh [-r ROUNDS] [-d SECONDS] [-w WARMUP] [-c CONNS] [-R RECEIVERS] [-p]
#
# Same via the environment: ROUNDS=5 DURATION=5 WARMUP=2 CONNS=50 RECEIVERS=1000
# PIN=0 (options win; -p pins the servers on the last CPU, the clients on
# the others).  About 2 minutes with the defaults.  Exit status 0 only if
# every run was clean; a missed target is reported, not an error.
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=counters.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-5} WARMUP=${WARMUP:-2} CONNS=${CONNS:-50}
RECEIVERS=${RECEIVERS:-1000} PIN=${PIN:-0}
while getopts "r:d:w:c:R:ph" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    R) RECEIVERS=$OPTARG ;;
    p) PIN=1 ;;
    *) sed -n '2,24p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers ROUNDS DURATION WARMUP CONNS RECEIVERS
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"

# The two builds, from this tree (the autotools build must be configured).
COUNTED=$REPO/bench/modules/mod_wsock_counted.so
UNCOUNTED=$REPO/bench/modules/mod_wsock_uncounted.so
[[ -f $REPO/Makefile ]] || die "configure the tree first (scripts/build.sh)"
say "building the module with and without counters (make counters-bench-modules)"
make -s -C "$REPO" counters-bench-modules
WSOCK_MODULE=$COUNTED
setup wsbench fanout
set_pinning
ulimit -n "$(ulimit -Hn)"          # 1000 receivers + apache's own

BUILDS=(counted uncounted)
module_of() { [[ $1 == counted ]] && echo "$COUNTED" || echo "$UNCOUNTED"; }
# One child, one loop thread: the echo's WebSockets on one thread (run.sh's
# mod_wsock), the fan-out's too (fanout.sh's mod_wsock: one child).
CONF="$(many_websockets_sizing 1)
WSockLoopThreads 1
<Location /echo>
    WSockHandler echo
    WSockMaxMessageSize 64M
</Location>
<Location /fanout>
    WSockHandler chat echo=off presence=off
</Location>"
for b in "${BUILDS[@]}"; do
    WSOCK_MODULE=$(module_of "$b") start_apache "$b" "$CONF" || die "$b did not start"
done

ECHO_ARGS=(-c "$CONNS" -s 16 -d "$DURATION" -w "$WARMUP" -t 1)
FAN_ARGS=(-s 16 -c "$RECEIVERS" -d "$DURATION" -w "$WARMUP" -W 128 -r 0 -t 1)
for r in $(seq "$ROUNDS"); do
    if ((r % 2)); then order=(counted uncounted); else order=(uncounted counted); fi
    for b in "${order[@]}"; do
        run_client "echo_$b" "$r" "${PID[$b]}" $((WARMUP + DURATION + 40)) \
            "$BENCH/wsbench" -u "ws://127.0.0.1:${PORT[$b]}/echo" "${ECHO_ARGS[@]}"
        RES[echo_$b.$r.us_per_msg]=$(awk -v c="${RES[echo_$b.$r.server_cpu]}" \
            -v m="${RES[echo_$b.$r.msgs_per_sec]:-0}" \
            'BEGIN { if (m > 0) printf "%.2f", c / 100 / m * 1e6; else print "" }')
    done
    for b in "${order[@]}"; do
        run_client "fan_$b" "$r" "${PID[$b]}" $((WARMUP + DURATION + 90)) \
            "$BENCH/fanout" -u "ws://127.0.0.1:${PORT[$b]}/fanout" "${FAN_ARGS[@]}"
        RES[fan_$b.$r.us_per_del]=$(awk -v c="${RES[fan_$b.$r.server_cpu_s]}" \
            -v m="${RES[fan_$b.$r.msgs_in]:-0}" \
            'BEGIN { if (m > 0) printf "%.3f", c / m * 1e6 }')
    done
done
for b in "${BUILDS[@]}"; do
    apache_log_check "$b"
done

# ----------------------------------------------------------------- report
say "results: counters vs counting compiled out; echo: 16-byte binary, $CONNS connections;" \
    "fan-out: 1 -> $RECEIVERS, 16-byte; ${WARMUP}s warm-up + ${DURATION}s; $ROUNDS round(s);" \
    "$( ((PIN)) && echo "pinned (servers: CPU $SRV_CPU_ID)" || echo unpinned)"
machine_line
FMT='%-34s %12s %9s %9s %7s %9s %11s\n'
printf "$FMT" run "msgs|del/s" "p50 us" "p99 us" errors "srv CPU%" "us/msg|del"
for r in $(seq "$ROUNDS"); do
    for b in "${BUILDS[@]}"; do
        report_line "$FMT" "echo, $b, round $r" "echo_$b" "$r" msgs_per_sec p50_us p99_us \
            errors server_cpu us_per_msg
        report_line "$FMT" "fan-out, $b, round $r" "fan_$b" "$r" deliveries_per_sec p50_us \
            p99_us errors server_cpu us_per_del
    done
done
TABLE="rounds=$ROUNDS duration=$DURATION conns=$CONNS receivers=$RECEIVERS pin=$PIN"
for b in "${BUILDS[@]}"; do
    report_line "$FMT" "echo, $b (median)" "echo_$b" median msgs_per_sec p50_us p99_us errors \
        server_cpu us_per_msg
    report_line "$FMT" "fan-out, $b (median)" "fan_$b" median deliveries_per_sec p50_us p99_us \
        errors server_cpu us_per_del
    TABLE+=" echo_${b}_msgs_per_sec=$(median "echo_$b" msgs_per_sec)"
    TABLE+=" echo_${b}_us_per_msg=$(median "echo_$b" us_per_msg)"
    TABLE+=" fan_${b}_deliveries_per_sec=$(median "fan_$b" deliveries_per_sec)"
    TABLE+=" fan_${b}_us_per_del=$(median "fan_$b" us_per_del)"
done
re=$(ratio "$(median echo_counted msgs_per_sec)" "$(median echo_uncounted msgs_per_sec)")
rf=$(ratio "$(median fan_counted deliveries_per_sec)" "$(median fan_uncounted deliveries_per_sec)")
ce=$(ratio "$(median echo_counted us_per_msg)" "$(median echo_uncounted us_per_msg)")
cf=$(ratio "$(median fan_counted us_per_del)" "$(median fan_uncounted us_per_del)")
verdict() { awk -v v="${1%x}" 'BEGIN { if (v == "" || v == "-") print "not measured";
                                        else print (v >= 0.97 ? "met" : "NOT met") }'; }
echo "ratio counted/uncounted, echo msgs/s: $re (target >= 0.97x: $(verdict "$re"));" \
    "server CPU per message: $ce"
echo "ratio counted/uncounted, fan-out deliveries/s: $rf (target >= 0.97x: $(verdict "$rf"));" \
    "server CPU per delivery: $cf"
echo "TABLE $TABLE ratio_echo=$re ratio_fanout=$rf cpu_ratio_echo=$ce cpu_ratio_fanout=$cf" \
    "load_before=\"$LOAD_BEFORE\""
exit "$FAILED"
