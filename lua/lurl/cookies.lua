-- The cookie jar: RFC 6265 section 5 (Set-Cookie parsing, storage, the
-- Cookie header; dates are lurl.httpdate's) with aiohttp's CookieJar
-- choices on top:
-- "shared" cookies sent to every host, no cookies for IP-address hosts
-- unless unsafe, Secure cookies also for treat_as_secure_origin, and
-- quote_cookie. Persistence is curl's Netscape cookies.txt, so curl -b and
-- curl -c read and write the same files.
--
--   local jar = cookies.jar{ unsafe = false, quote_cookie = true,
--                            treat_as_secure_origin = { "http://localhost:8080" },
--                            clock = os.time }
--   jar:update_from_headers(resp_set_cookie_values, url)
--   req_headers.Cookie = jar:cookie_header(url)
--
-- A cookie is a table { name, value, domain, path, host_only, secure,
-- http_only, same_site, expires, creation, last_access }; expires is nil for
-- session cookies. Shared cookies have domain "" and path "". The lists the
-- jar returns hold its own cookie tables: read them, do not change them.
-- The jar is a userdata proxy, so that #jar works under LuaJIT.
local core = require "lurl.core"
local check = require "lurl.check"
local httpdate = require "lurl.httpdate"
local url = require "lurl.url"

local domain_lib = core.domain

local M = {}

-- A server may not fill memory: RFC 6265 6.1 asks for at least 50 cookies per
-- domain and 3000 in all; past these the least recently used go (5.3).
M.MAX_PER_DOMAIN = 180
M.MAX_TOTAL = 3000
-- RFC 6265 6.1 asks for at least 4096 bytes per cookie; 6265bis (and curl)
-- refuse a name and value longer than that together.
M.MAX_NAME_VALUE = 4096
-- Dates past year 9999 have no four-digit year: expiries are clamped there
-- so that cookies.txt and HTTP-dates stay well formed.
local MAX_TIME = 253402300799

-- ---- cookie objects ----

local Cookie = {}
local cookie_mt = { __name = "lurl.cookie", __index = Cookie }

-- Set-Cookie syntax, as a server would have sent it.
function cookie_mt.__tostring(c)
  local parts = { c.name .. "=" .. c.value }
  if c.domain ~= "" and not c.host_only then parts[#parts + 1] = "Domain=" .. c.domain end
  if c.path ~= "" then parts[#parts + 1] = "Path=" .. c.path end
  if c.expires then parts[#parts + 1] = "Expires=" .. httpdate.format(math.max(c.expires, 0)) end
  if c.secure then parts[#parts + 1] = "Secure" end
  if c.http_only then parts[#parts + 1] = "HttpOnly" end
  if c.same_site then parts[#parts + 1] = "SameSite=" .. c.same_site end
  return table.concat(parts, "; ")
end

function M.is_cookie(v) return getmetatable(v) == cookie_mt end

-- ---- URLs, hosts and paths ----

local function is_ip(host)
  if host:find(":", 1, true) then return true end -- IPv6 (url.parse drops the brackets)
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a ~= nil and tonumber(a) < 256 and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256
end

-- A host name canonicalized as 5.1.2 says (lower case, IDNA A-labels), or nil.
local function canonical_host(host)
  host = host:lower()
  if host:find("[\128-\255]") then return domain_lib.to_ascii(host) end
  return host
end

-- %XX escapes of unreserved characters are those characters (RFC 3986
-- 6.2.2.2): /f%6Fo and /foo are one path for matching.
local function normalize_path(p)
  return (p:gsub("%%(%x%x)", function(hex)
    local ch = string.char(tonumber(hex, 16))
    if ch:find("^[%w%-%._~]$") then return ch end
  end))
end

-- The parts of u that cookies depend on: { scheme, host, port, path, ip }.
-- A URL that is not absolute is a programmer mistake.
local function target(fname, u, argn)
  local t = type(u)
  if t == "string" then
    local parsed, err = url.parse(u)
    if not parsed then
      check.argerror(fname, argn, "invalid URL '" .. u .. "': " .. tostring(err and err.message))
    end
    u = parsed
  elseif t ~= "table" then
    check.argerror(fname, argn, "URL string or table expected, got " .. t)
  end
  if type(u.host) ~= "string" or u.host == "" or type(u.scheme) ~= "string" then
    check.argerror(fname, argn, "absolute URL with a host expected")
  end
  local host = canonical_host(u.host)
  local path = type(u.path) == "string" and normalize_path(u.path) or ""
  if path:sub(1, 1) ~= "/" then path = "/" end
  return { scheme = u.scheme:lower(), host = host, port = u.port or url.default_ports[u.scheme:lower()],
           path = path, ip = host ~= nil and (u.ipv6 == true or is_ip(host)) }
end

local function origin_key(scheme, host, port)
  return scheme .. "://" .. host .. ":" .. tostring(port)
end

-- 5.1.3: string domain-matches domain.
local function domain_match(s, d)
  if s == d then return true end
  return #s > #d and s:sub(-#d - 1) == "." .. d and not is_ip(s)
end

-- 5.1.4: the default path of a request path.
local function default_path(p)
  if p:sub(1, 1) ~= "/" then return "/" end
  local dir = p:match("^(.*)/")
  if dir == "" then return "/" end
  return dir
end

-- 5.1.4: request path path-matches cookie path.
local function path_match(req, cp)
  if req == cp then return true end
  if req:sub(1, #cp) ~= cp then return false end
  return cp:sub(-1) == "/" or req:sub(#cp + 1, #cp + 1) == "/"
end

-- ---- Set-Cookie parsing (5.2) ----

local function trim(s) return (s:gsub("^[ \t]+", ""):gsub("[ \t]+$", "")) end

-- Max-Age (5.2.2): nil when the attribute is to be ignored.
local function max_age_expiry(v, now)
  if not v:find("^%-?%d+$") then return nil end
  local delta = tonumber(v)
  if delta <= 0 then return -math.huge end -- "the earliest representable date and time"
  return math.min(now + delta, MAX_TIME)
end

local SAME_SITE = { strict = "Strict", lax = "Lax", none = "None" }

-- One cookie-av (5.2.1-5.2.6) folded into attrs; later ones win, and an
-- ignored one leaves the previous value in place.
local function parse_attribute(attrs, av, now)
  local name, value = av:match("^([^=]*)=(.*)$")
  if not name then name, value = av, "" end
  name, value = trim(name):lower(), trim(value)
  if name == "expires" then
    local t = httpdate.parse(value)
    if t then attrs.expires = math.min(t, MAX_TIME) end
  elseif name == "max-age" then
    local t = max_age_expiry(value, now)
    if t then attrs.max_age = t end
  elseif name == "domain" then
    -- an empty Domain is undefined; 5.2.3 says it SHOULD be ignored
    if value ~= "" then attrs.domain = (value:gsub("^%.", "")):lower() end
  elseif name == "path" then
    if value:sub(1, 1) == "/" then attrs.path = value else attrs.path = false end
  elseif name == "secure" then
    attrs.secure = true
  elseif name == "httponly" then
    attrs.http_only = true
  elseif name == "samesite" then
    attrs.same_site = SAME_SITE[value:lower()] or false -- 6265bis: an unknown value is "Default"
  end
end

-- parse_set_cookie(s, now) -> name, value, attrs; nil when 5.2 says to
-- ignore the whole string.
local function parse_set_cookie(s, now)
  -- NUL, CR and LF cannot be in a field value (RFC 9110 5.5): what follows
  -- one is not part of the cookie (what Chromium does; http-state's
  -- disabled-chromium0022/0023 expect it).
  s = s:match("^[^%z\r\n]*")
  local pair, rest = s:match("^([^;]*)(.*)$")
  local name, value = pair:match("^([^=]*)=(.*)$")
  if not name then return nil end
  name, value = trim(name), trim(value)
  if name == "" or #name + #value > M.MAX_NAME_VALUE then return nil end
  local attrs = {}
  for av in rest:gmatch(";([^;]*)") do parse_attribute(attrs, av, now) end
  return name, value, attrs
end

-- cookies.parse_set_cookie(s[, now]) -> name, value, attributes, or nil when
-- RFC 6265 5.2 ignores s. attributes: { expires, max_age (both as epoch
-- seconds), domain, path (false: the default path), secure, http_only,
-- same_site }, each the last valid one.
function M.parse_set_cookie(s, now)
  if type(s) ~= "string" then check.argerror("parse_set_cookie", "#1", "string expected, got " .. type(s)) end
  if now ~= nil and type(now) ~= "number" then
    check.argerror("parse_set_cookie", "#2", "number expected, got " .. type(now))
  end
  return parse_set_cookie(s, now or os.time())
end

-- ---- the jar ----

local Jar = {}
local states = setmetatable({}, { __mode = "k" }) -- proxy -> state

local function state_of(self, fname)
  local st = states[self]
  if not st then check.argerror(fname, "#1", "cookie jar expected, got " .. type(self)) end
  return st
end

local function key_of(name, path) return name .. "\0" .. path end

local function now_of(st)
  local t = st.clock()
  if type(t) ~= "number" then check.raise("cookie jar clock returned " .. type(t) .. ", not a number") end
  return t
end

local function remove(st, c)
  local bucket = st.domains[c.domain]
  local k = key_of(c.name, c.path)
  if bucket and bucket.cookies[k] == c then
    bucket.cookies[k] = nil
    bucket.n = bucket.n - 1
    if bucket.n == 0 then st.domains[c.domain] = nil end
    st.n = st.n - 1
  end
end

-- Calls fn(c) for every stored cookie (removal inside fn is safe).
local function each(st, fn)
  local all = {}
  for _, bucket in pairs(st.domains) do
    for _, c in pairs(bucket.cookies) do all[#all + 1] = c end
  end
  for _, c in ipairs(all) do fn(c) end
end

-- 5.3 last paragraph: expired cookies are evicted whenever one exists.
-- st.next_expiry (the earliest expiry stored) spares the scan until then.
local function purge(st, now)
  if st.n == 0 or now <= st.next_expiry then return end
  local next_expiry = math.huge
  each(st, function(c)
    if c.expires and c.expires < now then remove(st, c)
    elseif c.expires and c.expires < next_expiry then next_expiry = c.expires end
  end)
  st.next_expiry = next_expiry
end

-- Least recently used first, then the oldest.
local function lru_before(a, b)
  if a.last_access ~= b.last_access then return a.last_access < b.last_access end
  return a._seq < b._seq
end

local function evict_lru(st, list, keep)
  table.sort(list, lru_before)
  for i = 1, #list - keep do remove(st, list[i]) end
end

-- 5.3: "excess cookies" go, least recently accessed first.
local function enforce_limits(st, d)
  local bucket = st.domains[d]
  if bucket and bucket.n > M.MAX_PER_DOMAIN then
    local list = {}
    for _, c in pairs(bucket.cookies) do list[#list + 1] = c end
    evict_lru(st, list, M.MAX_PER_DOMAIN)
  end
  if st.n > M.MAX_TOTAL then
    local list = {}
    each(st, function(c) list[#list + 1] = c end)
    evict_lru(st, list, M.MAX_TOTAL)
  end
end

-- 5.3 steps 11 and 12: replace a cookie of the same name, domain and path
-- (keeping its creation time), then insert unless already expired. Returns
-- the stored cookie or nil.
local function insert(st, c, now)
  local bucket = st.domains[c.domain]
  local k = key_of(c.name, c.path)
  local old = bucket and bucket.cookies[k]
  st.seq = st.seq + 1
  c._seq = st.seq
  if old then
    c.creation, c._seq = old.creation, old._seq
    remove(st, old)
  end
  if c.expires and c.expires < now then return nil end
  bucket = st.domains[c.domain]
  if not bucket then bucket = { n = 0, cookies = {} }; st.domains[c.domain] = bucket end
  bucket.cookies[k] = c
  bucket.n = bucket.n + 1
  st.n = st.n + 1
  if c.expires and c.expires < st.next_expiry then st.next_expiry = c.expires end
  enforce_limits(st, c.domain)
  return c
end

local function new_cookie(name, value, now)
  return setmetatable({ name = name, value = value, domain = "", path = "", host_only = false,
    secure = false, http_only = false, creation = now, last_access = now }, cookie_mt)
end

-- 5.3 steps 4-6: the domain of a cookie set by a response from t, given its
-- Domain attribute (nil when absent). Returns domain, host_only or nil to
-- ignore the cookie.
local function cookie_domain(t, attr)
  if attr and attr:find("[\128-\255]") then attr = domain_lib.to_ascii(attr); if not attr then return nil end end
  if attr and attr ~= "" and domain_lib.is_public_suffix(attr) then
    if attr ~= t.host then return nil end
    attr = nil -- a public suffix that is the host itself: host-only (step 5)
  end
  if attr and attr ~= "" then
    if not domain_match(t.host, attr) then return nil end
    return attr, false
  end
  return t.host, true
end

-- A cookie from the Set-Cookie string s received from t, or nil.
local function from_header(s, t, now)
  local name, value, attrs = parse_set_cookie(s, now)
  if not name then return nil end
  local d, host_only = cookie_domain(t, attrs.domain)
  if not d then return nil end
  local c = new_cookie(name, value, now)
  c.domain, c.host_only = d, host_only
  c.path = attrs.path or default_path(t.path)
  if attrs.max_age then c.expires = attrs.max_age else c.expires = attrs.expires end
  c.secure, c.http_only, c.same_site = attrs.secure == true, attrs.http_only == true, attrs.same_site or nil
  return c
end

-- jar:update_from_headers(values, u) -> list of the cookies stored. values
-- are the Set-Cookie field values of a response received from u.
function Jar:update_from_headers(values, u)
  local st = state_of(self, "update_from_headers")
  if type(values) == "string" then values = { values } end
  if type(values) ~= "table" then
    check.argerror("update_from_headers", "#1", "list of Set-Cookie values expected, got " .. type(values))
  end
  for i, v in ipairs(values) do
    if type(v) ~= "string" then
      check.argerror("update_from_headers", "#1", ("item %d is a %s, not a string"):format(i, type(v)))
    end
  end
  local t = target("update_from_headers", u, "#2")
  local stored = {}
  if st.dummy or not t.host or (t.ip and not st.unsafe) then return stored end
  local now = now_of(st)
  for _, v in ipairs(values) do
    local c = from_header(v, t, now)
    if c then stored[#stored + 1] = insert(st, c, now) end
  end
  purge(st, now)
  return stored
end

-- ---- update_cookies: cookies from the script ----

-- Names as http.cookies accepts them (aiohttp): no separators, spaces or
-- controls; values without controls (header injection).
local function shown(v) return type(v) == "string" and ("%q"):format(v) or type(v) end

local function check_name(fname, name, what)
  if type(name) ~= "string" or name == "" or name:find("[%z\1-\32\127;=,]") then
    check.argerror(fname, what, "invalid cookie name " .. shown(name))
  end
end

local function check_value(fname, value, what)
  if type(value) == "number" then value = tostring(value) end
  if type(value) ~= "string" or value:find("[%z\1-\8\10-\31\127]") then
    check.argerror(fname, what, "invalid cookie value " .. shown(value))
  end
  return value
end

-- A cookie-like table's optional field k must be of type want.
local function check_field(fname, item, k, want, what)
  if item[k] ~= nil and type(item[k]) ~= want then
    check.argerror(fname, what, k .. " must be a " .. want .. ", got " .. type(item[k]))
  end
end

-- The script's cookies as a list of cookie tables (copies). Called straight
-- from the method fname, whose argument argn they are.
local function normalize_input(cookies, now, fname, argn)
  local out = {}
  if type(cookies) ~= "table" then
    check.argerror(fname, argn, "table of cookies expected, got " .. type(cookies))
  end
  if next(cookies) ~= nil and #cookies == 0 then
    local names = {}
    for name in pairs(cookies) do check_name(fname, name, argn); names[#names + 1] = name end
    table.sort(names) -- a map has no order: creation order by name keeps results stable
    for _, name in ipairs(names) do
      local c = new_cookie(name, check_value(fname, cookies[name], "'" .. name .. "'"), now)
      c._quote = true
      out[#out + 1] = c
    end
    return out
  end
  for i, item in ipairs(cookies) do
    local what = "item " .. i
    if type(item) ~= "table" then
      check.argerror(fname, argn, what .. " is a " .. type(item) .. ", not a cookie or pair")
    end
    local c
    if item[1] ~= nil then
      check_name(fname, item[1], what)
      c = new_cookie(item[1], check_value(fname, item[2], what), now)
      c._quote = true
    else
      check_name(fname, item.name, what)
      c = new_cookie(item.name, check_value(fname, item.value, what), now)
      check_field(fname, item, "domain", "string", what)
      check_field(fname, item, "path", "string", what)
      check_field(fname, item, "expires", "number", what)
      c.domain = (item.domain or ""):gsub("^%.", ""):lower()
      c.path = item.path or ""
      c.host_only = item.host_only == true
      c.secure, c.http_only = item.secure == true, item.http_only == true
      c.same_site = type(item.same_site) == "string" and SAME_SITE[item.same_site:lower()] or nil
      c.expires = item.expires
      c._quote = getmetatable(item) == cookie_mt and item._quote or nil
    end
    out[#out + 1] = c
  end
  return out
end

-- jar:update_cookies(cookies[, u]) -> list of the cookies stored.
-- cookies: { name = value }, { { name, value }, ... } or a list of cookies.
-- Without u, name/value cookies are shared (sent to every host) and cookie
-- objects are stored with their own domain and path; with u, cookies are
-- host-only cookies of u's host unless they carry a Domain that u's host
-- domain-matches, and a cookie without a path gets u's default path.
function Jar:update_cookies(cookies, u)
  local st = state_of(self, "update_cookies")
  local now = now_of(st)
  local list = normalize_input(cookies, now, "update_cookies", "#1")
  local t = u ~= nil and target("update_cookies", u, "#2") or nil
  local stored = {}
  if st.dummy then return stored end
  if t and (not t.host or (t.ip and not st.unsafe)) then return stored end
  for _, c in ipairs(list) do
    if t then
      local d, host_only = cookie_domain(t, (not c.host_only and c.domain ~= "") and c.domain or nil)
      c.domain, c.host_only = d, host_only
      if c.path:sub(1, 1) ~= "/" then c.path = default_path(t.path) end
    elseif c.domain == "" then
      c.path, c.host_only = "", false
    elseif c.path:sub(1, 1) ~= "/" then
      c.path = "/"
    end
    if c.domain then stored[#stored + 1] = insert(st, c, now) end
  end
  purge(st, now)
  return stored
end

-- ---- sending (5.4) ----

local function is_secure(st, t)
  if t.scheme == "https" or t.scheme == "wss" then return true end
  return t.host ~= nil and st.secure_origins[origin_key(t.scheme, t.host, t.port)] == true
end

-- 5.4 step 2: longer paths first, then earlier creation.
local function send_order(a, b)
  if #a.path ~= #b.path then return #a.path > #b.path end
  if a.creation ~= b.creation then return a.creation < b.creation end
  return a._seq < b._seq
end

local function seq_order(a, b) return a._seq < b._seq end

-- The domains whose cookies may go to host: the host and the names above it.
local function candidate_domains(t)
  if t.ip then return { t.host } end
  local list, s = { t.host }, t.host
  while true do
    local dot = s:find(".", 1, true)
    if not dot then break end
    s = s:sub(dot + 1)
    if s ~= "" then list[#list + 1] = s end
  end
  return list
end

local function matching(st, t, now)
  local secure = is_secure(st, t)
  local out = {}
  if t.host and (not t.ip or st.unsafe) then
    for _, d in ipairs(candidate_domains(t)) do
      local bucket = st.domains[d]
      if bucket then
        for _, c in pairs(bucket.cookies) do
          if (c.host_only and c.domain == t.host or not c.host_only and domain_match(t.host, c.domain))
            and path_match(t.path, c.path) and (secure or not c.secure) then
            out[#out + 1] = c
          end
        end
      end
    end
  end
  table.sort(out, send_order)
  -- Shared cookies come last, and only where no cookie of the same name
  -- from the host is sent (aiohttp: the host's cookie wins).
  local shared, names = {}, {}
  for _, c in ipairs(out) do names[c.name] = true end
  local bucket = st.domains[""]
  if bucket then
    for _, c in pairs(bucket.cookies) do if not names[c.name] then shared[#shared + 1] = c end end
  end
  table.sort(shared, seq_order)
  for _, c in ipairs(shared) do out[#out + 1] = c end
  for _, c in ipairs(out) do c.last_access = now end
  return out
end

-- jar:filter_cookies(u) -> the cookies to send to u, in Cookie header order.
local function filter(st, t)
  if st.dummy or st.n == 0 then return {} end
  local now = now_of(st)
  purge(st, now)
  return matching(st, t, now)
end

function Jar:filter_cookies(u)
  local st = state_of(self, "filter_cookies")
  return filter(st, target("filter_cookies", u, "#1"))
end

-- Python http.cookies' _quote (aiohttp's quote_cookie): a value that is not
-- one or more of its legal characters (so "" too) is sent in double quotes,
-- with " and \ escaped by a backslash and other characters as \ooo octal.
-- Python escapes code points below 256, so the UTF-8 of U+0080-U+00FF
-- becomes one \ooo and longer code points stay as they are; a byte that is
-- not UTF-8 is escaped as if it were Latin-1.
local LEGAL = "^[%w!#$%%&'*+%-.^_`|~:]+$"
local UNESCAPED = "^[%w!#$%%&'*+%-.^_`|~: ()/<=>?@%[%]{}]$"

-- One character of v at i: its replacement and the next position.
local function quote_char(v, i)
  local b = v:byte(i)
  if b == 34 or b == 92 then return "\\" .. string.char(b), i + 1 end -- a quote or a backslash
  if b < 128 then
    local ch = string.char(b)
    return ch:find(UNESCAPED) and ch or ("\\%03o"):format(b), i + 1
  end
  local len = (b >= 0xC2 and b < 0xE0 and 2) or (b >= 0xE0 and b < 0xF0 and 3) or (b >= 0xF0 and b <= 0xF4 and 4) or 0
  local seq = len > 0 and v:sub(i, i + len - 1)
  if not seq or #seq < len or not seq:find("^.[\128-\191]+$") then return ("\\%03o"):format(b), i + 1 end
  if len == 2 and b <= 0xC3 then return ("\\%03o"):format((b - 0xC0) * 64 + seq:byte(2) - 0x80), i + 2 end
  return seq, i + len
end

local function py_quote(v)
  if v:find(LEGAL) then return v end
  local out, i = { '"' }, 1
  while i <= #v do
    out[#out + 1], i = quote_char(v, i)
  end
  out[#out + 1] = '"'
  return table.concat(out)
end
M.quote = py_quote

-- The value as it goes on the wire: values from Set-Cookie (and files) are
-- sent exactly as received; the script's own values are quoted when
-- quote_cookie is on.
local function wire_value(st, c)
  if c._quote and st.quote_cookie then return py_quote(c.value) end
  return c.value
end

-- The pairs of a Cookie header ("a=1; b=2") whose names are not in sent.
local function without_names(header, sent)
  local kept = {}
  for pair in header:gmatch("[^;]+") do
    local name = pair:match("^%s*([^=]-)%s*=") or pair:match("^%s*(.-)%s*$")
    if not sent[name] then kept[#kept + 1] = pair:match("^%s*(.-)%s*$") end
  end
  return kept
end

-- jar:cookie_header(u[, request_cookies[, explicit]]) -> "a=b; c=d" or
-- nil. The optional request_cookies (any form update_cookies takes) are
-- added for this request only and replace jar cookies of the same name, as
-- aiohttp's request-level cookies= do. explicit: a Cookie header the script
-- set; its pairs come first, but for those the jar sends again. nil when
-- the jar has nothing to add to explicit.
function Jar:cookie_header(u, request_cookies, explicit)
  local st = state_of(self, "cookie_header")
  local t = target("cookie_header", u, "#1")
  local list = filter(st, t)
  if request_cookies ~= nil then
    local checked = normalize_input(request_cookies, now_of(st), "cookie_header", "#2")
    local extra = M.jar { quote_cookie = st.quote_cookie, clock = st.clock }
    extra:update_cookies(checked)
    local override = filter(states[extra], t)
    local names = {}
    for _, c in ipairs(override) do names[c.name] = true end
    local merged = {}
    for _, c in ipairs(list) do if not names[c.name] then merged[#merged + 1] = c end end
    for _, c in ipairs(override) do merged[#merged + 1] = c end
    list = merged
  end
  if #list == 0 then return nil end
  local parts, sent = {}, {}
  for i, c in ipairs(list) do
    parts[i] = c.name .. "=" .. wire_value(st, c)
    sent[c.name] = true
  end
  if explicit then
    local kept = without_names(explicit, sent)
    for _, part in ipairs(parts) do kept[#kept + 1] = part end
    parts = kept
  end
  return table.concat(parts, "; ")
end

-- ---- looking at and removing cookies ----

function Jar:count()
  local st = state_of(self, "count")
  if st.n > 0 then purge(st, now_of(st)) end
  return st.n
end

local function sorted(st)
  local list = {}
  each(st, function(c) list[#list + 1] = c end)
  table.sort(list, seq_order)
  return list
end

-- for c in jar:iter() do ... end: every cookie, oldest first.
function Jar:iter()
  local st = state_of(self, "iter")
  if st.n > 0 then purge(st, now_of(st)) end
  local list, i = sorted(st), 0
  return function()
    i = i + 1
    return list[i]
  end
end

-- jar:clear([predicate]): every cookie, or those for which predicate(c) is
-- true (expired cookies go too, as in aiohttp).
function Jar:clear(predicate)
  local st = state_of(self, "clear")
  if predicate ~= nil and type(predicate) ~= "function" then
    check.argerror("clear", "#1", "function or nil expected, got " .. type(predicate))
  end
  if predicate == nil then
    st.domains, st.n, st.next_expiry = {}, 0, math.huge
    return
  end
  purge(st, now_of(st))
  each(st, function(c) if predicate(c) then remove(st, c) end end)
end

-- jar:clear_domain(d): the cookies of d and of the names below it.
function Jar:clear_domain(d)
  state_of(self, "clear_domain") -- a bad self is reported as clear_domain's, not clear's
  if type(d) ~= "string" or d == "" then
    check.argerror("clear_domain", "#1", "domain name expected, got " .. type(d))
  end
  d = canonical_host((d:gsub("^%.", ""))) or d:lower()
  self:clear(function(c) return c.domain ~= "" and domain_match(c.domain, d) end)
end

-- ---- cookies.txt (curl's Netscape format) ----

local FILE_HEADER = "# Netscape HTTP Cookie File\n"
  .. "# https://curl.se/docs/http-cookies.html\n"
  .. "# This file was generated by libcurl! Edit at your own risk.\n\n"

-- One line as curl's get_netscape_format writes it.
local function netscape_line(st, c)
  return ("%s%s%s\t%s\t%s\t%s\t%.0f\t%s\t%s\n"):format(
    c.http_only and "#HttpOnly_" or "",
    c.host_only and "" or ".", c.domain,
    c.host_only and "FALSE" or "TRUE",
    c.path,
    c.secure and "TRUE" or "FALSE",
    c.expires or 0,
    c.name, wire_value(st, c))
end

-- jar:save(path) -> true, or nil, message. Shared cookies have no domain and
-- are not saved. Newest first, as curl writes. Written to a temporary file
-- renamed over path, so a reader never sees half a file.
function Jar:save(path)
  local st = state_of(self, "save")
  if type(path) ~= "string" then check.argerror("save", "#1", "file name expected, got " .. type(path)) end
  if st.n > 0 then purge(st, now_of(st)) end
  local tmp = path .. ".lurl-tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(FILE_HEADER)
  local list = sorted(st)
  for i = #list, 1, -1 do -- newest first, as curl writes them
    local c = list[i]
    if ok and c.domain ~= "" then ok, werr = f:write(netscape_line(st, c)) end
  end
  local closed, cerr = f:close()
  if not ok or not closed then os.remove(tmp); return nil, werr or cerr end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then os.remove(tmp); return nil, rerr end
  return true
end

-- A cookie from one cookies.txt line, or nil for comments and bad lines.
local function from_netscape(line, now)
  line = line:gsub("\r$", "")
  local http_only = false
  if line:sub(1, 10) == "#HttpOnly_" then http_only, line = true, line:sub(11) end
  if line == "" or line:sub(1, 1) == "#" then return nil end
  -- domain, include subdomains, path, secure, expiry, name, value (the rest)
  local d, tail, path, secure, expires, name, value =
    line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
  if not d or d == "" or name == "" or name:find("[%z\1-\32\127;=]") then return nil end
  if value:find("[%z\1-\8\10-\31\127]") then return nil end
  expires = tonumber(expires)
  if not expires or (expires ~= 0 and expires < now) then return nil end
  local c = new_cookie(name, value, now)
  c.domain = canonical_host((d:gsub("^%.", ""))) or d:lower()
  c.host_only = tail:upper() ~= "TRUE"
  c.path = path:sub(1, 1) == "/" and path or "/"
  c.secure = secure:upper() == "TRUE"
  c.http_only = http_only
  if expires ~= 0 then c.expires = math.min(expires, MAX_TIME) end
  return c
end

-- jar:load(path) -> number of cookies loaded, or nil, message. The file's
-- cookies are added to the jar (replacing those of the same name, domain
-- and path); expired ones are skipped. Lines are newest first (curl's
-- order), so creation order survives a save and load.
function Jar:load(path)
  local st = state_of(self, "load")
  if type(path) ~= "string" then check.argerror("load", "#1", "file name expected, got " .. type(path)) end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  if not text then return nil, path .. ": read failed" end
  local now, n, lines = now_of(st), 0, {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  for i = #lines, 1, -1 do -- the last line is the oldest cookie
    local c = from_netscape(lines[i], now)
    if c and not st.dummy and insert(st, c, now) then n = n + 1 end
  end
  return n
end

-- ---- construction ----

local JAR_OPTIONS = {
  unsafe = "boolean", quote_cookie = "boolean", treat_as_secure_origin = "any", clock = "function",
}

local function secure_origins(list)
  if list == nil then return {} end
  if type(list) == "string" or (type(list) == "table" and list.host) then list = { list } end
  if type(list) ~= "table" then
    check.argerror("jar", "'treat_as_secure_origin'", "URL or list of URLs expected, got " .. type(list))
  end
  local set = {}
  for i, item in ipairs(list) do
    local u = item
    if type(item) == "string" then u = url.parse(item) end
    if type(u) ~= "table" or type(u.scheme) ~= "string" or type(u.host) ~= "string" or u.host == "" then
      check.argerror("jar", "'treat_as_secure_origin'",
        ("item %d is not an absolute URL: %s"):format(i, tostring(item)))
    end
    local scheme = u.scheme:lower()
    set[origin_key(scheme, canonical_host(u.host) or u.host:lower(), u.port or url.default_ports[scheme])] = true
  end
  return set
end

local function make(opts, dummy)
  local fname = dummy and "dummy" or "jar"
  if opts == nil then opts = {} end
  check.options(fname, "#1", opts, JAR_OPTIONS)
  local st = {
    dummy = dummy, unsafe = opts.unsafe == true, quote_cookie = opts.quote_cookie ~= false,
    secure_origins = secure_origins(opts.treat_as_secure_origin),
    clock = opts.clock or os.time, domains = {}, n = 0, seq = 0, next_expiry = math.huge,
  }
  -- A proxy, so that #jar works: LuaJIT without 5.2 compatibility honours
  -- __len only on userdata.
  local proxy = newproxy(true)
  local mt = getmetatable(proxy)
  mt.__index = Jar
  mt.__name = dummy and "lurl.dummy_cookie_jar" or "lurl.cookie_jar"
  mt.__len = function(p) return p:count() end
  mt.__tostring = function(p) return ("%s (%d cookies)"):format(mt.__name, p:count()) end
  states[proxy] = st
  return proxy
end

-- cookies.jar{ unsafe, quote_cookie, treat_as_secure_origin, clock }
-- (not tail calls: argument errors name the caller's line)
function M.jar(opts)
  local jar = make(opts, false)
  return jar
end

-- cookies.dummy(): the jar API, storing nothing (aiohttp's DummyCookieJar).
function M.dummy(opts)
  local jar = make(opts, true)
  return jar
end

-- cookies.is(v): v is a jar or a dummy jar.
function M.is(v) return states[v] ~= nil end

return M
