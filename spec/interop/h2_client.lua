-- The lurl side of spec/interop_h2_nginx_test.sh: HTTP/2 against nginx,
-- over TLS (ALPN) and as h2c with prior knowledge.
--   lurl spec/interop/h2_client.lua https://127.0.0.1:PORT CAFILE http://127.0.0.1:PORT_H2C https://127.0.0.1:PORT_H1
--     https://127.0.0.1:PORT_GOAWAY
local lurl = require "lurl"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local H = dofile(dir .. "/harness.lua")

local base, cafile, h2c_base, h1_base, goaway_base = arg[1], arg[2], arg[3], arg[4], arg[5]
-- a script's own context made without an alpn option: by default
-- (http2 = true) each connection offers h2 and http/1.1
local ctx = lurl.ssl_context { cafile = cafile }
local s = lurl.session { connector = lurl.connector { ssl = ctx } }

H.check("GET over h2: version 2, ALPN h2", function()
  local r = H.ok(s:get(base .. "/static/hello.txt"))
  H.eq(r.status, 200, "status")
  H.eq(r.version, "2", "version")
  H.eq(r.tls.alpn, "h2", "alpn")
  H.eq(r:text(), "hello over h2\n", "body")
end)

H.check("200 requests at once share the connection nginx allows (128 streams each)", function()
  local fns = {}
  for i = 1, 200 do fns[i] = function() return #H.ok(s:get(base .. "/static/hello.txt")):read() end end
  for _, n in ipairs(lurl.gather(fns)) do H.eq(n, 14, "body length") end
  local total = s.connector:stats().total
  assert(total <= 2, "connections: " .. total)
end)

H.check("a 1 MiB download, whole and streamed (flow control)", function()
  H.eq(#H.ok(s:get(base .. "/static/blob.bin")):read(), 1048576, "whole")
  local st = H.ok(s:get(base .. "/static/blob.bin", { stream = true }))
  local n = 0
  for chunk in st:iter_chunked(65536) do n = n + #chunk end
  H.eq(n, 1048576, "streamed")
end)

H.check("a 3 MiB upload as a string and from a generator", function()
  local body = ("u"):rep(3 * 1048576)
  H.eq(H.ok(s:put(base .. "/dav/up.bin", { data = body })).status, 201, "put status")
  H.eq(#H.ok(s:get(base .. "/dav/up.bin")):read(), #body, "stored")
  local parts = 0
  local gen = function()
    parts = parts + 1
    if parts > 48 then return nil end
    return ("g"):rep(65536)
  end
  H.eq(H.ok(s:put(base .. "/dav/gen.bin", { data = gen })).status, 201, "generator status")
  H.eq(#H.ok(s:get(base .. "/dav/gen.bin")):read(), 48 * 65536, "generator stored")
end)

H.check("requests across nginx's GOAWAYs (every 20 requests) are all answered, the refused ones sent again", function()
  -- streams above a GOAWAY's last id were never processed: each goes again
  -- on a new connection (RFC 9113 section 8.7), traced as a retry
  local retried = 0
  local tc = lurl.trace_config { on_request_stale_retry = function() retried = retried + 1 end }
  local g = lurl.session { http2 = true, connector = lurl.connector { ssl = ctx }, trace_configs = { tc } }
  local fns = {}
  for i = 1, 100 do
    fns[i] = function()
      local method = i % 2 == 0 and "GET" or "POST"
      local r = H.ok(g:request(method, goaway_base .. "/static/hello.txt"))
      return r.status
    end
  end
  local ok = 0
  for _, status in ipairs(lurl.gather(fns)) do if status == 200 or status == 405 then ok = ok + 1 end end
  H.eq(ok, 100, "answered")
  assert(retried > 0, "no stream was sent again after a GOAWAY")
  print(("     (%d requests sent again after GOAWAYs)"):format(retried))
  g:close()
end)

H.check("h2c with prior knowledge", function()
  local c = lurl.session { http2 = "prior_knowledge" }
  local r = H.ok(c:get(h2c_base .. "/static/hello.txt"))
  H.eq(r.version, "2", "version")
  c:close()
end)

H.check("http2 = \"required\" refuses a server that offers only http/1.1", function()
  local c = lurl.session { http2 = "required", connector = lurl.connector { ssl = ctx } }
  local r, err = c:get(h1_base .. "/static/hello.txt")
  assert(not r, "a response over HTTP/1.1")
  assert(err:is("ClientConnectorError"), tostring(err))
  c:close()
end)

H.check("http2 = false, or a context whose alpn lists only http/1.1: the same server answers over HTTP/1.1", function()
  local c = lurl.session { http2 = false, connector = lurl.connector { ssl = ctx } }
  H.eq(H.ok(c:get(base .. "/static/hello.txt")).version, "1.1", "version, http2 = false")
  c:close()
  local only = lurl.ssl_context { cafile = cafile, alpn = { "http/1.1" } }
  c = lurl.session { connector = lurl.connector { ssl = only } }
  local r = H.ok(c:get(base .. "/static/hello.txt"))
  H.eq(r.version, "1.1", "version, alpn = { \"http/1.1\" }")
  H.eq(r.tls.alpn, "http/1.1", "alpn")
  c:close()
end)

s:close()
H.finish("h2_client")
