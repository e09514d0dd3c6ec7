#!/usr/bin/env bash
# run.sh — mod_wsock (Apache httpd, event MPM) vs Node `ws`: echo benchmark.
#
#   bench/run.sh [-c CONNS] [-s BYTES] [-d SECONDS] [-w WARMUP] [-t THREADS]
#                [-r ROUNDS] [-T] [-p]
#
# Same settings via the environment: CONNS=50 SIZE=16 DURATION=10 WARMUP=2
# THREADS=1 ROUNDS=3 TEXT=0 PIN=0 (options win; -T = text messages, else
# binary; -p = pin: servers on the last CPU, wsbench on the others).
# WSOCK_MODULE=path/to/mod_wsock.so picks the module (default:
# <repo>/.libs/mod_wsock.so, built with autotools if missing).
#
# One command, from a fresh Debian bookworm as root: installs what is missing
# (apt packages, `npm ci`), builds wsbench, starts both echo servers on free
# loopback ports, runs wsbench against each in turn, ROUNDS times, alternating
# (so a disturbance hits both alike), and prints every round, the medians and
# the ratio mod_wsock / Node.  Everything it starts is stopped on exit (trap).
# Exit status: 0 only if every run was clean.
# shellcheck disable=SC2059,SC2317  # printf formats in $FMT; cleanup runs from trap
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")

CONNS=${CONNS:-50} SIZE=${SIZE:-16} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
THREADS=${THREADS:-1} ROUNDS=${ROUNDS:-3} TEXT=${TEXT:-0} PIN=${PIN:-0}
while getopts "c:s:d:w:t:r:Tph" opt; do
    case $opt in
    c) CONNS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    T) TEXT=1 ;;
    p) PIN=1 ;;
    *) sed -n '2,18p' "$0" >&2; exit 2 ;;
    esac
done
for v in CONNS SIZE DURATION WARMUP THREADS ROUNDS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "run.sh: $v must be a number" >&2; exit 2; }
done
((ROUNDS >= 1 && ROUNDS <= 20)) || { echo "run.sh: ROUNDS must be 1..20" >&2; exit 2; }

say() { printf '\n== %s\n' "$*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- install
# Installs only the Debian packages that are missing (idempotent).
apt_install_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "need root to install: ${missing[*]}"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# apache2-bin: the server and its modules, without a system service on :80.
apt_install_missing build-essential libssl-dev apache2-bin python3
# Node may come from Debian (nodejs + npm) or elsewhere (NodeSource bundles
# npm): look for the commands, not the packages.
command -v node >/dev/null || apt_install_missing nodejs
command -v npm >/dev/null || apt_install_missing npm

if [[ -z ${WSOCK_MODULE:-} ]]; then
    WSOCK_MODULE=$REPO/.libs/mod_wsock.so
    if [[ ! -f $WSOCK_MODULE ]]; then
        say "building mod_wsock"
        apt_install_missing apache2-dev libapr1-dev libaprutil1-dev check pkg-config \
            autoconf automake libtool
        (cd "$REPO" && { [[ -x configure ]] || ./autogen.sh; } \
            && { [[ -f Makefile ]] || ./configure; } && make)
    fi
fi
[[ -f $WSOCK_MODULE ]] || die "no module at $WSOCK_MODULE"
export WSOCK_MODULE

# npm ci again only when the lock file changed since the last install.
if [[ ! -f $BENCH/node_modules/.package-lock.json
      || $BENCH/package-lock.json -nt $BENCH/node_modules/.package-lock.json ]]; then
    say "npm ci"
    (cd "$BENCH" && npm ci --no-audit --no-fund --loglevel=error)
fi
make -s -C "$BENCH" wsbench

# With PIN=1 each server gets exactly one core (the last) and wsbench the
# rest, so neither server can borrow the load generator's CPU: a per-core
# comparison.  Without it the scheduler shares all cores among everything.
SRV_CPU=() CLI_CPU=()
if ((PIN)); then
    LAST=$(($(nproc) - 1))
    ((LAST >= 1)) || die "-p needs at least 2 CPUs"
    SRV_CPU=(taskset -c "$LAST") CLI_CPU=(taskset -c "0-$((LAST - 1))")
fi

# ------------------------------------------------------------- lifecycle
HARNESS=(/usr/bin/python3 "$REPO/tests/harness/apache_instance.py")
WORK=$(mktemp -d /tmp/wsock-bench.XXXXXX)
chmod 755 "$WORK"              # apache's children (www-data) reopen mutex files here
APACHE_DIR=$WORK/apache NODE_PID="" WSBENCH_PID="" FAILED=0

cleanup() {
    if [[ -n $WSBENCH_PID ]]; then
        kill "$WSBENCH_PID" 2>/dev/null || true    # timeout passes it on to wsbench
        wait "$WSBENCH_PID" 2>/dev/null || true
    fi
    if [[ -f $APACHE_DIR/harness.json ]]; then
        "${HARNESS[@]}" stop --dir "$APACHE_DIR" >/dev/null 2>&1 || true
    fi
    if [[ -n $NODE_PID ]]; then
        kill "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mod_wsock in a real apache2, event MPM sized for 2 cores: 2 children, all
# started up front so no child is spawned during a run, with 64 threads each,
# or more if CONNS needs them (a driver that keeps a thread per WebSocket must
# not run out; 32 spare for the harness's probe and slack).  This is appended
# after the harness's own sizing, so these values win.  LogLevel warn: nothing
# is logged per connection.  64M = Node's maxPayload.
TPC=$(( (CONNS + 32 + 1) / 2 )); ((TPC >= 64)) || TPC=64
cat >"$WORK/wsock.conf" <<EOF
ServerLimit 2
StartServers 2
ThreadLimit $TPC
ThreadsPerChild $TPC
MinSpareThreads 16
MaxSpareThreads $((2 * TPC))
MaxRequestWorkers $((2 * TPC))
<Location /echo>
    WSockHandler echo
    WSockMaxMessageSize 64M
</Location>
EOF
say "starting apache2 (event MPM) with $WSOCK_MODULE"
# If it does not start, Node is still measured and the run fails at the end.
if APACHE_PORT=$("${SRV_CPU[@]}" "${HARNESS[@]}" start --mpm event --conf "$WORK/wsock.conf" \
        --dir "$APACHE_DIR" --loglevel warn); then
    APACHE_PID=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
        "$APACHE_DIR/harness.json")
else
    echo "run.sh: apache2 did not start; measuring Node only"
    FAILED=1 APACHE_PORT=""
fi

say "starting Node ws echo server"
"${SRV_CPU[@]}" node "$BENCH/node/echo-server.js" 0 >"$WORK/node.out" 2>&1 &
NODE_PID=$!
for _ in $(seq 100); do          # up to 10 s for "listening PORT"
    grep -q '^listening ' "$WORK/node.out" && break
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.1
done
NODE_PORT=$(awk '/^listening /{print $2; f=1} END{exit !f}' "$WORK/node.out") \
    || die "node echo server did not start: $(cat "$WORK/node.out")"

# --------------------------------------------------------------- measure
# CPU ticks used so far by process $1 and every process in its group (apache
# runs in its own session, so its group is the whole server; node is alone).
cpu_ticks() {
    local f s a t=0
    for f in /proc/[0-9]*/stat; do
        read -r s 2>/dev/null <"$f" || continue    # the process may be gone
        read -r -a a <<<"${s##*) }"                 # after "(comm) ": state ppid pgrp ...
        if [[ ${f:6:-5} == "$1" || ${a[2]} == "$1" ]]; then
            t=$((t + a[11] + a[12]))                # utime + stime
        fi
    done
    echo "$t"
}
# Busy ticks of the whole machine (all CPUs): user nice system irq softirq steal.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

TICK=$(getconf CLK_TCK)
declare -A RES               # RES[name.round.key] = value from wsbench's RESULT line

# run_bench NAME ROUND URL SERVER_PID: one wsbench run; its figures go to RES,
# plus the server's CPU and the CPU everything else used meanwhile (a run
# disturbed by other work on the machine shows up there).
run_bench() {
    local name=$1 r=$2 url=$3 pid=$4 out rc=0 t0 t1 c0 c1 b0 b1 kv kvs srv oth
    local args=(-u "$url" -c "$CONNS" -s "$SIZE" -d "$DURATION" -w "$WARMUP" -t "$THREADS")
    ((TEXT)) && args+=(-T)
    say "round $r, $name: wsbench ${args[*]}"
    c0=$(cpu_ticks "$pid") b0=$(busy_ticks) t0=$(date +%s%N)
    # In the background + wait, so that a SIGTERM to this script runs the
    # cleanup at once instead of after wsbench ends.
    "${CLI_CPU[@]}" timeout $((WARMUP + DURATION + 40)) "$BENCH/wsbench" "${args[@]}" \
        >"$WORK/wsbench.out" 2>&1 &
    WSBENCH_PID=$!
    wait "$WSBENCH_PID" || rc=$?
    WSBENCH_PID="" out=$(<"$WORK/wsbench.out")
    t1=$(date +%s%N) b1=$(busy_ticks) c1=$(cpu_ticks "$pid")
    printf '%s\n' "$out"
    read -r -a kvs <<<"$(grep '^RESULT ' <<<"$out" | cut -d' ' -f2-)"
    for kv in "${kvs[@]}"; do
        RES[$name.$r.${kv%%=*}]=${kv#*=}
    done
    if [[ -z ${RES[$name.$r.errors]:-} ]]; then
        RES[$name.$r.errors]=1   # no RESULT line: wsbench died or timed out
    fi
    read -r srv oth < <(awk -v c=$((c1 - c0)) \
        -v b=$((b1 - b0)) -v hz="$TICK" -v s="$(((t1 - t0) / 1000000))" \
        -v cl="${RES[$name.$r.client_cpu_pct]:-0}" 'BEGIN {
            srv = 100 * c / hz / (s / 1000); all = 100 * b / hz / (s / 1000)
            oth = all - srv - cl; printf "%.0f %.0f\n", srv, oth < 0 ? 0 : oth }')
    RES[$name.$r.server_cpu]=$srv RES[$name.$r.other_cpu]=$oth
    RES[$name.$r.rc]=$rc
    if ((rc != 0)); then
        FAILED=1
        echo "run.sh: wsbench against $name exited with $rc"
    fi
}

for r in $(seq "$ROUNDS"); do
    # Alternate who goes first, so slow drift on the machine hits both alike.
    if ((r % 2)); then order=(mod_wsock node); else order=(node mod_wsock); fi
    for name in "${order[@]}"; do
        if [[ $name == mod_wsock ]]; then
            [[ -n $APACHE_PORT ]] || continue
            run_bench mod_wsock "$r" "ws://127.0.0.1:$APACHE_PORT/echo" "$APACHE_PID"
        else
            run_bench node "$r" "ws://127.0.0.1:$NODE_PORT/echo" "$NODE_PID"
        fi
    done
done

if [[ -n $APACHE_PORT ]] && grep -E 'exit signal|AH00052|Segmentation' "$APACHE_DIR/logs/error.log"; then
    FAILED=1
    echo "run.sh: apache2 children crashed (see above)"
fi
if [[ -n $APACHE_PORT ]] && grep -qE ':(warn|error|crit|alert|emerg)\]' "$APACHE_DIR/logs/error.log"; then
    echo "--- apache2 error log: warnings and errors (last 20)"
    grep -E ':(warn|error|crit|alert|emerg)\]' "$APACHE_DIR/logs/error.log" | tail -n 20
fi

# ----------------------------------------------------------------- report
WS_VERSION=$(node -p "require('$BENCH/node_modules/ws/package.json').version")
# Median of one figure over the rounds (empty if a round has no figure).
median() {
    local name=$1 key=$2 r vals=()
    for r in $(seq "$ROUNDS"); do
        [[ -n ${RES[$name.$r.$key]:-} ]] || return 0
        vals+=("${RES[$name.$r.$key]}")
    done
    printf '%s\n' "${vals[@]}" | sort -g | awk '{v[NR] = $1} END {
        printf "%.1f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
total() {  # total NAME KEY: sum over the rounds that have it (empty if none)
    local r t=""
    for r in $(seq "$ROUNDS"); do
        [[ -z ${RES[$1.$r.$2]:-} ]] || t=$((${t:-0} + RES[$1.$r.$2]))
    done
    echo "$t"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-";
                                            else printf "%.2fx", a / b }'; }
FMT='%-24s %10s %9s %9s %7s %8s %8s %8s\n'
line() {  # line LABEL NAME ROUND|median
    local k=$3 v=() key
    for key in msgs_per_sec p50_us p99_us errors server_cpu client_cpu_pct other_cpu; do
        if [[ $k == median ]]; then
            [[ $key == errors ]] && v+=("$(total "$2" errors)") || v+=("$(median "$2" "$key")")
        else
            v+=("${RES[$2.$k.$key]:-}")
        fi
    done
    printf "$FMT" "$1" "${v[0]:--}" "${v[1]:--}" "${v[2]:--}" "${v[3]:--}" "${v[4]:--}" \
        "${v[5]:--}" "${v[6]:--}"
}

say "results: $SIZE-byte $( ((TEXT)) && echo text || echo binary) messages," \
    "$CONNS connections, ${WARMUP}s warm-up + ${DURATION}s, $ROUNDS round(s)," \
    "wsbench threads $THREADS, $( ((PIN)) && echo "pinned (servers: CPU $LAST)" || echo unpinned)"
echo "$(date -u +%Y-%m-%d); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- \
    | sed 's/^ //'), $(nproc) cores; kernel $(uname -r);" \
    "$(/usr/sbin/apache2 -v | sed -n 's/^Server version: //p'); node $(node -v); ws $WS_VERSION"
printf "$FMT" server msgs/s "p50 us" "p99 us" errors "srv CPU%" "cli CPU%" "oth CPU%"
for r in $(seq "$ROUNDS"); do
    line "mod_wsock, round $r" mod_wsock "$r"
    line "Node ws, round $r" node "$r"
done
line "mod_wsock (median)" mod_wsock median
line "Node ws (median)" node median
W_RATE=$(median mod_wsock msgs_per_sec) N_RATE=$(median node msgs_per_sec)
W_P50=$(median mod_wsock p50_us) N_P50=$(median node p50_us)
W_P99=$(median mod_wsock p99_us) N_P99=$(median node p99_us)
printf "$FMT" "ratio mod_wsock/Node" "$(ratio "$W_RATE" "$N_RATE")" \
    "$(ratio "$W_P50" "$N_P50")" "$(ratio "$W_P99" "$N_P99")" "" "" "" ""
echo "msgs/s: higher is better; p50/p99 round-trip: lower is better.  CPU% is of one"
echo "core over the whole run: server, wsbench, and all other work on the machine."
echo "TABLE conns=$CONNS size=$SIZE duration=$DURATION warmup=$WARMUP rounds=$ROUNDS pin=$PIN" \
     "wsock_msgs_per_sec=$W_RATE wsock_p50_us=$W_P50 wsock_p99_us=$W_P99" \
     "node_msgs_per_sec=$N_RATE node_p50_us=$N_P50 node_p99_us=$N_P99" \
     "ratio_msgs_per_sec=$(ratio "$W_RATE" "$N_RATE")"
exit $FAILED
