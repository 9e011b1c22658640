#!/usr/bin/env bash
# curl: one POST of BENCH_FILE to bench/upload_server.py, streamed (-T; it
# sends Expect: 100-continue, answered at once), whose answer must be the
# file's size. Its time is curl's time_total. Prints requests, seconds,
# bytes, cpu_seconds and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
need curl
size=$(stat -c %s "$BENCH_FILE")
measure curl -sS -X POST -T "$BENCH_FILE" -H 'Content-Type: application/octet-stream' \
  -w '\n%{http_code} %{time_total}\n' "$BENCH_URL" > "$OUT/answer"
read -r answer < "$OUT/answer"
read -r status seconds < <(tail -n 1 "$OUT/answer")
[ "$answer $status" = "received=$size 200" ] || fail "curl: '$answer $status', expected 'received=$size 200'"
json requests=1 seconds="$seconds" bytes="$size"
