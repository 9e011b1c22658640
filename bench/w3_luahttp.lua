-- W3 peer: start, one GET with lua-http's http.request, check it, exit.
--   luajit bench/w3_luahttp.lua URL [BODY_LEN]
local request = require "http.request"
local URL, LEN = assert(arg[1], "usage: w3_luahttp.lua URL [BODY_LEN]"), tonumber(arg[2]) or 1024
local headers, stream = assert(request.new_from_uri(URL):go(10))
local body = assert(stream:get_body_as_string())
if headers:get(":status") ~= "200" or #body ~= LEN then
  error(("status %s, %d bytes"):format(headers:get(":status"), #body), 0)
end
