-- lurl.testing.server{ http2 = true }: h2c with prior knowledge, h2 by ALPN
-- over TLS, HTTP/1.1 to clients that ask for it, and the HTTP/2
-- misbehaviours (rst_stream, goaway, stall), as seen through a session.
local lurl = require "lurl"
local support = require "spec.support"

local routes = {
  ["/hello"] = function(req) return { body = "hello " .. req.version, headers = { ["X-Path"] = req.path } } end,
  ["/echo"] = function(req) return req.method .. " " .. req.query .. " " .. req.body end,
  ["/slow"] = function() return { delay = 0.3, body = "slow" } end,
  ["/refused"] = function() return { rst_stream = 7 } end,
  ["/internal"] = function() return { rst_stream = 2 } end,
  ["/goaway"] = function() return { body = "last", goaway = true } end,
  ["/stall"] = function() return { body = "never sent", stall = true } end,
  ["/trailers"] = function() return { body = "abc", trailers = { ["X-Sum"] = "1" } } end,
  ["/cut"] = function() return { body = ("x"):rep(100), close_after = 10 } end,
  ["/chunked"] = function() return { body = "abc", chunked = true } end,
  ["/raw"] = function() return { raw = "HTTP/1.1 200 OK\r\n\r\n" } end,
  ["/big"] = function() return ("b"):rep(1048576) end,
}

describe("testing server over HTTP/2", function()
  local server, s

  before_each(function()
    server = support.server(routes, { http2 = true })
    s = support.session(server, { http2 = "prior_knowledge", timeout = 5 })
  end)

  after_each(function()
    s:close()
    server:close()
  end)

  it("speaks h2c to a client with prior knowledge, with the request as routes see it", function()
    local resp = assert(s:get("hello"))
    assert.are.equal("2", resp.version)
    assert.are.equal("hello 2", resp:text())
    assert.are.equal("/hello", resp.headers["x-path"])
    assert.are.equal("POST a=1 body", assert(s:post("echo", { params = { a = 1 }, data = "body" })):text())
    assert.are.equal("127.0.0.1:" .. server.port, server.received[1].headers.host)
  end)

  it("and HTTP/1.1 to a client without", function()
    local h1 = support.session(server, { http2 = false })
    assert.are.equal("hello 1.1", assert(h1:get("hello")):text())
    h1:close()
  end)

  it("runs each stream's route in its own task: a slow one holds no other", function()
    local slow = lurl.spawn(function() return assert(s:get("slow")):text() end)
    local t0 = lurl.now()
    for _ = 1, 5 do assert.are.equal("hello 2", assert(s:get("hello")):text()) end
    assert.is_true(lurl.now() - t0 < 0.25, "the fast requests waited for the slow one")
    assert.are.equal("slow", slow:join())
    assert.are.equal(1, server.connections)
  end)

  it("rst_stream = 7 refuses a stream, which the session sends again on another connection, 4 times at most",
    function()
      local resp, err = s:get("refused")
      assert.is_nil(resp)
      assert.are.equal("ServerDisconnectedError", err.kind)
      assert.matches("REFUSED_STREAM", err.message)
      assert.are.equal(5, server:count("/refused"))
      -- never the connection that refused it last: the two take turns
      assert.are.equal(2, server.connections)
    end)

  it("rst_stream with another code fails only its stream", function()
    local _, err = s:get("internal")
    assert.are.equal("ServerDisconnectedError", err.kind)
    assert.matches("INTERNAL_ERROR", err.message)
    assert.are.equal(1, server:count("/internal"))
    assert.are.equal("hello 2", assert(s:get("hello")):text())
    assert.are.equal(1, server.connections)
  end)

  it("goaway answers, then the next request goes on a new connection", function()
    assert.are.equal("last", assert(s:get("goaway")):text())
    assert.are.equal("hello 2", assert(s:get("hello")):text())
    assert.are.equal(2, server.connections)
  end)

  it("stall sends the head and never the body: sock_read fires on that stream alone", function()
    local resp = assert(s:get("stall", { stream = true, timeout = { sock_read = 0.2 } }))
    assert.are.equal(200, resp.status)
    local body, err = resp:read()
    assert.is_nil(body)
    assert.are.equal("SocketTimeoutError", err.kind)
    assert.are.equal("hello 2", assert(s:get("hello")):text())
    assert.are.equal(1, server.connections)
  end)

  it("trailers end the body", function()
    assert.are.equal("abc", assert(s:get("trailers")):text())
  end)

  it("close_after sends the head and n bytes, then closes: the body fails", function()
    local resp = assert(s:get("cut", { stream = true }))
    local body, err = resp:read()
    assert.is_nil(body)
    assert.are.equal("ClientPayloadError", err.kind)
  end)

  it("a megabyte goes through the stream's flow control", function()
    assert.are.equal(1048576, #assert(s:get("big")):read())
  end)

  it("chunked sends the body without a length; an HTTP/1.1-only answer is a 500 that says so", function()
    local resp = assert(s:get("chunked"))
    assert.are.equal("abc", resp:text())
    assert.is_nil(resp.headers["content-length"])
    resp = assert(s:get("raw"))
    assert.are.equal(500, resp.status)
    assert.matches("'raw' is HTTP/1.1 only", resp:text(), 1, true)
  end)
end)

describe("testing server over HTTP/2 with TLS", function()
  local P

  setup(function() P = support.pki() end)
  teardown(function() os.execute("rm -rf " .. P) end)

  it("speaks h2 when ALPN chooses it and HTTP/1.1 when the client offers only that", function()
    local server = support.server(routes, { http2 = true, ssl = lurl.ssl_context {
      server = true, certfile = P .. "server.pem", keyfile = P .. "server.key", alpn = { "h2", "http/1.1" } } })
    -- a session as made without options: its connections offer h2 whatever
    -- the context, unless the context's alpn option says otherwise
    local function body(session_opts, alpn, request_opts)
      session_opts.connector = lurl.connector { ssl = lurl.ssl_context { cafile = P .. "ca.pem", alpn = alpn } }
      local s = lurl.session(session_opts)
      local text = assert(s:get(server:url("/hello"), request_opts)):text()
      s:close()
      return text
    end
    assert.are.equal("hello 2", body({}))
    assert.are.equal("h2", server.received[1].tls.alpn)
    assert.are.equal("hello 1.1", body({ http2 = false }))
    assert.are.equal("hello 1.1", body({}, { "http/1.1" }))
    assert.are.equal("hello 2", body({ http2 = "required" }, { "h2", "http/1.1" }))
    assert.are.equal("hello 1.0", body({}, nil, { version = "1.0" }))
    server:close()
  end)

  it("opens connections at once to an origin whose server chose HTTP/1.1", function()
    local server = support.server(routes, { ssl = lurl.ssl_context {
      server = true, certfile = P .. "server.pem", keyfile = P .. "server.key" } })
    local s = lurl.session { connector = lurl.connector { force_close = true,
      ssl = lurl.ssl_context { cafile = P .. "ca.pem" } } }
    -- the first connection offers h2 and learns that the origin has none;
    -- until then requests wait for it, as they would to share an h2 one
    assert.are.equal("hello 1.1", assert(s:get(server:url("/hello"))):text())
    local tasks = {}
    for i = 1, 8 do tasks[i] = lurl.spawn(function() return assert(s:get(server:url("/hello"))):text() end) end
    lurl.sleep(0)
    assert.are.equal(8, s.connector:stats().connecting)
    for _, t in ipairs(tasks) do assert.are.equal("hello 1.1", t:join()) end
    s:close()
    server:close()
  end)
end)
