-- HTTP/1.0 requests (aiohttp's version=): the request line, persistence
-- (RFC 9112 section 9.3: a 1.0 connection closes after the response unless
-- both sides said keep-alive) and framing (no chunked transfer coding in
-- 1.0, RFC 9112 section 6.1: a body of unknown length is an argument error).
local lurl = require "lurl"
local support = require "spec.support"

-- A raw answer that keeps the connection open whatever the request said.
local function raw(version, connection)
  local extra = connection and ("Connection: " .. connection .. "\r\n") or ""
  return function() return { raw = "HTTP/" .. version .. " 200 OK\r\nContent-Length: 2\r\n" .. extra .. "\r\nok" } end
end

local function generator(parts)
  local i = 0
  return function() i = i + 1; return parts[i] end
end

describe("HTTP/1.0", function()
  local srv, s

  before_each(function()
    srv = support.server({
      ["/echo"] = function(req) return { body = req.body } end,
      ["/v11-open"] = raw("1.1"),
      ["/v10-open"] = raw("1.0"),
      ["/v10-ka"] = raw("1.0", "keep-alive"),
      ["/v11-ka"] = raw("1.1", "keep-alive"),
    })
    s = support.session(srv, { version = "1.0" })
  end)

  after_each(function()
    s:close()
    srv:close()
  end)

  local function ok(resp, err)
    assert(resp, tostring(err))
    return resp
  end

  describe("the request", function()
    it("says HTTP/1.0 on the request line, with Host and no Connection field", function()
      local raw_srv = support.raw_server(function(peer)
        if peer.data:find("\r\n\r\n", 1, true) then peer.tcp:write("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n") end
      end)
      local rs = lurl.session { version = "1.0" }
      local url = ("http://127.0.0.1:%d/p?q=1"):format(raw_srv.port)
      ok(rs:get(url))
      local data = raw_srv.peers[1].data
      assert.are.equal("GET /p?q=1 HTTP/1.0\r\n", data:match("^[^\n]*\n"))
      assert.truthy(data:find("\r\nHost: 127.0.0.1:" .. raw_srv.port .. "\r\n", 1, true))
      assert.falsy(data:lower():find("\r\nconnection:", 1, true))
      rs:close()
      raw_srv.close()
    end)

    it("is 1.0 for requests the session cached, and per request either way", function()
      ok(s:get("echo"))
      ok(s:get("echo")) -- the second comes from the cache of prepared requests
      ok(s:get("echo", { version = "1.1" }))
      local d = support.session(srv)
      ok(d:get("echo", { version = "1.0" }))
      ok(d:get("echo"))
      d:close()
      local versions = {}
      for i, req in ipairs(srv.received) do versions[i] = req.version end
      assert.are.same({ "1.0", "1.0", "1.1", "1.0", "1.1" }, versions)
    end)

    it("goes through middlewares with its version", function()
      local seen
      local mw = function(req, handler)
        seen = req.options.version
        return handler(req)
      end
      local d = support.session(srv, { middlewares = { mw } })
      ok(d:get("echo", { version = "1.0" }))
      d:close()
      assert.are.equal("1.0", seen)
      assert.are.equal("1.0", srv.received[1].version)
    end)

    it("refuses a version other than 1.0 and 1.1", function()
      support.raises("'version' to 'session' (\"1.0\" or \"1.1\" expected, got 2.0)", lurl.session,
        { version = "2.0" })
      support.raises("'version' to 'session' (string expected, got number)", lurl.session, { version = 1.0 })
      support.raises("'version' to 'get' (\"1.0\" or \"1.1\" expected, got HTTP/1.1)", s.get, s, "echo",
        { version = "HTTP/1.1" })
      local d = support.session(srv, { middlewares = { function(req, h) return h(req) end } })
      support.raises("'version' to 'get' (\"1.0\" or \"1.1\" expected, got 0.9)", d.get, d, "echo",
        { version = "0.9" })
      d:close()
    end)
  end)

  describe("persistence", function()
    it("a server that closes after a 1.0 answer: each request on a new connection", function()
      for _ = 1, 3 do assert.are.equal("ok", ok(s:get("echo", { data = "ok" })):text()) end
      assert.are.equal(3, srv.connections)
    end)

    it("an HTTP/1.1 answer without Connection: close is not reused after a 1.0 request", function()
      ok(s:get("v11-open"))
      ok(s:get("v11-open"))
      assert.are.equal(2, srv.connections)
    end)

    it("keep-alive asked and answered: the connection is reused", function()
      local ka = { headers = { Connection = "keep-alive" } }
      ok(s:get("v10-ka", ka))
      ok(s:get("v10-ka", ka))
      assert.are.equal(1, srv.connections)
      assert.are.equal("keep-alive", srv.received[2].headers["connection"])
      -- an HTTP/1.1 answer keeps it too (RFC 9112 section 9.3)
      ok(s:get("v11-open", ka))
      ok(s:get("v11-open", ka))
      assert.are.equal(1, srv.connections)
    end)

    it("keep-alive asked but an HTTP/1.0 answer without it: not reused", function()
      local ka = { headers = { Connection = "keep-alive" } }
      ok(s:get("v10-open", ka))
      ok(s:get("v10-open", ka))
      assert.are.equal(2, srv.connections)
    end)

    it("an HTTP/1.1 request that says Connection: close is not reused either", function()
      local d = support.session(srv)
      ok(d:get("v11-ka", { headers = { Connection = "close" } }))
      ok(d:get("v11-ka"))
      ok(d:get("v11-ka"))
      d:close()
      assert.are.equal(2, srv.connections)
    end)
  end)

  describe("bodies", function()
    local path

    before_each(function()
      path = os.tmpname()
      support.write_file(path, "from a file")
    end)

    after_each(function() os.remove(path) end)

    it("a string, a file and a compressed string go with a Content-Length", function()
      ok(s:post("echo", { data = "hello" }))
      ok(s:post("echo", { data = lurl.file(path) }))
      ok(s:post("echo", { data = "hello", compress = "gzip" }))
      local r = srv.received
      assert.are.equal("5", r[1].headers["content-length"])
      assert.are.equal(tostring(#"from a file"), r[2].headers["content-length"])
      assert.are.equal("from a file", r[2].body)
      assert.are.equal("gzip", r[3].headers["content-encoding"])
      for i = 1, 3 do
        assert.are.equal("1.0", r[i].version)
        assert.is_nil(r[i].headers["transfer-encoding"])
      end
    end)

    it("a body of unknown length or chunked is an argument error", function()
      local unknown = {
        { data = generator { "a", "b" } },
        { data = "x", chunked = true },
        { data = "x", headers = { ["Transfer-Encoding"] = "chunked" } },
        { data = lurl.file(path), compress = "deflate" },
      }
      for _, opts in ipairs(unknown) do
        support.raises_at("'version' to 'post' (HTTP/1.0 cannot frame a body of unknown length", function()
          local resp = s:post("echo", opts)
          return resp
        end)
      end
      assert.are.equal(0, srv.requests)
      -- the same bodies go chunked over HTTP/1.1
      ok(s:post("echo", { data = generator { "a", "b" }, version = "1.1" }))
      assert.are.equal("chunked", srv.received[1].headers["transfer-encoding"])
      assert.are.equal("ab", srv.received[1].body)
    end)
  end)
end)
