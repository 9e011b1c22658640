-- Shared helpers for specs: `local support = require "spec.support"`.
local lurl = require "lurl"
local core = require "lurl.core"
local testing = require "lurl.testing"

local M = {}

-- A loopback test server with the given routes (see lurl.testing.server).
function M.server(routes, opts)
  opts = opts or {}
  opts.routes = routes
  return testing.server(opts)
end

-- A session whose base_url points at server.
function M.session(server, opts)
  opts = opts or {}
  opts.base_url = server:url("/")
  return lurl.session(opts)
end

-- Files for specs, with plain Lua io.
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function M.random_bytes(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local data = f:read(n)
  f:close()
  return data
end

-- Open file descriptors of this process, for leak checks.
function M.open_fds() return core.open_fds() end

-- Elapsed seconds of fn(...) and its results.
function M.timed(fn, ...)
  local t0 = lurl.now()
  local res = { fn(...) }
  return lurl.now() - t0, unpack(res, 1, table.maxn(res))
end


-- ---- helpers for the connector, DNS and tracing specs ----

-- A loopback TCP port with nothing listening on it (connect is refused).
function M.free_port(ip)
  local l = assert(core.tcp.listen(ip or "127.0.0.1", 0, function() end))
  local _, port = l:sockname()
  l:close()
  return port
end

-- A resolver for lurl.connector{ resolver = } that answers from a table of
-- host -> list of addresses ({ ip =, family = }) and counts its calls, in
-- all (r.calls) and per host (r.by_host[host]). r.delay makes each lookup
-- sleep first; a host mapped to a string fails with that message; a host
-- mapped to a function has its result returned (it may raise). r.seen lists
-- { host, port, family } of every call.
function M.resolver(map, delay)
  local r = { calls = 0, by_host = {}, seen = {}, delay = delay }
  r.fn = function(host, port, family)
    r.calls = r.calls + 1
    r.by_host[host] = (r.by_host[host] or 0) + 1
    r.seen[#r.seen + 1] = { host, port, family }
    if r.delay then lurl.sleep(r.delay) end
    local v = map[host]
    if type(v) == "function" then return v(host, port, family) end
    if type(v) == "string" then return nil, v end
    if v == nil then return nil, "unknown host " .. host end
    return v
  end
  return r
end

-- Poll until pred() is true or `secs` (default 5) pass; returns pred()'s
-- last value. For states reached asynchronously (a FIN noticed, a sweeper
-- run): specs wait for them instead of guessing a delay.
function M.eventually(pred, secs)
  local deadline = lurl.now() + (secs or 5)
  local v = pred()
  while not v and lurl.now() < deadline do
    lurl.sleep(0.01)
    v = pred()
  end
  return v
end

-- A fresh Unix socket path (unique: os.tmpname makes the name, the file it
-- creates is removed so that a server can bind there).
function M.socket_path()
  local path = os.tmpname()
  os.remove(path)
  return path .. ".sock"
end

-- A "black hole" at [::1]:port: a listener that never accepts, with its
-- accept queue filled by connections of our own, so that the kernel drops
-- every further SYN and a connect() to it hangs (no refusal). Returns a
-- cleanup function, or nil and why (::1 unusable, port taken, queue never
-- filled).
function M.black_hole6(port)
  local bh, err = core.tcp.listen("::1", port, function() end, 0)
  if not bh then return nil, "cannot listen on [::1]:" .. port .. ": " .. tostring(err) end
  local fillers = {}
  local function cleanup()
    for _, f in ipairs(fillers) do if not f:closed() then f:close() end end
    if not bh:closed() then bh:close() end
  end
  for _ = 1, 16 do
    local connected = false
    local f, ferr = core.tcp.connect("::1", port, function(ok) connected = ok end)
    if not f then cleanup(); return nil, "cannot connect to [::1]: " .. tostring(ferr) end
    fillers[#fillers + 1] = f
    lurl.sleep(0.2)
    if not connected then return cleanup end
  end
  cleanup()
  return nil, "could not fill the accept queue of a listener on [::1]"
end

return M
