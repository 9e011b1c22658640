-- Session: verbs, request building, auto headers, errors returned or raised.
local cjson = require "cjson"
local lurl = require "lurl"
local core = require "lurl.core"
local session_mod = require "lurl.session"
local support = require "spec.support"

-- Echo the request back as JSON.
local function echo(req)
  local hdrs = {}
  for name, value in req.headers:items() do hdrs[#hdrs + 1] = { name, value } end
  return {
    headers = { ["Content-Type"] = "application/json" },
    body = cjson.encode { method = req.method, target = req.target, path = req.path, query = req.query,
      body = req.body, headers = hdrs },
  }
end

local function header(doc, name)
  for _, pair in ipairs(doc.headers) do
    if pair[1]:lower() == name:lower() then return pair[2] end
  end
end

local function free_port()
  local l = assert(core.tcp.listen("127.0.0.1", 0, function() end))
  local _, port = l:sockname()
  l:close()
  return port
end

describe("session", function()
  local server, s

  before_each(function()
    server = support.server {
      ["/echo"] = echo,
      ["/api/echo"] = echo,
      ["/status/404"] = function() return { status = 404, body = "nope" } end,
      ["/latin1"] = function()
        return { headers = { ["Content-Type"] = "application/json; charset=latin1" }, body = '{"name":"caf\233"}' }
      end,
      ["/status/500"] = function() return { status = 500, body = "boom" } end,
      ["/hangup"] = function() return { drop = true } end,
    }
    s = support.session(server)
  end)

  after_each(function()
    if s then s:close() end
    server:close()
  end)

  describe("verbs", function()
    for _, verb in ipairs { "get", "post", "put", "patch", "delete", "options" } do
      it(verb .. " sends " .. verb:upper(), function()
        local resp = assert(s[verb](s, "echo"))
        assert.are.equal(200, resp.status)
        assert.are.equal(verb:upper(), resp:json().method)
      end)
    end

    it("head sends HEAD and gets no body", function()
      local resp = assert(s:head("echo"))
      assert.are.equal(200, resp.status)
      assert.are.equal("", resp:read())
    end)

    it("request takes any method token, upper-cased", function()
      local resp = assert(s:request("purge", "echo"))
      assert.are.equal("PURGE", resp:json().method)
    end)

    it("request rejects a method that is not a token", function()
      assert.has_error(function() s:request("GET X", "echo") end)
    end)
  end)

  describe("params", function()
    it("from a table, sorted and form-encoded", function()
      local doc = assert(s:get("echo", { params = { b = "2", a = "x y" } })):json()
      assert.are.equal("a=x+y&b=2", doc.query)
    end)

    it("from a list of pairs, order kept, repeats allowed", function()
      local doc = assert(s:get("echo", { params = { { "z", 1 }, { "a", 2 }, { "z", 3 } } })):json()
      assert.are.equal("z=1&a=2&z=3", doc.query)
    end)

    it("from a string", function()
      local doc = assert(s:get("echo", { params = "q=1&r=two" })):json()
      assert.are.equal("q=1&r=two", doc.query)
    end)

    it("appended to an existing query", function()
      local doc = assert(s:get("echo?x=0", { params = { y = 1 } })):json()
      assert.are.equal("x=0&y=1", doc.query)
    end)

    it("of a wrong type raises", function()
      assert.has_error(function() s:get("echo", { params = 42 }) end)
    end)
  end)

  describe("headers", function()
    it("merges session and request headers, the request winning", function()
      s:close()
      s = support.session(server, { headers = { ["X-Session"] = "s", ["X-Both"] = "session" } })
      local doc = assert(s:get("echo", { headers = { ["X-Request"] = "r", ["X-Both"] = "request" } })):json()
      assert.are.equal("s", header(doc, "x-session"))
      assert.are.equal("r", header(doc, "x-request"))
      assert.are.equal("request", header(doc, "x-both"))
    end)

    it("with CR or LF in a value raise", function()
      assert.has_error(function() s:get("echo", { headers = { ["X-Bad"] = "a\r\nInjected: 1" } }) end)
      assert.has_error(function() s:get("echo", { headers = { ["X-Bad"] = "a\nb" } }) end)
    end)

    it("with CR or LF in a session header raise at session creation", function()
      assert.has_error(function() lurl.session { headers = { ["X-Bad"] = "a\rb" } } end)
    end)
  end)

  describe("body", function()
    it("data string is sent as is, as application/octet-stream (aiohttp's bytes)", function()
      local doc = assert(s:post("echo", { data = "raw bytes" })):json()
      assert.are.equal("raw bytes", doc.body)
      assert.are.equal("9", header(doc, "content-length"))
      assert.are.equal("application/octet-stream", header(doc, "content-type"))
    end)

    it("data table is form-encoded with its Content-Type", function()
      local doc = assert(s:post("echo", { data = { name = "a b", n = 1 } })):json()
      assert.are.equal("n=1&name=a+b", doc.body)
      assert.are.equal("application/x-www-form-urlencoded", header(doc, "content-type"))
    end)

    it("a Content-Type given by the caller is kept", function()
      local doc = assert(s:post("echo", { data = { a = 1 }, headers = { ["Content-Type"] = "text/x-mine" } })):json()
      assert.are.equal("text/x-mine", header(doc, "content-type"))
    end)

    it("json is encoded with Content-Type application/json", function()
      local doc = assert(s:put("echo", { json = { k = "v", list = { 1, 2 } } })):json()
      assert.are.same({ k = "v", list = { 1, 2 } }, cjson.decode(doc.body))
      assert.are.equal("application/json", header(doc, "content-type"))
    end)

    it("data and json together raise an argument error naming the method called", function()
      assert.has_error(function() s:post("echo", { data = "x", json = {} }) end,
        "bad argument #2 to 'post' ('data' and 'json' cannot be used together)")
      assert.has_error(function() s:request("PUT", "echo", { data = "x", json = {} }) end,
        "bad argument #2 to 'request' ('data' and 'json' cannot be used together)")
      assert.has_error(function() s:put("echo", { headers = { ["Content-Length"] = "x" }, data = function() end }) end,
        "bad argument 'headers' to 'put' (Content-Length must be a byte count, got x)")
      assert.has_error(function() s:get("echo", { timeout = "x" }) end,
        "bad argument 'timeout' to 'get' (number or lurl.timeout expected, got string)")
    end)

    it("POST without a body sends Content-Length: 0", function()
      local doc = assert(s:post("echo")):json()
      assert.are.equal("0", header(doc, "content-length"))
    end)
  end)

  describe("options", function()
    it("an unknown request option raises", function()
      local ok, err = pcall(s.get, s, "echo", { parms = {} })
      assert.is_false(ok)
      assert.matches("unknown option 'parms'", err, 1, true)
    end)

    it("an unknown session option raises", function()
      assert.has_error(function() lurl.session { base = "http://x/" } end)
    end)

    it("a wrongly typed option raises", function()
      assert.has_error(function() s:get("echo", { stream = "yes" }) end)
    end)
  end)

  describe("auto headers", function()
    it("adds Host, User-Agent, Accept and Accept-Encoding", function()
      local doc = assert(s:get("echo")):json()
      assert.are.equal("127.0.0.1:" .. server.port, header(doc, "host"))
      assert.are.equal("lurl/" .. lurl.version, header(doc, "user-agent"))
      assert.are.equal("*/*", header(doc, "accept"))
      assert.are.equal(session_mod.ACCEPT_ENCODING, header(doc, "accept-encoding"))
      assert.is_nil(header(doc, "content-length"))
    end)

    it("a caller's header replaces the automatic one", function()
      local doc = assert(s:get("echo", { headers = { ["user-agent"] = "mine/1" } })):json()
      assert.are.equal("mine/1", header(doc, "user-agent"))
    end)

    it("skip_auto_headers per request and per session", function()
      local doc = assert(s:get("echo", { skip_auto_headers = { "user-agent", "Accept" } })):json()
      assert.is_nil(header(doc, "user-agent"))
      assert.is_nil(header(doc, "accept"))
      assert.is_not_nil(header(doc, "host"))
      s:close()
      s = support.session(server, { skip_auto_headers = { "Accept-Encoding" } })
      doc = assert(s:get("echo")):json()
      assert.is_nil(header(doc, "accept-encoding"))
      assert.is_not_nil(header(doc, "user-agent"))
    end)
  end)

  describe("base_url", function()
    it("joins relative references", function()
      s:close()
      s = lurl.session { base_url = server:url("/api/") }
      assert.are.equal("/api/echo", assert(s:get("echo")):json().path)
      assert.are.equal("/echo", assert(s:get("/echo")):json().path)
      assert.are.equal("/echo", assert(s:get("../echo")):json().path)
    end)

    it("is not applied to absolute URLs", function()
      s:close()
      s = lurl.session { base_url = "http://127.0.0.1:1/nowhere/" }
      assert.are.equal("/echo", assert(s:get(server:url("/echo"))):json().path)
    end)

    it("must be a valid http URL", function()
      assert.has_error(function() lurl.session { base_url = "ftp://x/" } end)
    end)
  end)

  describe("aiohttp's response details", function()
    it("content_type is application/octet-stream without the header, and charset nil", function()
      local resp = assert(s:get("status/404"))
      assert.are.equal("application/octet-stream", resp.content_type)
      assert.is_nil(resp.charset)
    end)

    it("detach() lets the connector go unclosed; trust_env and cached_hosts can be read", function()
      local conn = lurl.connector { resolve = {} }
      local other = lurl.session { connector = conn, trust_env = false }
      assert.is_false(other.trust_env)
      assert(other:get(("http://localhost:%d/echo"):format(server.port)))
      local hosts = conn:cached_hosts()
      assert.are.equal("localhost", hosts[1].host)
      assert.are.equal(server.port, hosts[1].port)
      other:detach()
      assert.is_true(other.closed)
      assert.is_false(conn.closed)
      conn:close()
    end)

    it("json(encoding) reads JSON text in another charset", function()
      local resp = assert(s:get("latin1"))
      assert.are.same({ name = "caf\195\169" }, resp:json())
      assert.are.same({ name = "caf\195\169" }, assert(s:get("latin1")):json { encoding = "latin1" })
    end)

    it("real_url keeps the fragment, url and the wire do not", function()
      local resp = assert(s:get("echo#part"))
      assert.are.equal(server:url("/echo"), resp.url)
      assert.are.equal(server:url("/echo") .. "#part", resp.real_url)
      assert.are.equal(server:url("/echo") .. "#part", resp.request_info.real_url)
      assert.are.equal(server:url("/echo"), resp.request_info.url)
    end)
  end)

  describe("raise_for_status", function()
    it("is off by default", function()
      local resp = assert(s:get("status/404"))
      assert.are.equal(404, resp.status)
      assert.is_false(resp.ok)
    end)

    it("on the session returns nil, ClientResponseError", function()
      s:close()
      s = support.session(server, { raise_for_status = true })
      local resp, err = s:get("status/500")
      assert.is_nil(resp)
      assert.are.equal("ClientResponseError", err.kind)
      assert.are.equal(500, err.status)
      assert.is_true(err:is("ClientError"))
      -- aiohttp: the message is the reason phrase; lurl prints the status too
      assert.are.equal("Internal Server Error", err.message)
      assert.matches("ClientResponseError: 500, message='Internal Server Error'", tostring(err), 1, true)
      assert.is_truthy(s:get("echo"))
    end)

    it("per request overrides the session", function()
      local resp, err = s:get("status/404", { raise_for_status = true })
      assert.is_nil(resp)
      assert.are.equal(404, err.status)
      s:close()
      s = support.session(server, { raise_for_status = true })
      assert.are.equal(404, assert(s:get("status/404", { raise_for_status = false })).status)
    end)

    it("may be a function", function()
      local seen
      local resp, err = s:get("status/404", { raise_for_status = function(r)
        seen = r.status
        return nil, lurl.error("ClientResponseError", "custom", { status = r.status })
      end })
      assert.are.equal(404, seen)
      assert.is_nil(resp)
      assert.are.equal("custom", err.message)
    end)
  end)

  describe("bad URLs", function()
    it("give nil, InvalidURL", function()
      local resp, err = s:get("http://")
      assert.is_nil(resp)
      assert.is_true(err:is("InvalidURL"))
      resp, err = lurl.session():get("no-scheme/path")
      assert.is_nil(resp)
      assert.is_true(err:is("InvalidURL"))
      resp, err = s:get("http://127.0.0.1:99999/")
      assert.is_nil(resp)
      assert.is_true(err:is("InvalidURL"))
    end)

    it("give nil, NonHttpUrlClientError for other schemes", function()
      local resp, err = s:get("ftp://127.0.0.1/x")
      assert.is_nil(resp)
      assert.are.equal("NonHttpUrlClientError", err.kind)
      assert.is_true(err:is("ClientError")) -- aiohttp 3.12: not an InvalidURL
    end)

    it("a non-string URL raises", function()
      assert.has_error(function() s:get(42) end)
    end)
  end)

  describe("close", function()
    it("then a request raises", function()
      s:close()
      assert.has_error(function() s:get("echo") end, "session is closed")
      s:close() -- twice is fine
    end)
  end)

  describe("connection errors", function()
    it("connection refused gives ClientConnectorError ECONNREFUSED", function()
      local port = free_port()
      local resp, err = s:get(("http://127.0.0.1:%d/"):format(port))
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorError", err.kind)
      assert.are.equal("ECONNREFUSED", err.errno)
      assert.is_true(err:is("ClientOSError"))
      assert.are.equal(0, s.connector:stats().in_use)
    end)

    it("server closing without an answer gives ServerDisconnectedError", function()
      local resp, err = s:get("hangup")
      assert.is_nil(resp)
      assert.are.equal("ServerDisconnectedError", err.kind)
      assert.is_true(err:is("ClientConnectionError"))
      assert.are.equal("GET", err.method)
      assert.are.equal(0, s.connector:stats().in_use)
    end)

    -- Names that the resolver rejects before sending any query: an empty label
    -- and a label over 63 bytes (checked with strace: no UDP packet is sent).
    for _, host in ipairs { "a..invalid", ("x"):rep(64) .. ".invalid" } do
      it("DNS failure gives ClientConnectorDNSError (" .. host:sub(1, 12) .. ")", function()
        local resp, err = s:get("http://" .. host .. "/", { timeout = 10 })
        assert.is_nil(resp)
        assert.are.equal("ClientConnectorDNSError", err.kind)
        assert.is_true(err:is("ClientConnectorError"))
        assert.are.equal(host, err.host)
      end)
    end
  end)
end)
