#!/usr/bin/env bash
# curl: one GET of a gzip-encoded body with --compressed, decoded to
# /dev/null (zlib checks the gzip trailer's CRC-32 and length, a bad one
# fails curl); status, Content-Encoding and the bytes on the wire (those of
# BENCH_FILE, nginx's .gz) checked. Its time is curl's time_total. Prints
# requests, seconds, bytes (BENCH_BYTES, decoded), cpu_seconds and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
need curl
gz=$(stat -c %s "$BENCH_FILE")
measure curl -sS --compressed -o /dev/null \
  -w '%{http_code} %{size_download} %header{content-encoding} %{time_total}\n' "$BENCH_URL" > "$OUT/result"
read -r status size encoding seconds < "$OUT/result"
[ "$status $size $encoding" = "200 $gz gzip" ] || fail "curl: '$status $size $encoding', expected '200 $gz gzip'"
json requests=1 seconds="$seconds" bytes="$BENCH_BYTES"
