#!/usr/bin/env bash
# curl: as curl_get_load.sh, with "Connection: close" on every request (the
# server closes too); each transfer must have opened its own connection
# (num_connects 1).
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
curl_parallel -H 'Connection: close'
good=$(awk -v len="$BENCH_BYTES" '$1 == 200 && $2 == len && $3 == 1 { g++ } END { print g + 0 }' "$OUT/transfers")
[ "$good" = "$BENCH_REQUESTS" ] || fail "curl: $good of $BENCH_REQUESTS transfers were 200 with $BENCH_BYTES bytes on a new connection"
json requests="$BENCH_REQUESTS" seconds="$ELAPSED"
