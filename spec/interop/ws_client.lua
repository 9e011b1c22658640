-- lurl's WebSocket client against a real server: run by
-- spec/interop_websocket_test.sh as
--   lurl spec/interop/ws_client.lua url=URL case=CASE [key=value...]
-- against the echo servers in spec/interop/ws_servers/ (their paths are
-- described there). Keys:
--   url=URL            the ws:// or wss:// URL, path included (required)
--   case=CASE          what to run on it (required, the cases below)
--   compress=N         ws_connect's compress (0: no permessage-deflate)
--   cafile=PATH        the CA the server's certificate is verified against
--   proxy=URL          the proxy (a CONNECT tunnel), auth=USER:PASS its user
--   type=text|binary   the echo case's messages
--   sizes=N,N,...      the echo case's message sizes in bytes
--   n=N                the burst case's message count (200)
--   code=N             the close case's expected close code
--   autoping=0         the ping case answers the server's ping itself
-- Prints one JSON line: {"ok", "case", "extensions" (the response's
-- Sec-WebSocket-Extensions), "protocol", "close_code", ...} and, when not
-- ok, "error" (the lurl error's kind, or "mismatch") and "message". Exits
-- non-zero when not ok.
local lurl = require "lurl"
local cjson = require "cjson"

local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local opts = dofile(dir .. "/harness.lua").args(...)
assert(opts.url and opts.case, "usage: lurl ws_client.lua url=URL case=CASE [key=value...]")

-- ---- payloads ----

-- Text of exactly n bytes with 2- and 3-byte characters in it; one cut at
-- the end becomes dots, so the text stays UTF-8 (RFC 6455 section 5.6).
local PATTERN = "héllo wörld ✓ "
local function text_of(n)
  local s = PATTERN:rep(math.ceil(n / #PATTERN)):sub(1, n)
  local i = #s
  while i > 0 and s:byte(i) >= 0x80 and s:byte(i) < 0xC0 do i = i - 1 end
  local lead = s:byte(i) or 0
  local need = lead >= 0xE0 and 3 or lead >= 0xC0 and 2 or 1
  if #s - i + 1 < need then s = s:sub(1, i - 1) .. ("."):rep(#s - i + 1) end
  return s
end

-- n bytes of every value, from a xorshift generator: nothing for deflate
-- to shrink, and the same every run.
local function bytes_of(n)
  local out, chunk, x = {}, {}, 2463534242
  for i = 1, n do
    x = bit.bxor(x, bit.lshift(x, 13))
    x = bit.bxor(x, bit.rshift(x, 17))
    x = bit.bxor(x, bit.lshift(x, 5))
    chunk[#chunk + 1] = string.char(bit.band(x, 255))
    if #chunk == 4096 or i == n then out[#out + 1] = table.concat(chunk); chunk = {} end
  end
  return table.concat(out)
end

-- ---- checks ----

-- A case step fails by raising { kind, message }; lurl's own errors keep
-- their kind, a wrong answer is a "mismatch".
local function fail(kind, message) error({ kind = kind, message = message }, 0) end

local function must(v, err)
  if v == nil then fail(err and err.kind or "nil", tostring(err)) end
  return v
end

local function describe(msg)
  local data = msg.data
  if type(data) == "string" and #data > 60 then data = ("%d bytes"):format(#data) end
  return ("%s message (%s)"):format(msg.type, tostring(data))
end

local function receive(ws, want_type)
  local msg = must(ws:receive())
  if msg.type == "error" then fail(msg.data.kind, tostring(msg.data)) end
  if want_type and msg.type ~= want_type then
    fail("mismatch", "want a " .. want_type .. ", got a " .. describe(msg))
  end
  return msg
end

local function expect_text(ws, want)
  local got = receive(ws, "text").data
  if got ~= want then fail("mismatch", ("want text %q, got %q"):format(want, got)) end
end

local function send(ws, kind, payload)
  if kind == "text" then return must(ws:send_str(payload)) end
  return must(ws:send_bytes(payload))
end

-- One message there and back, compared byte for byte.
local function round_trip(ws, kind, payload)
  send(ws, kind, payload)
  local got = receive(ws, kind).data
  if got ~= payload then
    local at = 1
    while got:byte(at) == payload:byte(at) do at = at + 1 end
    fail("mismatch", ("%s of %d bytes came back as %d bytes, first difference at byte %d"):format(
      kind, #payload, #got, at))
  end
end

-- The client's close handshake (RFC 6455 section 7.1.2): close() waits for
-- the server's answer, and the code is the one sent.
local function close_cleanly(ws)
  if must(ws:close()) ~= true then fail("mismatch", "close() did not run the close handshake") end
  if ws.close_code ~= 1000 then fail("mismatch", "close_code " .. tostring(ws.close_code) .. " after close()") end
end

-- ---- cases ----

local cases = {}

function cases.echo(ws, line)
  local kind = opts.type or "text"
  local make = kind == "text" and text_of or bytes_of
  line.sizes = {}
  for size in (opts.sizes or "0,1,125,126,65535,65536,1048576"):gmatch("%d+") do
    round_trip(ws, kind, make(tonumber(size)))
    line.sizes[#line.sizes + 1] = tonumber(size)
  end
  close_cleanly(ws)
end

-- Many messages out before any comes back, text and binary by turns, of
-- sizes on both sides of node ws' 1024-byte compression threshold: frames
-- that arrive together, and RSV1 that changes from message to message (RFC
-- 7692 section 6), in order.
function cases.burst(ws, line)
  local n, sent = tonumber(opts.n) or 200, {}
  for i = 1, n do
    local kind = i % 2 == 0 and "binary" or "text"
    sent[i] = { kind, kind == "text" and text_of(i * 37 % 3000) or bytes_of(i * 53 % 3000) }
    send(ws, kind, sent[i][2])
  end
  for i = 1, n do
    local msg = receive(ws, sent[i][1])
    if msg.data ~= sent[i][2] then fail("mismatch", ("message %d of %d came back changed"):format(i, n)) end
  end
  line.messages = n
  close_cleanly(ws)
end

-- A large message deflate shrinks to almost nothing (RFC 7692), both ways.
function cases.deflate(ws)
  round_trip(ws, "text", ("lurl permessage-deflate interop check, "):rep(27000))
  close_cleanly(ws)
end

-- The server pings with "p" and says whether the pong came back (RFC 6455
-- section 5.5.3: the pong carries the ping's payload); with autoping=0 the
-- script sees the ping and answers it itself.
function cases.ping(ws, line)
  if opts.autoping == "0" then
    local msg = receive(ws, "ping")
    if msg.data ~= "p" then fail("mismatch", "ping payload " .. describe(msg)) end
    must(ws:pong(msg.data))
  end
  expect_text(ws, "pong:p")
  line.pong_seen = true
  round_trip(ws, "text", "still here after the ping")
  close_cleanly(ws)
end

-- One text message in three frames (RFC 6455 section 5.4).
function cases.frag(ws)
  expect_text(ws, "one-two-three")
  round_trip(ws, "text", "after the fragments")
  close_cleanly(ws)
end

-- The server closes with a code and "bye CODE": the client sees the close
-- message, answers it (autoclose) and keeps the code.
function cases.close(ws, line)
  local code = tonumber(opts.code)
  local msg = receive(ws, "close")
  line.code, line.reason = msg.data, msg.extra
  if msg.data ~= code or msg.extra ~= "bye " .. code then
    fail("mismatch", ("want close %d %q, got %s %q"):format(code, "bye " .. code, tostring(msg.data),
      tostring(msg.extra)))
  end
  if ws.close_code ~= code then fail("mismatch", "ws.close_code is " .. tostring(ws.close_code)) end
  if receive(ws).type ~= "closed" then fail("mismatch", "no closed message after the close") end
  if not ws.closed then fail("mismatch", "ws.closed is false after the server's close") end
end

function cases.subproto(ws)
  if ws.protocol ~= "chat" then fail("mismatch", "ws.protocol is " .. tostring(ws.protocol)) end
  expect_text(ws, "protocol:chat")
  round_trip(ws, "text", "chat message")
  close_cleanly(ws)
end

-- ---- the run ----

local function connect(session)
  local o = {
    compress = opts.compress and tonumber(opts.compress),
    ssl = opts.cafile and lurl.ssl_context { cafile = opts.cafile } or nil,
    proxy = opts.proxy,
    protocols = opts.case == "subproto" and { "chat" } or nil,
    autoping = opts.autoping ~= "0",
    timeout = lurl.ws_timeout { ws_receive = 10, ws_close = 5 },
  }
  if opts.auth then
    local user, pass = opts.auth:match("^([^:]*):(.*)$")
    o.proxy_auth = lurl.basic_auth(user, pass)
  end
  return must(session:ws_connect(opts.url, o))
end

local function run(line)
  local case = cases[opts.case] or error("unknown case " .. opts.case)
  local session = lurl.session { timeout = lurl.timeout { sock_connect = 5, sock_read = 10 } }
  local ok, e = pcall(function()
    local ws = connect(session)
    line.extensions = ws.headers["sec-websocket-extensions"] or false
    line.protocol = ws.protocol or false
    case(ws, line)
    line.close_code = ws.close_code
  end)
  session:close()
  if not ok then
    if type(e) ~= "table" then error(e, 0) end
    line.error, line.message = e.kind, e.message
  end
  line.ok = ok
end

local line = { case = opts.case }
local started = lurl.now()
run(line)
line.elapsed = math.floor((lurl.now() - started) * 1000) / 1000
print(cjson.encode(line))
os.exit(line.ok and 0 or 1)
