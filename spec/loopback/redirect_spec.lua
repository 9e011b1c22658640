-- Redirects (RFC 9110 section 15.4): each status code's method and body
-- rules, relative Locations (RFC 3986 section 5), history, limits, bad
-- Locations, credentials dropped across origins, one deadline for all hops.
local lurl = require "lurl"
local support = require "spec.support"

-- A route that redirects with `status` to `location`.
local function to(status, location)
  return function() return { status = status, headers = { Location = location } } end
end

-- What reached the final route: method, target, body and a few headers.
local function echo(req)
  return {
    headers = { ["Content-Type"] = "application/json" },
    body = require("cjson").encode {
      method = req.method, target = req.target, body = req.body or "",
      authorization = req.headers["authorization"] or false,
      proxy_authorization = req.headers["proxy-authorization"] or false,
      cookie = req.headers["cookie"] or false,
      content_type = req.headers["content-type"] or false,
      content_length = req.headers["content-length"] or false,
      x_keep = req.headers["x-keep"] or false,
    },
  }
end

describe("redirects", function()
  local srv, other, s

  before_each(function()
    other = support.server({ ["/echo"] = echo })
    srv = support.server({
      ["/echo"] = echo,
      ["/to-other"] = function() return { status = 302, headers = { Location = other:url("/echo") } } end,
      ["/a/b/rel"] = to(302, "../c/d?q=1#frag"),
      ["/a/c/d"] = echo,
      ["/loop"] = to(302, "/loop"),
      ["/ftp"] = to(302, "ftp://example.com/file"),
      ["/mailto"] = to(301, "mailto:someone@example.com"),
      ["/bad"] = to(302, "http://[::1"),
      ["/none"] = function() return { status = 302, body = "no location" } end,
      ["/slow-hop"] = function() lurl.sleep(0.3); return { status = 302, headers = { Location = "/slow-hop" } } end,
      ["*"] = function(req)
        local status, rest = req.path:match("^/(%d%d%d)(.*)$")
        if status then return { status = tonumber(status), headers = { Location = rest ~= "" and rest or "/echo" } } end
        return { status = 404 }
      end,
    })
    s = support.session(srv)
  end)

  after_each(function()
    s:close()
    srv:close()
    other:close()
  end)

  local function final(resp, err)
    assert(resp, tostring(err))
    assert.are.equal(200, resp.status)
    return resp:json()
  end

  describe("methods and bodies", function()
    -- { status, method, method after, body kept }
    local cases = {
      { 301, "GET", "GET", false }, { 301, "POST", "GET", false }, { 301, "PUT", "PUT", true },
      { 302, "GET", "GET", false }, { 302, "POST", "GET", false }, { 302, "DELETE", "DELETE", false },
      { 302, "PATCH", "PATCH", true },
      { 303, "POST", "GET", false }, { 303, "PUT", "GET", false }, { 303, "DELETE", "GET", false },
      { 307, "POST", "POST", true }, { 307, "PUT", "PUT", true }, { 307, "GET", "GET", false },
      { 308, "POST", "POST", true }, { 308, "PATCH", "PATCH", true },
    }
    for _, c in ipairs(cases) do
      local status, method, after, kept = c[1], c[2], c[3], c[4]
      it(("%d turns %s into %s%s"):format(status, method, after, kept and " with its body" or ""), function()
        local with_body = method ~= "GET" and method ~= "DELETE"
        local resp, err = s:request(method, "/" .. status .. "/echo",
          with_body and { data = "payload", headers = { ["Content-Type"] = "text/plain" } } or nil)
        local got = final(resp, err)
        assert.are.equal(after, got.method)
        assert.are.equal(1, #resp.history)
        assert.are.equal(status, resp.history[1].status)
        assert.are.equal(method, resp.history[1].method)
        if kept then
          assert.are.equal("payload", got.body)
          assert.are.equal("text/plain", got.content_type)
        else
          assert.are.equal("", got.body)
          assert.is_false(got.content_type)
          if after == "GET" then assert.is_false(got.content_length) end
        end
      end)
    end

    it("keeps HEAD a HEAD on a 303 when asked to follow", function()
      local resp = assert(s:head("/303/echo", { allow_redirects = true }))
      assert.are.equal(200, resp.status)
      assert.are.equal("HEAD", resp.method)
      assert.are.equal(1, #resp.history)
    end)
  end)

  describe("history and URLs", function()
    it("resolves a relative Location against the response's URL and drops its fragment", function()
      local got = final(s:get("/a/b/rel"))
      assert.are.equal("/a/c/d?q=1", got.target) -- RFC 3986 section 5.2.4
    end)

    it("keeps the earlier responses in order and gives the final URL", function()
      local resp = assert(s:get("/301/302/307/echo"))
      assert.are.equal(200, resp.status)
      assert.are.equal(srv:url("/echo"), resp.url)
      local statuses, urls = {}, {}
      for i, h in ipairs(resp.history) do statuses[i], urls[i] = h.status, h.url end
      assert.same({ 301, 302, 307 }, statuses)
      assert.same({ srv:url("/301/302/307/echo"), srv:url("/302/307/echo"), srv:url("/307/echo") }, urls)
      assert.same({}, resp.history[1].history)
    end)

    it("are not followed with allow_redirects = false, nor by default for HEAD", function()
      local resp = assert(s:get("/302/echo", { allow_redirects = false }))
      assert.are.equal(302, resp.status)
      assert.are.equal("/echo", resp.headers["location"])
      assert.same({}, resp.history)
      assert.are.equal(302, assert(s:head("/302/echo")).status)
    end)

    it("stop at a redirect without Location", function()
      local resp = assert(s:get("/none"))
      assert.are.equal(302, resp.status)
      assert.are.equal("no location", resp:text())
    end)

    it("reuse the connection across same-origin hops", function()
      assert(s:get("/301/302/echo"))
      assert.are.equal(1, srv.connections)
    end)
  end)

  describe("requote_redirect_url", function()
    local RAW = "/raw/a%7Eb%7e?q=%7E%41%2f"
    local function routes()
      srv:route("/tilde", to(302, RAW))
      srv:route("/tilde-abs", function() return { status = 302, headers = { Location = srv:url(RAW) } } end)
      srv:route("/raw/a~b~", echo):route("/raw/a%7Eb%7e", echo)
    end

    it("is on by default: a Location is requoted as yarl does (%7E becomes ~)", function()
      routes()
      assert.is_true(s.requote_redirect_url)
      assert.are.equal("/raw/a~b~?q=~A/", final(s:get("/tilde")).target)
    end)

    it("false fetches the Location exactly as sent, relative or absolute", function()
      routes()
      s:close()
      s = support.session(srv, { requote_redirect_url = false })
      assert.is_false(s.requote_redirect_url)
      assert.are.equal(RAW, final(s:get("/tilde")).target)
      local resp = assert(s:get("/tilde-abs"))
      assert.are.equal(RAW, resp:json().target)
      assert.are.equal(srv:url(RAW), resp.url)
      -- the first request's own URL is requoted all the same (aiohttp's)
      assert.are.equal("/raw/a~b~?q=~A/", final(s:get("/raw/a%7Eb%7e?q=%7E%41%2f")).target)
    end)

    it("must be a boolean", function()
      support.raises("'requote_redirect_url' to 'session' (boolean expected, got string)", lurl.session,
        { requote_redirect_url = "no" })
    end)
  end)

  describe("limits and bad Locations", function()
    it("raise TooManyRedirects past max_redirects (10), carrying the history", function()
      local resp, err = s:get("/loop")
      assert.is_nil(resp)
      assert.are.equal("TooManyRedirects", err.kind)
      assert.is_true(err:is("ClientResponseError"))
      assert.are.equal(11, #err.history)
      assert.are.equal(302, err.status)
      resp, err = s:get("/loop", { max_redirects = 2 })
      assert.is_nil(resp)
      assert.are.equal(3, #err.history)
      resp, err = s:get("/302/echo", { max_redirects = 0 })
      assert.is_nil(resp)
      assert.are.equal("TooManyRedirects", err.kind)
    end)

    it("follow exactly max_redirects redirects (aiohttp's reference: raised when exceeded)", function()
      local resp = assert(s:get("/301/302/echo", { max_redirects = 2 }))
      assert.are.equal(200, resp.status)
      assert.are.equal(2, #resp.history)
      local none, err = s:get("/301/302/echo", { max_redirects = 1 })
      assert.is_nil(none)
      assert.are.equal("TooManyRedirects", err.kind)
      assert.are.equal(2, #err.history)
    end)

    it("refuse a non-http(s) Location with NonHttpUrlRedirectClientError", function()
      for _, path in ipairs { "/ftp", "/mailto" } do
        local resp, err = s:get(path)
        assert.is_nil(resp)
        assert.are.equal("NonHttpUrlRedirectClientError", err.kind)
        assert.is_true(err:is("RedirectClientError"))
        assert.is_true(err:is("NonHttpUrlClientError"))
      end
    end)

    it("refuse a malformed Location with InvalidUrlRedirectClientError", function()
      local resp, err = s:get("/bad")
      assert.is_nil(resp)
      assert.are.equal("InvalidUrlRedirectClientError", err.kind)
      assert.matches("http://[::1", err.message, 1, true)
    end)

    it("share one total timeout across every hop", function()
      local secs, resp, err = support.timed(s.get, s, "/slow-hop", { timeout = 1 })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert.is_true(secs < 5, "took " .. secs)
    end)
  end)

  describe("across origins", function()
    local secrets = {
      Authorization = "Basic c2VjcmV0", ["Proxy-Authorization"] = "Basic cHJveHk=",
      Cookie = "session=1", ["X-Keep"] = "kept",
    }

    it("drop Authorization, Proxy-Authorization and an explicit Cookie", function()
      local got = final(s:get("/to-other", { headers = secrets }))
      assert.is_false(got.authorization)
      assert.is_false(got.proxy_authorization)
      assert.is_false(got.cookie)
      assert.are.equal("kept", got.x_keep)
    end)

    it("keep them within the origin", function()
      local got = final(s:get("/302/echo", { headers = secrets }))
      assert.are.equal("Basic c2VjcmV0", got.authorization)
      -- never to an origin: Proxy-Authorization is for a proxy (lurl.prepare)
      assert.is_false(got.proxy_authorization)
      assert.are.equal("session=1", got.cookie)
    end)

    it("drop session-wide credentials as well", function()
      s:close()
      s = support.session(srv, { headers = { Authorization = "Basic c2VjcmV0" } })
      local got = final(s:get("/to-other"))
      assert.is_false(got.authorization)
    end)
  end)
end)
