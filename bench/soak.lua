-- Soak: TOTAL GETs over CONNS keep-alive connections (CONNS tasks, one
-- session), every response checked; VmRSS after a warm-up of WARMUP requests
-- and at the end must agree within MAX_GROWTH (default 5%).
--   lurl bench/soak.lua URL [TOTAL] [CONNS] [BODY_LEN] [WARMUP] [MAX_GROWTH]
-- Exits 1 when memory grew beyond MAX_GROWTH or a request failed.
local lurl = require "lurl"
local core = require "lurl.core"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "lib.lua")

local URL = assert(arg[1], "usage: soak.lua URL [TOTAL] [CONNS] [BODY_LEN] [WARMUP] [MAX_GROWTH]")
local TOTAL = tonumber(arg[2]) or 1000000
local CONNS = tonumber(arg[3]) or 64
local LEN = tonumber(arg[4]) or 1024
local WARMUP = tonumber(arg[5]) or 50000
local MAX_GROWTH = tonumber(arg[6]) or 0.05
local REPORT_EVERY = math.max(math.floor(TOTAL / 10), 1)

local function mib(b) return b / 1048576 end

-- a pool of exactly CONNS connections
local session = lurl.session { connector = lurl.connector { limit = CONNS, keepalive_timeout = 300 } }

-- the tasks take the next request number until TOTAL are issued
local issued, done = 0, 0
local rss_warm
local t0 = lurl.now()
lib.run_tasks(CONNS, function(t)
  while issued < TOTAL do
    issued = issued + 1
    lib.get(session, URL, LEN, t, issued)
    done = done + 1
    if done == WARMUP then
      rss_warm = lib.vmrss()
      print(("soak: warm-up done: %d requests, VmRSS %.2f MiB, fds %d"):format(done, mib(rss_warm), core.open_fds()))
    elseif done % REPORT_EVERY == 0 then
      print(("soak: %d requests, %.0f req/s, VmRSS %.2f MiB"):format(done, done / (lurl.now() - t0), mib(lib.vmrss())))
    end
  end
end)
local elapsed = lurl.now() - t0
local rss_end = lib.vmrss()
local stats = session.connector:stats()
session:close()
assert(done == TOTAL, ("%d of %d requests done"):format(done, TOTAL))
assert(rss_warm, "fewer requests than the warm-up")
local growth = (rss_end - rss_warm) / rss_warm
print(("soak: %d requests in %.1f s (%.0f req/s) over %d connections; VmRSS after warm-up %.2f MiB, "
  .. "at the end %.2f MiB: %+.2f%% (limit %.0f%%)")
  :format(done, elapsed, done / elapsed, stats.idle, mib(rss_warm), mib(rss_end), growth * 100, MAX_GROWTH * 100))
if math.abs(growth) > MAX_GROWTH then
  print("soak: FAIL: memory changed by more than the limit")
  os.exit(1)
end
print("soak: PASS")
