-- HTTP Basic authentication (RFC 7617), after aiohttp's BasicAuth:
--   auth.basic(login[, password[, encoding]]) -> object
--   obj:encode() -> "Basic <base64(login:password)>"
--   auth.decode(header[, encoding]) -> object (raises on a bad header)
--   auth.from_url(u[, encoding]) -> object, or nil when u has no userinfo
-- The object has login, password and encoding fields; it prints without the
-- password. Lua strings are taken as UTF-8 text and converted to the
-- encoding ("latin1" by default, as aiohttp; "utf-8" is what RFC 7617
-- section 2.1 recommends servers announce; "ascii").
local errors = require "lurl.errors"
local check = require "lurl.check"
local url = require "lurl.url"

local M = {}

-- ---- base64 (RFC 4648 section 4), in Lua so nothing new is linked in ----

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local enc, dec = {}, {}
for i = 1, 64 do
  local c = ALPHABET:sub(i, i)
  enc[i - 1], dec[c:byte()] = c, i - 1
end

function M.b64encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = math.floor(n / 262144), math.floor(n / 4096) % 64
    local c3, c4 = math.floor(n / 64) % 64, n % 64
    out[#out + 1] = enc[c1] .. enc[c2] .. (b and enc[c3] or "=") .. (c and enc[c4] or "=")
  end
  return table.concat(out)
end

-- b64decode(s) -> bytes, or nil, reason. Strict as Python's
-- b64decode(validate=True): only the alphabet, whole quanta, '=' padding
-- only at the end.
function M.b64decode(s)
  if #s % 4 ~= 0 then return nil, "incorrect padding" end
  local pad = #(s:match("=*$"))
  if pad > 2 then return nil, "incorrect padding" end
  local out = {}
  for i = 1, #s - pad, 4 do
    local n, k = 0, 0
    for j = i, math.min(i + 3, #s - pad) do
      local v = dec[s:byte(j)]
      if not v then return nil, "invalid character '" .. s:sub(j, j) .. "'" end
      n, k = n * 64 + v, k + 1
    end
    for _ = k + 1, 4 do n = n * 64 end
    local b1, b2, b3 = math.floor(n / 65536), math.floor(n / 256) % 256, n % 256
    out[#out + 1] = k == 4 and string.char(b1, b2, b3) or k == 3 and string.char(b1, b2) or string.char(b1)
  end
  return table.concat(out)
end

-- ---- text encodings ----

-- UTF-8 code points of s (RFC 3629: no overlong forms, no surrogates), or
-- nil when s is not UTF-8.
local function code_points(s)
  local cps, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, cp, min
    if c < 0x80 then len, cp, min = 1, c, 0
    elseif c >= 0xC2 and c < 0xE0 then len, cp, min = 2, c - 0xC0, 0x80
    elseif c >= 0xE0 and c < 0xF0 then len, cp, min = 3, c - 0xE0, 0x800
    elseif c >= 0xF0 and c < 0xF5 then len, cp, min = 4, c - 0xF0, 0x10000
    else return nil end
    for j = i + 1, i + len - 1 do
      local cc = s:byte(j)
      if not cc or cc < 0x80 or cc > 0xBF then return nil end
      cp = cp * 64 + cc - 0x80
    end
    if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
    cps[#cps + 1] = cp
    i = i + len
  end
  return cps
end

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- to_bytes[encoding](text) and from_bytes[encoding](bytes) -> string, or
-- nil, reason.
local function single_byte(limit, name)
  return function(text)
    local cps = code_points(text)
    if not cps then return nil, "not UTF-8 text" end
    local out = {}
    for i, cp in ipairs(cps) do
      if cp > limit then return nil, ("U+%04X cannot be encoded in %s"):format(cp, name) end
      out[i] = string.char(cp)
    end
    return table.concat(out)
  end
end

local to_bytes = {
  latin1 = single_byte(0xFF, "latin1"),
  ascii = single_byte(0x7F, "ascii"),
  ["utf-8"] = function(text)
    if not code_points(text) then return nil, "not UTF-8 text" end
    return text
  end,
}

local from_bytes = {
  latin1 = function(bytes) return (bytes:gsub("[\128-\255]", function(c) return utf8_char(c:byte()) end)) end,
  ascii = function(bytes)
    local bad = bytes:find("[\128-\255]")
    if bad then return nil, ("byte 0x%02X at position %d is not ascii"):format(bytes:byte(bad), bad) end
    return bytes
  end,
  ["utf-8"] = function(bytes)
    if not code_points(bytes) then return nil, "not valid UTF-8" end
    return bytes
  end,
}

-- Python's codec names for the three encodings.
local ALIASES = {
  latin1 = "latin1", ["latin-1"] = "latin1", ["iso-8859-1"] = "latin1", ["iso8859-1"] = "latin1",
  ["iso_8859_1"] = "latin1", l1 = "latin1",
  ["utf-8"] = "utf-8", utf8 = "utf-8", utf_8 = "utf-8",
  ascii = "ascii", ["us-ascii"] = "ascii",
}

-- codec(...) -> the canonical name of encoding; raises for another.
local function codec(fname, encoding, argn)
  if encoding == nil then return "latin1" end
  if type(encoding) ~= "string" then
    check.argerror(fname, argn, "encoding must be a string, got " .. type(encoding))
  end
  local c = ALIASES[encoding:lower()]
  if not c then
    check.argerror(fname, argn, "unknown encoding '" .. encoding .. "' (latin1, utf-8 or ascii)")
  end
  return c
end

-- ---- BasicAuth ----

local BasicAuth = {}
local mt = { __name = "lurl.basic_auth", __index = BasicAuth }

function mt.__tostring(a)
  return ("lurl.basic_auth (login %q, encoding %s)"):format(a.login, a.encoding)
end

function mt.__eq(a, b)
  return a.login == b.login and a.password == b.password and a.encoding == b.encoding
end

-- The credentials as bytes of the encoding, or nil, reason.
local function credentials(login, password, encoding)
  local c = type(encoding) == "string" and ALIASES[encoding:lower()]
  if not c then return nil, "unknown encoding '" .. tostring(encoding) .. "'" end
  local l, why = to_bytes[c](login)
  if not l then return nil, "login: " .. why end
  local p
  p, why = to_bytes[c](password)
  if not p then return nil, "password: " .. why end
  return l .. ":" .. p
end

-- The Authorization header value (RFC 7617 section 2).
function BasicAuth:encode()
  local creds, why = credentials(self.login, self.password, self.encoding)
  if not creds then check.argerror("encode", "#0", why) end
  return "Basic " .. M.b64encode(creds)
end

local function new(fname, login, password, encoding)
  if type(login) ~= "string" then check.argerror(fname, "#1", "login must be a string, got " .. type(login)) end
  if password == nil then password = "" end
  if type(password) ~= "string" then
    check.argerror(fname, "#2", "password must be a string, got " .. type(password))
  end
  -- RFC 7617 section 2: the user-id cannot contain a colon
  if login:find(":", 1, true) then
    check.argerror(fname, "#1", "a ':' is not allowed in login (RFC 7617 section 2)")
  end
  local c = codec(fname, encoding, "#3")
  local ok, why = credentials(login, password, c)
  if not ok then check.argerror(fname, "#1", "cannot encode credentials in " .. c .. " (" .. why .. ")") end
  return setmetatable({ login = login, password = password, encoding = encoding or "latin1" }, mt)
end

-- auth.basic(login[, password[, encoding]]) -> BasicAuth. Raises when the
-- login holds a ':' or the text cannot be encoded.
function M.basic(login, password, encoding)
  return new("basic", login, password, encoding, 2)
end

-- auth.is(v): v is a BasicAuth.
function M.is(v) return getmetatable(v) == mt end

-- auth.decode(header[, encoding]) -> BasicAuth from an Authorization value.
-- A header that is not Basic credentials raises, as aiohttp's ValueError.
function M.decode(header, encoding)
  if type(header) ~= "string" then check.argerror("decode", "#1", "string expected, got " .. type(header)) end
  local c = codec("decode", encoding, "#2")
  local scheme, b64 = header:match("^([^ ]*) (.*)$")
  if not scheme then check.argerror("decode", "#1", "could not parse authorization header") end
  -- RFC 7235 section 2.1: the scheme is case-insensitive
  if scheme:lower() ~= "basic" then
    check.argerror("decode", "#1", "unknown authorization method '" .. scheme .. "'")
  end
  local bytes, why = M.b64decode(b64)
  if not bytes then check.argerror("decode", "#1", "invalid base64 encoding (" .. why .. ")") end
  local text
  text, why = from_bytes[c](bytes)
  if not text then check.argerror("decode", "#1", "credentials are not " .. c .. " (" .. why .. ")") end
  local login, password = text:match("^([^:]*):(.*)$")
  if not login then check.argerror("decode", "#1", "invalid credentials (no ':')") end
  return setmetatable({ login = login, password = password, encoding = encoding or "latin1" }, mt)
end

-- auth.from_url(u[, encoding]) -> BasicAuth from the user and password of
-- a URL (a string or a url.parse table; both are percent-decoded), nil when
-- it has none, or nil, InvalidUrlClientError when they cannot be Basic
-- credentials (a ':' in the user, text the encoding lacks).
function M.from_url(u, encoding)
  if type(u) == "string" then
    local err
    u, err = url.parse(u)
    if not u then return nil, err end
  elseif type(u) ~= "table" then
    check.argerror("from_url", "#1", "URL string or table expected, got " .. type(u))
  end
  codec("from_url", encoding, "#2")
  if u.user == nil and u.password == nil then return nil end
  local raw = url.tostring((url.strip_userinfo(u))) -- errors never show the password
  local ok, res = pcall(new, "from_url", u.user or "", u.password or "", encoding, 1)
  if not ok then
    local why = tostring(res):match("%((.*)%)$") or tostring(res)
    return nil, errors.new("InvalidUrlClientError", "URL credentials unusable for Basic auth: " .. why, { url = raw })
  end
  return res
end

return M
