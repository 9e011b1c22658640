-- lurl.url: parsing, RFC 3986 reference resolution, recomposition, checks.
local cjson = require "cjson"
local url = require "lurl.url"

local RFC3986 = "spec/vectors/url/rfc3986/rfc3986-5.4.json"
local URLTESTDATA = "spec/vectors/url/wpt/urltestdata.json"

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
      assert.equal("c+d", u.query) -- a query space is '+', as yarl writes it
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
        -- aiohttp 3.12: a redirect error, not an InvalidURL
        assert.is_true(rerr:is("RedirectClientError"))
        assert.is_false(rerr:is("InvalidURL"))
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
      -- an empty query is left out, as aiohttp sends it (yarl's raw_path_qs)
      assert.equal("/", url.target(parse_ok("http://h?")))
      assert.equal("/", url.target(parse_ok("http://h/?#f")))
    end)

    it("the default port is left out (RFC 3986 6.2.3), any other kept", function()
      assert.equal("http://h/", url.tostring(parse_ok("http://h:80/")))
      assert.equal("https://h/x", url.tostring(parse_ok("https://h:443/x")))
      assert.equal("http://h:443/", url.tostring(parse_ok("http://h:443/")))
      assert.equal(80, parse_ok("http://h:80/").port)
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
      assert.equal("q=a+b%26c%3Dd%2B%C3%A9&k+x=-._~", url.encode_form { { "q", "a b&c=d+\195\169" },
        { "k x", "-._~" } })
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
      assert.equal("http://h/p?a+b=c", url.tostring(url.with_params(parse_ok("http://h/p"), "a b=c")))
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

  -- What aiohttp puts on the request line and in Host for a URL string:
  -- yarl's raw_path_qs and host, port (checked with yarl 1.8.2). The path and
  -- query are requoted: unsafe bytes encoded, escapes upper-cased, escapes of
  -- characters allowed raw decoded, protected ones ('/' '+' in a path,
  -- '=' '+' '&' ';' in a query) kept encoded, a stray '%' encoded as %25.
  describe("parse with encoded = true (a Location under requote_redirect_url = false)", function()
    local ENCODED = { encoded = true }
    local vectors = {
      -- as written: escapes of unreserved bytes, lower-case hex, invalid escapes
      { "http://h/a%7Eb/%7e?q=%7E%41%2f&x=%zz#f%7E", "/a%7Eb/%7e?q=%7E%41%2f&x=%zz", "f%7E" },
      { "http://h/p?q=a+b&c=d%20e", "/p?q=a+b&c=d%20e" },
      -- what cannot go in a request line is still encoded
      { "http://h/a b/é?x=[y]", "/a%20b/%C3%A9?x=%5By%5D" },
      -- dot segments go as RFC 3986 section 5.2.4 says
      { "http://h/a/./b/../c%7E", "/a/c%7E" },
    }
    for _, v in ipairs(vectors) do
      it(v[1], function()
        local u = assert(url.parse(v[1], ENCODED))
        assert.are.equal(v[2], url.target(u))
        if v[3] then assert.are.equal(v[3], u.fragment) end
        -- idempotent: the text it gives parses to itself
        assert.are.equal(url.tostring(u), url.tostring(assert(url.parse(url.tostring(u), ENCODED))))
      end)
    end

    it("leaves the default parse requoting", function()
      assert.are.equal("/a~b/~?q=~A/&x=%25zz", url.target(parse_ok("http://h/a%7Eb/%7e?q=%7E%41%2f&x=%zz")))
    end)

    it("still rejects control characters and bad hosts", function()
      assert.is_nil(url.parse("http://h/a\r\nb", ENCODED))
      assert.is_nil(url.parse("http://[::1/", ENCODED))
    end)
  end)

  describe("request target and Host as yarl", function()
    local vectors = {
      { "http://h/%7efoo/%2f/%41%zz/%/a b/é?q=%7e%2b%3d%26 x+y/é#f%7e",
        "/~foo/%2F/A%25zz/%25/a%20b/%C3%A9?q=~%2B%3D%26+x+y/%C3%A9", "h" },
      { "http://h/a%2", "/a%252", "h" },
      { "http://h/a%", "/a%25", "h" },
      { "http://h/%%41", "/%25A", "h" },
      { "http://h/?a=%2", "/?a=%252", "h" },
      { "http://h/p?q=a%20b&c=d+e", "/p?q=a%20b&c=d+e", "h" },
      { "http://h/[x]{y}|z^`\"<>", "/%5Bx%5D%7By%7D%7Cz%5E%60%22%3C%3E", "h" },
      { "http://h/?[x]{y}|z^`\"<>'", "/?%5Bx%5D%7By%7D%7Cz%5E%60%22%3C%3E'", "h" },
      { "http://h/%E2%82%ac?%e2%82%AC", "/%E2%82%AC?%E2%82%AC", "h" },
      { "http://h/a/./b/../c/%2E%2E/d", "/a/d", "h" },
      { "http://h/ä?ä#ä", "/%C3%A4?%C3%A4", "h" },
      { "http://h/?", "/", "h" },
      { "http://h/#frag", "/", "h" },
      { "http://h", "/", "h" },
      { "http://h/;a=b,c", "/;a=b,c", "h" },
      { "http://h/a+b?a+b", "/a+b?a+b", "h" },
      { "http://h/~!$&'()*+,;=:@", "/~!$&'()*+,;=:@", "h" },
      { "http://h/?~!$&'()*+,;=:@/?", "/?~!$&'()*+,;=:@/?", "h" },
      { "http://H.Example.COM:8080/", "/", "h.example.com:8080" },
      { "http://[::1]/", "/", "[::1]" },
      { "http://[0:0::1]:80/", "/", "[::1]" },
      { "http://[FE80::A:0:0:0:1]:8443/", "/", "[fe80:0:0:a::1]:8443" },
      { "http://[::ffff:1.2.3.4]/", "/", "[::ffff:102:304]" },
      { "http://Bücher.example/", "/", "xn--bcher-kva.example" },
      { "https://faß.de:443/x", "/x", "xn--fa-hia.de" },
      { "http://u:p@h:81/a", "/a", "h:81" },
      { "http://h/a//b", "/a//b", "h" },
      { "http://h/%2e", "/", "h" },
      { "http://h/a/%2e%2E/b", "/b", "h" },
      { "http://h/a/b/..", "/a/", "h" },
      { "http://h/%2F%2f?%3d%3D=%26", "/%2F%2F?%3D%3D=%26", "h" },
      { "http://h/?a=1&b=2#x", "/?a=1&b=2", "h" },
    }
    for _, v in ipairs(vectors) do
      it(("%q"):format(v[1]), function()
        local u = assert(url.check_http(parse_ok(v[1]), v[1]))
        assert.equal(v[2], url.target(u))
        assert.equal(v[3], url.host_header(u))
      end)
    end

    it("an encoded URL is not encoded twice", function()
      for _, v in ipairs(vectors) do
        local once = url.tostring(parse_ok(v[1]))
        local twice = parse_ok(once)
        assert.equal(once, url.tostring(twice), v[1])
        assert.equal(v[2], url.target(twice), v[1])
      end
    end)

    it("the fragment never reaches the target", function()
      local u = parse_ok("http://h/p?q#f?g")
      assert.equal("f?g", u.fragment)
      assert.equal("/p?q", url.target(u))
      assert.equal("/p?q&a=1", url.target(url.with_params(u, { a = 1 })))
    end)

    it("the fragment is requoted too", function()
      assert.equal("a%20b%23c/?:@", parse_ok("http://h/#a b#c/?:@").fragment)
    end)

    it("dot segments stay in a relative reference until it is resolved", function()
      assert.equal("../a/./b", parse_ok("../a/./b").path)
      assert.equal("/a/b", parse_ok("//h/x/../a/./b").path)
    end)
  end)

  describe("hosts", function()
    local function bad_host(s, pattern)
      local u, err = url.parse(s)
      assert.is_nil(u, s)
      assert.equal("InvalidUrlClientError", err.kind, s)
      assert.matches(pattern, err.message, 1, true)
      return err
    end

    it("Unicode names become punycode, the Host header is ASCII", function()
      local u = parse_ok("https://Bücher.Example:8443/x")
      assert.equal("xn--bcher-kva.example", u.host)
      assert.equal("xn--bcher-kva.example:8443", url.host_header(u))
      assert.equal("https://xn--bcher-kva.example:8443/x", url.tostring(u))
      assert.equal("xn--6qqa088eba", parse_ok("http://你好你好/").host)
      assert.equal("go.com", parse_ok("http://Ｇｏ.com/").host) -- fullwidth, UTS #46 mapping
      assert.equal("www.foo.bar.com", parse_ok("http://www.foo。bar.com/").host)
    end)

    it("escapes in a host stand for UTF-8 and are decoded", function()
      assert.equal("xn--bcher-kva.example", parse_ok("http://B%C3%BCcher.example/").host)
      assert.equal("a.com", parse_ok("http://%41.com/").host)
    end)

    it("a host is lower-cased", function()
      assert.equal("example.com", parse_ok("http://ExAmPlE.CoM/").host)
    end)

    it("invalid names are InvalidUrlClientError naming the problem", function()
      bad_host("http://☃.net/", "IDNA")
      bad_host("http://xn--ü.de/", "IDNA")
      bad_host("http://a%C2%AD%E2%80%8D.com/", "IDNA") -- a ZERO WIDTH JOINER out of context
      bad_host("http://%C2%AD/", "maps to nothing")
      bad_host("http://ho%2Fst/", "'/'")
      bad_host("http://ho%00st/", "byte 0x00")
      bad_host("http://％４１.com/", "'%'") -- fullwidth "%41" maps to a '%'
      bad_host("http://a%zz/", "percent-encoding")
      bad_host("http://a b/", "' '")
      bad_host("http://[fe80::1%25eth0]/", "zone")
      bad_host("http://[v1.x]/", "IPvFuture")
      bad_host("http://[1:2:3:4:5:6:7:8:9]/", "invalid IPv6")
      bad_host("http://[::1.2.3.256]/", "invalid IPv6")
      bad_host("http://[::01.2.3.4]/", "invalid IPv6")
      bad_host("http://[1::2::3]/", "invalid IPv6")
    end)

    it("IPv4 in the forms the resolver reads (RFC 3986 7.4) is written in dotted decimal", function()
      local cases = {
        { "127.0.0.1", "127.0.0.1" }, { "0x7f.1", "127.0.0.1" }, { "0177.0.0.1", "127.0.0.1" },
        { "2130706433", "127.0.0.1" }, { "127.0.0.01", "127.0.0.1" }, { "1.2.3.4.", "1.2.3.4" },
        { "192.168.257", "192.168.1.1" }, { "0XFFFFFFFF", "255.255.255.255" }, { "%31%32%37.1", "127.0.0.1" },
      }
      for _, c in ipairs(cases) do
        local u = parse_ok("http://" .. c[1] .. ":8080/")
        assert.equal(c[2], u.host, c[1])
        assert.equal(c[2] .. ":8080", url.host_header(u), c[1])
      end
      -- a name whose last label is not a number stays a name
      assert.equal("1.2.3.com", parse_ok("http://1.2.3.com/").host)
      assert.equal("0x7f.example", parse_ok("http://0x7f.example/").host)
    end)

    it("a host ending in a number that is no IPv4 address is an error", function()
      for _, h in ipairs { "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "4294967296", "09.1.1.1", "0x100000000", "1..2.3" } do
        bad_host("http://" .. h .. "/", "invalid IPv4 address")
      end
    end)

    it("IPv6 literals are written as RFC 5952 says", function()
      local cases = {
        { "[0:0:0:0:0:0:0:1]", "::1" }, { "[1:0::]", "1::" }, { "[0::0]", "::" },
        { "[2001:DB8:0:0:1:0:0:1]", "2001:db8::1:0:0:1" }, { "[2001:db8:0:1:1:1:1:1]", "2001:db8:0:1:1:1:1:1" },
        { "[0:0:0:0:0:0:13.1.68.3]", "::d01:4403" }, { "[1:2:3:4:5:6:7::]", "1:2:3:4:5:6:7:0" },
        { "[0001:0002::0003]", "1:2::3" },
      }
      for _, c in ipairs(cases) do
        local u = parse_ok("http://" .. c[1] .. "/")
        assert.equal(c[2], u.host, c[1])
        assert.is_true(u.ipv6)
      end
    end)
  end)

  describe("userinfo", function()
    it("user and password are kept percent-decoded", function()
      local u = parse_ok("http://us%65r:p%40ss%3Aw%C3%B6rd@h/")
      assert.equal("user", u.user)
      assert.equal("p@ss:w\195\182rd", u.password)
      assert.equal("http://user:p%40ss%3Aw%C3%B6rd@h/", url.tostring(u))
    end)

    it("the password is everything after the first ':'", function()
      local u = parse_ok("http://u:p:q@h/")
      assert.equal("u", u.user)
      assert.equal("p:q", u.password)
    end)

    it("the host follows the last '@'", function()
      local u = parse_ok("http://a@b:c@d/")
      assert.equal("a@b", u.user)
      assert.equal("c", u.password)
      assert.equal("d", u.host)
    end)

    it("an empty user is none (as yarl), an empty password is kept", function()
      local u = parse_ok("http://@h/")
      assert.is_nil(u.user)
      assert.is_nil(u.password)
      u = parse_ok("http://:pw@h/")
      assert.is_nil(u.user)
      assert.equal("pw", u.password)
      assert.equal("http://:pw@h/", url.tostring(u))
      assert.equal("", parse_ok("http://u:@h/").password)
    end)

    it("never reaches the target nor Host", function()
      local u = parse_ok("http://u:p@h:81/a?b#c")
      assert.equal("/a?b", url.target(u))
      assert.equal("h:81", url.host_header(u))
    end)

    it("strip_userinfo returns a copy without it, and the credentials", function()
      local u = parse_ok("http://us%65r:p%40ss@h/a")
      local c, user, password = url.strip_userinfo(u)
      assert.equal("http://h/a", url.tostring(c))
      assert.equal("user", user)
      assert.equal("p@ss", password)
      assert.equal("user", u.user) -- the input is left alone
      local _, nu, np = url.strip_userinfo(parse_ok("http://h/"))
      assert.is_nil(nu)
      assert.is_nil(np)
    end)
  end)

  describe("join: strict and backward-compatible", function()
    it("strict by default (RFC 3986 5.2.2): a scheme in the reference wins", function()
      assert.equal("http:g", join_str("http://a/b/c/d;p?q", "http:g"))
    end)

    it("strict = false reads a same-scheme reference without authority as relative", function()
      assert.equal("http://a/b/c/g", url.tostring(url.join("http://a/b/c/d;p?q", "http:g", { strict = false })))
      assert.equal("https:g", url.tostring(url.join("http://a/b/c/d;p?q", "https:g", { strict = false })))
      assert.equal("http://o/p", url.tostring(url.join("http://a/b", "http://o/p", { strict = false })))
    end)
  end)

  describe("params as aiohttp", function()
    local function q(params, base)
      return url.target(url.with_params(parse_ok(base or "http://h/p"), params))
    end

    it("a map: names sorted, list values repeat the name", function()
      assert.equal("/p?a=1&b=x&b=y&c=", q { c = "", b = { "x", "y" }, a = 1 })
      assert.equal("/p", q { b = {} })
    end)

    it("a list of pairs keeps its order and may repeat names", function()
      assert.equal("/p?z=1&a=2&z=3", q { { "z", 1 }, { "a", 2 }, { "z", "3" } })
    end)

    it("names and values are encoded as yarl's query parts", function()
      assert.equal("/p?k+x=a+b%26c%3Dd%2Be%25f%3Bg/h?i:j@k%C3%A9", q { { "k x", "a b&c=d+e%f;g/h?i:j@k\195\169" } })
    end)

    it("numbers: integral ones without a fraction, others as short as they read back", function()
      -- "1e+300" as yarl quotes it: a '+' in a value is data
      assert.equal("/p?a=2&b=1.5&c=0.1&d=-3&e=1e%2B300", q { { "a", 2 }, { "b", 1.5 }, { "c", 0.1 }, { "d", -3 },
        { "e", 1e300 } })
    end)

    it("a string is requoted as a query, never encoded twice", function()
      assert.equal("/p?q=1&r=two", q "q=1&r=two")
      assert.equal("/p?key=value+1", q "key=value+1")
      assert.equal("/p?a=%20b+c&d=%25", q "a=%20b c&d=%")
      assert.equal("/p", q "")
    end)

    it("extends an existing query as aiohttp (yarl's extend_query)", function()
      assert.equal("/p?x=0&y=1", q({ y = 1 }, "http://h/p?x=0"))
      assert.equal("/p?x=0&y=1", q({ y = 1 }, "http://h/p?x=0&"))
      assert.equal("/p?y=1", q({ y = 1 }, "http://h/p?"))
      assert.equal("/p?x=1&x=2", q({ x = 2 }, "http://h/p?x=1"))
      assert.equal("/p?x=0", q({}, "http://h/p?x=0"))
    end)

    local function raises(params, pattern)
      local ok, err = pcall(url.with_params, parse_ok("http://h/"), params)
      assert.is_false(ok)
      assert.matches(pattern, err, 1, true)
    end

    it("booleans are refused as aiohttp does, naming the field", function()
      raises({ flag = true }, "'flag'")
      raises({ { "on", false } }, "'on'")
      raises({ list = { "a", true } }, "'list'")
    end)

    it("missing values, bad names, inf and nan are refused", function()
      raises({ { "a" } }, "'a'")
      raises({ { 1, "x" } }, "item 1")
      raises({ "a=1" }, "item 1")
      raises({ [1] = { "a", 1 }, b = 2 }, "named fields")
      raises({ [5] = "x" }, "names must be strings")
      raises({ a = math.huge }, "finite")
      raises({ a = 0 / 0 }, "finite")
      raises({ a = function() end }, "'a'")
    end)
  end)

  -- WHATWG URL vectors (web-platform-tests urltestdata.json): the joining
  -- cases of http(s), i.e. an http(s) base and an http(s) result or a
  -- failure for an input without a scheme or with http(s). WHATWG is not
  -- RFC 3986: a case that fails only because of one of the WHATWG rules
  -- below is counted under that rule and does not fail the spec. Each rule
  -- is tested on the case itself, so a wrong answer to anything else fails.
  describe("WHATWG urltestdata.json, http(s) joining cases", function()
    local data = load_json(URLTESTDATA)
    local null = cjson.null

    local function scheme_of(s)
      local m = s:match("^[%z\1- ]*([%a][%w+.-]*):")
      return m and m:lower()
    end

    local function selected(c)
      if type(c) ~= "table" or c.base == null or not c.base:match("^https?:") then return false end
      if c.failure then
        local sc = scheme_of(c.input)
        return sc == nil or sc == "http" or sc == "https"
      end
      return c.href:match("^https?:") ~= nil
    end

    -- lurl's answer: the joined URL (strict = false, as yarl and WHATWG read
    -- "http:g") that check_http accepts, or nil.
    local function answer(c)
      local r = url.join(c.base, c.input, { strict = false })
      return r and url.check_http(r, c.input) or nil
    end

    -- The href with an empty path written "/" (WHATWG's special URLs).
    local function with_root(r)
      if not (r.host and r.path == "") then return url.tostring(r) end
      local c = {}
      for k, v in pairs(r) do c[k] = v end
      c.path = "/"
      return url.tostring(c)
    end

    -- WHATWG's answer in lurl's canonical form (parsed and written again).
    local function canonical(href)
      local u = url.parse(href)
      return u and with_root(u)
    end

    -- r written with a query '+' as %20, for an input with a space in its query.
    local function space_as_pct20(c, r)
      if not (r.query and c.input:match("^[^#]*%?[^#]* ")) then return nil end
      local q = {}
      for k, v in pairs(r) do q[k] = v end
      q.query = r.query:gsub("+", "%%20")
      return with_root(q)
    end

    -- The WHATWG-only rules, in the order they are tried on a failing case.
    local WHATWG_ONLY = {
      { "control characters: lurl rejects them (InvalidURL) so none reaches a request; WHATWG strips tab, LF, CR "
          .. "and leading/trailing C0 and encodes the rest",
        function(c) return c.input:find("[%z\1-\31\127]") ~= nil end },
      { "backslash: WHATWG reads '\\' as '/' in special URLs; RFC 3986 has no such rule",
        function(c) return c.input:find("\\", 1, true) ~= nil end },
      { "special-scheme slashes: WHATWG finds the host of an http(s) URL after any number of '/' "
          .. "(\"https:example.com\", \"///host\"); RFC 3986 needs exactly \"//\"",
        function(c)
          local sc, rest = c.input:match("^([%a][%w+.-]*):(.*)$")
          if sc and sc:lower() ~= scheme_of(c.base) then return not rest:match("^//[^/]") end
          return c.input:match("^///") ~= nil
        end },
      { "empty path: WHATWG writes \"/\" after an http(s) host; RFC 3986 5.3 (\"//g\" -> \"http://g\" in 5.4) "
          .. "and yarl's str leave it empty",
        function(c, r) return r ~= nil and not c.failure and with_root(r) == c.href end },
      { "RFC 3986 6.2.2 normalisation: escapes upper-cased, and [ ] { } | ^ ` # encoded where WHATWG leaves them raw",
        function(c, r) return r ~= nil and not c.failure and with_root(r) == canonical(c.href) end },
      { "query space: '+' as yarl writes it, where WHATWG writes %20",
        function(c, r) return r ~= nil and not c.failure and space_as_pct20(c, r) == canonical(c.href) end },
    }

    local total, passed, failures = 0, 0, {}
    local explained = {}
    for _, rule in ipairs(WHATWG_ONLY) do explained[rule[1]] = 0 end

    local function check(c)
      local r = answer(c)
      if c.failure then
        if r == nil then return true end
      elseif r and url.tostring(r) == c.href then
        -- the parts too, where WHATWG's names have an RFC 3986 counterpart
        assert.equal(c.pathname, r.path, c.input)
        assert.equal(c.search, (r.query and r.query ~= "") and "?" .. r.query or "", c.input)
        assert.equal(c.hostname, r.ipv6 and "[" .. r.host .. "]" or r.host, c.input)
        return true
      end
      for _, rule in ipairs(WHATWG_ONLY) do
        if rule[2](c, r) then explained[rule[1]] = explained[rule[1]] + 1; return false end
      end
      failures[#failures + 1] = ("%q against %q: want %s, got %s"):format(c.input, c.base,
        c.failure and "failure" or c.href, r and url.tostring(r) or "an error")
      return false
    end

    it("every case passes or fails for a listed WHATWG-only rule", function()
      for _, c in ipairs(data) do
        if selected(c) then
          total = total + 1
          if check(c) then passed = passed + 1 end
        end
      end
      print(("\nurltestdata http(s) joining: %d of %d pass"):format(passed, total))
      for _, rule in ipairs(WHATWG_ONLY) do
        if explained[rule[1]] > 0 then print(("  %3d  %s"):format(explained[rule[1]], rule[1])) end
      end
      assert.is_true(total >= 150)
      assert.same({}, failures)
    end)
  end)
end)
