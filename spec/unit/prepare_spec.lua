-- lurl.prepare on its own: what a request becomes before anything is sent
-- (a session is made only for its options; no socket is opened).
local lurl = require "lurl"
local core = require "lurl.core"
local prepare = require "lurl.prepare"
local support = require "spec.support"

local function unzip(s)
  local dec = core.codec.decoder("gzip")
  return dec:feed(s) .. dec:finish()
end

describe("lurl.prepare", function()
  local s

  before_each(function() s = lurl.session { base_url = "http://api.test/v1/" } end)
  after_each(function() s:close() end)

  local function prep(method, raw, opts)
    return assert(prepare.prepare(s, method, raw, opts or prepare.NO_OPTIONS))
  end

  describe("build_url", function()
    it("joins a relative URL onto base_url and leaves an absolute one alone", function()
      assert.are.equal("http://api.test/v1/items", lurl.url.tostring(prepare.build_url(s, "items")))
      assert.are.equal("http://other.test/x", lurl.url.tostring(prepare.build_url(s, "http://other.test/x")))
    end)

    it("appends params to the query and drops the fragment", function()
      local u = prepare.build_url(s, "items?a=1#frag", { b = "x y" })
      assert.are.equal("http://api.test/v1/items?a=1&b=x+y", lurl.url.tostring(u))
    end)

    it("returns nil and an error for a scheme that is not http(s)", function()
      local u, err = prepare.build_url(s, "ftp://api.test/x")
      assert.is_nil(u)
      assert.is_truthy(err)
    end)

    it("raises for a URL that is not a string and for params of a wrong type", function()
      support.raises("URL string expected", prepare.build_url, s, 42)
      support.raises("table or string expected", prepare.build_url, s, "items", 42)
    end)
  end)

  describe("bodies and their framing", function()
    it("a string: Content-Length, application/octet-stream (aiohttp's bytes)", function()
      local p = prep("POST", "x", { data = "hello" })
      assert.are.equal("hello", p.body)
      assert.are.equal("5", p.headers:get("Content-Length"))
      assert.are.equal("application/octet-stream", p.headers:get("Content-Type"))
      assert.is_false(p.chunked)
    end)

    it("a raw body's type: octet-stream for any method, a file's from its name, none skipped or empty", function()
      assert.are.equal("application/octet-stream", prep("GET", "x", { data = "" }).headers:get("Content-Type"))
      assert.are.equal("application/octet-stream",
        prep("PUT", "x", { data = function() return nil end }).headers:get("Content-Type"))
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir " .. dir) == 0)
      support.write_file(dir .. "/notes.txt", "x")
      support.write_file(dir .. "/blob", "x")
      assert.are.equal("text/plain",
        prep("POST", "x", { data = lurl.file(dir .. "/notes.txt") }).headers:get("Content-Type"))
      assert.are.equal("application/octet-stream",
        prep("POST", "x", { data = lurl.file(dir .. "/blob") }).headers:get("Content-Type"))
      os.execute("rm -rf " .. dir)
      assert.are.equal("text/x", prep("POST", "x",
        { data = "a", headers = { ["content-type"] = "text/x" } }).headers:get("Content-Type"))
      local skipped = prep("POST", "x", { data = "a", skip_auto_headers = { "Content-Type" } })
      assert.is_nil(skipped.headers:get("Content-Type"))
      -- no content, no type (RFC 9110 section 8.3; aiohttp 3.8 sends octet-stream here)
      assert.is_nil(prep("POST", "x").headers:get("Content-Type"))
    end)

    it("a table: form-encoded with its Content-Type", function()
      local p = prep("POST", "x", { data = { a = "1" } })
      assert.are.equal("a=1", p.body)
      assert.are.equal("application/x-www-form-urlencoded", p.headers:get("Content-Type"))
    end)

    it("json: serialized with application/json; the script's Content-Type wins", function()
      local p = prep("POST", "x", { json = { 1 } })
      assert.are.equal("[1]", p.body)
      assert.are.equal("application/json", p.headers:get("Content-Type"))
      p = prep("POST", "x", { json = { 1 }, headers = { ["Content-Type"] = "text/x" } })
      assert.are.equal("text/x", p.headers:get("Content-Type"))
    end)

    it("a generator: streamed, chunked, not replayable", function()
      local p = prep("POST", "x", { data = function() return nil end })
      assert.are.equal("table", type(p.body))
      assert.is_true(p.chunked)
      assert.is_false(p.body.replayable)
      assert.are.equal("chunked", p.headers:get("Transfer-Encoding"))
      assert.is_nil(p.headers:get("Content-Length"))
    end)

    it("a generator with the script's Content-Length is sent with that length", function()
      local p = prep("POST", "x", { data = function() return nil end, headers = { ["Content-Length"] = "3" } })
      assert.is_false(p.chunked)
      assert.are.equal(3, p.declared)
      assert.is_nil(p.headers:get("Transfer-Encoding"))
    end)

    it("chunked = true makes a string body a stream of one part", function()
      local p = prep("POST", "x", { data = "abc", chunked = true })
      assert.is_true(p.chunked)
      assert.are.same({ "abc" }, p.body.parts)
      assert.is_nil(p.headers:get("Content-Length"))
    end)

    it("a Transfer-Encoding: chunked header the script set is taken as chunked = true", function()
      local p = prep("POST", "x", { data = "abc", headers = { ["Transfer-Encoding"] = "chunked" } })
      assert.is_true(p.chunked)
      assert.are.equal("chunked", p.headers:get("Transfer-Encoding"))
    end)

    it("POST, PUT and PATCH without a body send Content-Length: 0; GET none", function()
      for _, m in ipairs { "POST", "PUT", "PATCH" } do
        assert.are.equal("0", prep(m, "x").headers:get("Content-Length"), m)
      end
      assert.is_nil(prep("GET", "x").headers:get("Content-Length"))
    end)

    it("expect100 sets Expect only when there is a body", function()
      local p = prep("POST", "x", { data = "a", expect100 = true })
      assert.is_true(p.expect100)
      assert.are.equal("100-continue", p.headers:get("Expect"))
      p = prep("POST", "x", { expect100 = true })
      assert.is_false(p.expect100)
      assert.is_nil(p.headers:get("Expect"))
    end)

    it("refuses framing headers that cannot be sent", function()
      support.raises("must be a byte count", prepare.prepare, s, "POST", "x",
        { data = function() end, headers = { ["Content-Length"] = "3x" } })
      support.raises("cannot be combined with a Content-Length", prepare.prepare, s, "POST", "x",
        { data = function() end, chunked = true, headers = { ["Content-Length"] = "3" } })
      support.raises("lurl sends only chunked", prepare.prepare, s, "POST", "x",
        { data = "a", headers = { ["Transfer-Encoding"] = "gzip" } })
      support.raises("cannot be sent together", prepare.prepare, s, "POST", "x",
        { data = "a", headers = { ["Transfer-Encoding"] = "chunked", ["Content-Length"] = "1" } })
    end)
  end)

  describe("compress", function()
    it("compresses a string body at once, its length known", function()
      local p = prep("POST", "x", { data = "hello hello hello", compress = "gzip" })
      assert.are.equal("gzip", p.headers:get("Content-Encoding"))
      assert.are.equal(tostring(#p.body), p.headers:get("Content-Length"))
      assert.are.equal("hello hello hello", unzip(p.body))
    end)

    it("sends a streamed body chunked", function()
      local p = prep("POST", "x", { data = function() return nil end, compress = "deflate" })
      assert.are.equal("deflate", p.headers:get("Content-Encoding"))
      assert.is_true(p.chunked)
    end)

    it("leaves a request without a body alone", function()
      assert.is_nil(prep("GET", "x", { compress = "gzip" }).headers:get("Content-Encoding"))
    end)

    it("true is deflate (aiohttp's), false is none", function()
      local p = prep("POST", "x", { data = "hello hello hello", compress = true })
      assert.are.equal("deflate", p.headers:get("Content-Encoding"))
      local dec = core.codec.decoder("deflate")
      assert.are.equal("hello hello hello", dec:feed(p.body) .. dec:finish())
      p = prep("POST", "x", { data = "hello", compress = false })
      assert.are.equal("hello", p.body)
      assert.is_nil(p.headers:get("Content-Encoding"))
    end)

    it("refuses a Content-Encoding of the script's own", function()
      support.raises("cannot be combined with a Content-Encoding", prepare.prepare, s, "POST", "x",
        { data = "a", compress = "gzip", headers = { ["Content-Encoding"] = "br" } })
    end)
  end)

  describe("credentials", function()
    local basic = lurl.basic_auth("u", "p"):encode()

    it("come from the auth option", function()
      local p = prep("GET", "x", { auth = lurl.basic_auth("u", "p") })
      assert.are.equal(basic, p.headers:get("Authorization"))
    end)

    it("come from the URL, which loses them", function()
      local p = prep("GET", "http://u:p@api.test/x")
      assert.are.equal(basic, p.headers:get("Authorization"))
      assert.are.equal("http://api.test/x", p.url_string)
    end)

    it("the auth option beside credentials in the URL raises", function()
      support.raises("cannot be combined with credentials in the URL", prepare.prepare, s, "GET",
        "http://u:p@api.test/x", { auth = lurl.basic_auth("a", "b") })
    end)

    it("the auth option beside an Authorization header raises", function()
      support.raises("cannot be combined with an Authorization header", prepare.prepare, s, "GET", "x",
        { auth = lurl.basic_auth("a", "b"), headers = { Authorization = "Bearer t" } })
    end)

    it("the session's go only to base_url's origin", function()
      s:close()
      s = lurl.session { base_url = "http://api.test/v1/", auth = lurl.basic_auth("u", "p") }
      assert.are.equal(basic, prep("GET", "x").headers:get("Authorization"))
      assert.are.equal(basic, prep("GET", "http://api.test/other").headers:get("Authorization"))
      assert.is_nil(prep("GET", "http://elsewhere.test/x").headers:get("Authorization"))
      assert.is_nil(prep("GET", "https://api.test/x").headers:get("Authorization"))
      assert.is_nil(prep("GET", "x", { auth = false }).headers:get("Authorization"))
    end)

    it("the session's go everywhere when it has no base_url", function()
      s:close()
      s = lurl.session { auth = lurl.basic_auth("u", "p") }
      assert.are.equal(basic, prep("GET", "http://elsewhere.test/x").headers:get("Authorization"))
    end)
  end)

  describe("check", function()
    it("refuses what prepare would, before any middleware runs", function()
      support.raises("'data' and 'json' cannot be used together", prepare.check, { data = "a", json = {} }, "get")
      support.raises("bad argument 'data' to 'get'", prepare.check, { data = true }, "get")
      support.raises("bad argument 'params' to 'get'", prepare.check, { params = 1 }, "get")
      support.raises("\"gzip\", \"deflate\" or true expected, got br", prepare.check, { compress = "br" }, "get")
      support.raises("\"1.0\" or \"1.1\" expected, got 2", prepare.check, { version = "2" }, "get")
      assert.has_error(function() prepare.check({ timeout = { total = "soon" } }, "get") end)
    end)

    it("lets every accepted body kind through", function()
      for _, data in ipairs { "s", { a = 1 }, function() end, lurl.formdata() } do
        prepare.check({ data = data, params = "a=1", compress = "gzip" }, "post")
        prepare.check({ data = data, compress = true, version = "1.0" }, "post")
      end
    end)
  end)

  describe("the cache of requests without options", function()
    it("gives the same table for the same method and URL, with its bytes encoded", function()
      local p = assert(prepare.prepared(s, "GET", "items"))
      assert.are.equal(p, prepare.prepared(s, "GET", "items"))
      assert.are.equal("GET", p.method)
      assert.are.equal("GET /v1/items HTTP/1.1\r\n", p.bytes:sub(1, 24))
      assert.are_not.equal(p, prepare.prepared(s, "HEAD", "items"))
    end)

    it("starts over when session.headers change", function()
      local p = assert(prepare.prepared(s, "GET", "items"))
      s.headers:set("X-Extra", "1")
      local q = assert(prepare.prepared(s, "GET", "items"))
      assert.are_not.equal(p, q)
      assert.are.equal("1", q.headers:get("X-Extra"))
      assert.are.equal(q, prepare.prepared(s, "GET", "items"))
    end)

    it("keeps nothing for a URL it refuses", function()
      local p, err = prepare.prepared(s, "GET", "ftp://api.test/x")
      assert.is_nil(p)
      assert.is_truthy(err)
      assert.are.equal(0, s.prepared.size)
    end)
  end)
end)
