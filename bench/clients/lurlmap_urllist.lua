-- lurl.map: W14's URL list (BENCH_FILE) by a script as docs/batch.md and
-- examples/ping_list.lua write it: io.lines through lurl.map's BENCH_CONNS
-- workers, a session whose pool holds four connections a worker (one in
-- use, the others idle for hosts that come again) and resolves with c-ares,
-- lurl.timeout{ total = BENCH_TIMEOUT }, every body read. One outcome line
-- per URL to BENCH_OUTCOMES. Prints requests and seconds.
local lurl = require "lurl"
local errors = require "lurl.errors"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")

local p = lib.params()
local timeout = tonumber(os.getenv("BENCH_TIMEOUT"))
local out = assert(io.open(assert(os.getenv("BENCH_OUTCOMES")), "w"))
local session = lurl.session {
  connector = lurl.connector { limit = 4 * p.conns, resolver = "ares" },
  timeout = lurl.timeout { total = timeout },
}

-- the status once the body is in, or the error
local function ping(url)
  local resp, err = session:get(url)
  if not resp then return nil, err end
  local _, rerr = resp:read()
  if rerr then return nil, rerr end
  return resp.status
end

-- a failed request's outcome word (bench/urllist.py)
local function outcome(err)
  if errors.is(err, "TimeoutError") then return "timeout" end
  if tostring(err):find("ECONNREFUSED", 1, true) then return "refused" end
  return "error:" .. tostring(err.kind)
end

local t0, n = lurl.now(), 0
for url, status, err in lurl.map(io.lines(p.file), ping, { concurrency = p.conns }) do
  out:write(url, " ", status and tostring(status) or outcome(err), "\n")
  n = n + 1
end
local seconds = lurl.now() - t0
session:close()
out:close()
lib.print_json { requests = n, seconds = seconds }
