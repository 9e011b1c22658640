#!/usr/bin/env bash
# h2load (the nghttp2 project's load tool, the anchor of the HTTP/2 rows):
# BENCH_REQUESTS GETs as BENCH_CONNS streams in flight on one thread, on
# the connections the server's limit of 100 streams a connection needs
# (-c connections, -m streams each). It checks statuses, not bodies, and
# verifies no certificate. Prints requests, seconds, cpu_seconds and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
need h2load nghttp2-client
conns=$(( (BENCH_CONNS + 99) / 100 ))
measure h2load -t 1 -c "$conns" -m $(( BENCH_CONNS / conns )) -n "$BENCH_REQUESTS" "$BENCH_URL" > "$OUT/h2load"
# "finished in 1.23s, 81234.56 req/s, ..." (or 42.87ms, or 900us) and
# "requests: N total, N started, N done, N succeeded, ..."
seconds=$(awk '/^finished in/ {
  v = $3; sub(/,$/, "", v); u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
  print v / (u == "ms" ? 1e3 : u == "us" ? 1e6 : 1) }' "$OUT/h2load")
ok=$(awk '/^requests:/ { print $8 }' "$OUT/h2load")
[ "$ok" = "$BENCH_REQUESTS" ] || fail "h2load: $ok of $BENCH_REQUESTS requests succeeded: $(grep -m1 '^requests:' "$OUT/h2load")"
grep -q "^status codes: $BENCH_REQUESTS 2xx" "$OUT/h2load" || fail "h2load: $(grep -m1 '^status codes:' "$OUT/h2load")"
json requests="$BENCH_REQUESTS" seconds="$seconds"
