-- lurl's side of spec/interop_aiohttp_wire_test.sh: the cases of
-- spec/interop/wire_aiohttp_client.py, the same requests, sent to the raw
-- echo server (spec/interop/wire_echo_server.py), saved as that client
-- saves them:
--   OUT/<case>.<n>.req   the exact bytes of request n (the echo's body)
--   OUT/<case>.conns     the connection of each request, numbered from 1
--   OUT/<case>.error     instead, when the request failed or raised
--     lurl spec/interop/wire_lurl_client.lua <base_url> <out_dir>
local lurl = require "lurl"

local base, out = ...
assert(base and out, "usage: lurl wire_lurl_client.lua <base_url> <out_dir>")

local function write(name, data, mode)
  local f = assert(io.open(out .. "/" .. name, mode or "wb"))
  f:write(data)
  f:close()
end

local function gen()
  local parts, i = { "one ", "two ", "three" }, 0
  return function() i = i + 1; return parts[i] end
end

-- case -> { session options, { method, path, request options }... };
-- a function makes the options fresh (a generator is spent once sent)
local v10 = { version = "1.0" }
local ka = { headers = { Connection = "keep-alive" } }
local CASES = {
  { "get10", v10, { "GET", "/echo?a=1" } },
  { "get10_close", v10, { "GET", "/close10" }, { "GET", "/close10" } },
  { "get10_open11", v10, { "GET", "/open11" }, { "GET", "/open11" } },
  { "get10_keepalive", v10, { "GET", "/echo", ka }, { "GET", "/echo", ka } },
  { "post10_bytes", v10, { "POST", "/echo", { data = "hello" } } },
  { "post10_generator", v10, { "POST", "/echo", function() return { data = gen() } end } },
  { "post_bytes", {}, { "POST", "/echo", { data = "hello\0\255" } } },
  { "get_bytes", {}, { "GET", "/echo", { data = "x" } } },
  { "put_generator", {}, { "PUT", "/echo", function() return { data = gen() } end } },
  { "post_typed", {}, { "POST", "/echo", { data = "{}", headers = { ["Content-Type"] = "application/json" } } } },
  { "post_skip_type", { skip_auto_headers = { "Content-Type" } }, { "POST", "/echo", { data = "x" } } },
  { "post_compress", {}, { "POST", "/echo", { data = ("deflate me "):rep(100), compress = true } } },
  { "post_empty", {}, { "POST", "/echo" } },
  { "redirect_requote", {}, { "GET", "/redirect" } },
  { "redirect_raw", { requote_redirect_url = false }, { "GET", "/redirect" } },
  { "redirect_raw_abs", { requote_redirect_url = false }, { "GET", "/redirect-abs" } },
}

local function run(case)
  local name, session_opts = case[1], case[2]
  local opts = { base_url = base }
  for k, v in pairs(session_opts) do opts[k] = v end
  local s = lurl.session(opts)
  local conns, n = {}, 0
  local ok, err = pcall(function()
    for i = 3, #case do
      local method, path, ropts = case[i][1], case[i][2], case[i][3]
      if type(ropts) == "function" then ropts = ropts() end
      local r, rerr = s:request(method, path, ropts)
      if not r then error(rerr, 0) end
      n = n + 1
      write(("%s.%d.req"):format(name, n), r:read())
      local c = r.headers["x-conn"]
      if not conns[c] then conns[#conns + 1] = c; conns[c] = #conns end
      write(name .. ".conns", conns[c] .. "\n", "ab")
    end
  end)
  if not ok then write(name .. ".error", tostring(err) .. "\n") end
  s:close()
end

for _, case in ipairs(CASES) do run(case) end
