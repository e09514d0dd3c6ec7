#!/usr/bin/env bash
# fairness.sh — does a flooding client slow down the others on its loop
# thread?  (issue 12, item 6)
#
#   bench/fairness.sh [-c CONNS] [-s BYTES] [-F FLOODERS] [-f BYTES] [-d SECONDS]
#                     [-w WARMUP] [-r ROUNDS] [-n NICE] [-p] [-S "SERVER..."]
#
# Same settings via the environment: CONNS=50 SIZE=16 FLOODERS=2
# FLOOD_SIZE=65536 DURATION=10 WARMUP=2 ROUNDS=3 FLOOD_NICE=10 PIN=0
# (options win).  CONNS connections run a closed loop of SIZE-byte echoes
# (wsbench) and their round trips are measured three ways in every round,
# on the same server:
#   base     alone;
#   flood    beside FLOODERS more connections that send FLOOD_SIZE-byte
#            binary messages as fast as their sockets take them and read the
#            echoes (wsbench -F);
#   noread   the same, but the flooders never read (wsbench -F -N): the
#            server must stop reading them once their output backs up.
# The target (issue 12): the p99 round trip under either flood within 3x
# of base's.  The flooders run on a thread of their own at nice FLOOD_NICE
# (-n; 0: same priority), so that on a 2-core machine their client-side CPU
# does not delay the measured connections' client side; how much they
# pushed is printed (flood msgs/s).
#
# SERVERS (-S), default "mod_wsock":
#   mod_wsock  the echo handler in apache2 (event MPM), one child with
#              `WSockLoopThreads 1`: every connection, flooders included,
#              on one loop thread
#   limit      limit-echo, the single-threaded C epoll echo server (a naive
#              server: it reads whatever a connection sends), for reference
#   node       node/echo-server.js on `ws`, for reference
# -p: pinned, the servers on the last CPU and wsbench on the others.
# WSOCK_MODULE picks the module, WSOCK_CONF adds directives to the echo
# location (as in run.sh).  Everything it starts is stopped on exit.  Exit
# status: 0 only if every run was clean (the flooders' fate does not count:
# a server may close a flooder; that is printed).
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=fairness.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-50} SIZE=${SIZE:-16} FLOODERS=${FLOODERS:-2} FLOOD_SIZE=${FLOOD_SIZE:-65536}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} ROUNDS=${ROUNDS:-3} FLOOD_NICE=${FLOOD_NICE:-10}
PIN=${PIN:-0} SERVERS=${SERVERS:-mod_wsock}
while getopts "c:s:F:f:d:w:r:n:pS:h" opt; do
    case $opt in
    c) CONNS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    F) FLOODERS=$OPTARG ;;
    f) FLOOD_SIZE=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    n) FLOOD_NICE=$OPTARG ;;
    p) PIN=1 ;;
    S) SERVERS=$OPTARG ;;
    *) sed -n '2,36p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers CONNS SIZE FLOODERS FLOOD_SIZE DURATION WARMUP ROUNDS FLOOD_NICE
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"
((FLOODERS >= 1)) || die "FLOODERS must be at least 1"
read -r -a NAMES <<<"$SERVERS"
for name in "${NAMES[@]}"; do
    [[ $name =~ ^(mod_wsock|limit|node)$ ]] || die "unknown server '$name'"
done
has() { [[ " ${NAMES[*]} " == *" $1 "* ]]; }
VARIANTS=(base flood noread)

setup wsbench limit-echo
set_pinning

# One child, all of its threads up front, one loop thread; the module's
# defaults otherwise (the flooders' 64 KiB fit WSockMaxMessageSize 1M).
has mod_wsock && { start_apache mod_wsock "ServerLimit 1
StartServers 1
ThreadLimit 64
ThreadsPerChild 64
MinSpareThreads 16
MaxSpareThreads 64
MaxRequestWorkers 64
WSockLoopThreads 1
<Location /echo>
    WSockHandler echo
    ${WSOCK_CONF:-}
</Location>" || true; }
has node && start_server node node "$BENCH/node/echo-server.js"
has limit && start_server limit "$BENCH/limit-echo"

ARGS=(-c "$CONNS" -s "$SIZE" -d "$DURATION" -w "$WARMUP")
FLOOD=(-F "$FLOODERS" -f "$FLOOD_SIZE" -n "$FLOOD_NICE")
for r in $(seq "$ROUNDS"); do
    for name in "${NAMES[@]}"; do
        [[ -n ${PORT[$name]:-} ]] || continue
        # Rotate the order of the three runs, so drift hits them alike.
        k=$(( (r - 1) % 3 ))
        for v in "${VARIANTS[@]:$k}" "${VARIANTS[@]:0:$k}"; do
            extra=()
            case $v in
            flood) extra=("${FLOOD[@]}") ;;
            noread) extra=("${FLOOD[@]}" -N) ;;
            esac
            run_client "$name:$v" "$r" "${PID[$name]}" $((WARMUP + DURATION + 40)) \
                "$BENCH/wsbench" -u "ws://127.0.0.1:${PORT[$name]}/echo" "${ARGS[@]}" \
                "${extra[@]}"
        done
    done
done
apache_log_check mod_wsock

# ----------------------------------------------------------------- report
say "results: $CONNS connections echoing $SIZE bytes; beside $FLOODERS flooders of" \
    "$FLOOD_SIZE bytes (flood: reading, noread: not reading; nice $FLOOD_NICE);" \
    "${WARMUP}s warm-up + ${DURATION}s, $ROUNDS round(s)," \
    "$( ((PIN)) && echo "pinned (servers: CPU $SRV_CPU_ID)" || echo unpinned)"
machine_line
FMT='%-24s %10s %9s %9s %10s %7s %10s %10s %8s %8s\n'
KEYS=(msgs_per_sec p50_us p99_us max_us errors flood_sent_per_sec flood_echoed_per_sec
      server_cpu other_cpu)
printf "$FMT" run msgs/s "p50 us" "p99 us" "max us" errors "flood s/s" "flood e/s" \
    "srv CPU%" "oth CPU%"
for r in $(seq "$ROUNDS"); do
    for name in "${NAMES[@]}"; do
        for v in "${VARIANTS[@]}"; do
            report_line "$FMT" "$name $v, round $r" "$name:$v" "$r" "${KEYS[@]}"
        done
    done
done
TABLE="conns=$CONNS size=$SIZE flooders=$FLOODERS flood_size=$FLOOD_SIZE duration=$DURATION"
TABLE+=" rounds=$ROUNDS nice=$FLOOD_NICE pin=$PIN"
for name in "${NAMES[@]}"; do
    for v in "${VARIANTS[@]}"; do
        report_line "$FMT" "$name $v (median)" "$name:$v" median "${KEYS[@]}"
        for key in msgs_per_sec p50_us p99_us max_us flood_sent_per_sec flood_echoed_per_sec; do
            TABLE+=" ${name}_${v}_$key=$(median "$name:$v" "$key")"
        done
        TABLE+=" ${name}_${v}_errors=$(total "$name:$v" errors)"
    done
    # The target: the p99 under each flood against the p99 alone.
    for v in flood noread; do
        q=$(ratio "$(median "$name:$v" p99_us)" "$(median "$name:base" p99_us)")
        printf '%-24s p99 %s of base (target: at most 3x)\n' "$name $v/base" "$q"
        TABLE+=" ${name}_p99_${v}_vs_base=$q"
    done
done
echo "flood s/s, e/s: flood messages sent and echoes received per second (all"
echo "flooders); max us: the slowest round trip of the measured connections."
echo "TABLE $TABLE load_before=\"$LOAD_BEFORE\""
exit $FAILED
