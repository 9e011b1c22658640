-- One HTTP/2 client connection (RFC 9113) over an established stream, on
-- libnghttp2 (core.h2: framing, HPACK, flow control, the state machine).
-- Many requests run on it at once, each on a channel that offers the
-- exchange and the response what lurl.conn offers them (begin, read_event,
-- can_reuse, close, first_byte_at, read_at, the head event's layout), so
-- the layers above it work the same over HTTP/1.1 and HTTP/2. Flow control
-- follows the reader: the window of a stream opens as its body is read.
local new_tab = require "table.new"
local core = require "lurl.core"
local event_queue = require "lurl.event_queue"
local sched = require "lurl.sched"
local status_mod = require "lurl.status"
local url = require "lurl.url"

local M = {}

-- Body bytes queued for the peer's window above which a sender waits.
local SEND_HIGH = 256 * 1024

local Conn = {}
local mt = { __name = "lurl.h2_connection", __index = Conn }
function mt.__tostring(c)
  return ("lurl.h2_connection (%s, %d streams%s)"):format(c.key, c.open_streams, c.closed and ", closed" or "")
end

local Channel = {}
local channel_mt = { __name = "lurl.h2_stream", __index = Channel }
function channel_mt.__tostring(ch) return ("lurl.h2_stream (%s, stream %s)"):format(ch.key, ch.sid or "not open") end

local DONE, EOF = { "done" }, { "eof" } -- shared: they carry nothing

local push = event_queue.push

local function wake_writer(ch, ...)
  local t = ch.writer
  if t then
    ch.writer = nil
    ch.conn.writers[ch] = nil
    sched.wake(t, ch.writer_seq, ...)
  end
end

-- ---- the connection ----

-- Everything nghttp2 wants sent, written now.
local fail_all

-- A write that failed ends the connection with its error: the kernel tells
-- a reset once, so the read that follows would only see an end of file.
local function write_failed(self, err, ename)
  if self.closed then return end
  fail_all(self, err, ename)
  self:close()
end

-- Senders waiting for the peer's window go on once what is queued of
-- their stream is below SEND_HIGH.
local function flush(self)
  self.flush_due = false
  if self.closed then return end
  local out = self.h:pull()
  if out == "" then return end
  local ok, err, ename = self.tcp:write(out, self.write_cb)
  if ok == nil then return write_failed(self, err, ename) end
  for ch in pairs(self.writers) do
    if self.h:queued(ch.sid) < SEND_HIGH then wake_writer(ch, true) end
  end
end

-- The frames of a turn (HEADERS of the requests its tasks start, WINDOW_UPDATEs
-- of the bodies they read) go out in one write once every task has run.
local function flush_later(self)
  if self.flush_due then return end
  self.flush_due = true
  sched.later(flush, self)
end

-- RFC 9113 section 8.3.1: the head of a response (core.h2's headers event:
-- its field lines, status, codings, Set-Cookie's presence and the first
-- field over max_field_size) as lurl.conn's head event.
local function head_event(ev, max_field)
  if ev[9] then
    -- the limit HTTP/1.1's parser puts on a header line, per field here
    -- (nghttp2's own is on the whole list)
    return { "error", ("header field %s is %d bytes, over max_field_size %d"):format(ev[9], ev[10], max_field),
      "HPE_HEADER_OVERFLOW" }
  end
  -- RFC 9113 section 8.3.2: no reason phrase on the wire
  local status = ev[4]
  return { "head", status, status_mod.reason(status), 2, 0, ev[3], true, ev[8], ev[7], done = ev[5] }
end

local RST_NAMES = { [0] = "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
  "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED" }

-- The peer's first SETTINGS (RFC 9113 section 3.4), or the end of the
-- connection before them: whoever waits to learn its limit on streams goes.
local function settle(self)
  if self.settled then return end
  self.settled = true
  local f = self.on_settled
  self.on_settled = nil
  if f then f() end
end

local function on_event(self, ev)
  local kind = ev[1]
  if kind == "settings" then return settle(self) end
  if kind == "goaway" then
    self.goaway_last = ev[2]
    -- RFC 9113 section 6.8: streams above the last id were never
    -- processed; they are refused, which the exchange replays
    for sid, ch in pairs(self.channels) do
      if sid > ev[2] then push(ch, { "error", "refused by GOAWAY", "H2_REFUSED_STREAM", refused = true }) end
    end
    return
  end
  local ch = self.channels[ev[2]]
  if not ch then return end
  -- sock_read is the gap between two reads of this stream (RFC 9113: other
  -- streams' traffic says nothing of this one's)
  ch.read_at = self.read_at
  if kind == "headers" then
    if ev[6] == "response" then
      ch.first_byte_at = ch.first_byte_at or sched.now()
      push(ch, head_event(ev, self.max_field_size))
      if ev[5] then ch.ended = true end
    elseif ev[6] == "trailers" and ev[5] then
      -- trailers end the body (RFC 9113 section 8.1); like HTTP/1.1's,
      -- they are not kept
      ch.ended = true
      push(ch, DONE)
    end
  elseif kind == "data" then
    if #ev[3] > 0 then push(ch, { "body", ev[3] }) end
    if ev[4] then ch.ended = true; push(ch, DONE) end
  elseif kind == "close" then
    self.channels[ev[2]] = nil
    self.open_streams = self.open_streams - 1
    if self.open_streams == 0 then self:idle() end
    if self.on_stream_end then self.on_stream_end(self) end
    ch.active = false
    if ev[3] ~= 0 then
      local name = RST_NAMES[ev[3]] or tostring(ev[3])
      push(ch, { "error", "stream reset by the server: " .. name, "H2_" .. name, refused = ev[3] == 7 })
    end
    wake_writer(ch, nil, "stream closed", "H2_STREAM_CLOSED")
  end
end

local function take_events(self)
  while true do
    local ev = self.h:event()
    if not ev then return end
    on_event(self, ev)
  end
end

function fail_all(self, msg, ename)
  for _, ch in pairs(self.channels) do
    -- the server's close is the event HTTP/1.1 gives it, so that both
    -- transports fail the same way (ServerDisconnectedError)
    push(ch, ename == "EOF" and EOF or { "error", msg, ename })
    wake_writer(ch, nil, msg, ename)
  end
end

local function on_read(self, data, err, ename)
  if not data then
    fail_all(self, ename == "EOF" and "connection closed by the server" or err, ename)
    return self:close()
  end
  self.read_at = sched.now()
  local ok, msg, name = self.h:recv(data)
  if not ok then
    fail_all(self, msg, name)
    return self:close()
  end
  take_events(self)
  flush_later(self)
end

-- new(stream, key, opts) -> an HTTP/2 connection: the preface and SETTINGS
-- go out at once. opts: max_field_size, keepalive_timeout, on_close(conn),
-- on_stream_end(conn) (a stream ended: room for another).
function M.new(stream, key, opts)
  local self = setmetatable({
    key = key, tcp = stream, h2 = true, closed = false, open_streams = 0, reserved = 0, channels = {},
    writers = {}, flush_due = false, -- writers: the channels whose senders wait for the peer's window
    goaway_last = false,
    read_at = false, on_close = opts.on_close, keepalive_timeout = opts.keepalive_timeout, idle_timer = false,
    max_field_size = opts.max_field_size, settled = false, on_settled = false, on_stream_end = opts.on_stream_end,
    h = core.h2.session {
      max_header_list_size = opts.max_field_size and opts.max_field_size * 8 or nil,
      max_field_size = opts.max_field_size,
    },
  }, mt)
  self.write_cb = function(ok, err, ename) if not ok then write_failed(self, err, ename) end end
  stream:read_start(function(data, err, ename) return on_read(self, data, err, ename) end)
  flush(self)
  return self
end

-- Whether another request may start here (the peer's concurrency, no
-- GOAWAY, open).
function Conn:can_open()
  return not self.closed and not self.goaway_last and self.h:can_open()
    and self.open_streams + self.reserved < self.h:peer_max_streams()
end

-- A channel for one request. Until it opens its stream it holds a place
-- (reserved), so that requests handed channels in the same turn never
-- exceed the peer's limit on streams.
function Conn:channel()
  self.reserved = self.reserved + 1
  -- every field it gets is here from the start, so that it never grows
  return setmetatable({ conn = self, key = self.key, h2 = true, tls = self.tls, ip = self.ip,
    queue = event_queue.new(), active = false, opened = false, ended = false, closed = false, reusable = true,
    held = false, -- a request has it (lurl.connector's hold)
    sid = false, first_byte_at = false, read_at = false, requests = 0,
    reader = false, reader_seq = false, writer = false, writer_seq = false }, channel_mt)
end

-- No stream open: the connection closes after keepalive_timeout unless a
-- request takes a stream again (as an idle HTTP/1.1 connection expires).
function Conn:idle()
  if not self.keepalive_timeout or self.closed then return end
  if not self.idle_timer then
    self.idle_timer = sched.timer()
    self.idle_timer:ref(false)
    self.idle_cb = function() if self.open_streams == 0 then self:close() end end
  end
  self.idle_timer:start(self.keepalive_timeout, self.idle_cb)
  self.tcp:ref(false)
end

function Conn:close()
  if self.closed then return end
  self.closed = true
  settle(self)
  if self.idle_timer then self.idle_timer:close() end
  fail_all(self, "connection closed", "ECLOSED")
  self.tcp:close()
  if self.on_close then self.on_close(self) end
end

-- ---- one request's stream ----

-- RFC 9113 section 8.2.2: fields that are HTTP/1.1's connection business
-- have no place in HTTP/2 ("te" only as "trailers").
local DROP = { connection = true, ["keep-alive"] = true, ["proxy-connection"] = true, ["transfer-encoding"] = true,
  upgrade = true, host = true }

-- open(ex, end_stream): the HEADERS frame (section 8.3.1's pseudo-headers
-- first) -> true, or nil, message, ename.
function Channel:open(ex, end_stream)
  local lower, given = ex.headers:fields()
  local names, values = new_tab(#lower + 4, 0), new_tab(#lower + 4, 0)
  names[1], names[2], names[3], names[4] = ":method", ":scheme", ":authority", ":path"
  values[1], values[2] = ex.method, ex.url.scheme
  values[3], values[4] = ex.headers:get("Host") or url.host_header(ex.url), url.target(ex.url)
  local n = 4
  for i = 1, #lower do
    local name, value = lower[i], given[i]
    if not DROP[name] and (name ~= "te" or value:lower() == "trailers") then
      n = n + 1
      names[n], values[n] = name, value
    end
  end
  local conn = self.conn
  local sid, err = conn.h:request(names, values, end_stream)
  if not sid then return nil, err, "H2_REQUEST" end
  conn.reserved = conn.reserved - 1
  self.sid, self.active, self.opened = sid, true, true
  conn.channels[sid] = self
  conn.open_streams = conn.open_streams + 1
  if conn.idle_timer then conn.idle_timer:stop() end
  conn.tcp:ref(true)
  flush_later(conn)
  return true
end

-- send(data, deadline, ctx[, last]): body bytes as DATA frames; waits while
-- more than SEND_HIGH waits for the peer's window.
function Channel:send(data, deadline, ctx, last)
  local conn = self.conn
  if conn.closed or not self.active then return nil, "ECONNRESET: stream closed", "ECONNRESET" end
  conn.h:data(self.sid, data, last or false)
  flush(conn)
  if conn.h:queued(self.sid) < SEND_HIGH then return true end
  self.writer, self.writer_seq = sched.prepare()
  conn.writers[self] = true
  return deadline:park(self.writer, "write", ctx)
end

-- begin(no_body): a channel carries one request.
function Channel:begin()
  self.requests = self.requests + 1
end

-- Expect: 100-continue does not apply (the body follows its HEADERS).
function Channel:await_continue() return "continue" end

-- read_event(deadline, ctx) -> the next event, as lurl.conn's; body bytes
-- taken open the stream's window again (RFC 9113 section 5.2).
function Channel:read_event(deadline, ctx)
  local ev, err = event_queue.take(self, deadline, ctx)
  if not ev then return nil, err end
  -- every byte read opens the windows again, the connection's too once the
  -- stream has ended (RFC 9113 section 6.9: DATA counts against both)
  if ev[1] == "body" and not self.conn.closed then
    self.conn.h:consume(self.sid, #ev[2])
    flush_later(self.conn)
  end
  return ev
end

-- A stream is never reused; its connection goes on when it ended cleanly.
function Channel:can_reuse() return self.ended end

-- close(): an unfinished stream is reset (CANCEL), only it.
function Channel:close()
  if self.closed then return end
  self.closed = true
  local conn = self.conn
  if not self.opened then
    conn.reserved = conn.reserved - 1
    -- its place goes to a request waiting for one
    if conn.on_stream_end then conn.on_stream_end(conn) end
    return
  end
  -- body bytes that came and will never be read still count against the
  -- connection's window: they are consumed here, or the connection stalls
  -- once streams left unread add up to it
  local q, unread = self.queue, 0
  for i = q.head, q.tail do
    local ev = q[i]
    if ev[1] == "body" then unread = unread + #ev[2] end
  end
  if unread > 0 and not conn.closed then conn.h:consume(self.sid, unread) end
  if self.active and not conn.closed then
    conn.h:reset(self.sid, 8)
    flush(conn)
    -- the stream's close event comes as the reset goes out: counted now,
    -- not at the next read
    take_events(conn)
  end
end

M.Channel = Channel
return M
