-- lurl: memory per open connection. Opens BENCH_CONNS keep-alive connections
-- at once (BENCH_CONNS concurrent tasks, one GET each, on one session whose
-- pool has room for all of them), then, while they sit idle-but-open in the
-- pool, compares VmRSS with the figure from before the first connection.
-- Prints requests and conns (BENCH_CONNS), rss_before, rss_after,
-- bytes_per_conn, lua_heap_per_conn (the part of bytes_per_conn that is Lua
-- heap, after a full GC), fds, idle and seconds (opening them all). Needs
-- ulimit -n above BENCH_CONNS (scripts/bench raises it). With BENCH_HTTP2
-- (an h2c URL) the connections are HTTP/2 ones with prior knowledge; since
-- HTTP/2 shares one connection an origin, each task asks for its own host
-- name (c1.test, c2.test, ...), which the connector resolves to the URL's
-- address.
local lurl = require "lurl"
local core = require "lurl.core"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")

local p = lib.params()

-- The pool must hold every connection: limit = 0 means "no limit"
-- (aiohttp's convention). The idle count printed at the end proves it did.
local h2 = p.http2 and "prior_knowledge" or false
local host = p.url:match("^%a+://([^:/]+)")
local url_of = function() return p.url end
local resolver
if h2 then
  url_of = function(t) return (p.url:gsub("^(%a+://)[^:/]+", "%1c" .. t .. ".test")) end
  resolver = function() return { { ip = host, family = 4 } } end
end
local session = lurl.session { http2 = h2,
  connector = lurl.connector { limit = 0, keepalive_timeout = 600, resolver = resolver },
  timeout = lurl.timeout { total = 120, sock_connect = 60 } }

-- Warm up the code paths (and the JIT) on one connection, then close it, so
-- "before" holds everything but the connections themselves.
do
  local warm = lurl.session { http2 = h2 }
  for _ = 1, 20 do
    local r = assert(warm:get(p.url))
    assert(r.status == 200 and #r:read() == p.bytes)
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
-- opens its own connection (idle in the output confirms it).
local t0 = lurl.now()
local tasks, failures = {}, 0
for t = 1, p.conns do
  tasks[t] = lurl.spawn(function()
    local resp, err = session:get(url_of(t))
    if not resp then return nil, tostring(err) end
    local body = resp:read()
    if resp.status ~= 200 or #body ~= p.bytes then return nil, "bad response " .. tostring(resp.status) end
    return true
  end)
end
local first_err
for _, task in ipairs(tasks) do
  local okj, err = task:join()
  if not okj then failures = failures + 1; first_err = first_err or err end
end
local opened = lurl.now() - t0
-- Dropped so that the heap measured below no longer holds the tasks.
tasks = nil -- luacheck: ignore 311
collectgarbage("collect")
collectgarbage("collect")
local after, heap_after = lib.vmrss(), collectgarbage("count") * 1024
local fds = core.open_fds() - fds_before
local stats = session.connector:stats()
session:close()
if failures > 0 then
  error(("%d of %d requests failed, first: %s"):format(failures, p.conns, tostring(first_err)), 0)
end
if stats.idle ~= p.conns or fds < p.conns then
  error(("wanted %d open connections, the pool had %d idle and %d new descriptors were open")
    :format(p.conns, stats.idle, fds), 0)
end
lib.print_json {
  requests = p.conns, conns = p.conns, rss_before = before, rss_after = after,
  bytes_per_conn = (after - before) / p.conns, lua_heap_per_conn = (heap_after - heap_before) / p.conns,
  fds = fds, idle = stats.idle, seconds = opened,
}
