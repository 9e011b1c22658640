# shellcheck shell=bash
# What the shell adapters (bench/clients/*.sh) share; each sources it first.
# They wrap a command-line client: they time it themselves (GNU time) and
# report its CPU and peak RSS, so that the shell and the checks around it do
# not count.
set -euo pipefail
OUT=$(mktemp -d "${TMPDIR:-/tmp}/lurl-adapter.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

fail() { echo "$*" >&2; exit 1; }
# exit status 77: this client cannot run here; scripts/bench reports it missing
need() { command -v "$1" >/dev/null || { echo "$1 not installed (Debian package ${2:-$1})" >&2; exit 77; }; }

need jq

# measure CMD...: runs CMD under GNU time (its stdout is the caller's); sets
# ELAPSED (s), CPU (user + system, s) and RSS_KB (peak)
measure() {
  local st=0 user sys
  /usr/bin/time -f '%e %U %S %M' -o "$OUT/time" "$@" || st=$?
  read -r ELAPSED user sys RSS_KB < <(tail -n 1 "$OUT/time")
  CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.4f", u + s }')
  return "$st"
}

# json NAME=NUMBER...: the adapter's line, with the CPU and peak RSS measured
json() {
  local args=(--argjson cpu_seconds "$CPU" --argjson rss_kb "$RSS_KB") kv
  for kv in "$@"; do args+=(--argjson "${kv%%=*}" "${kv#*=}"); done
  jq -nc '$ARGS.named' "${args[@]}"
}

# BENCH_URL as a curl URL glob of BENCH_REQUESTS transfers, numbered in a
# query parameter that nginx ignores
url_glob() {
  case $BENCH_URL in *\?*) echo "$BENCH_URL&i=[1-$BENCH_REQUESTS]" ;; *) echo "$BENCH_URL?[1-$BENCH_REQUESTS]" ;; esac
}

# curl_parallel CURL_ARG...: BENCH_REQUESTS GETs, BENCH_CONNS at a time
# (curl --parallel), through BENCH_PROXY when it is set (-x), bodies to
# /dev/null; one line per transfer in $OUT/transfers: "status size
# connections-opened"
curl_parallel() {
  need curl
  curl --help all | grep -q -- --parallel-max || { echo "curl $(curl --version | head -n 1 | cut -d' ' -f2) has no --parallel" >&2; exit 77; }
  measure curl -sS --parallel --parallel-max "$BENCH_CONNS" ${BENCH_CAFILE:+--cacert "$BENCH_CAFILE"} \
    ${BENCH_PROXY:+-x "$BENCH_PROXY"} \
    -o /dev/null -w '%{http_code} %{size_download} %{num_connects}\n' "$@" "$(url_glob)" > "$OUT/transfers"
}

# wrk_run WRK_ARG...: wrk with BENCH_CONNS connections for BENCH_SECONDS on
# BENCH_URL; wrk_done.lua gives its count, duration and errors
wrk_run() {
  need wrk
  measure wrk -t1 -c"$BENCH_CONNS" -d"${BENCH_SECONDS}s" -s "$(dirname "${BASH_SOURCE[0]}")/wrk_done.lua" \
    "$@" "$BENCH_URL" > "$OUT/wrk"
  tail -n 1 "$OUT/wrk" | jq -c --argjson cpu_seconds "$CPU" --argjson rss_kb "$RSS_KB" \
    'if .errors == 0 then del(.errors) + $ARGS.named else error("wrk: \(.errors) errors") end'
}

# start_once CMD...: CMD is one process that makes one GET and exits 0 when
# the response was right. One run under GNU time checks it and gives its
# peak RSS; hyperfine then runs it BENCH_REQUESTS times after 3 warm-ups.
# Prints the median time and the mean CPU of a run.
start_once() {
  need hyperfine
  measure "$@" > /dev/null
  # hyperfine -N splits the command line itself, as a POSIX shell would
  hyperfine -N --warmup 3 --runs "$BENCH_REQUESTS" --export-json "$OUT/hyperfine.json" "$(printf '%q ' "$@")" > /dev/null
  jq -c --argjson rss_kb "$RSS_KB" \
    '.results[0] | {requests: 1, seconds: .median, cpu_seconds: (.user + .system), rss_kb: $rss_kb}' "$OUT/hyperfine.json"
}

# curl_outcomes: W14's outcome lines ("URL OUTCOME", bench/urllist.py) from
# curl's -w '%{url} %{http_code} %{exitcode}' lines on stdin: the status,
# or from the exit code a timeout (28) or a refused connection (7)
curl_outcomes() {
  awk '$3 == 0 { print $1, $2; next }
       $3 == 28 { print $1, "timeout"; next }
       $3 == 7 { print $1, "refused"; next }
       { print $1, "error:curl-exit-" $3 }'
}
