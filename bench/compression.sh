#!/usr/bin/env bash
# compression.sh — what permessage-deflate costs and saves (issue 13), in
# four parts, each a run of one of the other benchmarks with compressed
# servers beside the uncompressed ones (lib.sh, "compression"), each with
# its ratios inside that one run:
#
#   a  chat traffic: 1 sender -> ROOM receivers of a chat room, JSON chat
#      messages of 80..400 bytes (chatmsg.c) at CHAT_RATE msgs/s: wire bytes
#      and the server's CPU per message, WSockCompression off, on (defaults),
#      level=6, client_no_context_takeover=off, server_no_context_takeover=off
#      (fanout.sh)
#   b  fan-out 1 -> 1000 of 1024-byte JSON messages, as fast as delivered:
#      mod_wsock compressed vs Node ws with perMessageDeflate (as ws ships
#      it, and with mod_wsock's parameters) and vs mod_wsock uncompressed
#      (fanout.sh); targets >= 10x and >= 0.5x
#   c  16-byte echo with compression negotiated vs not (run.sh, one loop
#      thread), twice: the client compressing from 128 bytes on (mod_wsock's
#      threshold: nothing is compressed either way) and every message (as
#      browsers do); target >= 0.8x
#   d  10,000 idle WebSockets that chatted a little first (3 JSON messages
#      each, compressed both ways): memory per connection with compression
#      vs without (idle.sh); target <= 1.5x
#
#   bench/compression.sh [-P "a b c d"] [-r ROUNDS] [-d SECONDS] [-o DIR]
#   bench/run.sh -C [the same]
#
# Same via the environment: PARTS="a b c d" ROUNDS=3 DURATION=5 ROOM=50
# CHAT_RATE=2000 CONNS=10000 (options win).  Takes about 6 minutes with the
# defaults.  Each part's whole output is printed and kept in DIR (default
# /tmp/wsock-compression-TIME); the summary at the end gives every target's
# ratio and whether it is met, and a last line TABLE key=value ...  Exit
# status 0 only if every part ran clean (nothing lost or corrupt, every
# connection compressed where it should); a missed target is reported, not
# an error.
set -euo pipefail
PROG=compression.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PARTS=${PARTS:-a b c d} ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} ROOM=${ROOM:-50}
CHAT_RATE=${CHAT_RATE:-2000} CONNS=${CONNS:-10000}
OUT=${OUT:-/tmp/wsock-compression-$(date -u +%Y%m%d-%H%M%S)}
while getopts "P:r:d:o:h" opt; do
    case $opt in
    P) PARTS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,34p' "$0" >&2; exit 2 ;;
    esac
done
check_numbers ROUNDS DURATION ROOM CHAT_RATE CONNS
[[ $PARTS =~ ^[abcd\ ]+$ ]] || die "-P takes parts among a b c d"
mkdir -p "$OUT"
setup wsbench fanout idle

# part NAME CMD...: runs one part, its output shown and kept in $OUT/NAME.log.
part() {
    local name=$1 rc=0
    shift
    say "part $name: $*"
    "$@" 2>&1 | tee "$OUT/$name.log" || rc=$?
    if ((rc != 0)); then
        FAILED=1
        echo "$PROG: part $name exited with $rc"
    fi
}
# get NAME KEY: a value of the TABLE line of part NAME ("" if absent).
get() {
    [[ -f $OUT/$1.log ]] || return 0
    grep '^TABLE ' "$OUT/$1.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p" | tr -d 'x'
}
# verdict VALUE OP TARGET: "met" or "NOT met" (OP: ge or le).
verdict() {
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        if (v == "" || v == "-") { print "not measured"; exit }
        ok = op == "ge" ? v >= t : v <= t; print ok ? "met" : "NOT met" }'
}
has_part() { [[ " $PARTS " == *" $1 "* ]]; }

B=$BENCH
CHAT=(mod_wsock mod_wsock_z mod_wsock_z6 mod_wsock_zc mod_wsock_zs)
has_part a && part a "$B/fanout.sh" -S "${CHAT[*]}" -c "$ROOM" -j 80-400 -R "$CHAT_RATE" \
    -d "$DURATION" -w 1 -r "$ROUNDS"
has_part b && part b "$B/fanout.sh" -S "mod_wsock mod_wsock_z node_z node_zm" -c 1000 \
    -j 1024 -d "$DURATION" -w 2 -r "$ROUNDS"
has_part c && part c128 "$B/run.sh" -S "mod_wsock mod_wsock_z" -Z 128 -d "$DURATION" -w 2 \
    -r "$ROUNDS"
has_part c && part c0 "$B/run.sh" -S "mod_wsock mod_wsock_z" -Z 0 -d "$DURATION" -w 2 \
    -r "$ROUNDS"
has_part d && part d env WARM=3 "$B/idle.sh" -S "mod_wsock mod_wsock_z" -c "$CONNS"

# ----------------------------------------------------------------- summary
say "summary: permessage-deflate (issue 13); every ratio within one run; logs in $OUT"
machine_line
TABLE="rounds=$ROUNDS duration=$DURATION"
if has_part a; then
    echo "a) chat room: 1 -> $ROOM receivers, 80..400-byte JSON chat messages, $CHAT_RATE msgs/s"
    printf '   %-34s %10s %7s %10s %7s %11s %9s %8s\n' variant "out B/msg" "/off" \
        "in B/del" "/off" "srv us/msg" "us/deliv" "CPU/off"
    for name in "${CHAT[@]}"; do
        printf '   %-34s %10s %7s %10s %7s %11s %9s %8s\n' \
            "$(compression_conf "$name" | sed 's/WSockCompression //')" \
            "$(get a "${name}_wire_out_per_msg")" "$(get a "wire_out_ratio_${name}_mod_wsock")" \
            "$(get a "${name}_wire_in_per_msg")" "$(get a "wire_ratio_${name}_mod_wsock")" \
            "$(get a "${name}_us_per_msg")" "$(get a "${name}_us_per_del")" \
            "$(get a "cpu_ratio_${name}_mod_wsock")"
        TABLE+=" a_${name}_in_per_del=$(get a "${name}_wire_in_per_msg")"
        TABLE+=" a_${name}_us_per_msg=$(get a "${name}_us_per_msg")"
    done
fi
if has_part b; then
    rn=$(get b ratio_mod_wsock_z_node_z) rm=$(get b ratio_mod_wsock_z_node_zm)
    ru=$(get b ratio_mod_wsock_z_mod_wsock)
    echo "b) fan-out 1 -> 1000, 1024-byte JSON, as fast as delivered:" \
        "mod_wsock compressed $(get b mod_wsock_z_deliveries_per_sec) deliveries/s"
    echo "   vs Node ws perMessageDeflate as shipped: ${rn}x (target >= 10x: $(verdict "$rn" ge 10));" \
        "with mod_wsock's parameters: ${rm}x"
    echo "   vs mod_wsock uncompressed: ${ru}x (target >= 0.5x: $(verdict "$ru" ge 0.5))"
    TABLE+=" b_ratio_node_z=$rn b_ratio_node_zm=$rm b_ratio_uncompressed=$ru"
fi
if has_part c; then
    r128=$(get c128 ratio_mod_wsock_z_mod_wsock) r0=$(get c0 ratio_mod_wsock_z_mod_wsock)
    echo "c) 16-byte echo, compression negotiated vs not:"
    echo "   client compresses from 128 bytes on: ${r128}x msgs/s (target >= 0.8x:" \
        "$(verdict "$r128" ge 0.8))"
    echo "   client compresses every message (as browsers): ${r0}x msgs/s"
    TABLE+=" c_ratio_zmin128=$r128 c_ratio_zmin0=$r0"
fi
if has_part d; then
    rd=$(get d ratio_mod_wsock_z_mod_wsock)
    echo "d) $CONNS idle WebSockets after 3 JSON messages each: $(get d mod_wsock_z_kib_per_conn)" \
        "KiB/conn compressed, $(get d mod_wsock_kib_per_conn) uncompressed: ${rd}x" \
        "(target <= 1.5x: $(verdict "$rd" le 1.5))"
    TABLE+=" d_ratio=$rd"
fi
echo "TABLE $TABLE load_before=\"$LOAD_BEFORE\""
exit "$FAILED"
