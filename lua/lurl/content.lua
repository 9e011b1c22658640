-- Response content helpers, as pure functions over strings for response.lua
-- to wire in: Content-Disposition (RFC 6266), Link (RFC 8288), the charset
-- of a Content-Type and decoding to UTF-8 (glibc's iconv through the FFI),
-- aiohttp's get_encoding and JSON media type check, and a line splitter for
-- readline() over a streamed body.
--
-- Header values are bytes as they came off the wire. Programmer mistakes (a
-- number where a string belongs, an unknown errors mode) raise argument
-- errors; what a server sends never raises: a malformed header gives nil, an
-- undecodable body nil and a message.
local check = require "lurl.check"
local ffi = require "ffi"

local M = {}

-- RFC 9110 5.6.2: tchar, as a pattern class
local TCHAR = "[%w!#%$%%&'%*%+%-%.%^_`|~]"
local TOKEN = TCHAR .. "+"

-- the first position at or after i that is not OWS (SP / HTAB)
local function skip_ows(s, i)
  return s:find("[^ \t]", i) or #s + 1
end

-- quoted-string (RFC 9110 5.6.4) at s[i] == '"': its value with the
-- quoted-pairs undone and the position after it; nil when it never ends.
local function quoted(s, i)
  local parts, j = {}, i + 1
  while true do
    local k = s:find('["\\]', j)
    if not k then return nil end
    parts[#parts + 1] = s:sub(j, k - 1)
    if s:byte(k) == 34 then return table.concat(parts), k + 1 end
    if k == #s then return nil end
    parts[#parts + 1] = s:sub(k + 1, k + 1)
    j = k + 2
  end
end

-- One name=value parameter at s[i]: lowercased name, value (token or
-- unescaped quoted-string), whether it was quoted, the next position.
-- RFC 9110 allows no whitespace around "=", but RFC 6266's own example
-- (FILENAME= "an example.html") has some, so OWS is taken on both sides.
local function param_at(s, i)
  local name, j = s:match("^(" .. TOKEN .. ")[ \t]*=[ \t]*()", i)
  if not name then return nil end
  if s:byte(j) == 34 then
    local v, k = quoted(s, j)
    if not v then return nil end
    return name:lower(), v, true, k
  end
  local v, k = s:match("^(" .. TOKEN .. ")()", j)
  if not v then return nil end
  return name:lower(), v, false, k
end

-- parameters (RFC 9110 5.6.6): *( OWS ";" OWS [ parameter ] ) from s[i] to
-- the end, as a list of { name, value, quoted }. Empty parameters (";;", a
-- trailing ";") are allowed by that grammar. strict: anything else makes the
-- whole list nil; lenient: the broken parameter is skipped to the next ";".
local function parse_params(s, i, strict)
  local out, n = {}, #s
  while true do
    i = skip_ows(s, i)
    if i > n then return out end
    if s:byte(i) ~= 59 then
      if strict then return nil end
      i = s:find(";", i, true)
      if not i then return out end
    end
    i = skip_ows(s, i + 1)
    if i <= n and s:byte(i) ~= 59 then
      local name, value, q, j = param_at(s, i)
      if name then
        out[#out + 1] = { name, value, q }
        i = j
      elseif strict then
        return nil
      end
    end
  end
end

-- ---- UTF-8 ----

local REPLACEMENT = "\239\191\189" -- U+FFFD

-- The well-formed UTF-8 sequence at p[i] (0-based, n bytes in all): its
-- length; or nil, the length of its maximal well-formed prefix (at least 1:
-- what one U+FFFD replaces, Unicode 15.0 section 3.9 "U+FFFD Substitution of
-- Maximal Subparts", as Python and WHATWG do) and whether it was cut off by
-- the end. Ranges after Unicode table 3-7 (RFC 3629 section 4): no overlong
-- forms, no surrogates, nothing above U+10FFFF.
local function utf8_seq(p, i, n)
  local c = p[i]
  local need, lo, hi
  if c >= 0xC2 and c <= 0xDF then need, lo, hi = 1, 0x80, 0xBF
  elseif c == 0xE0 then need, lo, hi = 2, 0xA0, 0xBF
  elseif c == 0xED then need, lo, hi = 2, 0x80, 0x9F
  elseif c >= 0xE1 and c <= 0xEF then need, lo, hi = 2, 0x80, 0xBF
  elseif c == 0xF0 then need, lo, hi = 3, 0x90, 0xBF
  elseif c == 0xF4 then need, lo, hi = 3, 0x80, 0x8F
  elseif c >= 0xF1 and c <= 0xF3 then need, lo, hi = 3, 0x80, 0xBF
  else return nil, 1, false end
  for k = 1, need do
    if i + k >= n then return nil, k, true end
    local b = p[i + k]
    if b < lo or b > hi then return nil, k, false end
    lo, hi = 0x80, 0xBF
  end
  return need + 1
end

-- off: 0-based in s; shift: what comes before s in the caller's bytes
local function decode_error(label, s, off, truncated, shift)
  shift = shift or 0
  if truncated then
    return ("cannot decode %s: incomplete byte sequence at offset %d (end of input)"):format(label, off + shift)
  end
  return ("cannot decode %s: invalid byte 0x%02x at offset %d"):format(label, s:byte(off + 1), off + shift)
end

-- Whether s has a byte above 0x7F. A loop over the bytes through an FFI
-- pointer, which LuaJIT compiles to a few instructions a byte (about 2 GB/s
-- here); string.find with a "[\128-\255]" class managed 90 MB/s.
local function has_high(s)
  local p = ffi.cast("const uint8_t *", s)
  for i = 0, #s - 1 do
    if p[i] >= 0x80 then return true end
  end
  return false
end

-- Validate (strict) or repair (replace, ignore) UTF-8 in Lua: valid text
-- comes back as the same string, without a copy. Offsets are 0-based.
local function utf8_decode(s, mode, label)
  local p, n = ffi.cast("const uint8_t *", s), #s
  local out, from, i = nil, 1, 0
  while i < n do
    if p[i] < 0x80 then
      i = i + 1
    else
      local len, bad, truncated = utf8_seq(p, i, n)
      if len then
        i = i + len
      else
        if mode == "strict" then return nil, decode_error(label, s, i, truncated), i end
        out = out or {}
        out[#out + 1] = s:sub(from, i)
        if mode == "replace" then out[#out + 1] = REPLACEMENT end
        i = i + bad
        from = i + 1
      end
    end
  end
  if not out then return s end
  out[#out + 1] = s:sub(from)
  return table.concat(out)
end

-- ---- iconv ----

-- glibc's iconv(3). Declared under a private type name; when the functions
-- are already declared differently (another module's cdef) only UTF-8 and
-- ASCII text can be decoded, and other charsets say why.
local C = ffi.C
local have_iconv = pcall(ffi.cdef, [[
  typedef void *lurl_iconv_t;
  lurl_iconv_t iconv_open(const char *tocode, const char *fromcode);
  size_t iconv(lurl_iconv_t cd, char **inbuf, size_t *inbytesleft, char **outbuf, size_t *outbytesleft);
  int iconv_close(lurl_iconv_t cd);
]]) and pcall(function() return C.iconv_open ~= nil end)

local E2BIG, EINVAL, EILSEQ = 7, 22, 84 -- Linux <errno.h>
-- (size_t)-1, through a signed type: LuaJIT turns the double -1 into 2^63
local SIZE_MAX = ffi.cast("size_t", ffi.cast("int64_t", -1))
local OUTSZ = 65536
local outbuf = false -- made on the first conversion: most runs decode only UTF-8
local inp, inleft = ffi.new("char *[1]"), ffi.new("size_t[1]")
local outp, outleft = ffi.new("char *[1]"), ffi.new("size_t[1]")

-- One conversion descriptor per charset, opened on first use and kept for
-- the life of the Lua state (closed by the collector with it). Decoding
-- never yields, so two tasks never share a descriptor mid-conversion; each
-- use starts by resetting it to the initial state. Names iconv rejects are
-- not cached: a server could send any number of them.
local descriptors = {}

-- RFC 9110 8.3.2: a charset is a token. Anything else (notably "//" and ",",
-- which make glibc transliterate or drop characters) is not a charset.
-- keep = false: a descriptor for one use, closed by the caller.
local function open(name, keep)
  local cd = keep ~= false and descriptors[name]
  if cd then return cd end
  if not have_iconv or not name:find("^" .. TOKEN .. "$") then return nil end
  cd = C.iconv_open("UTF-8", name)
  if ffi.cast("intptr_t", cd) == -1 then
    -- Python's spellings glibc lacks: utf_16, latin-1
    local alt = name:gsub("_", "-")
    if name == "latin-1" then alt = "latin1" end
    if alt == name then return nil end
    cd = C.iconv_open("UTF-8", alt)
    if ffi.cast("intptr_t", cd) == -1 then return nil end
  end
  if keep == false then return cd end
  cd = ffi.gc(cd, C.iconv_close)
  descriptors[name] = cd
  return cd
end

-- glibc's converters that look for a byte order mark keep the order they
-- found in the descriptor itself, where resetting does not reach: after
-- UTF-16 text with a little-endian mark, text without one was read as
-- little-endian too. For UTF-16 and UTF-32 decode() reads the mark itself
-- and asks iconv for an explicit order; UCS-2, UCS-4 and UNICODE get a
-- descriptor per use.
local function sniffs_order(cs)
  return cs:find("^ucs") ~= nil or cs:find("^unicode") ~= nil
end

-- UTF-16 and UTF-32 without a stated order: the byte order mark, when
-- there is one, tells it and is not text; without one the order is
-- big-endian (RFC 2781 section 4.3; Unicode 15.0 section 3.10, D98 and
-- D101). -> the explicit charset, the bytes after the mark, its length.
local function byte_order(cs, bytes)
  local bits = cs:gsub("_", "-"):match("^utf%-?(%d%d)$")
  if bits == "16" then
    local bom = bytes:sub(1, 2)
    if bom == "\255\254" then return "utf-16le", bytes:sub(3), 2 end
    if bom == "\254\255" then return "utf-16be", bytes:sub(3), 2 end
    return "utf-16be", bytes, 0
  elseif bits == "32" then
    local bom = bytes:sub(1, 4)
    if bom == "\255\254\0\0" then return "utf-32le", bytes:sub(5), 4 end
    if bom == "\0\0\254\255" then return "utf-32be", bytes:sub(5), 4 end
    return "utf-32be", bytes, 0
  end
  return cs, bytes, 0
end

-- How many bytes a replaced or ignored invalid sequence skips: one, except
-- in the fixed-width UTF-16 and UTF-32 families, where skipping a byte would
-- misalign everything after it.
local function unit_of(name)
  if name:find("^utf%-?16") or name:find("^ucs%-?2") then return 2 end
  if name:find("^utf%-?32") or name:find("^ucs%-?4") then return 4 end
  return 1
end

-- Convert s to UTF-8 with cd; shift is added to the offsets reported (the
-- length of a byte order mark taken off before).
local function iconv_decode(cd, s, mode, label, unit, shift)
  C.iconv(cd, nil, nil, nil, nil) -- a failed earlier use may have left state behind
  outbuf = outbuf or ffi.new("char[?]", OUTSZ)
  local base = ffi.cast("char *", s)
  inp[0], inleft[0] = base, #s
  local parts, flushing = {}, false
  while true do
    outp[0], outleft[0] = outbuf, OUTSZ
    local r
    if flushing then
      -- the end of input: a stateful charset may still owe output
      r = C.iconv(cd, nil, nil, outp, outleft)
    else
      r = C.iconv(cd, inp, inleft, outp, outleft)
    end
    local err = r == SIZE_MAX and ffi.errno() or 0
    local made = OUTSZ - tonumber(outleft[0])
    if made > 0 then parts[#parts + 1] = ffi.string(outbuf, made) end
    if err == 0 then
      if flushing then break end
      flushing = true
    elseif err == EILSEQ or err == EINVAL then
      -- EINVAL: the input ends inside a sequence; EILSEQ: an invalid one
      local off = tonumber(inp[0] - base)
      if mode == "strict" then return nil, decode_error(label, s, off, err == EINVAL, shift), off + shift end
      if mode == "replace" then parts[#parts + 1] = REPLACEMENT end
      local left = tonumber(inleft[0])
      local skip = err == EINVAL and left or math.min(unit, left)
      inp[0], inleft[0] = inp[0] + skip, left - skip
    elseif err ~= E2BIG then -- E2BIG: the buffer is full, go round with it emptied
      return nil, ("cannot decode %s: iconv failed (errno %d)"):format(label, err)
    end
  end
  return table.concat(parts)
end

-- Charsets whose first 128 code points are ASCII's: ASCII-only text needs
-- no conversion. Only names glibc certainly knows, so an unknown charset is
-- reported even for ASCII text.
local function ascii_superset(cs)
  if cs == "utf-8" or cs == "utf8" or cs == "latin1" or cs == "iso8859-1" then return true end
  local n = tonumber(cs:match("^iso%-8859%-(%d%d?)$"))
  if n then return n >= 1 and n <= 16 and n ~= 12 end
  n = tonumber(cs:match("^windows%-125(%d)$") or cs:match("^cp125(%d)$"))
  return n ~= nil
end

local MODES = { strict = true, replace = true, ignore = true }

-- decode(bytes[, charset[, errors]]) -> UTF-8 text, or nil, message, offset.
-- charset defaults to UTF-8 and is any name iconv knows (case-insensitive);
-- errors is Python's: "strict" (the default) fails at the first invalid or
-- incomplete sequence with a message naming the charset and the 0-based
-- byte offset, also returned; "replace" puts U+FFFD in its place and goes
-- on; "ignore" drops it. UTF-8 is validated in Lua, never converted, and
-- ASCII text in an ASCII-compatible charset comes back as it is: no FFI
-- call for either. A UTF-8 byte order mark is kept, as Python's "utf-8" does.
function M.decode(bytes, charset, mode)
  check.arg("decode", "#1", bytes, "string")
  if charset == nil then charset = "utf-8" end
  check.arg("decode", "#2", charset, "string")
  if mode == nil then mode = "strict" end
  if not MODES[mode] then
    check.argerror("decode", "#3", "'strict', 'replace' or 'ignore' expected, got " .. tostring(mode))
  end
  local cs = charset:lower()
  local label = "'" .. charset .. "'"
  if cs == "utf-8" or cs == "utf8" then return utf8_decode(bytes, mode, label) end
  if ascii_superset(cs) and not has_high(bytes) then return bytes end
  local shift
  cs, bytes, shift = byte_order(cs, bytes)
  local keep = not sniffs_order(cs)
  local cd = open(cs, keep)
  if not cd then
    if not have_iconv then return nil, "cannot decode " .. label .. ": iconv is not available" end
    return nil, "unknown charset " .. label
  end
  if keep then return iconv_decode(cd, bytes, mode, label, unit_of(cs), shift) end
  local text, err, off = iconv_decode(cd, bytes, mode, label, unit_of(cs), shift)
  C.iconv_close(cd)
  return text, err, off
end

-- known_charset(name) -> true when decode() can convert from it.
function M.known_charset(name)
  check.arg("known_charset", "#1", name, "string")
  local cs = name:lower()
  if cs == "utf-8" or cs == "utf8" then return true end
  if not sniffs_order(cs) then return open(cs) ~= nil end
  local cd = open(cs, false)
  if cd then C.iconv_close(cd) end
  return cd ~= nil
end

-- ---- Content-Type ----

-- mime_type(content_type) -> "type/subtype" lowercased, or nil when the
-- value does not start with one (RFC 9110 8.3.1: both are tokens,
-- compared case-insensitively).
function M.mime_type(value)
  if value == nil then return nil end
  check.arg("mime_type", "#1", value, "string")
  local t, i = value:match("^[ \t]*(" .. TOKEN .. "/" .. TOKEN .. ")[ \t]*()")
  if not t or (i <= #value and value:byte(i) ~= 59) then return nil end
  return t:lower()
end

-- charset_of(content_type) -> the charset parameter, lowercased, or nil.
-- Lenient like aiohttp's parse_mimetype: a broken parameter elsewhere in the
-- value does not hide the charset.
function M.charset_of(value)
  if value == nil then return nil end
  check.arg("charset_of", "#1", value, "string")
  local i = value:find(";", 1, true)
  if not i then return nil end
  for _, p in ipairs(parse_params(value, i, false)) do
    if p[1] == "charset" then return p[2] ~= "" and p[2]:lower() or nil end
  end
  return nil
end

-- guess_encoding(bytes) -> "utf-8" when the bytes are valid UTF-8 (ASCII
-- included), else nil: a fallback_charset_resolver that never guesses
-- wrong, where aiohttp's default says "utf-8" whatever the bytes are.
function M.guess_encoding(bytes)
  check.arg("guess_encoding", "#1", bytes, "string")
  return utf8_decode(bytes, "strict", "") and "utf-8" or nil
end

-- get_encoding(content_type, body[, fallback]) -> charset name, after
-- aiohttp's ClientResponse.get_encoding: the Content-Type's charset when it
-- is known (an unknown one is passed over, as aiohttp passes over what
-- codecs.lookup refuses); "utf-8" for application/json and application/rdap
-- (+suffix) (RFC 8259 section 8.1, RFC 9083 section 1); then fallback(body),
-- the session's fallback_charset_resolver, when it names a charset; and
-- last "utf-8", the answer of aiohttp's default resolver.
function M.get_encoding(content_type, body, fallback)
  local cs = M.charset_of(content_type)
  if cs and M.known_charset(cs) then return cs end
  local mt = M.mime_type(content_type)
  if mt then
    local sub = mt:match("^application/([^+]*)")
    if sub == "json" or sub == "rdap" then return "utf-8" end
  end
  if fallback ~= nil then
    check.arg("get_encoding", "#3", fallback, "function")
    local guess = fallback(body)
    if type(guess) == "string" and guess ~= "" then return guess end
  end
  return "utf-8"
end

-- A media type without its parameters, trimmed and lowercased.
local function bare_type(s)
  return s:match("^[^;]*"):match("^[ \t]*(.-)[ \t]*$"):lower()
end

-- json_type_ok(content_type[, expected]) -> boolean: aiohttp's
-- is_expected_content_type, the check of resp.json(content_type=...).
-- Both may carry parameters; both are lowercased (media types are
-- case-insensitive). expected defaults to "application/json"; false or ""
-- turns the check off. For "application/json" the type must be
-- application/json or any type/subtype+json (RFC 6839 section 3.1), as
-- aiohttp's json_re says; any other expected type passes when it occurs in
-- the response's type (aiohttp's substring test). No Content-Type is
-- application/octet-stream (RFC 9110 8.3).
function M.json_type_ok(content_type, expected)
  if expected == nil then expected = "application/json" end
  if expected == false or expected == "" then return true end
  check.arg("json_type_ok", "#2", expected, "string")
  if content_type ~= nil then check.arg("json_type_ok", "#1", content_type, "string") end
  local got = content_type and bare_type(content_type) or ""
  if got == "" then got = "application/octet-stream" end
  local want = bare_type(expected)
  if want == "application/json" then
    return got == "application/json" or got:find("^[%w_.%-]+/[%w_.%+%-]+%+json$") ~= nil
  end
  return got:find(want, 1, true) ~= nil
end

-- ---- RFC 8187 extended values ----

-- value-chars (attr-char / pct-encoded) to bytes; nil when anything else is
-- there or a "%" is not followed by two hex digits.
local function pct_decode(chars)
  if chars:find("[^%w!#%$&%+%-%.%^_`|~%%]") then return nil end
  if chars:gsub("%%%x%x", ""):find("%", 1, true) then return nil end
  return (chars:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- ext-value (RFC 8187 3.2.1): charset "'" [ language ] "'" value-chars, to
-- UTF-8, or nil. The RFC requires a charset; an empty one means UTF-8, as in
-- aiohttp. UTF-8 and ISO-8859-1 are the ones RFC 8187 and RFC 5987 name;
-- any other charset iconv knows is decoded too.
local function ext_value(v)
  local cs, chars = v:match("^([^']*)'[^']*'(.*)$")
  if not cs then return nil end
  local bytes = pct_decode(chars)
  if not bytes then return nil end
  return (M.decode(bytes, cs ~= "" and cs or "utf-8"))
end

-- A regular parameter value as UTF-8: RFC 9110 allows octets above 0x7F
-- in a quoted-string (obs-text). RFC 6266 appendix D notes that most
-- recipients read them as ISO-8859-1 and some detect UTF-8: valid UTF-8
-- stays, anything else is taken as ISO-8859-1.
local function text_value(v)
  if utf8_decode(v, "strict", "") then return v end
  return (v:gsub("[\128-\255]", function(c)
    local b = c:byte()
    return string.char(0xC0 + math.floor(b / 64), 0x80 + b % 64)
  end))
end

-- ---- Content-Disposition ----

-- RFC 2231 section 3 continuations, name*0, name*1, ... (name*N* carrying
-- pct-encoded bytes, name*0* their charset): not part of RFC 6266, but
-- aiohttp's content_disposition_filename joins them. segs[n] = { value,
-- extended }. Numbered from 0 without gaps; the joined value or nil.
local function join_continuations(segs)
  if not segs or not segs[0] then return nil end
  local parts, cs = {}, nil
  local n = 0
  while segs[n] do
    local value, extended = segs[n][1], segs[n][2]
    if extended then
      if n == 0 then
        cs, value = value:match("^([^']*)'[^']*'(.*)$")
        if not cs then return nil end
      end
      value = pct_decode(value)
      if not value then return nil end
    end
    parts[#parts + 1] = value
    n = n + 1
  end
  local joined = table.concat(parts)
  if cs then return (M.decode(joined, cs ~= "" and cs or "utf-8")) end
  return text_value(joined)
end

-- content_disposition(header) -> { type = "attachment", filename = "...",
-- parameters = { name = value } }, or nil when there is no header or it is
-- malformed (RFC 6266 section 4.1): no disposition type, a parameter that
-- is not name=token or name=quoted-string, or one given twice. type and
-- parameter names are lowercased; values are UTF-8, quoted-strings
-- unescaped; an ext-value (name*) is decoded (RFC 8187) and kept under its
-- own name with the "*" (as aiohttp keeps it); one that does not decode is
-- dropped, as aiohttp drops it. filename is filename* when present and
-- decodable, else filename, else RFC 2231 continuations (RFC 6266 4.3).
-- It is the server's word: strip any path from it before writing a file
-- (RFC 6266 section 4.3, "../" included).
function M.content_disposition(header)
  if header == nil then return nil end
  check.arg("content_disposition", "#1", header, "string")
  local dtype, i = header:match("^[ \t]*(" .. TOKEN .. ")()")
  if not dtype then return nil end
  local list = parse_params(header, i, true)
  if not list then return nil end
  local params, seen, segs = {}, {}, {}
  for _, p in ipairs(list) do
    local name, value, was_quoted = p[1], p[2], p[3]
    if seen[name] then return nil end
    seen[name] = true
    local base, num, star = name:match("^(.-)%*(%d+)(%*?)$")
    if base then
      segs[base] = segs[base] or {}
      segs[base][tonumber(num)] = { value, star == "*" and not was_quoted }
      params[name] = value
    elseif name:sub(-1) == "*" then
      -- an ext-value is never quoted (RFC 8187 3.2.1)
      params[name] = not was_quoted and ext_value(value) or nil
    else
      params[name] = text_value(value)
    end
  end
  local filename = params["filename*"] or params.filename or join_continuations(segs.filename)
  return { type = dtype:lower(), filename = filename, parameters = params }
end

-- ---- Link (RFC 8288) ----

-- B.4: a quoted-string, taking what is there when it never ends.
local function link_quoted(s, i)
  local v, j = quoted(s, i)
  if v then return v, j end
  return (s:sub(i + 1):gsub("\\(.)", "%1")), #s + 1
end

-- B.3: the link-params after a target, from s[i]: a list of { name, value }
-- (a parameter without "=" has the value "") and the position of the ","
-- or whatever ended them.
local function link_params(s, i)
  local out = {}
  while true do
    i = skip_ows(s, i)
    if s:byte(i) ~= 59 then return out, i end
    i = skip_ows(s, i + 1)
    local name, j = s:match("^([^ \t=;,]*)()", i)
    i = skip_ows(s, j)
    local value = ""
    if s:byte(i) == 61 then
      i = skip_ows(s, i + 1)
      if s:byte(i) == 34 then
        value, i = link_quoted(s, i)
      else
        local raw
        raw, i = s:match("^([^;,]*)()", i)
        value = raw:match("^(.-)[ \t]*$")
      end
      if name:sub(-1) == "*" then value = ext_value(value) end
    end
    if name ~= "" and value then out[#out + 1] = { name:lower(), value } end
  end
end

local function add_link(out, target, list, base, url)
  local params = {}
  for _, p in ipairs(list) do
    -- RFC 8288 section 3: later occurrences of a parameter are ignored
    if params[p[1]] == nil then params[p[1]] = p[2] end
  end
  -- B.2 step 16: title* (decoded) stands for title
  local starred = {}
  for name in pairs(params) do
    if name:sub(-1) == "*" and #name > 1 then starred[#starred + 1] = name end
  end
  for _, name in ipairs(starred) do params[name:sub(1, -2)] = params[name] end
  -- RFC 8288 B.2 step 8: resolved against the response's URL; a target
  -- that does not parse as a URL stays as written
  local resolved = target
  if base then
    local u = url.join(base, target)
    if u then resolved = url.tostring(u) end
  end
  local rels = {}
  for r in (params.rel or ""):gmatch("[^ \t]+") do rels[#rels + 1] = r:lower() end
  local link = { url = resolved, target = target, rel = params.rel, rels = rels, params = params }
  out[#out + 1] = link
  -- aiohttp's resp.links: keyed by rel, by the target when there is none;
  -- the first link of a key wins, as MultiDict.get gives it
  if #rels == 0 then
    if out[target] == nil then out[target] = link end
  end
  for _, r in ipairs(rels) do
    if out[r] == nil then out[r] = link end
  end
end

-- B.2 over one field value: stops at the first element that is not a
-- link-value. Empty list elements (", ,") are skipped (RFC 9110 5.6.1).
local function parse_link_value(s, out, base, url)
  local i = 1
  while true do
    i = s:find("[^ \t,]", i)
    if not i or s:byte(i) ~= 60 then return end
    local close = s:find(">", i + 1, true)
    if not close then return end
    local target = s:sub(i + 1, close - 1)
    local list
    list, i = link_params(s, close + 1)
    add_link(out, target, list, base, url)
  end
end

-- links(values[, base]) -> the links of Link header fields (RFC 8288
-- appendix B.2), in order: { url, target, rel, rels, params } each, where
-- target is the URI-Reference as written and url the same resolved against
-- base (a string or a parsed lurl.url) when base is given; rel is the rel
-- parameter as written ("next prev"), rels its relation types split and
-- lowercased; params has every parameter by lowercased name, the first of
-- each, title* decoded (RFC 8187) and standing for title too. values is one
-- field value or a list of them (a response may carry several Link fields;
-- each is parsed on its own, so a broken one hides nothing after it). The
-- same table is also the index of aiohttp's resp.links: links.next is the
-- first link with relation type "next", and a link without rel is found
-- under its target as written.
function M.links(values, base)
  if type(values) == "string" then values = { values }
  elseif values == nil then values = {}
  elseif type(values) ~= "table" then
    check.argerror("links", "#1", "string or list of strings expected, got " .. type(values))
  end
  local url
  if base ~= nil then
    url = require "lurl.url"
    if type(base) == "string" then
      local err
      base, err = url.parse(base)
      if not base then check.argerror("links", "#2", "base URL: " .. tostring(err and err.message)) end
    elseif type(base) ~= "table" then
      check.argerror("links", "#2", "URL string or table expected, got " .. type(base))
    end
  end
  local out = {}
  for n, v in ipairs(values) do
    if type(v) ~= "string" then
      check.argerror("links", "#1", "string expected at index " .. n .. ", got " .. type(v))
    end
    parse_link_value(v, out, base, url)
  end
  return out
end

-- ---- readline ----

-- A line splitter for resp:readline() over a streamed body: feed(chunk)
-- as chunks arrive, next() for each complete line ("\n" included, "\r\n"
-- kept as sent, as aiohttp's readline keeps it), rest() at the end for what
-- follows the last "\n". Chunks are queued, not appended to one buffer, and
-- the search for "\n" resumes where it stopped, so a long line arriving in
-- many small chunks costs linear time, not quadratic. opts.limit: next()
-- returns nil, message once more than limit bytes wait without a "\n"
-- (aiohttp's readline refuses such lines too).
local LineReader = {}
LineReader.__index = LineReader

function M.line_reader(opts)
  local limit
  if opts ~= nil then
    check.options("line_reader", "#1", opts, { limit = "number" })
    limit = opts.limit
  end
  -- q[head..tail]: chunks; pos: the first unread byte of q[head];
  -- q[si] from sp: where the search for "\n" goes on; size: bytes queued
  return setmetatable({ q = {}, head = 1, tail = 0, pos = 1, si = 1, sp = 1, size = 0, limit = limit }, LineReader)
end

function LineReader:feed(chunk)
  if type(chunk) ~= "string" then check.argerror("feed", "#1", "string expected, got " .. type(chunk)) end
  if chunk == "" then return self end
  local t = self.tail + 1
  self.q[t], self.tail, self.size = chunk, t, self.size + #chunk
  return self
end

-- Take everything from q[head] at pos to q[j] at k (inclusive).
local function take(self, j, k)
  local q, head = self.q, self.head
  local line
  if j == head then
    line = q[head]:sub(self.pos, k)
  else
    local parts = { q[head]:sub(self.pos) }
    for n = head + 1, j - 1 do parts[#parts + 1] = q[n] end
    parts[#parts + 1] = q[j]:sub(1, k)
    line = table.concat(parts)
  end
  for n = head, j - 1 do q[n] = nil end
  if k == #q[j] then
    q[j] = nil
    head, k = j + 1, 0
  else
    head = j
  end
  if head > self.tail then head, self.tail = 1, 0 end -- empty: start the queue over
  self.head, self.pos, self.si, self.sp = head, k + 1, head, k + 1
  self.size = self.size - #line
  return line
end

-- next() -> the next complete line, or nil when none has arrived yet (nil,
-- message past opts.limit).
function LineReader:next()
  local q = self.q
  while self.si <= self.tail do
    local k = q[self.si]:find("\n", self.sp, true)
    if k then return take(self, self.si, k) end
    self.si, self.sp = self.si + 1, 1
  end
  if self.limit and self.size > self.limit then
    return nil, ("line longer than %d bytes"):format(self.limit)
  end
  return nil
end

-- rest() -> everything still queued (the last line when the body does not
-- end with "\n"), "" when nothing is; the reader is empty afterwards.
function LineReader:rest()
  if self.size == 0 then return "" end
  local s = take(self, self.tail, #self.q[self.tail])
  return s
end

-- buffered() -> the number of bytes queued and not yet returned.
function LineReader:buffered() return self.size end

return M
