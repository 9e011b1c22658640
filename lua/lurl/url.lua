-- URLs: RFC 3986 parsing, reference resolution (section 5.2) and the checks
-- an HTTP request needs. A parsed URL is a plain table
--   { scheme, user, password, host, port, path, query, fragment }
-- where absent components are nil (an empty query "?" is "", not nil).
local errors = require "lurl.errors"

local M = {}

local default_ports = { http = 80, https = 443, ws = 80, wss = 443 }
M.default_ports = default_ports

local function invalid(kind, msg, url)
  return nil, errors.new(kind, msg, { url = url })
end

-- Percent-encode what may not appear raw in a path, query or fragment (space,
-- controls above 0x7F, and a few delimiters browsers and yarl also encode);
-- existing %XX escapes are kept as they are.
local function percent(c) return ("%%%02X"):format(c:byte()) end

local function encode_unsafe(s)
  return (s:gsub("[%z\1-\32\34\60\62\92\94\96\123\124\125\127-\255]", percent))
end

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

local function parse_authority(u, raw)
  local a = u.authority
  u.authority = nil
  if not a then return u end
  local userinfo, hostport = a:match("^(.*)@(.*)$")
  if userinfo then
    local user, pass = userinfo:match("^([^:]*):(.*)$")
    u.user, u.password = user or userinfo, pass
  else
    hostport = a
  end
  local host, port
  if hostport:sub(1, 1) == "[" then
    host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
    if not host then return invalid("InvalidUrlClientError", "invalid IPv6 host in URL", raw) end
    host = host:lower()
    u.ipv6 = true
  else
    host, port = hostport:match("^([^:]*):?(%d*)$")
    if not host then return invalid("InvalidUrlClientError", "invalid port in URL", raw) end
    if host:find("[%s%z\1-\31\127%%<>\"{}|\\^`]") then
      return invalid("InvalidUrlClientError", "invalid character in host '" .. host .. "'", raw)
    end
    host = host:lower()
  end
  u.host = host
  if port ~= "" then
    local n = tonumber(port)
    if not n or n > 65535 then return invalid("InvalidUrlClientError", "port out of range: " .. port, raw) end
    u.port = n
  end
  return u
end

-- parse(str) -> url, or nil, InvalidURL error. Any scheme; relative
-- references parse too (scheme and host nil).
function M.parse(s)
  if type(s) ~= "string" then return invalid("InvalidURL", "URL must be a string, got " .. type(s), tostring(s)) end
  if s:find("[%z\1-\31\127]") then return invalid("InvalidURL", "URL contains a control character", s) end
  s = s:match("^%s*(.-)%s*$")
  local u, err = parse_authority(split(s), s)
  if not u then return nil, err end
  u.path = encode_unsafe(u.path)
  if u.query then u.query = encode_unsafe(u.query) end
  if u.fragment then u.fragment = encode_unsafe(u.fragment) end
  return u
end

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

local function merge(base, ref_path)
  if base.host and (base.path == nil or base.path == "") then return "/" .. ref_path end
  return (base.path:match("^(.*/)") or "") .. ref_path
end

local function copy_authority(to, from)
  to.user, to.password, to.host, to.port, to.ipv6 = from.user, from.password, from.host, from.port, from.ipv6
end

-- resolve(base, ref) -> url: RFC 3986 5.2.2 (strict: a scheme in ref wins).
function M.resolve(base, ref)
  local t = {}
  if ref.scheme then
    t.scheme = ref.scheme
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

-- join(base, ref) with strings or parsed URLs -> url, or nil, err.
function M.join(base, ref)
  local b, r, err = base, ref, nil
  if type(b) == "string" then b, err = M.parse(b); if not b then return nil, err end end
  if type(r) == "string" then r, err = M.parse(r); if not r then return nil, err end end
  return M.resolve(b, r)
end

local function host_text(u)
  if u.ipv6 or (u.host and u.host:find(":", 1, true)) then return "[" .. u.host .. "]" end
  return u.host
end

-- The authority as sent in Host: the port only when it is not the default.
function M.host_header(u)
  local h = host_text(u)
  if u.port and u.port ~= default_ports[u.scheme] then h = h .. ":" .. u.port end
  return h
end

-- RFC 3986 5.3 recomposition.
function M.tostring(u)
  local parts = {}
  if u.scheme then parts[#parts + 1] = u.scheme .. ":" end
  if u.host then
    parts[#parts + 1] = "//"
    if u.user then
      parts[#parts + 1] = u.user
      if u.password then parts[#parts + 1] = ":" .. u.password end
      parts[#parts + 1] = "@"
    end
    parts[#parts + 1] = host_text(u)
    if u.port then parts[#parts + 1] = ":" .. u.port end
  end
  parts[#parts + 1] = u.path or ""
  if u.query then parts[#parts + 1] = "?" .. u.query end
  if u.fragment then parts[#parts + 1] = "#" .. u.fragment end
  return table.concat(parts)
end

-- The request target (origin-form, RFC 9112 3.2.1).
function M.target(u)
  local path = u.path ~= "" and u.path or "/"
  if u.query then return path .. "?" .. u.query end
  return path
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
    return invalid("InvalidUrlClientError", "non-ASCII host names are not supported yet: " .. raw, raw)
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
  local function add(k, v) out[#out + 1] = form_escape(scalar(k, "key")) .. "=" .. form_escape(scalar(v, "value of '" .. tostring(k) .. "'")) end
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

-- with_params(u, params): a copy of u whose query has params appended.
function M.with_params(u, params)
  local q
  if type(params) == "string" then q = encode_unsafe(params) else q = M.encode_form(params) end
  local c = {}
  for k, v in pairs(u) do c[k] = v end
  if q ~= "" then c.query = (c.query and c.query ~= "") and (c.query .. "&" .. q) or q end
  return c
end

return M
