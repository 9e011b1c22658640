#!/usr/bin/env bash
# curl: start, one GET of BENCH_URL (-f: an error status fails it), exit;
# hyperfine's median over BENCH_REQUESTS runs.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
need curl
start_once curl -sf -o /dev/null "$BENCH_URL"
