-- lurl.socks: the client side of SOCKS5 (RFC 1928, RFC 1929) and SOCKS4/4A
-- over a stream from lurl.dial, against lurl.testing.proxy and against raw
-- peers that script a misbehaving proxy; then an HTTP/1.1 exchange through
-- the tunnel (lurl.conn) to a lurl.testing.server origin.
local lurl = require "lurl"
local conn = require "lurl.conn"
local core = require "lurl.core"
local dial = require "lurl.dial"
local socks = require "lurl.socks"
local timeout = require "lurl.timeout"
local support = require "spec.support"

local function deadline(sock_connect)
  local d = timeout.start(lurl.timeout { total = 5, sock_connect = sock_connect or 2 })
  d:begin_sock_connect()
  return d
end

local function connect(port, d)
  return assert(dial.tcp({ { ip = "127.0.0.1", family = 4 } }, port, d, {}, {}))
end

-- The proxy as the connector hands it over (lurl.proxy's shape).
local function proxy_of(port, scheme, user, password)
  return { scheme = scheme, host = "127.0.0.1", port = port, username = user, password = password,
    url = ("%s://127.0.0.1:%d"):format(scheme, port) }
end

-- One GET over the tunnel: the origin's answer.
local function get(stream, d)
  local c = conn.new(stream, "tunnel", {})
  c:begin(false)
  assert(c:send("GET /via HTTP/1.1\r\nHost: origin\r\n\r\n", d))
  local ev = assert(c:read_event(d))
  c:close()
  return ev
end

describe("lurl.socks", function()
  local origin, proxy

  before_each(function()
    origin = support.server({ ["*"] = function(req) return "hello " .. req.path end })
  end)

  after_each(function()
    if proxy then proxy:close(); proxy = nil end
    origin:close()
  end)

  -- Handshake through proxy to host:origin.port; returns its results and
  -- the stream.
  local function handshake(scheme, host, user, password, d)
    d = d or deadline()
    local stream = connect(proxy.port, d)
    local ok, err = socks.handshake(stream, proxy_of(proxy.port, scheme, user, password), host, origin.port, d,
      { url = "http://origin/" })
    return ok, err, stream, d
  end

  local function tunnels(scheme, host, user, password)
    local ok, extra, stream, d = handshake(scheme, host, user, password)
    assert.is_true(ok, tostring(extra))
    assert.is_nil(extra)
    local ev = get(stream, d)
    assert.are.equal(200, ev[2])
    assert.are.equal("hello /via", ev.body)
  end

  it("SOCKS5 without authentication to an IPv4 address", function()
    proxy = lurl.testing.proxy()
    tunnels("socks5", "127.0.0.1")
    assert.are.equal(1, #proxy.seen)
    assert.are.equal("socks5", proxy.seen[1].kind)
    assert.are.equal("127.0.0.1:" .. origin.port, proxy.seen[1].target)
    assert.is_true(proxy.seen[1].auth_ok)
  end)

  it("SOCKS5 to ::1 as ATYP 4", function()
    local ok, v6 = pcall(support.server, { ["*"] = function() return "six" end }, { host = "::1" })
    if not ok then pending("no ::1 here: " .. tostring(v6)); return end
    proxy = lurl.testing.proxy()
    local d = deadline()
    local stream = connect(proxy.port, d)
    assert.is_true(socks.handshake(stream, proxy_of(proxy.port, "socks5"), "::1", v6.port, d))
    assert.are.equal("six", get(stream, d).body)
    assert.are.equal("[::1]:" .. v6.port, proxy.seen[1].target)
    v6:close()
  end)

  it("SOCKS5 with a username and password the proxy accepts (RFC 1929)", function()
    proxy = lurl.testing.proxy { auth = { user = "u", password = "p" } }
    tunnels("socks5", "127.0.0.1", "u", "p")
    assert.is_true(proxy.seen[1].auth_ok)
    assert.are.equal("u", proxy.seen[1].user)
  end)

  it("SOCKS5 credentials refused: authentication failed, the stream closed", function()
    proxy = lurl.testing.proxy { auth = { user = "u", password = "p" } }
    local ok, err, stream = handshake("socks5", "127.0.0.1", "u", "wrong")
    assert.is_nil(ok)
    assert.are.equal("ClientProxyConnectionError", err.kind)
    assert.is_truthy(err.message:find("authentication failed", 1, true), err.message)
    assert.is_nil(err.message:find("wrong", 1, true))
    assert.are.equal("socks5://127.0.0.1:" .. proxy.port, err.proxy)
    assert.are.equal("127.0.0.1", err.host)
    assert.are.equal(origin.port, err.port)
    assert.are.equal("http://origin/", err.url)
    assert.is_true(stream:closed())
    assert.is_false(proxy.seen[1].auth_ok)
  end)

  it("SOCKS5 without credentials to a proxy that wants them", function()
    proxy = lurl.testing.proxy { auth = { user = "u", password = "p" } }
    local ok, err = handshake("socks5", "127.0.0.1")
    assert.is_nil(ok)
    assert.are.equal("ClientProxyConnectionError", err.kind)
    assert.is_truthy(err.message:find("requires authentication", 1, true), err.message)
  end)

  it("socks5h sends the name for the proxy to resolve (ATYP 3)", function()
    proxy = lurl.testing.proxy()
    tunnels("socks5h", "localhost")
    assert.are.equal("localhost:" .. origin.port, proxy.seen[1].target)
  end)

  it("SOCKS4 to an IPv4 address, the user id from the URL", function()
    proxy = lurl.testing.proxy()
    tunnels("socks4", "127.0.0.1", "someone")
    assert.are.equal("socks4", proxy.seen[1].kind)
    assert.are.equal("127.0.0.1:" .. origin.port, proxy.seen[1].target)
    assert.are.equal("someone", proxy.seen[1].user)
  end)

  it("SOCKS4A sends the name after 0.0.0.1", function()
    proxy = lurl.testing.proxy()
    tunnels("socks4a", "localhost")
    assert.are.equal("localhost:" .. origin.port, proxy.seen[1].target)
  end)

  it("socks4 cannot carry a name", function()
    proxy = lurl.testing.proxy()
    local ok, err = handshake("socks4", "localhost")
    assert.is_nil(ok)
    assert.is_truthy(err.message:find("IPv4 addresses only", 1, true), err.message)
    assert.are.equal(0, #proxy.seen)
  end)

  it("a refused CONNECT names the reply code", function()
    proxy = lurl.testing.proxy { socks_reply = 5 }
    local ok, err, stream = handshake("socks5", "127.0.0.1")
    assert.is_nil(ok)
    assert.are.equal("ClientProxyConnectionError", err.kind)
    assert.are.equal(("SOCKS5 proxy 127.0.0.1:%d refused: connection refused (reply 5)"):format(proxy.port),
      err.message)
    assert.are.equal(5, err.socks_reply)
    assert.is_true(stream:closed())
    ok, err = handshake("socks4", "127.0.0.1")
    assert.is_nil(ok)
    assert.are.equal(91, err.socks_reply)
    assert.is_truthy(err.message:find("^SOCKS4 proxy 127.0.0.1:%d+ refused: request rejected or failed %(reply 91%)"),
      err.message)
  end)

  it("a target the proxy will not reach: reply 2", function()
    proxy = lurl.testing.proxy()
    local ok, err = handshake("socks5", "192.0.2.1")
    assert.is_nil(ok)
    assert.are.equal(2, err.socks_reply)
    assert.is_truthy(err.message:find("connection not allowed by ruleset", 1, true), err.message)
  end)

  it("credentials longer than 255 bytes fail before anything is sent", function()
    proxy = lurl.testing.proxy()
    local ok, err = handshake("socks5", "127.0.0.1", ("x"):rep(256), "p")
    assert.is_nil(ok)
    assert.is_true(err:is("ClientProxyConnectionError"))
    assert.is_truthy(err.message:find("at most 255 bytes", 1, true), err.message)
    assert.are.equal(0, #proxy.seen)
  end)

  it("a request raises for them at the script's line, naming the option", function()
    proxy = lurl.testing.proxy()
    local s = lurl.session { proxy = proxy:url("socks5") }
    support.raises("bad argument 'proxy_auth' to 'get' (SOCKS5 username and password are at most 255 bytes",
      s.get, s, "http://127.0.0.1:1/", { proxy_auth = lurl.basic_auth(("x"):rep(256), "p") })
    s:close()
  end)

  describe("against a scripted peer", function()
    local raw

    after_each(function() raw.close() end)

    local function handshake_raw(scheme, d)
      d = d or deadline()
      local stream = connect(raw.port, d)
      local ok, err = socks.handshake(stream, proxy_of(raw.port, scheme or "socks5"), "127.0.0.1", 80, d)
      return ok, err, stream
    end

    it("a proxy that closes in the middle of its reply", function()
      raw = support.raw_server(function(peer)
        peer.tcp:write("\5")
        peer.tcp:close()
      end)
      local ok, err, stream = handshake_raw()
      assert.is_nil(ok)
      assert.are.equal("ClientProxyConnectionError", err.kind)
      assert.is_truthy(err.message:find("closed the connection before its reply was complete", 1, true), err.message)
      assert.is_true(stream:closed())
    end)

    it("a peer that is no SOCKS proxy", function()
      raw = support.raw_server(function(peer) peer.tcp:write("HTTP/1.1 400 Bad Request\r\n\r\n") end)
      local ok, err = handshake_raw()
      assert.is_nil(ok)
      assert.are.equal("ClientProxyConnectionError", err.kind)
      assert.is_truthy(err.message:find("sent an invalid reply (version 72, expected 5)", 1, true), err.message)
    end)

    it("the bytes after the reply are handed back, not consumed", function()
      raw = support.raw_server(function(peer, data)
        if data == "\5\1\0" then
          peer.tcp:write("\5\0")
        else
          peer.tcp:write("\5\0\0\1\127\0\0\1\0\80" .. "EXTRA")
        end
      end)
      local ok, extra = handshake_raw()
      assert.is_true(ok)
      assert.are.equal("EXTRA", extra)
    end)

    it("a reply whose bound address is a name (ATYP 3) is read whole", function()
      raw = support.raw_server(function(peer, data)
        if data == "\5\1\0" then
          peer.tcp:write("\5\0")
        else
          peer.tcp:write("\5\0\0\3\9localhost\0\80")
        end
      end)
      local ok, extra = handshake_raw()
      assert.is_true(ok)
      assert.is_nil(extra)
    end)

    it("a proxy that never answers: the sock_connect limit", function()
      raw = support.raw_server()
      local elapsed, ok, err, stream = support.timed(handshake_raw, "socks5", deadline(0.2))
      assert.is_nil(ok)
      assert.are.equal("ConnectionTimeoutError", err.kind)
      assert.is_truthy(err.message:find("sock_connect=0.2s", 1, true), err.message)
      assert.are.equal("socks5://127.0.0.1:" .. raw.port, err.proxy)
      assert.is_true(elapsed >= 0.19 and elapsed < 1, tostring(elapsed))
      assert.is_true(stream:closed())
      assert.is_truthy(support.eventually(function() return raw.peers[1] and raw.peers[1].eof end))
    end)

    it("a cancelled handshake closes its stream", function()
      raw = support.raw_server()
      local stream
      support.cancel_after(0.1, function()
        local d = deadline()
        stream = connect(raw.port, d)
        socks.handshake(stream, proxy_of(raw.port, "socks5"), "127.0.0.1", 80, d)
      end)
      assert.is_true(stream:closed())
    end)
  end)

  it("leaks no descriptor", function()
    local before = core.open_fds()
    proxy = lurl.testing.proxy()
    for _ = 1, 3 do tunnels("socks5", "127.0.0.1") end
    proxy:close()
    proxy = nil
    assert.is_truthy(support.eventually(function() return core.open_fds() <= before end))
  end)
end)
