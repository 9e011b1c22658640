#!/usr/bin/env bash
# Machine instructions per request of a lurl client adapter, counted by
# valgrind's callgrind: unlike wall time (which moves by 10% or more between
# runs on a shared machine), the count moves by about 2%, so that two
# builds can be compared on a noisy machine (A/B of the hot path). It covers
# everything the process runs: Lua (the JIT's code too), LuaJIT's collector,
# libuv, llhttp, nghttp2, OpenSSL and the system calls' user-side part.
#
#   BENCH_URL=http://127.0.0.1:PORT/1k BENCH_REQUESTS=20000 BENCH_CONNS=64 \
#   BENCH_BYTES=1024 bench/instructions.sh build-release/lurl bench/clients/lurl_get_load.lua
#
# With CALLGRIND_OUT=file the profile is kept for callgrind_annotate (which
# functions, and with --tree=caller, which callers). A run is about 50 times
# slower than the same run without valgrind.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bench/instructions.sh LURL ADAPTER.lua (BENCH_* set as for the adapter)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "bench/instructions.sh: valgrind is not installed" >&2; exit 2; }
: "${BENCH_REQUESTS:?BENCH_REQUESTS is not set}"
out=${CALLGRIND_OUT:-/dev/null}
# LuaJIT writes the machine code it runs: valgrind must look for code
# changes outside the binary's own pages
log=$(valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$out" "$1" "$2" 2>&1 >/dev/null) || {
  echo "$log" >&2
  exit 1
}
refs=$(echo "$log" | sed -n 's/.*I *refs: *//p' | tr -d ,)
echo "instructions: $refs, per request: $((refs / BENCH_REQUESTS))"
