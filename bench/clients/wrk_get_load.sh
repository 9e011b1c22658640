#!/usr/bin/env bash
# wrk: BENCH_CONNS keep-alive connections on one thread for BENCH_SECONDS;
# its own count and duration (it does not check bodies). Prints requests,
# seconds, cpu_seconds and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
wrk_run
