-- Request bodies against Python's aiohttp server, run by
-- spec/interop_aiohttp_test.sh as
--   lurl spec/interop/aiohttp_bodies.lua <base_url> <files_dir> <sha256sums>
-- files_dir holds random files (big.bin, photo.png, notes.dat, empty.txt);
-- sha256sums is `sha256sum` output for them: Lua has no SHA-256, so the
-- digests the server computes from what it parsed are compared with those.
-- The server's endpoints (spec/interop/aiohttp_server.py): /upload
-- (request.read()), /parts (request.multipart(), part by part), /post
-- (request.post()), /redirect/{code}. Each answers with the framing it saw
-- (Content-Type, Content-Length, Transfer-Encoding) and what it parsed.
-- Prints one line per check and "N passed, N failed"; exits non-zero on failure.
local lurl = require "lurl"
local cjson = require "cjson"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local H = dofile(dir .. "/harness.lua")
local check, eq, ok = H.check, H.eq, H.ok

local base, files_dir, sums = ...
assert(base and files_dir and sums, "usage: lurl aiohttp_bodies.lua <base_url> <files_dir> <sha256sums>")

-- FILES[name] = { path, size, sha256 }
local FILES = {}
for line in io.lines(sums) do
  local digest, name = line:match("^(%x+)  (.+)$")
  assert(digest, "bad sha256sum line: " .. line)
  local path = files_dir .. "/" .. name
  local f = assert(io.open(path, "rb"))
  FILES[name] = { path = path, size = f:seek("end"), sha256 = digest }
  f:close()
end
for _, name in ipairs { "big.bin", "photo.png", "notes.dat", "empty.txt" } do
  assert(FILES[name], "missing from " .. sums .. ": " .. name)
end
local BIG, PHOTO, NOTES, EMPTY = FILES["big.bin"], FILES["photo.png"], FILES["notes.dat"], FILES["empty.txt"]

local session = lurl.session {
  base_url = base,
  timeout = lurl.timeout { total = 60, sock_connect = 5 },
}

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- JSON null (cjson.null) as nil
local function nn(v)
  if v == cjson.null then return nil end
  return v
end

-- The server's JSON answer: doc_of(resp, err[, what]), as a request returns
-- them; a failed request or a status other than 200 fails the check.
local function doc_of(r, err, what)
  if not r then error(("%s: request failed: %s"):format(what or "request", tostring(err)), 2) end
  if r.status ~= 200 then
    error(("%s: status %d: %s"):format(what or "request", r.status, r:text():sub(1, 300)), 2)
  end
  return assert(r:json())
end

local function post(path, opts, what)
  local r, err = session:post(path, opts)
  return doc_of(r, err, what or path)
end

-- The framing the server saw: Content-Length n (a number) and no
-- Transfer-Encoding, or chunked and no Content-Length.
local function framed_length(doc, n, what)
  eq(nn(doc.transfer_encoding), nil, (what or "") .. "Transfer-Encoding")
  eq(nn(doc.content_length), tostring(n), (what or "") .. "Content-Length")
end
local function framed_chunked(doc, what)
  eq(nn(doc.transfer_encoding), "chunked", (what or "") .. "Transfer-Encoding")
  eq(nn(doc.content_length), nil, (what or "") .. "Content-Length")
end

local function same_file(doc, file, what)
  eq(doc.length, file.size, (what or "") .. "length the server read")
  eq(doc.sha256, file.sha256, (what or "") .. "sha256 of what the server read")
end

local function read_file(file) return H.read_file(file.path) end

-- A generator over a file: chunks of varying sizes (1 byte to 1 MiB), empty
-- chunks now and then (they send nothing), and a short sleep every few
-- chunks so that the body goes out in several writes.
local SIZES = { 1, 7, 4096, 65536, 300001, 1048576, 13, 131072 }
local function file_generator(file)
  local f = assert(io.open(file.path, "rb"))
  local i = 0
  return function()
    i = i + 1
    if i % 5 == 3 then return "" end
    if i % 4 == 0 then lurl.sleep(0.002) end
    local s = f and f:read(SIZES[(i - 1) % #SIZES + 1])
    if not s then
      if f then f:close(); f = nil end
      return nil
    end
    return s
  end
end

-- ---- urlencoded ----

check("urlencoded FormData: the bytes aiohttp read", function()
  local doc = post("/upload", { data = lurl.formdata { a = "1", b = "x y&z" } })
  eq(doc.content_type, "application/x-www-form-urlencoded", "Content-Type")
  framed_length(doc, 13)
  eq(doc.body_hex, hex("a=1&b=x+y%26z"), "body")
end)

check("urlencoded FormData parsed by request.post()", function()
  local doc = post("/post", { data = lurl.formdata { a = "1", b = "x y&z" } })
  eq(#doc.fields, 2, "field count")
  eq(doc.fields[1].name, "a", "first name")
  eq(doc.fields[1].value_hex, hex("1"), "a")
  eq(doc.fields[2].name, "b", "second name")
  eq(doc.fields[2].value_hex, hex("x y&z"), "b")
end)

-- names and values that need escaping, repeated keys, empty values; the
-- table form sorts names, lists keep their order
local AWKWARD = {
  ["a"] = "1",
  ["sp ace"] = "x y&z=w+v%20u",
  ["crlf\r\nname"] = "line1\r\nline2\nline3\rline4",
  ["é ☃"] = "naïve – café",
  ["empty"] = "",
  ["list[]"] = { "p", "q", "" },
  ["sym*-._~!'()"] = "#?/:;@[]",
}
local function awkward_expected()
  local names = {}
  for k in pairs(AWKWARD) do names[#names + 1] = k end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    local v = AWKWARD[k]
    if type(v) == "table" then
      for _, item in ipairs(v) do out[#out + 1] = { k, item } end
    else
      out[#out + 1] = { k, v }
    end
  end
  return out
end

local function same_fields(fields, want, what)
  eq(#fields, #want, what .. ": field count")
  for i, w in ipairs(want) do
    eq(fields[i].name_hex, hex(w[1]), ("%s: name %d (%q)"):format(what, i, w[1]))
    eq(fields[i].value_hex, hex(w[2]), ("%s: value of %q"):format(what, w[1]))
  end
end

check("data = { ... } table with awkward names and values: request.post()", function()
  local doc = post("/post", { data = AWKWARD })
  eq(doc.content_type, "application/x-www-form-urlencoded", "Content-Type")
  same_fields(doc.fields, awkward_expected(), "data table")
end)

check("the same fields through lurl.formdata: request.post()", function()
  local doc = post("/post", { data = lurl.formdata(AWKWARD) })
  eq(doc.content_type, "application/x-www-form-urlencoded", "Content-Type")
  same_fields(doc.fields, awkward_expected(), "formdata")
end)

check("urlencoded with charset = latin1: aiohttp decodes with it", function()
  local doc = post("/post", { data = lurl.formdata({ ["caf\233"] = "cr\232me br\251l\233e" }, { charset = "latin1" }) })
  eq(doc.content_type, "application/x-www-form-urlencoded; charset=latin1", "Content-Type")
  same_fields(doc.fields, { { "café", "crème brûlée" } }, "latin1 form")
end)

check("urlencoded FormData with chunked = true", function()
  local doc = post("/post", { data = lurl.formdata { a = "1", b = "x y&z" }, chunked = true })
  framed_chunked(doc)
  same_fields(doc.fields, { { "a", "1" }, { "b", "x y&z" } }, "chunked form")
end)

check("empty forms: urlencoded and multipart", function()
  local doc = post("/upload", { data = lurl.formdata() })
  eq(doc.content_type, "application/x-www-form-urlencoded", "Content-Type")
  framed_length(doc, 0)
  local fd = lurl.formdata(nil, { boundary = "empty-boundary" })
  fd.is_multipart = true
  local parts = post("/parts", { data = fd })
  eq(#parts.parts, 0, "part count")
  eq(parts.total_bytes, #"--empty-boundary--\r\n", "bytes read")
  framed_length(parts, #"--empty-boundary--\r\n")
end)

check("number values in a FormData", function()
  local doc = post("/post", { data = lurl.formdata { { "i", 42 }, { "f", 0.1 }, { "neg", -1.5e-7 },
    { "big", 2 ^ 53 } } })
  same_fields(doc.fields, { { "i", "42" }, { "f", "0.1" }, { "neg", "-1.5e-07" }, { "big", "9007199254740992" } },
    "numbers")
end)

-- ---- multipart ----

-- A form with text fields and every kind of file field, and what each part
-- should look like to the server.
local function full_form(opts)
  local fd = lurl.formdata(nil, opts)
  fd:add_field("title", "hello")
  fd:add_field("note", "line1\nline2\r\nline3\rend")
  fd:add_file("big", BIG.path)
  fd:add_file("photo", PHOTO.path)
  fd:add_file("notes", NOTES.path, { filename = "renamed.txt", content_type = "text/x-notes" })
  fd:add_file("empty", EMPTY.path)
  fd:add_field("doc", lurl.file(NOTES.path), { filename = "via-lurl-file.bin" })
  fd:add_field("n", 42)
  return fd, {
    { name = "title", ctype = "text/plain; charset=utf-8", value = "hello" },
    -- a text value's newlines are normalised to CRLF (HTML)
    { name = "note", ctype = "text/plain; charset=utf-8", value = "line1\r\nline2\r\nline3\r\nend" },
    { name = "big", filename = "big.bin", ctype = "application/octet-stream", file = BIG },
    { name = "photo", filename = "photo.png", ctype = "image/png", file = PHOTO },
    { name = "notes", filename = "renamed.txt", ctype = "text/x-notes", file = NOTES },
    { name = "empty", filename = "empty.txt", ctype = "text/plain", file = EMPTY },
    { name = "doc", filename = "via-lurl-file.bin", ctype = "application/octet-stream", file = NOTES },
    { name = "n", ctype = "text/plain; charset=utf-8", value = "42" },
  }
end

-- /parts' answer against the expected parts.
local function same_parts(doc, fd, want, what)
  eq(doc.content_type, "multipart/form-data; boundary=" .. fd.boundary, what .. ": Content-Type")
  eq(#doc.parts, #want, what .. ": part count")
  for i, w in ipairs(want) do
    local p = doc.parts[i]
    local label = ("%s: part %d (%s)"):format(what, i, w.name)
    eq(p.name_hex, hex(w.name), label .. " name")
    eq(nn(p.filename_hex), w.filename and hex(w.filename), label .. " filename")
    eq(p.content_type, w.ctype, label .. " Content-Type")
    -- RFC 7578 4.7/4.8: no Content-Length nor Content-Transfer-Encoding in parts
    eq(table.concat(p.header_names, ","), "Content-Disposition,Content-Type", label .. " part headers")
    if w.file then
      eq(p.size, w.file.size, label .. " size")
      eq(p.sha256, w.file.sha256, label .. " sha256")
    else
      eq(p.value_hex, hex(w.value), label .. " value")
    end
  end
  -- everything the head announced was read, up to the close delimiter
  if doc.content_length ~= cjson.null then
    eq(doc.total_bytes, tonumber(doc.content_length), what .. ": bytes read vs Content-Length")
  end
end

local function total_size(want)
  local n = 0
  for _, w in ipairs(want) do if w.file then n = n + w.file.size end end
  return n
end

check("multipart: text fields and files, request.multipart() part by part", function()
  local fd, want = full_form()
  local doc = post("/parts", { data = fd })
  eq(nn(doc.transfer_encoding), nil, "Transfer-Encoding")
  assert(tonumber(doc.content_length) > total_size(want), "Content-Length " .. tostring(doc.content_length))
  same_parts(doc, fd, want, "multipart")
end)

check("multipart: the same form through request.post() (FileField)", function()
  local fd, want = full_form()
  local doc = post("/post", { data = fd })
  eq(#doc.fields, #want, "field count")
  for i, w in ipairs(want) do
    local f = doc.fields[i]
    local label = ("field %d (%s)"):format(i, w.name)
    eq(f.name_hex, hex(w.name), label .. " name")
    if w.file then
      eq(f.filename_hex, hex(w.filename), label .. " filename")
      eq(f.content_type, w.ctype, label .. " content type")
      eq(f.size, w.file.size, label .. " size")
      eq(f.sha256, w.file.sha256, label .. " sha256")
    else
      eq(f.kind, "str", label .. " decoded as text")
      eq(f.value_hex, hex(w.value), label .. " value")
    end
  end
end)

check("multipart text part with charset = latin1: request.post() decodes with it", function()
  local fd = lurl.formdata(nil, { charset = "latin1" })
  fd:add_field("dessert", "cr\232me br\251l\233e")
  fd.is_multipart = true
  local parts = post("/parts", { data = fd })
  eq(parts.parts[1].content_type, "text/plain; charset=latin1", "part Content-Type")
  eq(parts.parts[1].value_hex, hex("cr\232me br\251l\233e"), "bytes as given, not transcoded")
  same_fields(post("/post", { data = fd }).fields, { { "dessert", "crème brûlée" } }, "latin1 multipart")
end)

check("multipart with chunked = true", function()
  local fd, want = full_form()
  local doc = post("/parts", { data = fd, chunked = true })
  framed_chunked(doc)
  same_parts(doc, fd, want, "chunked multipart")
end)

check("multipart, byte for byte against a hand-built body", function()
  local fd = lurl.formdata(nil, { boundary = "lurl-interop-boundary" })
  fd:add_field("title", "hello")
  fd:add_file("notes", NOTES.path)
  fd:add_field("raw", "a\nb", { content_type = "application/x-raw" })
  local B = "--lurl-interop-boundary"
  local want = table.concat {
    B, "\r\n",
    'Content-Disposition: form-data; name="title"\r\n',
    "Content-Type: text/plain; charset=utf-8\r\n\r\n",
    "hello\r\n",
    B, "\r\n",
    'Content-Disposition: form-data; name="notes"; filename="notes.dat"\r\n',
    "Content-Type: application/octet-stream\r\n\r\n",
    read_file(NOTES), "\r\n",
    B, "\r\n",
    'Content-Disposition: form-data; name="raw"\r\n',
    "Content-Type: application/x-raw\r\n\r\n",
    "a\nb\r\n", -- a value with a content type is sent as it is
    B, "--\r\n",
  }
  local doc = post("/upload", { data = fd })
  eq(doc.content_type, "multipart/form-data; boundary=lurl-interop-boundary", "Content-Type")
  framed_length(doc, #want)
  eq(doc.body_hex, hex(want), "body")
end)

-- ---- names and filenames that need escaping ----

-- quote_fields = true (the default): the HTML standard's multipart/form-data
-- encoding. Names get their newlines normalised to CRLF, then names and
-- filenames have '"', CR and LF escaped as %22, %0D, %0A; nothing else is
-- touched (non-ASCII goes as UTF-8). aiohttp's parser does not undo the
-- percent escapes, so it reports the escaped strings. { given, on the wire }
local ESC = {
  { name = { 'a"b\nc\rd\r\ne', "a%22b%0D%0Ac%0D%0Ad%0D%0Ae" }, value = "v1" },
  { name = { "résumé ☃", "résumé ☃" }, value = "text\nwith\rnewlines",
    wire_value = "text\r\nwith\r\nnewlines" },
  { name = { "files[]", "files[]" }, filename = { 'q"uote\nnew\rline.txt', "q%22uote%0Anew%0Dline.txt" },
    value = "file\nbody", ctype = "text/plain" }, -- a value with a filename is not normalised
  { name = { "upload", "upload" }, filename = { "naïve café.pdf", "naïve café.pdf" },
    value = "%PDF", ctype = "application/pdf" },
  { name = { "semi;colon", "semi;colon" }, filename = { "a;b.txt", "a;b.txt" }, value = "s", ctype = "text/plain" },
  { name = { "per%cent", "per%cent" }, filename = { "100%22.txt", "100%22.txt" }, value = "p", ctype = "text/plain" },
}

local function escaped_form()
  local fd = lurl.formdata(nil, { boundary = "esc-boundary" })
  local body = {}
  for _, e in ipairs(ESC) do
    fd:add_field(e.name[1], e.value, e.filename and { filename = e.filename[1] } or nil)
    local disp = 'form-data; name="' .. e.name[2] .. '"'
    if e.filename then disp = disp .. '; filename="' .. e.filename[2] .. '"' end
    e.disposition = disp
    body[#body + 1] = "--esc-boundary\r\nContent-Disposition: " .. disp .. "\r\nContent-Type: "
      .. (e.ctype or "text/plain; charset=utf-8") .. "\r\n\r\n" .. (e.wire_value or e.value) .. "\r\n"
  end
  body[#body + 1] = "--esc-boundary--\r\n"
  return fd, table.concat(body)
end

check("escaped names and filenames: the bytes on the wire (HTML standard)", function()
  local fd, want = escaped_form()
  local doc = post("/upload", { data = fd })
  framed_length(doc, #want)
  eq(doc.body_hex, hex(want), "body")
end)

check("escaped names and filenames: as aiohttp's multipart parser reads them", function()
  local fd = escaped_form()
  local doc = post("/parts", { data = fd })
  eq(#doc.parts, #ESC, "part count")
  for i, e in ipairs(ESC) do
    local p = doc.parts[i]
    local label = ("part %d (%q)"):format(i, e.name[1])
    eq(p.disposition_hex, hex(e.disposition), label .. " Content-Disposition")
    eq(p.name_hex, hex(e.name[2]), label .. " name")
    eq(nn(p.filename_hex), e.filename and hex(e.filename[2]), label .. " filename")
    eq(p.value_hex, hex(e.wire_value or e.value), label .. " value")
  end
end)

check("a backslash in a name goes as it is (aiohttp's parser drops it: its quirk)", function()
  local fd = lurl.formdata(nil, { boundary = "bs-boundary" })
  fd:add_field("back\\slash", "v", { filename = "C:\\dir\\x.txt" })
  local doc = post("/parts", { data = fd })
  eq(doc.parts[1].disposition_hex, hex('form-data; name="back\\slash"; filename="C:\\dir\\x.txt"'),
    "Content-Disposition")
  -- aiohttp 3.8 reads '\x' in a quoted-string as an escaped 'x' (RFC 9110
  -- quoted-pair), so a browser's backslash is lost there; not lurl's to fix
  eq(doc.parts[1].name, "backslash", "aiohttp's reading of the name")
end)

check("quote_fields = false: quoted-strings that aiohttp unescapes to the original", function()
  local fd = lurl.formdata(nil, { quote_fields = false, boundary = "qf-boundary" })
  fd:add_field('say "hi"', "1")
  fd:add_field("back\\slash é", "2", { filename = 'f"\\q ü.txt' })
  local doc = post("/parts", { data = fd })
  eq(#doc.parts, 2, "part count")
  eq(doc.parts[1].disposition_hex, hex('form-data; name="say \\"hi\\""'), "Content-Disposition 1")
  eq(doc.parts[1].name_hex, hex('say "hi"'), "name 1")
  eq(doc.parts[2].disposition_hex, hex('form-data; name="back\\\\slash é"; filename="f\\"\\\\q ü.txt"'),
    "Content-Disposition 2")
  eq(doc.parts[2].name_hex, hex("back\\slash é"), "name 2")
  eq(doc.parts[2].filename_hex, hex('f"\\q ü.txt'), "filename 2")
  -- a newline cannot be sent this way: refused before anything goes out
  local bad = lurl.formdata(nil, { quote_fields = false })
  bad:add_field("new\nline", "x")
  bad.is_multipart = true -- else it is urlencoded, where a newline is fine
  local okc, err = pcall(session.post, session, "/parts", { data = bad })
  assert(not okc and tostring(err):find("CR or LF"), "newline with quote_fields = false: " .. tostring(err))
end)

-- ---- generators, files, chunked strings ----

check("generator upload: chunked, byte-exact (3 MiB, uneven chunks)", function()
  local doc = post("/upload", { data = file_generator(BIG) })
  framed_chunked(doc)
  same_file(doc, BIG)
end)

check("generator with a Content-Length header: not chunked", function()
  local doc = post("/upload", { data = file_generator(PHOTO), headers = { ["Content-Length"] = tostring(PHOTO.size) } })
  framed_length(doc, PHOTO.size)
  same_file(doc, PHOTO)
end)

check("generator giving nothing: an empty chunked body", function()
  local doc = post("/upload", { data = function() return nil end })
  framed_chunked(doc)
  eq(doc.length, 0, "length")
end)

check("lurl.file upload: Content-Length, byte-exact", function()
  local doc = post("/upload", { data = lurl.file(BIG.path) })
  framed_length(doc, BIG.size)
  same_file(doc, BIG)
  eq(doc.content_type, "application/octet-stream", "no Content-Type given: the type of a .bin file, as aiohttp's")
  local put = doc_of(session:put("/upload", { data = lurl.file(PHOTO.path),
    headers = { ["Content-Type"] = "image/png" } }))
  eq(put.method, "PUT", "method")
  eq(put.content_type, "image/png", "Content-Type")
  framed_length(put, PHOTO.size, "PUT ")
  same_file(put, PHOTO, "PUT ")
end)

check("lurl.file of an empty file: Content-Length: 0", function()
  local doc = post("/upload", { data = lurl.file(EMPTY.path) })
  framed_length(doc, 0)
  same_file(doc, EMPTY)
end)

check("lurl.file with chunked = true", function()
  local doc = post("/upload", { data = lurl.file(BIG.path), chunked = true })
  framed_chunked(doc)
  same_file(doc, BIG)
end)

check("chunked = true with a string body", function()
  -- bytes that look like chunked framing must arrive as data
  local body = "5\r\nhello\r\n0\r\n\r\n\0\255 tail"
  local doc = post("/upload", { data = body, chunked = true })
  framed_chunked(doc)
  eq(doc.body_hex, hex(body), "body")
  local empty = post("/upload", { data = "", chunked = true })
  framed_chunked(empty, "empty: ")
  eq(empty.length, 0, "empty body length")
  local whole = post("/upload", { data = read_file(BIG), chunked = true })
  framed_chunked(whole, "3 MiB: ")
  same_file(whole, BIG, "3 MiB: ")
end)

check("4 concurrent file uploads on one session", function()
  local tasks = {}
  for i, file in ipairs { BIG, PHOTO, NOTES, BIG } do
    tasks[i] = lurl.spawn(function()
      local opts = i % 2 == 0 and { data = file_generator(file) } or { data = lurl.file(file.path) }
      return post("/upload", opts)
    end)
  end
  for i, file in ipairs { BIG, PHOTO, NOTES, BIG } do
    same_file(tasks[i]:join(), file, "task " .. i .. ": ")
  end
end)

-- A server that answers before reading the upload: aiohttp drains the rest
-- of the body, or with close=1 closes the connection under it. Either way
-- the answer is the response.
check("413 before the upload was read: the answer, not an error", function()
  local variants = {
    { "lurl.file, drained", { data = lurl.file(BIG.path) }, "" },
    { "lurl.file, closed", { data = lurl.file(BIG.path) }, "1" },
    { "generator, closed", { data = file_generator(BIG) }, "1" },
    { "multipart, closed", { data = (full_form()) }, "1" },
  }
  for _, v in ipairs(variants) do
    local opts = v[2]
    opts.params = { close = v[3] }
    local r, err = session:post("/reject", opts)
    if not r then error(v[1] .. ": request failed: " .. tostring(err)) end
    eq(r.status, 413, v[1] .. ": status")
    eq(r:text(), "too large\n", v[1] .. ": body")
  end
  eq(doc_of(session:post("/upload", { data = "after" })).body_hex, hex("after"), "next request")
end)

-- ---- redirects ----

-- the first hop's report (X-First-* headers of /redirect)
local function first_hop(r, status)
  eq(#r.history, 1, "redirects followed")
  local h = r.history[1]
  eq(h.status, status, "first hop status")
  return h.headers
end

check("307 of a lurl.file upload read by the first hop: re-sent byte-exact", function()
  local r = ok(session:post("/redirect/307", { data = lurl.file(BIG.path),
    params = { to = "/upload?hop=2", read = "1" } }))
  local doc = doc_of(r, nil, "final hop")
  local h = first_hop(r, 307)
  eq(h["x-first-sha256"], BIG.sha256, "first hop sha256")
  eq(h["x-first-length"], tostring(BIG.size), "first hop length")
  eq(doc.method, "POST", "method kept")
  eq(doc.path_qs, "/upload?hop=2", "Location followed")
  framed_length(doc, BIG.size)
  same_file(doc, BIG)
end)

check("307 answered before the upload was read: re-sent byte-exact", function()
  local r = ok(session:post("/redirect/307", { data = lurl.file(BIG.path), params = { to = "/upload?hop=2" } }))
  local doc = doc_of(r, nil, "final hop")
  local h = first_hop(r, 307)
  eq(h["x-first-content-length"], tostring(BIG.size), "first hop Content-Length")
  framed_length(doc, BIG.size)
  same_file(doc, BIG)
  eq(doc_of(session:post("/upload", { data = "after" })).body_hex, hex("after"), "next request")
end)

check("307 and a close before the upload was read: re-sent on a new connection", function()
  local r = ok(session:post("/redirect/307", { data = lurl.file(BIG.path), params = { to = "/upload?hop=2",
    close = "1" } }))
  local doc = doc_of(r, nil, "final hop")
  first_hop(r, 307)
  framed_length(doc, BIG.size)
  same_file(doc, BIG)
end)

check("308 of a PUT with a lurl.file and chunked = true", function()
  local r = ok(session:put("/redirect/308", { data = lurl.file(PHOTO.path), chunked = true,
    params = { to = "/upload?hop=2", read = "1" } }))
  local doc = doc_of(r, nil, "final hop")
  local h = first_hop(r, 308)
  eq(h["x-first-transfer-encoding"], "chunked", "first hop Transfer-Encoding")
  eq(h["x-first-sha256"], PHOTO.sha256, "first hop sha256")
  eq(doc.method, "PUT", "method kept")
  framed_chunked(doc)
  same_file(doc, PHOTO)
end)

check("307 of a multipart form with files: the same parts again", function()
  local fd, want = full_form()
  local r = ok(session:post("/redirect/307", { data = fd, params = { to = "/parts?hop=2", read = "1" } }))
  local doc = doc_of(r, nil, "final hop")
  local h = first_hop(r, 307)
  eq(h["x-first-content-length"], doc.content_length, "the same Content-Length on both hops")
  same_parts(doc, fd, want, "redirected multipart")
end)

check("307 of a chunked string body", function()
  local body = ("0123456789abcdef"):rep(4000) .. "\r\n0\r\n\r\n" -- under the 64 KiB echoed in hex
  local r = ok(session:post("/redirect/307", { data = body, chunked = true, params = { to = "/upload?hop=2" } }))
  local doc = doc_of(r, nil, "final hop")
  first_hop(r, 307)
  framed_chunked(doc)
  eq(doc.body_hex, hex(body), "body")
end)

check("307 of a generator body: a ClientError, the session still works", function()
  local r, err = session:post("/redirect/307", { data = file_generator(NOTES), params = { to = "/upload" } })
  eq(r, nil, "response")
  assert(err and err:is("ClientError") and tostring(err):find("cannot be sent again"),
    "want ClientError, got " .. tostring(err))
  eq(doc_of(session:post("/upload", { data = "after" })).body_hex, hex("after"), "next request")
end)

check("303 after a file upload: a GET without a body", function()
  local r = ok(session:post("/redirect/303", { data = lurl.file(BIG.path), params = { to = "/upload?hop=2" } }))
  local doc = doc_of(r, nil, "final hop")
  first_hop(r, 303)
  eq(doc.method, "GET", "method")
  eq(nn(doc.content_length), nil, "Content-Length")
  eq(nn(doc.transfer_encoding), nil, "Transfer-Encoding")
  eq(nn(doc.content_type), nil, "Content-Type")
  eq(doc.length, 0, "length")
end)

session:close()
H.finish("aiohttp_bodies")
