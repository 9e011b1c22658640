-- HTTPS: verification on by default, every failure kind with its error,
-- ssl = false, pinning, client certificates, keep-alive and resumption,
-- timeouts and truncated bodies. Servers: lurl.testing.server with a TLS
-- context (most cases) and `openssl s_server -www` (a peer we did not write).
-- The certificates are made at run time by spec/tls/make_certs.sh.
local lurl = require "lurl"
local core = require "lurl.core"
local support = require "spec.support"

local P -- the directory of the throwaway PKI, ending in "/"

local function server_context(name, extra)
  local opts = { server = true, certfile = P .. name .. ".pem", keyfile = P .. name .. ".key" }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return lurl.ssl_context(opts)
end

local function hello(req)
  return { body = "hello " .. req.path, headers = { ["X-Connection"] = tostring(req.connection) } }
end

-- An HTTPS test server presenting certificate `name` (server, expired, ...).
local function https_server(name, routes, extra)
  return support.server(routes or { ["*"] = hello }, { ssl = server_context(name, extra) })
end

local function url_of(srv, host, path)
  return ("https://%s:%d%s"):format(host or "127.0.0.1", srv.port, path or "/")
end

-- A session whose connector resolves every name to 127.0.0.1 (for the
-- certificate's DNS names) and trusts the test CA unless told otherwise.
local function session(opts)
  opts = opts or {}
  local conn = { resolver = function() return { { ip = "127.0.0.1", family = 4 } } end }
  for k, v in pairs(opts) do conn[k] = v end
  return lurl.session { connector = lurl.connector(conn) }
end

local function ca() return lurl.ssl_context { cafile = P .. "ca.pem" } end

local function fingerprint_of(name)
  local f = assert(io.popen("openssl x509 -in " .. P .. name .. ".pem -noout -fingerprint -sha256"))
  local line = f:read("*l")
  f:close()
  return (line:match("=(.*)$"))
end

describe("https", function()
  local srv, s

  setup(function() P = support.pki() end)
  teardown(function() os.execute("rm -rf " .. P) end)
  after_each(function()
    if s then s:close(); s = nil end
    if srv then srv:close(); srv = nil end
  end)

  describe("verification", function()
    it("succeeds against the test CA, by IP address and by name", function()
      srv = https_server("server")
      s = session { ssl = ca() }
      for _, host in ipairs { "127.0.0.1", "localhost" } do
        local resp, err = s:get(url_of(srv, host, "/a"))
        assert.is_nil(err)
        assert.are.equal(200, resp.status)
        assert.are.equal("hello /a", resp:text())
        assert.is_true(resp.tls.verified)
        assert.are.equal("http/1.1", resp.tls.alpn)
        assert.is_truthy(resp.tls.protocol == "TLSv1.3" or resp.tls.protocol == "TLSv1.2")
      end
    end)

    it("is on by default: the system store does not know the test CA", function()
      srv = https_server("server")
      s = session()
      local resp, err = s:get(url_of(srv))
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorCertificateError", err.kind)
      assert.is_true(err:is("ClientSSLError"))
      assert.is_true(err:is("ClientConnectorError"))
      assert.matches("unable to get local issuer certificate", err.message, 1, true)
      assert.matches("127.0.0.1:" .. srv.port, err.message, 1, true)
      assert.are.equal("127.0.0.1", err.host)
      assert.are.equal(srv.port, err.port)
      assert.are.equal(20, err.verify_code) -- X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
      assert.are.equal("GET", err.method)
    end)

    -- each bad certificate fails with OpenSSL's verify reason
    local cases = {
      { "expired", "localhost", "certificate has expired" },
      { "wronghost", "localhost", "hostname mismatch" },
      { "wronghost", "127.0.0.1", "IP address mismatch" },
      { "selfsigned", "localhost", "self-signed certificate" },
      { "untrusted", "localhost", "unable to get local issuer certificate" },
    }
    for _, c in ipairs(cases) do
      it(("rejects a %s certificate for %s: %s"):format(c[1], c[2], c[3]), function()
        srv = https_server(c[1])
        s = session { ssl = ca() }
        local resp, err = s:get(url_of(srv, c[2]))
        assert.is_nil(resp)
        assert.are.equal("ClientConnectorCertificateError", err.kind)
        assert.matches("certificate verify failed: " .. c[3], err.message, 1, true)
        assert.matches(c[2] .. ":" .. srv.port, err.message, 1, true)
        assert.are.equal(0, srv.requests)
      end)
    end

    it("checks server_hostname instead of the URL's host, and sends it as SNI", function()
      srv = https_server("wronghost")
      s = session { ssl = ca() }
      local resp, err = s:get(url_of(srv), { server_hostname = "wrong.example" })
      assert.is_nil(err)
      assert.are.equal(200, resp.status)
      resp, err = s:get(url_of(srv), { server_hostname = "other.example" })
      assert.is_nil(resp)
      assert.matches("hostname mismatch", err.message, 1, true)
    end)

    it("ssl = false connects without any check and says so in resp.tls", function()
      srv = https_server("selfsigned")
      s = session()
      local resp, err = s:get(url_of(srv, "localhost"), { ssl = false })
      assert.is_nil(err)
      assert.are.equal(200, resp.status)
      assert.is_false(resp.tls.verified)
      -- the connector's ssl = false applies to requests that do not set their own
      s:close()
      s = session { ssl = false }
      assert.are.equal(200, assert(s:get(url_of(srv, "localhost"))).status)
      -- ssl = true means the connector's setting, as in aiohttp
      assert.are.equal(200, assert(s:get(url_of(srv, "localhost"), { ssl = true })).status)
    end)

    it("never shares a connection between verified and unverified requests", function()
      srv = https_server("server")
      s = session { ssl = ca() }
      local a = assert(s:get(url_of(srv, "localhost")))
      local b = assert(s:get(url_of(srv, "localhost"), { ssl = false }))
      local c = assert(s:get(url_of(srv, "localhost")))
      assert.are_not.equal(a.headers["x-connection"], b.headers["x-connection"])
      assert.are.equal(a.headers["x-connection"], c.headers["x-connection"])
      local keys = {}
      for key in pairs(s.connector:stats().per_host) do keys[#keys + 1] = key end
      assert.are.equal(2, #keys)
    end)

    it("rejects a plain HTTP server with ClientConnectorSSLError", function()
      srv = support.server({ ["*"] = hello })
      s = session { ssl = ca() }
      local resp, err = s:get(("https://127.0.0.1:%d/"):format(srv.port))
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorSSLError", err.kind)
      assert.matches("TLS handshake failed", err.message, 1, true)
    end)

    it("reports a peer that closes during the handshake", function()
      local held = {}
      local l
      l = assert(core.tcp.listen("127.0.0.1", 0, function()
        local c = l:accept()
        c:read_start(function() c:close() end) -- close at the ClientHello
        held[#held + 1] = c
      end))
      local _, port = l:sockname()
      s = session { ssl = ca() }
      local resp, err = s:get(("https://127.0.0.1:%d/"):format(port))
      l:close()
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorSSLError", err.kind)
      assert.matches("closed by the peer during the TLS handshake", err.message, 1, true)
    end)

    it("times a silent peer out under sock_connect instead of hanging", function()
      local held = {}
      local l
      l = assert(core.tcp.listen("127.0.0.1", 0, function() held[#held + 1] = l:accept() end))
      local _, port = l:sockname()
      s = session { ssl = ca() }
      local secs, resp, err = support.timed(s.get, s, ("https://127.0.0.1:%d/"):format(port),
        { timeout = lurl.timeout { sock_connect = 0.3, total = 30 } })
      for _, c in ipairs(held) do c:close() end
      l:close()
      assert.is_nil(resp)
      assert.are.equal("ConnectionTimeoutError", err.kind)
      assert.matches("sock_connect", err.message, 1, true)
      assert.is_true(secs >= 0.25 and secs < 10, "took " .. secs)
    end)
  end)

  describe("fingerprint", function()
    it("accepts the pinned certificate even when it would not verify", function()
      srv = https_server("selfsigned")
      s = session()
      local resp, err = s:get(url_of(srv), { ssl = lurl.fingerprint(fingerprint_of("selfsigned")) })
      assert.is_nil(err)
      assert.are.equal(200, resp.status)
      assert.are.equal(fingerprint_of("selfsigned"):gsub(":", ""):lower(), resp.tls.peer.fingerprint)
    end)

    it("refuses another certificate with ServerFingerprintMismatch naming both digests", function()
      srv = https_server("server")
      s = session()
      local pin = fingerprint_of("selfsigned"):gsub(":", ""):lower()
      local resp, err = s:get(url_of(srv), { ssl = lurl.fingerprint(pin) })
      assert.is_nil(resp)
      assert.are.equal("ServerFingerprintMismatch", err.kind)
      assert.is_true(err:is("ServerConnectionError"))
      local got = fingerprint_of("server"):gsub(":", ""):lower()
      assert.are.equal(pin, err.expected)
      assert.are.equal(got, err.got)
      assert.matches(pin, err.message, 1, true)
      assert.matches(got, err.message, 1, true)
      assert.are.equal(0, srv.requests)
    end)

    it("refuses MD5 and SHA-1 digests and malformed ones", function()
      assert.has_error(function() lurl.fingerprint(("a"):rep(32)) end,
        "bad argument #1 to 'fingerprint' (MD5 and SHA-1 are insecure and not supported, use SHA-256)")
      assert.has_error(function() lurl.fingerprint(("a"):rep(40)) end,
        "bad argument #1 to 'fingerprint' (MD5 and SHA-1 are insecure and not supported, use SHA-256)")
      assert.has_error(function() lurl.fingerprint("xyz") end)
      assert.has_error(function() lurl.fingerprint(("a"):rep(63)) end)
      assert.has_error(function() lurl.fingerprint(42) end)
    end)
  end)

  describe("client certificates", function()
    local function client_cert_server()
      return https_server("server", {
        ["*"] = function(req) return { body = req.tls.peer and req.tls.peer.subject or "none" } end,
      }, { verify = true, cafile = P .. "ca.pem" })
    end

    it("are sent when the context has one", function()
      srv = client_cert_server()
      s = session { ssl = lurl.ssl_context { cafile = P .. "ca.pem", certfile = P .. "client.pem",
        keyfile = P .. "client.key" } }
      local resp, err = s:get(url_of(srv, "localhost"))
      assert.is_nil(err)
      assert.are.equal("CN=client", resp:text())
    end)

    it("load from an encrypted key with its password", function()
      srv = client_cert_server()
      s = session { ssl = lurl.ssl_context { cafile = P .. "ca.pem", certfile = P .. "client.pem",
        keyfile = P .. "client-enc.key", password = "secret" } }
      local resp, err = s:get(url_of(srv, "localhost"))
      assert.is_nil(err)
      assert.are.equal("CN=client", resp:text())
    end)

    it("missing, make the request fail with a TLS error", function()
      srv = client_cert_server()
      s = session { ssl = ca() }
      local resp, err = s:get(url_of(srv, "localhost"))
      assert.is_nil(resp)
      assert.is_true(err:is("ClientSSLError"), tostring(err))
      assert.matches("certificate required", err.message, 1, true)
      assert.are.equal(0, srv.requests)
      assert.is_true(#srv.tls_errors >= 1)
    end)
  end)

  describe("ssl_context", function()
    it("raises on a file that does not load, naming it", function()
      for _, verify in ipairs { true, false } do
        local ok, err = pcall(lurl.ssl_context, { cafile = P .. "missing.pem", verify = verify })
        assert.is_false(ok)
        assert.matches("cannot load cafile '" .. P .. "missing.pem'", err, 1, true)
      end
      local ok, err
      ok, err = pcall(lurl.ssl_context, { certfile = P .. "client.pem", keyfile = P .. "server.key" })
      assert.is_false(ok)
      assert.matches("keyfile", err, 1, true)
      ok, err = pcall(lurl.ssl_context, { certfile = P .. "client.pem", keyfile = P .. "client-enc.key",
        password = "wrong" })
      assert.is_false(ok)
      assert.matches("cannot load keyfile", err, 1, true)
    end)

    it("checks its options", function()
      assert.has_error(function() lurl.ssl_context { min_version = "TLSv1.1" } end,
        "bad argument 'min_version' to 'ssl_context' (TLSv1.2 or TLSv1.3 expected, got TLSv1.1)")
      assert.has_error(function() lurl.ssl_context { cafle = "x" } end,
        "bad argument #1 to 'ssl_context' (unknown option 'cafle')")
      assert.has_error(function() lurl.ssl_context { verify = "yes" } end)
      assert.has_error(function() lurl.ssl_context { keyfile = "k.pem" } end,
        "bad argument 'keyfile' to 'ssl_context' (needs certfile)")
      assert.has_error(function() lurl.ssl_context { ciphers = "NO-SUCH-CIPHER" } end)
      assert.has_error(function() lurl.session():get("https://127.0.0.1:1/", { ssl = "yes" }) end)
      assert.has_error(function() lurl.connector { ssl = 1 } end)
    end)

    it("limits the protocol with min_version and the TLS 1.2 suites with ciphers", function()
      srv = https_server("server")
      s = session()
      local resp = assert(
        s:get(url_of(srv), { ssl = lurl.ssl_context { cafile = P .. "ca.pem", min_version = "TLSv1.3" } }))
      assert.are.equal("TLSv1.3", resp.tls.protocol)
    end)
  end)

  describe("connections", function()
    it("are kept alive and reused", function()
      srv = https_server("server")
      s = session { ssl = ca() }
      local first
      for i = 1, 5 do
        local resp = assert(s:get(url_of(srv, "localhost", "/" .. i)))
        assert.are.equal("hello /" .. i, resp:text())
        first = first or resp.headers["x-connection"]
        assert.are.equal(first, resp.headers["x-connection"])
        assert.are.equal(i > 1, resp.timings.reused)
        if i > 1 then assert.are.equal(0, resp.timings.tls) end
      end
      assert.are.equal(1, srv.connections)
    end)

    it("resume the TLS session on the next connection, which shows in timings and resp.tls", function()
      srv = https_server("server")
      s = session { ssl = ca(), force_close = true }
      local a = assert(s:get(url_of(srv, "localhost")))
      local b = assert(s:get(url_of(srv, "localhost")))
      assert.are.equal(2, srv.connections)
      assert.is_false(a.tls.resumed)
      assert.is_true(b.tls.resumed)
      assert.is_true(a.timings.tls > 0)
      assert.is_true(b.timings.tls > 0)
      assert.is_false(b.timings.reused)
    end)

    it("resume in bursts: every connection after the first of each task", function()
      srv = https_server("server")
      s = session { ssl = ca(), force_close = true, limit = 8 }
      local full, tasks = 0, {}
      for t = 1, 8 do
        tasks[t] = lurl.spawn(function()
          for _ = 1, 5 do
            local resp = assert(s:get(url_of(srv, "localhost")))
            assert(not resp.timings.reused)
            if not resp.tls.resumed then full = full + 1 end
          end
        end)
      end
      for _, t in ipairs(tasks) do t:join(30) end
      assert.are.equal(40, srv.connections)
      assert.is_true(full <= 8, full .. " full handshakes")
    end)

    it("share a context, and its sessions, between sessions", function()
      srv = https_server("server")
      local ctx = ca()
      s = session { ssl = ctx }
      assert(s:get(url_of(srv, "localhost")))
      local s2 = session { ssl = ctx }
      local resp = assert(s2:get(url_of(srv, "localhost")))
      s2:close()
      assert.is_true(resp.tls.resumed)
      assert.is_true(ctx:sessions() >= 1)
    end)

    it("tell what was negotiated through resp.tls and lurl.tls_info", function()
      srv = https_server("server")
      s = session { ssl = ca() }
      local resp = assert(s:get(url_of(srv, "localhost")))
      local info = lurl.tls_info(resp)
      assert.are.equal(resp.tls, info)
      assert.are.equal("CN=server", info.peer.subject)
      assert.are.equal("CN=lurl test CA", info.peer.issuer)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", info.peer.not_after)
      assert.same({ "DNS:localhost", "IP:127.0.0.1", "IP:::1" }, info.peer.subject_alt_names)
      assert.is_string(info.cipher)
      local plain = support.server({ ["*"] = hello })
      local p = assert(s:get(plain:url("/")))
      plain:close()
      assert.is_nil(p.tls)
      assert.are.equal(0, p.timings.tls)
    end)

    it("leak no descriptors over many handshakes", function()
      srv = https_server("server")
      s = session { ssl = ca(), force_close = true }
      assert(s:get(url_of(srv)))
      local before = support.open_fds()
      for _ = 1, 20 do assert(s:get(url_of(srv))) end
      assert.is_truthy(support.eventually(function() return support.open_fds() <= before end))
    end)
  end)

  describe("bodies", function()
    local BIG = ("0123456789abcdef"):rep(65536) -- 1 MiB

    it("arrive whole, large and chunked", function()
      srv = https_server("server", {
        ["/big"] = function() return { body = BIG } end,
        ["/chunked"] = function() return { body = BIG, chunked = true } end,
      })
      s = session { ssl = ca() }
      assert.are.equal(BIG, assert(s:get(url_of(srv, "localhost", "/big"))):text())
      assert.are.equal(BIG, assert(s:get(url_of(srv, "localhost", "/chunked"))):text())
    end)

    it("cut short by the server closing are ClientPayloadError", function()
      srv = https_server("server", {
        ["/close"] = function() return { body = BIG, close_after = 5000 } end,
        ["/reset"] = function() return { body = BIG, reset_after = 5000 } end,
      })
      s = session { ssl = ca() }
      for _, path in ipairs { "/close", "/reset" } do
        local resp, err = s:get(url_of(srv, "localhost", path))
        assert.is_nil(resp)
        assert.are.equal("ClientPayloadError", err.kind, path)
      end
    end)

    -- A TLS peer that answers every request with `answer` and then ends the
    -- TCP stream without close_notify (an unclean shutdown).
    local function unclean_peer(answer)
      local ctx = server_context("server")
      local l, held = nil, {}
      l = assert(core.tcp.listen("127.0.0.1", 0, function()
        local c = l:accept()
        held[#held + 1] = c
        c:tls_start(ctx, nil, nil, function(ok)
          if not ok then return c:close() end
          c:read_start(function(data)
            if not data then return c:close() end
            c:write(answer)
            c:shutdown()
          end)
        end)
      end))
      local _, port = l:sockname()
      return port, function()
        for _, c in ipairs(held) do if not c:closed() then c:close() end end
        l:close()
      end
    end

    it("cut short without close_notify are ClientPayloadError", function()
      local port, stop = unclean_peer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
      s = session { ssl = ca() }
      local resp, err = s:get(("https://localhost:%d/"):format(port))
      stop()
      assert.is_nil(resp)
      assert.are.equal("ClientPayloadError", err.kind)
    end)

    it("complete when the server ends the stream without close_notify after all of it", function()
      local port, stop = unclean_peer("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfull")
      s = session { ssl = ca() }
      local resp, err = s:get(("https://localhost:%d/"):format(port))
      stop()
      assert.is_nil(err)
      assert.are.equal("full", resp:text())
      -- read to the end of the connection: what came is the body (RFC 9112 section 6.3)
      port, stop = unclean_peer("HTTP/1.1 200 OK\r\n\r\nto the end")
      resp, err = s:get(("https://localhost:%d/"):format(port))
      stop()
      assert.is_nil(err)
      assert.are.equal("to the end", resp:text())
    end)

    it("that run to the end of the connection are complete when it ends", function()
      srv = https_server("server", {
        ["*"] = function() return { raw = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
          close = true } end,
      })
      s = session { ssl = ca() }
      assert.are.equal("until the end", assert(s:get(url_of(srv, "localhost"))):text())
    end)
  end)

  describe("against openssl s_server", function()
    local pid, port, log

    local function start(args)
      port = support.free_port()
      log = os.tmpname()
      local pidfile = os.tmpname()
      os.execute(("openssl s_server -www -accept 127.0.0.1:%d -cert %sserver.pem -key %sserver.key %s >%s 2>&1"
        .. " & echo $! >%s"):format(port, P, P, args or "", log, pidfile))
      local f = assert(io.open(pidfile))
      pid = f:read("*n")
      f:close()
      os.remove(pidfile)
      local up = support.eventually(function()
        local ok
        local c = core.tcp.connect("127.0.0.1", port, function(r) ok = r end)
        support.eventually(function() return ok ~= nil end, 1)
        c:close()
        return ok
      end, 10)
      assert(up, "s_server did not come up")
    end

    after_each(function()
      if pid then os.execute("kill " .. pid .. " 2>/dev/null"); pid = nil end
      if log then os.remove(log); log = nil end
    end)

    it("serves its status page over a verified connection, resumed the second time", function()
      start()
      s = session { ssl = ca(), force_close = true }
      local a, err = s:get(("https://localhost:%d/"):format(port))
      assert.is_nil(err)
      assert.are.equal(200, a.status)
      assert.matches("Ciphers supported in s_server binary", a:text(), 1, true)
      local b = assert(s:get(("https://localhost:%d/"):format(port)))
      assert.is_false(a.tls.resumed)
      assert.is_true(b.tls.resumed)
    end)

    it("negotiates TLS 1.2 with a chosen cipher", function()
      start("-tls1_2")
      s = session()
      local ctx = lurl.ssl_context { cafile = P .. "ca.pem", ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256" }
      local resp = assert(s:get(("https://127.0.0.1:%d/"):format(port), { ssl = ctx }))
      assert.are.equal("TLSv1.2", resp.tls.protocol)
      assert.are.equal("ECDHE-ECDSA-AES128-GCM-SHA256", resp.tls.cipher)
    end)

    it("resumes TLS 1.2 sessions", function()
      start("-tls1_2")
      s = session { ssl = ca(), force_close = true }
      local resumed = {}
      for i = 1, 3 do
        resumed[i] = assert(s:get(("https://localhost:%d/"):format(port))).tls.resumed
      end
      assert.same({ false, true, true }, resumed)
    end)

    it("fails cleanly when the protocols do not meet", function()
      start("-tls1_2")
      s = session()
      local ctx = lurl.ssl_context { cafile = P .. "ca.pem", min_version = "TLSv1.3" }
      local resp, err = s:get(("https://127.0.0.1:%d/"):format(port), { ssl = ctx })
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorSSLError", err.kind)
    end)

    it("is trusted through the system store where SSL_CERT_FILE or SSL_CERT_DIR point", function()
      start()
      local exe = io.popen("readlink /proc/$PPID/exe"):read("*l")
      local dir = os.tmpname()
      os.remove(dir)
      os.execute(("mkdir -p %s && cp %sca.pem %s/ && openssl rehash %s"):format(dir, P, dir, dir))
      local script = ("local r, e = require('lurl').get('https://localhost:%d/'); "
        .. "io.write(r and r.status or tostring(e and e.kind))"):format(port)
      local function run(env)
        local f = io.popen(("env -u SSL_CERT_FILE -u SSL_CERT_DIR %s %s -e %q 2>&1"):format(env, exe, script))
        local out = f:read("*a")
        f:close()
        return out
      end
      assert.are.equal("ClientConnectorCertificateError", run(""))
      assert.are.equal("200", run("SSL_CERT_DIR=" .. dir))
      assert.are.equal("200", run("SSL_CERT_FILE=" .. P .. "ca.pem"))
      os.execute("rm -rf " .. dir)
    end)

    it("answers with a client certificate it asked for", function()
      start("-Verify 1 -CAfile " .. P .. "ca.pem")
      s = session()
      local ctx = lurl.ssl_context { cafile = P .. "ca.pem", certfile = P .. "client.pem", keyfile = P .. "client.key" }
      local resp = assert(s:get(("https://127.0.0.1:%d/"):format(port), { ssl = ctx }))
      assert.are.equal(200, resp.status)
      assert.matches("CN=client", resp:text(), 1, true)
    end)
  end)
end)
