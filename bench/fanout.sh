#!/usr/bin/env bash
# fanout.sh — mod_wsock (chat handler) vs Node `ws` (broadcast server): one
# sender, many receivers in one room (issue 4; with compression, issue 13).
#
#   bench/fanout.sh [-c RECEIVERS] [-s BYTES | -j MIN[-MAX]] [-d SECONDS]
#                   [-w WARMUP] [-W WINDOW] [-R RATE] [-t THREADS] [-r ROUNDS]
#                   [-p] [-S "SERVER..."] [-Z ZMIN]
#
# Same settings via the environment: RECEIVERS=1000 SIZE=16 JSON= DURATION=10
# WARMUP=2 WINDOW=128 RATE=0 THREADS=1 ROUNDS=3 PIN=0 (options win).
# RATE=0: the sender sends as fast as the window allows (saturation: the
# deliveries/s are the figure); RATE=N: N messages/s (the latency is the
# figure).  -j MIN[-MAX] (JSON=): JSON chat messages of MIN..MAX bytes
# (bench/chatmsg.c) instead of binary messages of SIZE bytes.  CHILDREN=1:
# apache2 child processes (2 = across children, through the bus).
# SERVERS="mod_wsock node" (-S) picks the servers: mod_wsock, node, and the
# compressed variants of lib.sh (mod_wsock_z, mod_wsock_z6, mod_wsock_zc,
# mod_wsock_zs, node_z, node_zm), whose clients offer permessage-deflate as
# Chromium does, the sender compressing from ZMIN bytes on (-Z; default 0:
# every message, as browsers do).  WSOCK_MODULE as for run.sh.
#
# One command: installs what is missing, builds fanout, starts the servers
# on free loopback ports, runs fanout against each, ROUNDS times, rotating
# the order, and prints every round, the medians, the ratios of each
# mod_wsock to each Node server and of the compressed mod_wsock ones to
# mod_wsock, the wire bytes per message and per delivery and the servers'
# CPU per message and per delivery.  Everything it starts is stopped on
# exit.  Exit status 0 only if every run was clean (no message lost,
# duplicated, reordered or corrupted).
# shellcheck disable=SC2059  # printf formats in $FMT
set -euo pipefail
PROG=fanout.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECEIVERS=${RECEIVERS:-1000} SIZE=${SIZE:-16} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
WINDOW=${WINDOW:-128} RATE=${RATE:-0} THREADS=${THREADS:-1} ROUNDS=${ROUNDS:-3}
PIN=${PIN:-0} CHILDREN=${CHILDREN:-1} JSON=${JSON:-} SERVERS=${SERVERS:-mod_wsock node}
while getopts "c:s:j:d:w:W:R:t:r:pS:Z:h" opt; do
    case $opt in
    c) RECEIVERS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    j) JSON=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    W) WINDOW=$OPTARG ;;
    R) RATE=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    p) PIN=1 ;;
    S) SERVERS=$OPTARG ;;
    Z) ZMIN=$OPTARG ;;
    *) sed -n '2,29p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers RECEIVERS SIZE DURATION WARMUP WINDOW RATE THREADS ROUNDS CHILDREN ZMIN
((ROUNDS >= 1 && ROUNDS <= 20)) || die "ROUNDS must be 1..20"
((CHILDREN >= 1 && CHILDREN <= 16)) || die "CHILDREN must be 1..16"
[[ -z $JSON || $JSON =~ ^[0-9]+(-[0-9]+)?$ ]] || die "-j takes MIN or MIN-MAX"
read -r -a NAMES <<<"$SERVERS"
for name in "${NAMES[@]}"; do
    [[ $name =~ ^(mod_wsock|mod_wsock_z[6cs]?|node|node_zm?)$ ]] || die "unknown server '$name'"
done

setup fanout
set_pinning
# 1000 receivers + the sender + apache's own: more than the usual 1024 fds.
ulimit -n "$(ulimit -Hn)"

for name in "${NAMES[@]}"; do
    case $name in
    # mod_wsock: the chat handler relays each message as it came
    # (presence=off) to everybody but its sender (echo=off).
    mod_wsock*) start_apache "$name" "$(many_websockets_sizing "$CHILDREN")
<Location /fanout>
    WSockHandler chat echo=off presence=off
    $(compression_conf "$name")
</Location>" || true ;;
    node*)
        # shellcheck disable=SC2046  # no option: no argument
        start_server "$name" node "$BENCH/node/broadcast-server.js" $(node_deflate "$name") ;;
    esac
done

if [[ -n $JSON ]]; then
    ARGS=(-j "$JSON") KIND="${JSON}-byte JSON chat"
else
    ARGS=(-s "$SIZE") KIND="$SIZE-byte binary"
fi
ARGS+=(-c "$RECEIVERS" -d "$DURATION" -w "$WARMUP" -W "$WINDOW" -r "$RATE" -t "$THREADS")
TMO=$((WARMUP + DURATION + 90))
for r in $(seq "$ROUNDS"); do
    # Rotate who goes first, so slow drift on the machine hits all alike.
    k=$(( (r - 1) % ${#NAMES[@]} ))
    for name in "${NAMES[@]:$k}" "${NAMES[@]:0:$k}"; do
        [[ -n ${PORT[$name]} ]] || continue
        # shellcheck disable=SC2046  # the client's pmd options, split
        run_client "$name" "$r" "${PID[$name]}" "$TMO" \
            "$BENCH/fanout" -u "ws://127.0.0.1:${PORT[$name]}/fanout" "${ARGS[@]}" \
            $(pmd_client_args "$name")
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
for name in "${NAMES[@]}"; do
    [[ $name != mod_wsock* ]] || apache_log_check "$name"
done

label() {
    case $1 in
    mod_wsock) echo "mod_wsock" ;;
    mod_wsock_z*) echo "mod_wsock $(compression_conf "$1" | sed 's/WSockCompression //')" ;;
    node) echo "Node ws" ;;
    node_z) echo "Node ws, deflate (ws)" ;;
    node_zm) echo "Node ws, deflate (ours)" ;;
    esac
}
say "results: 1 sender -> $RECEIVERS receivers, $KIND messages, window $WINDOW," \
    "$( ((RATE)) && echo "$RATE msgs/s" || echo "as fast as delivered"), ${WARMUP}s warm-up" \
    "+ ${DURATION}s, $ROUNDS round(s), fanout threads $THREADS, apache children $CHILDREN," \
    "$( ((PIN)) && echo "pinned (servers: CPU $SRV_CPU_ID)" || echo unpinned)"
[[ $SERVERS != *_z* ]] || echo "compressed servers (_z): the clients offer Chromium's offer," \
    "the sender compresses messages from $ZMIN bytes on"
machine_line
FMT='%-52s %12s %9s %11s %11s %6s %8s %9s %9s %8s %8s %8s %8s\n'
KEYS=(deliveries_per_sec msgs_per_sec p50_us p99_us errors server_cpu us_per_msg us_per_del
      wire_out_per_msg wire_in_per_msg client_cpu_pct other_cpu)
printf "$FMT" server deliveries/s msgs/s "p50 us" "p99 us" errors "srv CPU%" "srv us/msg" \
    "us/deliv" "out B/msg" "in B/del" "cli CPU%" "oth CPU%"
for r in $(seq "$ROUNDS"); do
    for name in "${NAMES[@]}"; do
        report_line "$FMT" "$(label "$name"), round $r" "$name" "$r" "${KEYS[@]}"
    done
done
TABLE="receivers=$RECEIVERS size=$SIZE json=$JSON window=$WINDOW rate=$RATE duration=$DURATION"
TABLE+=" warmup=$WARMUP rounds=$ROUNDS children=$CHILDREN pin=$PIN zmin=$ZMIN"
for name in "${NAMES[@]}"; do
    report_line "$FMT" "$(label "$name") (median)" "$name" median "${KEYS[@]}"
    for key in deliveries_per_sec p50_us p99_us server_cpu us_per_msg us_per_del \
        wire_out_per_msg wire_in_per_msg; do
        TABLE+=" ${name}_$key=$(median "$name" "$key")"
    done
    TABLE+=" ${name}_errors=$(total "$name" errors)"
done
# Every mod_wsock against every Node; the compressed mod_wsock ones against
# mod_wsock: deliveries/s, latency, and the wire bytes and CPU per message.
for name in "${NAMES[@]}"; do
    for ref in "${NAMES[@]}"; do
        if [[ $name == mod_wsock* && $ref == node* ]] \
            || [[ $name == mod_wsock_z* && $ref == mod_wsock ]]; then
            v=()
            for key in deliveries_per_sec p50_us p99_us us_per_msg us_per_del \
                wire_out_per_msg wire_in_per_msg; do
                v+=("$(ratio "$(median "$name" "$key")" "$(median "$ref" "$key")")")
            done
            printf "$FMT" "ratio $name/$ref" "${v[0]}" "" "${v[1]}" "${v[2]}" "" "" \
                "${v[3]}" "${v[4]}" "${v[5]}" "${v[6]}" "" ""
            TABLE+=" ratio_${name}_${ref}=${v[0]} cpu_ratio_${name}_${ref}=${v[3]}"
            TABLE+=" wire_out_ratio_${name}_${ref}=${v[5]} wire_ratio_${name}_${ref}=${v[6]}"
        fi
    done
done
echo "deliveries/s (messages x receivers): higher is better; latency send -> arrival: lower"
echo "is better (with RATE=0 it is mostly the window's queueing).  errors: lost +"
echo "duplicated + reordered + corrupt + failed connections.  CPU% is of one core."
echo "srv us/msg, us/deliv: the server's CPU per message sent, per delivery.  out B/msg:"
echo "frame bytes the sender sent per message; in B/del: frame bytes a receiver got per"
echo "delivery (compressed ones smaller)."
echo "TABLE $TABLE load_before=\"$LOAD_BEFORE\""
exit $FAILED
