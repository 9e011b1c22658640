-- ClientTimeout (aiohttp's semantics, to the millisecond).
--   total         the whole operation: pool wait, connect, send, head, body
--                 (a streamed one until it is read to the end, released or
--                 closed, as in aiohttp), redirects included
--   connect       acquiring a connection: pool wait plus establishing it
--   sock_connect  establishing one new connection
--   sock_read     the longest gap between two reads from the peer
--   pool          waiting for a free slot in the connector's pool alone
--                 (lurl's addition; the wait also counts towards connect)
--   ceil_threshold  aiohttp's: limits of at least this many seconds end on
--                 a whole second (their deadline rounded up), which lets
--                 aiohttp share timer wake-ups. lurl never rounds unless it
--                 is set; it then does the same to total, connect and
--                 sock_connect (sock_read moves with every read).
-- A number means seconds; 0 or false means no limit. In a timeout object an
-- absent field is no limit too; as a per-request override an absent field
-- keeps the session's value.
local errors = require "lurl.errors"
local check = require "lurl.check"
local sched = require "lurl.sched"

local M = {}

local FIELDS = { "total", "connect", "sock_connect", "sock_read", "pool", "ceil_threshold" }
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
  local v = check.seconds(fname, "'" .. name .. "'", spec[name], true)
  if v == 0 then return false end
  return v
end

-- lurl.timeout{ total =, connect =, sock_connect =, sock_read =, pool = }
function M.new(spec)
  spec = spec or {}
  if type(spec) ~= "table" then check.argerror("timeout", "#1", "table expected, got " .. type(spec)) end
  for k in pairs(spec) do
    local known = false
    for _, f in ipairs(FIELDS) do known = known or f == k end
    if not known then check.argerror("timeout", "#1", "unknown field '" .. tostring(k) .. "'") end
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
  check.argerror("session", "'timeout'", "number or lurl.timeout expected, got " .. type(v))
end

-- The session's timeout with a request's override applied field by field.
-- fname: the function the script called, which an argument error names.
function M.merge(base, override, fname)
  if override == nil then return base end
  if type(override) == "number" or override == false then override = { total = override } end
  if type(override) ~= "table" then
    check.argerror(fname or "request", "'timeout'", "number or lurl.timeout expected, got " .. type(override))
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

-- When a limit of secs from now ends: rounded up to a whole second under
-- ceil_threshold (aiohttp's ceil_timeout).
local function ends(threshold, now, secs)
  local at = now + secs
  if threshold and secs >= threshold then return math.ceil(at) end
  return at
end

-- start(t[, now]): now, when the caller just read the clock. The deadline
-- also knows the phase the request is in (enter), so that an expiry can
-- say where the time went.
function M.start(t, now)
  now = now or sched.now()
  return setmetatable({ t = t, total_at = t.total and ends(t.ceil_threshold, now, t.total) or false,
    connect_at = false, sock_connect_at = false, connect_ceil = false, phase = "pool", phase_at = now }, dmt)
end

-- attempt(base, own, at, request_at) -> the deadline of one call of the
-- innermost handler under middlewares: the request's timeout (base) with the
-- attempt's own (req.timeout, own) over it, never past at, the deadline
-- every attempt shares (request_at: the request's own, before any policy
-- narrowed it). When at binds, an expiry names the request's total timeout,
-- or, when a policy narrowed the deadline (lurl.retry's deadline), the time
-- the attempt had left; when own's total binds, it says so (attempt).
function M.attempt(base, own, at, request_at)
  local t = own == nil and base or M.merge(base, own)
  local now = sched.now()
  local d = M.start(t, now)
  if at and (not d.total_at or at < d.total_at) then
    d.total_at = at
    local total = at == request_at and base.total or at - now
    if total and total > 0 and total ~= t.total then d.t = M.merge(t, { total = total }) end
  elseif t.total and t.total ~= base.total then
    d.attempt = true
  end
  return d
end

-- What a request is doing, in the words of timeout errors (err.phase).
local PHASES = {
  pool = "waiting for a free connection", dns = "resolving the host name", connect = "connecting",
  tls = "in the TLS handshake", proxy = "setting up the proxy tunnel", send = "sending the request",
  head = "waiting for the response head", body = "reading the body",
}

function Deadline:enter(phase, now)
  self.phase, self.phase_at = phase, now or sched.now()
end

-- await_read(waiter, source, ctx) -> true once the waiter's task is woken
-- (waiter.reader and reader_seq hold it; who wakes it clears reader), or
-- nil and a timeout error. sock_read is the longest gap between two reads
-- (aiohttp restarts its timer on every data_received): source.read_at, when
-- the peer last sent a byte, moves the window on even when those bytes made
-- no event yet (a head arriving a byte at a time). The clock is read only
-- when the window expires.
--
-- The first wait is outside the loop of moved windows: a loop entered on
-- every read would stop LuaJIT from compiling the read path (a root trace
-- aborts at an inner loop).
local function read_window(self, waiter, since)
  waiter.reader, waiter.reader_seq = sched.prepare()
  local secs, _, why = self:limit("read", since)
  if sched.park(waiter.reader, secs) ~= sched.TIMEOUT then return true end
  waiter.reader = nil
  return false, secs, why
end

function Deadline:await_read(waiter, source, ctx)
  local woken, secs, why = read_window(self, waiter, nil)
  local since -- the window's start: now at first
  while not woken do
    local read_at = source.read_at
    if why ~= "sock_read" or not read_at or read_at <= (since or sched.now() - secs) then
      return nil, self:error(why, ctx)
    end
    since = read_at
    woken, secs, why = read_window(self, waiter, since)
  end
  return true
end

-- The connect budget starts when a connection is first asked for.
-- connector_ceil: the connector's timeout_ceil_threshold, for a timeout
-- without its own ceil_threshold (aiohttp's TCPConnector option).
function Deadline:begin_connect(connector_ceil)
  self.connect_ceil = self.t.ceil_threshold or connector_ceil
  if self.t.connect then self.connect_at = ends(self.connect_ceil, sched.now(), self.t.connect) end
end

function Deadline:end_connect() self.connect_at = false end

-- One sock_connect window covers a new connection's TCP connect and TLS
-- handshake, as aiohttp's covers create_connection.
function Deadline:begin_sock_connect()
  if self.t.sock_connect then self.sock_connect_at = ends(self.connect_ceil, sched.now(), self.t.sock_connect) end
end

function Deadline:end_sock_connect() self.sock_connect_at = false end

local function pick(best, best_why, secs, why)
  if secs and (not best or secs < best) then return secs, why end
  return best, best_why
end

local KINDS = {
  total = "TimeoutError", connect = "ConnectionTimeoutError", sock_connect = "ConnectionTimeoutError",
  pool = "ConnectionTimeoutError", sock_read = "SocketTimeoutError",
}

-- limit(phase[, since]) -> seconds (or nil for none), error kind, the
-- field that binds. phase is "queue" (waiting for a pool slot), "connect"
-- (DNS and the rest of acquiring a connection), "sock_connect", "read" or
-- "write". since: for "read", when the peer last sent a byte (sock_read
-- counts from there; default now).
function Deadline:limit(phase, since)
  local now, t = sched.now(), self.t
  local secs, why
  if self.total_at then secs, why = self.total_at - now, "total" end
  if phase == "read" then
    secs, why = pick(secs, why, t.sock_read and (since and t.sock_read - (now - since) or t.sock_read), "sock_read")
  elseif phase ~= "write" then
    if self.connect_at then secs, why = pick(secs, why, self.connect_at - now, "connect") end
    if phase == "sock_connect" then
      secs, why = pick(secs, why, self.sock_connect_at and self.sock_connect_at - now or t.sock_connect, "sock_connect")
    elseif phase == "queue" then secs, why = pick(secs, why, t.pool, "pool") end
  end
  if secs and secs < 0 then secs = 0 end
  return secs, KINDS[why], why
end

local MESSAGES = {
  total = "total timeout of %gs expired",
  connect = "connection not established within connect=%gs",
  sock_connect = "connection not established within sock_connect=%gs",
  pool = "no free connection in the pool within pool=%gs",
  sock_read = "no data from the peer for sock_read=%gs",
}

-- error(why, context): the typed error for the expired field `why` (a kind
-- name is accepted too and picks that kind's usual field).
local FIELD_OF_KIND = { TimeoutError = "total", ConnectionTimeoutError = "sock_connect",
  SocketTimeoutError = "sock_read" }

-- The message names the phase (err.phase) and, for the limits that run
-- over a whole phase, the time spent in it: a request that never left the
-- pool's queue says so.
function Deadline:error(why, context)
  why = FIELD_OF_KIND[why] or why
  if why == "sock_connect" and not self.t.sock_connect then why = "connect" end
  local msg = MESSAGES[why]
  -- one attempt's own limit, under a middleware (req.timeout)
  if why == "total" and self.attempt then msg = "timeout of %gs for this attempt expired" end
  msg = msg:format(self.t[why] or 0)
  local phase = self.phase
  if why == "sock_read" then
    msg = msg .. " while " .. PHASES[phase]
  else
    msg = ("%s after %.2fs %s"):format(msg, sched.now() - self.phase_at, PHASES[phase])
  end
  local err = errors.new(KINDS[why], msg, context)
  err.phase = phase
  return err
end

-- Wait under the phase's limit: returns wait's values, or nil and the timeout
-- error when the limit expires first.
local function timed(self, why, context, first, ...)
  if first == sched.TIMEOUT then return nil, self:error(why, context) end
  return first, ...
end

function Deadline:wait(phase, arm, context)
  local secs, _, why = self:limit(phase)
  return timed(self, why, context, sched.wait(arm, secs))
end

-- The same for sched.prepare/park users: task comes from sched.prepare().
function Deadline:park(task, phase, context, abandon)
  local secs, _, why = self:limit(phase)
  return timed(self, why, context, sched.park(task, secs, abandon))
end

return M
