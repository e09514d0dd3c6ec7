#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang -fsanitize=fuzzer,address,undefined)
# and runs each for FUZZ_SECONDS seconds (default 30; 0 = only replay the
# seed corpus).  Fails on a crash, a sanitizer report, a timeout or a
# broken invariant; the input that did it is kept in fuzz/build/artifacts/
# (turn it into a Check regression test).  New inputs the fuzzer finds are
# kept in fuzz/build/corpus/, apart from the committed seeds in fuzz/corpus/.
#   fuzz/run.sh                      every harness
#   FUZZ_SECONDS=300 fuzz/run.sh handshake
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
cc=${FUZZ_CC:-clang}
out=fuzz/build
flags=(-std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -Wall -Wextra -Werror)

if ! command -v "$cc" >/dev/null; then
    echo "fuzz/run.sh: $cc not found: run scripts/install-deps.sh --fuzz" >&2
    exit 1
fi
mkdir -p "$out/artifacts"

build() {
    local name=$1
    case "$name" in
    frame_parser)
        "$cc" "${flags[@]}" -Isrc/codec fuzz/fuzz_frame_parser.c src/codec/wsock_*.c -lz \
            -o "$out/fuzz_frame_parser" ;;
    inflate)
        "$cc" "${flags[@]}" -Isrc/codec fuzz/fuzz_inflate.c src/codec/wsock_deflate.c -lz \
            -o "$out/fuzz_inflate" ;;
    handshake)
        # shellcheck disable=SC2046 # the config tools print several words
        "$cc" "${flags[@]}" -Isrc/handshake $(apr-1-config --includes --cppflags) \
            $(apu-1-config --includes) fuzz/fuzz_handshake.c src/handshake/wsock_handshake.c \
            $(apu-1-config --link-ld) $(apr-1-config --link-ld) -o "$out/fuzz_handshake" ;;
    pmd)
        "$cc" "${flags[@]}" -Isrc/handshake fuzz/fuzz_pmd.c src/handshake/wsock_pmd.c \
            -o "$out/fuzz_pmd" ;;
    *)
        echo "fuzz/run.sh: no harness '$name' (frame_parser, handshake, pmd, inflate)" >&2
        return 2 ;;
    esac
}

run() {
    local name=$1 log="$out/$1.log" opts
    mkdir -p "$out/corpus/$name"
    if ((seconds > 0)); then
        opts=(-max_total_time="$seconds")
    else
        opts=(-runs=0)
    fi
    echo "fuzz: $name for ${seconds}s"
    if ! "$out/fuzz_$name" "${opts[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$out/artifacts/$name-" \
            "$out/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz: $name FAILED; input kept in $out/artifacts/, log in $log" >&2
        return 1
    fi
    grep -E "^stat::number_of_executed_units" "$log" | sed "s/^/fuzz: $name /"
}

status=0
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(frame_parser handshake pmd inflate)
for h in "${harnesses[@]}"; do
    build "$h" && run "$h" || status=1
done
exit $status
