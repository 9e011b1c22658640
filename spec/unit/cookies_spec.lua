-- lurl.cookies: RFC 6265 section 5 and aiohttp's CookieJar choices, the
-- IETF http-state parser suite and its RFC 6265bis revision, the cookie date
-- vectors, and cookies.txt as curl writes it.
local cjson = require "cjson"
local cookies = require "lurl.cookies"
local httpdate = require "lurl.httpdate"
local url = require "lurl.url"

local suites = require "spec.cookie_suites"
local PARSER, BIS, SUITE_TIME, trim = suites.PARSER, suites.BIS, suites.SUITE_TIME, suites.trim
local read_case, case_names, read_file = suites.read_case, suites.case_names, suites.read_file

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- A jar on a clock the test moves: jar, clock where clock.now is the time.
local function jar_at(t, opts)
  local clock = { now = t or SUITE_TIME }
  opts = opts or {}
  opts.clock = function() return clock.now end
  return cookies.jar(opts), clock
end

local function names_of(list)
  local out = {}
  for i, c in ipairs(list) do out[i] = c.name end
  return table.concat(out, ",")
end

local function days_from_civil(y, m, d)
  local days = 0
  for yy = 1970, y - 1 do days = days + (((yy % 4 == 0 and yy % 100 ~= 0) or yy % 400 == 0) and 366 or 365) end
  for yy = y, 1969 do days = days - (((yy % 4 == 0 and yy % 100 ~= 0) or yy % 400 == 0) and 366 or 365) end
  local lengths = { 31, ((y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31,
    30, 31 }
  for mm = 1, m - 1 do days = days + lengths[mm] end
  return days + d - 1
end

-- "Wed, 09 Dec 2009 16:27:23 GMT" -> epoch, counted here independently of
-- the module (the vectors' weekdays are not always right, and do not count).
local MON = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11,
  Dec = 12 }
local function http_date(s)
  local d, mon, y, h, mi, sec = s:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  assert(d, "bad expected date " .. s)
  return days_from_civil(tonumber(y), MON[mon], tonumber(d)) * 86400 + h * 3600 + mi * 60 + sec
end

-- At the jar level: the Set-Cookie values straight into update_from_headers.
local function run_case(case)
  local jar = jar_at(SUITE_TIME)
  jar:update_from_headers(case.values, case.base)
  return jar:cookie_header(case.target)
end

describe("lurl.cookies", function()
  describe("http-state parser suite (RFC 6265)", function()
    suites.suite("http-state parser", PARSER, {}, nil, run_case)

    it("the raw files say what parser.json says", function()
      local by_test = {}
      for _, c in ipairs(cjson.decode(read_file(suites.HTTP_STATE .. "/parser.json"))) do by_test[c.test] = c end
      local names = case_names(PARSER)
      assert.equal(222, #names)
      for _, name in ipairs(names) do
        local case = read_case(PARSER, name)
        local j = assert(by_test[name:upper():gsub("-", "_")], name .. " missing from parser.json")
        local received = {}
        for i, v in ipairs(j.received) do received[i] = trim(v) end
        assert.same(received, case.values, name)
        local sent = {}
        for i, c in ipairs(j.sent) do sent[i] = c.name .. "=" .. c.value end
        assert.equal(#sent > 0 and table.concat(sent, "; ") or nil, case.expected, name)
        if j["sent-to"] then
          assert.equal(url.tostring(assert(url.join(case.base, j["sent-to"]))), case.target, name)
        end
      end
    end)
  end)

  describe("RFC 6265bis parser suite (web-platform-tests 2020)", function()
    suites.suite("6265bis parser", BIS, suites.BIS_SKIPS, PARSER, run_case)
  end)

  describe("cookie date vectors (5.1.1)", function()
    local total, passed = 0, 0
    for _, file in ipairs { "examples.json", "bsd-examples.json" } do
      -- bsd-examples.json starts with a // licence header
      local text = read_file(suites.HTTP_STATE .. "/dates/" .. file):gsub("^%s*//[^\n]*", ""):gsub("\n%s*//[^\n]*", "")
      for _, v in ipairs(cjson.decode(text)) do
        total = total + 1
        local want = v.expected ~= cjson.null and http_date(v.expected) or nil
        it(("%s: %q -> %s"):format(file, v.test, tostring(v.expected)), function()
          assert.equal(want, httpdate.parse(v.test))
          passed = passed + 1
        end)
      end
    end
    it("every date vector passed", function()
      print(("\ncookie dates: %d of %d pass"):format(passed, total))
      assert.equal(70, total)
      assert.equal(total, passed)
    end)
  end)

  describe("lurl.httpdate.parse", function()
    local base = http_date("Mon, 03 Jan 2011 04:05:06 GMT")
    it("two-digit years: 70-99 are 19xx, 00-69 are 20xx", function()
      assert.equal(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), httpdate.parse("1 Jan 70 00:00:00"))
      assert.equal(http_date("Sat, 01 Jan 2069 00:00:00 GMT"), httpdate.parse("1 Jan 69 00:00:00"))
      assert.equal(base, httpdate.parse("3 Jan 11 04:05:06"))
    end)
    it("tokens may come in any order; the first of each kind counts", function()
      assert.equal(base, httpdate.parse("04:05:06 2011 jan 3"))
      assert.equal(base, httpdate.parse("3 January 2011 04:05:06 05:06:07 1999"))
    end)
    it("out-of-range fields and dates that do not exist fail", function()
      assert.is_nil(httpdate.parse("3 Jan 1600 04:05:06"))
      assert.is_nil(httpdate.parse("3 Jan 2011 24:05:06"))
      assert.is_nil(httpdate.parse("3 Jan 2011 04:60:06"))
      assert.is_nil(httpdate.parse("3 Jan 2011 04:05:60"))
      assert.is_nil(httpdate.parse("0 Jan 2011 04:05:06"))
      assert.is_nil(httpdate.parse("32 Jan 2011 04:05:06"))
      assert.is_nil(httpdate.parse("29 Feb 2011 04:05:06"))
      assert.is_nil(httpdate.parse("31 Apr 2011 04:05:06"))
      assert.equal(http_date("Tue, 29 Feb 2000 00:00:00 GMT"), httpdate.parse("29 Feb 2000 00:00:00"))
    end)
    it("a missing field fails", function()
      assert.is_nil(httpdate.parse("Jan 2011 04:05:06"))
      assert.is_nil(httpdate.parse("3 2011 04:05:06"))
      assert.is_nil(httpdate.parse("3 Jan 04:05:06"))
      assert.is_nil(httpdate.parse("3 Jan 2011"))
      assert.is_nil(httpdate.parse(""))
    end)
    it("dates before 1970 are negative", function()
      assert.equal(-86400, httpdate.parse("31 Dec 1969 00:00:00"))
    end)
    it("raises for a non-string", function()
      assert.has_error(function() httpdate.parse(nil) end, "bad argument #1 to 'parse' (string expected, got nil)")
    end)
  end)

  describe("Set-Cookie parsing (5.2)", function()
    local function one(line, from)
      local jar = jar_at()
      local stored = jar:update_from_headers({ line }, from or "http://www.example.com/dir/page")
      return stored[1], jar
    end

    it("name and value are trimmed; the value may be empty or hold '='", function()
      local c = one(" a = b=c ; Path=/")
      assert.equal("a", c.name)
      assert.equal("b=c", c.value)
      assert.equal("", one("e=").value)
    end)

    it("strings without '=' or with an empty name are ignored", function()
      assert.is_nil(one("foo"))
      assert.is_nil(one("=foo"))
      assert.is_nil(one(" =foo"))
    end)

    it("what follows NUL, CR or LF is not part of the cookie", function()
      assert.equal("b", one("a=b\0c").value)
      assert.equal("b", one("a=b\rc; Secure").value)
      assert.is_false(one("a=b\nc; Secure").secure)
    end)

    it("a name and value longer than 4096 bytes together are refused", function()
      assert.is_nil((one("a=" .. ("x"):rep(4096))))
      assert.equal(4095, #one("a=" .. ("x"):rep(4095)).value)
    end)

    it("attribute names are case-insensitive", function()
      local c = one("a=b; SECURE; hTTpOnly; path=/x; DOMAIN=Example.COM; max-AGE=10; SameSite=STRICT")
      assert.is_true(c.secure)
      assert.is_true(c.http_only)
      assert.equal("/x", c.path)
      assert.equal("example.com", c.domain)
      assert.equal(SUITE_TIME + 10, c.expires)
      assert.equal("Strict", c.same_site)
    end)

    it("the last of an attribute wins", function()
      local c = one("a=b; Path=/one; Path=/two; Domain=www.example.com; Domain=example.com")
      assert.equal("/two", c.path)
      assert.equal("example.com", c.domain)
      c = one("a=b; Expires=Wed, 01 Jan 2020 00:00:00 GMT; Expires=Thu, 01 Jan 2015 00:00:00 GMT")
      assert.equal(http_date("Thu, 01 Jan 2015 00:00:00 GMT"), c.expires)
      assert.equal("Lax", one("a=b; SameSite=Strict; SameSite=Lax").same_site)
      assert.is_nil(one("a=b; SameSite=Strict; SameSite=bogus").same_site)
    end)

    it("attributes that do not parse are ignored and leave the earlier one", function()
      local c = one("a=b; Max-Age=10; Max-Age=1.5; Max-Age=x; Max-Age=")
      assert.equal(SUITE_TIME + 10, c.expires)
      c = one("a=b; Expires=Thu, 01 Jan 2015 00:00:00 GMT; Expires=never")
      assert.equal(http_date("Thu, 01 Jan 2015 00:00:00 GMT"), c.expires)
      assert.equal("example.com", one("a=b; Domain=example.com; Domain=").domain)
    end)

    it("Max-Age wins over Expires in either order", function()
      assert.equal(SUITE_TIME + 60, one("a=b; Max-Age=60; Expires=Thu, 01 Jan 2015 00:00:00 GMT").expires)
      assert.equal(SUITE_TIME + 60, one("a=b; Expires=Thu, 01 Jan 2015 00:00:00 GMT; Max-Age=60").expires)
    end)

    it("Max-Age of zero or less, and a past Expires, store nothing", function()
      assert.is_nil(one("a=b; Max-Age=0"))
      assert.is_nil(one("a=b; Max-Age=-5"))
      assert.is_nil(one("a=b; Expires=Thu, 01 Jan 1970 00:00:01 GMT"))
    end)

    it("without Max-Age and Expires a cookie is a session cookie", function()
      assert.is_nil(one("a=b").expires)
    end)

    it("the Domain's leading dot is removed", function()
      local c = one("a=b; Domain=.example.com")
      assert.equal("example.com", c.domain)
      assert.is_false(c.host_only)
    end)

    it("without Path the default path is the request path's directory (5.1.4)", function()
      assert.equal("/dir", one("a=b", "http://h.example/dir/page").path)
      assert.equal("/dir/sub", one("a=b", "http://h.example/dir/sub/").path)
      assert.equal("/", one("a=b", "http://h.example/page").path)
      assert.equal("/", one("a=b", "http://h.example/").path)
      assert.equal("/", one("a=b", "http://h.example").path)
      assert.equal("/", one("a=b", "http://h.example?x=/a/b").path)
      assert.equal("/dir", one("a=b; Path=relative", "http://h.example/dir/page").path)
      assert.equal("/dir", one("a=b; Path=", "http://h.example/dir/page").path)
    end)

    it("cookies.parse_set_cookie exposes the parser", function()
      local name, value, attrs = cookies.parse_set_cookie("k=v; Max-Age=5; Path=/p; HttpOnly", 100)
      assert.equal("k", name)
      assert.equal("v", value)
      assert.same({ max_age = 105, path = "/p", http_only = true }, attrs)
      assert.is_nil(cookies.parse_set_cookie("novalue"))
    end)
  end)

  describe("domains (5.1.3, 5.3 steps 4-6)", function()
    it("a cookie without Domain is host-only", function()
      local jar = jar_at()
      local c = jar:update_from_headers({ "a=b; Path=/" }, "http://www.example.com/")[1]
      assert.is_true(c.host_only)
      assert.equal("www.example.com", c.domain)
      assert.equal("a=b", jar:cookie_header("http://www.example.com/"))
      assert.is_nil(jar:cookie_header("http://sub.www.example.com/"))
      assert.is_nil(jar:cookie_header("http://example.com/"))
    end)

    it("a domain cookie goes to the domain and the names below it", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=b; Domain=example.com; Path=/" }, "http://www.example.com/")
      assert.equal("a=b", jar:cookie_header("http://example.com/"))
      assert.equal("a=b", jar:cookie_header("http://www.example.com/"))
      assert.equal("a=b", jar:cookie_header("http://deep.sub.example.com/"))
      assert.is_nil(jar:cookie_header("http://badexample.com/"))
      assert.is_nil(jar:cookie_header("http://example.org/"))
    end)

    it("a Domain that the request host does not domain-match is refused", function()
      local jar = jar_at()
      assert.same({}, jar:update_from_headers({ "a=b; Domain=other.com", "c=d; Domain=sub.www.example.com",
        "e=f; Domain=ample.com", "g=h; Domain=www.example.com." }, "http://www.example.com/"))
      assert.equal(0, #jar)
    end)

    it("Domain and host compare case-insensitively", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=b; Domain=EXAMPLE.com; Path=/" }, "http://WWW.Example.COM/")
      assert.equal("a=b", jar:cookie_header("http://www.EXAMPLE.com/"))
    end)

    it("a public suffix as Domain is refused", function()
      local jar = jar_at()
      assert.same({}, jar:update_from_headers({ "a=b; Domain=com" }, "http://www.example.com/"))
      assert.same({}, jar:update_from_headers({ "a=b; Domain=co.uk" }, "http://www.example.co.uk/"))
      assert.same({}, jar:update_from_headers({ "a=b; Domain=.github.io" }, "http://user.github.io/"))
      assert.equal(1, #jar:update_from_headers({ "a=b; Domain=example.co.uk" }, "http://www.example.co.uk/"))
    end)

    it("a public suffix that is the request host itself gives a host-only cookie (5.3 step 5)", function()
      local jar = jar_at()
      local c = jar:update_from_headers({ "a=b; Domain=github.io; Path=/" }, "http://github.io/")[1]
      assert.is_true(c.host_only)
      assert.equal("github.io", c.domain)
      assert.equal("a=b", jar:cookie_header("http://github.io/"))
      assert.is_nil(jar:cookie_header("http://user.github.io/"))
    end)

    it("IDNA: a Domain in Unicode is canonicalized to A-labels (5.1.2)", function()
      local jar = jar_at()
      local c = jar:update_from_headers({ "a=b; Domain=Bücher.example; Path=/" },
        "http://www.xn--bcher-kva.example/")[1]
      assert.equal("xn--bcher-kva.example", c.domain)
      assert.equal("a=b", jar:cookie_header("http://shop.xn--bcher-kva.example/"))
      assert.equal("a=b", jar:cookie_header({ scheme = "http", host = "shop.bücher.example", path = "/" }))
    end)
  end)

  describe("IP-address hosts (aiohttp)", function()
    it("get no cookies without unsafe", function()
      local jar = jar_at()
      assert.same({}, jar:update_from_headers({ "a=b" }, "http://127.0.0.1/"))
      assert.same({}, jar:update_from_headers({ "a=b" }, "http://[::1]:8080/"))
      assert.same({}, jar:update_cookies({ a = "b" }, "http://10.0.0.1/"))
      assert.equal(0, #jar)
    end)

    it("get cookies with unsafe = true, for the address itself only", function()
      local jar = jar_at(nil, { unsafe = true })
      jar:update_from_headers({ "a=b; Path=/" }, "http://127.0.0.1:8080/")
      jar:update_from_headers({ "c=d; Domain=127.0.0.1; Path=/" }, "http://127.0.0.1/")
      jar:update_from_headers({ "e=f; Domain=0.0.1; Path=/" }, "http://127.0.0.1/")
      jar:update_from_headers({ "g=h; Path=/" }, "http://[::1]/")
      assert.equal("a=b; c=d", jar:cookie_header("http://127.0.0.1:9999/"))
      assert.equal("g=h", jar:cookie_header("http://[::1]/"))
      assert.is_nil(jar:cookie_header("http://27.0.0.1/"))
    end)

    it("cookies of host names never go to an address", function()
      local jar = jar_at(nil, { unsafe = true })
      jar:update_from_headers({ "a=b; Domain=0.1; Path=/" }, "http://127.0.0.1/")
      assert.equal(0, #jar)
    end)
  end)

  describe("paths (5.1.4)", function()
    local jar = jar_at()
    jar:update_from_headers({ "a=1; Path=/docs", "b=2; Path=/docs/", "c=3; Path=/" }, "http://h.example/")
    local function sent(p) return jar:cookie_header("http://h.example" .. p) end

    it("a path matches itself and what lies below it", function()
      assert.equal("a=1; c=3", sent("/docs"))
      assert.equal("b=2; a=1; c=3", sent("/docs/"))
      assert.equal("b=2; a=1; c=3", sent("/docs/web/page"))
    end)

    it("but not a longer segment that merely starts with it", function()
      assert.equal("c=3", sent("/docsearch"))
      assert.equal("c=3", sent("/doc"))
    end)

    it("the query does not count, and an empty path is '/'", function()
      assert.equal("c=3", sent("?/docs/x"))
      assert.equal("c=3", sent(""))
    end)

    it("percent-escapes of unreserved characters in the request path are decoded", function()
      assert.equal("b=2; a=1; c=3", sent("/d%6Fcs/x"))
      assert.equal("c=3", sent("/docs%2Fx"))
    end)
  end)

  describe("Secure, HttpOnly and SameSite", function()
    it("Secure cookies go over https and wss only", function()
      local jar = jar_at()
      jar:update_from_headers({ "s=1; Secure; Path=/", "p=2; Path=/" }, "http://h.example/")
      assert.equal("p=2", jar:cookie_header("http://h.example/"))
      assert.equal("s=1; p=2", jar:cookie_header("https://h.example/"))
      assert.equal("s=1; p=2", jar:cookie_header("wss://h.example/"))
      assert.equal("p=2", jar:cookie_header("ws://h.example/"))
    end)

    it("and to the origins in treat_as_secure_origin (aiohttp 3.10)", function()
      local jar = jar_at(nil, { treat_as_secure_origin = { "http://h.example:8080", "http://localhost/" } })
      jar:update_from_headers({ "s=1; Secure; Path=/" }, "http://h.example/")
      jar:update_from_headers({ "s=1; Secure; Path=/" }, "http://localhost/")
      assert.equal("s=1", jar:cookie_header("http://h.example:8080/a"))
      assert.is_nil(jar:cookie_header("http://h.example:8081/"))
      assert.is_nil(jar:cookie_header("http://h.example/"))
      assert.equal("s=1", jar:cookie_header("http://localhost:80/"))
      local one = jar_at(nil, { treat_as_secure_origin = "http://h.example" })
      one:update_from_headers({ "s=1; Secure" }, "http://h.example/")
      assert.equal("s=1", one:cookie_header("http://h.example/"))
    end)

    it("HttpOnly and SameSite are stored; HttpOnly cookies are sent (this is HTTP)", function()
      local jar = jar_at()
      local c = jar:update_from_headers({ "h=1; HttpOnly; SameSite=None; Secure" }, "https://h.example/")[1]
      assert.is_true(c.http_only)
      assert.equal("None", c.same_site)
      assert.equal("h=1", jar:cookie_header("https://h.example/"))
      assert.equal("h=1; Path=/; Secure; HttpOnly; SameSite=None", tostring(c))
    end)
  end)

  describe("expiry", function()
    it("a cookie whose expiry passed is removed", function()
      local jar, clock = jar_at(1000)
      jar:update_from_headers({ "a=1; Max-Age=10", "b=2" }, "http://h.example/")
      assert.equal(2, #jar)
      clock.now = 1010
      assert.equal("a=1; b=2", jar:cookie_header("http://h.example/"))
      clock.now = 1011
      assert.equal("b=2", jar:cookie_header("http://h.example/"))
      assert.equal(1, jar:count())
      for c in jar:iter() do assert.equal("b", c.name) end
    end)

    it("an expired Set-Cookie deletes the stored cookie", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=1; Path=/", "b=2; Path=/" }, "http://h.example/")
      jar:update_from_headers({ "a=gone; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT" }, "http://h.example/")
      jar:update_from_headers({ "b=; Path=/; Max-Age=0" }, "http://h.example/")
      assert.equal(0, #jar)
    end)

    it("deleting needs the same name, domain and path", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=1; Path=/" }, "http://h.example/")
      jar:update_from_headers({ "a=; Path=/other; Max-Age=0" }, "http://h.example/")
      jar:update_from_headers({ "a=; Path=/; Domain=h.example; Max-Age=0" }, "http://h.example/")
      assert.equal(0, #jar) -- a host-only cookie and a domain cookie share (name, domain, path)
      jar:update_from_headers({ "a=1; Path=/" }, "http://h.example/")
      jar:update_from_headers({ "a=; Path=/x; Max-Age=0" }, "http://h.example/")
      assert.equal(1, #jar)
    end)

    it("Expires far ahead is clamped to the year 9999", function()
      local jar = jar_at()
      local c = jar:update_from_headers({ "a=1; Max-Age=999999999999999999999" }, "http://h.example/")[1]
      assert.equal(253402300799, c.expires)
    end)
  end)

  describe("storage (5.3)", function()
    it("replacing a cookie keeps its creation time (step 11)", function()
      local jar, clock = jar_at(100)
      jar:update_from_headers({ "a=1; Path=/" }, "http://h.example/")
      clock.now = 200
      jar:update_from_headers({ "b=2; Path=/" }, "http://h.example/")
      clock.now = 300
      local c = jar:update_from_headers({ "a=3; Path=/; Secure" }, "http://h.example/")[1]
      assert.equal(100, c.creation)
      assert.is_true(c.secure)
      assert.equal("a=3; b=2", jar:cookie_header("https://h.example/"))
      assert.equal(2, #jar)
    end)

    it("the same name with another path or domain is another cookie", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=1; Path=/", "a=2; Path=/x", "a=3; Domain=h.example; Path=/x" },
        "http://www.h.example/")
      assert.equal(3, #jar)
      assert.equal("a=2; a=3; a=1", jar:cookie_header("http://www.h.example/x"))
    end)

    it("the Cookie header lists longer paths first, then earlier creation (5.4 step 2)", function()
      local jar, clock = jar_at(10)
      jar:update_from_headers({ "z=1; Path=/" }, "http://h.example/")
      clock.now = 20
      jar:update_from_headers({ "y=2; Path=/a/b", "x=3; Path=/a" }, "http://h.example/")
      clock.now = 30
      jar:update_from_headers({ "w=4; Path=/a/b" }, "http://h.example/")
      local list = jar:filter_cookies("http://h.example/a/b/c")
      assert.equal("y,w,x,z", names_of(list))
      assert.equal("y=2; w=4; x=3; z=1", jar:cookie_header("http://h.example/a/b/c"))
    end)

    it("filter_cookies updates last_access of the cookies it returns", function()
      local jar, clock = jar_at(10)
      jar:update_from_headers({ "a=1; Path=/", "b=2; Path=/b" }, "http://h.example/")
      clock.now = 50
      jar:filter_cookies("http://h.example/")
      local seen = {}
      for c in jar:iter() do seen[c.name] = c.last_access end
      assert.same({ a = 50, b = 10 }, seen)
    end)

    it("past the per-domain limit the least recently used cookie goes", function()
      local limit = cookies.MAX_PER_DOMAIN
      cookies.MAX_PER_DOMAIN = 3
      local ok, err = pcall(function()
        local jar, clock = jar_at(10)
        jar:update_from_headers({ "a=1", "b=2", "c=3" }, "http://h.example/")
        clock.now = 20
        jar:filter_cookies("http://h.example/")   -- all used at 20
        clock.now = 25
        jar:update_from_headers({ "b=4" }, "http://h.example/") -- b replaced: used at 25
        clock.now = 30
        jar:update_from_headers({ "d=5" }, "http://h.example/")
        assert.equal(3, #jar)
        assert.equal("b=4; c=3; d=5", jar:cookie_header("http://h.example/"))
        jar:update_from_headers({ "e=1" }, "http://other.example/")
        assert.equal(4, #jar)
      end)
      cookies.MAX_PER_DOMAIN = limit
      assert(ok, err)
    end)
  end)

  describe("update_cookies (aiohttp)", function()
    it("without a URL: shared cookies, sent to every host, path and scheme", function()
      local jar = jar_at()
      jar:update_cookies { token = "t1", lang = "en" }
      assert.equal("lang=en; token=t1", jar:cookie_header("http://a.example/x/y"))
      assert.equal("lang=en; token=t1", jar:cookie_header("https://b.example/"))
      assert.equal("lang=en; token=t1", jar:cookie_header("http://127.0.0.1/"))
      for c in jar:iter() do
        assert.equal("", c.domain)
        assert.equal("", c.path)
      end
    end)

    it("a list of pairs keeps its order", function()
      local jar = jar_at()
      jar:update_cookies { { "z", "1" }, { "a", "2" } }
      assert.equal("z=1; a=2", jar:cookie_header("http://h.example/"))
    end)

    it("with a URL: host-only cookies of its host, with its default path", function()
      local jar = jar_at()
      local stored = jar:update_cookies({ sid = "abc" }, "http://www.example.com/app/login")
      assert.is_true(stored[1].host_only)
      assert.equal("www.example.com", stored[1].domain)
      assert.equal("/app", stored[1].path)
      assert.equal("sid=abc", jar:cookie_header("http://www.example.com/app/x"))
      assert.is_nil(jar:cookie_header("http://www.example.com/"))
      assert.is_nil(jar:cookie_header("http://sub.www.example.com/app/x"))
    end)

    it("cookie objects keep their attributes, and are copied", function()
      local src = jar_at()
      src:update_from_headers({ "a=1; Domain=example.com; Path=/p; Secure; HttpOnly; Max-Age=100" },
        "https://www.example.com/")
      local list = src:filter_cookies("https://www.example.com/p")
      local jar = jar_at()
      local stored = jar:update_cookies(list)
      assert.are_not.equal(list[1], stored[1])
      local c = stored[1]
      assert.equal("example.com", c.domain)
      assert.is_false(c.host_only)
      assert.equal("/p", c.path)
      assert.is_true(c.secure and c.http_only)
      assert.equal(SUITE_TIME + 100, c.expires)
      assert.equal("a=1", jar:cookie_header("https://x.example.com/p"))
    end)

    it("cookie objects with a URL must domain-match it", function()
      local jar = jar_at()
      assert.same({}, jar:update_cookies({ { name = "a", value = "1", domain = "other.com" } },
        "http://www.example.com/"))
      assert.equal(1, #jar:update_cookies({ { name = "a", value = "1", domain = "example.com", path = "/" } },
        "http://www.example.com/"))
    end)

    it("a host's cookie wins over a shared cookie of the same name; shared ones come last", function()
      local jar = jar_at()
      jar:update_cookies { a = "shared", z = "shared" }
      jar:update_from_headers({ "a=host; Path=/", "b=host; Path=/" }, "http://h.example/")
      assert.equal("a=host; b=host; z=shared", jar:cookie_header("http://h.example/"))
      assert.equal("a=shared; z=shared", jar:cookie_header("http://other.example/"))
    end)

    it("quote_cookie = true quotes the script's values as Python's http.cookies does", function()
      local jar = jar_at()
      jar:update_cookies { { "plain", "a-b.c_d!#$%&'*+^`|~:" }, { "sp", "x y" }, { "semi", "a;b,c" },
        { "q", 'say "hi"\\' }, { "utf", "é€" } }
      assert.equal([[plain=a-b.c_d!#$%&'*+^`|~:; sp="x y"; semi="a\073b\054c"; q="say \"hi\"\\"; utf="\351€"]],
        jar:cookie_header("http://h.example/"))
    end)

    it("quote_cookie: empty values are quoted, bytes that are not UTF-8 escaped as Latin-1", function()
      local jar = jar_at()
      jar:update_cookies { { "e", "" }, { "bad", "a\255\195" }, { "emoji", "\240\159\141\170 x" } }
      assert.equal('e=""; bad="a\\377\\303"; emoji="\240\159\141\170 x"', jar:cookie_header("http://h.example/"))
      assert.equal("abc", cookies.quote("abc"))
    end)

    it("quote_cookie = false sends the script's values as they are", function()
      local jar = jar_at(nil, { quote_cookie = false })
      jar:update_cookies { { "sp", "x y" } }
      assert.equal("sp=x y", jar:cookie_header("http://h.example/"))
    end)

    it("values from Set-Cookie are sent exactly as received, quoted or not", function()
      local jar = jar_at()
      jar:update_from_headers({ 'a="x y"; Path=/', "b=x y; Path=/" }, "http://h.example/")
      assert.equal('a="x y"; b=x y', jar:cookie_header("http://h.example/"))
    end)

    it("numbers are accepted as values", function()
      local jar = jar_at()
      jar:update_cookies { n = 42 }
      assert.equal("n=42", jar:cookie_header("http://h.example/"))
    end)
  end)

  describe("cookie_header", function()
    it("is nil when no cookie matches", function()
      assert.is_nil(jar_at():cookie_header("http://h.example/"))
    end)

    it("request cookies replace jar cookies of the same name, for this request only", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=jar; Path=/", "b=jar; Path=/" }, "http://h.example/")
      assert.equal("b=jar; a=req; c=req", jar:cookie_header("http://h.example/", { { "a", "req" }, { "c", "req" } }))
      assert.equal("a=jar; b=jar", jar:cookie_header("http://h.example/"))
      assert.equal(2, #jar)
    end)

    it("merges an explicit Cookie header: its pairs first, but for those the jar sends", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=jar; Path=/" }, "http://h.example/")
      assert.equal("x=1; flag; a=jar", jar:cookie_header("http://h.example/", nil, "x=1; a=mine ; flag"))
      assert.equal("x=1; a=req", jar:cookie_header("http://h.example/", { a = "req" }, "x=1"))
      assert.is_nil(jar:cookie_header("http://other.example/", nil, "x=1"))
    end)

    it("takes a parsed URL too", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=1" }, assert(url.parse("http://H.example:8080/p")))
      assert.equal("a=1", jar:cookie_header(assert(url.parse("http://h.example/x"))))
    end)
  end)

  describe("the jar object", function()
    it("is a userdata proxy: #jar, tostring, __name", function()
      local jar = jar_at()
      jar:update_cookies { a = "1", b = "2" }
      assert.equal("userdata", type(jar))
      assert.equal(2, #jar)
      assert.equal(2, jar:count())
      assert.equal("lurl.cookie_jar (2 cookies)", tostring(jar))
      assert.equal("lurl.cookie_jar", getmetatable(jar).__name)
    end)

    it("cookies.is tells jars from other values", function()
      assert.is_true(cookies.is(cookies.jar()))
      assert.is_true(cookies.is(cookies.dummy()))
      assert.is_false(cookies.is({}))
      assert.is_false(cookies.is(newproxy(true)))
      assert.is_false(cookies.is(nil))
    end)

    it("iter yields every cookie, oldest first", function()
      local jar = jar_at()
      jar:update_from_headers({ "c=1; Path=/x", "a=2", "b=3; Domain=h.example" }, "http://www.h.example/")
      local names = {}
      for c in jar:iter() do names[#names + 1] = c.name end
      assert.equal("c,a,b", table.concat(names, ","))
    end)

    it("clear() empties the jar, clear(predicate) removes what it selects", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=1", "b=2", "c=3" }, "http://h.example/")
      jar:clear(function(c) return c.name == "b" end)
      assert.equal("a=1; c=3", jar:cookie_header("http://h.example/"))
      jar:clear()
      assert.equal(0, #jar)
    end)

    it("clear_domain removes a domain's cookies and those below it", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=1" }, "http://example.com/")
      jar:update_from_headers({ "b=2" }, "http://www.example.com/")
      jar:update_from_headers({ "c=3; Domain=example.com" }, "http://www.example.com/")
      jar:update_from_headers({ "d=4" }, "http://other.com/")
      jar:update_from_headers({ "e=5" }, "http://notexample.com/")
      jar:update_cookies { s = "shared" }
      jar:clear_domain(".Example.com")
      local names = {}
      for c in jar:iter() do names[#names + 1] = c.name end
      assert.equal("d,e,s", table.concat(names, ","))
    end)

    it("cookies print as Set-Cookie lines", function()
      local jar = jar_at()
      local c = jar:update_from_headers(
        { "a=1; Domain=example.com; Path=/p; Expires=Thu, 01 Jan 2015 00:00:00 GMT; Secure" },
        "https://www.example.com/")[1]
      assert.equal("a=1; Domain=example.com; Path=/p; Expires=Thu, 01 Jan 2015 00:00:00 GMT; Secure", tostring(c))
      assert.is_true(cookies.is_cookie(c))
    end)

    it("the dummy jar stores nothing and answers like an empty jar", function()
      local jar = cookies.dummy()
      assert.same({}, jar:update_from_headers({ "a=1" }, "http://h.example/"))
      assert.same({}, jar:update_cookies { a = "1" })
      assert.same({}, jar:filter_cookies("http://h.example/"))
      assert.is_nil(jar:cookie_header("http://h.example/"))
      assert.equal("a=1", jar:cookie_header("http://h.example/", { a = "1" }))
      assert.equal(0, #jar)
      assert.is_nil(jar:iter()())
      jar:clear()
      jar:clear_domain("h.example")
      assert.equal("lurl.dummy_cookie_jar", getmetatable(jar).__name)
    end)
  end)

  describe("cookies.txt (curl's Netscape format)", function()
    local HEADER = "# Netscape HTTP Cookie File\n# https://curl.se/docs/http-cookies.html\n"
      .. "# This file was generated by libcurl! Edit at your own risk.\n\n"

    it("save writes what curl writes, newest first", function()
      local jar = jar_at(1000)
      jar:update_from_headers({ "host=1; Path=/", "dom=2; Domain=example.com; Path=/d",
        "sec=3; Secure; HttpOnly; Max-Age=60" },
        "https://www.example.com/dir/x")
      jar:update_cookies { shared = "not saved" }
      local path = tmpname()
      assert.is_true(jar:save(path))
      assert.equal(HEADER
        .. "#HttpOnly_www.example.com\tFALSE\t/dir\tTRUE\t1060\tsec\t3\n"
        .. ".example.com\tTRUE\t/d\tFALSE\t0\tdom\t2\n"
        .. "www.example.com\tFALSE\t/\tFALSE\t0\thost\t1\n", read_file(path))
      os.remove(path)
    end)

    it("save and load round-trip every field and the creation order", function()
      local jar = jar_at(1000)
      jar:update_from_headers({ "a=1; Path=/", "b=2; Domain=example.com; Path=/p; Secure",
        "c=3; HttpOnly; Expires=Thu, 01 Jan 2015 00:00:00 GMT; Path=/", "d=\"q v\"; Path=/" },
          "https://www.example.com/")
      jar:update_cookies({ { "e", "x y" } }, "https://www.example.com/")
      local path = tmpname()
      assert.is_true(jar:save(path))
      local back = jar_at(2000)
      assert.equal(5, back:load(path))
      local function dump(j)
        local out = {}
        for c in j:iter() do
          out[#out + 1] = table.concat({ c.name, c.domain, tostring(c.host_only), c.path, tostring(c.secure),
            tostring(c.http_only), tostring(c.expires) }, " ")
        end
        return out
      end
      assert.same(dump(jar), dump(back))
      assert.equal(jar:cookie_header("https://www.example.com/p"), back:cookie_header("https://www.example.com/p"))
      assert.equal('b=2; a=1; c=3; d="q v"; e="x y"', back:cookie_header("https://www.example.com/p"))
      -- a second round changes nothing
      local path2 = tmpname()
      assert.is_true(back:save(path2))
      assert.equal(read_file(path), read_file(path2))
      os.remove(path)
      os.remove(path2)
    end)

    it("load reads a file curl wrote, skipping comments, bad lines and expired cookies", function()
      local path = tmpname()
      write_file(path, HEADER
        .. "www.example.test\tFALSE\t/\tFALSE\t4102444800\texp\t6\r\n"
        .. "#HttpOnly_www.example.test\tFALSE\t/\tFALSE\t1795385089\tho\t4\n"
        .. "# a comment\n"
        .. "broken line\n"
        .. "www.example.test\tFALSE\t/\tFALSE\t1000\told\tx\n"
        .. ".example.test\tTRUE\t/\tFALSE\t0\tdom\t2\n"
        .. "www.example.test\tFALSE\t/\tFALSE\t0\tempty\n"
        .. "www.example.test\tFALSE\t/\tFALSE\t0\thost\t1\n")
      local jar = jar_at(2000)
      assert.equal(5, jar:load(path))
      assert.equal("host=1; empty=; dom=2; ho=4; exp=6", jar:cookie_header("http://www.example.test/"))
      assert.equal("dom=2", jar:cookie_header("http://other.example.test/"))
      for c in jar:iter() do
        if c.name == "ho" then assert.is_true(c.http_only); assert.equal(1795385089, c.expires) end
        if c.name == "dom" then assert.is_false(c.host_only); assert.is_nil(c.expires) end
      end
      os.remove(path)
    end)

    it("load adds to the jar, replacing cookies of the same name, domain and path", function()
      local jar = jar_at()
      jar:update_from_headers({ "a=old; Path=/", "b=kept; Path=/" }, "http://h.example/")
      local path = tmpname()
      write_file(path, "h.example\tFALSE\t/\tFALSE\t0\ta\tnew\n")
      assert.equal(1, jar:load(path))
      assert.equal("a=new; b=kept", jar:cookie_header("http://h.example/"))
      os.remove(path)
    end)

    it("failures return nil and a message", function()
      local jar = jar_at()
      local n, err = jar:load("/nonexistent/cookies.txt")
      assert.is_nil(n)
      assert.matches("nonexistent", err)
      local ok, serr = jar:save("/nonexistent/dir/cookies.txt")
      assert.is_nil(ok)
      assert.matches("nonexistent", serr)
    end)
  end)

  describe("programmer mistakes raise, naming the argument", function()
    local jar = cookies.jar()
    local cases = {
      { function() cookies.jar { bogus = 1 } end, "bad argument #1 to 'jar' (unknown option 'bogus')" },
      { function() cookies.jar { unsafe = "yes" } end,
        "bad argument 'unsafe' to 'jar' (boolean expected, got string)" },
      { function() cookies.jar { clock = 5 } end, "bad argument 'clock' to 'jar' (function expected, got number)" },
      { function() cookies.jar "x" end, "bad argument #1 to 'jar' (options table expected, got string)" },
      { function() cookies.jar { treat_as_secure_origin = { "/relative" } } end,
        "bad argument 'treat_as_secure_origin' to 'jar' (item 1 is not an absolute URL: /relative)" },
      { function() cookies.jar { treat_as_secure_origin = 5 } end,
        "bad argument 'treat_as_secure_origin' to 'jar' (URL or list of URLs expected, got number)" },
      { function() jar:update_from_headers(nil, "http://h/") end,
        "bad argument #1 to 'update_from_headers' (list of Set-Cookie values expected, got nil)" },
      { function() jar:update_from_headers({ "a=b", 5 }, "http://h/") end,
        "bad argument #1 to 'update_from_headers' (item 2 is a number, not a string)" },
      { function() jar:update_from_headers({}, nil) end,
        "bad argument #2 to 'update_from_headers' (URL string or table expected, got nil)" },
      { function() jar:update_from_headers({}, "/relative/only") end,
        "bad argument #2 to 'update_from_headers' (absolute URL with a host expected)" },
      { function() jar:update_from_headers({}, "http://h/\n") end,
        "bad argument #2 to 'update_from_headers' (invalid URL 'http://h/\n': URL contains a control character)" },
      { function() jar:update_cookies("a=b") end,
        "bad argument #1 to 'update_cookies' (table of cookies expected, got string)" },
      { function() jar:update_cookies { ["a b"] = "x" } end,
        "bad argument #1 to 'update_cookies' (invalid cookie name \"a b\")" },
      { function() jar:update_cookies { a = "x\r\nSet-Cookie: y" } end,
        "bad argument 'a' to 'update_cookies' (invalid cookie value \"x\\13\\\nSet-Cookie: y\")" },
      { function() jar:update_cookies { a = {} } end,
        "bad argument 'a' to 'update_cookies' (invalid cookie value table)" },
      { function() jar:update_cookies { "x" } end,
        "bad argument #1 to 'update_cookies' (item 1 is a string, not a cookie or pair)" },
      { function() jar:cookie_header("http://h/", { ["a;b"] = "1" }) end,
        "bad argument #2 to 'cookie_header' (invalid cookie name \"a;b\")" },
      { function() jar:cookie_header("http://h/", "a=b") end,
        "bad argument #2 to 'cookie_header' (table of cookies expected, got string)" },
      { function() jar:update_cookies { { "=", "v" } } end,
        "bad argument item 1 to 'update_cookies' (invalid cookie name \"=\")" },
      { function() jar:update_cookies { { name = "a", value = "1", domain = 5 } } end,
        "bad argument item 1 to 'update_cookies' (domain must be a string, got number)" },
      { function() jar:update_cookies({ a = "1" }, 42) end,
        "bad argument #2 to 'update_cookies' (URL string or table expected, got number)" },
      { function() jar:filter_cookies(42) end,
        "bad argument #1 to 'filter_cookies' (URL string or table expected, got number)" },
      { function() jar:cookie_header() end,
        "bad argument #1 to 'cookie_header' (URL string or table expected, got nil)" },
      { function() jar:clear("all") end, "bad argument #1 to 'clear' (function or nil expected, got string)" },
      { function() jar:clear_domain(nil) end, "bad argument #1 to 'clear_domain' (domain name expected, got nil)" },
      { function() jar:save(nil) end, "bad argument #1 to 'save' (file name expected, got nil)" },
      { function() jar:load(42) end, "bad argument #1 to 'load' (file name expected, got number)" },
      { function() jar.count() end, "bad argument #1 to 'count' (cookie jar expected, got nil)" },
      { function() jar.iter({}) end, "bad argument #1 to 'iter' (cookie jar expected, got table)" },
    }
    for i, case in ipairs(cases) do
      it(case[2], function()
        local ok, err = pcall(case[1])
        assert.is_false(ok, "case " .. i .. " did not raise")
        -- the message points at the caller (this file), not into the module
        assert.matches("cookies_spec.lua:%d+: ", err)
        assert.equal(case[2], (err:gsub("^.-cookies_spec%.lua:%d+: ", "")))
      end)
    end

    it("a clock that returns no number raises", function()
      local bad = cookies.jar { clock = function() return "now" end }
      assert.has_error(function() bad:update_from_headers({ "a=b" }, "http://h.example/") end)
    end)
  end)
end)
