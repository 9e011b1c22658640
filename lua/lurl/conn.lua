-- One HTTP/1.1 client connection: DNS, TCP connect, writes, and the response
-- events that the llhttp parser (in C) produces as bytes arrive.
--
-- The read side runs from libuv callbacks and queues events:
--   { "head", status, reason, major, minor, fields, keep_alive }
--   { "body", bytes }   { "done" }   { "eof" }   { "error", message, name }
-- and wakes the task waiting in read_event(). While a connection sits idle in
-- the pool any byte or EOF from the peer means it is unusable: it is closed.
local core = require "lurl.core"
local errors = require "lurl.errors"

local M = {}

local HIGH_WATER, LOW_WATER = 1024 * 1024, 256 * 1024

local Conn = {}
local mt = { __name = "lurl.connection", __index = Conn }
function mt.__tostring(c)
  return ("lurl.connection (%s%s)"):format(c.key, c.closed and ", closed" or "")
end

local function push(self, ev)
  local q = self.queue
  q.tail = q.tail + 1
  q[q.tail] = ev
  local w = self.waker
  if w then
    self.waker = nil
    w(true)
  end
end

local function pause_if_full(self, bytes)
  self.buffered = self.buffered + bytes
  if self.reading and self.buffered > HIGH_WATER then
    self.tcp:read_stop()
    self.reading = false
  end
end

local function feed(self, data)
  local parser, pos, len = self.parser, 1, #data
  while pos <= len do
    local n, head, body, done = parser:execute(data, pos)
    if not n then
      self.reusable = false
      push(self, { "error", head, body })
      return
    end
    if head then push(self, { "head", parser:head() }) end
    if body then
      push(self, { "body", body })
      pause_if_full(self, #body)
    end
    pos = pos + n
    if done then
      self.active = false
      -- bytes after a complete response were not asked for (RFC 9112 9.3)
      if pos <= len then self.reusable = false end
      push(self, { "done" })
      return
    end
  end
end

local function on_eof(self)
  self.reusable = false
  local ended, msg, name = self.parser:finish()
  if ended then
    self.active = false
    push(self, { "done" })
  elseif ended == nil then
    push(self, { "error", msg, name })
  else
    push(self, { "eof" })
  end
end

local function on_read(self, data, err, ename)
  if not self.active then
    -- idle (or response already complete): the peer closed or misbehaved
    self:close()
    return
  end
  if data then return feed(self, data) end
  self.reading = false
  if ename == "EOF" then return on_eof(self) end
  self.reusable = false
  push(self, { "error", err, ename })
end

local function is_ip(host) return host:find(":", 1, true) or host:match("^%d+%.%d+%.%d+%.%d+$") end

local function context(host, port, extra)
  local c = { host = host, port = port }
  if extra then for k, v in pairs(extra) do c[k] = v end end
  return c
end

local function resolve(host, port, deadline, family, ctx)
  if is_ip(host) then return { { ip = host } } end
  local addrs, err = deadline:wait("pool", function(wake)
    local ok, e, en = core.getaddrinfo(host, family, wake)
    if not ok then wake(nil, e, en) end
  end, ctx)
  if addrs then
    if #addrs > 0 then return addrs end
    err = "no address"
  end
  if type(err) == "table" then return nil, err end
  return nil, errors.new("ClientConnectorDNSError",
    ("cannot resolve host %s: %s"):format(host, tostring(err)), context(host, port, ctx))
end

local function connect_one(ip, port, deadline, ctx)
  local tcp
  local ok, err, ename = deadline:wait("sock_connect", function(wake)
    local t, e, en = core.tcp.connect(ip, port, wake)
    if not t then wake(nil, e, en); return end
    tcp = t
    return function() t:close() end
  end, ctx)
  if ok then return tcp end
  if tcp then tcp:close() end
  return nil, err, ename
end

-- open(key, host, port, deadline, opts) -> conn, or nil and a typed error.
-- Tries each resolved address in turn within the connect limits.
function M.open(key, host, port, deadline, opts)
  local ctx = opts.context
  local addrs, err = resolve(host, port, deadline, opts.family or 0, ctx)
  if not addrs then return nil, err end
  local last, lastname
  for _, a in ipairs(addrs) do
    local tcp, e, ename = connect_one(a.ip, port, deadline, ctx)
    if tcp then
      local self = setmetatable({
        key = key, tcp = tcp, host = host, port = port, ip = a.ip,
        parser = core.h1.parser("response", opts.max_line_size, opts.max_field_size),
        queue = { head = 1, tail = 0 }, buffered = 0, reusable = true, requests = 0,
      }, mt)
      self.read_cb = function(data, rerr, rname) return on_read(self, data, rerr, rname) end
      tcp:read_start(self.read_cb)
      self.reading = true
      return self
    end
    if type(e) == "table" then return nil, e end -- a timeout: stop trying
    last, lastname = e, ename
  end
  return nil, errors.new("ClientConnectorError",
    ("cannot connect to %s:%d: %s"):format(host, port, tostring(last)),
    context(host, port, { errno = lastname, os_error = last }))
end

-- Prepare for one request/response exchange. no_body: the request is HEAD.
function Conn:begin(no_body)
  self.parser:reset(no_body)
  self.queue = { head = 1, tail = 0 }
  self.buffered = 0
  self.active = true
  self.requests = self.requests + 1
  self.tcp:ref(true)
end

-- send(bytes, deadline) -> true, or nil, "ENAME: message", "ENAME", or nil
-- and a timeout error.
function Conn:send(data, deadline, ctx)
  return deadline:wait("write", function(wake)
    local r, e, en = self.tcp:write(data, wake)
    if r ~= false then wake(r, e, en) end
  end, ctx)
end

-- read_event(deadline) -> event, or nil and a timeout error.
function Conn:read_event(deadline, ctx)
  local q = self.queue
  if q.head > q.tail then
    local ok, err = deadline:wait("read", function(wake)
      self.waker = wake
      return function() self.waker = nil end
    end, ctx)
    if not ok then return nil, err end
  end
  local ev = q[q.head]
  q[q.head] = nil
  q.head = q.head + 1
  if ev[1] == "body" then
    self.buffered = self.buffered - #ev[2]
    if not self.reading and not self.closed and self.active and self.buffered < LOW_WATER then
      self.reading = true
      self.tcp:read_start(self.read_cb)
    end
  end
  return ev
end

-- After a complete response: whether the connection may carry another request.
function Conn:can_reuse(keep_alive)
  return keep_alive and self.reusable and not self.closed and not self.active
end

-- Park in the pool: the loop may end while idle connections stay open.
function Conn:idle()
  self.tcp:ref(false)
end

function Conn:close()
  if self.closed then return end
  self.closed = true
  self.active = false
  self.tcp:close()
  if self.waker then push(self, { "error", "connection closed locally", "ECLOSED" }) end
end

return M
