# lib.sh — what the benchmark scripts (run.sh, fanout.sh, idle.sh) share:
# installing what is missing, starting and stopping the servers, measuring
# CPU, running a load generator, medians and the report lines.
# Sourced, not run.  Callers set PROG (their name, for messages) first.
# shellcheck shell=bash disable=SC2034,SC2317  # variables used by callers; cleanup from trap

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
HARNESS=(/usr/bin/python3 "$REPO/tests/harness/apache_instance.py")

say() { printf '\n== %s\n' "$*"; }
die() { echo "$PROG: $*" >&2; exit 1; }

# check_numbers VAR...: each must hold a non-negative integer.
check_numbers() {
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$PROG: $v must be a number" >&2; exit 2; }
    done
}

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

# setup TOOL...: the packages, the module (built only if missing), `ws`, and
# the named load generators / servers of bench/Makefile.
setup() {
    # apache2-bin: the server and its modules, without a system service on :80.
    apt_install_missing build-essential libssl-dev apache2-bin python3 procps
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
    make -s -C "$BENCH" "$@"
}

# With PIN=1 each server gets exactly one core, SRV_CPU_ID (PIN_CPU, else
# the last CPU), and the load generator all the others, so neither server
# can borrow the load generator's CPU: a per-core comparison.  Without it
# the scheduler shares all cores among everything.
set_pinning() {
    SRV_CPU=() CLI_CPU=()
    if ((${PIN:-0})); then
        local n c others=()
        n=$(nproc)
        ((n >= 2)) || die "pinning needs at least 2 CPUs"
        SRV_CPU_ID=${PIN_CPU:-$((n - 1))}
        if ! [[ $SRV_CPU_ID =~ ^[0-9]+$ ]] || ((SRV_CPU_ID >= n)); then
            die "PIN_CPU must be a CPU number below $n"
        fi
        for ((c = 0; c < n; c++)); do
            ((c == SRV_CPU_ID)) || others+=("$c")
        done
        SRV_CPU=(taskset -c "$SRV_CPU_ID")
        CLI_CPU=(taskset -c "$(IFS=,; echo "${others[*]}")")
    fi
}

# ------------------------------------------------------------- lifecycle
WORK=$(mktemp -d "/tmp/wsock-$PROG.XXXXXX")
chmod 755 "$WORK"              # apache's children (www-data) reopen mutex files here
APACHE_DIRS=() SERVER_PIDS=() CLIENT_PID="" FAILED=0
declare -A PORT PID            # PORT[name], PID[name] of each started server

cleanup() {
    local d p
    if [[ -n $CLIENT_PID ]]; then
        kill "$CLIENT_PID" 2>/dev/null || true    # timeout passes it on to the client
        wait "$CLIENT_PID" 2>/dev/null || true
    fi
    for d in "${APACHE_DIRS[@]}"; do
        [[ -f $d/harness.json ]] && "${HARNESS[@]}" stop --dir "$d" >/dev/null 2>&1
    done
    for p in "${SERVER_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_apache NAME CONF_TEXT: apache2 (event MPM) from the harness with
# CONF_TEXT appended (after the harness's own sizing, so its values win);
# sets PORT[NAME] and PID[NAME].  LogLevel warn: nothing per connection.
# Returns 1 (and says so) if it does not start.
start_apache() {
    local name=$1 dir=$WORK/apache-$1
    printf '%s\n' "$2" >"$WORK/$name.conf"
    say "starting $name: apache2 (event MPM) with $WSOCK_MODULE"
    APACHE_DIRS+=("$dir")
    if PORT[$name]=$("${SRV_CPU[@]}" "${HARNESS[@]}" start --mpm event \
            --conf "$WORK/$name.conf" --dir "$dir" --loglevel warn); then
        PID[$name]=$(/usr/bin/python3 -c \
            'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$dir/harness.json")
        return 0
    fi
    echo "$PROG: $name did not start"
    FAILED=1 PORT[$name]=""
    return 1
}

# proxy_echo_conf PORT: what Apache sites do today, for an apache2 of
# start_apache: /echo tunnelled by mod_proxy_http (since 2.4.47 it does the
# tunnelling for ws:// URLs; mod_proxy_wstunnel loaded as sites have it) to
# the Node `ws` server on PORT.  mod_wsock is loaded too (the harness always
# loads it) but serves no location: it only starts its idle loop threads.
proxy_echo_conf() {
    local m=/usr/lib/apache2/modules
    echo "LoadModule proxy_module $m/mod_proxy.so
LoadModule proxy_http_module $m/mod_proxy_http.so
LoadModule proxy_wstunnel_module $m/mod_proxy_wstunnel.so
<Location /echo>
    ProxyPass ws://127.0.0.1:$1/echo
</Location>"
}

# tunnel_sizing CHILDREN: apache2's event MPM with CHILDREN children, all
# started up front so no child is spawned during a run, with 64 threads
# each, or more if CONNS needs them (a driver that keeps a thread per
# WebSocket, and the proxy, which keeps one per tunnel unless it can go
# asynchronous, must not run out; 32 spare for the harness's probe and
# slack).  run.sh's and backend.sh's servers.
tunnel_sizing() {
    local tpc=$(( (CONNS + 32 + $1 - 1) / $1 ))
    ((tpc >= 64)) || tpc=64
    echo "ServerLimit $1
StartServers $1
ThreadLimit $tpc
ThreadsPerChild $tpc
MinSpareThreads 16
MaxSpareThreads $(($1 * tpc))
MaxRequestWorkers $(($1 * tpc))"
}

# many_websockets_sizing CHILDREN: event MPM settings for thousands of
# WebSockets: CHILDREN children, all started up front, of 25 threads each
# (the default ThreadsPerChild).  The WebSockets live on mod_wsock's loop
# threads, not on workers, and AsyncRequestWorkerFactor 400 lets each child
# hold ~10,000 of them (docs/directives.md, WSockDriver).
many_websockets_sizing() {
    echo "ServerLimit $1
StartServers $1
ThreadLimit 25
ThreadsPerChild 25
MinSpareThreads 5
MaxSpareThreads $((25 * $1))
MaxRequestWorkers $((25 * $1))
AsyncRequestWorkerFactor 400"
}

# ------------------------------------------------------------ compression
# The compressed variants of the servers the benchmarks compare
# (compression.sh; README "Compression").  A name with "_z" compresses, and
# its clients offer permessage-deflate as Chromium does ("-z chromium") and
# compress what they send from ZMIN bytes on (default 0: every message, as
# browsers do):
#   mod_wsock_z   WSockCompression on (the defaults: level 1, threshold 128,
#                 no context takeover either way)
#   mod_wsock_z6  the same at level=6 (zlib's default, Node's)
#   mod_wsock_zc  client_no_context_takeover=off (clients keep their context)
#   mod_wsock_zs  server_no_context_takeover=off (one context per connection)
#   node_z        Node ws with perMessageDeflate as ws ships it (node/serve.js)
#   node_zm       Node ws with mod_wsock's defaults (node/serve.js)
ZMIN=${ZMIN:-0}
is_compressed() { [[ $1 == *_z* ]]; }

# compression_conf NAME: the WSockCompression line of mod_wsock variant NAME.
compression_conf() {
    case $1 in
    *_z) echo "WSockCompression on" ;;
    *_z6) echo "WSockCompression on level=6" ;;
    *_zc) echo "WSockCompression on client_no_context_takeover=off" ;;
    *_zs) echo "WSockCompression on server_no_context_takeover=off" ;;
    *_z*) die "unknown compressed variant '$1'" ;;
    *) echo "WSockCompression off" ;;
    esac
}

# node_deflate NAME: node/serve.js's option for Node variant NAME (none: no
# compression).
node_deflate() {
    case $1 in
    *_zm) echo "--deflate=mod_wsock" ;;
    *_z) echo "--deflate=ws" ;;
    esac
}

# pmd_client_args NAME: what a bench client adds against server NAME.
pmd_client_args() {
    if is_compressed "$1"; then
        echo "-z chromium -Z $ZMIN"
    fi
}

# start_server NAME CMD...: a server that takes its port as last argument (0 =
# any) and prints "listening PORT" when it accepts; sets PORT[NAME], PID[NAME].
start_server() {
    local name=$1 out=$WORK/$1.out _
    shift
    say "starting $name: $*"
    "${SRV_CPU[@]}" "$@" 0 >"$out" 2>&1 &
    PID[$name]=$!
    SERVER_PIDS+=("${PID[$name]}")
    for _ in $(seq 100); do          # up to 10 s for "listening PORT"
        grep -q '^listening ' "$out" && break
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    PORT[$name]=$(awk '/^listening /{print $2; f=1} END{exit !f}' "$out") \
        || die "$name did not start: $(cat "$out")"
}

# apache_log_check NAME: crashes fail the run; warnings are shown.
apache_log_check() {
    local log=$WORK/apache-$1/logs/error.log
    [[ -n ${PORT[$1]:-} && -f $log ]] || return 0
    if grep -E 'exit signal|AH00052|Segmentation' "$log"; then
        FAILED=1
        echo "$PROG: $1: apache2 children crashed (see above)"
    fi
    if grep -qE ':(warn|error|crit|alert|emerg)\]' "$log"; then
        echo "--- $1: apache2 error log, warnings and errors (last 20)"
        grep -E ':(warn|error|crit|alert|emerg)\]' "$log" | tail -n 20
    fi
}

# --------------------------------------------------------------- measure
# The processes of the servers whose pids are in $1 (space-separated): each
# process and every process of its group (apache runs in its own session, so
# its group is the whole server).
server_pids() {
    local f s a p
    for f in /proc/[0-9]*/stat; do
        read -r s 2>/dev/null <"$f" || continue    # the process may be gone
        read -r -a a <<<"${s##*) }"                 # after "(comm) ": state ppid pgrp ...
        for p in $1; do
            if [[ ${f:6:-5} == "$p" || ${a[2]} == "$p" ]]; then
                echo "${f:6:-5}"
                break
            fi
        done
    done
}

# CPU ticks used so far by the servers $1 (all their processes).
cpu_ticks() {
    local p s a t=0
    for p in $(server_pids "$1"); do
        read -r s 2>/dev/null <"/proc/$p/stat" || continue
        read -r -a a <<<"${s##*) }"
        t=$((t + a[11] + a[12]))                    # utime + stime
    done
    echo "$t"
}

# server_mem PIDS: "PSS_KiB THREADS" of the servers' process trees, summed
# over all their processes, with each page shared by n processes counted
# 1/n in each (Pss in /proc/PID/smaps_rollup): summed RSS would count the
# shared libraries and the scoreboard once per child, which with hundreds
# of children is most of it.
server_mem() {
    local p r=0 th=0 k v
    for p in $(server_pids "$1"); do
        while read -r k v _; do
            [[ $k == Pss: ]] && r=$((r + v))
        done <"/proc/$p/smaps_rollup" 2>/dev/null || true
        while read -r k v _; do
            [[ $k == Threads: ]] && th=$((th + v))
        done <"/proc/$p/status" 2>/dev/null || true
    done
    echo "$r $th"
}

# Busy ticks of the whole machine (all CPUs): user nice system irq softirq steal.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

TICK=$(getconf CLK_TCK)
declare -A RES               # RES[name.round.key] = value from the client's RESULT line

# run_client NAME ROUND "SERVER_PID..." TIMEOUT CMD...: one load-generator run; its
# RESULT figures go to RES, plus the server's CPU and the CPU everything else
# used meanwhile (a run disturbed by other work on the machine shows up
# there).  The client must print client_cpu_pct (of one core, whole run).
run_client() {
    local name=$1 r=$2 pid=$3 tmo=$4 out rc=0 t0 t1 c0 c1 b0 b1 kv kvs srv oth
    shift 4
    say "round $r, $name: ${1##*/} ${*:2}"
    c0=$(cpu_ticks "$pid") b0=$(busy_ticks) t0=$(date +%s%N)
    # In the background + wait, so that a SIGTERM to this script runs the
    # cleanup at once instead of after the client ends.
    "${CLI_CPU[@]}" timeout "$tmo" "$@" >"$WORK/client.out" 2>&1 &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID="" out=$(<"$WORK/client.out")
    t1=$(date +%s%N) b1=$(busy_ticks) c1=$(cpu_ticks "$pid")
    printf '%s\n' "$out"
    read -r -a kvs <<<"$(grep '^RESULT ' <<<"$out" | cut -d' ' -f2-)"
    for kv in "${kvs[@]}"; do
        RES[$name.$r.${kv%%=*}]=${kv#*=}
    done
    if [[ -z ${RES[$name.$r.errors]:-} ]]; then
        RES[$name.$r.errors]=1   # no RESULT line: the client died or timed out
    fi
    read -r srv oth < <(awk -v c=$((c1 - c0)) \
        -v b=$((b1 - b0)) -v hz="$TICK" -v s="$(((t1 - t0) / 1000000))" \
        -v cl="${RES[$name.$r.client_cpu_pct]:-0}" 'BEGIN {
            srv = 100 * c / hz / (s / 1000); all = 100 * b / hz / (s / 1000)
            oth = all - srv - cl; printf "%.0f %.0f\n", srv, oth < 0 ? 0 : oth }')
    RES[$name.$r.server_cpu]=$srv RES[$name.$r.other_cpu]=$oth
    RES[$name.$r.server_cpu_s]=$(awk -v c=$((c1 - c0)) -v hz="$TICK" 'BEGIN { printf "%.2f", c / hz }')
    RES[$name.$r.rc]=$rc
    if ((rc != 0)); then
        FAILED=1
        echo "$PROG: the client against $name exited with $rc"
    fi
}

# ----------------------------------------------------------------- report
# Median of one figure over rounds 1..ROUNDS (empty if a round has no figure).
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

# report_line FMT LABEL NAME ROUND|median KEY...: one table row; for the
# median row "errors" is the total over the rounds.
report_line() {
    local fmt=$1 label=$2 name=$3 k=$4 key v=()
    shift 4
    for key in "$@"; do
        if [[ $k != median ]]; then
            v+=("${RES[$name.$k.$key]:--}")
        elif [[ $key == errors ]]; then
            v+=("$(total "$name" errors)")
        else
            v+=("$(median "$name" "$key")")
        fi
    done
    # shellcheck disable=SC2059  # the format is the caller's
    printf "$fmt" "$label" "${v[@]}"
}

# report_rounds FMT LABEL_FN "NAME..." KEY...: the row of every round of
# every server NAME, labelled "$(LABEL_FN NAME), round R".
report_rounds() {
    local fmt=$1 label_fn=$2 names=$3 r name
    shift 3
    for r in $(seq "$ROUNDS"); do
        for name in $names; do
            report_line "$fmt" "$("$label_fn" "$name"), round $r" "$name" "$r" "$@"
        done
    done
}

# The conditions of the run, for the README table.
machine_line() {
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); CPU: $(grep -m1 'model name' /proc/cpuinfo \
        | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; kernel $(uname -r);" \
        "$(/usr/sbin/apache2 -v | sed -n 's/^Server version: //p'); node $(node -v);" \
        "ws $(node -p "require('$BENCH/node_modules/ws/package.json').version")"
    echo "load (uptime) before the run: $LOAD_BEFORE; at the end: $(uptime \
        | sed 's/.*load average: //')"
}
LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
