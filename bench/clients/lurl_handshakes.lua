-- lurl: BENCH_REQUESTS GETs of BENCH_URL (https), each on a new TLS
-- connection (lurl.connector{ force_close = true }), BENCH_CONNS at a time,
-- the server verified against BENCH_CAFILE; every status and body length
-- (BENCH_BYTES) checked, and each response must have come over TLS on a new
-- connection (timings.reused false, timings.tls > 0). BENCH_RESUME says what
-- the server allows: "full" handshakes only (none may resume) or "resumed":
-- at best all but the first connection of each task, which has no session
-- yet; at least 90% of those must resume. Prints requests, seconds (the load
-- phase only), resumed (lurl's count, which scripts/bench compares with
-- nginx's) and tls (the protocol).
local lurl = require "lurl"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")

local p = lib.params()
assert(p.cafile and (p.resume == "full" or p.resume == "resumed"), "needs BENCH_CAFILE and BENCH_RESUME=full|resumed")
local connector = lurl.connector { limit = p.conns, ssl = lurl.ssl_context { cafile = p.cafile }, force_close = true }
local session = lurl.session { connector = connector }

local protocol
local resumed = 0
-- the response came over TLS on a new connection; counts resumptions
local function check_new_tls(resp, t, i)
  local tm, tls = resp.timings, resp.tls
  if not tls then error(("task %d request %d: not over TLS"):format(t, i), 0) end
  if tm.reused or tm.tls <= 0 then
    error(("task %d request %d: no new TLS connection (reused %s, tls %s s)"):format(t, i,
      tostring(tm.reused), tostring(tm.tls)), 0)
  end
  protocol = protocol or tls.protocol
  if tls.resumed then resumed = resumed + 1 end
end

-- the resumed handshakes are what BENCH_RESUME says, and no connection stayed
local function check_resumed(stats)
  assert(stats.idle == 0, ("%d connections left idle with force_close"):format(stats.idle))
  local least = math.ceil(0.9 * (p.requests - p.conns))
  if p.resume == "full" and resumed > 0 then
    error(("%d of %d handshakes resumed, none expected"):format(resumed, p.requests), 0)
  elseif p.resume == "resumed" and resumed < least then
    error(("only %d of %d handshakes resumed, at least %d expected"):format(resumed, p.requests, least), 0)
  end
end

local elapsed, stats = lib.load(session, p, check_new_tls)
check_resumed(stats)
lib.print_json { requests = p.requests, seconds = elapsed, resumed = resumed, tls = protocol }
