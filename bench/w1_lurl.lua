-- W1/W2 load client: TOTAL GETs of URL over CONNS keep-alive connections
-- (CONNS tasks on one session), every status and body length checked.
--   lurl bench/w1_lurl.lua URL [TOTAL] [CONNS] [BODY_LEN]
-- Prints one line: "requests=N seconds=S conns=C" (the load phase only; C:
-- the connections the pool holds at the end).
local lurl = require "lurl"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "lib.lua")

local URL = assert(arg[1], "usage: w1_lurl.lua URL [TOTAL] [CONNS] [BODY_LEN]")
local TOTAL = tonumber(arg[2]) or 200000
local CONNS = tonumber(arg[3]) or 64
local LEN = tonumber(arg[4]) or 1024

-- a pool of exactly CONNS connections
local session = lurl.session { connector = lurl.connector { limit = CONNS, keepalive_timeout = 300 } }

local t0 = lurl.now()
local done = 0
lib.run_tasks(CONNS, function(t)
  for i = 1, lib.share(TOTAL, CONNS, t) do
    lib.get(session, URL, LEN, t, i)
    done = done + 1
  end
end)
local elapsed = lurl.now() - t0
local stats = session.connector:stats()
session:close()
assert(done == TOTAL, ("%d of %d requests done"):format(done, TOTAL))
print(("requests=%d seconds=%.4f conns=%d"):format(done, elapsed, stats.idle + stats.in_use))
