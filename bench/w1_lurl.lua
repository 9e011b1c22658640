-- W1/W5/W6/W7 load client: TOTAL GETs of URL from CONNS tasks on one
-- session, every status and body length checked.
--   lurl bench/w1_lurl.lua URL [TOTAL] [CONNS] [BODY_LEN] [CAFILE [close full|resumed]]
-- By default (W1) over CONNS keep-alive connections; prints one line:
-- "requests=N seconds=S conns=C" (the load phase only; C: the connections
-- the pool holds at the end). With CAFILE (W5, an https URL) the connector
-- verifies the server against that CA (lurl.ssl_context{ cafile }), every
-- task's first response must have come over TLS, and the line adds
-- "tls=PROTOCOL/CIPHER" of the first response.
-- With close (W6, W7) every GET is on a new TLS connection
-- (lurl.connector{ force_close = true }), CONNS at a time: each response must
-- have come over TLS on a new connection (timings.reused == false,
-- timings.tls > 0), and the handshakes must be "full" (none resumed) or
-- "resumed": at best all but the first connection of each task, which has
-- no session yet; at least 90% of those must be. Prints instead
-- "requests=N seconds=S resumed=R tls=PROTOCOL" (R: the resumed handshakes).
local lurl = require "lurl"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "lib.lua")

local usage = "usage: w1_lurl.lua URL [TOTAL] [CONNS] [BODY_LEN] [CAFILE [close full|resumed]]"
local URL = assert(arg[1], usage)
local TOTAL = tonumber(arg[2]) or 200000
local CONNS = tonumber(arg[3]) or 64
local LEN = tonumber(arg[4]) or 1024
local CAFILE = arg[5]
local CLOSE = arg[6] ~= nil
local EXPECT = arg[7]
assert(not CLOSE or CAFILE and arg[6] == "close" and (EXPECT == "full" or EXPECT == "resumed"), usage)

-- with close, one connection per request; else a pool of exactly CONNS
local function new_session()
  local ssl = CAFILE and lurl.ssl_context { cafile = CAFILE } or nil
  local opts = { limit = CONNS, ssl = ssl, keepalive_timeout = 300 }
  if CLOSE then opts.keepalive_timeout, opts.force_close = nil, true end
  return lurl.session { connector = lurl.connector(opts) }
end

local first_tls     -- over TLS: the first response's resp.tls
local resumed = 0   -- with close: the handshakes that resumed a session

-- resp.tls, or an error when task t's request i did not come over TLS
local function check_tls(resp, t, i)
  if not resp.tls then error(("task %d request %d: not over TLS"):format(t, i), 0) end
  first_tls = first_tls or resp.tls
  return resp.tls
end

-- keep-alive over TLS: task t's first response came over TLS
local function check_keepalive(resp, t, i)
  if i == 1 then check_tls(resp, t, i) end
end

-- close: the response came over TLS on a new connection; counts resumptions
local function check_new_tls(resp, t, i)
  local tm, tls = resp.timings, check_tls(resp, t, i)
  if tm.reused or not (tm.tls > 0) then
    error(("task %d request %d: no new TLS connection (reused %s, tls %s s)"):format(t, i,
      tostring(tm.reused), tostring(tm.tls)), 0)
  end
  if tls.resumed then resumed = resumed + 1 end
end

-- close: the resumed handshakes are what EXPECT says, and no connection stayed
local function check_close(stats)
  assert(stats.idle == 0, ("%d connections left idle with force_close"):format(stats.idle))
  if EXPECT == "full" and resumed > 0 then
    error(("%d of %d handshakes resumed, none expected"):format(resumed, TOTAL), 0)
  elseif EXPECT == "resumed" and resumed < 0.9 * (TOTAL - CONNS) then
    error(("only %d of %d handshakes resumed, at least %d expected"):format(resumed, TOTAL,
      math.ceil(0.9 * (TOTAL - CONNS))), 0)
  end
end

-- the line printed
local function result_line(done, elapsed, stats)
  local tls = first_tls
  if CLOSE then
    return ("requests=%d seconds=%.4f resumed=%d tls=%s"):format(done, elapsed, resumed, tls.protocol)
  end
  return ("requests=%d seconds=%.4f conns=%d%s"):format(done, elapsed, stats.idle + stats.in_use,
    tls and (" tls=%s/%s"):format(tls.protocol, tls.cipher) or "")
end

local session = new_session()
local check = CLOSE and check_new_tls or CAFILE and check_keepalive or nil
local t0 = lurl.now()
local done = 0
lib.run_tasks(CONNS, function(t)
  for i = 1, lib.share(TOTAL, CONNS, t) do
    local resp = lib.get(session, URL, LEN, t, i)
    if check then check(resp, t, i) end
    done = done + 1
  end
end)
local elapsed = lurl.now() - t0
local stats = session.connector:stats()
session:close()
assert(done == TOTAL, ("%d of %d requests done"):format(done, TOTAL))
if CLOSE then check_close(stats) end
print(result_line(done, elapsed, stats))
