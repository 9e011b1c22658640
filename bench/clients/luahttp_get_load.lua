-- lua-http (cqueues): BENCH_CONNS keep-alive connections, one coroutine each
-- doing its share of BENCH_REQUESTS GETs of BENCH_URL in sequence on its own
-- http.client connection; every status and body length (BENCH_BYTES)
-- checked. lua-http 0.4 has no connection pool, so each coroutine keeps its
-- connection itself. Runs on LuaJIT or Lua 5.1 (scripts/bench picks).
-- Prints requests and seconds (the load phase only).
local cqueues = require "cqueues"
local client = require "http.client"
local new_headers = require "http.headers".new
local http_util = require "http.util"

local URL = assert(os.getenv("BENCH_URL"), "BENCH_URL is not set: scripts/bench runs this adapter")
local TOTAL = tonumber(os.getenv("BENCH_REQUESTS"))
local CONNS = tonumber(os.getenv("BENCH_CONNS"))
local LEN = tonumber(os.getenv("BENCH_BYTES"))
local host, port, path = URL:match("^http://([^:/]+):(%d+)(/.*)$")
assert(host, "BENCH_URL must be http://HOST:PORT/PATH")

local done, failure = 0, nil
local cq = cqueues.new()
local t0 = cqueues.monotime()
for t = 1, CONNS do
  local n = math.floor(TOTAL / CONNS) + (t <= TOTAL % CONNS and 1 or 0)
  cq:wrap(function()
    local conn = assert(client.connect { host = host, port = tonumber(port), tls = false, version = 1.1 })
    for i = 1, n do
      local req = new_headers()
      req:append(":method", "GET")
      req:append(":scheme", "http")
      req:append(":authority", http_util.to_authority(host, tonumber(port), "http"))
      req:append(":path", path)
      local stream = assert(conn:new_stream())
      assert(stream:write_headers(req, true))
      local h = assert(stream:get_headers())
      local got = 0
      for chunk in stream:each_chunk() do got = got + #chunk end
      if h:get(":status") ~= "200" or got ~= LEN then
        failure = failure or ("task %d request %d: status %s, %d bytes"):format(t, i, h:get(":status"), got)
        return
      end
      stream:shutdown()
      done = done + 1
    end
    conn:close()
  end)
end
local ok, err = cq:loop()
local elapsed = cqueues.monotime() - t0
if not ok then error(err, 0) end
if failure then error(failure, 0) end
assert(done == TOTAL, ("%d of %d requests done"):format(done, TOTAL))
print(('{"requests":%d,"seconds":%.6f}'):format(done, elapsed))
