-- TLS over a stream rather than over a socket: the origin's TLS inside the
-- tunnel that an https:// proxy opened with CONNECT (RFC 9110 section
-- 9.3.6), where the stream under it already runs TLS with the proxy. A C
-- engine (core.tls.engine) does the cryptography on memory buffers; this
-- module carries its bytes over the outer stream and gives lurl.conn the
-- stream interface (docs/internals.md, "The stream interface"), with the
-- same contract as a C stream after stream:tls_start.
local core = require "lurl.core"
local check = require "lurl.check"

local M = {}

local Stream = {}
local mt = { __name = "lurl.tls_over_stream", __index = Stream }
function mt.__tostring(self)
  return ("lurl.tls_over_stream (over %s%s)"):format(tostring(self.outer), self.is_closed and ", closed" or "")
end

-- Send what the engine made: true, false (queued; fn follows) or nil, err, ename.
local function send(self, fn)
  local bytes = self.engine:pending()
  if bytes == "" then return true end
  return self.outer:write(bytes, fn)
end

-- "connection closed by the peer during the TLS handshake", as a C stream says it.
local function broken_message(err, ename)
  local why = ename == "EOF" and "connection closed by the peer" or tostring(err):gsub("^[%w_]+: ", "")
  return why .. " during the TLS handshake"
end

-- The handshake's outcome goes to fn once. Without a reader the outer stream
-- stops, as a C stream stops its socket.
local function end_handshake(self, ok, msg, ename, code)
  self.handshaking = false
  if not ok then self.failed, self.ended = true, true end
  if not self.reading and not self.outer_err then self.outer:read_stop() end
  local fn = self.on_done
  self.on_done = nil
  if ok then return fn(true) end
  fn(nil, msg, ename, code)
end

-- The end of reading: fn(nil, err, ename), then no more calls.
local function finish(self, err, ename)
  self.ended = true
  if not self.outer_err then self.outer:read_stop() end
  self.read_cb(nil, err, ename)
end

-- Hand the reader what the engine can decrypt, one read buffer at a time,
-- while it reads: a read_stop in a delivery (lurl.conn above its high
-- water mark) leaves the rest in the engine until read_start. The end of
-- the outer stream is the end of this one once the engine is drained,
-- close_notify or not (as with a C stream).
local function pump(self)
  local engine = self.engine
  while self.reading and not self.ended and not self.is_closed do
    local data, err, ename = engine:read()
    send(self) -- key updates and other replies
    if not data then return finish(self, err, ename) end
    if data == "" then
      if self.outer_err then finish(self, self.outer_err, self.outer_ename) end
      return
    end
    self.read_cb(data)
  end
end

local function step(self)
  local done, msg, ename, code = self.engine:handshake()
  local sent, err, en = send(self) -- the next flight, or the alert that says why it failed
  if done == nil then return end_handshake(self, nil, msg, ename, code) end
  if sent == nil then return end_handshake(self, nil, broken_message(err, en), en, 0) end
  if not done then return end
  end_handshake(self, true)
  if self.reading then pump(self) end
end

local function on_outer(self, data, err, ename)
  if self.is_closed or self.failed then return end
  if data then
    self.engine:feed(data)
  else
    self.outer_err, self.outer_ename = err, ename
  end
  if not self.handshaking then return pump(self) end
  if data then return step(self) end
  end_handshake(self, nil, broken_message(err, ename), ename, 0)
end

-- The client's first flight (a server's engine has none to send).
local function first_flight(self)
  local started, msg = self.engine:handshake()
  if started == nil then return nil, "ESSL: " .. msg, "ESSL" end
  return send(self)
end

-- start(stream, context, host, session_key, fn[, alpn]) -> a stream
-- carrying TLS inside `stream` (which it owns from then on), or nil,
-- "ESSL: ...", "ESSL" (or the outer stream's write error) when the
-- handshake cannot start. host, session_key, fn and alpn as for
-- stream:tls_start: fn(true) once the handshake is done, fn(nil, message,
-- ename, verify_code) when it fails.
function M.start(stream, context, host, session_key, fn, alpn)
  if type(fn) ~= "function" then check.argerror("tls_over.start", "#5", "function expected, got " .. type(fn)) end
  local engine, err, ename = core.tls.engine(context, host, session_key, alpn)
  if not engine then return nil, err, ename end
  local self = setmetatable({ outer = stream, engine = engine, on_done = fn, handshaking = true,
    reading = false, read_cb = false, is_closed = false, ended = false, failed = false,
    outer_err = false, outer_ename = false }, mt)
  self.on_outer = function(data, rerr, rname) return on_outer(self, data, rerr, rname) end
  local ok
  ok, err, ename = stream:read_start(self.on_outer)
  if ok then ok, err, ename = first_flight(self) end
  if ok == nil then
    engine:close()
    stream:read_stop()
    return nil, err, ename
  end
  return self
end

-- ---- the stream interface ----

function Stream:read_start(fn)
  if self.is_closed then check.argerror("read_start", "#1", "connection is closed") end
  self.read_cb, self.reading = fn, true
  if self.handshaking or self.ended then return true end
  pump(self) -- what the engine holds already, delivered before more is read
  if self.reading and not self.ended and not self.is_closed and not self.outer_err then
    return self.outer:read_start(self.on_outer)
  end
  return true
end

function Stream:read_stop()
  self.reading = false
  if not self.handshaking and not self.is_closed and not self.outer_err then self.outer:read_stop() end
end

-- write(data[, fn]): a string or a list of strings; true when the records
-- went out at once, false when queued (fn follows), nil, err, ename when
-- nothing was sent.
function Stream:write(data, fn)
  if self.is_closed then return nil, "EPIPE: broken pipe", "EPIPE" end
  if self.handshaking then check.argerror("write", "#1", "TLS handshake not finished") end
  if self.failed then return nil, "EPROTO: protocol error", "EPROTO" end
  local engine = self.engine
  if type(data) == "table" then
    for i = 1, #data do
      local ok, err, ename = engine:write(data[i])
      if not ok then return nil, err, ename end
    end
  else
    local ok, err, ename = engine:write(data)
    if not ok then return nil, err, ename end
  end
  return send(self, fn)
end

-- close([reset]): close_notify first (best effort, not with reset), then
-- the outer stream, which closes its own TLS the same way.
function Stream:close(reset)
  if self.is_closed then return end
  self.is_closed, self.reading, self.read_cb, self.on_done = true, false, false, nil
  local bye = self.engine:close()
  local outer = self.outer
  if outer:closed() then return end
  if bye ~= "" and not reset then outer:write(bye) end
  outer:close(reset)
end

function Stream:closed() return self.is_closed end

function Stream:ref(on)
  if not self.is_closed then self.outer:ref(on) end
end

function Stream:tls_info()
  if self.handshaking or self.failed or self.is_closed then return nil end
  return self.engine:info()
end

return M
