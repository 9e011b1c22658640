#!/usr/bin/env bash
# aiohttp: start, one GET (aiohttp_get_once.py), exit; hyperfine's median
# over BENCH_REQUESTS runs.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
start_once "$BENCH_PYTHON" "$(dirname "$0")/aiohttp_get_once.py"
