#!/usr/bin/env bash
# backend.sh — a client -> backend -> client round trip: mod_wsock's
# backend handler (WSockHandler backend) with a trivial backend, vs what
# Apache sites do today, Apache + mod_proxy_wstunnel -> a Node `ws` app
# doing the same round trip (issue 15).
#
#   bench/backend.sh [-c CONNS] [-s BYTES] [-d SECONDS] [-w WARMUP]
#                    [-t THREADS] [-r ROUNDS] [-T] [-p] [-i MS] [-S "SERVER..."]
#
# Same settings via the environment: CONNS=50 SIZE=16 DURATION=10 WARMUP=2
# THREADS=1 ROUNDS=3 TEXT=0 PIN=0 (options win; -T: text messages, else
# binary; -p: pinned, the servers on the last CPU, wsbench on the others).
# The load is wsbench's closed-loop echo (run.sh): every connection sends
# a message, waits for it to come back whole, checks it, sends the next.
# With -i MS (INTERVAL) the loop is open: every connection sends a message
# every MS ms whatever came back (wsbench -i; at most 256 in flight), so a
# busy server sees several messages of one client at once: what the
# backend handler batches into one request, and the proxy relays one by one.
# SERVERS (-S), default "mod_wsock mod_wsock_plain proxy node":
#   mod_wsock        `WSockHandler backend http://127.0.0.1:PORT/events`
#                    (protocol=websocket-events, the default: Pushpin's
#                    WebSocket-over-HTTP) to node/backend.js, which answers
#                    each TEXT/BINARY event with the same event (the echo;
#                    several per request when they queued up)
#   mod_wsock_plain  the same apache2, `protocol=plain`: each message POSTed
#                    as the body, the 200 answer's body the echo
#   mod_wsock1       (not in the default list) websocket-events as mod_wsock,
#                    in an apache2 of one child with `WSockLoopThreads 1`
#                    (run.sh's mod_wsock): fewer threads to hand off between
#   proxy            apache2 + mod_proxy_wstunnel (ProxyPass ws://) to
#                    node/echo-server.js (run.sh's proxy)
#   node             node/echo-server.js directly, for reference
# Both apache2 have run.sh's sizing for 2 cores (2 children of 64 threads,
# more if CONNS needs them; the module's other defaults).  The servers' CPU includes their Node
# process (mod_wsock: the backend; proxy: the echo app).  The target
# (issue 15): mod_wsock's messages/s at least the proxy's (ratio >= 1).
# WSOCK_MODULE as for run.sh (a module with the backend handler);
# WSOCK_CONF: more arguments for both WSockHandler backend lines (e.g.
# "timeout=5 requests=128").
#
# One command: installs what is missing, builds wsbench, starts the servers
# on free loopback ports, runs wsbench against each, ROUNDS times, rotating
# the order, and prints every round, the medians, the ratios and the
# conditions.  Everything it starts is stopped on exit.  Exit status 0 only
# if every run was clean (every echo back and right, no failed connection).
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=backend.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-50} SIZE=${SIZE:-16} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
THREADS=${THREADS:-1} ROUNDS=${ROUNDS:-3} TEXT=${TEXT:-0} PIN=${PIN:-0} INTERVAL=${INTERVAL:-0}
SERVERS=${SERVERS:-mod_wsock mod_wsock_plain proxy node}
while getopts "c:s:d:w:t:r:TpS:i:h" opt; do
    case $opt in
    c) CONNS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    T) TEXT=1 ;;
    p) PIN=1 ;;
    i) INTERVAL=$OPTARG ;;
    S) SERVERS=$OPTARG ;;
    *) sed -n '2,38p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers CONNS SIZE DURATION WARMUP THREADS ROUNDS INTERVAL
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"
read -r -a NAMES <<<"$SERVERS"
for name in "${NAMES[@]}"; do
    [[ $name =~ ^(mod_wsock|mod_wsock_plain|mod_wsock1|proxy|node)$ ]] \
        || die "unknown server '$name'"
done
has() { [[ " ${NAMES[*]} " == *" $1 "* ]]; }

setup wsbench
apt_install_missing curl       # the backend's counters at the end
set_pinning

SIZING=$(tunnel_sizing 2)     # for 2 cores: mod_wsock and the proxy

if has mod_wsock || has mod_wsock_plain || has mod_wsock1; then
    start_server backend node "$BENCH/node/backend.js"
fi
BACKEND_LOCATIONS="<Location /echo>
    WSockHandler backend http://127.0.0.1:${PORT[backend]:-}/events ${WSOCK_CONF:-}
    WSockMaxMessageSize 64M
</Location>
<Location /plain>
    WSockHandler backend http://127.0.0.1:${PORT[backend]:-}/plain protocol=plain ${WSOCK_CONF:-}
    WSockMaxMessageSize 64M
</Location>"
if has mod_wsock || has mod_wsock_plain; then
    if start_apache mod_wsock "$SIZING
$BACKEND_LOCATIONS"; then
        PORT[mod_wsock_plain]=${PORT[mod_wsock]} PID[mod_wsock_plain]=${PID[mod_wsock]}
    fi
fi
# run.sh's mod_wsock: one child, one loop thread.
has mod_wsock1 && { start_apache mod_wsock1 "$(tunnel_sizing 1)
WSockLoopThreads 1
$BACKEND_LOCATIONS" || true; }
if has node || has proxy; then
    start_server node node "$BENCH/node/echo-server.js"
fi
has proxy && { start_apache proxy "$SIZING
$(proxy_echo_conf "${PORT[node]}")" || true; }

ARGS=(-c "$CONNS" -s "$SIZE" -d "$DURATION" -w "$WARMUP" -t "$THREADS")
((TEXT)) && ARGS+=(-T)
((INTERVAL)) && ARGS+=(-i "$INTERVAL")
for r in $(seq "$ROUNDS"); do
    # Rotate who goes first, so slow drift on the machine hits all alike.
    k=$(( (r - 1) % ${#NAMES[@]} ))
    for name in "${NAMES[@]:$k}" "${NAMES[@]:0:$k}"; do
        [[ -n ${PORT[$name]:-} ]] || continue
        # app: the Node process behind apache2 (its CPU is in the server's
        # and is shown apart too).
        path=/echo app=""
        case $name in
        mod_wsock_plain) path=/plain app=${PID[backend]} ;;
        mod_wsock | mod_wsock1) app=${PID[backend]} ;;
        proxy) app=${PID[node]} ;;
        esac
        a0=$(cpu_ticks "$app") t0=$(date +%s%N)
        run_client "$name" "$r" "${PID[$name]} $app" $((WARMUP + DURATION + 40)) \
            "$BENCH/wsbench" -u "ws://127.0.0.1:${PORT[$name]}$path" "${ARGS[@]}"
        a1=$(cpu_ticks "$app") t1=$(date +%s%N)
        if [[ -n $app ]]; then
            RES[$name.$r.app_cpu]=$(awk -v a=$((a1 - a0)) -v hz="$TICK" \
                -v s=$(((t1 - t0) / 1000000)) 'BEGIN { printf "%.0f", 100 * a / hz / (s / 1000) }')
        fi
        RES[$name.$r.us_per_msg]=$(awk -v c="${RES[$name.$r.server_cpu]}" \
            -v m="${RES[$name.$r.msgs_per_sec]:-0}" \
            'BEGIN { if (m > 0) printf "%.2f", c / 100 / m * 1e6; else print "" }')
        [[ -z $app ]] || RES[$name.$r.app_us_per_msg]=$(awk -v c="${RES[$name.$r.app_cpu]}" \
            -v m="${RES[$name.$r.msgs_per_sec]:-0}" \
            'BEGIN { if (m > 0) printf "%.2f", c / 100 / m * 1e6; else print "" }')
    done
done
apache_log_check mod_wsock
apache_log_check mod_wsock1
apache_log_check proxy
if [[ -n ${PORT[backend]:-} ]]; then
    echo "backend (node/backend.js): $(curl -s --max-time 5 "http://127.0.0.1:${PORT[backend]}/stats" \
        || echo "no answer")"
fi

# ----------------------------------------------------------------- report
label() {
    case $1 in
    mod_wsock) echo "mod_wsock backend, websocket-events" ;;
    mod_wsock_plain) echo "mod_wsock backend, plain" ;;
    mod_wsock1) echo "mod_wsock backend, 1 child, 1 loop" ;;
    proxy) echo "Apache proxy->Node ws" ;;
    node) echo "Node ws (direct)" ;;
    esac
}
say "results: $SIZE-byte $( ((TEXT)) && echo text || echo binary) messages," \
    "$CONNS connections, ${WARMUP}s warm-up + ${DURATION}s, $ROUNDS round(s)," \
    "wsbench threads $THREADS, $( ((PIN)) && echo "pinned (servers: CPU $SRV_CPU_ID)" || echo unpinned)"
machine_line
FMT='%-44s %10s %9s %9s %7s %8s %9s %8s %9s %8s %8s\n'
KEYS=(msgs_per_sec p50_us p99_us errors server_cpu us_per_msg app_cpu app_us_per_msg
      client_cpu_pct other_cpu)
printf "$FMT" server msgs/s "p50 us" "p99 us" errors "srv CPU%" "srv us/msg" "app CPU%" \
    "app us/msg" "cli CPU%" "oth CPU%"
report_rounds "$FMT" label "${NAMES[*]}" "${KEYS[@]}"
TABLE="conns=$CONNS size=$SIZE text=$TEXT duration=$DURATION warmup=$WARMUP rounds=$ROUNDS pin=$PIN"
for name in "${NAMES[@]}"; do
    report_line "$FMT" "$(label "$name") (median)" "$name" median "${KEYS[@]}"
    for key in msgs_per_sec p50_us p99_us server_cpu us_per_msg app_cpu app_us_per_msg; do
        TABLE+=" ${name}_$key=$(median "$name" "$key")"
    done
    TABLE+=" ${name}_errors=$(total "$name" errors)"
done
for ref in proxy node; do
    has "$ref" || continue
    for name in mod_wsock mod_wsock_plain mod_wsock1; do
        has "$name" || continue
        v=()
        for key in msgs_per_sec p50_us p99_us us_per_msg; do
            v+=("$(ratio "$(median "$name" "$key")" "$(median "$ref" "$key")")")
        done
        printf "$FMT" "ratio $name/$ref" "${v[0]}" "${v[1]}" "${v[2]}" "" "" "${v[3]}" "" "" \
            "" ""
        TABLE+=" ratio_${name}_${ref}=${v[0]} cpu_ratio_${name}_${ref}=${v[3]}"
    done
done
if has mod_wsock && has proxy; then
    echo "target (issue 15): mod_wsock (backend) / Apache proxy -> Node at least 1x:" \
        "$(ratio "$(median mod_wsock msgs_per_sec)" "$(median proxy msgs_per_sec)")"
fi
echo "msgs/s: round trips per second (client -> server -> backend -> client); higher is"
echo "better.  p50/p99 round trip: lower is better.  CPU% is of one core; srv us/msg: the"
echo "server's CPU per round trip, its Node process included (backend or echo app);"
echo "app CPU%, app us/msg: that Node process alone (apache2's share is the difference)."
echo "TABLE $TABLE load_before=\"$LOAD_BEFORE\""
exit $FAILED
