-- W2: TOTAL GETs of a large file over CONNS keep-alive connections, each body
-- streamed (stream = true, iter_chunked(CHUNK), 64 KiB by default) and
-- dropped, every byte counted. W9 makes one GET (TOTAL and CONNS 1) of a
-- gzip-encoded body: BODY_LEN is then its decoded size, which the bytes the
-- session decoded (auto_decompress, the default) must come to.
--   lurl bench/w2_lurl.lua URL [TOTAL] [CONNS] [BODY_LEN] [CHUNK]
-- Prints "requests=N seconds=S bytes=B" (the load phase only).
local lurl = require "lurl"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "lib.lua")

local URL = assert(arg[1], "usage: w2_lurl.lua URL [TOTAL] [CONNS] [BODY_LEN] [CHUNK]")
local TOTAL = tonumber(arg[2]) or 2000
local CONNS = tonumber(arg[3]) or 8
local LEN = tonumber(arg[4]) or 1048576
local CHUNK = tonumber(arg[5]) or 65536

-- a pool of exactly CONNS connections
local session = lurl.session { connector = lurl.connector { limit = CONNS, keepalive_timeout = 300 } }

local t0 = lurl.now()
local done, bytes = 0, 0
lib.run_tasks(CONNS, function(t)
  for i = 1, lib.share(TOTAL, CONNS, t) do
    local resp, err = session:get(URL, { stream = true })
    if not resp then error(("task %d request %d: %s"):format(t, i, tostring(err)), 0) end
    local got = 0
    for chunk in resp:iter_chunked(CHUNK) do got = got + #chunk end
    if resp.status ~= 200 or got ~= LEN then
      error(("task %d request %d: status %s, %d bytes"):format(t, i, tostring(resp.status), got), 0)
    end
    done, bytes = done + 1, bytes + got
  end
end)
local elapsed = lurl.now() - t0
session:close()
assert(done == TOTAL and bytes == TOTAL * LEN, ("%d of %d requests, %d bytes"):format(done, TOTAL, bytes))
print(("requests=%d seconds=%.4f bytes=%d"):format(done, elapsed, bytes))
