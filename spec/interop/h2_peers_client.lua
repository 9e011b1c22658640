-- The lurl side of spec/interop_h2_peers_test.sh: HTTP/2 against nghttpd
-- (TLS and h2c) and h2o (TLS), the same checks for each.
--   lurl spec/interop/h2_peers_client.lua CAFILE NGHTTPD_TLS NGHTTPD_H2C H2O ECHO_PORT BIG_FILE
-- nghttpd echoes uploads (--echo-upload); h2o proxies /echo to a
-- lurl.testing.server started here on ECHO_PORT, which answers whether the
-- body came whole.
local lurl = require "lurl"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local H = dofile(dir .. "/harness.lua")

local cafile, ng_tls, ng_h2c, h2o, echo_port, big_file = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5]), arg[6]
local f = assert(io.open(big_file, "rb"))
local BIG = f:read("*a")
f:close()
local UPLOAD = ("0123456789abcdef"):rep(4 * 65536) -- 4 MiB

local echo = lurl.testing.server { port = echo_port, routes = {
  ["/echo"] = function(req) return ("%d %s"):format(#req.body, req.body == UPLOAD and "same" or "differs") end,
} }

local ctx = lurl.ssl_context { cafile = cafile, alpn = { "h2", "http/1.1" } }

local function session(base, per_host)
  local connector = lurl.connector { ssl = ctx, limit_per_host = per_host }
  return lurl.session { http2 = base:match("^http:") and "prior_knowledge" or "required", connector = connector }
end

-- An upload's answer: nghttpd sends the body back, h2o's backend its verdict.
local function upload_ok(name, resp)
  local body = resp:read()
  if name == "h2o" then H.eq(body, #UPLOAD .. " same", "the backend's verdict") else H.eq(body, UPLOAD, "echo") end
end

local function peer_checks(name, base)
  local s = session(base)
  local up = name == "h2o" and base .. "/echo" or base .. "/hello.txt"

  H.check(name .. ": GET over HTTP/2", function()
    local r = H.ok(s:get(base .. "/hello.txt"))
    H.eq(r.version, "2", "version")
    H.eq(r:text(), "hello over h2\n", "body")
  end)

  H.check(name .. ": an 8 MiB download, whole and streamed, byte for byte", function()
    H.eq(H.ok(s:get(base .. "/big.bin")):read(), BIG, "whole")
    local parts = {}
    for chunk in H.ok(s:get(base .. "/big.bin", { stream = true })):iter_chunked(65536) do parts[#parts + 1] = chunk end
    H.eq(table.concat(parts), BIG, "streamed")
  end)

  H.check(name .. ": a reader that stops holds no other stream (flow control per stream)", function()
    local slow = H.ok(s:get(base .. "/big.bin", { stream = true }))
    H.eq(#slow:readexactly(1000), 1000, "the slow reader's first bytes")
    for _ = 1, 5 do H.eq(H.ok(s:get(base .. "/hello.txt")):text(), "hello over h2\n", "another stream") end
    H.eq(#slow:read() + 1000, #BIG, "the rest, read later")
  end)

  H.check(name .. ": a 4 MiB upload as a string and from a generator", function()
    upload_ok(name, H.ok(s:post(up, { data = UPLOAD })))
    local pos = 1
    local gen = function()
      if pos > #UPLOAD then return nil end
      local piece = UPLOAD:sub(pos, pos + 65535)
      pos = pos + 65536
      return piece
    end
    upload_ok(name, H.ok(s:post(up, { data = gen })))
  end)

  -- limit_per_host = 1: one connection, whose streams the server caps
  -- (nghttpd -m 1000 takes all at once, h2o 100 at a time)
  H.check(name .. ": 1,000 requests at once on one connection", function()
    local c = session(base, 1)
    local fns = {}
    for i = 1, 1000 do fns[i] = function() return H.ok(c:get(base .. "/hello.txt")):text() end end
    for _, body in ipairs(lurl.gather(fns)) do H.eq(body, "hello over h2\n", "body") end
    H.eq(c.connector:stats().total, 1, "connections")
    c:close()
  end)

  H.check(name .. ": a response released unread resets its stream (RST_STREAM) and only it", function()
    local r = H.ok(s:get(base .. "/big.bin", { stream = true }))
    r:release()
    H.eq(H.ok(s:get(base .. "/hello.txt")):text(), "hello over h2\n", "the next request")
    H.eq(s.connector:stats().total, 1, "connections")
  end)
  s:close()
end

peer_checks("nghttpd", ng_tls)
peer_checks("nghttpd h2c", ng_h2c)
peer_checks("h2o", h2o)
echo:close()
H.finish("h2_peers_client")
