#!/usr/bin/env bash
# curl: BENCH_REQUESTS GETs, BENCH_CONNS at a time (--parallel
# --parallel-max over a URL glob), through BENCH_PROXY when it is set (-x),
# each status and size (BENCH_BYTES) checked. With BENCH_HTTP2, --http2 (by
# ALPN) or --http2-prior-knowledge (h2c): curl multiplexes the transfers on
# the connections the server's stream limit allows. Its time is the
# process's wall time. Prints requests, seconds, cpu_seconds and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
h2=()
if [ "${BENCH_HTTP2:-}" = 1 ]; then
  case $BENCH_URL in https:*) h2=(--http2) ;; *) h2=(--http2-prior-knowledge) ;; esac
fi
curl_parallel "${h2[@]}"
good=$(awk -v len="$BENCH_BYTES" '$1 == 200 && $2 == len { g++ } END { print g + 0 }' "$OUT/transfers")
[ "$good" = "$BENCH_REQUESTS" ] || fail "curl: $good of $BENCH_REQUESTS transfers were 200 with $BENCH_BYTES bytes"
json requests="$BENCH_REQUESTS" seconds="$ELAPSED"
