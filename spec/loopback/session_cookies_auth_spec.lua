-- Session-level cookies and BasicAuth: the jar learning Set-Cookie from
-- every hop and choosing what each hop sends (RFC 6265 sections 5.3 and
-- 5.4, aiohttp's CookieJar choices), shared and per-request cookies, an
-- explicit Cookie header merged with them, resp.cookies, the dummy jar and
-- treat_as_secure_origin; Basic credentials (RFC 7617) from auth=, the
-- session and the URL, their conflicts and what survives a redirect.
local lurl = require "lurl"
local cjson = require "cjson"
local support = require "spec.support"

-- What reached a route: target, Host, Cookie and Authorization.
local function echo(req)
  return {
    headers = { ["Content-Type"] = "application/json" },
    body = cjson.encode {
      target = req.target, host = req.headers["host"] or false,
      cookie = req.headers["cookie"] or false,
      authorization = req.headers["authorization"] or false,
    },
  }
end

local function set(cookies, extra)
  return function(req)
    local resp = echo(req)
    resp.headers["Set-Cookie"] = cookies
    for k, v in pairs(extra or {}) do resp[k] = v end
    return resp
  end
end

local function redirect(location, cookies)
  return function()
    return { status = 302, headers = { Location = location, ["Set-Cookie"] = cookies } }
  end
end

-- The routes of every server: /echo (and anything unknown) echoes.
local function routes(other)
  return {
    ["/echo"] = echo,
    ["/set"] = set { "a=1; Path=/" },
    ["/set-domain"] = set { "h=1; Path=/", "d=1; Domain=example.test; Path=/" },
    ["/set-api"] = set { "api=1; Path=/" },
    ["/set-secure"] = set { "s=1; Secure; Path=/", "p=1; Path=/" },
    ["/set-attrs"] = set {
      "full=v; Domain=example.com; Path=/p; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Max-Age=60; "
        .. "Secure; HttpOnly; SameSite=Lax",
      "plain=1",
    },
    ["/set-redirect"] = redirect("/echo", "r=1; Path=/"),
    ["/pathb-to-b"] = redirect("/b/echo", "pb=1; Path=/b"),
    ["/pathb-to-c"] = redirect("/c/echo", "pb=1; Path=/b"),
    ["/302"] = redirect("/echo"),
    ["/to-other"] = other and redirect(other:url("/echo")) or nil,
    ["/to-api"] = redirect("http://api.example.test/echo"),
    ["*"] = echo,
  }
end

-- The echo of a response, asserting it is a 200.
local function seen(resp, err)
  assert(resp, tostring(err))
  assert.are.equal(200, resp.status)
  return resp:json()
end

-- pcall(fn, ...) must fail with an argument error naming `what`.
local function argerror(what, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an argument error naming " .. what)
  assert.matches("bad argument", tostring(err), 1, true)
  assert.matches(what, tostring(err), 1, true)
end

-- A connector sending the given names (on port 80) to the server.
local function named(server, names)
  local map = {}
  for _, name in ipairs(names) do map[name .. ":80"] = "127.0.0.1:" .. server.port end
  return lurl.connector { resolve = map }
end

local NAMES = { "www.example.test", "api.example.test", "other.test" }

describe("session", function()
  local srv, other, s

  before_each(function()
    other = support.server(routes())
    srv = support.server(routes(other))
  end)

  after_each(function()
    if s then s:close(); s = nil end
    srv:close()
    other:close()
  end)

  describe("cookies", function()

    describe("the jar", function()
      it("by default neither stores nor sends cookies for an IP-address host", function()
        s = lurl.session()
        local resp = assert(s:get(srv:url("/set")))
        assert.are.equal("1", resp.cookies.a.value) -- the response has it all the same
        assert.are.equal(0, #s.cookie_jar)
        s.cookie_jar:update_cookies({ { name = "x", value = "1", domain = "127.0.0.1", path = "/" } })
        assert.are.equal(1, #s.cookie_jar)
        assert.is_false(seen(s:get(srv:url("/echo"))).cookie)
      end)

      it("with unsafe = true stores Set-Cookie and sends it on later requests", function()
        local jar = lurl.cookie_jar { unsafe = true }
        s = support.session(srv, { cookie_jar = jar })
        assert.are.equal(jar, s.cookie_jar)
        assert.is_false(seen(s:get("/set")).cookie)
        assert.are.equal(1, #s.cookie_jar)
        local c = jar:filter_cookies(srv:url("/"))[1]
        assert.are.equal("a", c.name)
        assert.are.equal("127.0.0.1", c.domain)
        assert.are.equal("a=1", seen(s:get("/echo")).cookie)
        assert.are.equal("a=1", seen(s:get("/any/where")).cookie)
      end)

      it("stores the cookies of a redirect and sends them on the next hop", function()
        s = support.session(srv, { cookie_jar = lurl.cookie_jar { unsafe = true } })
        local resp = assert(s:get("/set-redirect"))
        assert.are.equal("r=1", seen(resp).cookie)
        assert.are.equal(1, #resp.history)
        assert.are.equal("1", resp.history[1].cookies.r.value)
        assert.are.equal(1, #s.cookie_jar)
      end)

      it("is asked again on every hop (a Path=/b cookie goes only under /b)", function()
        s = support.session(srv, { cookie_jar = lurl.cookie_jar { unsafe = true } })
        local got = seen(s:get("/pathb-to-c"))
        assert.are.equal("/c/echo", got.target)
        assert.is_false(got.cookie)
        assert.are.equal(1, #s.cookie_jar)
        s.cookie_jar:clear()
        got = seen(s:get("/pathb-to-b"))
        assert.are.equal("/b/echo", got.target)
        assert.are.equal("pb=1", got.cookie)
      end)
    end)

    describe("name-based origins", function()
      it("work with the default jar; Domain cookies reach the domain's other hosts, host-only ones do not", function()
        s = lurl.session { connector = named(srv, NAMES) }
        local first = seen(s:get("http://www.example.test/set-domain"))
        assert.are.equal("www.example.test", first.host)
        assert.are.equal(2, #s.cookie_jar)
        assert.are.equal("h=1; d=1", seen(s:get("http://www.example.test/echo")).cookie)
        assert.are.equal("d=1", seen(s:get("http://api.example.test/echo")).cookie)
        assert.is_false(seen(s:get("http://other.test/echo")).cookie)
      end)
    end)

    describe("shared cookies (session cookies =)", function()
      it("go to every host, IP addresses and names alike", function()
        s = lurl.session { cookies = { a = "1" }, connector = named(srv, NAMES) }
        assert.are.equal(1, #s.cookie_jar)
        assert.are.equal("a=1", seen(s:get(srv:url("/echo"))).cookie)
        assert.are.equal("a=1", seen(s:get(other:url("/echo"))).cookie)
        assert.are.equal("a=1", seen(s:get("http://www.example.test/echo")).cookie)
        assert.are.equal("a=1", seen(s:get("http://other.test/x")).cookie)
      end)

      it("give way to a host's own cookie of the same name", function()
        s = lurl.session { cookies = { a = "shared" }, connector = named(srv, NAMES) }
        assert(s:get("http://www.example.test/set"))
        assert.are.equal("a=1", seen(s:get("http://www.example.test/echo")).cookie)
        assert.are.equal("a=shared", seen(s:get("http://api.example.test/echo")).cookie)
      end)
    end)

    describe("per-request cookies =", function()
      before_each(function()
        s = support.session(srv, { cookie_jar = lurl.cookie_jar { unsafe = true } })
      end)

      it("are sent with that request only and never stored", function()
        assert.are.equal("b=2", seen(s:get("/echo", { cookies = { b = "2" } })).cookie)
        assert.are.equal(0, #s.cookie_jar)
        assert.is_false(seen(s:get("/echo")).cookie)
      end)

      it("override jar cookies of the same name", function()
        assert(s:get("/set"))
        assert.are.equal("a=req; b=2", seen(s:get("/echo", { cookies = { a = "req", b = "2" } })).cookie)
        assert.are.equal(1, #s.cookie_jar)
        assert.are.equal("1", s.cookie_jar:filter_cookies(srv:url("/"))[1].value)
        assert.are.equal("a=1", seen(s:get("/echo")).cookie)
      end)

      it("reach an IP-address host even with the default jar (they are not the jar's)", function()
        s:close()
        s = support.session(srv)
        assert.are.equal("b=2", seen(s:get("/echo", { cookies = { b = "2" } })).cookie)
        assert.are.equal(0, #s.cookie_jar)
      end)

      it("follow a redirect within the origin, not one to another origin", function()
        assert.are.equal("b=2", seen(s:get("/302", { cookies = { b = "2" } })).cookie)
        local resp = assert(s:get("/to-other", { cookies = { b = "2" } }))
        assert.are.equal(other:url("/echo"), resp.url)
        assert.is_false(seen(resp).cookie)
      end)
    end)

    describe("an explicit Cookie header", function()
      it("is sent as it is when no cookie applies", function()
        s = support.session(srv, { cookie_jar = lurl.cookie_jar { unsafe = true } })
        assert.are.equal("x=1; y=2", seen(s:get("/echo", { headers = { Cookie = "x=1; y=2" } })).cookie)
      end)

      it("comes first, without the names the jar and cookies = send", function()
        s = support.session(srv, { cookie_jar = lurl.cookie_jar { unsafe = true } })
        assert(s:get("/set"))
        local got = seen(s:get("/echo", { headers = { Cookie = "x=1; a=old; c=old" }, cookies = { c = "req" } }))
        assert.are.equal("x=1; a=1; c=req", got.cookie)
        got = seen(s:get("/echo", { headers = { Cookie = "a=old; x=1" } }))
        assert.are.equal("x=1; a=1", got.cookie)
      end)

      it("merges with session headers too", function()
        s = support.session(srv, { cookie_jar = lurl.cookie_jar { unsafe = true },
          headers = { Cookie = "x=1; a=old" } })
        assert(s:get("/set"))
        assert.are.equal("x=1; a=1", seen(s:get("/echo")).cookie)
      end)

      it("is dropped on a redirect to another origin, where the jar's cookies for it are sent", function()
        s = lurl.session { connector = named(srv, NAMES) }
        assert(s:get("http://api.example.test/set-api"))
        local resp = assert(s:get("http://www.example.test/to-api", { headers = { Cookie = "x=1" } }))
        assert.are.equal("http://api.example.test/echo", resp.url)
        assert.are.equal("api=1", seen(resp).cookie)
        -- and kept within the origin
        local got = seen(s:get("http://api.example.test/302", { headers = { Cookie = "x=1" } }))
        assert.are.equal("x=1; api=1", got.cookie)
      end)
    end)

    describe("resp.cookies", function()
      it("holds every Set-Cookie of the response with its attributes, even those the jar refuses", function()
        s = lurl.session() -- refuses them all: 127.0.0.1
        local before = os.time()
        local resp = assert(s:get(srv:url("/set-attrs")))
        local after = os.time()
        assert.are.equal(0, #s.cookie_jar)
        local full, plain = resp.cookies.full, resp.cookies.plain
        assert.are.equal("full", full.name)
        assert.are.equal("v", full.value)
        assert.are.equal("example.com", full.domain)
        assert.are.equal("/p", full.path)
        assert.are.equal(2139722880, full.expires) -- Wed, 21 Oct 2037 07:28:00 GMT
        -- max_age is the expiry it gives, in epoch seconds
        assert.is_true(full.max_age >= before + 60 and full.max_age <= after + 60, tostring(full.max_age))
        assert.is_true(full.secure)
        assert.is_true(full.http_only)
        assert.are.equal("Lax", full.same_site)
        assert.are.equal("plain", plain.name)
        assert.are.equal("1", plain.value)
        for _, k in ipairs { "domain", "path", "expires", "max_age", "secure", "http_only", "same_site" } do
          assert.is_falsy(plain[k], k)
        end
      end)

      it("is empty for a response without Set-Cookie", function()
        s = lurl.session()
        assert.same({}, assert(s:get(srv:url("/echo"))).cookies)
      end)
    end)

    describe("lurl.dummy_cookie_jar()", function()
      it("stores and sends nothing", function()
        local jar = lurl.dummy_cookie_jar()
        s = support.session(srv, { cookie_jar = jar, cookies = { shared = "1" } })
        assert.are.equal(jar, s.cookie_jar)
        local resp = assert(s:get("/set-redirect"))
        assert.are.equal("1", resp.history[1].cookies.r.value)
        assert.is_false(seen(resp).cookie)
        assert.are.equal(0, #s.cookie_jar)
        assert.is_false(seen(s:get("/echo")).cookie)
      end)

      it("leaves per-request cookies to go with their request (aiohttp's temporary jar)", function()
        s = support.session(srv, { cookie_jar = lurl.dummy_cookie_jar() })
        assert.are.equal("b=2", seen(s:get("/echo", { cookies = { b = "2" } })).cookie)
        assert.are.equal(0, #s.cookie_jar)
      end)
    end)

    describe("Secure cookies", function()
      it("are not sent over plain http", function()
        s = support.session(srv, { cookie_jar = lurl.cookie_jar { unsafe = true } })
        assert(s:get("/set-secure"))
        assert.are.equal(2, #s.cookie_jar)
        assert.are.equal("p=1", seen(s:get("/echo")).cookie)
      end)

      it("are sent to an origin in treat_as_secure_origin", function()
        local forms = {
          { srv:url("/") }, srv:url("/"), { srv:url(""), "http://example.test" }, { lurl.url.parse(srv:url("/")) },
        }
        for i, form in ipairs(forms) do
          s = support.session(srv, { cookie_jar = lurl.cookie_jar { unsafe = true, treat_as_secure_origin = form } })
          assert(s:get("/set-secure"))
          assert.are.equal("s=1; p=1", seen(s:get("/echo")).cookie, "form " .. i)
          -- another port is another origin
          assert.are.equal("p=1", seen(s:get(other:url("/echo"))).cookie, "form " .. i)
          s:close()
        end
        s = nil
      end)
    end)

    describe("options", function()
      it("a cookie_jar of the wrong type is an argument error naming 'cookie_jar'", function()
        for _, bad in ipairs { {}, "jar", 1, true, lurl.connector() } do
          argerror("'cookie_jar'", lurl.session, { cookie_jar = bad })
        end
      end)
    end)
  end)

  describe("BasicAuth", function()

    local function authorization(resp, err) return seen(resp, err).authorization end

    describe("lurl.basic_auth", function()
      it("per request sends Authorization: Basic base64(login:password), latin1 by default", function()
        s = support.session(srv)
        assert.are.equal("Basic dXNlcjpwYXNz",
          authorization(s:get("/echo", { auth = lurl.basic_auth("user", "pass") })))
        assert.are.equal("Basic dXNlcjpw5HNzd29yZA==",
          authorization(s:get("/echo", { auth = lurl.basic_auth("user", "pässword") })))
        assert.are.equal("Basic dXNlcjpww6Rzc3dvcmQ=",
          authorization(s:get("/echo", { auth = lurl.basic_auth("user", "pässword", "utf-8") })))
        assert.is_false(authorization(s:get("/echo")))
      end)

      it("round-trips through lurl.basic_auth_decode", function()
        local a = lurl.basic_auth_decode("Basic dXNlcjpwYXNz")
        assert.are.equal("user", a.login)
        assert.are.equal("pass", a.password)
        assert.is_true(a == lurl.basic_auth("user", "pass"))
        for _, enc in ipairs { "latin1", "utf-8" } do
          local orig = lurl.basic_auth("user", "pässword", enc)
          local back = lurl.basic_auth_decode(orig:encode(), enc)
          assert.are.equal("pässword", back.password)
          assert.is_true(back == orig, enc)
        end
      end)

      it("lurl.basic_auth_from_url reads percent-decoded credentials", function()
        local a = lurl.basic_auth_from_url("http://user:p%40ss@example.test/x")
        assert.are.equal("user", a.login)
        assert.are.equal("p@ss", a.password)
        assert.is_nil(lurl.basic_auth_from_url("http://example.test/x"))
      end)
    end)

    describe("credentials in the URL", function()
      it("are sent as Basic auth, and are neither in the request line nor in resp.url", function()
        s = lurl.session()
        local raw = ("http://user:p%%40ss@127.0.0.1:%d/echo"):format(srv.port)
        local resp = assert(s:get(raw))
        local got = seen(resp)
        assert.are.equal("Basic dXNlcjpwQHNz", got.authorization) -- user:p@ss
        assert.are.equal("/echo", got.target)
        assert.are.equal("127.0.0.1:" .. srv.port, got.host)
        assert.are.equal(srv:url("/echo"), resp.url)
        assert.is_nil(resp.url:find("user", 1, true))
      end)

      it("win over the session's auth", function()
        s = lurl.session { auth = lurl.basic_auth("sess", "1") }
        local raw = ("http://user:p%%40ss@127.0.0.1:%d/echo"):format(srv.port)
        assert.are.equal("Basic dXNlcjpwQHNz", authorization(s:get(raw)))
      end)
    end)

    describe("session auth", function()
      it("applies to every request when the session has no base_url", function()
        s = lurl.session { auth = lurl.basic_auth("sess", "1") }
        assert.are.equal("Basic c2Vzczox", authorization(s:get(srv:url("/echo"))))
        assert.are.equal("Basic c2Vzczox", authorization(s:get(other:url("/echo"))))
      end)

      it("applies only to the base_url's origin when there is one", function()
        s = support.session(srv, { auth = lurl.basic_auth("sess", "1") })
        assert.are.equal("Basic c2Vzczox", authorization(s:get("/echo")))
        assert.are.equal("Basic c2Vzczox", authorization(s:get(srv:url("/deeper/echo"))))
        assert.is_false(authorization(s:get(other:url("/echo"))))
      end)

      it("gives way to per-request auth", function()
        s = support.session(srv, { auth = lurl.basic_auth("sess", "1") })
        assert.are.equal("Basic cmVxOjI=", authorization(s:get("/echo", { auth = lurl.basic_auth("req", "2") })))
        assert.are.equal("Basic c2Vzczox", authorization(s:get("/echo")))
      end)
    end)

    describe("conflicts", function()
      it("auth with an Authorization header is an argument error", function()
        s = support.session(srv)
        local a = lurl.basic_auth("user", "pass")
        argerror("'auth'", s.get, s, "/echo", { auth = a, headers = { Authorization = "Bearer x" } })
        argerror("'auth'", s.get, s, "/echo", { auth = a, headers = { authorization = "Bearer x" } })
        s:close()
        s = support.session(srv, { headers = { Authorization = "Bearer x" } })
        argerror("'auth'", s.get, s, "/echo", { auth = a })
        s:close()
        s = support.session(srv, { headers = { Authorization = "Bearer x" }, auth = a })
        argerror("'auth'", s.get, s, "/echo")
      end)

      it("auth with credentials in the URL is an argument error", function()
        s = lurl.session()
        local raw = ("http://user:pass@127.0.0.1:%d/echo"):format(srv.port)
        argerror("'auth'", s.get, s, raw, { auth = lurl.basic_auth("other", "x") })
        argerror("'auth'", s.get, s, raw, { headers = { Authorization = "Bearer x" } })
      end)

      it("a non-BasicAuth auth is an argument error naming 'auth'", function()
        s = support.session(srv)
        for _, bad in ipairs { "user:pass", { login = "user", password = "pass" }, 1, true } do
          argerror("'auth'", s.get, s, "/echo", { auth = bad })
          argerror("'auth'", lurl.session, { auth = bad })
        end
      end)
    end)

    describe("redirects", function()
      local a = lurl.basic_auth("user", "pass")

      before_each(function() s = support.session(srv) end)

      it("keep per-request auth within the origin", function()
        local resp = assert(s:get("/302", { auth = a }))
        assert.are.equal(srv:url("/echo"), resp.url)
        assert.are.equal("Basic dXNlcjpwYXNz", authorization(resp))
      end)

      it("drop per-request auth on a redirect to another origin", function()
        local resp = assert(s:get("/to-other", { auth = a }))
        assert.are.equal(other:url("/echo"), resp.url)
        assert.is_false(authorization(resp))
      end)

      it("keep an explicit Authorization header within the origin and drop it for another", function()
        assert.are.equal("Bearer x", authorization(s:get("/302", { headers = { Authorization = "Bearer x" } })))
        assert.is_false(authorization(s:get("/to-other", { headers = { Authorization = "Bearer x" } })))
      end)

      it("treat credentials from the URL the same way", function()
        local base = ("http://user:pass@127.0.0.1:%d"):format(srv.port)
        assert.are.equal("Basic dXNlcjpwYXNz", authorization(s:get(base .. "/302")))
        assert.is_false(authorization(s:get(base .. "/to-other")))
      end)

      it("never send the session's auth to another origin (aiohttp would), but use credentials in the Location",
        function()
        s:close()
        s = lurl.session { auth = a }
        assert.are.equal("Basic dXNlcjpwYXNz", authorization(s:get(srv:url("/302"))))
        assert.is_false(authorization(s:get(srv:url("/to-other"))))
        local with_creds = srv:url("/echo"):gsub("^http://", "http://loc:pw@")
        srv.routes["/to-creds"] = function() return { status = 302, headers = { Location = with_creds } } end
        assert.are.equal("Basic " .. require("lurl.auth").b64encode("loc:pw"),
          authorization(s:get(srv:url("/to-creds"))))
      end)
    end)
  end)
end)
