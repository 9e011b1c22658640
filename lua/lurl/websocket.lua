-- A WebSocket connection, client side (RFC 6455, RFC 7692's
-- permessage-deflate; aiohttp's ClientWebSocketResponse). Frames are read,
-- unmasked and checked in C (core.ws.reader); here messages are assembled,
-- control frames answered, the close handshake run and the peer watched
-- (heartbeat). The read side runs from the stream's callbacks and queues
-- messages; receive() hands them to the script one at a time.
--
-- A message: { type = "text" | "binary" | "ping" | "pong" | "close" |
-- "closing" | "closed" | "error", data, extra }: close has data = the code
-- and extra = the reason, error has data = the lurl error.
local cjson = require "cjson"
local core = require "lurl.core"
local check = require "lurl.check"
local errors = require "lurl.errors"
local sched = require "lurl.sched"

local M = {}

local ws = core.ws
local TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10
local TYPES = { [TEXT] = "text", [BINARY] = "binary" }

M.MsgType = { TEXT = "text", BINARY = "binary", PING = "ping", PONG = "pong", CLOSE = "close",
  CLOSING = "closing", CLOSED = "closed", ERROR = "error" }

-- RFC 6455 section 7.4.1 and the IANA registry (11.7)
M.CloseCode = { OK = 1000, GOING_AWAY = 1001, PROTOCOL_ERROR = 1002, UNSUPPORTED_DATA = 1003, NO_STATUS = 1005,
  ABNORMAL_CLOSURE = 1006, INVALID_TEXT = 1007, POLICY_VIOLATION = 1008, MESSAGE_TOO_BIG = 1009,
  MANDATORY_EXTENSION = 1010, INTERNAL_ERROR = 1011, SERVICE_RESTART = 1012, TRY_AGAIN_LATER = 1013,
  BAD_GATEWAY = 1014 }
local CC = M.CloseCode

-- ---- lurl.ws_timeout ----

local timeout_mt = { __name = "lurl.ws_timeout" }
function timeout_mt.__tostring(t)
  return ("lurl.ws_timeout { ws_receive = %s, ws_close = %s }"):format(tostring(t.ws_receive), tostring(t.ws_close))
end

-- lurl.ws_timeout{ ws_receive = seconds (default: none), ws_close = 10 }:
-- how long receive() waits for a message, and close() for the peer's close.
function M.timeout(spec)
  spec = check.options("ws_timeout", "#1", spec or {}, { ws_receive = "any", ws_close = "any" })
  return setmetatable({
    ws_receive = check.seconds("ws_timeout", "'ws_receive'", spec.ws_receive, true) or false,
    ws_close = check.seconds("ws_timeout", "'ws_close'", spec.ws_close, true),
  }, timeout_mt)
end

function M.is_timeout(v) return getmetatable(v) == timeout_mt end

-- ---- the connection ----

local WebSocket = {}
local mt = { __name = "lurl.websocket", __index = WebSocket }
function mt.__tostring(w)
  return ("lurl.websocket (%s, %s)"):format(w.url, w.closed and "closed" or w.closing and "closing" or "open")
end

-- A close code a peer may send (RFC 6455 section 7.4): 1004-1006 and 1015
-- are never sent, 1016-2999 are unassigned.
local function valid_close_code(c)
  return (c >= 1000 and c <= 1003) or (c >= 1007 and c <= 1014) or (c >= 3000 and c <= 4999)
end

local function wake_receiver(self)
  local t = self.receiver
  if t then
    self.receiver = nil
    sched.wake(t, self.receiver_seq, true)
  end
end

local function push(self, msg)
  local q = self.queue
  q.tail = q.tail + 1
  q[q.tail] = msg
  wake_receiver(self)
end

-- Writes from the read side (pongs, the close reply) are not waited for:
-- the stream keeps the bytes until they are sent.
local function write_now(self, op, payload)
  if self.stream:closed() then return end
  self.stream:write(ws.frame(op, payload, true, false, self.mask))
end

local function stop_timers(self)
  if self.beat then self.beat:close(); self.beat = nil end
end

-- The end of the TCP connection: no more reads or writes; writers still
-- waiting get the stream's error through their callbacks.
local function finish(self)
  if self.closed then return end
  self.closed = true
  stop_timers(self)
  if not self.stream:closed() then self.stream:close() end
  wake_receiver(self)
end

local function close_payload(code, reason)
  return string.char(math.floor(code / 256), code % 256) .. (reason or "")
end

-- RFC 6455 section 7.1.7, Fail the WebSocket Connection: a close frame
-- with the code (unless one was sent), then the TCP connection closed once
-- it is written; the script gets an error message.
local function fail(self, code, reason)
  if self.closed then return end
  local err = errors.new("WebSocketError", reason, { code = code, url = self.url })
  self.failure, self.close_code = err, code
  if not self.closing then
    self.closing = true
    write_now(self, CLOSE, close_payload(code, reason:sub(1, 123)))
  end
  push(self, { type = "error", data = err })
  finish(self)
end

-- The connection ended without a close handshake (RFC 6455 section 7.1.5:
-- the close code is 1006), or the peer went silent past the heartbeat.
local function lost(self, err)
  if self.closed then return end
  self.close_code = self.close_code or CC.ABNORMAL_CLOSURE
  if not self.close_received then
    self.failure = err
    push(self, { type = "error", data = err })
  end
  finish(self)
end

-- ---- incoming frames ----

local function on_close_frame(self, payload)
  if #payload == 1 then return fail(self, CC.PROTOCOL_ERROR, "close frame with a 1-byte payload") end
  local code, reason = CC.NO_STATUS, ""
  if #payload >= 2 then
    code, reason = payload:byte(1) * 256 + payload:byte(2), payload:sub(3)
    if not valid_close_code(code) then return fail(self, CC.PROTOCOL_ERROR, "invalid close code " .. code) end
    local v = ws.utf8()
    if not (v:feed(reason) and v:finish()) then return fail(self, CC.INVALID_TEXT, "close reason is not UTF-8") end
  end
  self.close_received, self.close_code = true, code
  if self.closing then return finish(self) end -- our close, answered
  push(self, { type = "close", data = code, extra = reason })
  if self.autoclose then
    -- section 5.5.1: echo the code (none for a close without one)
    self.closing = true
    write_now(self, CLOSE, code == CC.NO_STATUS and "" or close_payload(code))
    finish(self)
  end
end

local function on_control(self, op, payload)
  if op == CLOSE then return on_close_frame(self, payload) end
  if op == PING then
    if self.autoping then return write_now(self, PONG, payload) end
    return push(self, { type = "ping", data = payload })
  end
  -- a pong: the heartbeat counts any byte read as a sign of life
  if not self.autoping then push(self, { type = "pong", data = payload }) end
end

-- A complete message: decompressed (RFC 7692 section 7.2.2), text checked
-- as UTF-8 (section 8.1), then queued.
local function on_message(self, m)
  local data = #m.parts == 1 and m.parts[1] or table.concat(m.parts)
  if m.compressed then
    local out, why = self.inflater:decompress(data, self.max_msg_size)
    if not out then
      if why == "EMSGSIZE" then return fail(self, CC.MESSAGE_TOO_BIG, "message larger than max_msg_size") end
      return fail(self, CC.INVALID_TEXT, "cannot inflate the message: " .. tostring(why))
    end
    data = out
    if m.type == "text" then
      self.utf8:reset()
      if not self.utf8:feed(data) then return fail(self, CC.INVALID_TEXT, "text message is not UTF-8") end
    end
  end
  if m.type == "text" and not self.utf8:finish() then
    return fail(self, CC.INVALID_TEXT, "text message is not UTF-8")
  end
  push(self, { type = m.type, data = data })
end

local function on_data(self, op, payload, fin, rsv1)
  local m = self.message
  if op ~= 0 then
    m = { type = TYPES[op], parts = {}, size = 0, compressed = rsv1 }
    self.message = m
    if m.type == "text" then self.utf8:reset() end
  end
  m.size = m.size + #payload
  if m.size > self.max_msg_size then return fail(self, CC.MESSAGE_TOO_BIG, "message larger than max_msg_size") end
  -- text is checked as it comes, so a bad byte fails at once (section 8.1)
  if m.type == "text" and not m.compressed and not self.utf8:feed(payload) then
    return fail(self, CC.INVALID_TEXT, "text message is not UTF-8")
  end
  m.parts[#m.parts + 1] = payload
  if not fin then return end
  self.message = nil
  on_message(self, m)
end

local function on_read(self, data, err, ename)
  if not data then
    if ename == "EOF" and self.close_received then return finish(self) end
    return lost(self, errors.new(ename == "EOF" and "ServerDisconnectedError" or "ClientOSError",
      ename == "EOF" and "the server closed the connection without a close frame" or tostring(err),
      { url = self.url, errno = ename }))
  end
  if self.heartbeat then self.read_at = sched.now() end
  local r = self.reader
  r:feed(data)
  while not self.closed do
    local op, payload, fin, rsv1 = r:next()
    if op == nil then return end
    if op == false then return fail(self, payload, fin) end
    if op >= CLOSE then on_control(self, op, payload) else on_data(self, op, payload, fin, rsv1) end
  end
end

-- ---- heartbeat ----

-- RFC 6455 section 5.5.2: a ping after `heartbeat` seconds without a byte
-- from the peer, whatever the script does; no byte within half of that
-- after the ping (a pong, or anything) and the peer is gone.
local function beat(self)
  if self.closed then return end
  local now, hb = sched.now(), self.heartbeat
  if self.ping_at then
    if self.read_at > self.ping_at then
      self.ping_at = false
    elseif now - self.ping_at >= hb / 2 then
      return lost(self, errors.new("ServerTimeoutError",
        ("no PONG received after %g seconds"):format(hb / 2), { url = self.url }))
    else
      return self.beat:start(self.ping_at + hb / 2 - now, self.beat_cb)
    end
  end
  local quiet = now - self.read_at
  if quiet < hb then return self.beat:start(hb - quiet, self.beat_cb) end
  self.ping_at = now
  write_now(self, PING, "")
  self.beat:start(hb / 2, self.beat_cb)
end

local function start_heartbeat(self)
  self.read_at, self.ping_at = sched.now(), false
  self.beat = sched.timer()
  self.beat:ref(false)
  self.beat_cb = function() return beat(self) end
  self.beat:start(self.heartbeat, self.beat_cb)
end

-- ---- making one ----

-- new(stream, extra, opts) -> a WebSocket over the stream the opening
-- handshake left (extra: bytes the server sent behind its 101). opts: url,
-- protocol, headers, tls, deflate ({ client_bits, server_bits,
-- client_no_context_takeover, server_no_context_takeover } or nil),
-- autoclose, autoping, heartbeat, max_msg_size, timeout (lurl.ws_timeout),
-- json_serialize, server (the server's side, for lurl.testing.server:
-- masked frames in, unmasked out, RFC 6455 section 5.1).
function M.new(stream, extra, opts)
  local deflate, server = opts.deflate, opts.server or false
  local self = setmetatable({
    stream = stream, url = opts.url, protocol = opts.protocol, headers = opts.headers, tls = opts.tls,
    reader = ws.reader { masked = server, rsv1 = deflate ~= nil, max_size = opts.max_msg_size }, mask = not server,
    utf8 = ws.utf8(), queue = { head = 1, tail = 0 }, writers = { head = 1, tail = 0 },
    autoclose = opts.autoclose, autoping = opts.autoping, heartbeat = opts.heartbeat or false,
    max_msg_size = opts.max_msg_size, receive_timeout = opts.timeout.ws_receive or nil,
    close_timeout = opts.timeout.ws_close, json_serialize = opts.json_serialize,
    closed = false, closing = false, close_received = false, close_code = nil, failure = nil,
  }, mt)
  if deflate then
    -- RFC 7692 section 7.1: each side's window and takeover are its own
    local mine, theirs = "client", "server"
    if server then mine, theirs = theirs, mine end
    self.deflater = ws.deflater(deflate[mine .. "_bits"], deflate[mine .. "_no_context_takeover"])
    self.inflater = ws.inflater(deflate[theirs .. "_bits"], deflate[theirs .. "_no_context_takeover"])
  end
  self.write_cb = function(ok, err, ename)
    local q = self.writers
    local w = q[q.head]
    q[q.head], q.head = nil, q.head + 1
    if w then sched.wake(w[1], w[2], ok, err, ename) end
  end
  self.read_cb = function(data, err, ename) return on_read(self, data, err, ename) end
  if self.heartbeat then start_heartbeat(self) end
  if extra and extra ~= "" then on_read(self, extra) end
  if not self.closed then stream:read_start(self.read_cb) end
  return self
end

-- ---- sending ----

local function closed_error(self)
  return errors.new("ClientConnectionResetError", "cannot send: the WebSocket is "
    .. (self.closed and "closed" or "closing"), { url = self.url, code = self.close_code })
end

-- A frame's bytes: a big one as pieces below LuaJIT's big-string size
-- (core.ws.frame_pieces), which the stream writes as one.
local PIECES_ABOVE = 120 * 1024
local function frame(op, payload, rsv1, mask)
  if #payload > PIECES_ABOVE then return ws.frame_pieces(op, payload, true, rsv1, mask) end
  return ws.frame(op, payload, true, rsv1, mask)
end

-- One frame out; a write the socket queued is waited for, so a fast sender
-- is held to the network's pace (memory stays flat).
local function send(self, op, payload, rsv1)
  if self.closing or self.closed then return nil, closed_error(self) end
  local ok, e, en = self.stream:write(frame(op, payload, rsv1, self.mask), self.write_cb)
  if ok then return true end
  if ok == nil then return nil, errors.new("ClientOSError", tostring(e), { url = self.url, errno = en }) end
  local q = self.writers
  local task, seq = sched.prepare()
  q.tail = q.tail + 1
  q[q.tail] = { task, seq }
  local done, err, ename = sched.park(task)
  if done then return true end
  return nil, errors.new("ClientOSError", tostring(err), { url = self.url, errno = ename })
end

local function send_data(self, op, payload)
  if self.deflater then return send(self, op, self.deflater:compress(payload), true) end
  return send(self, op, payload, false)
end

function WebSocket:send_str(s)
  return send_data(self, TEXT, check.arg("send_str", "#1", s, "string"))
end

function WebSocket:send_bytes(b)
  return send_data(self, BINARY, check.arg("send_bytes", "#1", b, "string"))
end

function WebSocket:send_json(v)
  return send_data(self, TEXT, (self.json_serialize or cjson.encode)(v))
end

local OPCODES = { [0] = true, [TEXT] = true, [BINARY] = true, [CLOSE] = true, [PING] = true, [PONG] = true }

-- send_frame(data, opcode): one frame as given, uncompressed (aiohttp 3.11)
function WebSocket:send_frame(data, opcode)
  check.arg("send_frame", "#1", data, "string")
  if not OPCODES[opcode] then check.argerror("send_frame", "#2", "opcode 0, 1, 2, 8, 9 or 10 expected") end
  return send(self, opcode, data, false)
end

local function control(fname, self, op, data)
  data = data or ""
  check.arg(fname, "#1", data, "string")
  -- RFC 6455 section 5.5: control payloads are 125 bytes at most
  if #data > 125 then check.argerror(fname, "#1", "at most 125 bytes expected, got " .. #data) end
  return send(self, op, data, false)
end

function WebSocket:ping(data) return control("ping", self, PING, data) end
function WebSocket:pong(data) return control("pong", self, PONG, data) end

-- ---- receiving ----

local CLOSED_MSG = { type = "closed" }

local function pop(self)
  local q = self.queue
  local msg = q[q.head]
  if not msg then return nil end
  q[q.head], q.head = nil, q.head + 1
  return msg
end

-- receive([timeout]) -> the next message, or nil and a TimeoutError after
-- timeout seconds (default: the ws_receive timeout, or none). After the
-- close: { type = "closed" }.
function WebSocket:receive(secs)
  local msg = pop(self)
  if msg then return msg end
  if self.closed then return CLOSED_MSG end
  if self.receiver then check.raise("another task is already waiting in receive() on this WebSocket") end
  secs = check.seconds("receive", "#1", secs) or self.receive_timeout
  local task, seq = sched.prepare()
  self.receiver, self.receiver_seq = task, seq
  local r = sched.park(task, secs, function() self.receiver = nil end)
  if r == sched.TIMEOUT then
    self.receiver = nil
    return nil, errors.new("TimeoutError", ("no message within %g seconds"):format(secs), { url = self.url })
  end
  return pop(self) or CLOSED_MSG
end

local function typed(fname, self, want, secs)
  local msg, err = self:receive(secs)
  if not msg then return nil, err end
  if msg.type ~= want then
    return nil, errors.new("WSMessageTypeError", ("%s: received a %s message, not %s"):format(fname, msg.type, want),
      { url = self.url, message = msg })
  end
  return msg.data
end

function WebSocket:receive_str(secs) return typed("receive_str", self, "text", secs) end
function WebSocket:receive_bytes(secs) return typed("receive_bytes", self, "binary", secs) end

function WebSocket:receive_json(secs)
  local s, err = typed("receive_json", self, "text", secs)
  if not s then return nil, err end
  local ok, v = pcall(cjson.decode, s)
  if not ok then return nil, errors.new("ClientPayloadError", "invalid JSON: " .. tostring(v), { url = self.url }) end
  return v
end

local ENDS = { close = true, closing = true, closed = true, error = true }

-- for msg in ws:messages() do ... end: the data messages (and pings and
-- pongs without autoping) until the connection closes or fails.
function WebSocket:messages()
  return function()
    local msg = self:receive()
    if not msg or ENDS[msg.type] then return nil end
    return msg
  end
end

-- The error that ended the connection, if one did.
function WebSocket:exception() return self.failure end

-- ---- closing ----

-- close{ code = 1000, message = "" } -> true once the close handshake is
-- done (or timed out: ws_close), false when it was already closed.
function WebSocket:close(opts)
  opts = check.options("close", "#1", opts or {}, { code = "number", message = "string" })
  if self.closed then return false end
  local code, message = opts.code or CC.OK, opts.message or ""
  if #message > 123 then check.argerror("close", "'message'", "at most 123 bytes expected") end
  if not self.closing then
    self.closing = true
    self.close_code = code
    write_now(self, CLOSE, close_payload(code, message))
  end
  local deadline = self.close_timeout and sched.now() + self.close_timeout
  while not self.closed do
    local left = deadline and deadline - sched.now()
    if left and left <= 0 then
      self.close_code = CC.ABNORMAL_CLOSURE
      finish(self)
      break
    end
    local task, seq = sched.prepare()
    self.receiver, self.receiver_seq = task, seq
    sched.park(task, left, function() self.receiver = nil end)
    self.receiver = nil
    -- what came meanwhile is not for anyone: the script asked to close
    while pop(self) do end
  end
  return true
end

return M
