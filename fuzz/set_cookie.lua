-- Driver of fuzz_set_cookie: Set-Cookie values from a response to one of
-- a few URLs, through cookies.parse_set_cookie and lurl.httpdate.parse (their
-- contract: nil for what RFC 6265 ignores, never a raise on a string) and
-- a jar that stores them and builds the Cookie header. What the jar keeps
-- must be scoped as RFC 6265 5.3 says: a response may set cookies for its
-- own host or a domain above it that is not a public suffix, never for
-- another site.
local cookies = require "lurl.cookies"
local httpdate = require "lurl.httpdate"
local url = require "lurl.url"
local domain = require("lurl.core").domain

local function check(ok, fmt, ...)
  if not ok then error(fmt:format(...), 2) end
end

local NOW = 1700000000
local URLS = {
  "http://www.example.com/a/b", "https://example.com/", "http://sub.shop.example.co.uk/cart/items?id=1",
  "http://127.0.0.1:8080/x/y", "https://[::1]/", "http://localhost/", "https://bücher.example/dir/",
  "http://a.b.c.example.org", "https://example.com/deep/path/page.html",
}
-- No cookie from any URL above may be sent here.
local ELSEWHERE = "https://other-site.test/"

local function clock() return NOW end

-- The public suffix list loads on first use and stays: load it now, not in
-- the first input (a per-input leak check would count it).
cookies.jar { clock = clock }:update_from_headers("a=b; Domain=example.com", URLS[1])

local function no_ctl(s, what)
  check(not s:find("[\r\n%z]"), "%s holds CR, LF or NUL: %q", what, s)
end

local function parse_one(v)
  local t = httpdate.parse(v)
  check(t == nil or (type(t) == "number" and t % 1 == 0), "httpdate.parse gave %s", tostring(t))
  local name, value, attrs = cookies.parse_set_cookie(v, NOW)
  if name == nil then return end
  check(type(name) == "string" and name ~= "" and type(value) == "string" and type(attrs) == "table",
    "parse_set_cookie gave %s, %s, %s", type(name), type(value), type(attrs))
  check(#name + #value <= cookies.MAX_NAME_VALUE, "a %d-byte name and value", #name + #value)
  no_ctl(name, "a cookie name")
  no_ctl(value, "a cookie value")
  check(attrs.path == nil or attrs.path == false or attrs.path:sub(1, 1) == "/", "Path %q", tostring(attrs.path))
end

local function domain_ok(c, host)
  if c.host_only then return c.domain == host end
  if c.domain == "" then return false end
  local above = #host > #c.domain and host:sub(-#c.domain - 1) == "." .. c.domain
  return c.domain == host or (above and not domain.is_public_suffix(c.domain))
end

local function check_stored(c, host)
  check(domain_ok(c, host), "a response from %s set a cookie for %q (host_only %s)", host, c.domain,
    tostring(c.host_only))
  check(c.path:sub(1, 1) == "/", "cookie path %q", c.path)
  check(c.expires == nil or c.expires >= NOW, "an expired cookie was stored")
  no_ctl(c.name, "a stored name")
  no_ctl(c.value, "a stored value")
  no_ctl(tostring(c), "a cookie's Set-Cookie text")
end

-- which: index into URLS; opts: 1 unsafe (IP hosts), 2 no quote_cookie,
-- 4 the URL's origin counts as secure.
return function(data, which, opts)
  local u = URLS[which % #URLS + 1]
  local values = {}
  for line in (data .. "\n"):gmatch("([^\n]*)\n") do
    parse_one(line)
    values[#values + 1] = line
  end
  local jar = cookies.jar {
    clock = clock, unsafe = opts % 2 == 1, quote_cookie = opts % 4 < 2,
    treat_as_secure_origin = opts % 8 >= 4 and { u } or nil,
  }
  local host = url.parse(u).host
  for _, c in ipairs(jar:update_from_headers(values, u)) do check_stored(c, host) end
  local header = jar:cookie_header(u)
  if header then no_ctl(header, "the Cookie header") end
  local leaked = jar:cookie_header(ELSEWHERE)
  check(leaked == nil, "cookies from %s went to %s: %q", u, ELSEWHERE, tostring(leaked))
end
