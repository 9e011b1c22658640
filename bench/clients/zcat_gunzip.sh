#!/usr/bin/env bash
# zcat: `zcat BENCH_FILE > /dev/null` on nginx's .gz file, no network; gzip
# checks the trailer's CRC-32 and length, so exit status 0 means all of it
# decoded. Its time is the process's wall time. Prints requests, seconds,
# bytes (BENCH_BYTES, decoded), cpu_seconds and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
need zcat gzip
measure zcat -- "$BENCH_FILE" > /dev/null
json requests=1 seconds="$ELAPSED" bytes="$BENCH_BYTES"
