-- lurl.testing.mock: a transport without sockets under a real session
-- (pool, parser, redirects, cookies, decompression, timeouts), with exact
-- timelines under the virtual clock.
local lurl = require "lurl"
local testing = require "lurl.testing"
local support = require "spec.support"

describe("lurl.testing.mock", function()
  local env = support.policy_env()
  local clock, mock, s

  before_each(function()
    clock, mock = env.setup()
    s = env.session()
  end)

  after_each(env.teardown)

  -- Replace s by a session over mock:connector(opts).
  local function connector_session(opts)
    s = env.keep(lurl.session { connector = mock:connector(opts) })
  end

  local function body(resp, err)
    assert(resp, err)
    return resp:read()
  end

  -- A GET of http://api.test/x (with opts) answered by answer: fails with an
  -- error of kind, at virtual time `at` when given, and leaves no connection
  -- open; returns the error and the route.
  local function get_fails(answer, kind, at, opts)
    local r = mock:on("GET", "http://api.test/x", answer)
    local err = support.failed(kind, at, s:get("http://api.test/x", opts))
    assert.are.equal(0, mock:open_streams())
    return err, r
  end

  describe("routes", function()
    it("match by method; \"*\" matches any; the method is case-insensitive", function()
      mock:on("GET", "http://api.test/a", "get a")
      mock:on("post", "http://api.test/a", "post a")
      mock:on("*", "http://api.test/b", function(call) return "any " .. call.method end)
      assert.are.equal("get a", body(s:get("http://api.test/a")))
      assert.are.equal("post a", body(s:post("http://api.test/a")))
      assert.are.equal("any GET", body(s:get("http://api.test/b")))
      assert.are.equal("any DELETE", body(s:delete("http://api.test/b")))
      assert.are.equal("any PATCH", body(s:patch("http://api.test/b")))
      support.failed("ClientConnectorError", nil, s:put("http://api.test/a"))
    end)

    it("a URL without a query matches any query; one with a query matches only it", function()
      mock:on("GET", "http://api.test/q?a=1", "exact")
      mock:on("GET", "http://api.test/q", "any")
      assert.are.equal("exact", body(s:get("http://api.test/q?a=1")))
      assert.are.equal("exact", body(s:get("http://api.test/q", { params = { a = 1 } })))
      assert.are.equal("any", body(s:get("http://api.test/q?a=2")))
      assert.are.equal("any", body(s:get("http://api.test/q")))
      assert.are.equal("any", body(s:get("http://api.test/q#fragment")))
    end)

    it("the first route that matches answers", function()
      mock:on("GET", { pattern = "^http://api%.test/" }, "first")
      mock:on("GET", "http://api.test/x", "second")
      assert.are.equal("first", body(s:get("http://api.test/x")))
    end)

    it("{ pattern = } matches a Lua pattern against the whole URL", function()
      mock:on("GET", { pattern = "^http://api%.test/items/%d+$" }, "item")
      assert.are.equal("item", body(s:get("http://api.test/items/12")))
      support.failed("ClientConnectorError", nil, s:get("http://api.test/items/x"))
    end)

    it("a function is asked with the full URL", function()
      local seen = {}
      mock:on("GET", function(u)
        seen[#seen + 1] = u
        return u:find("/fn/", 1, true) ~= nil
      end, "fn")
      assert.are.equal("fn", body(s:get("http://api.test/fn/x?y=1")))
      assert.are.equal("http://api.test/fn/x?y=1", seen[#seen])
    end)

    it("URLs are compared as the session sends them (host case, default port)", function()
      mock:on("GET", "http://API.test:80/Path", "canonical")
      assert.are.equal("canonical", body(s:get("http://api.test/Path")))
    end)

    it("a URL without a path is the same as one with \"/\"", function()
      mock:on("GET", "http://api.test", "root")
      assert.are.equal("root", body(s:get("http://api.test/")))
      assert.are.equal("root", body(s:get("http://api.test")))
    end)

    it("no route: ClientConnectorError naming the method and the URL, nothing recorded", function()
      mock:on("GET", "http://api.test/a", "a")
      local err = support.failed("ClientConnectorError", nil, s:post("http://api.test/none?x=1"))
      assert.is_true(err:is("ClientConnectionError"))
      assert.matches("no mock route for POST http://api.test/none?x=1", err.message, 1, true)
      assert.are.equal(0, #mock.calls)
    end)

    it("no route on a kept-alive connection fails the same way", function()
      mock:on("GET", "http://api.test/a", "a")
      assert.are.equal("a", body(s:get("http://api.test/a")))
      local err = support.failed("ClientConnectorError", nil, s:get("http://api.test/b"))
      assert.matches("no mock route for GET http://api.test/b", err.message, 1, true)
    end)

    it("tostring of the mock and of a route", function()
      local r = mock:on("GET", "http://api.test/a", "a")
      local p = mock:on("*", { pattern = "x" }, "x")
      s:get("http://api.test/a")
      assert.are.equal("lurl.testing.mock (2 routes, 1 calls)", tostring(mock))
      assert.are.equal("lurl.testing.mock.route (GET http://api.test/a, 1 calls)", tostring(r))
      assert.are.equal("lurl.testing.mock.route (* ~x, 0 calls)", tostring(p))
    end)
  end)

  describe("answers", function()
    it("a number is a status, a string a 200 with that body", function()
      mock:on("GET", "http://api.test/status", 418)
      mock:on("GET", "http://api.test/text", "hello")
      local resp = assert(s:get("http://api.test/status"))
      assert.are.equal(418, resp.status)
      assert.are.equal("", resp:read())
      resp = assert(s:get("http://api.test/text"))
      assert.are.equal(200, resp.status)
      assert.are.equal("hello", resp:read())
      assert.are.equal("5", resp.headers["content-length"])
    end)

    it("a table: status, reason, headers, body", function()
      mock:on("GET", "http://api.test/t", { status = 201, reason = "Made", headers = { ["X-A"] = "1" }, body = "b" })
      local resp = assert(s:get("http://api.test/t"))
      assert.are.same({ 201, "Made", "1", "b" }, { resp.status, resp.reason, resp.headers["x-a"], resp:read() })
    end)

    it("json = value is the body, as application/json unless a Content-Type is given", function()
      mock:on("GET", "http://api.test/j", { json = { items = { 1, 2 } } })
      mock:on("GET", "http://api.test/k", { json = { 1 }, headers = { ["content-type"] = "application/x+json" } })
      local resp = assert(s:get("http://api.test/j"))
      assert.are.equal("application/json", resp.headers["content-type"])
      assert.are.same({ items = { 1, 2 } }, require("cjson").decode(resp:read()))
      resp = assert(s:get("http://api.test/k"))
      assert.are.equal("application/x+json", resp.headers["content-type"])
      assert.are.equal("[1]", resp:read())
    end)

    it("retry_after = n is a Retry-After header, next to the other headers", function()
      mock:on("GET", "http://api.test/ra", { status = 503, retry_after = 7, headers = { ["X-B"] = "2" } })
      local resp = assert(s:get("http://api.test/ra"))
      assert.are.equal(503, resp.status)
      assert.are.equal("7", resp.headers["retry-after"])
      assert.are.equal("2", resp.headers["x-b"])
    end)

    it("delay = s answers after s virtual seconds", function()
      mock:on("GET", "http://api.test/d", { delay = 2.5, body = "late" })
      assert.are.equal("late", body(s:get("http://api.test/d")))
      assert.are.equal(2.5, clock:now())
      -- the call was recorded when it came, not when it was answered
      assert.are.equal(0, mock.calls[1].at)
    end)

    it("close = true sends Connection: close and ends the connection", function()
      mock:on("GET", "http://api.test/c", { body = "bye", close = true })
      local resp = assert(s:get("http://api.test/c"))
      assert.are.equal("close", resp.headers["connection"])
      assert.are.equal("bye", resp:read())
      assert.are.equal(0, mock:open_streams())
      assert.is_truthy(s:get("http://api.test/c"))
      assert.are.equal(2, mock.calls[2].connection)
    end)

    it("chunked = true uses the chunked coding", function()
      mock:on("GET", "http://api.test/ch", { body = ("x"):rep(100), chunked = true })
      local resp = assert(s:get("http://api.test/ch"))
      assert.are.equal("chunked", resp.headers["transfer-encoding"])
      assert.is_nil(resp.headers["content-length"])
      assert.are.equal(("x"):rep(100), resp:read())
    end)

    it("drip sends the body in pieces, at virtual intervals", function()
      mock:on("GET", "http://api.test/drip", { body = "abcdef", drip = { size = 2, interval = 0.5 } })
      local resp = assert(s:get("http://api.test/drip", { stream = true }))
      local pieces = {}
      for chunk in resp:iter_any() do pieces[#pieces + 1] = chunk .. "@" .. lurl.now() end
      assert.are.same({ "ab@0", "cd@0.5", "ef@1" }, pieces)
    end)

    it("a function gets the call and returns any answer", function()
      mock:on("POST", "http://api.test/f", function(call)
        return { status = 202, json = { method = call.method, body = call.body, path = call.path, query = call.query } }
      end)
      local resp = assert(s:post("http://api.test/f?z=9", { data = "payload" }))
      assert.are.equal(202, resp.status)
      assert.are.same({ method = "POST", body = "payload", path = "/f", query = "z=9" }, resp:json())
    end)

    it("a function may answer a shorthand or an error", function()
      local n = 0
      mock:on("GET", "http://api.test/f", function()
        n = n + 1
        if n == 1 then return 503 end
        if n == 2 then return { error = "reset" } end
        return "third"
      end)
      connector_session { retry_stale = false }
      assert.are.equal(503, assert(s:get("http://api.test/f")).status)
      support.failed("ClientConnectionResetError", nil, s:get("http://api.test/f"))
      assert.are.equal("third", body(s:get("http://api.test/f")))
    end)

    it("answers come in sequence and the last one repeats", function()
      local r = mock:on("GET", "http://api.test/seq", 503, 503, { status = 200, body = "ok" })
      local got = {}
      for _ = 1, 5 do got[#got + 1] = assert(s:get("http://api.test/seq")).status end
      assert.are.same({ 503, 503, 200, 200, 200 }, got)
      assert.are.equal(5, #r.calls)
    end)

    it("route:reply adds answers after those given", function()
      local r = mock:on("GET", "http://api.test/seq", 500)
      assert.are.equal(r, r:reply(501, "done"))
      local got = {}
      for _ = 1, 4 do got[#got + 1] = assert(s:get("http://api.test/seq")).status end
      assert.are.same({ 500, 501, 200, 200 }, got)
    end)

    it("reset_after and close_after cut the body: ClientPayloadError", function()
      local b = ("0123456789"):rep(10)
      mock:on("GET", "http://api.test/ra", { body = b, reset_after = 10 })
      mock:on("GET", "http://api.test/ca", { body = b, close_after = 10 })
      local err = support.failed("ClientPayloadError", nil, s:get("http://api.test/ra"))
      assert.are.equal("ECONNRESET", err.cause)
      support.failed("ClientPayloadError", nil, s:get("http://api.test/ca"))
      assert.are.equal(0, mock:open_streams())
    end)

    it("a lurl.testing.sequence works as an answer (it is callable)", function()
      mock:on("GET", "http://api.test/seq", testing.sequence(503, "ok"))
      assert.are.equal(503, assert(s:get("http://api.test/seq")).status)
      assert.are.equal("ok", body(s:get("http://api.test/seq")))
    end)

    it("HEAD gets the headers of a GET without the body", function()
      mock:on("*", "http://api.test/h", "twelve bytes")
      local resp = assert(s:head("http://api.test/h"))
      assert.are.equal("12", resp.headers["content-length"])
      assert.are.equal("", resp:read())
    end)
  end)

  describe("connect errors", function()
    it("refused: ClientConnectorError (ECONNREFUSED), recorded with its error", function()
      local err, r = get_fails({ error = "refused" }, "ClientConnectorError")
      assert.is_true(err:is("ClientConnectionError"))
      assert.are.equal("ECONNREFUSED", err.errno)
      assert.are.equal("api.test", err.host)
      assert.are.equal(80, err.port)
      assert.are.equal(1, #r.calls)
      assert.are.equal("refused", r.calls[1].error)
      assert.are.equal("GET", r.calls[1].method)
      assert.are.equal("http://api.test/x", r.calls[1].url)
      assert.is_nil(r.calls[1].connection)
    end)

    it("dns: ClientConnectorDNSError", function()
      local err = get_fails({ error = "dns" }, "ClientConnectorDNSError")
      assert.is_true(err:is("ClientConnectorError"))
      assert.matches("api.test", err.message, 1, true)
    end)

    -- { name, answer, error kind, when it fails, request options }
    for _, case in ipairs {
      { "connect_timeout: ConnectionTimeoutError at exactly sock_connect", { error = "connect_timeout" },
        "ConnectionTimeoutError", 2, { timeout = lurl.timeout { total = 10, sock_connect = 2 } } },
      { "connect_timeout: the total timeout when it is shorter", { error = "connect_timeout" },
        "TimeoutError", 4, { timeout = 4 } },
      { "delay = s makes a connect error come after s seconds", { error = "refused", delay = 1.5 },
        "ClientConnectorError", 1.5 },
    } do
      it(case[1], function() get_fails(case[2], case[3], case[4], case[5]) end)
    end

    it("a connect error in a sequence, then an answer", function()
      local r = mock:on("GET", "http://api.test/x", { error = "refused" }, { error = "dns" }, "up")
      assert.are.equal("ClientConnectorError", select(2, s:get("http://api.test/x")).kind)
      assert.are.equal("ClientConnectorDNSError", select(2, s:get("http://api.test/x")).kind)
      assert.are.equal("up", body(s:get("http://api.test/x")))
      assert.are.equal(3, #r.calls)
      assert.are.equal(1, r.calls[3].connection)
    end)

    it("a connect error next ends an idle connection to that route: the request connects anew", function()
      local r = mock:on("GET", "http://api.test/x", "first", { error = "refused" }, "back")
      assert.are.equal("first", body(s:get("http://api.test/x")))
      support.failed("ClientConnectorError", nil, s:get("http://api.test/x"))
      assert.are.equal("back", body(s:get("http://api.test/x")))
      assert.are.same({ 1, nil, 2 }, { r.calls[1].connection, r.calls[2].connection, r.calls[3].connection })
    end)
  end)

  describe("errors after the request", function()
    it("reset: ClientConnectionResetError", function()
      local err, r = get_fails({ error = "reset" }, "ClientConnectionResetError")
      -- sent on a connection, then reset
      assert.are.equal(1, #r.calls)
      assert.are.equal(1, r.calls[1].connection)
      assert.is_true(err:is("ClientConnectionError"))
    end)

    -- { name, answer, error kind, when it fails, request options }
    for _, case in ipairs {
      { "disconnect: ServerDisconnectedError", { error = "disconnect" }, "ServerDisconnectedError" },
      { "hang: no answer, the request's timeout fires at its exact time", { error = "hang" },
        "TimeoutError", 3, { timeout = 3 } },
      { "delay = s before a reset", { error = "reset", delay = 2 }, "ClientConnectionResetError", 2 },
    } do
      it(case[1], function() get_fails(case[2], case[3], case[4], case[5]) end)
    end

    it("on a reused connection, a reset surfaces when the connector does not retry stale connections", function()
      connector_session { retry_stale = false }
      local r = mock:on("GET", "http://api.test/x", "ok", { error = "reset" }, "ok", { error = "disconnect" }, "ok")
      assert.are.equal("ok", body(s:get("http://api.test/x")))
      assert.are.equal("ClientConnectionResetError", select(2, s:get("http://api.test/x")).kind)
      assert.are.equal("ok", body(s:get("http://api.test/x")))
      assert.are.equal("ServerDisconnectedError", select(2, s:get("http://api.test/x")).kind)
      assert.are.equal("ok", body(s:get("http://api.test/x")))
      assert.are.equal(5, #r.calls)
    end)

    -- What the session does by design (a GET that fails on a reused
    -- connection before any byte is sent again on a new one): with the
    -- default connector a scripted reset after a kept-alive answer is
    -- replayed and uses up the next answer. Specs of retry policies need
    -- retry_stale = false, or a fresh connection, to see it.
    it("with the default connector, a reset on a reused connection is replayed by the session", function()
      local r = mock:on("GET", "http://api.test/x", "ok", { error = "reset" }, "after")
      assert.are.equal("ok", body(s:get("http://api.test/x")))
      assert.are.equal("after", body(s:get("http://api.test/x")))
      assert.are.equal(3, #r.calls)
      assert.are.same({ 1, 1, 2 }, { r.calls[1].connection, r.calls[2].connection, r.calls[3].connection })
    end)
  end)

  describe("calls", function()
    it("record method, url, path, query, headers, body, time and connection", function()
      local r = mock:on("POST", "http://api.test/orders", 201)
      lurl.sleep(2.5)
      s:post("http://api.test/orders?src=spec", { data = "order-1", headers = { ["Idempotency-Key"] = "k-1" } })
      assert.are.equal(1, #mock.calls)
      local call = mock.calls[1]
      assert.are.equal(call, r.calls[1])
      assert.are.equal(r, call.route)
      assert.are.equal("POST", call.method)
      assert.are.equal("http://api.test/orders?src=spec", call.url)
      assert.are.equal("/orders", call.path)
      assert.are.equal("src=spec", call.query)
      assert.are.equal("order-1", call.body)
      assert.are.equal("k-1", call.headers["idempotency-key"])
      assert.are.equal("k-1", call.headers:get("Idempotency-Key"))
      assert.are.equal("7", call.headers:get("Content-Length"))
      assert.are.equal("api.test", call.headers:get("Host"))
      assert.are.equal(2.5, call.at)
      assert.are.equal(1, call.connection)
      assert.is_nil(call.error)
    end)

    it("mock.calls holds every route's calls in order; route.calls its own", function()
      local a = mock:on("GET", "http://api.test/a", "a")
      local b = mock:on("GET", "http://b.test/b", "b")
      s:get("http://api.test/a")
      lurl.sleep(1)
      s:get("http://b.test/b")
      s:get("http://api.test/a")
      assert.are.equal(3, #mock.calls)
      assert.are.same({ "http://api.test/a", "http://b.test/b", "http://api.test/a" },
        { mock.calls[1].url, mock.calls[2].url, mock.calls[3].url })
      assert.are.same({ 0, 1, 1 }, { mock.calls[1].at, mock.calls[2].at, mock.calls[3].at })
      assert.are.equal(2, #a.calls)
      assert.are.equal(1, #b.calls)
      -- one connection per origin
      assert.are.same({ 1, 2, 1 }, { mock.calls[1].connection, mock.calls[2].connection, mock.calls[3].connection })
    end)

    it("session headers and the Idempotency-Key reach the call", function()
      s = env.session(nil, { headers = { ["Idempotency-Key"] = "session-key", ["X-Client"] = "spec" } })
      mock:on("POST", "http://api.test/p", 200)
      s:post("http://api.test/p", { json = { a = 1 } })
      local h = mock.calls[1].headers
      assert.are.equal("session-key", h["idempotency-key"])
      assert.are.equal("spec", h["x-client"])
      assert.are.equal("application/json", h["content-type"])
      assert.are.equal('{"a":1}', mock.calls[1].body)
    end)
  end)

  describe("through the session", function()
    it("keeps connections alive: two requests, one connection", function()
      mock:on("GET", "http://api.test/k", "k")
      s:get("http://api.test/k")
      s:get("http://api.test/k")
      assert.are.equal(1, mock.calls[1].connection)
      assert.are.equal(1, mock.calls[2].connection)
      assert.are.equal(1, mock:open_streams())
      local stats = s.connector:stats()
      assert.are.equal(1, stats.idle)
      assert.are.equal(0, stats.in_use)
      assert.are.equal(1, stats.total)
    end)

    it("a connector with force_close opens a connection per request", function()
      connector_session { force_close = true }
      mock:on("GET", "http://api.test/k", "k")
      s:get("http://api.test/k")
      s:get("http://api.test/k")
      assert.are.same({ 1, 2 }, { mock.calls[1].connection, mock.calls[2].connection })
      assert.are.equal("close", mock.calls[1].headers["connection"])
      assert.are.equal(0, mock:open_streams())
    end)

    it("https URLs work without TLS", function()
      mock:on("GET", "https://secure.test/x", "secret")
      local resp = assert(s:get("https://secure.test/x"))
      assert.are.equal("secret", resp:read())
      assert.are.equal("https://secure.test/x", resp.url)
      assert.is_nil(resp.tls)
      assert.is_truthy(s.connector:stats().per_host["https://secure.test:443"])
    end)

    it("follows a redirect to another mock route", function()
      mock:on("GET", "http://api.test/old", { status = 302, headers = { Location = "/new" } })
      mock:on("GET", "http://api.test/new", "moved")
      local resp = assert(s:get("http://api.test/old"))
      assert.are.equal("moved", resp:read())
      assert.are.equal("http://api.test/new", resp.url)
      assert.are.equal(1, #resp.history)
      assert.are.equal(302, resp.history[1].status)
      assert.are.equal(2, #mock.calls)
    end)

    it("a 303 after a POST turns into a GET without body", function()
      mock:on("POST", "http://api.test/form", { status = 303, headers = { Location = "http://other.test/done" } })
      mock:on("GET", "http://other.test/done", "done")
      assert.are.equal("done", body(s:post("http://api.test/form", { data = "x" })))
      assert.are.equal("GET", mock.calls[2].method)
      assert.are.equal("", mock.calls[2].body)
    end)

    it("keeps cookies: a Set-Cookie, then a Cookie", function()
      mock:on("GET", "http://api.test/login", { headers = { ["Set-Cookie"] = "sid=42; Path=/" }, body = "in" })
      mock:on("GET", "http://api.test/me", function(call) return call.headers["cookie"] or "no cookie" end)
      assert.are.equal("no cookie", body(s:get("http://api.test/me")))
      assert.are.equal("in", body(s:get("http://api.test/login")))
      assert.are.equal("sid=42", body(s:get("http://api.test/me")))
    end)

    it("decodes a gzip body", function()
      mock:on("GET", "http://api.test/gz",
        { headers = { ["Content-Encoding"] = "gzip" }, body = support.gzip("zipped text") })
      assert.are.equal("zipped text", body(s:get("http://api.test/gz")))
      assert.matches("gzip", mock.calls[1].headers["accept-encoding"], 1, true)
    end)

    it("a session option (base_url) goes through mock:session", function()
      s = env.session(nil, { base_url = "http://api.test/v1/" })
      mock:on("GET", "http://api.test/v1/items", "items")
      assert.are.equal("items", body(s:get("items")))
    end)

    it("lurl.session{ connector = mock:connector() } works as mock:session()", function()
      connector_session()
      mock:on("GET", "http://api.test/x", "x")
      assert.are.equal("x", body(s:get("http://api.test/x")))
    end)

    it("takes chunked and streamed request bodies", function()
      mock:on("POST", "http://api.test/up", function(call) return call.body end)
      assert.are.equal("abc", body(s:post("http://api.test/up", { data = "abc", chunked = true })))
      local parts = { "x", "y", "z" }
      local function gen() return table.remove(parts, 1) end
      assert.are.equal("xyz", body(s:post("http://api.test/up", { data = gen })))
    end)
  end)

  describe("open streams", function()
    it("counts open connections: idle ones stay, closing the session ends them", function()
      mock:on("GET", "http://a.test/", "a")
      mock:on("GET", "http://b.test/", "b")
      assert.are.equal(0, mock:open_streams())
      s:get("http://a.test/")
      s:get("http://b.test/")
      assert.are.equal(2, mock:open_streams())
      s:close()
      assert.are.equal(0, mock:open_streams())
    end)

    it("a cancelled request leaves no connection behind", function()
      mock:on("GET", "http://api.test/hang", { error = "hang" })
      local task = lurl.spawn(function() return s:get("http://api.test/hang") end)
      lurl.sleep(1)
      assert.are.equal(1, mock:open_streams())
      assert.are.equal(1, s.connector:stats().in_use)
      task:cancel()
      support.failed("CancelledError", nil, task:join())
      assert.are.equal(0, mock:open_streams())
      assert.are.equal(0, s.connector:stats().total)
    end)

    it("a request that timed out leaves no connection behind", function()
      mock:on("GET", "http://api.test/slow", { delay = 5, body = "x" })
      support.failed("TimeoutError", nil, s:get("http://api.test/slow", { timeout = 2 }))
      assert.are.equal(0, mock:open_streams())
      assert.are.equal(0, s.connector:stats().total)
    end)
  end)

  describe("bad arguments", function()
    local raises = support.raises

    it("on() checks the method, the URL and the answers", function()
      raises("bad argument #1 to 'on' (method name or \"*\" expected)", mock.on, mock, 1, "http://a.test/", 200)
      raises("bad argument #2 to 'on' (URL string, { pattern = } or function expected, got number)",
        mock.on, mock, "GET", 5, 200)
      raises("bad argument #2 to 'on'", mock.on, mock, "GET", { pattern = 5 }, 200)
      raises("bad argument #3 to 'on' (at least one answer expected)", mock.on, mock, "GET", "http://a.test/")
      raises("bad argument #3 to 'on' (a status, a body, a table or a function expected, got boolean)",
        mock.on, mock, "GET", "http://a.test/", true)
      raises("bad argument #4 to 'on' (unknown mock error 'boom' "
        .. "(refused, dns, connect_timeout, reset, disconnect or hang))", mock.on, mock, "GET", "http://a.test/", 200,
        { error = "boom" })
      raises("bad argument #1 to 'reply' (a status, a body, a table or a function expected, got boolean)",
        mock.on(mock, "GET", "http://a.test/", 200).reply, mock.routes[1], false)
      assert.are.equal(1, #mock.routes)
    end)

    it("on() refuses a URL that is not absolute", function()
      raises("bad argument #2 to 'on'", mock.on, mock, "GET", "not a url", 200)
    end)

    it("an error about an answer points at the caller's line", function()
      support.raises_at("bad argument #3 to 'on'", function() mock:on("GET", "http://a.test/", true) end)
    end)

    it("a function answer that returns a bad answer raises in the request", function()
      mock:on("GET", "http://a.test/", function() return true end)
      raises("mock answer function returned a bad answer", s.get, s, "http://a.test/")
    end)
  end)
end)
