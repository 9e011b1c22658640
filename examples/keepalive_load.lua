-- Load check: TASKS concurrent tasks x REQUESTS sequential GETs each over one
-- keep-alive session against the in-process test server; every response is
-- checked, and open file descriptors are counted before and after.
--   lurl examples/keepalive_load.lua [TASKS] [REQUESTS]   (default 64 x 2000)
local lurl = require "lurl"
local core = require "lurl.core"
local testing = require "lurl.testing"

local TASKS = tonumber(arg and arg[1]) or 64
local REQUESTS = tonumber(arg and arg[2]) or 2000

local server = testing.server { routes = {
  ["/n"] = function(req) return { body = req.query } end,
} }
-- counted after the listener exists: libuv keeps one spare descriptor per loop
-- from the first listen on (its EMFILE guard)
local fds_before = core.open_fds()
local session = lurl.session { base_url = server:url("/") }

local t0 = lurl.now()
local tasks = {}
for t = 1, TASKS do
  tasks[t] = lurl.spawn(function()
    for i = 1, REQUESTS do
      local q = ("t=%d&i=%d"):format(t, i)
      local resp, err = session:get("n?" .. q)
      if not resp then error(("task %d request %d: %s"):format(t, i, tostring(err))) end
      local body = resp:read()
      if resp.status ~= 200 or body ~= q then
        error(("task %d request %d: got %s %q"):format(t, i, resp.status, body))
      end
    end
    return REQUESTS
  end)
end
local done = 0
for _, task in ipairs(tasks) do
  local n, err = task:join()
  if not n then error(err, 0) end
  done = done + n
end
local elapsed = lurl.now() - t0
local stats = session.connector:stats()
session:close()
lurl.sleep(0.05) -- let libuv finish closing the sockets
local fds_after = core.open_fds()
server:close()
print(("%d requests in %.2f s (%.0f req/s), %d connections opened, pool had %d idle; fds before %d, after %d")
  :format(done, elapsed, done / elapsed, server.connections, stats.idle, fds_before, fds_after))
assert(done == TASKS * REQUESTS, "not every request completed")
assert(server.connections == TASKS, "connections were not reused: " .. server.connections)
assert(fds_after <= fds_before, ("descriptor leak: %d before, %d after"):format(fds_before, fds_after))
