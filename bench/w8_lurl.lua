-- W8: one POST of a file streamed from disk (lurl.file: 256 KiB at a time,
-- with Content-Length) to bench/upload_server.py, which answers with the
-- body bytes it read: that must be the file's size.
--   lurl bench/w8_lurl.lua URL FILE
-- Prints "requests=1 seconds=S bytes=B" (the upload only).
local lurl = require "lurl"

local URL = assert(arg[1], "usage: w8_lurl.lua URL FILE")
local FILE = assert(arg[2], "usage: w8_lurl.lua URL FILE")

local session = lurl.session()
local body = lurl.file(FILE)
local t0 = lurl.now()
local resp, err = session:post(URL, { data = body })
if not resp then error(tostring(err), 0) end
local text = resp:text()
local elapsed = lurl.now() - t0
session:close()
local got = tonumber(text:match("^received=(%d+)"))
if resp.status ~= 200 or got ~= body.size then
  error(("status %s, server says %q of %d bytes"):format(tostring(resp.status), text, body.size), 0)
end
print(("requests=1 seconds=%.4f bytes=%d"):format(elapsed, got))
