#!/usr/bin/env bash
# publish.sh — mod_wsock's publish endpoint (SetHandler wsock-publish) vs
# Node `ws` broadcasting the same messages: one publisher, many receivers
# in one room (issue 15).
#
#   bench/publish.sh [-c RECEIVERS] [-s BYTES | -j MIN[-MAX]] [-d SECONDS]
#                    [-w WARMUP] [-W WINDOW] [-R RATE] [-r ROUNDS] [-p]
#                    [-S "SERVER..."]
#
# Same settings via the environment: RECEIVERS=1000 SIZE=16 JSON= DURATION=10
# WARMUP=2 WINDOW=128 RATE=0 ROUNDS=3 PIN=0 (options win); as fanout.sh.
# CHILDREN=1: apache2 child processes (2: the receivers and the publisher's
# requests spread over both, the messages reaching the other child through
# the bus).
# SERVERS="mod_wsock node mod_wsock_ws" (-S) picks the servers:
#   mod_wsock     the receivers on `WSockHandler chat echo=off presence=off`
#                 (/fanout); every message published with an HTTP POST to
#                 `SetHandler wsock-publish` (/pub?location=/fanout, the
#                 body the message, application/octet-stream: binary; with
#                 -j application/json: text), pipelined on one keep-alive
#                 HTTP/1.1 connection (fanout -p)
#   node          node/broadcast-server.js on `ws`, the sender a WebSocket
#                 client of the room (what a Node site does)
#   mod_wsock_ws  the same apache2 as mod_wsock, the sender a WebSocket
#                 client of the chat room (fanout.sh's mod_wsock): what
#                 publishing over HTTP costs against a WebSocket sender
# The target (issue 15): mod_wsock's deliveries/s at least 5x Node's.
# WSOCK_MODULE as for run.sh (a module with the publish endpoint).
#
# One command: installs what is missing, builds fanout, starts the servers
# on free loopback ports, runs fanout against each, ROUNDS times, rotating
# the order, and prints every round, the medians, the ratios to Node and
# the conditions.  Everything it starts is stopped on exit.  Exit status 0
# only if every run was clean (no message lost, duplicated, reordered or
# corrupted, every publish answered 2xx).
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=publish.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECEIVERS=${RECEIVERS:-1000} SIZE=${SIZE:-16} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
WINDOW=${WINDOW:-128} RATE=${RATE:-0} ROUNDS=${ROUNDS:-3} PIN=${PIN:-0} JSON=${JSON:-}
CHILDREN=${CHILDREN:-1}
SERVERS=${SERVERS:-mod_wsock node mod_wsock_ws}
while getopts "c:s:j:d:w:W:R:r:pS:h" opt; do
    case $opt in
    c) RECEIVERS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    j) JSON=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    W) WINDOW=$OPTARG ;;
    R) RATE=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    p) PIN=1 ;;
    S) SERVERS=$OPTARG ;;
    *) sed -n '2,34p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers RECEIVERS SIZE DURATION WARMUP WINDOW RATE ROUNDS CHILDREN
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"
((CHILDREN >= 1 && CHILDREN <= 16)) || die "CHILDREN must be 1..16"
[[ -z $JSON || $JSON =~ ^[0-9]+(-[0-9]+)?$ ]] || die "-j takes MIN or MIN-MAX"
read -r -a NAMES <<<"$SERVERS"
for name in "${NAMES[@]}"; do
    [[ $name =~ ^(mod_wsock|mod_wsock_ws|node)$ ]] || die "unknown server '$name'"
done
has() { [[ " ${NAMES[*]} " == *" $1 "* ]]; }

setup fanout
set_pinning
# 1000 receivers + the sender + apache's own: more than the usual 1024 fds.
ulimit -n "$(ulimit -Hn)"

# One apache2 for both mod_wsock variants (fanout.sh's sizing).
# The publisher's connection carries every message: no limit on the
# requests of a keep-alive connection (Apache's default ends it after 100).
if has mod_wsock || has mod_wsock_ws; then
    if start_apache mod_wsock "$(many_websockets_sizing "$CHILDREN")
MaxKeepAliveRequests 0
<Location /fanout>
    WSockHandler chat echo=off presence=off
</Location>
<Location /pub>
    SetHandler wsock-publish
</Location>"; then
        PORT[mod_wsock_ws]=${PORT[mod_wsock]} PID[mod_wsock_ws]=${PID[mod_wsock]}
    fi
fi
has node && start_server node node "$BENCH/node/broadcast-server.js"

if [[ -n $JSON ]]; then
    ARGS=(-j "$JSON") KIND="${JSON}-byte JSON chat"
else
    ARGS=(-s "$SIZE") KIND="$SIZE-byte binary"
fi
ARGS+=(-c "$RECEIVERS" -d "$DURATION" -w "$WARMUP" -W "$WINDOW" -r "$RATE")
TMO=$((WARMUP + DURATION + 90))
for r in $(seq "$ROUNDS"); do
    # Rotate who goes first, so slow drift on the machine hits all alike.
    k=$(( (r - 1) % ${#NAMES[@]} ))
    for name in "${NAMES[@]:$k}" "${NAMES[@]:0:$k}"; do
        [[ -n ${PORT[$name]:-} ]] || continue
        pub=()
        [[ $name != mod_wsock ]] \
            || pub=(-p "http://127.0.0.1:${PORT[$name]}/pub?location=/fanout")
        run_client "$name" "$r" "${PID[$name]}" "$TMO" \
            "$BENCH/fanout" -u "ws://127.0.0.1:${PORT[$name]}/fanout" "${ARGS[@]}" "${pub[@]}"
        # The server's CPU per message sent and per delivery (hellos, warm-up
        # and drain included, as in its CPU; the receivers' handshakes too).
        RES[$name.$r.us_per_msg]=$(awk -v c="${RES[$name.$r.server_cpu_s]}" \
            -v m="${RES[$name.$r.msgs_out]:-0}" \
            'BEGIN { if (m > 0) printf "%.2f", c / m * 1e6 }')
        RES[$name.$r.us_per_del]=$(awk -v c="${RES[$name.$r.server_cpu_s]}" \
            -v m="${RES[$name.$r.msgs_in]:-0}" \
            'BEGIN { if (m > 0) printf "%.3f", c / m * 1e6 }')
    done
done
apache_log_check mod_wsock

label() {
    case $1 in
    mod_wsock) echo "mod_wsock, HTTP publish" ;;
    mod_wsock_ws) echo "mod_wsock, WebSocket sender" ;;
    node) echo "Node ws, WebSocket sender" ;;
    esac
}
say "results: 1 publisher -> $RECEIVERS receivers, $KIND messages, window $WINDOW," \
    "$( ((RATE)) && echo "$RATE msgs/s" || echo "as fast as delivered"), ${WARMUP}s warm-up" \
    "+ ${DURATION}s, $ROUNDS round(s), apache children $CHILDREN," \
    "$( ((PIN)) && echo "pinned (servers: CPU $SRV_CPU_ID)" || echo unpinned)"
machine_line
FMT='%-44s %12s %9s %11s %11s %6s %8s %9s %9s %9s %8s %8s\n'
KEYS=(deliveries_per_sec msgs_per_sec p50_us p99_us errors server_cpu us_per_msg us_per_del
      wire_out_per_msg client_cpu_pct other_cpu)
printf "$FMT" server deliveries/s msgs/s "p50 us" "p99 us" errors "srv CPU%" "srv us/msg" \
    "us/deliv" "out B/msg" "cli CPU%" "oth CPU%"
report_rounds "$FMT" label "${NAMES[*]}" "${KEYS[@]}"
TABLE="receivers=$RECEIVERS size=$SIZE json=$JSON window=$WINDOW rate=$RATE duration=$DURATION"
TABLE+=" warmup=$WARMUP rounds=$ROUNDS children=$CHILDREN pin=$PIN"
for name in "${NAMES[@]}"; do
    report_line "$FMT" "$(label "$name") (median)" "$name" median "${KEYS[@]}"
    for key in deliveries_per_sec msgs_per_sec p50_us p99_us server_cpu us_per_msg us_per_del; do
        TABLE+=" ${name}_$key=$(median "$name" "$key")"
    done
    TABLE+=" ${name}_errors=$(total "$name" errors)"
done
# The target: HTTP publish against Node; and against mod_wsock's own
# WebSocket sender.
for pair in mod_wsock:node mod_wsock_ws:node mod_wsock:mod_wsock_ws; do
    name=${pair%%:*} ref=${pair#*:}
    if ! has "$name" || ! has "$ref"; then
        continue
    fi
    v=()
    for key in deliveries_per_sec p50_us p99_us us_per_msg us_per_del; do
        v+=("$(ratio "$(median "$name" "$key")" "$(median "$ref" "$key")")")
    done
    printf "$FMT" "ratio $name/$ref" "${v[0]}" "" "${v[1]}" "${v[2]}" "" "" "${v[3]}" \
        "${v[4]}" "" "" ""
    TABLE+=" ratio_${name}_${ref}=${v[0]} cpu_ratio_${name}_${ref}=${v[3]}"
done
if has mod_wsock && has node; then
    echo "target (issue 15): mod_wsock (HTTP publish) / Node at least 5x:" \
        "$(ratio "$(median mod_wsock deliveries_per_sec)" "$(median node deliveries_per_sec)")"
fi
echo "deliveries/s (messages x receivers): higher is better; latency send -> arrival: lower"
echo "is better (with RATE=0 it is mostly the window's queueing).  errors: lost +"
echo "duplicated + reordered + corrupt + failed connections + publishes not answered 2xx."
echo "CPU% is of one core.  srv us/msg, us/deliv: the server's CPU per message sent, per"
echo "delivery.  out B/msg: what the sender sent per message (HTTP: request head and body)."
echo "TABLE $TABLE load_before=\"$LOAD_BEFORE\""
exit $FAILED
