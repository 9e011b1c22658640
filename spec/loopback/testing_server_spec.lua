-- lurl.testing.server: each misbehaviour helper does what it says, as seen
-- through the client.
local lurl = require "lurl"
local support = require "spec.support"

local BODY = ("0123456789"):rep(10) -- 100 bytes

local routes = {
  ["/delay"] = function() return { delay = 0.5, body = "waited" } end,
  ["/drip"] = function() return { body = "abcdef", drip = { size = 2, interval = 0.2 } } end,
  ["/close-after"] = function() return { body = BODY, close_after = 10 } end,
  ["/reset-after"] = function() return { body = BODY, reset_after = 10 } end,
  ["/content-length"] = function() return { body = "abc", content_length = 50, close = true } end,
  ["/chunked"] = function() return { body = BODY, chunked = true, trailers = { ["X-T"] = "1" } } end,
  ["/bad-chunking"] = function() return { body = BODY, chunked = true, bad_chunking = true } end,
  ["/never"] = function() return { never = true } end,
  ["/raw"] = function() return { raw = "HTTP/1.1 299 Custom\r\nX-Raw: yes\r\nContent-Length: 3\r\n\r\nraw" } end,
  ["/close"] = function() return { body = "bye", close = true } end,
  ["/string"] = function() return "just a string" end,
  ["/number"] = function() return 404 end,
  ["/nil"] = function() end,
  ["/fails"] = function() error("route bug") end,
  ["/query"] = function(req) return req.method .. " " .. req.path .. " " .. req.query .. " " .. req.body end,
}

describe("testing server", function()
  local server, s

  before_each(function()
    server = support.server(routes)
    s = support.session(server, { timeout = 10 })
  end)

  after_each(function()
    if s then s:close() end
    server:close()
  end)

  it("delay waits before the head", function()
    local dt, resp = support.timed(s.get, s, "delay")
    assert.are.equal("waited", assert(resp):read())
    assert.is_true(dt >= 0.49 and dt < 2.5, "took " .. dt)
  end)

  it("drip sends the body in pieces with pauses", function()
    local resp = assert(s:get("drip", { stream = true }))
    local pieces, t0 = {}, lurl.now()
    for chunk in resp:iter_any() do pieces[#pieces + 1] = chunk end
    local dt = lurl.now() - t0
    assert.are.same({ "ab", "cd", "ef" }, pieces)
    assert.is_true(dt >= 0.39 and dt < 2.5, "took " .. dt)
  end)

  it("close_after sends the head and n body bytes, then FIN", function()
    local resp = assert(s:get("close-after", { stream = true }))
    assert.are.equal("100", resp.headers["content-length"])
    local got = {}
    local ok, err = pcall(function() for c in resp:iter_any() do got[#got + 1] = c end end)
    assert.is_false(ok)
    assert.are.equal("ClientPayloadError", err.kind)
    assert.are.equal(BODY:sub(1, 10), table.concat(got))
  end)

  it("reset_after sends n body bytes, then RST", function()
    local resp = assert(s:get("reset-after", { stream = true }))
    local got = {}
    local ok, err = pcall(function() for c in resp:iter_any() do got[#got + 1] = c end end)
    assert.is_false(ok)
    assert.are.equal("ClientPayloadError", err.kind)
    -- Linux recv() reports a RST that arrives after the last data as a plain
    -- EOF (SOCK_DONE is checked before sk_err), so either cause is accepted;
    -- strace shows SO_LINGER {1, 0} before close(), i.e. a real RST.
    assert.is_true(err.cause == "ECONNRESET" or err.cause == "HPE_INVALID_EOF_STATE", tostring(err.cause))
    assert.are.equal(BODY:sub(1, 10), table.concat(got))
  end)

  it("content_length announces a length whatever the body", function()
    local resp = assert(s:get("content-length", { stream = true }))
    assert.are.equal("50", resp.headers["content-length"])
    local body, err = resp:read()
    assert.is_nil(body)
    assert.are.equal("ClientPayloadError", err.kind)
  end)

  it("chunked uses chunked transfer coding", function()
    local resp = assert(s:get("chunked"))
    assert.are.equal("chunked", resp.headers["transfer-encoding"])
    assert.is_nil(resp.headers["content-length"])
    assert.are.equal(BODY, resp:read())
  end)

  it("bad_chunking breaks the chunked coding", function()
    local resp, err = s:get("bad-chunking")
    assert.is_nil(resp)
    assert.are.equal("ClientPayloadError", err.kind)
  end)

  it("never reads the request and never answers", function()
    local dt, resp, err = support.timed(s.get, s, "never", { timeout = 0.5 })
    assert.is_nil(resp)
    assert.are.equal("TimeoutError", err.kind)
    assert.is_true(dt >= 0.49)
    assert.are.equal(1, server.requests)
  end)

  it("raw sends the bytes as they are", function()
    local resp = assert(s:get("raw"))
    assert.are.equal(299, resp.status)
    assert.are.equal("Custom", resp.reason)
    assert.are.equal("yes", resp.headers["x-raw"])
    assert.are.equal("raw", resp:read())
  end)

  it("close sends Connection: close and closes", function()
    local resp = assert(s:get("close"))
    assert.are.equal("close", resp.headers["connection"]:lower())
    assert.are.equal("bye", resp:read())
    assert.are.equal(0, s.connector:stats().idle)
    assert.is_truthy(s:get("string"))
    assert.are.equal(2, server.connections)
  end)

  it("keeps connections alive otherwise", function()
    for _ = 1, 3 do assert.is_truthy(s:get("string")) end
    assert.are.equal(1, server.connections)
    assert.are.equal(3, server.requests)
  end)

  it("routes may return a string, a status or nothing", function()
    assert.are.equal("just a string", assert(s:get("string")):read())
    assert.are.equal(404, assert(s:get("number")).status)
    assert.are.equal(204, assert(s:get("nil")).status)
    assert.are.equal(404, assert(s:get("no/such/route")).status)
  end)

  it("a failing route answers 500", function()
    local resp = assert(s:get("fails"))
    assert.are.equal(500, resp.status)
    assert.matches("route bug", resp:read(), 1, true)
  end)

  it("passes method, path, query and body to the route", function()
    assert.are.equal("POST /query a=1 payload", assert(s:post("query?a=1", { data = "payload" })):read())
  end)

  it("url() and close()", function()
    assert.are.equal(("http://127.0.0.1:%d/x"):format(server.port), server:url("/x"))
    server:close()
    local resp, err = s:get(server:url("/string"))
    assert.is_nil(resp)
    assert.is_true(err:is("ClientConnectionError"))
  end)

  describe("connection features", function()
    before_each(function()
      server:route("/who", function(req) return ("%d/%d"):format(req.connection, req.connection_requests) end)
      server:route("/drop", function() return { drop = true } end)
    end)

    it("req.connection numbers connections, req.connection_requests requests on each", function()
      assert.are.equal("1/1", assert(s:get("who")):read())
      assert.are.equal("1/2", assert(s:get("who")):read())
      assert.are.equal("1/3", assert(s:get("who")):read())
      local other = support.session(server, { timeout = 10 })
      assert.are.equal("2/1", assert(other:get("who")):read())
      other:close()
      assert.are.equal(2, server.connections)
    end)

    it("drop closes the connection without answering", function()
      local resp, err = s:get("drop")
      assert.is_nil(resp)
      assert.are.equal("ServerDisconnectedError", err.kind)
      assert.are.equal(1, server.requests)
      assert.is_truthy(support.eventually(function() return server:open_connections() == 0 end))
    end)

    it("open_connections counts connections open now", function()
      assert.are.equal(0, server:open_connections())
      assert.is_truthy(s:get("who"))
      assert.are.equal(1, server:open_connections())
      s:close()
      s = nil
      assert.is_truthy(support.eventually(function() return server:open_connections() == 0 end))
    end)

    it("close_idle closes connections between requests and leaves busy ones", function()
      local g = { opened = false }
      server:route("/busy", function() while not g.opened do lurl.sleep(0.005) end return "done" end)
      assert.is_truthy(s:get("who"))
      local other = support.session(server, { timeout = 10 })
      local busy = lurl.spawn(function() return other:get("busy") end)
      assert.is_truthy(support.eventually(function()
        return server:open_connections() == 2 and server.requests == 2
      end))
      assert.are.equal(1, server:close_idle())
      assert.are.equal(1, server:open_connections())
      g.opened = true
      assert.are.equal("done", assert(busy:join(5)):read())
      other:close()
      -- the client notices the close of its idle connection and drops it
      assert.is_truthy(support.eventually(function() return s.connector:stats().idle == 0 end))
      assert.are.equal("3/1", assert(s:get("who")):read())
    end)

    it("route() adds a route to a running server", function()
      server:route("/late", function() return "late" end)
      assert.are.equal("late", assert(s:get("late")):read())
    end)

    it("serves on a Unix socket with path =", function()
      local path = support.socket_path()
      local us = support.server({ ["/u"] = function(req) return "unix " .. req.method end }, { path = path })
      local ok, e = pcall(function()
        assert.are.equal("http://localhost/u", us:url("/u"))
        assert.is_nil(us.port)
        assert.is_truthy(os.rename(path, path), "no socket file at " .. path)
        local us_s = lurl.session { connector = lurl.unix_connector { path = path } }
        assert.are.equal("unix GET", assert(us_s:get(us:url("/u"))):read())
        assert.are.equal("unix POST", assert(us_s:post(us:url("/u"))):read())
        assert.are.equal(1, us.connections)
        us_s:close()
      end)
      us:close()
      if not ok then error(e, 0) end
      assert.is_falsy(os.rename(path, path))
    end)
  end)
end)

describe("testing server scripting", function()
  local testing = require "lurl.testing"
  local server, s

  local function serve(handlers, opts)
    server = support.server(handlers, opts)
    s = support.session(server, { timeout = 10 })
  end

  after_each(function()
    if s then s:close() end
    if server then server:close() end
    s, server = nil, nil
  end)

  describe("lurl.testing.sequence", function()
    it("answers each in turn, then the last for good", function()
      local seq = testing.sequence(503, 503, "ok")
      serve { ["/seq"] = seq }
      local got = {}
      for _ = 1, 5 do
        local resp = assert(s:get("seq"))
        got[#got + 1] = resp.status .. ":" .. resp:read()
      end
      assert.are.same({ "503:", "503:", "200:ok", "200:ok", "200:ok" }, got)
      assert.are.equal(5, seq.count)
      assert.are.equal(5, server:count("/seq"))
    end)

    it("takes the shorthands and answer tables", function()
      serve { ["/seq"] = testing.sequence({ status = 429, retry_after = 2 }, { json = { ok = true } }) }
      local resp = assert(s:get("seq"))
      assert.are.equal(429, resp.status)
      assert.are.equal("2", resp.headers["retry-after"])
      resp = assert(s:get("seq"))
      assert.are.equal(200, resp.status)
      assert.are.same({ ok = true }, resp:json())
    end)

    it("prints how many it gave; needs an answer", function()
      local seq = testing.sequence(500, "x")
      assert.are.equal("lurl.testing.sequence (2 answers, 0 given)", tostring(seq))
      seq()
      assert.are.equal("lurl.testing.sequence (2 answers, 1 given)", tostring(seq))
      local ok, err = pcall(testing.sequence)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'sequence' (at least one answer expected)", err, 1, true)
    end)
  end)

  describe("shorthands", function()
    it("json = value: the encoded body as application/json, with the route's status", function()
      serve {
        ["/j"] = function() return { status = 201, json = { a = { 1, 2 } } } end,
        ["/k"] = function() return { json = "s", headers = { ["Content-Type"] = "text/x-json" } } end,
      }
      local resp = assert(s:get("j"))
      assert.are.equal(201, resp.status)
      assert.are.equal("application/json", resp.headers["content-type"])
      assert.are.same({ a = { 1, 2 } }, resp:json())
      resp = assert(s:get("k"))
      assert.are.equal("text/x-json", resp.headers["content-type"])
      assert.are.equal('"s"', resp:read())
    end)

    it("retry_after = n: a Retry-After header next to the others", function()
      serve { ["/ra"] = function() return { status = 503, retry_after = 12, headers = { ["X-A"] = "1" } } end }
      local resp = assert(s:get("ra"))
      assert.are.equal(503, resp.status)
      assert.are.equal("12", resp.headers["retry-after"])
      assert.are.equal("1", resp.headers["x-a"])
    end)
  end)

  describe("errors", function()
    for name, kind in pairs { reset = "ClientConnectionResetError", disconnect = "ServerDisconnectedError" } do
      it(("error = %q: the client sees %s"):format(name, kind), function()
        serve { ["/" .. name] = function() return { error = name } end }
        local resp, err = s:get(name)
        assert.is_nil(resp)
        assert.are.equal(kind, err.kind)
        assert.are.equal(1, server:count("/" .. name))
      end)
    end

    it("error = \"hang\": no answer, the client's timeout fires", function()
      serve { ["/hang"] = function() return { error = "hang" } end }
      local dt, resp, err = support.timed(s.get, s, "hang", { timeout = 0.3 })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert.is_true(dt >= 0.29 and dt < 2.5, "took " .. dt)
      assert.are.equal(1, server:count("/hang"))
    end)

    it("errors in a sequence; a reset on a reused connection is replayed by the session (retry_stale)", function()
      serve { ["/r"] = testing.sequence(200, { error = "reset" }, "after") }
      assert.are.equal(200, assert(s:get("r")).status)
      -- the GET failed on a kept-alive connection before any byte: the
      -- session sends it once more on a new one, and gets the next answer
      assert.are.equal("after", assert(s:get("r")):read())
      assert.are.equal(3, server:count("/r"))
      assert.are.equal(2, server.connections)
    end)

    it("an unknown error name answers 500 and says so on stderr", function()
      serve { ["/bogus"] = function() return { error = "explode" } end }
      local lines, stderr = {}, io.stderr
      io.stderr = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end }
      local ok, resp = pcall(s.get, s, "bogus")
      io.stderr = stderr
      assert.is_true(ok, tostring(resp))
      resp = assert(resp)
      assert.are.equal(500, resp.status)
      assert.matches("unknown error 'explode' (reset, disconnect or hang)", resp:read(), 1, true)
      local said = table.concat(lines)
      assert.matches("lurl.testing.server: route /bogus failed", said, 1, true)
      assert.matches("unknown error 'explode'", said, 1, true)
    end)
  end)

  describe("what came", function()
    it("count(path) per path and count() in all", function()
      serve { ["/a"] = function() return "a" end, ["*"] = function() return "other" end }
      for _ = 1, 3 do s:get("a") end
      s:get("b")
      s:get("a?x=1")
      assert.are.equal(4, server:count("/a"))
      assert.are.equal(1, server:count("/b"))
      assert.are.equal(0, server:count("/never"))
      assert.are.equal(5, server:count())
      assert.are.equal(5, server.requests)
    end)

    it("received keeps each request's method, path, headers and body", function()
      serve { ["/p"] = function() return 201 end }
      s:post("p?q=1", { data = "first", headers = { ["Idempotency-Key"] = "key-1" } })
      s:post("p", { json = { n = 2 }, headers = { ["Idempotency-Key"] = "key-2" } })
      assert.are.equal(2, #server.received)
      local r1, r2 = server.received[1], server.received[2]
      assert.are.equal("POST", r1.method)
      assert.are.equal("/p", r1.path)
      assert.are.equal("q=1", r1.query)
      assert.are.equal("first", r1.body)
      assert.are.equal("key-1", r1.headers["idempotency-key"])
      assert.are.equal('{"n":2}', r2.body)
      assert.are.equal("key-2", r2.headers:get("Idempotency-Key"))
      assert.is_true(r1.at <= r2.at)
    end)

    it("at is sched.now() when the request was read: virtual under lurl.testing.clock", function()
      serve { ["/t"] = function() return "t" end }
      local clock = testing.clock { autojump = 0.5 }
      local ok, err = pcall(function()
        lurl.sleep(5)
        assert(s:get("t")):read()
        lurl.sleep(2.5)
        assert(s:get("t")):read()
        assert.are.same({ 5, 7.5 }, { server.received[1].at, server.received[2].at })
      end)
      clock:close()
      if not ok then error(err, 0) end
    end)

    it("the log is bounded: keep = 3 with 10 requests keeps 3 to 6, the last one included", function()
      serve({ ["/n"] = function() return 204 end }, { keep = 3 })
      for i = 1, 10 do s:post("n", { data = tostring(i) }) end
      local n = #server.received
      assert.is_true(n >= 3 and n <= 6, "kept " .. n)
      assert.are.equal("10", server.received[n].body)
      for i = 2, n do
        assert.are.equal(tonumber(server.received[i - 1].body) + 1, tonumber(server.received[i].body))
      end
      assert.are.equal(10, server:count("/n"))
    end)

    it("keeps the last 1000 by default", function()
      serve { ["/n"] = function() return 204 end }
      assert.are.equal(1000, server.keep)
      for i = 1, 20 do s:get("n?i=" .. i) end
      assert.are.equal(20, #server.received)
    end)
  end)
end)
