-- lurl.testing.proxy, driven by raw core.tcp clients that write the bytes
-- a proxy client would: forwarding to a lurl.testing.server origin with
-- keep-alive, CONNECT tunnels, Basic proxy authentication, SOCKS5 by hand,
-- the misbehaviour options, the records, and the refusal of every target
-- that is not on loopback.
local lurl = require "lurl"
local core = require "lurl.core"
local support = require "spec.support"

-- A raw client of port: c.data is everything received, c.eof the end.
local function client(port)
  local c = { data = "", eof = false }
  local connected
  c.tcp = assert(core.tcp.connect("127.0.0.1", port, function(ok) connected = ok end))
  assert(support.eventually(function() return connected end), "cannot connect")
  c.tcp:read_start(function(data)
    if data then c.data = c.data .. data else c.eof = true end
  end)
  function c.send(s) assert(c.tcp:write(s) ~= nil) end
  -- wait until the bytes received contain text; returns them up to its end
  -- and keeps what came after
  function c.expect(text)
    assert(support.eventually(function() return c.data:find(text, 1, true) end),
      "never received " .. text .. ", got: " .. c.data)
    local _, e = c.data:find(text, 1, true)
    local got = c.data:sub(1, e)
    c.data = c.data:sub(e + 1)
    return got
  end
  function c.close() if not c.tcp:closed() then c.tcp:close() end end
  return c
end

describe("lurl.testing.proxy", function()
  local origin, proxy, clients

  local function connect(p)
    local c = client((p or proxy).port)
    clients[#clients + 1] = c
    return c
  end

  before_each(function()
    clients = {}
    origin = support.server({ ["*"] = function(req)
      return { body = "hello " .. req.path, headers = { ["X-Origin-Connection"] = tostring(req.connection) } }
    end })
  end)

  after_each(function()
    for _, c in ipairs(clients) do c.close() end
    if proxy then proxy:close(); proxy = nil end
    origin:close()
  end)

  local function get(path, extra)
    return ("GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n"):format(origin.port, path,
      origin.port, extra or "")
  end

  it("forwards an absolute-form GET and relays the response", function()
    proxy = lurl.testing.proxy()
    assert.are.equal("http://127.0.0.1:" .. proxy.port, proxy:url())
    local c = connect()
    c.send(get("/a?x=1", "Proxy-Connection: keep-alive\r\nX-Test: yes\r\n"))
    local resp = c.expect("hello /a")
    assert.is_truthy(resp:find("^HTTP/1.1 200 OK\r\n"))
    local req = origin.received[1]
    assert.are.equal("/a?x=1", req.target)
    assert.are.equal("yes", req.headers["X-Test"])
    assert.is_nil(req.headers["Proxy-Connection"])
    local seen = proxy.seen[1]
    assert.are.equal("forward", seen.kind)
    assert.are.equal(("http://127.0.0.1:%d/a?x=1"):format(origin.port), seen.target)
    assert.are.equal("keep-alive", seen.headers["proxy-connection"])
    assert.are.equal("yes", seen.headers["x-test"])
    assert.is_true(seen.auth_ok)
    assert.are.equal(1, seen.connection)
  end)

  it("keeps both connections alive and counts the requests on each", function()
    proxy = lurl.testing.proxy()
    local c = connect()
    c.send(get("/1"))
    c.expect("hello /1")
    c.send(get("/2"))
    c.expect("hello /2")
    c.send(get("/3", "Connection: close\r\n"))
    c.expect("hello /3")
    assert.is_truthy(support.eventually(function() return c.eof end))
    assert.are.same({ 1, 2, 3 }, { proxy.seen[1].connection_requests, proxy.seen[2].connection_requests,
      proxy.seen[3].connection_requests })
    assert.are.equal(1, proxy.connections)
    assert.are.equal(1, origin.connections)
    assert.are.equal(3, origin.received[3].connection_requests)
  end)

  it("relays a request body the client sent chunked, with its length", function()
    proxy = lurl.testing.proxy()
    origin:route("/echo", function(req) return { body = "got " .. req.body } end)
    local c = connect()
    c.send(("POST http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "3\r\nabc\r\n0\r\n\r\n"):format(origin.port))
    c.expect("got abc")
    assert.are.equal("3", origin.received[1].headers["Content-Length"])
  end)

  it("answers 407 without credentials and lets the client try again on the connection", function()
    proxy = lurl.testing.proxy { auth = { user = "u", password = "p" } }
    local c = connect()
    c.send(get("/"))
    local resp = c.expect("proxy authentication required")
    assert.is_truthy(resp:find("^HTTP/1.1 407 Proxy Authentication Required\r\n"))
    assert.is_truthy(resp:find('Proxy-Authenticate: Basic realm="lurl"', 1, true))
    c.send(get("/", "Proxy-Authorization: Basic " .. lurl.basic_auth("u", "wrong"):encode():sub(7) .. "\r\n"))
    c.expect("407")
    c.send(get("/", "Proxy-Authorization: " .. lurl.basic_auth("u", "p"):encode() .. "\r\n"))
    c.expect("hello /")
    assert.are.same({ false, false, true }, { proxy.seen[1].auth_ok, proxy.seen[2].auth_ok, proxy.seen[3].auth_ok })
    assert.are.equal(1, origin.requests)
    assert.is_nil(origin.received[1].headers["Proxy-Authorization"])
    assert.are.equal(1, proxy.connections)
  end)

  it("tunnels CONNECT both ways, bytes sent with the head included", function()
    local echo = support.raw_server(function(peer, data) peer.tcp:write(data:upper()) end)
    proxy = lurl.testing.proxy()
    local c = connect()
    c.send(("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\nearly"):format(echo.port, echo.port))
    c.expect("HTTP/1.1 200 Connection established\r\n\r\n")
    c.expect("EARLY")
    c.send("ping")
    c.expect("PING")
    local seen = proxy.seen[1]
    assert.are.equal("connect", seen.kind)
    assert.are.equal("127.0.0.1:" .. echo.port, seen.target)
    assert.are.equal("127.0.0.1:" .. echo.port, seen.headers.host)
    c.close()
    assert.is_truthy(support.eventually(function() return echo.peers[1].eof end), "the FIN is passed on")
    echo.close()
  end)

  it("answer_connect answers every CONNECT and keeps the connection", function()
    proxy = lurl.testing.proxy { answer_connect = { status = 403, body = "no" } }
    local c = connect()
    c.send("CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
    local resp = c.expect("\r\n\r\nno")
    assert.is_truthy(resp:find("^HTTP/1.1 403 "))
    c.send(get("/after"))
    c.expect("hello /after")
  end)

  it("never dials a target off loopback", function()
    proxy = lurl.testing.proxy()
    local c = connect()
    c.send("CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: 192.0.2.1:443\r\n\r\n")
    assert.is_truthy(c.expect("not a loopback target"):find("^HTTP/1.1 502 "))
    c = connect()
    c.send("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert.is_truthy(c.expect("not a loopback target"):find("^HTTP/1.1 502 "))
    c = connect()
    c.send("GET http://[::2]/ HTTP/1.1\r\nHost: [::2]\r\n\r\n")
    c.expect("502")
    c = connect()
    c.send("\5\1\0")
    c.expect("\5\0")
    c.send("\5\1\0\3\11example.com\0\80")
    assert.are.equal("\5\2", c.expect("\5\2"):sub(1, 2))
    assert.are.equal("example.com:80", proxy.seen[4].target)
  end)

  it("SOCKS5 by hand: ATYP 1, then the tunnel", function()
    proxy = lurl.testing.proxy()
    assert.are.equal("socks5h://127.0.0.1:" .. proxy.port, proxy:url("socks5h"))
    local c = connect()
    c.send("\5\1\0")
    c.expect("\5\0")
    c.send("\5\1\0\1\127\0\0\1" .. string.char(math.floor(origin.port / 256), origin.port % 256))
    assert.are.equal("\5\0", c.expect("\5\0"):sub(1, 2))
    c.send("GET /tunnel HTTP/1.1\r\nHost: o\r\n\r\n")
    c.expect("hello /tunnel")
    assert.are.equal("socks5", proxy.seen[1].kind)
  end)

  it("socks_reply refuses every SOCKS request; socks = false leaves SOCKS unanswered", function()
    proxy = lurl.testing.proxy { socks_reply = 4 }
    local c = connect()
    c.send("\5\1\0")
    c.expect("\5\0")
    c.send("\5\1\0\1\127\0\0\1\0\80")
    assert.are.equal("\5\4", c.expect("\5\4"):sub(1, 2))
    proxy:close()
    proxy = lurl.testing.proxy { socks = false }
    c = connect()
    c.send("\5\1\0")
    assert.is_truthy(support.eventually(function() return c.eof end))
    assert.are.equal("", c.data)
  end)

  it("speaks HTTPS to its clients with tls", function()
    local dir = support.pki()
    proxy = lurl.testing.proxy { tls = lurl.ssl_context { server = true, certfile = dir .. "server.pem",
      keyfile = dir .. "server.key" } }
    assert.are.equal("https://127.0.0.1:" .. proxy.port, proxy:url())
    local c = connect()
    local done
    assert(c.tcp:tls_start(lurl.ssl_context { cafile = dir .. "ca.pem" }, "127.0.0.1", nil,
      function(ok, err) done = ok or err end))
    assert.is_true(support.eventually(function() return done end))
    c.send(get("/secure"))
    c.expect("hello /secure")
    os.execute("rm -rf " .. dir)
  end)

  -- curl, when installed, as a client we did not write: run in the
  -- background (the proxy runs in this process) with its outcome polled
  local has_curl = os.execute("command -v curl >/dev/null 2>&1") == 0

  local function curl(args)
    local out = os.tmpname()
    os.execute(("curl -s --max-time 5 -o %s -w '%%{http_code}' %s > %s.code 2>/dev/null &"):format(out, args, out))
    assert(support.eventually(function()
      local f = io.open(out .. ".code")
      local code = f and f:read("*a")
      if f then f:close() end
      return code and #code == 3
    end, 6), "curl did not finish: " .. args)
    local code, body = support.read_file(out .. ".code"), support.read_file(out)
    os.remove(out)
    os.remove(out .. ".code")
    return tonumber(code), body
  end

  it("serves curl through each of its doors", function()
    if not has_curl then pending("no curl"); return end
    proxy = lurl.testing.proxy { auth = { user = "u", password = "p" } }
    local to = ("http://localhost:%d/curl"):format(origin.port)
    local cases = {
      { "-x " .. proxy:url() .. " -U u:p", "forward" },
      { "-p -x " .. proxy:url() .. " -U u:p", "connect" },
      { "-x socks5://u:p@127.0.0.1:" .. proxy.port, "socks5" },
      { "-x socks5h://u:p@127.0.0.1:" .. proxy.port, "socks5" },
      { "-x socks4://u@127.0.0.1:" .. proxy.port, "socks4" },
      { "-x socks4a://u@127.0.0.1:" .. proxy.port, "socks4" },
    }
    for i, case in ipairs(cases) do
      local code, body = curl(case[1] .. " " .. to)
      assert.are.equal(200, code, case[1])
      assert.are.equal("hello /curl", body, case[1])
      assert.are.equal(case[2], proxy.seen[#proxy.seen].kind, case[1])
      assert.is_true(proxy.seen[#proxy.seen].auth_ok, case[1])
      assert.are.equal(i, #proxy.seen, case[1])
    end
    assert.are.equal(407, (curl("-x " .. proxy:url() .. " " .. to)))
  end)

  it("checks its options", function()
    support.bad_options(lurl.testing.proxy, {
      { { auth = { user = "u" } }, "{ user = string, password = string } expected" },
      { { tls = true }, "userdata expected" },
      { { socks_reply = 0 }, "1 to 255 expected" },
      { { answer_connect = true }, "an answer (table, status or body) expected, got boolean" },
      { { sock = true }, "did you mean 'socks'?" },
    })
    proxy = lurl.testing.proxy()
    support.raises("socks5, socks5h, socks4 or socks4a expected", proxy.url, proxy, "ftp")
  end)
end)
