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
        RES[echo_$b.$r.ns_per_msg]=$(awk -v c="${RES[echo_$b.$r.server_cpu_s]}" \
            -v m="${RES[echo_$b.$r.msgs_per_sec]:-0}" -v d="$DURATION" -v w="$WARMUP" \
            'BEGIN { if (m > 0) printf "%.1f", c / (m * (d + w)) * 1e9; else print "" }')
    done
    for b in "${order[@]}"; do
        run_client "fan_$b" "$r" "${PID[$b]}" $((WARMUP + DURATION + 90)) \
            "$BENCH/fanout" -u "ws://127.0.0.1:${PORT[$b]}/fanout" "${FAN_ARGS[@]}"
        RES[fan_$b.$r.ns_per_del]=$(awk -v c="${RES[fan_$b.$r.server_cpu_s]}" \
            -v m="${RES[fan_$b.$r.msgs_in]:-0}" \
            'BEGIN { if (m > 0) printf "%.1f", c / m * 1e9 }')
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
printf "$FMT" run "msgs|del/s" "p50 us" "p99 us" errors "srv CPU%" "ns/msg|del"
for r in $(seq "$ROUNDS"); do
    for b in "${BUILDS[@]}"; do
        report_line "$FMT" "echo, $b, round $r" "echo_$b" "$r" msgs_per_sec p50_us p99_us \
            errors server_cpu ns_per_msg
        report_line "$FMT" "fan-out, $b, round $r" "fan_$b" "$r" deliveries_per_sec p50_us \
            p99_us errors server_cpu ns_per_del
    done
done
TABLE="rounds=$ROUNDS duration=$DURATION conns=$CONNS receivers=$RECEIVERS pin=$PIN"
for b in "${BUILDS[@]}"; do
    report_line "$FMT" "echo, $b (median)" "echo_$b" median msgs_per_sec p50_us p99_us errors \
        server_cpu ns_per_msg
    report_line "$FMT" "fan-out, $b (median)" "fan_$b" median deliveries_per_sec p50_us p99_us \
        errors server_cpu ns_per_del
    TABLE+=" echo_${b}_msgs_per_sec=$(median "echo_$b" msgs_per_sec)"
    TABLE+=" echo_${b}_ns_per_msg=$(median "echo_$b" ns_per_msg)"
    TABLE+=" fan_${b}_deliveries_per_sec=$(median "fan_$b" deliveries_per_sec)"
    TABLE+=" fan_${b}_ns_per_del=$(median "fan_$b" ns_per_del)"
done
# ratio() prints 2 decimals: the per-round ratios are kept to 3 here.
# Each round's ratios: the two builds ran back to back, so what else the
# machine did hit both alike; the medians of these are the result.
ratio3() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-";
                                             else printf "%.3f", a / b }'; }
for r in $(seq "$ROUNDS"); do
    for k in echo:echo_X:msgs_per_sec fanout:fan_X:deliveries_per_sec \
             echo_cpu:echo_X:ns_per_msg fanout_cpu:fan_X:ns_per_del; do
        IFS=: read -r key name fig <<<"$k"
        RES[ratio.$r.$key]=$(ratio3 "${RES[${name/X/counted}.$r.$fig]:-}" \
            "${RES[${name/X/uncounted}.$r.$fig]:-}")
    done
done
median3() {  # the median of one ratio over the rounds, 3 decimals
    local r vals=()
    for r in $(seq "$ROUNDS"); do
        [[ ${RES[ratio.$r.$1]:-} =~ ^[0-9.]+$ ]] && vals+=("${RES[ratio.$r.$1]}")
    done
    ((${#vals[@]})) || { echo "-"; return; }
    printf '%s\n' "${vals[@]}" | sort -g | awk '{v[NR] = $1} END {
        printf "%.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf 'per-round ratios counted/uncounted (echo msgs/s, fan-out del/s, CPU per msg, per del):\n'
for r in $(seq "$ROUNDS"); do
    printf '   round %s: %s %s %s %s\n' "$r" "${RES[ratio.$r.echo]}" "${RES[ratio.$r.fanout]}" \
        "${RES[ratio.$r.echo_cpu]}" "${RES[ratio.$r.fanout_cpu]}"
done
re=$(median3 echo) rf=$(median3 fanout) ce=$(median3 echo_cpu) cf=$(median3 fanout_cpu)
verdict() {  # verdict RATIO ge|le TARGET
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { if (v == "" || v == "-") print "not measured";
        else print ((op == "ge" ? v >= t : v <= t) ? "met" : "NOT met") }'
}
echo "median of the rounds' ratios counted/uncounted:"
echo "   echo msgs/s: $re (target >= 0.97: $(verdict "$re" ge 0.97));" \
    "server CPU per message: $ce (target <= 1.03: $(verdict "$ce" le 1.03))"
echo "   fan-out deliveries/s: $rf (target >= 0.97: $(verdict "$rf" ge 0.97));" \
    "server CPU per delivery: $cf (target <= 1.03: $(verdict "$cf" le 1.03))"
echo "On a busy machine the rates swing with what else runs; the CPU per message"
echo "(the server's own CPU time / its messages) is the steadier figure."
echo "TABLE $TABLE ratio_echo=$re ratio_fanout=$rf cpu_ratio_echo=$ce cpu_ratio_fanout=$cf" \
    "load_before=\"$LOAD_BEFORE\""
exit "$FAILED"
