#!/usr/bin/env bash
# xargs -P + curl, as many shell users check a list: W14's URL list
# (BENCH_FILE) through `xargs -P BENCH_CONNS -n 1 curl -m BENCH_TIMEOUT`, a
# curl process per URL. One outcome line per URL to BENCH_OUTCOMES. Its time
# is xargs's wall time; its CPU includes every curl (xargs waits for them),
# its peak RSS is the largest single process's (GNU time), not the sum of
# the BENCH_CONNS curls alive at once. Prints requests, seconds, cpu_seconds
# and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
need curl; need xargs findutils
# xargs exits 123 when some curl did (a timeout, a refused port): those are outcomes
measure xargs -P "$BENCH_CONNS" -n 1 -a "$BENCH_FILE" curl -s -o /dev/null -m "$BENCH_TIMEOUT" \
  -w '%{url} %{http_code} %{exitcode}\n' > "$OUT/transfers" || true
curl_outcomes < "$OUT/transfers" > "$BENCH_OUTCOMES"
json requests="$(wc -l < "$BENCH_FILE")" seconds="$ELAPSED"
