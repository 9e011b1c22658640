-- lurl.formdata: aiohttp's FormData as a body description (urlencoded or
-- multipart/form-data, RFC 7578), with the HTML standard's escaping checked
-- against the web-platform-tests vectors and the bodies read back by real
-- parsers (Python's email package and aiohttp's MultipartReader).
local cjson = require "cjson"
local support = require "spec.support"
local formdata = require "lurl.formdata"
local url = require "lurl.url"

local VECTORS = "spec/vectors/multipart/wpt-multipart-formdata-vectors.json"
-- Debian's python3-aiohttp imports under the system Python only.
local PYTHON = os.getenv("AIOHTTP_PYTHON") or "/usr/bin/python3"

local read_all, write_all = support.read_file, support.write_file

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- A scratch directory for the files the forms send, removed at the end.
local DIR = os.tmpname()
os.remove(DIR)
assert(os.execute("mkdir " .. shell_quote(DIR)) == 0)

local function file_with(name, content)
  local path = DIR .. "/" .. name
  write_all(path, content)
  return path
end

-- The bytes a sender puts on the wire: the literals, and each file read
-- from disk, which must be as long as the size the body recorded.
local function wire(body)
  local out = {}
  for i, p in ipairs(body.parts) do
    if type(p) == "string" then
      out[#out + 1] = p
    else
      local s = read_all(p.file)
      assert.equal(p.size, #s, "size of part " .. i)
      out[#out + 1] = s
    end
  end
  return table.concat(out)
end

-- One multipart part as this module writes it.
local function part(b, disposition, ctype, value)
  return "--" .. b .. "\r\nContent-Disposition: form-data; " .. disposition .. "\r\nContent-Type: " .. ctype
    .. "\r\n\r\n" .. value .. "\r\n"
end

local TEXT = "text/plain; charset=utf-8"

-- pcall(fn, ...) must fail with an error containing each of the strings.
local function raises(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "no error")
  for _, s in ipairs { ... } do assert.matches(s, err, 1, true) end
  return err
end

describe("lurl.formdata", function()
  teardown(function() os.execute("rm -rf " .. shell_quote(DIR)) end)

  describe("choosing the encoding (aiohttp's rule)", function()
    it("strings and numbers alone are urlencoded", function()
      local fd = formdata.new { a = "1", b = 2 }
      assert.is_false(fd.is_multipart)
      fd:add_field("c", "x")
      assert.is_false(fd.is_multipart)
      assert.equal("application/x-www-form-urlencoded", fd:body().content_type)
    end)

    it("a file, a filename, a content_type or a content_transfer_encoding makes it multipart", function()
      local path = file_with("choose.txt", "x")
      local makers = {
        function(fd) fd:add_file("f", path) end,
        function(fd) fd:add_field("f", formdata.file(path)) end,
        function(fd) fd:add_field("f", "x", { filename = "x.txt" }) end,
        function(fd) fd:add_field("f", "x", { content_type = "text/csv" }) end,
        function(fd) fd:add_field("f", "x", { content_transfer_encoding = "binary" }) end,
      }
      for i, make in ipairs(makers) do
        local fd = formdata.new { a = "1" }
        make(fd)
        assert.is_true(fd.is_multipart, "case " .. i)
        assert.matches("^multipart/form%-data; boundary=", fd:body().content_type)
      end
    end)

    it("is_multipart = true forces multipart; a file cannot be urlencoded", function()
      local fd = formdata.new({ a = "1" }, { boundary = "B" })
      fd.is_multipart = true
      assert.equal(part("B", 'name="a"', TEXT, "1") .. "--B--\r\n", wire(fd:body()))
      fd:add_file("f", file_with("forced.txt", ""))
      fd.is_multipart = false
      raises(function() fd:body() end, "field 'f'", "urlencoded")
    end)
  end)

  describe("application/x-www-form-urlencoded", function()
    it("is url.encode_form's encoding", function()
      local cases = {
        { c = 3, a = "x y", b = { "1", "2" } },
        { { "z", "1" }, { "a", "a b&c=d+é%" }, { "z", "-._~*" } },
        { ["k/x"] = "?#", [""] = "" },
      }
      for _, fields in ipairs(cases) do
        local body = formdata.new(fields):body()
        assert.same({ url.encode_form(fields) }, body.parts)
        assert.equal(#body.parts[1], body.length)
      end
      assert.equal("z=1&a=a+b%26c%3Dd%2B%C3%A9%25&z=-._~%2A", formdata.new(cases[2]):body().parts[1])
    end)

    it("numbers: integral ones without a fraction, others as short as they read back", function()
      local fd = formdata.new { { "a", 2 }, { "b", 1.5 }, { "c", 0.1 }, { "d", -3 }, { "e", 2 ^ 53 }, { "f", 1e300 } }
      assert.equal("a=2&b=1.5&c=0.1&d=-3&e=9007199254740992&f=1e%2B300", wire(fd:body()))
    end)

    it("the charset is named unless it is UTF-8; the bytes are sent as given", function()
      local body = formdata.new({ a = "caf\233" }, { charset = "latin-1" }):body()
      assert.equal("application/x-www-form-urlencoded; charset=latin-1", body.content_type)
      assert.equal("a=caf%E9", wire(body))
      assert.equal("application/x-www-form-urlencoded",
        formdata.new({ a = "1" }, { charset = "utf-8" }):body().content_type)
    end)

    it("newlines are left alone and quote_fields does not apply, as aiohttp", function()
      for _, q in ipairs { true, false } do
        assert.equal("a%22%0D=b%0Ac", wire(formdata.new({ { 'a"\r', "b\nc" } }, { quote_fields = q }):body()))
      end
    end)

    it("an empty form is an empty body", function()
      local body = formdata.new():body()
      assert.equal("application/x-www-form-urlencoded", body.content_type)
      assert.equal(0, body.length)
      assert.equal("", wire(body))
    end)
  end)

  describe("multipart/form-data", function()
    it("exact bytes: text fields, a string with a filename, a file on disk", function()
      local path = file_with("photo.png", "\137PNG\r\n\26\n")
      local fd = formdata.new({ { "a", "1" }, { "n", 42 } }, { boundary = "XyZ" })
      fd:add_field("blob", "raw\r\nbytes", { filename = "d.bin" })
      fd:add_file("pic", path)
      fd:add_field("csv", "x,y\n", { content_type = "text/csv" })
      local want = part("XyZ", 'name="a"', TEXT, "1")
        .. part("XyZ", 'name="n"', TEXT, "42")
        .. part("XyZ", 'name="blob"; filename="d.bin"', "application/octet-stream", "raw\r\nbytes")
        .. part("XyZ", 'name="pic"; filename="photo.png"', "image/png", "\137PNG\r\n\26\n")
        .. part("XyZ", 'name="csv"', "text/csv", "x,y\n")
        .. "--XyZ--\r\n"
      local body = fd:body()
      assert.equal("multipart/form-data; boundary=XyZ", body.content_type)
      assert.equal(want, wire(body))
      assert.equal(#want, body.length)
    end)

    it("no Content-Length nor Content-Transfer-Encoding in parts (RFC 7578 4.7, 4.8)", function()
      local fd = formdata.new(nil, { boundary = "B" })
      fd:add_field("a", "x", { content_transfer_encoding = "base64" })
      fd:add_file("f", file_with("cte.txt", "abc"))
      local s = wire(fd:body())
      assert.is_nil(s:lower():find("content%-length"))
      assert.is_nil(s:lower():find("content%-transfer%-encoding"))
      assert.equal(part("B", 'name="a"', TEXT, "x") .. part("B", 'name="f"; filename="cte.txt"', "text/plain", "abc")
        .. "--B--\r\n", s)
    end)

    it("the charset goes on text parts only, as aiohttp's StringPayload", function()
      local fd = formdata.new({ a = "caf\233" }, { boundary = "B", charset = "latin-1" })
      fd:add_field("j", "{}", { content_type = "application/json" })
      assert.equal(part("B", 'name="a"', "text/plain; charset=latin-1", "caf\233")
        .. part("B", 'name="j"', "application/json", "{}") .. "--B--\r\n", wire(fd:body()))
    end)

    it("text values get HTML's newline normalisation; values with a filename or a type do not", function()
      local fd = formdata.new(nil, { boundary = "B" })
      fd:add_field("t", "a\nb\rc\r\nd")
      fd:add_field("f", "a\nb", { filename = "f.txt" })
      fd:add_field("c", "a\nb", { content_type = "text/plain" })
      assert.equal(part("B", 'name="t"', TEXT, "a\r\nb\r\nc\r\nd")
        .. part("B", 'name="f"; filename="f.txt"', "text/plain", "a\nb")
        .. part("B", 'name="c"', "text/plain", "a\nb") .. "--B--\r\n", wire(fd:body()))
    end)

    it("add_file: filename is the base name, the type is guessed from the extension", function()
      local want = {
        ["a.txt"] = "text/plain", ["a.html"] = "text/html", ["a.HTM"] = "text/html", ["a.json"] = "application/json",
        ["a.png"] = "image/png", ["a.jpg"] = "image/jpeg", ["a.jpeg"] = "image/jpeg", ["a.gif"] = "image/gif",
        ["a.pdf"] = "application/pdf", ["a.zip"] = "application/zip", ["a.tar.gz"] = "application/gzip",
        ["a.bin"] = "application/octet-stream", ["a.xyz"] = "application/octet-stream",
        ["noext"] = "application/octet-stream",
      }
      for name, ctype in pairs(want) do
        local fd = formdata.new(nil, { boundary = "B" })
        fd:add_file("f", file_with(name, "1"))
        assert.equal(part("B", ('name="f"; filename="%s"'):format(name), ctype, "1") .. "--B--\r\n", wire(fd:body()))
      end
    end)

    it("add_file: filename and content_type may be given; the path's type wins over the filename's", function()
      local fd = formdata.new(nil, { boundary = "B" })
      fd:add_file("a", file_with("upload", "1"), { filename = "report.pdf" })
      fd:add_file("b", file_with("data.json", "2"), { filename = "x.txt" })
      fd:add_file("c", DIR .. "/data.json", { filename = "y", content_type = "text/x-custom" })
      assert.equal(part("B", 'name="a"; filename="report.pdf"', "application/pdf", "1")
        .. part("B", 'name="b"; filename="x.txt"', "application/json", "2")
        .. part("B", 'name="c"; filename="y"', "text/x-custom", "2") .. "--B--\r\n", wire(fd:body()))
    end)

    it("the size is taken when the file is added", function()
      local path = file_with("grow.txt", "12345")
      local fd = formdata.new()
      fd:add_file("f", path)
      write_all(path, "1234567890")
      assert.same({ file = path, size = 5 }, fd:body().parts[2])
    end)

    it("the boundary: generated when first needed, kept, settable", function()
      local fd = formdata.new { { "a", "1" } }
      fd:add_field("b", "2", { content_type = "text/plain" })
      assert.is_nil(fd.boundary)
      local first = fd:body()
      assert.matches("^%x+$", fd.boundary)
      assert.equal(32, #fd.boundary)
      assert.equal("multipart/form-data; boundary=" .. fd.boundary, first.content_type)
      assert.same(first, fd:body())
      fd.boundary = "other"
      assert.equal("multipart/form-data; boundary=other", fd:body().content_type)
      assert.matches("^--other\r\n", wire(fd:body()))
    end)

    it("a boundary that is not a token is quoted in the Content-Type (as aiohttp)", function()
      local fd = formdata.new(nil, { boundary = "simple boundary:(x)" })
      fd:add_field("a", "1", { content_type = "text/plain" })
      local body = fd:body()
      assert.equal('multipart/form-data; boundary="simple boundary:(x)"', body.content_type)
      assert.matches("^%-%-simple boundary:%(x%)\r\n", wire(body))
    end)

    it("formdata.boundary() is 32 random lower-case hex digits (aiohttp's uuid4().hex)", function()
      local seen = {}
      for _ = 1, 200 do
        local b = formdata.boundary()
        assert.matches("^[0-9a-f]+$", b)
        assert.equal(32, #b)
        assert.is_nil(seen[b])
        seen[b] = true
      end
    end)

    it("an empty multipart form is the close delimiter alone", function()
      local fd = formdata.new(nil, { boundary = "B" })
      fd.is_multipart = true
      assert.equal("--B--\r\n", wire(fd:body()))
    end)
  end)

  describe("name and filename escaping", function()
    local function head(opts, name, value, fopts)
      local fd = formdata.new(nil, { boundary = "B", quote_fields = opts })
      fd:add_field(name, value, fopts)
      fd.is_multipart = true
      return wire(fd:body()):match("Content%-Disposition: ([^\r\n]*)")
    end

    it("quote_fields = true (default): HTML's %22 %0D %0A and nothing else", function()
      assert.equal('form-data; name="files[] é\\x%22"', head(nil, 'files[] é\\x"', "v"))
      assert.equal('form-data; name="a%0D%0Ab"; filename="r%C3%A9sum%0A%22.pdf"',
        head(true, "a\nb", "", { filename = 'r%C3%A9sum\n".pdf' }))
    end)

    it("quote_fields = false: as given in a quoted-string, '\\' and '\"' backslash-escaped (aiohttp)", function()
      assert.equal('form-data; name="a\\"b\\\\c é%"; filename="x\\"y.txt"',
        head(false, 'a"b\\c é%', "v", { filename = 'x"y.txt' }))
    end)

    it("quote_fields = false: values are not normalised", function()
      local fd = formdata.new({ t = "a\nb" }, { boundary = "B", quote_fields = false })
      fd.is_multipart = true
      assert.equal(part("B", 'name="t"', TEXT, "a\nb") .. "--B--\r\n", wire(fd:body()))
    end)

    it("quote_fields = false: CR and LF in a multipart name or filename are refused", function()
      local fd = formdata.new({ ["a\nb"] = "v" }, { quote_fields = false })
      assert.equal("a%0Ab=v", wire(fd:body())) -- urlencoded carries them
      fd.is_multipart = true
      raises(function() fd:body() end, "bad argument #1 to 'body'", 'field name "a\\\nb" contains CR or LF')
      fd = formdata.new(nil, { quote_fields = false })
      fd:add_field("a", "v", { filename = "x\r" })
      raises(function() fd:body() end, "to 'body'", "filename", "CR or LF")
    end)
  end)

  describe("length", function()
    it("is the byte count of the parts with the files read", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local binary = table.concat(bytes):rep(300) .. "\r\n--B\r\n"
      local fd = formdata.new({ a = "x" }, { boundary = "B" })
      fd:add_file("bin", file_with("binary.dat", binary))
      fd:add_file("empty", file_with("empty.txt", ""))
      fd:add_file("again", DIR .. "/binary.dat")
      fd:add_field("tail", "é\n")
      local body = fd:body()
      local s = wire(body)
      assert.equal(#s, body.length)
      local literal, files = 0, 0
      for _, p in ipairs(body.parts) do
        if type(p) == "string" then literal = literal + #p else files = files + p.size end
      end
      assert.equal(2 * #binary, files)
      assert.equal(body.length, literal + files)
      -- literals are merged: literal, file, literal, file, literal, file, literal
      assert.equal(7, #body.parts)
      for i, p in ipairs(body.parts) do assert.equal(i % 2 == 1 and "string" or "table", type(p)) end
    end)

    it("is nil when a file's size is unknown", function()
      local fake = setmetatable({ path = file_with("pipe-like", "abc") }, { __name = "lurl.body_file" })
      local fd = formdata.new(nil, { boundary = "B" })
      fd:add_field("f", fake)
      local body = fd:body()
      assert.is_nil(body.length)
      assert.same({ file = fake.path }, body.parts[2])
    end)

    it("lurl.body's file objects are accepted as values", function()
      local path = file_with("body-file.txt", "hello")
      local f = setmetatable({ path = path, size = 5 }, { __name = "lurl.body_file" })
      local fd = formdata.new(nil, { boundary = "B" })
      fd:add_field("f", f)
      assert.is_true(fd.is_multipart)
      assert.equal(part("B", 'name="f"; filename="body-file.txt"', "text/plain", "hello") .. "--B--\r\n",
        wire(fd:body()))
    end)
  end)

  describe("fields", function()
    local function names_values(fd)
      local out = {}
      for _, e in ipairs(fd.fields) do
        out[#out + 1] = e.name .. "=" .. (type(e.value) == "string" and e.value or "<file>")
      end
      return table.concat(out, " ")
    end

    it("new: nil, a map (sorted, list values repeat), a list of pairs (in order)", function()
      assert.equal("", names_values(formdata.new()))
      assert.equal("a=1 a=2 b=x", names_values(formdata.new { b = "x", a = { "1", 2 } }))
      assert.equal("z=1 a=2 z=3", names_values(formdata.new { { "z", "1" }, { "a", "2" }, { "z", 3 } }))
      assert.equal("k=v", names_values(formdata.new { "k", "v" }))
    end)

    it("add_fields: pairs, lists of pairs, maps, files and other FormData, in order", function()
      local path = file_with("named.txt", "n")
      local other = formdata.new({ o = "1" }, { boundary = "ignored" })
      other:add_field("of", "2", { filename = "of.txt" })
      local fd = formdata.new()
      fd:add_fields({ "p", "1" }, { { "l1", "a" }, { "l2", "b" } }, { m = "x" }, formdata.file(path), other)
      assert.equal("p=1 l1=a l2=b m=x named.txt=<file> o=1 of=2", names_values(fd))
      assert.is_true(fd.is_multipart)
      assert.equal("of.txt", fd.fields[7].filename)
      -- a copy: changing one form leaves the other alone
      fd.fields[6].value = "changed"
      assert.equal("1", other.fields[1].value)
    end)

    it("a FormData's multipart choice comes along", function()
      local other = formdata.new { a = "1" }
      other.is_multipart = true
      local fd = formdata.new(other)
      assert.is_true(fd.is_multipart)
    end)

    it("formdata.is", function()
      assert.is_true(formdata.is(formdata.new()))
      assert.is_false(formdata.is({}))
      assert.is_false(formdata.is("x"))
    end)
  end)

  -- web-platform-tests html/semantics/forms/form-submission-0/
  -- multipart-formdata.window.js: what a browser sends for names, values and
  -- filenames holding NUL, CR, LF, quotes, backslashes and non-ASCII. Each
  -- file case is an empty file on disk sent with the vector's filename and
  -- text/plain. The one intended difference from the vectors' template: a
  -- text field carries Content-Type: text/plain; charset=utf-8, as aiohttp
  -- writes it (a browser writes none; RFC 7578 4.4 makes text/plain the
  -- default, so both mean the same).
  describe("web-platform-tests multipart vectors", function()
    local data = cjson.decode(read_all(VECTORS))
    local empty = file_with("wpt-empty", "")
    local passed = 0

    for _, c in ipairs(data.cases) do
      it(c.description, function()
        local fd = formdata.new(nil, { boundary = "BOUNDARY" })
        fd.is_multipart = true -- a browser's multipart form, text fields too
        local e = c.expected
        local disposition = 'name="' .. e.name .. '"'
        local ctype = TEXT
        if type(c.value) == "table" then
          fd:add_file(c.name, empty, { filename = c.value.file, content_type = "text/plain" })
          disposition = disposition .. '; filename="' .. e.filename .. '"'
          ctype = "text/plain"
        else
          fd:add_field(c.name, c.value)
        end
        local body = fd:body()
        local want = part("BOUNDARY", disposition, ctype, e.value) .. "--BOUNDARY--\r\n"
        assert.equal(want, wire(body))
        assert.equal(#want, body.length)
        passed = passed + 1
      end)
    end

    it("every vector passes", function()
      print(("\nmultipart vectors: %d of %d pass"):format(passed, #data.cases))
      assert.equal(28, #data.cases)
      assert.equal(#data.cases, passed)
    end)
  end)

  -- The bodies read back by two independent parsers: Python's email package
  -- (RFC 2046) and aiohttp's MultipartReader (what an aiohttp server sees).
  describe("real parsers read what is built", function()
    local PARSER = [[
import asyncio, json, sys, warnings
from email import policy
from email.parser import BytesParser
warnings.simplefilter("ignore")

def hx(b):
    if b is None: return None
    if isinstance(b, str): b = b.encode("utf-8", "surrogateescape")
    return b.hex()

def with_email(body, ctype):
    msg = BytesParser(policy=policy.HTTP).parsebytes(
        b"MIME-Version: 1.0\r\nContent-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    parts = [{"name": hx(p.get_param("name", header="content-disposition")), "filename": hx(p.get_filename()),
              "type": p.get_content_type(), "value": hx(p.get_payload(decode=True))} for p in msg.iter_parts()]
    return {"parts": parts,
            "defects": [str(d) for d in msg.defects] + [str(d) for p in msg.iter_parts() for d in p.defects]}

async def with_aiohttp(body, ctype):
    from aiohttp import multipart, streams
    from multidict import CIMultiDict
    class Proto:
        _reading_paused = False
        def pause_reading(self): pass
        def resume_reading(self): pass
    stream = streams.StreamReader(Proto(), 1 << 30, loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    reader = multipart.MultipartReader(CIMultiDict({"Content-Type": ctype}), stream)
    parts = []
    while True:
        p = await reader.next()
        if p is None: break
        data = await p.read()
        parts.append({"name": hx(p.name), "filename": hx(p.filename),
                      "type": p.headers.get("Content-Type"), "value": hx(bytes(data))})
    return {"parts": parts, "defects": []}

body = open(sys.argv[1], "rb").read()
print(json.dumps({"email": with_email(body, sys.argv[2]), "aiohttp": asyncio.run(with_aiohttp(body, sys.argv[2]))}))
]]
    local script = file_with("parse.py", PARSER)
    local available = os.execute(PYTHON .. " -c 'import aiohttp, email' >/dev/null 2>&1") == 0

    local function hex(s) return s and (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

    -- parse(body) -> { email = {...}, aiohttp = {...} }, each with parts
    -- whose name, filename and value are hex.
    local function parse(body)
      local path = file_with("body.bin", wire(body))
      local p = assert(io.popen(("%s %s %s %s 2>&1"):format(PYTHON, shell_quote(script), shell_quote(path),
        shell_quote(body.content_type))))
      local out = p:read("*a")
      p:close()
      local ok, res = pcall(cjson.decode, out)
      assert(ok, "parser failed: " .. out)
      return res
    end

    -- want: a list of { name, value, filename = , type = }
    local function check(fd, want)
      if not available then return pending(PYTHON .. " cannot import aiohttp (install python3-aiohttp)") end
      local res = parse(fd:body())
      for _, parser in ipairs { "email", "aiohttp" } do
        local got = res[parser]
        assert.same({}, got.defects, parser)
        assert.equal(#want, #got.parts, parser)
        for i, w in ipairs(want) do
          local g = got.parts[i]
          assert.equal(hex(w[1]), g.name, ("%s part %d name"):format(parser, i))
          assert.equal(hex(w[2]), g.value, ("%s part %d value"):format(parser, i))
          assert.equal(hex(w.filename) or cjson.null, g.filename, ("%s part %d filename"):format(parser, i))
          if w.type then assert.equal(parser == "email" and w.type:match("^[^;]*") or w.type, g.type, parser) end
        end
      end
    end

    it("text fields, files with CRLF and dashes inside, an empty file, HTML escapes", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local binary = "--" .. table.concat(bytes) .. "\r\n--\r\n\r\n" .. table.concat(bytes):rep(50)
      local fd = formdata.new { { "a", "hello\nworld" }, { "n", 42 }, { "my field", "x y" } }
      fd:add_file("bin", file_with("p.dat", binary))
      fd:add_file("empty", file_with("e.txt", ""))
      fd:add_field("mem", "\r\n\r\n", { filename = "m.bin" })
      fd:add_field('q"uote', "v")
      check(fd, {
        { "a", "hello\r\nworld", type = TEXT }, { "n", "42" }, { "my field", "x y" },
        { "bin", binary, filename = "p.dat", type = "application/octet-stream" },
        { "empty", "", filename = "e.txt", type = "text/plain" },
        { "mem", "\r\n\r\n", filename = "m.bin" },
        { "q%22uote", "v" }, -- browsers' escape; RFC 2046 parsers do not undo it
      })
    end)

    it("quote_fields = false: backslash escapes the parsers undo", function()
      local fd = formdata.new(nil, { quote_fields = false })
      fd:add_field('a"b\\c', "v")
      fd:add_field("f", "data", { filename = 'x"y.txt' })
      check(fd, { { 'a"b\\c', "v" }, { "f", "data", filename = 'x"y.txt' } })
    end)

    it("a charset, and a boundary that must be quoted", function()
      local fd = formdata.new({ a = "caf\233" }, { charset = "latin-1", boundary = "simple boundary:(x)" })
      fd.is_multipart = true
      check(fd, { { "a", "caf\233", type = "text/plain; charset=latin-1" } })
    end)
  end)

  describe("errors name the culprit", function()
    it("non-string names", function()
      local fd = formdata.new()
      raises(function() fd:add_field(1, "x") end, "bad argument #1 to 'add_field'",
        "field name must be a string, got number")
      raises(function() fd:add_file(nil, DIR .. "/named.txt") end, "bad argument #1 to 'add_file'", "got nil")
      raises(function() formdata.new { [1] = { 1, "x" } } end, "bad argument #1 to 'new'", "item 1")
      raises(function() formdata.new { a = "1", [true] = "x" } end, "bad argument #1 to 'new'",
        "field names must be strings, got boolean")
      raises(function() fd:add_fields({ "a", "1" }, { 5, "x" }) end, "bad argument #2 to 'add_fields'")
    end)

    it("values of the wrong type", function()
      local fd = formdata.new()
      for _, v in ipairs { true, {}, function() end, 0 / 0, math.huge } do
        raises(function() fd:add_field("a", v) end, "bad argument #2 to 'add_field'", "value of field 'a'")
      end
      raises(function() fd:add_field("a") end, "bad argument #2 to 'add_field'", "got nil")
      raises(function() formdata.new { a = false } end, "bad argument #1 to 'new'", "value of field 'a'", "got boolean")
      raises(function() formdata.new { a = { "1", {} } } end, "value of field 'a'", "got table")
      raises(function() formdata.new { { "a" } } end, "item 1")
      raises(function() formdata.new(42) end, "bad argument #1 to 'new'", "got number")
      raises(function() fd:add_fields("a=1") end, "bad argument #1 to 'add_fields'", "got string")
    end)

    it("unknown options and options of the wrong type", function()
      local fd = formdata.new()
      raises(function() formdata.new(nil, { quote = true }) end, "bad argument #2 to 'new'", "unknown option 'quote'")
      raises(function() formdata.new(nil, { quote_fields = "yes" }) end, "'quote_fields'", "boolean expected")
      raises(function() formdata.new(nil, "x") end, "bad argument #2 to 'new'", "options table expected")
      raises(function() fd:add_field("a", "x", { type = "text/plain" }) end, "bad argument #3 to 'add_field'",
        "unknown option 'type'")
      raises(function() fd:add_field("a", "x", { filename = 5 }) end, "'filename'", "string expected, got number")
      raises(function() fd:add_file("a", DIR .. "/named.txt", { content_transfer_encoding = "binary" }) end,
        "bad argument #3 to 'add_file'", "unknown option 'content_transfer_encoding'")
    end)

    it("a missing or unreadable file names the path", function()
      local fd = formdata.new()
      raises(function() fd:add_file("f", DIR .. "/missing.txt") end, "bad argument #2 to 'add_file'", "missing.txt",
        "No such file")
      raises(function() fd:add_file("f", DIR) end, "bad argument #2 to 'add_file'", "Is a directory")
      raises(function() fd:add_file("f", 5) end, "bad argument #2 to 'add_file'", "path string expected")
      raises(function() formdata.file(DIR .. "/missing.txt") end, "bad argument #1 to 'file'", "missing.txt")
    end)

    it("header injection through content_type, content_transfer_encoding or charset", function()
      local fd = formdata.new()
      raises(function() fd:add_field("a", "x", { content_type = "text/plain\r\nX-Evil: 1" }) end, "'content_type'",
        "CR, LF")
      raises(function() fd:add_field("a", "x", { content_transfer_encoding = "binary\n" }) end,
        "'content_transfer_encoding'")
      raises(function() formdata.new(nil, { charset = "utf-8\r\nX: y" }) end, "'charset'", "token")
      fd.charset = "bad charset"
      raises(function() fd:body() end, "to 'body'", "'charset'")
    end)

    it("bad boundaries, and a value that holds the boundary", function()
      raises(function() formdata.new(nil, { boundary = "" }) end, "'boundary'", "1 to 70")
      raises(function() formdata.new(nil, { boundary = ("x"):rep(71) }) end, "'boundary'")
      raises(function() formdata.new(nil, { boundary = "a\"b" }) end, "'boundary'")
      raises(function() formdata.new(nil, { boundary = "ends in space " }) end, "'boundary'")
      local fd = formdata.new({ a = "x" }, { boundary = "B" })
      fd.is_multipart = true
      fd.boundary = "a\r\nb"
      raises(function() fd:body() end, "bad argument 'boundary' to 'body'")
      fd.boundary = "B"
      fd:add_field("b", "text\r\n--B--\r\n")
      raises(function() fd:body() end, "field 'b'", "contains the boundary")
    end)

    it("errors point at the caller's line", function()
      local fd = formdata.new()
      local cases = {
        function() fd:add_field(1, "x") end,
        function() fd:add_file("f", DIR .. "/missing.txt") end,
        function() fd:add_fields(7) end,
        function() formdata.new { a = true } end,
        function() formdata.new(nil, { nope = 1 }) end,
        function() fd:add_field("a", "x", { bad = 1 }) end,
      }
      for i, fn in ipairs(cases) do
        local _, err = pcall(fn)
        assert.matches("formdata_spec%.lua:%d+:", err, nil, false, "case " .. i)
      end
    end)
  end)
end)
