-- Form bodies, after aiohttp's FormData (aiohttp/formdata.py):
--
--   local fd = formdata.new({ q = "x" }, { quote_fields = true, charset = nil })
--   fd:add_field("note", "text", { content_type =, filename =, content_transfer_encoding = })
--   fd:add_file("upload", "/tmp/a.png", { filename =, content_type = })
--   local body = fd:body()
--     -- { content_type =, length = bytes or nil,
--     --   parts = { "literal", { file = path, size = n }, "literal", ... } }
--
-- The form is application/x-www-form-urlencoded unless a field is a file or
-- was added with content_type, filename or content_transfer_encoding; then it
-- is multipart/form-data (RFC 7578). That is aiohttp's rule; fd.is_multipart
-- tells which, and setting it to true forces multipart. body() leaves files
-- on disk: parts lists literal strings and file references in wire order, so
-- the sender streams each file and nothing is buffered.
--
-- A FormData is a plain table: fd.fields (the fields in order, each
-- { name, value, filename, content_type, content_transfer_encoding }),
-- fd.is_multipart, fd.quote_fields, fd.charset and fd.boundary (made by
-- formdata.boundary() when body() first needs one) may be read and set.
--
-- Where aiohttp and the HTML standard differ, this module follows HTML
-- with quote_fields = true (the default) and aiohttp with quote_fields =
-- false; see the escaping section below. Lua strings are bytes: they are
-- sent as given, never transcoded to charset.
local core = require "lurl.core"
local check = require "lurl.check"
local url = require "lurl.url"

local M = {}

local FormData = {}
local fd_mt = { __name = "lurl.formdata", __index = FormData }
local file_mt = { __name = "lurl.formdata_file" }
function file_mt.__tostring(f) return ("lurl.formdata_file (%s, %s bytes)"):format(f.path, tostring(f.size)) end

-- ---- files ----

-- A path's last component, as aiohttp's guess_filename (Path(name).name).
local function base_name(path)
  return path:gsub("/+$", ""):match("([^/]*)$")
end

-- A small table of the types worth telling apart; anything else is
-- application/octet-stream, as aiohttp's payload default.
local TYPES = {
  txt = "text/plain", html = "text/html", htm = "text/html", json = "application/json",
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif",
  pdf = "application/pdf", zip = "application/zip", gz = "application/gzip", -- RFC 6713
  bin = "application/octet-stream",
}
local OCTET = "application/octet-stream"

local function guess_type(name)
  local ext = name and name:match("%.([^./]+)$")
  return ext and TYPES[ext:lower()]
end
-- guess_type(name) -> the type a file's name suggests, or nil (a lurl.file
-- body's Content-Type comes from it too).
M.guess_type = guess_type

-- The size of the file at path now (io.open + seek), nil when it cannot be
-- seeked. A path that cannot be opened or read (missing, a directory) is an
-- argument error here rather than a failed request later: aiohttp opens
-- lazily, but a missing file is the caller's mistake and is best told at
-- the line that made it.
local function measure(path, fname, argn)
  if type(path) ~= "string" then
    check.argerror(fname, argn, "file path string expected, got " .. type(path))
  end
  local f, err = io.open(path, "rb")
  if not f then check.argerror(fname, argn, "cannot open file: " .. tostring(err)) end
  local ok, rerr = f:read(0)
  if ok == nil and rerr then
    f:close()
    check.argerror(fname, argn, ("cannot read file '%s': %s"):format(path, rerr))
  end
  local size = f:seek("end")
  f:close()
  return size
end

-- Both this module's file objects and lurl.body's lurl.file(path) objects
-- ({ path, size }) are accepted as field values; the latter are recognised by
-- their metatable's name so that this module needs nothing from lurl.body.
local function is_file(v)
  local mt = getmetatable(v)
  return mt == file_mt or (type(mt) == "table" and mt.__name == "lurl.body_file")
end

-- formdata.file(path) -> a file field value, measured now.
function M.file(path)
  return setmetatable({ path = path, size = measure(path, "file", "#1") }, file_mt)
end
M.is_file = is_file

-- ---- checks ----

-- A number as text (url.number_text), or an argument error for NaN and the
-- infinities.
local function number_text(v, what, fname, argn)
  local s = url.number_text(v)
  if not s then check.argerror(fname, argn, what .. " must be a finite number, got " .. tostring(v)) end
  return s
end

-- value(v) -> a string or a file object. Booleans are refused, as aiohttp's
-- multipart writer does: "true", "on" or "1" is the caller's choice.
local function check_value(v, name, fname, argn)
  local t = type(v)
  if t == "string" or is_file(v) then return v end
  local what = ("value of field '%s'"):format(name)
  if t == "number" then
    local s = number_text(v, what, fname, argn)
    return s
  end
  check.argerror(fname, argn, what .. " must be a string, number or file, got " .. t)
end

local function check_name(name, fname, argn)
  if type(name) ~= "string" then
    check.argerror(fname, argn, "field name must be a string, got " .. type(name))
  end
end

-- Text that goes into a part header as it is: no CR, LF or NUL, which
-- would end the header line (RFC 9110 5.5).
local function check_header_text(s, key, fname)
  if s:find("[\r\n%z]") then check.argerror(fname, "'" .. key .. "'", "contains CR, LF or NUL") end
end

-- RFC 9110 5.6.2 token: what a charset parameter may be unquoted.
local function check_charset(charset, fname)
  if charset ~= nil and not (type(charset) == "string" and charset:match("^[%w!#$%%&'*+.^_`|~-]+$")) then
    check.argerror(fname, "'charset'", ("charset must be a token, got %q"):format(tostring(charset)))
  end
end

-- RFC 2046 5.1.1: 1 to 70 bchars, not ending in a space.
local function check_boundary(b, fname)
  if type(b) ~= "string" or #b < 1 or #b > 70 or b:find("[^%w'()+_,%-./:=? ]") or b:sub(-1) == " " then
    check.argerror(fname, "'boundary'",
      ("boundary must be 1 to 70 of RFC 2046's bchars, not ending in a space, got %s"):format(
        type(b) == "string" and ("%q"):format(b) or type(b)))
  end
end

-- ---- escaping ----

-- With quote_fields (the HTML standard's multipart/form-data encoding
-- algorithm, whatwg/html#6282, as browsers send it): names have their
-- newlines normalised to CRLF, then names and filenames have only '"', CR
-- and LF escaped as %22, %0D and %0A; nothing else is touched, so "files[]"
-- and "résumé.pdf" go as they are. aiohttp 3.8 instead writes names as
-- RFC 5322 quoted-strings (or RFC 2231 name*=utf-8''...) and percent-encodes
-- every filename byte outside [A-Za-z0-9_.~-], which servers that follow
-- browsers show as "%C3%A9" (aiohttp issues #4012, #6826).
local HTML_ESCAPES = { ['"'] = "%22", ["\r"] = "%0D", ["\n"] = "%0A" }

-- HTML's newline normalisation: a CR not before LF, and an LF not after
-- CR, become CRLF.
local function crlf(s)
  if not s:find("[\r\n]") then return s end
  return (s:gsub("\r\n", "\n"):gsub("\r", "\n"):gsub("\n", "\r\n"))
end

local function html_name(s) return (crlf(s):gsub('[\r\n"]', HTML_ESCAPES)) end
local function html_filename(s) return (s:gsub('[\r\n"]', HTML_ESCAPES)) end

-- Without quote_fields (aiohttp's quote_fields=False branch of
-- content_disposition_header): the text as given inside a quoted-string,
-- '\' and '"' escaped with a backslash (RFC 9110 5.6.4). CR and LF cannot
-- be sent this way: they would end the header line and let a name inject
-- part headers (aiohttp would send them). They are refused when the
-- multipart body is made, not when the field is added: a urlencoded form
-- carries them well.
local function raw_quoted(s, what, fname, argn)
  if s:find("[\r\n]") then
    check.argerror(fname, argn, ("%s %q contains CR or LF, which quote_fields = false cannot send"):format(what, s))
  end
  return (s:gsub('[\\"]', "\\%0"))
end

-- ---- building the form ----

-- A field makes the form multipart when it is a file or carries any option
-- (aiohttp's add_field).
local function needs_multipart(e)
  return is_file(e.value) or e.filename ~= nil or e.content_type ~= nil or e.content_transfer_encoding ~= nil
end

local FIELD_OPTIONS = { content_type = "string", filename = "string", content_transfer_encoding = "string" }

-- add(self, name, value, opts, fname, argn): the checked field, added.
-- argn names the argument in errors: one ("#1", a table of fields) or a
-- list for name, value and opts.
local function add(self, name, value, opts, fname, argn)
  local an, av, ao = argn, argn, argn
  if type(argn) == "table" then an, av, ao = argn[1], argn[2], argn[3] end
  check_name(name, fname, an)
  local e = { name = name, value = check_value(value, name, fname, av) }
  if opts ~= nil then
    check.options(fname, ao, opts, FIELD_OPTIONS)
    for _, key in ipairs { "content_type", "content_transfer_encoding" } do
      if opts[key] then check_header_text(opts[key], key, fname) end
    end
    e.content_type, e.filename, e.content_transfer_encoding = opts.content_type, opts.filename,
      opts.content_transfer_encoding
  end
  -- a file's filename defaults to its base name, as aiohttp's guess_filename
  if is_file(e.value) and e.filename == nil then e.filename = base_name(e.value.path) end
  self.fields[#self.fields + 1] = e
  if needs_multipart(e) then self.is_multipart = true end
end

-- fd:add_field(name, value[, opts]): value is a string, a number or a file
-- (formdata.file(path) or lurl.file(path)).
function FormData:add_field(name, value, opts)
  add(self, name, value, opts, "add_field", { "#1", "#2", "#3" }, 2)
end

-- fd:add_file(name, path[, opts]): a file on disk, measured now and read
-- only when the body is sent. opts: filename (default: the path's base
-- name), content_type (default: guessed from the extension).
function FormData:add_file(name, path, opts)
  if opts ~= nil then
    check.options("add_file", "#3", opts, { filename = "string", content_type = "string" })
  end
  local f = setmetatable({ path = path, size = measure(path, "add_file", "#2") }, file_mt)
  add(self, name, f, opts, "add_file", { "#1", "#2", "#3" }, 2)
end

local function is_plain_table(v)
  return type(v) == "table" and getmetatable(v) == nil
end

-- A map name -> value or name -> list of values, names sorted so that the
-- body is stable (as url.encode_form); aiohttp keeps a dict's order, which a
-- Lua table does not have.
local function add_map(self, map, fname, argn)
  local names = {}
  for k in pairs(map) do
    if type(k) ~= "string" then
      check.argerror(fname, argn, ("field names must be strings, got %s %s"):format(type(k), tostring(k)))
    end
    names[#names + 1] = k
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local v = map[name]
    if is_plain_table(v) then
      for i = 1, #v do add(self, name, v[i], nil, fname, argn) end
    else
      add(self, name, v, nil, fname, argn)
    end
  end
end

local function is_pair(t)
  return is_plain_table(t) and #t == 2 and type(t[1]) == "string"
end

-- One argument of add_fields (or new's fields): another FormData (copies
-- of its fields, each with its own options; not its form options), a file (named after its base name, as aiohttp
-- names an unnamed file "unknown" or its file name), a {name, value} pair,
-- a list of pairs, or a map.
local function add_any(self, rec, fname, argn)
  if M.is(rec) then
    for _, e in ipairs(rec.fields) do
      local copy = {}
      for k, v in pairs(e) do copy[k] = v end
      self.fields[#self.fields + 1] = copy
    end
    if rec.is_multipart then self.is_multipart = true end
    return
  end
  if is_file(rec) then
    add(self, base_name(rec.path), rec, nil, fname, argn)
    return
  end
  if not is_plain_table(rec) then
    check.argerror(fname, argn,
      "a {name, value} pair, a list of pairs, a table of fields, a file or a FormData expected, got "
      .. type(rec))
  end
  local n = #rec
  if n == 0 then
    add_map(self, rec, fname, argn)
    return
  end
  for k in pairs(rec) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
      check.argerror(fname, argn, "a list of {name, value} pairs cannot also have named fields ('" .. tostring(k)
        .. "')")
    end
  end
  if is_pair(rec) then
    add(self, rec[1], rec[2], nil, fname, argn)
    return
  end
  for i = 1, n do
    if not is_pair(rec[i]) then
      check.argerror(fname, argn, ("item %d must be a {name, value} pair with a string name"):format(i))
    end
    add(self, rec[i][1], rec[i][2], nil, fname, argn)
  end
end

-- fd:add_fields(...): each argument as add_any reads it.
function FormData:add_fields(...)
  for i = 1, select("#", ...) do
    add_any(self, (select(i, ...)), "add_fields", "#" .. i, 2)
  end
end

-- formdata.new([fields[, opts]]) -> a FormData. fields: nil, a map name ->
-- value (or list of values), a list of {name, value} pairs, or anything
-- add_fields takes. opts: quote_fields (default true), charset (default
-- none: UTF-8), boundary (default: formdata.boundary() when first needed).
function M.new(fields, opts)
  local self = setmetatable({ fields = {}, is_multipart = false, quote_fields = true }, fd_mt)
  if opts ~= nil then
    check.options("new", "#2", opts, { quote_fields = "boolean", charset = "string", boundary = "string" })
    if opts.quote_fields ~= nil then self.quote_fields = opts.quote_fields end
    check_charset(opts.charset, "new")
    if opts.boundary ~= nil then check_boundary(opts.boundary, "new") end
    self.charset, self.boundary = opts.charset, opts.boundary
  end
  if fields ~= nil then add_any(self, fields, "new", "#1", 2) end
  return self
end

function M.is(v) return getmetatable(v) == fd_mt end

-- ---- boundaries ----

-- formdata.boundary() -> 32 lower-case hex digits, as aiohttp's
-- uuid.uuid4().hex: 128 bits from the OS's random source.
function M.boundary()
  return (core.random_bytes(16):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- ---- the body ----

local function urlencoded(self)
  check_charset(self.charset, "body")
  local out = {}
  for _, e in ipairs(self.fields) do
    if is_file(e.value) then
      check.raise(("a urlencoded form cannot carry the file of field '%s' (is_multipart was set to false)")
        :format(e.name))
    end
    out[#out + 1] = url.form_escape(e.name) .. "=" .. url.form_escape(e.value)
  end
  local s = table.concat(out, "&")
  local ctype = "application/x-www-form-urlencoded"
  -- aiohttp names the charset unless it is UTF-8, the standard's default
  if self.charset and self.charset:lower() ~= "utf-8" then ctype = ctype .. "; charset=" .. self.charset end
  return { content_type = ctype, length = #s, parts = { s } }
end

-- A part's Content-Type: the one given; a file's guessed from its path,
-- then its filename; a string with a filename (file content in memory, as
-- Python bytes) guessed from the filename; a text field's text/plain with
-- the form's charset (aiohttp's StringPayload).
local function part_type(e, charset)
  if e.content_type then return e.content_type end
  if is_file(e.value) then return guess_type(e.value.path) or guess_type(e.filename) or OCTET end
  if e.filename then return guess_type(e.filename) or OCTET end
  return "text/plain; charset=" .. (charset or "utf-8")
end

-- The part's head: Content-Disposition first, as browsers and RFC 7578's
-- examples write it (aiohttp writes Content-Type first; the order carries
-- no meaning). No Content-Length nor Content-Transfer-Encoding: RFC 7578
-- 4.7 and 4.8 (aiohttp 3.9 dropped them too), so content_transfer_encoding
-- only makes the form multipart.
local function part_head(self, e)
  local name, filename
  if self.quote_fields then
    name, filename = html_name(e.name), e.filename and html_filename(e.filename)
  else
    name = raw_quoted(e.name, "field name", "body", "#1")
    filename = e.filename and raw_quoted(e.filename, "filename", "body", "#1")
  end
  local disp = 'form-data; name="' .. name .. '"'
  if filename then disp = disp .. '; filename="' .. filename .. '"' end
  return "Content-Disposition: " .. disp .. "\r\nContent-Type: " .. part_type(e, self.charset) .. "\r\n\r\n"
end

-- A text field's value is newline-normalised with quote_fields, as HTML
-- does for every entry that is not a file; a value with a filename or a
-- content type is sent byte for byte.
local function part_value(self, e)
  if self.quote_fields and not (e.filename or e.content_type) then return crlf(e.value) end
  return e.value
end

local function multipart(self)
  if self.boundary == nil then self.boundary = M.boundary() end
  check_boundary(self.boundary, "body")
  check_charset(self.charset, "body")
  local b = self.boundary
  local delimiter = "--" .. b
  local parts, lit, length = {}, {}, 0
  local function flush()
    if #lit > 0 then parts[#parts + 1] = table.concat(lit); lit = {} end
  end
  for _, e in ipairs(self.fields) do
    lit[#lit + 1] = delimiter .. "\r\n" .. part_head(self, e)
    if is_file(e.value) then
      flush()
      parts[#parts + 1] = { file = e.value.path, size = e.value.size }
      length = length and e.value.size and length + e.value.size
    else
      local v = part_value(self, e)
      if v:find(delimiter, 1, true) then
        check.raise(("the value of field '%s' contains the boundary '%s': choose another one"):format(e.name, b))
      end
      lit[#lit + 1] = v
    end
    lit[#lit + 1] = "\r\n"
  end
  lit[#lit + 1] = delimiter .. "--\r\n"
  flush()
  for _, p in ipairs(parts) do
    if type(p) == "string" then length = length and length + #p end
  end
  -- the boundary is quoted only when it is not a token (aiohttp's
  -- _boundary_value); bchars hold no '"' nor '\'
  local param = b:match("^[%w!#$%%&'*+.^_`|~-]+$") and b or '"' .. b .. '"'
  return { content_type = "multipart/form-data; boundary=" .. param, length = length, parts = parts }
end

-- fd:body() -> { content_type, length, parts }: parts are literal strings
-- and { file = path, size = n } references in wire order; length is their
-- total, nil when a file could not be measured. Calling it again gives the
-- same bytes (the boundary is kept in fd.boundary).
function FormData:body()
  if not M.is(self) then check.argerror("body", "#1", "FormData expected, got " .. type(self)) end
  -- not tail calls: their errors count this frame to reach the caller
  local body = self.is_multipart and multipart(self) or urlencoded(self)
  return body
end

return M
