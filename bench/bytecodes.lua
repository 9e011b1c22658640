-- Lua VM instructions per request of a lurl client adapter: a count that,
-- unlike wall time, barely moves between runs, so that two builds can be
-- compared on a noisy machine (A/B of the hot path).
--
--   BENCH_URL=http://127.0.0.1:PORT/1k BENCH_REQUESTS=20000 BENCH_CONNS=64 \
--   BENCH_BYTES=1024 lurl bench/bytecodes.lua bench/clients/lurl_get_load.lua
--
-- The JIT is off while it counts (a compiled trace runs no hook), so the
-- figure is the interpreter's work; LuaJIT's hooks are global, so every
-- task's coroutine is counted. Prints the adapter's own line, then the
-- count on stderr.
local script = assert(arg[1], "usage: lurl bench/bytecodes.lua CLIENT.lua")
local requests = assert(tonumber(os.getenv("BENCH_REQUESTS")), "BENCH_REQUESTS is not set")
local STEP = 100

jit.off()
local n = 0
arg[0] = script -- luacheck: ignore 122 (the adapter finds bench/lib.lua from it)
local main = assert(loadfile(script))
debug.sethook(function() n = n + 1 end, "", STEP)
main()
debug.sethook()
io.stderr:write(("bytecodes/request: %.0f\n"):format(n * STEP / requests))
