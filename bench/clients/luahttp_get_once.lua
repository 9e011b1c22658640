-- lua-http: one GET of BENCH_URL with http.request, its status and body
-- length (BENCH_BYTES) checked; luahttp_start.sh times this whole process.
local request = require "http.request"
local URL = assert(os.getenv("BENCH_URL"), "BENCH_URL is not set: scripts/bench runs this")
local LEN = tonumber(os.getenv("BENCH_BYTES"))
local headers, stream = assert(request.new_from_uri(URL):go(10))
local body = assert(stream:get_body_as_string())
if headers:get(":status") ~= "200" or #body ~= LEN then
  error(("status %s, %d bytes"):format(headers:get(":status"), #body), 0)
end
