-- The connection pool: per-origin lists of idle keep-alive connections.
-- A connection goes back to its list only after its response was read to the
-- end and the server allows reuse; idle ones expire after keepalive_timeout.
local conn = require "lurl.conn"
local errors = require "lurl.errors"
local sched = require "lurl.sched"

local M = {}

local Connector = {}
local mt = { __name = "lurl.connector", __index = Connector }
function mt.__tostring(c)
  local s = c:stats()
  return ("lurl.connector (%d idle, %d in use%s)"):format(s.idle, s.in_use, c.closed and ", closed" or "")
end

local OPTIONS = { keepalive_timeout = "number", force_close = "boolean", family = "number" }

-- lurl.connector{ keepalive_timeout = 15, force_close = false, family = 0 }
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then errors.argerror("connector", "#1", "table expected, got " .. type(opts), 2) end
  for k, v in pairs(opts) do
    if not OPTIONS[k] then errors.argerror("connector", "#1", "unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= OPTIONS[k] then errors.argerror("connector", "'" .. k .. "'", OPTIONS[k] .. " expected, got " .. type(v), 2) end
  end
  local family = opts.family or 0
  if family ~= 0 and family ~= 4 and family ~= 6 then errors.argerror("connector", "'family'", "must be 0, 4 or 6", 2) end
  return setmetatable({
    keepalive_timeout = opts.keepalive_timeout or 15,
    force_close = opts.force_close or false,
    family = family,
    idle = {},      -- key -> stack of idle connections, most recent last
    in_use = {},    -- conn -> true
    closed = false,
  }, mt)
end

function M.is(v) return getmetatable(v) == mt end

local function take_idle(self, key)
  local list = self.idle[key]
  if not list then return nil end
  local now = sched.now()
  while #list > 0 do
    local c = table.remove(list)
    if not c.closed and now - c.idle_since < self.keepalive_timeout then return c end
    c:close()
  end
  return nil
end

-- acquire(key, host, port, deadline, opts) -> conn, reused; or nil, err.
function Connector:acquire(key, host, port, deadline, opts)
  if self.closed then return nil, errors.new("ClientConnectionError", "connector is closed") end
  local c = take_idle(self, key)
  local reused = c ~= nil
  if not c then
    opts.family = self.family
    deadline:begin_connect()
    local err
    c, err = conn.open(key, host, port, deadline, opts)
    deadline:end_connect()
    if not c then return nil, err end
  end
  self.in_use[c] = true
  return c, reused
end

-- release(conn, reusable): back to the idle list, or closed.
function Connector:release(c, reusable)
  if not self.in_use[c] then return end
  self.in_use[c] = nil
  if not reusable or self.force_close or self.closed or c.closed then
    c:close()
    return
  end
  c.idle_since = sched.now()
  c:idle()
  local list = self.idle[c.key]
  if not list then list = {}; self.idle[c.key] = list end
  list[#list + 1] = c
end

function Connector:stats()
  local idle, in_use, per_host = 0, 0, {}
  for key, list in pairs(self.idle) do
    for _, c in ipairs(list) do
      if not c.closed then
        idle = idle + 1
        per_host[key] = per_host[key] or { idle = 0, in_use = 0 }
        per_host[key].idle = per_host[key].idle + 1
      end
    end
  end
  for c in pairs(self.in_use) do
    in_use = in_use + 1
    per_host[c.key] = per_host[c.key] or { idle = 0, in_use = 0 }
    per_host[c.key].in_use = per_host[c.key].in_use + 1
  end
  return { idle = idle, in_use = in_use, per_host = per_host }
end

-- Close every connection, idle or in use (requests in flight fail).
function Connector:close()
  if self.closed then return end
  self.closed = true
  for _, list in pairs(self.idle) do for _, c in ipairs(list) do c:close() end end
  self.idle = {}
  for c in pairs(self.in_use) do c:close() end
  self.in_use = {}
end

return M
