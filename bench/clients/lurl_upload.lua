-- lurl: one POST of BENCH_FILE streamed from disk (lurl.file, with
-- Content-Length) to bench/upload_server.py, which answers with the body
-- bytes it read: that must be the file's size. Prints requests, seconds (the
-- upload only) and bytes.
local lurl = require "lurl"
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")

local p = lib.params()
local session = lurl.session()
local body = lurl.file(assert(p.file, "needs BENCH_FILE"))
local t0 = lurl.now()
local resp, err = session:post(p.url, { data = body })
if not resp then error(tostring(err), 0) end
local text = resp:text()
local elapsed = lurl.now() - t0
session:close()
local got = tonumber(text:match("^received=(%d+)"))
if resp.status ~= 200 or got ~= body.size then
  error(("status %s, server says %q of %d bytes"):format(tostring(resp.status), text, body.size), 0)
end
lib.print_json { requests = 1, seconds = elapsed, bytes = got }
