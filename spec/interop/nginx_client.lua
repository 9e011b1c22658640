-- lurl against nginx: run by spec/interop_nginx_test.sh as
--   lurl spec/interop/nginx_client.lua <base_url> <docroot>
-- Prints one line per check and "N passed, N failed"; exits non-zero on failure.
local lurl = require "lurl"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local H = dofile(dir .. "/harness.lua")
local check, eq, ok = H.check, H.eq, H.ok

local base, docroot = ...
assert(base and docroot, "usage: lurl nginx_client.lua <base_url> <docroot>")

local blob = H.read_file(docroot .. "/static/blob.bin")
local part = H.read_file(docroot .. "/static/part.txt")
local blob_adler = H.adler(blob):digest()
eq(#blob, 1048576, "size of blob.bin on disk")

local session = lurl.session { base_url = base, timeout = lurl.timeout { total = 60, sock_connect = 5 } }

-- "<connection> <requests>" from the /conn* locations
local function conn_info(path, s)
  local r = ok((s or session):get(path))
  eq(r.status, 200, path .. " status")
  local c, n = r:text():match("^(%d+) (%d+)$")
  assert(c, "unexpected body from " .. path .. ": " .. r:text())
  return tonumber(c), tonumber(n)
end

check("GET small static file", function()
  local r = ok(session:get("/static/hello.txt"))
  eq(r.status, 200, "status")
  eq(r.reason, "OK", "reason")
  eq(r.version, "1.1", "version")
  eq(r:text(), "hello from nginx\n", "body")
  eq(r.content_type, "text/plain", "content_type")
  eq(r.headers["Content-Length"], "17", "Content-Length")
  assert(r.headers["server"]:match("^nginx"), "Server header: " .. tostring(r.headers["server"]))
end)

check("GET 1 MiB binary file: exact bytes", function()
  local r = ok(session:get("/static/blob.bin"))
  eq(r.status, 200, "status")
  local body = r:read()
  eq(#body, #blob, "length")
  eq(H.adler(body):digest(), blob_adler, "adler32")
  assert(body == blob, "body differs from the file")
  eq(r.headers["content-length"], tostring(#blob), "Content-Length")
  eq(r.content_type, "application/octet-stream", "content_type")
end)

check("GET 1 MiB streamed with iter_chunked(65536)", function()
  local r = ok(session:get("/static/blob.bin", { stream = true }))
  -- like aiohttp's iter_chunked(n), pieces are at most n bytes: read(n)
  -- returns what is buffered, so a piece can be shorter than n mid-body
  local a, biggest = H.adler(), 0
  for chunk in r:iter_chunked(65536) do
    a:update(chunk)
    assert(#chunk > 0, "empty piece")
    if #chunk > biggest then biggest = #chunk end
  end
  eq(a.len, #blob, "length")
  eq(a:digest(), blob_adler, "adler32")
  eq(biggest, 65536, "largest piece")
end)

check("GET 1 MiB streamed with iter_any", function()
  local r = ok(session:get("/static/blob.bin", { stream = true }))
  local parts = {}
  for chunk in r:iter_any() do parts[#parts + 1] = chunk end
  local body = table.concat(parts)
  assert(body == blob, ("body differs (%d bytes in %d chunks)"):format(#body, #parts))
end)

check("Range request: 206 with the right slice", function()
  local r = ok(session:get("/static/blob.bin", { headers = { Range = "bytes=1000-1999" } }))
  eq(r.status, 206, "status")
  eq(r.headers["content-range"], "bytes 1000-1999/1048576", "Content-Range")
  assert(r:read() == blob:sub(1001, 2000), "slice differs")
end)

check("conditional GET: 304 without a body, connection still usable", function()
  local r = ok(session:get("/static/hello.txt"))
  local etag = assert(r.headers["etag"], "no ETag")
  local c1 = conn_info("/conn")
  local r2 = ok(session:get("/static/hello.txt", { headers = { ["If-None-Match"] = etag } }))
  eq(r2.status, 304, "status")
  eq(r2:read(), "", "304 body")
  local c2 = conn_info("/conn")
  eq(c2, c1, "connection after the 304")
end)

check("HEAD: headers only, connection still usable", function()
  local c1 = conn_info("/conn")
  local r = ok(session:head("/static/blob.bin"))
  eq(r.status, 200, "status")
  eq(r.headers["content-length"], "1048576", "Content-Length")
  eq(r:read(), "", "body")
  eq(conn_info("/conn"), c1, "connection after HEAD")
end)

check("404: status, ok = false, raise_for_status", function()
  local r = ok(session:get("/static/missing.txt"))
  eq(r.status, 404, "status")
  eq(r.ok, false, "ok")
  local none, err = r:raise_for_status()
  eq(none, nil, "raise_for_status result")
  assert(err and err:is("ClientResponseError"), "want ClientResponseError, got " .. tostring(err))
  eq(err.status, 404, "err.status")
  local _, err2 = session:get("/static/missing.txt", { raise_for_status = true })
  assert(err2 and err2:is("ClientResponseError"), "raise_for_status option: " .. tostring(err2))
end)

check("301 for a directory without slash: followed to /static/, or returned with allow_redirects = false", function()
  local r = ok(session:get("/static", { allow_redirects = false }))
  eq(r.status, 301, "status")
  assert(r.headers["location"]:match("/static/$"), "Location: " .. tostring(r.headers["location"]))
  local followed = ok(session:get("/static"))
  eq(followed.status, 403, "status of /static/ (no index, no listing)")
  eq(#followed.history, 1, "redirects in history")
  eq(followed.history[1].status, 301, "the redirect's status")
  assert(followed.url:match("/static/$"), "final URL " .. followed.url)
end)

local ssi_expected = "<html><body>\n" .. part .. "\nbetween the includes\n" .. blob .. "\n" .. part
  .. "\n</body></html>\n"

check("chunked response (SSI) reassembled exactly", function()
  local r = ok(session:get("/ssi/page.shtml"))
  eq(r.status, 200, "status")
  eq(r.headers["transfer-encoding"], "chunked", "Transfer-Encoding")
  eq(r.headers["content-length"], nil, "Content-Length")
  eq(r.content_type, "text/html", "content_type")
  local body = r:read()
  eq(#body, #ssi_expected, "length")
  assert(body == ssi_expected, "body differs")
end)

check("chunked response (SSI) streamed, then the connection is reused", function()
  local c1 = conn_info("/conn")
  local r = ok(session:get("/ssi/page.shtml", { stream = true }))
  local a, n = H.adler(), 0
  for chunk in r:iter_any() do a:update(chunk); n = n + 1 end
  eq(a.len, #ssi_expected, "length")
  eq(a:digest(), H.adler(ssi_expected):digest(), "adler32")
  eq(conn_info("/conn"), c1, "connection after the chunked body")
end)

check("POST with a string body", function()
  local r = ok(session:post("/echo", { data = "hello=world&n=1", headers = { ["Content-Type"] = "text/x-lurl" } }))
  eq(r.status, 200, "status")
  eq(r:text(), "hello=world&n=1", "echoed body")
  eq(r.headers["x-got-content-type"], "text/x-lurl", "Content-Type seen by nginx")
  eq(r.headers["x-got-method"], "POST", "method seen by nginx")
end)

check("POST with a table body (urlencoded)", function()
  local r = ok(session:post("/echo", { data = { name = "lurl" } }))
  eq(r:text(), "name=lurl", "echoed body")
  eq(r.headers["x-got-content-type"], "application/x-www-form-urlencoded", "Content-Type seen by nginx")
end)

check("POST with json", function()
  local r = ok(session:post("/echo", { json = { n = 42 } }))
  eq(r:text(), '{"n":42}', "echoed body")
  eq(r.headers["x-got-content-type"], "application/json", "Content-Type seen by nginx")
end)

check("PUT with an empty body", function()
  local r = ok(session:put("/echo"))
  eq(r.status, 200, "status")
  eq(r:text(), "", "echoed body")
  eq(r.headers["x-got-method"], "PUT", "method seen by nginx")
end)

check("POST 1 MiB that nginx discards; the connection stays usable", function()
  local c1 = conn_info("/conn")
  local r = ok(session:post("/sink", { data = blob }))
  eq(r.status, 200, "status")
  eq(r:text(), "len=1048576", "body")
  local r2 = ok(session:post("/sink", { data = "abc" }))
  eq(r2:text(), "len=3", "second POST")
  eq(conn_info("/conn"), c1, "connection after the POSTs")
end)

check("POST over client_max_body_size: 413, then the session goes on", function()
  local r = ok(session:post("/small_limit", { data = blob }))
  eq(r.status, 413, "status")
  eq(ok(session:post("/small_limit", { data = "tiny" })):text(), "accepted", "small POST")
  eq(ok(session:get("/static/hello.txt")):text(), "hello from nginx\n", "next GET")
end)

check("PUT 1 MiB to nginx dav, read it back, DELETE", function()
  local r = ok(session:put("/dav/upload.bin", { data = blob }))
  eq(r.status, 201, "PUT status")
  local f = H.read_file(docroot .. "/dav/upload.bin")
  assert(f == blob, ("file written by nginx differs (%d bytes)"):format(#f))
  local g = ok(session:get("/dav/upload.bin"))
  assert(g:read() == blob, "GET after PUT differs")
  local d = ok(session:delete("/dav/upload.bin"))
  eq(d.status, 204, "DELETE status")
  eq(ok(session:get("/dav/upload.bin")).status, 404, "GET after DELETE")
end)

check("keep-alive: 20 GETs on one connection", function()
  local s = lurl.session { base_url = base, headers = { ["User-Agent"] = "lurl-keepalive-check" } }
  local first
  for i = 1, 20 do
    local c, n = conn_info("/conn", s)
    first = first or { c, n }
    eq(c, first[1], "connection of request " .. i)
    eq(n, first[2] + i - 1, "connection_requests of request " .. i)
    local st = s.connector:stats()
    eq(st.idle, 1, "idle connections after request " .. i)
    eq(st.in_use, 0, "connections in use after request " .. i)
  end
  eq(first[2], 1, "first request's connection_requests")
  s:close()
end)

check("keep-alive: nginx closes after keepalive_requests, lurl reconnects", function()
  local s = lurl.session { base_url = base }
  H.three_per_connection(s, function() return conn_info("/conn_limited", s) end)
  s:close()
end)

check("keep-alive: connection closed by nginx while idle is not reused", function()
  local s = lurl.session { base_url = base }
  local c1 = conn_info("/conn_short", s)
  lurl.sleep(2.5) -- nginx's keepalive_timeout there is 1 s
  local c2, n2 = conn_info("/conn_short", s)
  assert(c2 ~= c1, "same connection after nginx closed it")
  eq(n2, 1, "connection_requests on the new connection")
  s:close()
end)

check("force_close connector: a new connection per request", function()
  local s = lurl.session { base_url = base, connector = lurl.connector { force_close = true } }
  local a = conn_info("/conn", s)
  local b, nb = conn_info("/conn", s)
  assert(a ~= b, "same connection with force_close")
  eq(nb, 1, "connection_requests")
  eq(s.connector:stats().idle, 0, "idle")
  s:close()
end)

check("8 concurrent GETs of 1 MiB", function()
  local tasks = {}
  for i = 1, 8 do
    tasks[i] = lurl.spawn(function()
      local r = ok(session:get("/static/blob.bin"))
      return r:read() == blob
    end)
  end
  for i, t in ipairs(tasks) do eq(t:join(), true, "task " .. i .. " body matches") end
  local st = session.connector:stats()
  eq(st.in_use, 0, "in use")
  assert(st.idle >= 1 and st.idle <= 8, "idle: " .. st.idle)
end)

-- ---- compressed responses ----
-- nginx's gzip filter on /gz/ and /ssi-gz/, gzip_static on /gzs/ (set up
-- by interop_nginx_test.sh; GZIP_STATIC=0 when nginx lacks the module).
local codec = require("lurl.core").codec
local text = H.read_file(docroot .. "/gz/text.txt")
local text_gz = H.read_file(docroot .. "/gzs/text.txt.gz")
local blob_gz = H.read_file(docroot .. "/gzs/blob.bin.gz")
local GZIP_STATIC = os.getenv("GZIP_STATIC") ~= "0"
local ACCEPT = "gzip, deflate, br, zstd"

-- gzip data decoded by the gzip CLI (core.codec when there is no gzip).
local function gunzip(data)
  local inp, outp = os.tmpname(), os.tmpname()
  local f = assert(io.open(inp, "wb"))
  f:write(data)
  f:close()
  local r = os.execute(("gzip -dc < %s > %s 2>/dev/null"):format(inp, outp))
  local out
  if r == 0 or r == true then
    out = H.read_file(outp)
  else
    local d = codec.decoder("gzip")
    out = assert(d:feed(data)) .. assert(d:finish())
  end
  os.remove(inp)
  os.remove(outp)
  return out
end

-- A body equal to want, without megabytes in the message when it is not.
local function same(got, want, what)
  eq(#got, #want, what .. ": length")
  assert(got == want, what .. ": bytes differ")
end

-- The body read with iter_chunked(65536): pieces of at most 64 KiB.
local function chunked_read(r)
  local parts, biggest = {}, 0
  for piece in r:iter_chunked(65536) do
    assert(#piece > 0 and #piece <= 65536, "piece of " .. #piece .. " bytes")
    parts[#parts + 1] = piece
    if #piece > biggest then biggest = #piece end
  end
  return table.concat(parts), #parts
end

eq(#text_gz < #text, true, "text.txt.gz is smaller than text.txt")

check("gzip on the fly: ~1 MiB text decoded byte-exact", function()
  local r = ok(session:get("/gz/text.txt?whole"))
  eq(r.status, 200, "status")
  eq(r.headers["content-encoding"], "gzip", "Content-Encoding")
  eq(r.headers["transfer-encoding"], "chunked", "Transfer-Encoding (compressed as it is sent)")
  eq(r.headers["content-length"], nil, "Content-Length")
  eq(r.content_type, "text/plain", "content_type")
  same(r:read(), text, "body")
  eq(r:text(), text, "text()")
end)

check("gzip on the fly: streamed with iter_chunked(65536) and read(n)", function()
  local r = ok(session:get("/gz/text.txt", { stream = true }))
  eq(r.headers["content-encoding"], "gzip", "Content-Encoding")
  local body, n = chunked_read(r)
  same(body, text, "iter_chunked body")
  assert(n > 1, "one piece only")
  r = ok(session:get("/gz/text.txt", { stream = true }))
  local parts = {}
  while true do
    local piece = ok(r:read(10000))
    if piece == "" then break end
    parts[#parts + 1] = piece
  end
  same(table.concat(parts), text, "read(10000) body")
end)

check("gzip on the fly: 1 MiB of random bytes (application/octet-stream)", function()
  local r = ok(session:get("/gz/blob.bin"))
  eq(r.headers["content-encoding"], "gzip", "Content-Encoding")
  same(r:read(), blob, "body")
  local s = ok(session:get("/gz/blob.bin", { stream = true }))
  same((chunked_read(s)), blob, "streamed body")
end)

check("gzip on the fly: the SSI page decoded byte-exact, whole and streamed", function()
  local r = ok(session:get("/ssi-gz/page.shtml"))
  eq(r.status, 200, "status")
  eq(r.headers["content-encoding"], "gzip", "Content-Encoding")
  eq(r.content_type, "text/html", "content_type")
  same(r:read(), ssi_expected, "body")
  local c1 = conn_info("/conn")
  local s = ok(session:get("/ssi-gz/page.shtml", { stream = true }))
  same((chunked_read(s)), ssi_expected, "streamed body")
  eq(conn_info("/conn"), c1, "connection after the gzip body")
end)

check("gzip on the fly: auto_decompress = false gives gzip bytes the gzip CLI decodes", function()
  -- no Accept-Encoding is sent then, so nginx sends the file as it is
  local r = ok(session:get("/gz/text.txt?noae", { auto_decompress = false }))
  eq(r.headers["content-encoding"], nil, "Content-Encoding without Accept-Encoding")
  same(r:read(), text, "plain body")
  -- asking for gzip itself, the script gets what nginx sent
  local raw = lurl.session { base_url = base, auto_decompress = false, headers = { ["Accept-Encoding"] = "gzip" } }
  local g = ok(raw:get("/gz/text.txt"))
  eq(g.headers["content-encoding"], "gzip", "Content-Encoding")
  local bytes = g:read()
  eq(bytes:sub(1, 2), "\31\139", "gzip magic")
  assert(#bytes < #text, "not compressed: " .. #bytes .. " bytes")
  same(gunzip(bytes), text, "gzip -dc of the raw body")
  local ssi = ok(raw:get("/ssi-gz/page.shtml", { stream = true }))
  same(gunzip((chunked_read(ssi))), ssi_expected, "gzip -dc of the raw SSI page")
  raw:close()
end)

check("gzip on the fly: HEAD with Content-Encoding, resp:save writes decoded bytes", function()
  local h = ok(session:head("/gz/text.txt"))
  eq(h.status, 200, "HEAD status")
  eq(h.headers["content-encoding"], "gzip", "HEAD Content-Encoding")
  eq(h:read(), "", "HEAD body")
  local path = os.tmpname()
  local n = ok(ok(session:get("/gz/text.txt", { stream = true })):save(path))
  eq(n, #text, "bytes saved")
  same(H.read_file(path), text, "saved file")
  os.remove(path)
end)

local function check_static(name, fn)
  if GZIP_STATIC then return check(name, fn) end
  print("skip " .. name .. " (nginx without gzip_static)")
end

check_static("gzip_static: text.txt.gz served for text.txt, decoded byte-exact", function()
  local r = ok(session:get("/gzs/text.txt?whole"))
  eq(r.status, 200, "status")
  eq(r.headers["content-encoding"], "gzip", "Content-Encoding")
  eq(r.headers["content-length"], tostring(#text_gz), "Content-Length (the .gz file's)")
  eq(r.content_type, "text/plain", "content_type")
  same(r:read(), text, "body")
  local b = ok(session:get("/gzs/blob.bin"))
  eq(b.headers["content-length"], tostring(#blob_gz), "blob Content-Length")
  same(b:read(), blob, "blob body")
end)

check_static("gzip_static: streamed with iter_chunked(65536), then the connection is reused", function()
  local c1 = conn_info("/conn")
  local r = ok(session:get("/gzs/text.txt", { stream = true }))
  eq(r.headers["content-encoding"], "gzip", "Content-Encoding")
  local body, n = chunked_read(r)
  same(body, text, "body")
  assert(n > 1, "one piece only")
  same((chunked_read(ok(session:get("/gzs/blob.bin", { stream = true })))), blob, "blob")
  eq(conn_info("/conn"), c1, "connection after the bodies")
end)

check_static("gzip_static: auto_decompress = false gives the .gz file itself", function()
  local plain = ok(session:get("/gzs/text.txt?noae", { auto_decompress = false }))
  eq(plain.headers["content-encoding"], nil, "Content-Encoding without Accept-Encoding")
  same(plain:read(), text, "plain body")
  local raw = ok(session:get("/gzs/text.txt", { auto_decompress = false, headers = { ["Accept-Encoding"] = "gzip" } }))
  eq(raw.headers["content-encoding"], "gzip", "Content-Encoding")
  local bytes = raw:read()
  same(bytes, text_gz, "raw body (text.txt.gz)")
  same(gunzip(bytes), text, "gzip -dc of the raw body")
  local d = codec.decoder("gzip")
  same(ok(d:feed(bytes)) .. ok(d:finish()), text, "core.codec of the raw body")
end)

check_static("gzip_static: a conditional GET on the .gz file is a 304", function()
  local r = ok(session:get("/gzs/text.txt"))
  local etag = assert(r.headers["etag"], "no ETag")
  local r2 = ok(session:get("/gzs/text.txt", { headers = { ["If-None-Match"] = etag } }))
  eq(r2.status, 304, "status")
  eq(r2:read(), "", "304 body")
end)

check("nginx was asked for every coding lurl decodes", function()
  local r = ok(session:get("/gz/text.txt"))
  eq(r.request_info.headers["Accept-Encoding"], ACCEPT, "Accept-Encoding sent")
end)

session:close()
H.finish("nginx_client")
