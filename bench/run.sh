#!/usr/bin/env bash
# run.sh — echo benchmark: mod_wsock (Apache httpd, event MPM) vs Node `ws`,
# vs a minimal C server (the machine's limit), vs Apache proxying to Node.
#
#   bench/run.sh [-c CONNS] [-s BYTES] [-d SECONDS] [-w WARMUP] [-t THREADS]
#                [-r ROUNDS] [-T] [-p | -P CPU] [-S "SERVER..."] [-Z ZMIN]
#   bench/run.sh -C [compression.sh's options]
#
# Same settings via the environment: CONNS=50 SIZE=16 DURATION=10 WARMUP=2
# THREADS=1 ROUNDS=3 TEXT=0 PIN=0 (options win; -T = text messages, else
# binary; -p = pin: servers on the last CPU, wsbench on the others; -P CPU
# = pin the servers on CPU instead, e.g. -P 0, also PIN_CPU=0 with -p).
# SERVERS="mod_wsock mod_wsock2 node limit proxy" (-S) picks the servers:
#   mod_wsock  the echo handler in apache2 (event MPM), one child with one
#              loop thread: one thread serves the WebSockets, as in Node and
#              the limit (wsbench needs the other core)
#   mod_wsock_auto  the same child with the module's default
#              WSockLoopThreads (not in the default list; pinned, it shows
#              what the default makes of one CPU)
#   mod_wsock2 the same with the module's default sizing for this machine:
#              2 children, the CPUs shared out as loop threads (1 each on
#              2 cores)
#   node       node/echo-server.js on `ws`
#   limit      limit-echo, a single-threaded C epoll echo server: the limit
#   proxy      apache2 + mod_proxy_wstunnel in front of the Node server
#   mod_wsock_z, mod_wsock_z6, mod_wsock_zc, mod_wsock_zs, node_z, node_zm
#              compressed: mod_wsock (one loop thread) with WSockCompression
#              on, Node with permessage-deflate (lib.sh); wsbench offers
#              Chromium's offer and compresses from ZMIN bytes on (-Z;
#              default 0: every message, as browsers do).  Ratios to
#              mod_wsock are printed too.
#   -C [ARGS]  runs the compression benchmarks instead (compression.sh ARGS)
# WSOCK_MODULE=path/to/mod_wsock.so picks the module (default:
# <repo>/.libs/mod_wsock.so, built with autotools if missing).  WSOCK_CONF:
# more directives for the echo location of both mod_wsock servers.
#
# One command, from a fresh Debian bookworm as root: installs what is missing
# (apt packages, `npm ci`), builds wsbench, starts the servers on free
# loopback ports, runs wsbench against each in turn, ROUNDS times,
# alternating the order (so a disturbance hits all alike), and prints every
# round, the medians and the ratios to Node and to the limit.  Everything it
# starts is stopped on exit (trap).  Exit status: 0 only if every run was clean.
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=run.sh
if [[ ${1:-} == -C ]]; then
    shift
    exec "$(dirname "${BASH_SOURCE[0]}")/compression.sh" "$@"
fi
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-50} SIZE=${SIZE:-16} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
THREADS=${THREADS:-1} ROUNDS=${ROUNDS:-3} TEXT=${TEXT:-0} PIN=${PIN:-0}
SERVERS=${SERVERS:-mod_wsock mod_wsock2 node limit proxy}
while getopts "c:s:d:w:t:r:TpP:S:Z:h" opt; do
    case $opt in
    c) CONNS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    T) TEXT=1 ;;
    p) PIN=1 ;;
    P) PIN=1 PIN_CPU=$OPTARG ;;
    S) SERVERS=$OPTARG ;;
    Z) ZMIN=$OPTARG ;;
    *) sed -n '2,42p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers CONNS SIZE DURATION WARMUP THREADS ROUNDS ZMIN
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"
read -r -a NAMES <<<"$SERVERS"
for name in "${NAMES[@]}"; do
    [[ $name =~ ^(mod_wsock|mod_wsock_auto|mod_wsock2|node|limit|proxy|mod_wsock_z[6cs]?|node_zm?)$ ]] \
        || die "unknown server '$name'"
done
has() { [[ " ${NAMES[*]} " == *" $1 "* ]]; }

setup wsbench limit-echo
set_pinning

# The servers' sizing: tunnel_sizing (lib.sh).  LogLevel warn: nothing is
# logged per connection.  64M = Node's maxPayload.
SIZING=$(tunnel_sizing 2)   # sized for 2 cores: mod_wsock2 and the proxy
ECHO_LOCATION="<Location /echo>
    WSockHandler echo
    WSockMaxMessageSize 64M
    ${WSOCK_CONF:-}
</Location>"
# mod_wsock: the WebSockets get one thread, as Node and the limit have; on 2
# cores wsbench takes the other, and a second loop thread would only take
# turns with the first and with wsbench (the p99 shows it).
for name in "${NAMES[@]}"; do
    [[ $name == mod_wsock || $name == mod_wsock_z* ]] || continue
    start_apache "$name" "$(tunnel_sizing 1)
WSockLoopThreads 1
${ECHO_LOCATION/<\/Location>/$(compression_conf "$name")
<\/Location>}" || true
done
# The same child with the module's default number of loop threads.
has mod_wsock_auto && { start_apache mod_wsock_auto "$(tunnel_sizing 1)
$ECHO_LOCATION" || true; }
has mod_wsock2 && { start_apache mod_wsock2 "$SIZING
$ECHO_LOCATION" || true; }
# Node runs for the proxy too.
if has node || has proxy; then
    start_server node node "$BENCH/node/echo-server.js"
fi
for name in "${NAMES[@]}"; do
    if [[ $name == node_z* ]]; then
        start_server "$name" node "$BENCH/node/echo-server.js" "$(node_deflate "$name")"
    fi
done
has limit && start_server limit "$BENCH/limit-echo"
# What Apache sites do today: Apache's defaults but for the sizing above.
has proxy && { start_apache proxy "$SIZING
$(proxy_echo_conf "${PORT[node]}")" || true; }

ARGS=(-c "$CONNS" -s "$SIZE" -d "$DURATION" -w "$WARMUP" -t "$THREADS")
((TEXT)) && ARGS+=(-T)
for r in $(seq "$ROUNDS"); do
    # Rotate who goes first, so slow drift on the machine hits all alike.
    order=("${NAMES[@]:$(( (r - 1) % ${#NAMES[@]} ))}" "${NAMES[@]:0:$(( (r - 1) % ${#NAMES[@]} ))}")
    for name in "${order[@]}"; do
        [[ -n ${PORT[$name]} ]] || continue
        pids=${PID[$name]}
        [[ $name != proxy ]] || pids+=" ${PID[node]}"     # the proxy's work includes Node's
        # shellcheck disable=SC2046  # the client's pmd options, split
        run_client "$name" "$r" "$pids" $((WARMUP + DURATION + 40)) \
            "$BENCH/wsbench" -u "ws://127.0.0.1:${PORT[$name]}/echo" "${ARGS[@]}" \
            $(pmd_client_args "$name")
        # CPU per echoed message, of the server (the proxy: apache2 + Node).
        RES[$name.$r.us_per_msg]=$(awk -v c="${RES[$name.$r.server_cpu]}" \
            -v m="${RES[$name.$r.msgs_per_sec]:-0}" \
            'BEGIN { if (m > 0) printf "%.2f", c / 100 / m * 1e6; else print "" }')
    done
done
for name in "${NAMES[@]}"; do
    [[ $name != mod_wsock_z* ]] || apache_log_check "$name"
done
apache_log_check mod_wsock
apache_log_check mod_wsock_auto
apache_log_check mod_wsock2
apache_log_check proxy

# ----------------------------------------------------------------- report
label() {
    case $1 in
    mod_wsock) echo "mod_wsock, 1 loop" ;;
    mod_wsock_auto) echo "mod_wsock, default loops" ;;
    mod_wsock2) echo "mod_wsock, 2 children" ;;
    node) echo "Node ws" ;;
    limit) echo "limit (C epoll)" ;;
    proxy) echo "Apache proxy->Node" ;;
    mod_wsock_z*) echo "mod_wsock, 1 loop, compr. $(compression_conf "$1" | sed 's/WSockCompression //')" ;;
    node_z) echo "Node ws, deflate (ws)" ;;
    node_zm) echo "Node ws, deflate (ours)" ;;
    esac
}
say "results: $SIZE-byte $( ((TEXT)) && echo text || echo binary) messages," \
    "$CONNS connections, ${WARMUP}s warm-up + ${DURATION}s, $ROUNDS round(s)," \
    "wsbench threads $THREADS, $( ((PIN)) && echo "pinned (servers: CPU $SRV_CPU_ID)" || echo unpinned)"
[[ $SERVERS != *_z* ]] || echo "compressed servers (_z): wsbench offers Chromium's offer and" \
    "compresses messages from $ZMIN bytes on"

machine_line
FMT='%-40s %10s %9s %9s %7s %8s %9s %8s %8s %8s %8s\n'
KEYS=(msgs_per_sec p50_us p99_us errors server_cpu us_per_msg client_cpu_pct other_cpu
      wire_out_per_msg wire_in_per_msg)
printf "$FMT" server msgs/s "p50 us" "p99 us" errors "srv CPU%" "srv us/msg" "cli CPU%" \
    "oth CPU%" "out B/msg" "in B/msg"
for r in $(seq "$ROUNDS"); do
    for name in "${NAMES[@]}"; do
        report_line "$FMT" "$(label "$name"), round $r" "$name" "$r" "${KEYS[@]}"
    done
done
TABLE="conns=$CONNS size=$SIZE duration=$DURATION warmup=$WARMUP rounds=$ROUNDS pin=$PIN"
for name in "${NAMES[@]}"; do
    report_line "$FMT" "$(label "$name") (median)" "$name" median "${KEYS[@]}"
    for key in msgs_per_sec p50_us p99_us server_cpu us_per_msg wire_out_per_msg \
        wire_in_per_msg; do
        TABLE+=" ${name}_$key=$(median "$name" "$key")"
    done
    TABLE+=" ${name}_errors=$(total "$name" errors)"
done
# Ratios of every server's median to Node's and to the limit's, and of
# the compressed ones to mod_wsock's (uncompressed).
for ref in node limit mod_wsock; do
    has "$ref" || continue
    for name in "${NAMES[@]}"; do
        [[ $name != "$ref" ]] || continue
        [[ $ref != mod_wsock || $name == *_z* ]] || continue
        v=()
        for key in msgs_per_sec p50_us p99_us; do
            v+=("$(ratio "$(median "$name" "$key")" "$(median "$ref" "$key")")")
        done
        printf "$FMT" "ratio $name/$ref" "${v[@]}" "" "" "" "" "" "" ""
        TABLE+=" ratio_${name}_${ref}=${v[0]}"
    done
done
echo "msgs/s: higher is better; p50/p99 round-trip: lower is better.  CPU% is of one"
echo "core over the whole run: server, wsbench, and all other work on the machine;"
echo "srv us/msg: server CPU per echoed message (the proxy: apache2 + Node).  out/in"
echo "B/msg: frame bytes on the wire per message sent / echo received (compressed"
echo "ones smaller)."
echo "TABLE $TABLE zmin=$ZMIN load_before=\"$LOAD_BEFORE\""
exit $FAILED
