#!/usr/bin/env bash
# curl -Z: W14's URL list (BENCH_FILE) in one curl process, BENCH_CONNS
# transfers at a time (--parallel --parallel-max), each limited to
# BENCH_TIMEOUT seconds (-m). curl 7.88 has no --url @file: the URLs go in a
# -K config, each with its own output = /dev/null. One outcome line per URL
# to BENCH_OUTCOMES. Its time is the process's wall time. Prints requests,
# seconds, cpu_seconds and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
need curl
awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' "$BENCH_FILE" > "$OUT/config"
measure curl -s --parallel --parallel-max "$BENCH_CONNS" -m "$BENCH_TIMEOUT" \
  -w '%{url} %{http_code} %{exitcode}\n' -K "$OUT/config" > "$OUT/transfers" || true
curl_outcomes < "$OUT/transfers" > "$BENCH_OUTCOMES"
json requests="$(wc -l < "$BENCH_FILE")" seconds="$ELAPSED"
