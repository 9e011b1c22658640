-- URLs: RFC 3986 parsing, reference resolution (section 5.2) and the checks
-- an HTTP request needs, with yarl's canonical form (what aiohttp sends). A
-- parsed URL is a plain table
--   { scheme, user, password, host, port, path, query, fragment, ipv6 }
-- where absent components are nil (an empty query "?" is "", not nil).
--
-- Canonical at parse time, as yarl: path, query and fragment are requoted
-- (characters not allowed there are percent-encoded, valid %XX escapes are
-- kept with upper-case hex, escapes of characters allowed raw are decoded, a
-- '%' that starts no escape becomes %25); a path with an authority has its
-- dot segments removed; the host is lower-case ASCII (IDNA for Unicode names,
-- RFC 5952 text for IPv6). user and password are kept percent-decoded; they
-- are re-encoded only by url.tostring and never reach url.target or
-- url.host_header.
local core = require "lurl.core"
local errors = require "lurl.errors"
local ip = require "lurl.ip"

local M = {}

local default_ports = { http = 80, https = 443, ws = 80, wss = 443 }
M.default_ports = default_ports

local function invalid(kind, msg, url)
  return nil, errors.new(kind, msg, { url = url })
end

-- ---- percent-encoding ----

-- RFC 3986 section 2.3 unreserved characters plus the sub-delims that never
-- separate query fields (yarl's ALLOWED); each part adds its own.
local ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$'()*,"

local function hex_escape(c) return ("%%%02X"):format(c:byte()) end

-- quoter{ safe, protected, qs, requote } -> function(s) -> s, yarl's _Quoter:
-- bytes outside safe (ALLOWED, safe, protected, and "+&=;" unless qs) are
-- percent-encoded; with qs a space becomes '+' (application/x-www-form-
-- urlencoded). With requote a valid %XX is normalised (RFC 3986 6.2.2.1 and
-- 6.2.2.2): kept, upper-cased, when it encodes a protected or unsafe byte,
-- decoded when it encodes a safe one; a '%' that starts no escape is encoded.
-- Without requote every '%' is data and is encoded.
--
-- The byte tables are made on the first string with something to encode:
-- most URLs have nothing, and the tables of the eight quoters were the
-- largest part of what loading the library allocates.
local function quoter(spec)
  local safe = ALLOWED .. (spec.safe or "") .. (spec.qs and "" or "+&=;") .. (spec.protected or "")
  local is_safe, is_protected, map
  -- %w first: a class is scanned item by item for every byte
  local class = "[^%w" .. safe:gsub("%w", ""):gsub("%p", "%%%0") .. "]"
  local requote = spec.requote ~= false

  local function make_tables()
    is_safe, is_protected, map = {}, {}, {}
    for i = 1, #safe do is_safe[safe:sub(i, i)] = true end
    for c in (spec.protected or ""):gmatch(".") do is_protected[c] = true end
    for b = 0, 255 do
      local c = string.char(b)
      map[c] = is_safe[c] and c or hex_escape(c)
    end
    if spec.qs then map[" "] = "+" end
  end

  local function escape(h)
    local c = string.char(tonumber(h, 16))
    if is_safe[c] and not is_protected[c] then return c end
    return "%" .. h:upper()
  end

  return function(s)
    if not s:find(class) then return s end -- nothing to encode (and no '%')
    if not map then make_tables() end
    if not requote then return (s:gsub(class, map)) end
    local out, i = {}, 1
    while true do
      local p = s:find("%", i, true)
      out[#out + 1] = (s:sub(i, (p or 0) - 1):gsub(class, map))
      if not p then break end
      local h = s:match("^%x%x", p + 1)
      if h then out[#out + 1] = escape(h); i = p + 3 else out[#out + 1] = "%25"; i = p + 1 end
    end
    return table.concat(out)
  end
end

-- The parts as yarl quotes them (yarl/_quoters.py). A path keeps "%2F" and
-- "%2B" encoded (protected), a query keeps "%3D", "%2B", "%26" and "%3B".
local quote_path = quoter { safe = "@:", protected = "/+" }
local quote_query = quoter { safe = "?/:@", protected = "=+&;", qs = true }
local quote_fragment = quoter { safe = "?/:@" }
-- A name or value of a params table: everything that would separate fields
-- is encoded, '%' included.
local quote_query_part = quoter { safe = "?/:@", qs = true, requote = false }
-- user and password, from their decoded text (RFC 3986 3.2.1).
local quote_userinfo = quoter { requote = false }
-- A part kept as written (yarl's encoded=True): every character RFC 3986
-- allows in a path, query or fragment stays (pchar, '/' and '?', section
-- 3.3-3.5), escapes included whatever their case and validity; only bytes
-- none of them may hold (space, '"', '[', non-ASCII, ...) are encoded, so
-- that the text still fits in a request line.
local quote_raw = quoter { safe = ":/?@%", requote = false }

M.quote_path, M.quote_query, M.quote_fragment = quote_path, quote_query, quote_fragment

-- unquote(s): every valid %XX decoded; a stray '%' stays as it is.
function M.unquote(s)
  if not s:find("%", 1, true) then return s end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
local unquote = M.unquote

-- ---- hosts ----

-- ipv6_text(s) -> the RFC 5952 section 4 text of an IPv6 address (lower
-- case, no leading zeros, the longest run of two or more zero groups as
-- "::"), or nil when s is not one.
local function ipv6_text(s)
  local g = ip.v6_groups(s)
  if not g then return nil end
  local best, best_len, run, run_len = nil, 1, nil, 0
  for i = 1, 8 do
    if g[i] == 0 then
      if not run then run, run_len = i, 0 end
      run_len = run_len + 1
      if run_len > best_len then best, best_len = run, run_len end
    else
      run = nil
    end
  end
  local out = {}
  for i = 1, 8 do out[i] = ("%x"):format(g[i]) end
  if not best then return table.concat(out, ":") end
  return table.concat(out, ":", 1, best - 1) .. "::" .. table.concat(out, ":", best + best_len, 8)
end

local function parse_ip_literal(text, raw)
  local inner = text:match("^%[(.*)%]$")
  if not inner then return invalid("InvalidUrlClientError", "invalid IPv6 host in URL (unbalanced '[' ']')", raw) end
  if inner:find("%", 1, true) then
    return invalid("InvalidUrlClientError", "IPv6 zone identifiers (RFC 6874) are not supported: '" .. inner .. "'",
      raw)
  end
  if inner:match("^[vV]") then
    return invalid("InvalidUrlClientError", "IPvFuture hosts are not supported: '" .. inner .. "'", raw)
  end
  local h = ipv6_text(inner)
  if not h then return invalid("InvalidUrlClientError", "invalid IPv6 address '" .. inner .. "' in URL", raw) end
  return h
end

-- RFC 3986 7.4 warns of "rare IP address formats": the resolver (glibc's
-- inet_aton, as getaddrinfo) reads "0x7f.1", "0177.0.0.1" and "2130706433"
-- as 127.0.0.1. A host whose last label is a number is therefore read the
-- same way here (the WHATWG IPv4 parser) and written in dotted decimal, so
-- that u.host, Host and the address connected to agree; one that is no
-- address is an error rather than a DNS lookup.
local function ends_in_number(host)
  if not host:find("[%xxX]%.?$") then return nil end -- the common case: a name
  local last = host:gsub("%.$", ""):match("([^.]*)$")
  return last:match("^%d+$") or last:match("^0[xX]%x*$")
end

local function ipv4_number(part)
  if part:match("^0[xX]") then return tonumber("0" .. part:sub(3), 16) end
  if part:match("^0%d") then return part:match("^[0-7]+$") and tonumber(part, 8) end
  return part:match("^%d+$") and tonumber(part)
end

local function ipv4_canonical(host, raw)
  local parts = {}
  for p in (host:gsub("%.$", "") .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = p end
  local n, addr = #parts, 0
  local function bad(why)
    return invalid("InvalidUrlClientError", ("invalid IPv4 address '%s' in URL (%s)"):format(host, why), raw)
  end
  if n > 4 then return bad("more than four parts") end
  for i, p in ipairs(parts) do
    local v = p ~= "" and ipv4_number(p)
    if not v then return bad("'" .. p .. "' is not a number") end
    local limit = i < n and 256 or 256 ^ (5 - n)
    if v >= limit then return bad("'" .. p .. "' is out of range") end
    addr = i < n and addr + v * 256 ^ (4 - i) or addr + v
  end
  return ("%d.%d.%d.%d"):format(math.floor(addr / 16777216), math.floor(addr / 65536) % 256,
    math.floor(addr / 256) % 256, addr % 256)
end

-- A reg-name is unreserved / pct-encoded / sub-delims (RFC 3986 3.2.2).
local NOT_REG_NAME = "[^%w%-%._~!$&'()*+,;=]"

-- reg_name(text) -> lower-case ASCII host, or nil, err. Escapes stand for
-- UTF-8 octets (RFC 3986 3.2.2) and are decoded, so that IDNA, DNS and
-- the Host header all see the name itself; Unicode names become punycode
-- (UTS #46 non-transitional, RFC 5891 A-labels).
local function reg_name(text, raw)
  local host = text
  if host:find("%", 1, true) then
    if host:find("%%%X") or host:find("%%%x%X") or host:find("%%%x?$") then
      return invalid("InvalidUrlClientError", "invalid percent-encoding in host '" .. text .. "'", raw)
    end
    host = unquote(host)
  end
  if host:find("[\128-\255]") then
    local ascii, why = core.domain.to_ascii(host)
    if not ascii then
      return invalid("InvalidUrlClientError",
        ("invalid international host name '%s' (%s)"):format(host, (why:gsub("^EIDNA: ", "IDNA: "))), raw)
    end
    if ascii == "" then
      return invalid("InvalidUrlClientError", "host name '" .. host .. "' maps to nothing (IDNA)", raw)
    end
    host = ascii
  end
  local bad = host:match(NOT_REG_NAME)
  if bad then
    local shown = bad:find("[%c\128-\255]") and ("byte 0x%02X"):format(bad:byte()) or "'" .. bad .. "'"
    return invalid("InvalidUrlClientError", ("invalid character %s in host %q"):format(shown, host), raw)
  end
  host = host:lower()
  if ends_in_number(host) and not ip.v4_octets(host) then return ipv4_canonical(host, raw) end
  return host
end

-- ---- parsing ----

-- split(str) -> components, RFC 3986 appendix B, without validation.
local function split(s)
  local scheme, rest = s:match("^([%a][%w+.-]*):(.*)$")
  if not scheme then rest = s end
  local u = { scheme = scheme and scheme:lower() }
  local frag_at = rest:find("#", 1, true)
  if frag_at then u.fragment = rest:sub(frag_at + 1); rest = rest:sub(1, frag_at - 1) end
  local q_at = rest:find("?", 1, true)
  if q_at then u.query = rest:sub(q_at + 1); rest = rest:sub(1, q_at - 1) end
  local authority, path = rest:match("^//([^/]*)(.*)$")
  if authority then u.authority = authority else path = rest end
  u.path = path
  return u
end

-- RFC 3986 3.2.1: user and password split at the first ':' and decoded;
-- an empty user is none, as in yarl (so "http://@h/" has no credentials).
local function parse_userinfo(u, userinfo)
  local user, pass = userinfo:match("^([^:]*):(.*)$")
  if not user then user = userinfo end
  if user ~= "" then u.user = unquote(user) end
  if pass then u.password = unquote(pass) end
end

local function parse_authority(u, raw)
  local a = u.authority
  u.authority = nil
  if not a then return u end
  local at = a:match("^.*()@") -- the last '@': a host never holds one
  if at then
    parse_userinfo(u, a:sub(1, at - 1))
    a = a:sub(at + 1)
  end
  local hosttext, port, err
  if a:sub(1, 1) == "[" then
    hosttext, port = a:match("^(%[.-%]):?(%d*)$")
    if not hosttext then
      if not a:find("]", 1, true) then
        return invalid("InvalidUrlClientError", "invalid IPv6 host in URL (no ']')", raw)
      end
      return invalid("InvalidUrlClientError", "invalid port in URL", raw)
    end
    u.host, err = parse_ip_literal(hosttext, raw)
    u.ipv6 = true
  else
    hosttext, port = a:match("^([^:]*):?(%d*)$")
    if not hosttext then
      return invalid("InvalidUrlClientError", "invalid port in URL: '" .. (a:match(":(.*)$") or a) .. "'", raw)
    end
    u.host, err = reg_name(hosttext, raw)
  end
  if not u.host then return nil, err end
  if port ~= "" then
    local n = tonumber(port)
    if not n or n > 65535 then return invalid("InvalidUrlClientError", "port out of range: " .. port, raw) end
    u.port = n
  end
  return u
end

-- parse(str[, opts]) -> url, or nil, InvalidURL error. Any scheme; relative
-- references parse too (scheme and host nil). Control characters are an
-- error, not stripped as WHATWG does: CR and LF must never reach a request.
-- opts.encoded: path, query and fragment are not requoted but kept as
-- written (quote_raw), as aiohttp takes a Location under
-- requote_redirect_url = false.
function M.parse(s, opts)
  if type(s) ~= "string" then return invalid("InvalidURL", "URL must be a string, got " .. type(s), tostring(s)) end
  if s:find("[%z\1-\31\127]") then return invalid("InvalidURL", "URL contains a control character", s) end
  if s:byte(1) == 32 or s:byte(-1) == 32 then s = s:match("^ *(.-) *$") end
  local u, err = parse_authority(split(s), s)
  if not u then return nil, err end
  local raw = opts and opts.encoded
  u.path = (raw and quote_raw or quote_path)(u.path)
  -- yarl and RFC 3986 6.2.2.3: dot segments go from a path under an
  -- authority (a relative reference keeps them until it is resolved)
  if u.host and u.path:find(".", 1, true) then u.path = M.remove_dot_segments(u.path) end
  if u.query then u.query = (raw and quote_raw or quote_query)(u.query) end
  if u.fragment then u.fragment = (raw and quote_raw or quote_fragment)(u.fragment) end
  return u
end

-- ---- reference resolution (RFC 3986 section 5.2) ----

-- RFC 3986 5.2.4
function M.remove_dot_segments(path)
  local out = {}
  local input = path
  while input ~= "" do
    if input:sub(1, 3) == "../" then input = input:sub(4)
    elseif input:sub(1, 2) == "./" then input = input:sub(3)
    elseif input:sub(1, 3) == "/./" then input = input:sub(3)
    elseif input == "/." then input = "/"
    elseif input:sub(1, 4) == "/../" then input = input:sub(4); out[#out] = nil
    elseif input == "/.." then input = "/"; out[#out] = nil
    elseif input == "." or input == ".." then input = ""
    else
      local seg, rest = input:match("^(/?[^/]*)(.*)$")
      out[#out + 1] = seg
      input = rest
    end
  end
  return table.concat(out)
end

-- RFC 3986 5.2.3
local function merge(base, ref_path)
  if base.host and (base.path == nil or base.path == "") then return "/" .. ref_path end
  return (base.path:match("^(.*/)") or "") .. ref_path
end

local function copy_authority(to, from)
  to.user, to.password, to.host, to.port, to.ipv6 = from.user, from.password, from.host, from.port, from.ipv6
end

-- resolve(base, ref[, opts]) -> url: RFC 3986 5.2.2. Strict by default (a
-- scheme in ref wins); opts.strict == false is the backward-compatible
-- reading 5.2.2 allows and yarl and WHATWG use: "http:g" against an http
-- base is the relative "g".
function M.resolve(base, ref, opts)
  local t = {}
  local scheme = ref.scheme
  if scheme and opts and opts.strict == false and scheme == base.scheme and not ref.host then scheme = nil end
  if scheme then
    t.scheme = scheme
    copy_authority(t, ref)
    t.path, t.query = M.remove_dot_segments(ref.path), ref.query
  else
    if ref.host then
      copy_authority(t, ref)
      t.path, t.query = M.remove_dot_segments(ref.path), ref.query
    else
      if ref.path == "" then
        t.path = base.path
        if ref.query then t.query = ref.query else t.query = base.query end
      else
        if ref.path:sub(1, 1) == "/" then t.path = M.remove_dot_segments(ref.path)
        else t.path = M.remove_dot_segments(merge(base, ref.path)) end
        t.query = ref.query
      end
      copy_authority(t, base)
    end
    t.scheme = base.scheme
  end
  t.fragment = ref.fragment
  return t
end

-- join(base, ref[, opts]) with strings or parsed URLs -> url, or nil, err.
-- opts.strict as for resolve.
function M.join(base, ref, opts)
  local b, r, err = base, ref
  if type(b) == "string" then b, err = M.parse(b); if not b then return nil, err end end
  if type(r) == "string" then r, err = M.parse(r); if not r then return nil, err end end
  return M.resolve(b, r, opts)
end

-- ---- output ----

local function host_text(u)
  if u.ipv6 or (u.host and u.host:find(":", 1, true)) then return "[" .. u.host .. "]" end
  return u.host
end

-- The authority as sent in Host (RFC 9110 7.2): the ASCII host, the port
-- only when it is not the scheme's default, never userinfo.
function M.host_header(u)
  local h = host_text(u)
  if u.port and u.port ~= default_ports[u.scheme] then h = h .. ":" .. u.port end
  return h
end

local function userinfo(u)
  if u.user == nil and u.password == nil then return "" end
  local s = quote_userinfo(u.user or "")
  if u.password ~= nil then s = s .. ":" .. quote_userinfo(u.password) end
  return s .. "@"
end

-- RFC 3986 5.3 recomposition; the scheme's default port is left out (6.2.3,
-- as yarl's str) and user and password are percent-encoded again. An empty
-- path stays empty ("http://g", as 5.4 and yarl write it).
function M.tostring(u)
  local parts = {}
  if u.scheme then parts[#parts + 1] = u.scheme .. ":" end
  if u.host then
    parts[#parts + 1] = "//" .. userinfo(u) .. host_text(u)
    if u.port and u.port ~= default_ports[u.scheme] then parts[#parts + 1] = ":" .. u.port end
  end
  parts[#parts + 1] = u.path or ""
  if u.query then parts[#parts + 1] = "?" .. u.query end
  if u.fragment then parts[#parts + 1] = "#" .. u.fragment end
  return table.concat(parts)
end

-- The request target (origin-form, RFC 9112 3.2.1) exactly as aiohttp sends
-- it (yarl's raw_path_qs): "/" for an empty path, an empty query left out,
-- never the fragment (RFC 9110 7.1) nor userinfo.
function M.target(u)
  local path = (u.path and u.path ~= "") and u.path or "/"
  if u.query and u.query ~= "" then return path .. "?" .. u.query end
  return path
end

-- strip_userinfo(u) -> copy of u without user and password, user, password
-- (decoded; nil when absent). The session sends them as Authorization
-- (aiohttp's strip_auth_from_url) instead of leaving them in the URL.
function M.strip_userinfo(u)
  local c = {}
  for k, v in pairs(u) do c[k] = v end
  c.user, c.password = nil, nil
  return c, u.user, u.password
end

-- check_http(u, raw[, redirect]) -> u, or nil and the aiohttp-style error.
function M.check_http(u, raw, redirect)
  if not u.scheme then
    return invalid(redirect and "InvalidUrlRedirectClientError" or "InvalidUrlClientError",
      "URL has no scheme: " .. raw, raw)
  end
  if not default_ports[u.scheme] or u.scheme:sub(1, 2) == "ws" then
    return invalid(redirect and "NonHttpUrlRedirectClientError" or "NonHttpUrlClientError",
      "not an http or https URL: " .. raw, raw)
  end
  if not u.host or u.host == "" then
    return invalid(redirect and "InvalidUrlRedirectClientError" or "InvalidUrlClientError",
      "URL has no host: " .. raw, raw)
  end
  if u.host:find("[\128-\255]") then
    -- url.parse never makes one; a table built by hand may hold one
    return invalid("InvalidUrlClientError", "host is not ASCII (IDNA was not applied): " .. raw, raw)
  end
  return u
end

-- ---- query strings ----

local function form_escape(s)
  return (tostring(s):gsub("[^%w%-%._~ ]", function(c) return ("%%%02X"):format(c:byte()) end):gsub(" ", "+"))
end
M.form_escape = form_escape

local function scalar(v, what)
  local t = type(v)
  if t == "string" or t == "number" then return tostring(v) end
  if t == "boolean" then return v and "true" or "false" end
  error(("%s must be a string, number or boolean, got %s"):format(what, t), 0)
end

-- encode_form(t): application/x-www-form-urlencoded from a map (sorted by
-- key, so the result is stable), a map whose values are lists (repeated
-- keys), or a list of {name, value} pairs (order kept). Raises on bad values.
function M.encode_form(t)
  local out = {}
  local function add(k, v)
    out[#out + 1] = form_escape(scalar(k, "key")) .. "=" .. form_escape(scalar(v, "value of '" .. tostring(k) .. "'"))
  end
  if #t > 0 then
    for i, pair in ipairs(t) do
      if type(pair) ~= "table" then error(("item %d must be a {name, value} pair"):format(i), 0) end
      add(pair[1], pair[2])
    end
    return table.concat(out, "&")
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then for _, item in ipairs(v) do add(k, item) end else add(k, v) end
  end
  return table.concat(out, "&")
end

-- A number as text: an integral one without a fraction, others in the
-- shortest form that reads back the same (tostring's %.14g loses digits);
-- nil for NaN and the infinities.
function M.number_text(v)
  if v ~= v or v == math.huge or v == -math.huge then return nil end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
  for digits = 15, 16 do
    local s = ("%." .. digits .. "g"):format(v)
    if tonumber(s) == v then return s end
  end
  return ("%.17g"):format(v) -- always reads back the same
end

-- A params value as yarl's query_var: text, or a number. Booleans are
-- refused as aiohttp does (TypeError): true/false/1/"on" are the caller's
-- choice to make.
local function query_value(v, name)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    local s = M.number_text(v)
    if not s then error(("value of '%s' must be a finite number, got %s"):format(name, tostring(v)), 0) end
    return s
  end
  error(("value of '%s' must be a string or number, got %s"):format(name, t), 0)
end

local function query_pair(out, name, v)
  out[#out + 1] = quote_query_part(name) .. "=" .. quote_query_part(query_value(v, name))
end

local function pairs_query(list, n)
  local out = {}
  for i = 1, n do
    local pair = list[i]
    if type(pair) ~= "table" or type(pair[1]) ~= "string" then
      error(("item %d must be a {name, value} pair with a string name"):format(i), 0)
    end
    query_pair(out, pair[1], pair[2])
  end
  return out
end

local function map_query(map)
  local names = {}
  for k in pairs(map) do
    if type(k) ~= "string" then error(("names must be strings, got %s %s"):format(type(k), tostring(k)), 0) end
    names[#names + 1] = k
  end
  table.sort(names)
  local out = {}
  for _, name in ipairs(names) do
    local v = map[name]
    if type(v) == "table" then
      for i = 1, #v do query_pair(out, name, v[i]) end
    else
      query_pair(out, name, v)
    end
  end
  return out
end

-- encode_query(params) -> the encoded query of yarl's get_str_query: a map
-- name -> value or name -> list of values (names sorted, so the result is
-- stable), a list of {name, value} pairs (order kept, names may repeat), or
-- a string, requoted as a query in a URL (so text already encoded is not
-- encoded twice). Raises on a bad name or value.
function M.encode_query(params)
  if type(params) == "string" then return quote_query(params) end
  if type(params) ~= "table" then error("table or string expected, got " .. type(params), 0) end
  local n = #params
  if n > 0 then
    for k in pairs(params) do
      if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
        error("a list of {name, value} pairs cannot also have named fields ('" .. tostring(k) .. "')", 0)
      end
    end
    return table.concat(pairs_query(params, n), "&")
  end
  return table.concat(map_query(params), "&")
end

-- with_params(u, params): a copy of u whose query is extended with params,
-- as aiohttp's request does (yarl's extend_query): the existing query is
-- kept as it is and the new fields follow it after a '&'.
function M.with_params(u, params)
  local q = M.encode_query(params)
  local c = {}
  for k, v in pairs(u) do c[k] = v end
  if q == "" then return c end
  local old = c.query
  if old and old ~= "" then
    c.query = old:sub(-1) == "&" and old .. q or old .. "&" .. q
  else
    c.query = q
  end
  return c
end

return M
