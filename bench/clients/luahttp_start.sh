#!/usr/bin/env bash
# lua-http: start, one GET (luahttp_get_once.lua), exit; hyperfine's median
# over BENCH_REQUESTS runs.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
start_once "$BENCH_LUAHTTP" "$(dirname "$0")/luahttp_get_once.lua"
