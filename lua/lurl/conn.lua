-- One HTTP/1.1 client connection over an established stream (lurl.dial makes
-- those): writes, and the response events that the llhttp parser (in C)
-- produces as bytes arrive.
--
-- The read side runs from libuv callbacks and queues events:
--   { "head", status, reason, major, minor, fields_block, keep_alive, sets_cookies,
--     content_encoding }
--   { "body", bytes }   { "done" }   { "eof" }   { "error", message, name }
--   { "continue" }  (a 100 went by, when the request expects one)
-- A response that arrives whole in one read is a single head event with
-- fields body (nil when empty) and done = true.
-- and wakes the task waiting in read_event(). While a connection sits idle in
-- the pool any byte or EOF from the peer means it is unusable: it is closed.
local core = require "lurl.core"
local event_queue = require "lurl.event_queue"
local h1 = require "lurl.h1"
local sched = require "lurl.sched"

local M = {}


local Conn = {}
local mt = { __name = "lurl.connection", __index = Conn }
function mt.__tostring(c)
  return ("lurl.connection (%s%s)"):format(c.key, c.closed and ", closed" or "")
end

local DONE, EOF, CONTINUE = { "done" }, { "eof" }, { "continue" } -- events without payload are shared

local push = event_queue.push

-- Flow control as aiohttp's StreamReader does it: reading pauses when more
-- than twice read_bufsize of body waits unread and resumes below
-- read_bufsize (conn:begin sets the marks per exchange).
local function pause_if_full(self, bytes)
  self.buffered = self.buffered + bytes
  if self.reading and self.buffered > self.high_water then
    self.tcp:read_stop()
    self.reading = false
  end
end

-- The response ended; extra bytes after it were not asked for (RFC 9112
-- section 9.3), so the connection cannot be reused.
local function complete(self, ev, extra)
  self.active = false
  if extra then self.reusable = false end
  push(self, ev)
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
    pos = pos + n
    if self.expecting and parser:continued() then
      self.expecting = false
      push(self, CONTINUE)
    end
    if head and done then
      -- the usual small response, whole in one read: one event carries it
      local ev = { "head", parser:head_block() }
      ev.body, ev.done = body, true
      return complete(self, ev, pos <= len)
    end
    if head then push(self, { "head", parser:head_block() }) end
    if body then
      push(self, { "body", body })
      pause_if_full(self, #body)
    end
    if done then return complete(self, DONE, pos <= len) end
  end
end

local function on_eof(self)
  self.reusable = false
  local ended, msg, name = self.parser:finish()
  if ended then
    self.active = false
    push(self, DONE)
  elseif ended == nil then
    push(self, { "error", msg, name })
  else
    push(self, EOF)
  end
end

local function on_read(self, data, err, ename)
  if not self.active then
    -- idle (or response already complete): the peer closed or misbehaved
    self:close()
    return
  end
  if data then
    local now = sched.now()
    if not self.first_byte_at then self.first_byte_at = now end
    self.read_at = now
    return feed(self, data)
  end
  self.reading = false
  if ename == "EOF" then return on_eof(self) end
  self.reusable = false
  push(self, { "error", err, ename })
end

-- new(stream, key, opts) -> conn: a connected transport stream made into an
-- HTTP/1.1 client connection. opts: max_line_size, max_field_size, and
-- on_close(conn), called once when the connection closes for any reason.
function M.new(stream, key, opts)
  local self = setmetatable({
    key = key, tcp = stream,
    parser = core.h1.parser("response", opts.max_line_size, opts.max_field_size),
    queue = event_queue.new(), buffered = 0, low_water = 0, high_water = 0, reusable = true, requests = 0,
    read_at = false,
    on_close = opts.on_close,
  }, mt)
  self.read_cb = function(data, rerr, rname) return on_read(self, data, rerr, rname) end
  -- a queued write completes after the sending task parked in send()
  self.write_cb = function(...)
    local t = self.writer
    self.writer = nil
    if t then sched.wake(t, self.writer_seq, ...) end
  end
  stream:read_start(self.read_cb)
  self.reading = true
  return self
end

-- Prepare for one request/response exchange. no_body: the request is HEAD;
-- bufsize: its read_bufsize (h1.READ_BUFSIZE by default), the marks of
-- pause_if_full.
function Conn:begin(no_body, bufsize)
  bufsize = bufsize or h1.READ_BUFSIZE
  self.low_water, self.high_water = bufsize, 2 * bufsize
  self.parser:reset(no_body)
  local q = self.queue
  for i = q.head, q.tail do q[i] = nil end
  q.head, q.tail = 1, 0
  self.buffered = 0
  self.active = true
  self.first_byte_at = nil
  self.unsent = false
  self.expecting = false
  self.requests = self.requests + 1
  self.tcp:ref(true)
end

-- send(bytes, deadline) -> true, or nil, "ENAME: message", "ENAME", or nil
-- and a timeout error. After a failure self.unsent tells whether the socket
-- refused the bytes outright (none of them can have reached the peer).
function Conn:send(data, deadline, ctx)
  -- the peer may have answered early and closed while a body was going out
  if self.closed then return nil, "ECONNRESET: connection closed by the peer", "ECONNRESET" end
  local r, e, en = self.tcp:write(data, self.write_cb)
  if r then return r end
  if r == nil then
    self.unsent = true
    return nil, e, en
  end
  self.writer, self.writer_seq = sched.prepare()
  return deadline:park(self.writer, "write", ctx)
end

-- send_file(path, offset, size, deadline, ctx) -> true; nil and an error as
-- send's, and where ("open" or "read") when the file failed (ESHORT: it
-- ended early); or false when the stream cannot take a file (TLS, a stream
-- made in Lua): the caller then sends it piece by piece. The bytes go from
-- disk to a plain socket without becoming Lua strings.
function Conn:send_file(path, offset, size, deadline, ctx)
  local tcp = self.tcp
  if not tcp.send_file then return false end
  if self.closed then return nil, "ECONNRESET: connection closed by the peer", "ECONNRESET" end
  local ok, e, en = tcp:send_file(path, offset, size, self.write_cb)
  if not ok then return ok, e, en end
  self.writer, self.writer_seq = sched.prepare()
  return deadline:park(self.writer, "write", ctx)
end

-- After a head sent with Expect: 100-continue (RFC 9110 section 10.1.1):
-- "continue" once the server said 100, "final" when its final response came
-- instead (the body must not be sent), "waited" after secs without either
-- (the body goes anyway, as curl does), or nil and an error.
function Conn:await_continue(secs, deadline, ctx)
  local q = self.queue
  if q.head > q.tail then
    self.reader, self.reader_seq = sched.prepare()
    local limit = deadline:limit("read")
    local ok, err = sched.park(self.reader, limit and math.min(limit, secs) or secs)
    if ok == sched.TIMEOUT then
      self.reader = nil
      if limit and limit <= secs then return nil, deadline:error(select(3, deadline:limit("read")), ctx) end
      return "waited"
    end
    if not ok and err then return nil, err end
  end
  local ev = q[q.head]
  if ev == CONTINUE then
    q[q.head] = nil
    q.head = q.head + 1
    return "continue"
  end
  return ev and "final" or "waited"
end

-- read_event(deadline) -> event, or nil and a timeout error.
function Conn:read_event(deadline, ctx)
  local ev, err = event_queue.take(self, deadline, ctx)
  if not ev then return nil, err end
  if ev[1] == "body" then
    self.buffered = self.buffered - #ev[2]
    if not self.reading and not self.closed and self.active and self.buffered < self.low_water then
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

-- Reading may have been paused for a slow reader when the response ended:
-- a pooled connection reads again, to notice the peer closing it and to get
-- the next response.
local function resume(self)
  if self.reading or self.closed then return end
  self.reading = true
  self.tcp:read_start(self.read_cb)
end

-- Park in the pool: the loop may end while idle connections stay open.
function Conn:idle()
  resume(self)
  self.tcp:ref(false)
  self.parser:shrink()
end

-- detach() -> the stream, which the connection no longer reads nor closes:
-- another protocol takes it over (an upgrade). The connection counts as
-- closed from then on; on_close is not called (the pool lets it go itself).
function Conn:detach()
  self.closed, self.active = true, false
  self.tcp:read_stop()
  self.tcp:ref(true)
  return self.tcp
end

function Conn:close()
  if self.closed then return end
  self.closed = true
  self.active = false
  self.tcp:close()
  if self.reader then push(self, { "error", "connection closed locally", "ECLOSED" }) end
  if self.on_close then self.on_close(self) end
end

return M
