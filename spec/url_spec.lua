-- lurl.url: parsing, RFC 3986 reference resolution, recomposition, checks.
local cjson = require "cjson"
local url = require "lurl.url"

local RFC3986 = "../shared/conformance/url/rfc3986-5.4.json"

local function load_json(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return cjson.decode(text)
end

local function join_str(base, ref)
  local u, err = url.join(base, ref)
  if not u then return nil, err end
  return url.tostring(u)
end

local function parse_ok(s)
  local u, err = url.parse(s)
  assert(u, tostring(err))
  return u
end

describe("lurl.url", function()
  describe("parse", function()
    it("splits every component", function()
      local u = parse_ok("HTTP://user:pw@Example.COM:8080/a/b;p?x=1&y#frag")
      assert.equal("http", u.scheme)
      assert.equal("user", u.user)
      assert.equal("pw", u.password)
      assert.equal("example.com", u.host)
      assert.equal(8080, u.port)
      assert.equal("/a/b;p", u.path)
      assert.equal("x=1&y", u.query)
      assert.equal("frag", u.fragment)
    end)

    it("absent components are nil; an empty query is ''", function()
      local u = parse_ok("http://h")
      assert.is_nil(u.port)
      assert.is_nil(u.user)
      assert.is_nil(u.query)
      assert.is_nil(u.fragment)
      assert.equal("", u.path)
      assert.equal("", parse_ok("http://h/?").query)
      assert.equal("", parse_ok("http://h/#").fragment)
    end)

    it("a user without a password", function()
      local u = parse_ok("http://user@h/")
      assert.equal("user", u.user)
      assert.is_nil(u.password)
    end)

    it("IPv6 literals", function()
      local u = parse_ok("http://[::1]:8080/p")
      assert.equal("::1", u.host)
      assert.equal(8080, u.port)
      assert.equal("http://[::1]:8080/p", url.tostring(u))
      assert.equal("fe80::a", parse_ok("http://[FE80::A]/").host)
    end)

    it("relative references parse", function()
      local u = parse_ok("../a?q#f")
      assert.is_nil(u.scheme)
      assert.is_nil(u.host)
      assert.equal("../a", u.path)
      assert.equal("q", u.query)
      assert.equal("f", u.fragment)
      u = parse_ok("//host/p")
      assert.is_nil(u.scheme)
      assert.equal("host", u.host)
    end)

    it("surrounding spaces are trimmed, inner ones encoded", function()
      local u = parse_ok("  http://h/a b?c d#e f  ")
      assert.equal("/a%20b", u.path)
      assert.equal("c%20d", u.query)
      assert.equal("e%20f", u.fragment)
    end)

    it("unsafe characters are percent-encoded, existing escapes kept", function()
      assert.equal("/%22%3C%3E%5C%5E%60%7B%7C%7D", parse_ok('http://h/"<>\\^`{|}').path)
      assert.equal("/%C3%A9%2F", parse_ok("http://h/\195\169%2F").path)
    end)

    it("port 0 and 65535 are valid", function()
      assert.equal(0, parse_ok("http://h:0/").port)
      assert.equal(65535, parse_ok("http://h:65535/").port)
    end)

    it("an empty port is no port", function()
      assert.is_nil(parse_ok("http://h:/").port)
    end)
  end)

  describe("InvalidURL", function()
    local function invalid(s, kind)
      local u, err = url.parse(s)
      assert.is_nil(u, s)
      assert.is_table(err, s)
      assert.is_true(err:is("InvalidURL"), s)
      if kind then assert.equal(kind, err.kind, s) end
      assert.equal("string", type(err.url))
      return err
    end

    it("control characters", function()
      for _, s in ipairs { "http://h/\n", "http://h/a\rb", "http://h/\0", "http://h\t/", "http://h/\127" } do
        invalid(s, "InvalidURL")
      end
    end)

    it("bad ports", function()
      for _, s in ipairs { "http://h:65536/", "http://h:99999/", "http://h:abc/", "http://h:-1/",
        "http://h:80:80/", "http://[::1]x/" } do
        invalid(s)
      end
      local err = invalid("http://h:70000/")
      assert.matches("70000", err.message, 1, true)
    end)

    it("bad hosts", function()
      for _, s in ipairs { "http://a b/", "http://a<b/", "http://[zz]/", "http://[::1/" } do
        invalid(s, "InvalidUrlClientError")
      end
    end)

    it("a non-string", function()
      invalid(42, "InvalidURL")
      invalid(nil, "InvalidURL")
    end)

    it("check_http: a missing host", function()
      for _, s in ipairs { "http:///path", "http://", "http:path", "https://:80/" } do
        local u = parse_ok(s)
        local ok, err = url.check_http(u, s)
        assert.is_nil(ok, s)
        assert.is_true(err:is("InvalidURL"), s)
        assert.equal("InvalidUrlClientError", err.kind, s)
        assert.equal(s, err.url)
      end
    end)

    it("check_http: a missing scheme", function()
      local _, err = url.check_http(parse_ok("//h/p"), "//h/p")
      assert.equal("InvalidUrlClientError", err.kind)
      _, err = url.check_http(parse_ok("/p"), "/p", true)
      assert.equal("InvalidUrlRedirectClientError", err.kind)
    end)

    it("check_http: non-http schemes", function()
      for _, s in ipairs { "ftp://h/", "ws://h/", "wss://h/", "file:///etc/passwd", "mailto:a@b" } do
        local _, err = url.check_http(parse_ok(s), s)
        assert.equal("NonHttpUrlClientError", err.kind, s)
        local _, rerr = url.check_http(parse_ok(s), s, true)
        assert.equal("NonHttpUrlRedirectClientError", rerr.kind, s)
        assert.is_true(rerr:is("InvalidURL"))
      end
    end)

    it("check_http accepts http and https", function()
      for _, s in ipairs { "http://h/", "https://h:8443/x", "http://[::1]/" } do
        local u = parse_ok(s)
        assert.equal(u, (url.check_http(u, s)))
      end
    end)
  end)

  describe("tostring", function()
    it("round-trips", function()
      for _, s in ipairs {
        "http://h", "http://h/", "https://u:p@h:8443/a/b?x=1#f", "http://h/?", "http://[::1]:1/",
        "http://u@h/", "g:h", "mailto:a@b", "../x", "?q", "#f", "//h/p",
      } do
        assert.equal(s, url.tostring(parse_ok(s)))
      end
    end)

    it("target is origin-form", function()
      assert.equal("/", url.target(parse_ok("http://h")))
      assert.equal("/a?b", url.target(parse_ok("http://h/a?b#c")))
      assert.equal("/?", url.target(parse_ok("http://h?")))
    end)
  end)

  describe("join", function()
    it("strings or parsed URLs", function()
      assert.equal("http://h/a/c", join_str("http://h/a/b", "c"))
      assert.equal("http://h/a/c", url.tostring(url.join(parse_ok("http://h/a/b"), parse_ok("c"))))
    end)

    it("a base_url with a trailing slash keeps its path", function()
      assert.equal("http://127.0.0.1:8080/api/items", join_str("http://127.0.0.1:8080/api/", "items"))
      assert.equal("http://127.0.0.1:8080/items", join_str("http://127.0.0.1:8080/api", "items"))
      assert.equal("http://127.0.0.1:8080/x", join_str("http://127.0.0.1:8080/api/", "/x"))
    end)

    it("a ref with an authority keeps its own userinfo and port", function()
      assert.equal("http://u@o:81/p", join_str("http://a:1/b", "//u@o:81/p"))
      assert.equal("https://o/p", join_str("http://a:1/b", "https://o/p"))
    end)

    it("an empty base path resolves as '/'", function()
      assert.equal("http://h/g", join_str("http://h", "g"))
    end)

    it("an invalid base or ref returns nil, err", function()
      local u, err = url.join("http://h:99999/", "x")
      assert.is_nil(u)
      assert.is_true(err:is("InvalidURL"))
      u, err = url.join("http://h/", "http://a b/")
      assert.is_nil(u)
      assert.is_true(err:is("InvalidURL"))
    end)

    it("remove_dot_segments follows RFC 3986 5.2.4", function()
      local data = load_json(RFC3986)
      for _, case in ipairs(data.remove_dot_segments_5_2_4) do
        assert.equal(case[2], url.remove_dot_segments(case[1]))
      end
    end)
  end)

  describe("RFC 3986 section 5.4 examples", function()
    local data = load_json(RFC3986)
    local total, passed = 0, 0
    for _, section in ipairs { "normal_5_4_1", "abnormal_5_4_2" } do
      for _, case in ipairs(data[section]) do
        local ref, want = case[1], case[2]
        if want:match("^http://") then
          total = total + 1
          it(("%s: %q -> %s"):format(section, ref, want), function()
            assert.equal(want, join_str(data.base, ref))
            passed = passed + 1
          end)
        else
          it(("%s: %q -> %s (non-http result, strict parser)"):format(section, ref, want), function()
            assert.equal(want, join_str(data.base, ref))
          end)
        end
      end
    end

    it("every case with an http result passed", function()
      print(("\nRFC 3986 5.4: %d of %d http-result cases passed"):format(passed, total))
      assert.is_true(total >= 40)
      assert.equal(total, passed)
    end)
  end)

  describe("params", function()
    it("a map is encoded sorted by key", function()
      assert.equal("a=1&b=2&c=3", url.encode_form { c = 3, a = 1, b = 2 })
    end)

    it("a list of pairs keeps its order and may repeat keys", function()
      assert.equal("z=1&a=2&z=3", url.encode_form { { "z", 1 }, { "a", 2 }, { "z", 3 } })
    end)

    it("a list value repeats the key", function()
      assert.equal("a=x&a=y&b=1", url.encode_form { b = 1, a = { "x", "y" } })
    end)

    it("escapes as application/x-www-form-urlencoded", function()
      assert.equal("q=a+b%26c%3Dd%2B%C3%A9&k+x=-._~", url.encode_form { { "q", "a b&c=d+\195\169" }, { "k x", "-._~" } })
      assert.equal("q=a+b", url.encode_form { q = "a b" })
      assert.equal("%2F=%3F", url.encode_form { ["/"] = "?" })
    end)

    it("booleans and numbers become text", function()
      assert.equal("a=true&b=false&c=1.5", url.encode_form { a = true, b = false, c = 1.5 })
    end)

    it("bad values raise", function()
      assert.has_error(function() url.encode_form { a = function() end } end)
      assert.has_error(function() url.encode_form { a = { {} } } end)
      assert.has_error(function() url.encode_form { "a=1" } end)
    end)

    it("an empty table encodes to ''", function()
      assert.equal("", url.encode_form {})
    end)

    it("with_params appends to an existing query and leaves the input alone", function()
      local u = parse_ok("http://h/p?x=1#f")
      local c = url.with_params(u, { y = 2, a = "b c" })
      assert.equal("http://h/p?x=1&a=b+c&y=2#f", url.tostring(c))
      assert.equal("x=1", u.query)
    end)

    it("with_params on a URL without a query, and with a string", function()
      assert.equal("http://h/p?a=1", url.tostring(url.with_params(parse_ok("http://h/p"), { a = 1 })))
      assert.equal("http://h/p?a%20b=c", url.tostring(url.with_params(parse_ok("http://h/p"), "a b=c")))
      assert.equal("http://h/p", url.tostring(url.with_params(parse_ok("http://h/p"), {})))
    end)
  end)

  describe("host_header", function()
    it("omits the default port", function()
      assert.equal("example.com", url.host_header(parse_ok("http://example.com/")))
      assert.equal("example.com", url.host_header(parse_ok("http://example.com:80/")))
      assert.equal("example.com", url.host_header(parse_ok("https://example.com:443/")))
    end)

    it("keeps a non-default port", function()
      assert.equal("example.com:8080", url.host_header(parse_ok("http://example.com:8080/")))
      assert.equal("example.com:443", url.host_header(parse_ok("http://example.com:443/")))
      assert.equal("example.com:80", url.host_header(parse_ok("https://example.com:80/")))
      assert.equal("127.0.0.1:1", url.host_header(parse_ok("http://127.0.0.1:1/")))
    end)

    it("brackets IPv6 literals", function()
      assert.equal("[::1]", url.host_header(parse_ok("http://[::1]/")))
      assert.equal("[::1]", url.host_header(parse_ok("http://[::1]:80/")))
      assert.equal("[::1]:8080", url.host_header(parse_ok("http://[::1]:8080/")))
      assert.equal("[2001:db8::1]:80", url.host_header(parse_ok("https://[2001:DB8::1]:80/")))
    end)

    it("never includes userinfo", function()
      assert.equal("h:81", url.host_header(parse_ok("http://u:p@h:81/")))
    end)
  end)
end)
