-- lurl over HTTPS against nginx: run by spec/interop_tls_test.sh as
--   lurl spec/interop/tls_client.lua <port_a> <port_b> <port_c> <port_p> <pki_dir> <docroot>
--     <sha256_fingerprint> [ipv6]
-- port_a: nginx with server.pem (tickets, keep-alive, /info, /sni, /info_limited,
--         /info_short, /static/, /ssi/, /dav/), also on [::1] when ipv6 is "1";
-- port_b: the same certificate, client certificates required (/client);
-- port_c: like port_a, TLS 1.2 only;
-- port_p: port_a's server over plain HTTP.
-- Prints one line per check and "N passed, N failed"; exits non-zero on failure.
-- Requests whose User-Agent starts with lurl-tls- are looked up in nginx's
-- access log by the shell side: keep them in step with interop_tls_test.sh.
local lurl = require "lurl"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local H = dofile(dir .. "/harness.lua")
local check, eq, ok = H.check, H.eq, H.ok

local port_a, port_b, port_c, port_p, pki, docroot, fingerprint, ipv6 = ...
assert(port_a and port_b and port_c and port_p and pki and docroot and fingerprint,
  "usage: lurl tls_client.lua <port_a> <port_b> <port_c> <port_p> <pki_dir> <docroot> <sha256_fingerprint>")

local IP_A = "https://127.0.0.1:" .. port_a
local HOST_A = "https://localhost:" .. port_a
local HOST_B = "https://localhost:" .. port_b
local HOST_C = "https://localhost:" .. port_c
local CA = pki .. "/ca.pem"
local FP = fingerprint:gsub(":", ""):lower()

local blob = H.read_file(docroot .. "/static/blob.bin")
eq(#blob, 1048576, "size of blob.bin on disk")

local TIMEOUT = lurl.timeout { total = 20, sock_connect = 5 }
local ctx = lurl.ssl_context { cafile = CA }

local function session(opts)
  opts = opts or {}
  opts.timeout = opts.timeout or TIMEOUT
  return lurl.session(opts)
end

-- "<connection> <requests> <protocol> <reused>" from /info
local function info(r)
  eq(r.status, 200, "status of " .. r.url)
  local c, n, proto, reused = r:text():match("^(%d+) (%d+) (%S+) (%S+)$")
  assert(c, "unexpected body from /info: " .. r:text())
  return { conn = tonumber(c), requests = tonumber(n), protocol = proto, reused = reused }
end

local function want_error(kind, resp, err)
  eq(resp, nil, "response")
  assert(err, "no error")
  assert(err:is(kind), ("want %s, got %s: %s"):format(kind, tostring(err.kind), tostring(err.message)))
  return err
end

-- what every verified response from nginx's server.pem must show
local function check_tls(r, what)
  local t = r.tls
  assert(type(t) == "table", what .. ": resp.tls is " .. tostring(t))
  assert(t.protocol == "TLSv1.2" or t.protocol == "TLSv1.3", what .. ": protocol " .. tostring(t.protocol))
  assert(t.alpn == nil or t.alpn == "http/1.1", what .. ": alpn " .. tostring(t.alpn))
  assert(type(t.cipher) == "string" and #t.cipher > 0, what .. ": cipher " .. tostring(t.cipher))
  eq(t.verified, true, what .. ": verified")
  assert(t.peer, what .. ": no peer certificate")
  eq(t.peer.subject, "CN=server", what .. ": peer.subject")
  eq(t.peer.issuer, "CN=lurl test CA", what .. ": peer.issuer")
  eq(t.peer.fingerprint, FP, what .. ": peer.fingerprint")
  local sans = table.concat(t.peer.subject_alt_names or {}, ",")
  eq(sans, "DNS:localhost,IP:127.0.0.1,IP:::1", what .. ": peer.subject_alt_names")
  assert(t.peer.not_before and t.peer.not_after and t.peer.serial, what .. ": peer dates/serial missing")
  return t
end

-- A GET of host/info on a new session sharing context rctx with the one
-- whose first connection nginx described as first: it must go on another
-- connection and resume the TLS session (nginx's ssl_session_reused "r"),
-- keeping the peer certificate and the verification result. Returns the
-- new session and the response.
local function resumed_elsewhere(rctx, host, user_agent, first, what)
  local s = session { connector = lurl.connector { ssl = rctx }, headers = { ["User-Agent"] = user_agent } }
  local r = ok(s:get(host .. "/info"))
  local i = info(r)
  assert(i.conn ~= first.conn, "same nginx connection in two sessions")
  eq(r.tls.resumed, true, "resumed on the new connection")
  eq(i.reused, "r", "nginx's ssl_session_reused on the new connection")
  check_tls(r, what)
  return s, r
end

-- ---- verification ----

check("GET https://127.0.0.1 with ssl = ctx per request", function()
  local s = session()
  local r = ok(s:get(IP_A .. "/info", { ssl = ctx }))
  local i = info(r)
  local t = check_tls(r, "127.0.0.1")
  eq(i.protocol, t.protocol, "protocol nginx saw")
  eq(r.timings.reused, false, "timings.reused")
  assert(r.timings.tls > 0, "timings.tls on a fresh connection: " .. r.timings.tls)
  assert(r.timings.connect > 0, "timings.connect on a fresh connection: " .. r.timings.connect)
  s:close()
end)

check("GET https://localhost with ssl = ctx on the connector", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  local r = ok(s:get(HOST_A .. "/info"))
  local i = info(r)
  local t = check_tls(r, "localhost")
  eq(i.protocol, t.protocol, "protocol nginx saw")
  local r2 = ok(s:get(HOST_A .. "/static/hello.txt"))
  eq(r2:text(), "hello over tls\n", "static file")
  eq(r2.tls.protocol, t.protocol, "protocol of the second response")
  -- ssl = true, or only server_hostname, on a request: the connector's context
  eq(ok(s:get(HOST_A .. "/info", { ssl = true })).tls.verified, true, "ssl = true: verified")
  local r3 = ok(s:get(IP_A .. "/sni", { server_hostname = "localhost" }))
  eq(r3:text(), "sni=localhost", "server_hostname with the connector's context")
  eq(r3.tls.verified, true, "server_hostname with the connector's context: verified")
  s:close()
end)

check("default trust (system CAs): the test CA is unknown, the request fails", function()
  local s = session()
  local err = want_error("ClientConnectorCertificateError", s:get(HOST_A .. "/info"))
  assert(err.message:find("unable to get local issuer certificate", 1, true), "message: " .. err.message)
  eq(err.verify_code, 20, "verify_code (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)")
  -- ssl = true means the connector's setting, here the default too
  want_error("ClientConnectorCertificateError", s:get(IP_A .. "/info", { ssl = true }))
  eq(s.connector:stats().idle, 0, "idle connections after failed handshakes")
  s:close()
end)

if ipv6 == "1" then
  check("GET https://[::1] verified against the certificate's IP:::1", function()
    local s = session()
    local r = ok(s:get("https://[::1]:" .. port_a .. "/info", { ssl = ctx }))
    info(r)
    check_tls(r, "[::1]")
    s:close()
  end)
else
  print("skip GET https://[::1] (IPv6 loopback not available)")
end

check("SNI: the host name is sent, an address is not (RFC 6066)", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  eq(ok(s:get(HOST_A .. "/sni")):text(), "sni=localhost", "SNI for localhost")
  eq(ok(s:get(IP_A .. "/sni")):text(), "sni=", "SNI for 127.0.0.1")
  s:close()
end)

check("server_hostname: SNI and verification name for an address URL", function()
  local s = session()
  local r = ok(s:get(IP_A .. "/sni", { ssl = ctx, server_hostname = "localhost" }))
  eq(r:text(), "sni=localhost", "SNI nginx saw")
  check_tls(r, "server_hostname = localhost")
  local err = want_error("ClientConnectorCertificateError",
    s:get(IP_A .. "/info", { ssl = ctx, server_hostname = "wrong.example" }))
  assert(err.message:lower():find("hostname mismatch", 1, true), "message: " .. err.message)
  s:close()
end)

check("ssl = false: no verification, the request works", function()
  local s = session()
  for _, u in ipairs { IP_A, HOST_A } do
    local r = ok(s:get(u .. "/info", { ssl = false }))
    info(r)
    local t = r.tls
    assert(t.protocol == "TLSv1.2" or t.protocol == "TLSv1.3", "protocol " .. tostring(t.protocol))
    eq(t.verified, false, u .. ": verified")
    eq(t.peer and t.peer.subject, "CN=server", u .. ": peer.subject")
  end
  s:close()
end)

check("ssl = false on the connector", function()
  local s = session { connector = lurl.connector { ssl = false } }
  local r = ok(s:get(HOST_A .. "/info"))
  info(r)
  eq(r.tls.verified, false, "verified")
  s:close()
end)

check("pool keys: connections under different ssl settings are not shared", function()
  local s = session()
  local a = info(ok(s:get(HOST_A .. "/info", { ssl = ctx })))
  local b = info(ok(s:get(HOST_A .. "/info", { ssl = false })))
  local c = info(ok(s:get(HOST_A .. "/info", { ssl = ctx })))
  assert(a.conn ~= b.conn, "ssl = ctx and ssl = false shared connection " .. a.conn)
  eq(c.conn, a.conn, "connection of the second ssl = ctx request")
  eq(c.requests, 2, "connection_requests of the second ssl = ctx request")
  eq(s.connector:stats().idle, 2, "idle connections")
  s:close()
end)

-- ---- pinning ----

check("lurl.fingerprint of server.pem (colons as openssl prints them)", function()
  local s = session()
  local r = ok(s:get(HOST_A .. "/info", { ssl = lurl.fingerprint(fingerprint) }))
  info(r)
  eq(r.tls.peer.fingerprint, FP, "peer.fingerprint")
  local r2 = ok(s:get(IP_A .. "/info", { ssl = lurl.fingerprint(FP:upper()) }))
  info(r2)
  s:close()
end)

check("a wrong fingerprint: ServerFingerprintMismatch", function()
  local s = session()
  local wrong = (FP:sub(1, 1) == "0" and "1" or "0") .. FP:sub(2)
  local err = want_error("ServerFingerprintMismatch", s:get(HOST_A .. "/info", { ssl = lurl.fingerprint(wrong) }))
  eq(err.expected, wrong, "err.expected")
  eq(err.got, FP, "err.got")
  eq(s.connector:stats().idle, 0, "idle connections after the mismatch")
  s:close()
end)

-- ---- keep-alive ----

check("keep-alive: 20 GETs on one TLS connection", function()
  local s = session { connector = lurl.connector { ssl = ctx }, headers = { ["User-Agent"] = "lurl-tls-keepalive" } }
  local first
  for n = 1, 20 do
    local r = ok(s:get(HOST_A .. "/info"))
    local i = info(r)
    first = first or i
    eq(i.conn, first.conn, "connection of request " .. n)
    eq(i.requests, n, "connection_requests of request " .. n)
    eq(r.timings.reused, n > 1, "timings.reused of request " .. n)
    if n == 1 then
      assert(r.timings.tls > 0, "timings.tls of the first request: " .. r.timings.tls)
    else
      eq(r.timings.tls, 0, "timings.tls of request " .. n)
    end
    check_tls(r, "request " .. n)
    local st = s.connector:stats()
    eq(st.idle, 1, "idle connections after request " .. n)
    eq(st.in_use, 0, "connections in use after request " .. n)
  end
  s:close()
end)

check("keep-alive: nginx closes after keepalive_requests, lurl reconnects (and resumes)", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  H.three_per_connection(s, function()
    local r = ok(s:get(HOST_A .. "/info_limited"))
    local i = info(r)
    return i.conn, i.requests, r
  end, function(n, number, r)
    if number == 1 then
      -- the connections after nginx's close resume the session of the one before
      if n > 1 then eq(r.tls.resumed, true, "resumed on the new connection of request " .. n) end
    else
      eq(r.timings.reused, true, "timings.reused of request " .. n)
    end
    if number == 3 then eq(r.headers["connection"], "close", "Connection header of request " .. n) end
  end)
  s:close()
end)

check("keep-alive: TLS connection closed by nginx while idle is not reused", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  local i1 = info(ok(s:get(HOST_A .. "/info_short")))
  lurl.sleep(1.6) -- nginx's keepalive_timeout there is 1 s
  local r2 = ok(s:get(HOST_A .. "/info_short"))
  local i2 = info(r2)
  assert(i2.conn ~= i1.conn, "same connection after nginx closed it")
  eq(i2.requests, 1, "connection_requests on the new connection")
  eq(r2.timings.reused, false, "timings.reused")
  eq(r2.tls.resumed, true, "resumed")
  s:close()
end)

-- ---- resumption ----

check("resumption: one context shared by two sessions", function()
  local rctx = lurl.ssl_context { cafile = CA }
  local s1 = session { connector = lurl.connector { ssl = rctx }, headers = { ["User-Agent"] = "lurl-tls-resume-1" } }
  local r1 = ok(s1:get(HOST_A .. "/info"))
  local i1 = info(r1)
  eq(r1.tls.resumed, false, "first connection resumed")
  eq(i1.reused, ".", "nginx's ssl_session_reused on the first connection")
  assert(r1.timings.tls > 0, "timings.tls of the full handshake: " .. r1.timings.tls)
  s1:close()
  -- nginx sends two TLS 1.3 tickets per connection; each is used once
  assert(rctx:sessions() >= 1, "sessions kept by the context: " .. rctx:sessions())

  local s2, r2 = resumed_elsewhere(rctx, HOST_A, "lurl-tls-resume-2", i1, "resumed")
  eq(r2.timings.reused, false, "timings.reused (a new connection)")
  assert(r2.timings.tls > 0, "timings.tls of the resumed handshake: " .. r2.timings.tls)
  s2:close()
end)

check("resumption: force_close connector, every request a new resumed connection", function()
  local rctx = lurl.ssl_context { cafile = CA }
  local s = session { connector = lurl.connector { ssl = rctx, force_close = true },
                      headers = { ["User-Agent"] = "lurl-tls-force-close" } }
  local seen = {}
  for n = 1, 3 do
    local r = ok(s:get(HOST_A .. "/info"))
    local i = info(r)
    assert(not seen[i.conn], "connection " .. i.conn .. " used twice")
    seen[i.conn] = true
    eq(i.requests, 1, "connection_requests of request " .. n)
    eq(r.tls.resumed, n > 1, "resumed of request " .. n)
    eq(i.reused, n > 1 and "r" or ".", "nginx's ssl_session_reused of request " .. n)
    eq(r.timings.reused, false, "timings.reused of request " .. n)
    assert(r.timings.tls > 0, "timings.tls of request " .. n .. ": " .. r.timings.tls)
    eq(s.connector:stats().idle, 0, "idle after request " .. n)
  end
  s:close()
end)

check("forget_sessions: the next connection makes a full handshake", function()
  local rctx = lurl.ssl_context { cafile = CA }
  local s = session { connector = lurl.connector { ssl = rctx, force_close = true } }
  ok(s:get(HOST_A .. "/info"))
  eq(ok(s:get(HOST_A .. "/info")).tls.resumed, true, "resumed before forget_sessions")
  rctx:forget_sessions()
  eq(rctx:sessions(), 0, "sessions after forget_sessions")
  local r = ok(s:get(HOST_A .. "/info"))
  eq(r.tls.resumed, false, "resumed after forget_sessions")
  eq(info(r).reused, ".", "nginx's ssl_session_reused after forget_sessions")
  s:close()
end)

-- ---- bodies ----

check("GET 1 MiB over TLS: exact bytes", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  local r = ok(s:get(HOST_A .. "/static/blob.bin"))
  eq(r.status, 200, "status")
  eq(r.headers["content-length"], tostring(#blob), "Content-Length")
  local body = r:read()
  eq(#body, #blob, "length")
  assert(body == blob, "body differs from the file")
  check_tls(r, "blob.bin")
  s:close()
end)

check("GET 1 MiB over TLS streamed with iter_chunked(65536), then reuse", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  local c1 = info(ok(s:get(HOST_A .. "/info"))).conn
  local r = ok(s:get(HOST_A .. "/static/blob.bin", { stream = true }))
  local parts = {}
  for chunk in r:iter_chunked(65536) do
    assert(#chunk > 0 and #chunk <= 65536, "piece of " .. #chunk .. " bytes")
    parts[#parts + 1] = chunk
  end
  assert(table.concat(parts) == blob, "streamed body differs from the file")
  eq(info(ok(s:get(HOST_A .. "/info"))).conn, c1, "connection after the streamed body")
  s:close()
end)

check("chunked response (SSI) over TLS reassembled exactly, then reuse", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  local c1 = info(ok(s:get(HOST_A .. "/info"))).conn
  local r = ok(s:get(HOST_A .. "/ssi/page.shtml"))
  eq(r.status, 200, "status")
  eq(r.headers["transfer-encoding"], "chunked", "Transfer-Encoding")
  local want = "<html><body>\nhello over tls\n\n" .. blob .. "\n</body></html>\n"
  local body = r:read()
  eq(#body, #want, "length")
  assert(body == want, "body differs")
  eq(info(ok(s:get(HOST_A .. "/info"))).conn, c1, "connection after the chunked body")
  s:close()
end)

check("4 concurrent GETs of 1 MiB over TLS", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  local tasks = {}
  for n = 1, 4 do
    tasks[n] = lurl.spawn(function()
      local r = ok(s:get(HOST_A .. "/static/blob.bin"))
      return r:read() == blob
    end)
  end
  for n, t in ipairs(tasks) do eq(t:join(), true, "task " .. n .. " body matches") end
  eq(s.connector:stats().in_use, 0, "in use")
  s:close()
end)

check("PUT 1 MiB over TLS to nginx dav: the file on disk is exact, GET it back, DELETE", function()
  local s = session { connector = lurl.connector { ssl = ctx } }
  local c1 = info(ok(s:get(HOST_A .. "/info"))).conn
  local r = ok(s:put(HOST_A .. "/dav/upload.bin", { data = blob }))
  eq(r.status, 201, "PUT status")
  local f = H.read_file(docroot .. "/dav/upload.bin")
  assert(f == blob, ("file written by nginx differs (%d bytes)"):format(#f))
  local g = ok(s:get(HOST_A .. "/dav/upload.bin"))
  assert(g:read() == blob, "GET after PUT differs")
  eq(ok(s:delete(HOST_A .. "/dav/upload.bin")).status, 204, "DELETE status")
  eq(info(ok(s:get(HOST_A .. "/info"))).conn, c1, "connection after the upload")
  s:close()
end)

check("https:// to nginx's plain HTTP port: ClientConnectorSSLError", function()
  local s = session()
  local err = want_error("ClientConnectorSSLError", s:get("https://127.0.0.1:" .. port_p .. "/info", { ssl = ctx }))
  assert(not err:is("ClientConnectorCertificateError"), "a certificate error: " .. err.message)
  assert(err.message:find("TLS handshake failed", 1, true), "message: " .. err.message)
  eq(s.connector:stats().idle, 0, "idle connections")
  -- and the same server over plain HTTP is fine
  local r = ok(s:get("http://127.0.0.1:" .. port_p .. "/info"))
  eq(r.status, 200, "plain HTTP status")
  eq(r.tls, nil, "resp.tls over plain HTTP")
  eq(r.timings.tls, 0, "timings.tls over plain HTTP")
  s:close()
end)

check("plain HTTP to the TLS port: nginx's 400, answered over plain HTTP", function()
  local s = session()
  local r = ok(s:get("http://127.0.0.1:" .. port_a .. "/info",
    { headers = { ["User-Agent"] = "lurl-tls-plain-http" } }))
  eq(r.status, 400, "status")
  eq(r.tls, nil, "resp.tls over plain HTTP")
  assert(r:text():find("plain HTTP request was sent to HTTPS port", 1, true), "body: " .. r:text())
  s:close()
end)

-- ---- TLS 1.2 (server c) ----

check("TLS 1.2 only server: verified, keep-alive, resumption (tickets in the handshake)", function()
  local rctx = lurl.ssl_context { cafile = CA }
  local s = session { connector = lurl.connector { ssl = rctx }, headers = { ["User-Agent"] = "lurl-tls12" } }
  local r1 = ok(s:get(HOST_C .. "/info"))
  local i1 = info(r1)
  local t = check_tls(r1, "TLS 1.2")
  eq(t.protocol, "TLSv1.2", "protocol")
  eq(i1.protocol, "TLSv1.2", "protocol nginx saw")
  eq(t.resumed, false, "resumed on the first connection")
  assert(t.cipher:find("ECDHE", 1, true), "cipher " .. t.cipher)
  local r2 = ok(s:get(HOST_C .. "/info"))
  eq(info(r2).conn, i1.conn, "connection of the second request")
  eq(r2.timings.reused, true, "timings.reused of the second request")
  s:close()
  local s2 = resumed_elsewhere(rctx, HOST_C, "lurl-tls12", i1, "TLS 1.2 resumed")
  local body = ok(s2:get(HOST_C .. "/static/blob.bin")):read()
  assert(body == blob, ("1 MiB over TLS 1.2 differs (%d bytes)"):format(#body))
  s2:close()
end)

check("min_version = TLSv1.3 against the TLS 1.2 only server: ClientConnectorSSLError", function()
  local s = session()
  local err = want_error("ClientConnectorSSLError",
    s:get(HOST_C .. "/info", { ssl = lurl.ssl_context { cafile = CA, min_version = "TLSv1.3" } }))
  assert(not err:is("ClientConnectorCertificateError"), "a certificate error: " .. err.message)
  assert(err.message:find("TLS handshake failed", 1, true), "message: " .. err.message)
  s:close()
end)

-- ---- client certificates (server b) ----

-- two connections (force_close): a full handshake, then a resumed one,
-- where nginx still knows the client certificate from the session
local function client_cert_check(cctx, what)
  local s = session { connector = lurl.connector { force_close = true } }
  for n = 1, 2 do
    local r = ok(s:get(HOST_B .. "/client", { ssl = cctx }))
    eq(r.status, 200, what .. ": status of request " .. n)
    local body = r:text()
    assert(body:sub(1, 7) == "SUCCESS", what .. ": body " .. body)
    assert(body:find("CN=client", 1, true), what .. ": body " .. body)
    check_tls(r, what)
    eq(r.tls.resumed, n == 2, what .. ": resumed of request " .. n)
  end
  s:close()
end

check("client certificate (certfile + keyfile): nginx verifies it", function()
  client_cert_check(lurl.ssl_context { cafile = CA, certfile = pki .. "/client.pem", keyfile = pki .. "/client.key" },
    "client.key")
end)

check("client certificate with an encrypted key and its password", function()
  client_cert_check(lurl.ssl_context { cafile = CA, certfile = pki .. "/client.pem",
    keyfile = pki .. "/client-enc.key", password = "secret" }, "client-enc.key")
end)

check("encrypted key with a wrong password, or none: ssl_context raises (no prompt)", function()
  for _, password in ipairs { "wrong", false } do
    local good, err = pcall(lurl.ssl_context, { cafile = CA, certfile = pki .. "/client.pem",
      keyfile = pki .. "/client-enc.key", password = password or nil })
    eq(good, false, "pcall result with password " .. tostring(password))
    assert(tostring(err):find("cannot load keyfile", 1, true), "error: " .. tostring(err))
  end
end)

check("no client certificate: nginx answers 400", function()
  local s = session { headers = { ["User-Agent"] = "lurl-tls-no-client-cert" } }
  local r = ok(s:get(HOST_B .. "/client", { ssl = ctx }))
  eq(r.status, 400, "status")
  assert(r:text():find("No required SSL certificate was sent", 1, true), "body: " .. r:text())
  check_tls(r, "no client certificate")
  s:close()
end)

H.finish("tls_client")
