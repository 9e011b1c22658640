-- TLS inside TLS: core.tls.engine (TLS on no socket) and lurl.tls_over
-- (the stream it makes of it), as for an https origin through an https://
-- proxy after CONNECT. The tunnel is a relay written here: it accepts TCP,
-- runs the server side of TLS with its own certificate (CN=relay, name
-- proxy.test) and relays what it decrypts to the origin's port over plain
-- TCP and back, so what reaches the origin is the client's inner TLS. The
-- origin is lurl.testing.server with HTTPS. Certificates: the throwaway PKI
-- of spec/tls/make_certs.sh and the relay's, signed here by its test CA.
local lurl = require "lurl"
local core = require "lurl.core"
local sched = require "lurl.sched"
local tls = require "lurl.tls"
local conn = require "lurl.conn"
local h1 = require "lurl.h1"
local timeout = require "lurl.timeout"
local support = require "spec.support"

local P -- the directory of the throwaway PKI, ending in "/"

local function sh(cmd)
  assert(os.execute(cmd .. " >/dev/null 2>&1") == 0, "failed: " .. cmd)
end

local function make_pki()
  local d = support.pki()
  sh(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %srelay.key"):format(d))
  sh(("openssl req -new -key %srelay.key -subj /CN=relay -addext subjectAltName=DNS:proxy.test"
    .. " -addext extendedKeyUsage=serverAuth -out %srelay.csr"):format(d, d))
  sh(("openssl x509 -req -in %srelay.csr -CA %sca.pem -CAkey %sca.key -CAcreateserial -days 30"
    .. " -copy_extensions copy -out %srelay.pem"):format(d, d, d, d))
  return d
end

local function server_context(name)
  return lurl.ssl_context { server = true, certfile = P .. name .. ".pem", keyfile = P .. name .. ".key" }
end

local function ca() return lurl.ssl_context { cafile = P .. "ca.pem" } end

-- ---- the engine alone: two engines and the bytes between them ----

-- Run the handshake of client engine a and server engine b: true, or a's
-- failure (nil, message, ename, verify_code).
local function shuttle(a, b)
  for _ = 1, 10 do
    local ra = { a:handshake() }
    b:feed(a:pending())
    local rb = { b:handshake() }
    a:feed(b:pending())
    if ra[1] == nil then return unpack(ra, 1, 4) end
    assert(rb[1] ~= nil, rb[2])
    if ra[1] and rb[1] then return true end
  end
  error("the handshake did not finish")
end

-- ---- the relay ----

local function close_if_open(s) if not s:closed() then s:close() end end

-- Relay one accepted connection once its TLS is up. mode "drop": close it
-- on the first bytes through the tunnel (mid inner handshake); "stall":
-- take them and never answer. Neither connects to the origin, which would
-- be left in a handshake of its own.
local function relay_link(r, client)
  local origin, connected, queued, ended = nil, false, {}, false
  local function done()
    if ended then return end
    ended = true
    r.ended = r.ended + 1
    close_if_open(client)
    if origin then close_if_open(origin) end
  end
  r.linked = r.linked + 1
  client:read_start(function(data)
    if not data or r.mode == "drop" then return done() end
    if r.mode == "stall" then return end
    if connected then origin:write(data) else queued[#queued + 1] = data end
  end)
  if r.mode then return end
  origin = assert(core.tcp.connect("127.0.0.1", r.target, function(ok)
    if not ok or client:closed() then return done() end
    connected = true
    for _, data in ipairs(queued) do origin:write(data) end
    origin:read_start(function(data)
      if not data then return done() end
      if not client:closed() then client:write(data) end
    end)
  end))
  r.streams[#r.streams + 1] = origin
end

local function relay(target, mode)
  local r = { target = target, mode = mode, linked = 0, ended = 0, streams = {}, ctx = server_context("relay") }
  local listener
  listener = assert(core.tcp.listen("127.0.0.1", 0, function()
    local client = listener:accept()
    if not client then return end
    r.streams[#r.streams + 1] = client
    assert(client:tls_start(r.ctx, nil, nil, function(ok)
      if ok then relay_link(r, client) else client:close() end
    end))
  end))
  listener:ref(false)
  r.port = select(2, listener:sockname())
  -- after the relay let go of every client that left (and so of the
  -- origin's side, whose server then ends its connections by itself)
  function r.close()
    support.eventually(function() return r.ended == r.linked end, 2)
    for _, s in ipairs(r.streams) do close_if_open(s) end
    listener:close()
  end
  return r
end

-- ---- the client ----

local function deadline(sock_connect)
  return timeout.start(timeout.new { total = 20, sock_connect = sock_connect or 5 })
end

local function connect(port)
  local s
  local ok, err = sched.wait(function(wake) s = assert(core.tcp.connect("127.0.0.1", port, wake)) end, 5)
  assert(ok == true, tostring(err))
  return s
end

-- TCP to the relay, TLS with it (its certificate verified as proxy.test),
-- then lurl.tls's handshake with the origin inside: info, inner, outer, or
-- nil, err, outer.
local function through(r, origin_port, ctx, d)
  d = d or deadline()
  local outer = connect(r.port)
  local oinfo, same = tls.handshake(outer, tls.settings(ctx, "proxy.test"), "127.0.0.1", r.port, d)
  assert(oinfo, same)
  assert.are.equal(outer, same)
  assert.are.equal("CN=relay", oinfo.peer.subject)
  local info, inner = tls.handshake(outer, tls.settings(ctx), "localhost", origin_port, d)
  if not info then return nil, inner, outer end
  return info, inner, outer
end

-- A GET over the inner stream (or over c, a connection kept alive), read
-- with lurl.conn: status, body, the connection.
local function get(inner, path, d, c)
  c = c or conn.new(inner, "k", {})
  c:begin(false)
  assert(c:send(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n"):format(path), d))
  if path == "/big" then lurl.sleep(0.5) end -- let the body pile up past lurl.conn's high water mark
  local head = assert(c:read_event(d))
  assert.are.equal("head", head[1])
  local parts, done = { head.body }, head.done
  while not done do
    local ev = assert(c:read_event(d))
    assert(ev[1] == "body" or ev[1] == "done", tostring(ev[2]))
    parts[#parts + 1] = ev[2]
    done = ev[1] == "done"
  end
  return head[h1.STATUS], table.concat(parts), c
end

describe("TLS inside TLS", function()
  local ctx, origin, r

  setup(function()
    P = make_pki()
    ctx = ca()
  end)
  teardown(function() os.execute("rm -rf " .. P) end)
  after_each(function()
    if r then r.close(); r = nil end
    if origin then origin:close(); origin = nil end
  end)

  describe("core.tls.engine", function()
    it("handshakes, carries data both ways and ends with close_notify", function()
      local c = assert(core.tls.engine(ctx, "localhost", "localhost:1"))
      local s = assert(core.tls.engine(server_context("server")))
      assert.are.equal("lurl.tls_engine", getmetatable(c).__name)
      assert.is_nil(c:info())
      assert.is_true(shuttle(c, s))
      local info = c:info()
      assert.are.equal("CN=server", info.peer.subject)
      assert.is_true(info.verified)
      assert.is_false(info.resumed)
      assert.is_true(c:write("ping"))
      s:feed(c:pending())
      assert.are.equal("ping", s:read())
      assert.are.equal("", s:read())
      assert.is_true(s:write("pong"))
      c:feed(s:pending())
      assert.are.equal("pong", c:read())
      local bye = c:close()
      assert.is_true(#bye > 0)
      assert.are.equal("", c:close())
      assert.has_error(function() c:read() end)
      s:feed(bye)
      assert.are.same({ nil, "EOF", "EOF" }, { s:read() })
      assert.are.same({ nil, "EOF", "EOF" }, { s:read() })
      s:close()
    end)

    it("refuses a certificate that does not verify: ECERT with OpenSSL's code", function()
      local c = assert(core.tls.engine(ctx, "other.example"))
      local ok, msg, ename, code = shuttle(c, assert(core.tls.engine(server_context("server"))))
      assert.is_nil(ok)
      assert.are.equal("certificate verify failed: hostname mismatch", msg)
      assert.are.equal("ECERT", ename)
      assert.are.equal(62, code) -- X509_V_ERR_HOSTNAME_MISMATCH
      assert.is_nil(c:info())
      assert.matches("TLS handshake not finished", select(2, pcall(c.write, c, "x")), 1, true)
      assert.are.equal("", c:close())
    end)

    it("offers the connection's own ALPN list unless the context has one", function()
      local h2_server = lurl.ssl_context { server = true, certfile = P .. "server.pem", keyfile = P .. "server.key",
        alpn = { "h2", "http/1.1" } }
      local function agreed(client_ctx, alpn)
        local c = assert(core.tls.engine(client_ctx, "localhost", nil, alpn))
        assert.is_true(shuttle(c, assert(core.tls.engine(h2_server))))
        return c:info().alpn
      end
      assert.are.equal("http/1.1", agreed(ctx))
      assert.are.equal("h2", agreed(ctx, "\2h2\8http/1.1"))
      local own = lurl.ssl_context { cafile = P .. "ca.pem", alpn = { "http/1.1" } }
      assert.are.equal("http/1.1", agreed(own, "\2h2\8http/1.1"))
      for _, bad in ipairs { "", "\5h2", "\0", "\2h2\0" } do
        assert.has_error(function() core.tls.engine(ctx, "localhost", nil, bad) end,
          "bad argument #4 to 'engine' (ALPN list in wire format expected)")
      end
    end)

    it("resumes a session saved under its key", function()
      local own, server = ca(), server_context("server") -- the server's ticket keys are its context's
      for round = 1, 2 do
        local c = assert(core.tls.engine(own, "localhost", "localhost:443"))
        local s = assert(core.tls.engine(server))
        assert.is_true(shuttle(c, s))
        assert.are.equal("", c:read()) -- takes the server's session tickets
        assert.are.equal(round == 2, c:info().resumed)
        assert.is_true(own:sessions() > 0)
        c:close()
        s:close()
      end
    end)

    it("reports bytes that are not TLS as ESSL, then again", function()
      local c = assert(core.tls.engine(ctx, "localhost"))
      assert.is_true(shuttle(c, assert(core.tls.engine(server_context("server")))))
      c:feed(("\23\3\3\0\16"):rep(4) .. ("x"):rep(64))
      local ok, msg, ename = c:read()
      assert.is_nil(ok)
      assert.matches("^ESSL: ", msg)
      assert.are.equal("ESSL", ename)
      assert.are.same({ nil, msg, "ESSL" }, { c:read() })
      assert.is_nil(c:info())
      c:close()
    end)
  end)

  describe("lurl.tls over a TLS tunnel", function()
    local function hello(req) return { body = "hello " .. req.path } end

    it("verifies both certificates, and the inner one is the origin's", function()
      origin = support.server({ ["*"] = hello }, { ssl = server_context("server") })
      r = relay(origin.port)
      local d = deadline()
      local info, inner, outer = through(r, origin.port, ctx, d)
      assert(info, inner)
      assert.are.equal("lurl.tls_over_stream", getmetatable(inner).__name)
      assert.are.equal("CN=server", info.peer.subject)
      assert.is_true(info.verified)
      assert.are.equal("http/1.1", info.alpn)
      assert.are.same(info, inner:tls_info())
      assert.are.equal("CN=relay", outer:tls_info().peer.subject)
      local status, body, c = get(inner, "/a", d)
      assert.are.equal(200, status)
      assert.are.equal("hello /a", body)
      status, body = get(inner, "/b", d, c) -- kept alive
      assert.are.equal(200, status)
      assert.are.equal("hello /b", body)
      assert.are.equal(2, origin.requests)
      assert.are.equal(1, origin.connections)
      c:close()
      -- the session the inner handshake saved is resumed through the next tunnel
      local again, inner2 = through(r, origin.port, ctx)
      assert.is_true(again.resumed)
      inner2:close()
    end)

    it("refuses an origin certificate for another name: ClientConnectorCertificateError", function()
      origin = support.server({ ["*"] = hello }, { ssl = server_context("wronghost") })
      r = relay(origin.port)
      local info, err, outer = through(r, origin.port, ctx)
      assert.is_nil(info)
      assert.are.equal("ClientConnectorCertificateError", err.kind)
      assert.matches("certificate verify failed: hostname mismatch", err.message, 1, true)
      assert.matches("localhost:" .. origin.port, err.message, 1, true)
      assert.are.equal(62, err.verify_code)
      assert.is_true(outer:closed())
      assert.are.equal(0, origin.requests)
      -- the client's alert went through the tunnel: the origin knows why
      assert.is_truthy(support.eventually(function() return #origin.tls_errors == 1 end))
    end)

    it("reads a body of several MiB through lurl.conn, pausing and resuming", function()
      local big = support.random_bytes(1024):rep(3 * 1024)
      origin = support.server({ ["/big"] = function() return { body = big } end }, { ssl = server_context("server") })
      r = relay(origin.port)
      local d = deadline()
      local info, inner = through(r, origin.port, ctx, d)
      assert(info, inner)
      local stops, starts = 0, 0
      local read_stop, read_start = inner.read_stop, inner.read_start
      inner.read_stop = function(self) stops = stops + 1; return read_stop(self) end
      inner.read_start = function(self, fn) starts = starts + 1; return read_start(self, fn) end
      local status, body, c = get(inner, "/big", d)
      assert.are.equal(200, status)
      assert.are.equal(#big, #body)
      assert.is_true(big == body)
      assert.is_true(stops >= 1)
      assert.is_true(starts >= 2) -- lurl.conn's first, and the resumes
      c:close()
    end)

    it("close() closes both layers", function()
      origin = support.server({ ["*"] = hello }, { ssl = server_context("server") })
      r = relay(origin.port)
      local fds = support.open_fds()
      local info, inner, outer = through(r, origin.port, ctx)
      assert(info, inner)
      inner:close()
      inner:close()
      assert.is_true(inner:closed())
      assert.is_true(outer:closed())
      assert.is_nil(inner:tls_info())
      assert.are.same({ nil, "EPIPE: broken pipe", "EPIPE" }, { inner:write("x") })
      -- the relay sees its client go and lets the origin go too
      assert.is_truthy(support.eventually(function() return r.ended == 1 end))
      assert.is_truthy(support.eventually(function() return origin:open_connections() == 0 end))
      assert.is_truthy(support.eventually(function() return support.open_fds() <= fds end))
    end)

    it("fails at once, without hanging, when the tunnel drops mid-handshake", function()
      origin = support.server({ ["*"] = hello }, { ssl = server_context("server") })
      r = relay(origin.port, "drop")
      local elapsed, info, err, outer = support.timed(through, r, origin.port, ctx)
      assert.is_nil(info)
      assert.are.equal("ClientConnectorSSLError", err.kind)
      assert.are.equal("EOF", err.errno)
      assert.matches("connection closed by the peer during the TLS handshake", err.message, 1, true)
      assert.is_true(outer:closed())
      assert.is_true(elapsed < 2)
    end)

    it("gives up at sock_connect when the tunnel never answers, closing both layers", function()
      origin = support.server({ ["*"] = hello }, { ssl = server_context("server") })
      r = relay(origin.port, "stall")
      local elapsed, info, err, outer = support.timed(through, r, origin.port, ctx, deadline(0.3))
      assert.is_nil(info)
      assert.are.equal("ConnectionTimeoutError", err.kind)
      assert.is_true(outer:closed())
      assert.is_true(elapsed < 2)
    end)

    it("runs over a stream that is not a C stream (TLS in TLS in TLS)", function()
      origin = support.server({ ["*"] = hello }, { ssl = server_context("server") })
      local r2 = relay(origin.port)
      r = relay(r2.port) -- relays the tunnel to the second relay
      local d = deadline()
      local outer = connect(r.port)
      assert(tls.handshake(outer, tls.settings(ctx, "proxy.test"), "127.0.0.1", r.port, d))
      local mid_info, mid = tls.handshake(outer, tls.settings(ctx, "proxy.test"), "127.0.0.1", r2.port, d)
      assert(mid_info, mid)
      local info, inner = tls.handshake(mid, tls.settings(ctx), "localhost", origin.port, d)
      assert(info, inner)
      assert.are.equal("CN=server", info.peer.subject)
      local status, body, c = get(inner, "/deep", d)
      assert.are.equal(200, status)
      assert.are.equal("hello /deep", body)
      c:close()
      assert.is_true(outer:closed())
      r2.close()
    end)
  end)
end)
