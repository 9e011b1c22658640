-- lurl: BENCH_REQUESTS WebSocket messages echoed by the server at BENCH_URL,
-- over BENCH_CONNS connections of one session (session:ws_connect, compress =
-- false: no permessage-deflate), BENCH_WINDOW messages in flight on each:
-- it sends that many, then one more for each echo it receives. Every message
-- is BENCH_FILE's bytes, as text or binary (BENCH_MESSAGE), and every echo
-- must be of that type and equal to it. Prints requests (messages), seconds
-- (the echo phase only, connecting included) and the VmRSS after the first
-- tenth of the messages and at the end (rss_warm, rss_end, bytes).
local lurl = require "lurl"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")

local p = lib.params()
local window = tonumber(os.getenv("BENCH_WINDOW")) or 1
local binary = os.getenv("BENCH_MESSAGE") == "binary"
local f = assert(io.open(assert(p.file, "BENCH_FILE is not set"), "rb"))
local payload = f:read("*a")
f:close()
local want = binary and "binary" or "text"

local session = lurl.session()
local received, rss_warm = 0, nil
local warm_at = math.max(1, math.floor(p.requests / 10))

-- task t's share of the messages over its own connection, window at a time
local function echo(t)
  local n = lib.share(p.requests, p.conns, t)
  local ws = assert(session:ws_connect(p.url, { compress = false, max_msg_size = 0 }))
  local send = binary and ws.send_bytes or ws.send_str
  local sent = 0
  while sent < math.min(window, n) do
    assert(send(ws, payload))
    sent = sent + 1
  end
  for i = 1, n do
    local msg = assert(ws:receive())
    if msg.type ~= want or msg.data ~= payload then
      error(("task %d message %d: a %s message of %s bytes"):format(t, i, msg.type,
        type(msg.data) == "string" and #msg.data or "no"), 0)
    end
    received = received + 1
    if received == warm_at then rss_warm = lib.vmrss() end
    if sent < n then
      assert(send(ws, payload))
      sent = sent + 1
    end
  end
  ws:close()
end

local t0 = lurl.now()
lib.run_tasks(p.conns, echo)
local elapsed = lurl.now() - t0
session:close()
assert(received == p.requests, ("%d of %d messages echoed"):format(received, p.requests))
lib.print_json { requests = received, seconds = elapsed, rss_warm = rss_warm, rss_end = lib.vmrss() }
