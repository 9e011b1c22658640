#!/usr/bin/env bash
# lurl: start, one GET of BENCH_URL with lurl.get, status and body length
# checked, exit; hyperfine's median over BENCH_REQUESTS runs.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
start_once "$BENCH_LURL" -e \
  "local r = assert(require('lurl').get('$BENCH_URL')); assert(r.status == 200 and #r:read() == $BENCH_BYTES)"
