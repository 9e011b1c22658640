-- ClientTimeout (aiohttp's semantics, to the millisecond).
--   total         the whole operation: pool wait, connect, send, head, body
--                 (unless streaming), redirects included
--   connect       acquiring a connection: pool wait plus establishing it
--   sock_connect  establishing one new connection
--   sock_read     the longest gap between two reads from the peer
-- A number means seconds; 0 or false means no limit. In a timeout object an
-- absent field is no limit too; as a per-request override an absent field
-- keeps the session's value.
local errors = require "lurl.errors"
local sched = require "lurl.sched"

local M = {}

local FIELDS = { "total", "connect", "sock_connect", "sock_read" }
local Timeout = {}
local mt = { __name = "lurl.timeout", __index = Timeout }

function mt.__tostring(t)
  local parts = {}
  for _, f in ipairs(FIELDS) do
    if t[f] ~= nil then parts[#parts + 1] = f .. " = " .. tostring(t[f] or false) end
  end
  return "lurl.timeout { " .. table.concat(parts, ", ") .. " }"
end

local function field(spec, name, fname)
  local v = spec[name]
  if v == nil then return nil end
  if v == false or v == 0 then return false end
  if type(v) ~= "number" or v ~= v or v < 0 then
    errors.argerror(fname, "'" .. name .. "'", "number of seconds >= 0, 0 or false expected, got " .. tostring(v), 3)
  end
  return v
end

-- lurl.timeout{ total =, connect =, sock_connect =, sock_read = }
function M.new(spec)
  spec = spec or {}
  if type(spec) ~= "table" then errors.argerror("timeout", "#1", "table expected, got " .. type(spec), 2) end
  for k in pairs(spec) do
    local known = false
    for _, f in ipairs(FIELDS) do known = known or f == k end
    if not known then errors.argerror("timeout", "#1", "unknown field '" .. tostring(k) .. "'", 2) end
  end
  local t = {}
  for _, f in ipairs(FIELDS) do t[f] = field(spec, f, "timeout") end
  return setmetatable(t, mt)
end

function M.is(v) return getmetatable(v) == mt end

M.default = M.new { total = 300, sock_connect = 30 }

-- Session timeout from a session option: nil keeps the default, a number is
-- total alone, a timeout object replaces the default.
function M.for_session(v)
  if v == nil then return M.default end
  if type(v) == "number" or v == false then return M.new { total = v } end
  if M.is(v) then return v end
  if type(v) == "table" then return M.new(v) end
  errors.argerror("session", "'timeout'", "number or lurl.timeout expected, got " .. type(v), 3)
end

-- The session's timeout with a request's override applied field by field.
function M.merge(base, override)
  if override == nil then return base end
  if type(override) == "number" or override == false then override = { total = override } end
  if type(override) ~= "table" then
    errors.argerror("request", "'timeout'", "number or lurl.timeout expected, got " .. type(override), 3)
  end
  if not M.is(override) then override = M.new(override) end
  local t = {}
  for _, f in ipairs(FIELDS) do
    if override[f] ~= nil then t[f] = override[f] else t[f] = base[f] end
  end
  return setmetatable(t, mt)
end

-- ---- deadlines of one request ----

local Deadline = {}
local dmt = { __name = "lurl.deadline", __index = Deadline }

function M.start(t)
  local now = sched.now()
  return setmetatable({ t = t, total_at = t.total and now + t.total or nil }, dmt)
end

-- The connect budget starts when a connection is first asked for.
function Deadline:begin_connect()
  if self.t.connect then self.connect_at = sched.now() + self.t.connect end
end

function Deadline:end_connect() self.connect_at = nil end

local function pick(best, best_kind, secs, kind)
  if secs and (not best or secs < best) then return secs, kind end
  return best, best_kind
end

-- limit(phase) -> seconds (or nil for none), error kind. phase is "pool",
-- "sock_connect", "read" or "write".
function Deadline:limit(phase)
  local now, t = sched.now(), self.t
  local secs, kind
  if self.total_at then secs, kind = self.total_at - now, "TimeoutError" end
  if phase == "pool" or phase == "sock_connect" then
    if self.connect_at then secs, kind = pick(secs, kind, self.connect_at - now, "ConnectionTimeoutError") end
    if phase == "sock_connect" then secs, kind = pick(secs, kind, t.sock_connect, "ConnectionTimeoutError") end
  elseif phase == "read" then
    secs, kind = pick(secs, kind, t.sock_read, "SocketTimeoutError")
  end
  if secs and secs < 0 then secs = 0 end
  return secs, kind
end

local descriptions = {
  TimeoutError = "total timeout of %gs expired",
  ConnectionTimeoutError = "connection timeout expired",
  SocketTimeoutError = "no data from the peer for sock_read=%gs",
}

function Deadline:error(kind, context)
  local t = self.t
  local msg
  if kind == "TimeoutError" then msg = descriptions[kind]:format(t.total)
  elseif kind == "SocketTimeoutError" then msg = descriptions[kind]:format(t.sock_read)
  else
    msg = ("connection not established within %s"):format(
      t.sock_connect and t.connect and ("connect=%gs / sock_connect=%gs"):format(t.connect, t.sock_connect)
      or t.sock_connect and ("sock_connect=%gs"):format(t.sock_connect) or ("connect=%gs"):format(t.connect or 0))
  end
  return errors.new(kind, msg, context)
end

-- Wait under the phase's limit: returns wait's values, or nil and the timeout
-- error when the limit expires first.
local function timed(self, kind, context, first, ...)
  if first == sched.TIMEOUT then return nil, self:error(kind, context) end
  return first, ...
end

function Deadline:wait(phase, arm, context)
  local secs, kind = self:limit(phase)
  return timed(self, kind, context, sched.wait(arm, secs))
end

return M
