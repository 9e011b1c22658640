-- W4: memory per open connection. Opens CONNS keep-alive connections at once
-- (CONNS concurrent tasks, one GET each, on one session whose pool has room for
-- all of them), then, while they sit idle-but-open in the pool, compares VmRSS
-- with the figure from before the first connection.
--   lurl bench/w4_lurl.lua URL [CONNS] [BODY_LEN]
-- Prints "conns=N rss_before=B rss_after=A bytes_per_conn=X lua_heap_per_conn=H
-- fds=F idle=I open_seconds=S" (H: the part of X that is Lua heap, after a full GC).
-- Needs ulimit -n above CONNS (scripts/bench raises it).
local lurl = require "lurl"
local core = require "lurl.core"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "lib.lua")

local URL = assert(arg[1], "usage: w4_lurl.lua URL [CONNS] [BODY_LEN]")
local CONNS = tonumber(arg[2]) or 10000
local LEN = tonumber(arg[3]) or 1024

-- The pool must hold CONNS connections: limit = 0 means "no limit"
-- (aiohttp's convention). The idle count printed at the end proves it did.
local session = lurl.session { connector = lurl.connector { limit = 0, keepalive_timeout = 600 },
  timeout = lurl.timeout { total = 120, sock_connect = 60 } }

-- Warm up the code paths (and the JIT) on one connection, then close it, so
-- "before" holds everything but the connections themselves.
do
  local warm = lurl.session()
  for _ = 1, 20 do
    local r = assert(warm:get(URL))
    assert(r.status == 200 and #r:read() == LEN)
  end
  warm:close()
  lurl.sleep(0.05)
end
collectgarbage("collect")
collectgarbage("collect")
local fds_before = core.open_fds()
local before, heap_before = lib.vmrss(), collectgarbage("count") * 1024

-- The tasks only start running once the main task waits in join(), all
-- before any response arrives, so the pool is empty when each asks and each
-- opens its own connection (idle= in the output confirms it).
local t0 = lurl.now()
local tasks, failures = {}, 0
for t = 1, CONNS do
  tasks[t] = lurl.spawn(function()
    local resp, err = session:get(URL)
    if not resp then return nil, tostring(err) end
    local body = resp:read()
    if resp.status ~= 200 or #body ~= LEN then return nil, "bad response " .. tostring(resp.status) end
    return true
  end)
end
local first_err
for _, task in ipairs(tasks) do
  local okj, err = task:join()
  if not okj then failures = failures + 1; first_err = first_err or err end
end
local opened = lurl.now() - t0
tasks = nil
collectgarbage("collect")
collectgarbage("collect")
local after, heap_after = lib.vmrss(), collectgarbage("count") * 1024
local fds = core.open_fds() - fds_before
local stats = session.connector:stats()
session:close()
if failures > 0 then
  io.stderr:write(("w4: %d of %d requests failed, first: %s\n"):format(failures, CONNS, tostring(first_err)))
  os.exit(1)
end
if stats.idle ~= CONNS or fds < CONNS then
  io.stderr:write(("w4: wanted %d open connections, the pool had %d idle and %d new descriptors were open\n")
    :format(CONNS, stats.idle, fds))
  os.exit(1)
end
print(("conns=%d rss_before=%d rss_after=%d bytes_per_conn=%.0f lua_heap_per_conn=%.0f fds=%d idle=%d open_seconds=%.3f")
  :format(CONNS, before, after, (after - before) / CONNS, (heap_after - heap_before) / CONNS, fds, stats.idle, opened))
