-- lurl against Python's aiohttp server: run by spec/interop_aiohttp_test.sh as
--   lurl spec/interop/aiohttp_client.lua <base_url>
-- Prints one line per check and "N passed, N failed"; exits non-zero on failure.
local lurl = require "lurl"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local H = dofile(dir .. "/harness.lua")
local check, eq, ok = H.check, H.eq, H.ok

local base = ...
assert(base, "usage: lurl aiohttp_client.lua <base_url>")
local hostport = assert(base:match("^http://([^/]+)"), "base_url must be http://host:port")

local session = lurl.session {
  base_url = base,
  headers = { ["X-Session-Header"] = "from-session" },
  timeout = lurl.timeout { total = 60, sock_connect = 5 },
}

-- what the server saw: { headers = {{name, value}...}, method, path_qs, version, peer }
local function seen(s, opts)
  local r = ok((s or session):get("/headers", opts))
  eq(r.status, 200, "/headers status")
  local doc = assert(r:json())
  local by_name = {}
  for _, hv in ipairs(doc.headers) do
    local k = hv[1]:lower()
    assert(by_name[k] == nil, "header sent twice: " .. hv[1])
    by_name[k] = hv[2]
  end
  doc.by_name = by_name
  return doc
end

check("GET text", function()
  local r = ok(session:get("/hello"))
  eq(r.status, 200, "status")
  eq(r:text(), "hello from aiohttp\n", "body")
  eq(r.content_type, "text/plain", "content_type")
  eq(r.charset, "utf-8", "charset")
  assert(r.headers["server"]:match("aiohttp"), "Server header: " .. tostring(r.headers["server"]))
end)

check("POST data string with a content type", function()
  local body = "line one\r\nline two\0binary\255"
  local r = ok(session:post("/echo", { data = body, headers = { ["Content-Type"] = "text/x-lurl; charset=latin1" } }))
  eq(r.status, 200, "status")
  eq(r:read(), body, "echoed body")
  eq(r.headers["x-got-content-type"], "text/x-lurl; charset=latin1", "Content-Type seen")
  eq(r.headers["x-got-content-length"], tostring(#body), "Content-Length seen")
  eq(r.headers["x-got-method"], "POST", "method seen")
end)

check("POST data string without a content type", function()
  local r = ok(session:post("/echo", { data = "plain" }))
  eq(r:read(), "plain", "echoed body")
  eq(r.headers["x-got-content-type"], "application/octet-stream", "aiohttp's type for bytes")
end)

check("POST data table: urlencoded", function()
  local r = ok(session:post("/echo", { data = { a = "1", b = "x y&z=é" } }))
  eq(r.headers["x-got-content-type"], "application/x-www-form-urlencoded", "Content-Type seen")
  local f = ok(session:post("/form", { data = { a = "1", b = "x y&z=é", list = { "p", "q" } } }))
  local doc = assert(f:json())
  eq(doc.a[1], "1", "a")
  eq(doc.b[1], "x y&z=é", "b as parsed by aiohttp")
  eq(#doc.list, 2, "repeated key count")
  eq(doc.list[1] .. doc.list[2], "pq", "repeated key values")
  local p = ok(session:post("/form", { data = { { "k", "v1" }, { "k", "v2" } } }))
  eq(table.concat(assert(p:json()).k, ","), "v1,v2", "pairs form")
end)

check("POST json", function()
  local value = { name = "lurl", n = 42, list = { 1, 2, 3 }, nested = { ok = true }, text = "snow ☃" }
  local r = ok(session:post("/json", { json = value }))
  eq(r.status, 200, "status")
  eq(r.content_type, "application/json", "content_type")
  local doc = assert(r:json())
  eq(doc.content_type, "application/json", "Content-Type seen")
  eq(doc.got.name, "lurl", "name")
  eq(doc.got.n, 42, "n")
  eq(#doc.got.list, 3, "list length")
  eq(doc.got.nested.ok, true, "nested")
  eq(doc.got.text, "snow ☃", "utf-8 text")
end)

check("POST invalid json is a 400 from the server", function()
  local r = ok(session:post("/json", { data = "{not json", headers = { ["Content-Type"] = "application/json" } }))
  eq(r.status, 400, "status")
end)

check("PUT 1 MiB body echoed back", function()
  local parts = {}
  for i = 0, 1048575 do parts[#parts + 1] = string.char(i * 13 % 256) end
  local body = table.concat(parts)
  local r = ok(session:put("/echo", { data = body }))
  eq(r.status, 200, "status")
  eq(r.headers["x-got-method"], "PUT", "method seen")
  local got = r:read()
  eq(#got, #body, "length")
  eq(H.adler(got):digest(), H.adler(body):digest(), "adler32")
end)

check("GET 1 MiB generated body", function()
  local r = ok(session:get("/big", { params = { n = 1048576 } }))
  local body = r:read()
  eq(#body, 1048576, "length")
  local parts = {}
  for i = 0, 1048575 do parts[#parts + 1] = string.char(i * 7 % 251) end
  assert(body == table.concat(parts), "body differs")
end)

-- what /chunked sends: n chunks "chunk i:" .. letter x (i*997 % 5000) .. "\n"
local function chunked_expected(n)
  local parts = {}
  for i = 0, n - 1 do
    parts[#parts + 1] = ("chunk %d:"):format(i) .. string.char(65 + i % 26):rep(i * 997 % 5000) .. "\n"
  end
  return table.concat(parts)
end

check("chunked response reassembled", function()
  local r = ok(session:get("/chunked"))
  eq(r.status, 200, "status")
  eq(r.headers["transfer-encoding"], "chunked", "Transfer-Encoding")
  eq(r.headers["content-length"], nil, "Content-Length")
  local body = r:read()
  local want = chunked_expected(20)
  eq(#body, #want, "length")
  assert(body == want, "body differs")
end)

check("chunked response streamed with iter_any", function()
  local r = ok(session:get("/chunked", { params = { n = 40 }, stream = true }))
  local parts = {}
  for c in r:iter_any() do parts[#parts + 1] = c end
  local body = table.concat(parts)
  assert(body == chunked_expected(40), ("body differs (%d bytes)"):format(#body))
  assert(#parts > 1, "expected the body to arrive in several pieces, got " .. #parts)
end)

check("chunked response read with read(100)", function()
  local r = ok(session:get("/chunked", { stream = true }))
  local parts = {}
  while true do
    local c = assert(r:read(100))
    if c == "" then break end
    assert(#c <= 100, "read(100) returned " .. #c .. " bytes")
    parts[#parts + 1] = c
  end
  assert(table.concat(parts) == chunked_expected(20), "body differs")
end)

check("request headers seen by the server", function()
  local doc = seen(nil, { headers = { ["X-Custom"] = "custom value", ["X-Session-Header"] = "overridden" },
                          params = { { "q", "a b" }, { "n", 1 } } })
  local h = doc.by_name
  eq(h["host"], hostport, "Host")
  eq(h["user-agent"], "lurl/" .. lurl.version, "User-Agent")
  assert(h["user-agent"]:match("^lurl/%d"), "User-Agent form: " .. tostring(h["user-agent"]))
  eq(h["x-custom"], "custom value", "custom header")
  eq(h["x-session-header"], "overridden", "request header overrides session header")
  eq(h["accept"], "*/*", "Accept")
  -- auto_decompress (the default) advertises exactly the decoders lurl has
  eq(h["accept-encoding"], "gzip, deflate, br, zstd", "Accept-Encoding")
  eq(h["content-length"], nil, "Content-Length on a GET")
  eq(doc.method, "GET", "method")
  eq(doc.version, "1.1", "HTTP version")
  eq(doc.path_qs, "/headers?q=a+b&n=1", "path and query")
  eq(seen().by_name["x-session-header"], "from-session", "session header")
  eq(seen(nil, { auto_decompress = false }).by_name["accept-encoding"], nil,
    "Accept-Encoding with auto_decompress = false")
end)

check("skip_auto_headers and an explicit User-Agent", function()
  local doc = seen(nil, { skip_auto_headers = { "Accept-Encoding" }, headers = { ["User-Agent"] = "custom-agent/2" } })
  eq(doc.by_name["accept-encoding"], nil, "Accept-Encoding skipped")
  eq(doc.by_name["user-agent"], "custom-agent/2", "User-Agent")
end)

check("keep-alive: 15 requests reuse one connection", function()
  local s = lurl.session { base_url = base }
  local port
  for i = 1, 15 do
    local doc = seen(s)
    port = port or doc.peer.port
    eq(doc.peer.port, port, "client port of request " .. i)
    local st = s.connector:stats()
    eq(st.idle, 1, "idle after request " .. i)
    eq(st.in_use, 0, "in use after request " .. i)
  end
  -- a POST and a chunked GET in between keep the same connection
  ok(s:post("/echo", { data = "x" }))
  ok(s:get("/chunked"))
  eq(seen(s).peer.port, port, "client port after POST and chunked GET")
  s:close()
end)

check("status codes", function()
  for _, code in ipairs { 201, 204, 404, 500, 503 } do
    local r = ok(session:get("/status/" .. code))
    eq(r.status, code, "status")
    eq(r.ok, code < 400, "ok for " .. code)
    if code == 204 then eq(r:read(), "", "204 body") end
  end
  local _, err = session:get("/status/500", { raise_for_status = true })
  assert(err and err:is("ClientResponseError"), "raise_for_status: " .. tostring(err))
  eq(err.status, 500, "err.status")
  local r = ok(session:get("/nope"))
  eq(r.status, 404, "unknown route")
  local r2 = ok(session:request("DELETE", "/hello"))
  eq(r2.status, 405, "wrong method")
end)

check("Connection: close from the server: not pooled, next request reconnects", function()
  local s = lurl.session { base_url = base }
  local port = seen(s).peer.port
  local r = ok(s:get("/close"))
  eq(r:text(), "bye\n", "body")
  eq(r.headers["connection"], "close", "Connection header")
  eq(s.connector:stats().idle, 0, "idle after Connection: close")
  local port2 = seen(s).peer.port
  assert(port2 ~= port, "same client port after the server closed")
  s:close()
end)

check("response header size limit (max_field_size 8190)", function()
  local r = ok(session:get("/big_header", { params = { n = 8000 } }))
  eq(#r.headers["x-big"], 8000, "8000-byte header")
  local none, err = session:get("/big_header", { params = { n = 9000 } })
  eq(none, nil, "response with a 9000-byte header")
  assert(err and err:is("ClientResponseError"), "want ClientResponseError, got " .. tostring(err))
  local r2 = ok(session:get("/big_header", { params = { n = 9000 }, max_field_size = 16384 }))
  eq(#r2.headers["x-big"], 9000, "9000-byte header with max_field_size = 16384")
  eq(ok(session:get("/hello")).status, 200, "next request")
end)

check("HEAD", function()
  local r = ok(session:head("/hello"))
  eq(r.status, 200, "status")
  eq(r:read(), "", "body")
  eq(ok(session:get("/hello")):text(), "hello from aiohttp\n", "next request")
end)

check("per-request timeout against /slow: TimeoutError", function()
  local s = lurl.session { base_url = base }
  local t0 = lurl.now()
  local r, err = s:get("/slow", { timeout = 0.3 })
  local elapsed = lurl.now() - t0
  eq(r, nil, "response")
  assert(err and err:is("TimeoutError"), "want TimeoutError, got " .. tostring(err))
  assert(elapsed < 0.95, ("timed out after %.2f s, want well under the 1 s the server takes"):format(elapsed))
  local st = s.connector:stats()
  eq(st.in_use, 0, "in use after the timeout")
  eq(st.idle, 0, "the timed-out connection is not pooled")
  -- sock_read as a timeout object too
  local _, err2 = s:get("/slow", { timeout = lurl.timeout { sock_read = 0.3 } })
  assert(err2 and err2:is("TimeoutError"), "sock_read: want TimeoutError, got " .. tostring(err2))
  -- the session still works, and a generous timeout lets /slow finish
  eq(ok(s:get("/hello")).status, 200, "after the timeouts")
  eq(ok(s:get("/slow", { timeout = 10 })):text(), "finally\n", "/slow with timeout 10")
  s:close()
end)

check("5 concurrent /slow requests overlap", function()
  local t0 = lurl.now()
  local tasks = {}
  for i = 1, 5 do tasks[i] = lurl.spawn(function() return ok(session:get("/slow")):text() end) end
  for i, t in ipairs(tasks) do eq(t:join(), "finally\n", "task " .. i) end
  local elapsed = lurl.now() - t0
  assert(elapsed < 4, ("5 x 1 s took %.2f s: not concurrent"):format(elapsed))
  eq(session.connector:stats().in_use, 0, "in use")
end)

session:close()
H.finish("aiohttp_client")
