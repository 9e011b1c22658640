-- lurl.content: Content-Disposition (RFC 6266), Link (RFC 8288), charsets
-- and decoding, aiohttp's JSON type check and get_encoding, the line reader.
local content = require "lurl.content"

local cd = content.content_disposition

-- "\xNN" escapes are not Lua 5.1 syntax: spell bytes out
local function bytes(...) return string.char(...) end
local REPLACEMENT = bytes(0xEF, 0xBF, 0xBD)
local EURO = bytes(0xE2, 0x82, 0xAC)
local A_UML = bytes(0xC3, 0xA4) -- ä in UTF-8

describe("lurl.content", function()
  describe("content_disposition", function()
    -- RFC 6266 section 5, the examples
    it("RFC 6266 section 5: a token filename, type case-insensitive", function()
      local d = cd("Attachment; filename=example.html")
      assert.equal("attachment", d.type)
      assert.equal("example.html", d.filename)
      assert.same({ filename = "example.html" }, d.parameters)
    end)

    it("RFC 6266 section 5: parameter names case-insensitive, OWS after '='", function()
      local d = cd('INLINE; FILENAME= "an example.html"')
      assert.equal("inline", d.type)
      assert.equal("an example.html", d.filename)
      assert.equal("an example.html", d.parameters.filename)
    end)

    it("RFC 6266 section 5: filename* in UTF-8 (RFC 8187)", function()
      local d = cd("attachment; filename*= UTF-8''%e2%82%ac%20rates")
      assert.equal(EURO .. " rates", d.filename)
      assert.equal(EURO .. " rates", d.parameters["filename*"])
    end)

    it("RFC 6266 section 5: filename* wins over filename, in either order", function()
      local d = cd("attachment; filename=\"EURO rates\"; filename*=utf-8''%e2%82%ac%20rates")
      assert.equal(EURO .. " rates", d.filename)
      assert.equal("EURO rates", d.parameters.filename)
      d = cd("attachment; filename*=utf-8''%e2%82%ac%20rates; filename=\"EURO rates\"")
      assert.equal(EURO .. " rates", d.filename)
    end)

    it("filename* in ISO-8859-1 is decoded to UTF-8 (RFC 5987 3.2.2's example)", function()
      local d = cd("attachment; filename*=iso-8859-1'en'%A3%20rates")
      assert.equal(bytes(0xC2, 0xA3) .. " rates", d.filename)
      d = cd("attachment; filename*=ISO-8859-1''foo-%E4.html")
      assert.equal("foo-" .. A_UML .. ".html", d.filename)
    end)

    it("an empty charset in filename* means UTF-8, as in aiohttp", function()
      assert.equal("foo-" .. A_UML .. ".html", cd("attachment; filename*=''foo-%c3%a4.html").filename)
    end)

    it("a filename* that does not decode is dropped and filename serves", function()
      -- %e4 alone is not UTF-8
      local d = cd("attachment; filename*=UTF-8''foo-%e4.html; filename=\"foo-ae.html\"")
      assert.equal("foo-ae.html", d.filename)
      assert.is_nil(d.parameters["filename*"])
      -- quoted ext-values, unknown charsets, bad pct-encoding, no quotes at all
      for _, bad in ipairs {
        "attachment; filename*=\"UTF-8''foo-%c3%a4.html\"",
        "attachment; filename*=x-klingon''foo.html",
        "attachment; filename*=UTF-8''foo%2.html",
        "attachment; filename*=foo.html",
      } do
        local r = cd(bad)
        assert.equal("attachment", r.type, bad)
        assert.is_nil(r.filename, bad)
      end
    end)

    it("unescapes quoted-pairs", function()
      assert.equal("foo.html", cd('attachment; filename="f\\oo.html"').filename)
      assert.equal('"quoting" tested.html', cd('attachment; filename="\\"quoting\\" tested.html"').filename)
      assert.equal("Here's a semicolon;.html", cd('attachment; filename="Here\'s a semicolon;.html"').filename)
      local d = cd('attachment; foo="\\"\\\\";filename="foo.html"')
      assert.equal("foo.html", d.filename)
      assert.equal('"\\', d.parameters.foo)
      -- kept as sent: leading slashes are the caller's to strip (RFC 6266 4.3)
      assert.equal("/etc/passwd", cd('attachment; filename="/etc/passwd"').filename)
    end)

    it("keeps other parameters and extension types", function()
      local d = cd('form-data; name="field"; filename="a.txt"; creation-date="Wed, 12 Feb 1997 16:29:51 -0500"')
      assert.equal("form-data", d.type)
      assert.same({ name = "field", filename = "a.txt", ["creation-date"] = "Wed, 12 Feb 1997 16:29:51 -0500" },
        d.parameters)
      d = cd("inline")
      assert.equal("inline", d.type)
      assert.is_nil(d.filename)
      assert.same({}, d.parameters)
    end)

    it("reads non-ASCII bytes in a quoted filename as UTF-8, else ISO-8859-1", function()
      assert.equal("foo-" .. A_UML .. ".html", cd('attachment; filename="foo-' .. A_UML .. '.html"').filename)
      assert.equal("foo-" .. A_UML .. ".html", cd('attachment; filename="foo-' .. bytes(0xE4) .. '.html"').filename)
    end)

    it("joins RFC 2231 continuations as aiohttp does", function()
      assert.equal("foo.html", cd('attachment; filename*0="foo."; filename*1="html"').filename)
      assert.equal("foo-" .. A_UML .. ".html",
        cd("attachment; filename*0*=UTF-8''foo-%c3%a4; filename*1=\".html\"").filename)
      -- a gap ends them; filename wins over them
      assert.equal("foo.", cd('attachment; filename*0="foo."; filename*2="html"').filename)
      assert.equal("x.html", cd('attachment; filename*0="foo."; filename="x.html"').filename)
      local parts = {}
      for n = 0, 11 do parts[#parts + 1] = ("filename*%d=\"%s\""):format(n, string.char(97 + n)) end
      assert.equal("abcdefghijkl", cd("attachment; " .. table.concat(parts, "; ")).filename)
    end)

    it("tolerates a trailing ';' and empty parameters (RFC 9110 5.6.6)", function()
      assert.equal("foo.html", cd("attachment; filename=foo.html;").filename)
      assert.equal("foo.html", cd("attachment;; filename=foo.html").filename)
    end)

    it("malformed headers give nil", function()
      for _, bad in ipairs {
        "",
        "   ",
        '"inline"; filename="foo.html"',          -- a quoted type
        "filename=foo.html",                      -- no type
        "attachment; filename=foo bar.html",       -- a token with a space
        "attachment; filename=foo,bar.html",       -- "," is no tchar
        'attachment; filename="foo.html',          -- unterminated
        'attachment; filename="foo.html\\"',       -- the quote escaped
        "attachment; filename",                    -- no value
        "attachment; filename=",                   -- empty value
        "attachment; filename=foo.html; filename=bar.html", -- twice (RFC 6266 4.1)
        "attachment; FILENAME=foo.html; filename=bar.html",
        'attachment; filename="foo.html" x',       -- junk after the value
        "attachment filename=foo.html",            -- no ";"
        "attachment; =foo.html",                   -- no name
        "attachment; filename=" .. A_UML .. ".html", -- raw non-ASCII token
      } do
        assert.is_nil(cd(bad), bad)
      end
    end)

    it("no header is nil; a non-string raises", function()
      assert.is_nil(cd(nil))
      assert.has_error(function() cd(42) end, "bad argument #1 to 'content_disposition' (string expected, got number)")
    end)
  end)

  describe("links", function()
    local function urls(list)
      local out = {}
      for i, l in ipairs(list) do out[i] = l.url end
      return out
    end

    it("RFC 8288 section 3.5: quoted params, relative targets resolved against the base", function()
      local l = content.links('<http://example.com/TheBook/chapter2>; rel="previous"; title="previous chapter"')
      assert.equal(1, #l)
      assert.equal("http://example.com/TheBook/chapter2", l[1].url)
      assert.equal("previous", l[1].rel)
      assert.same({ "previous" }, l[1].rels)
      assert.same({ rel = "previous", title = "previous chapter" }, l[1].params)
      assert.equal(l[1], l.previous)

      l = content.links('</>; rel="http://example.net/foo"', "http://example.com/a/b")
      assert.equal("http://example.com/", l[1].url)
      assert.equal("/", l[1].target)
      assert.equal(l[1], l["http://example.net/foo"])

      l = content.links('</terms>; rel="copyright"; anchor="#foo"', "http://example.com/a/b")
      assert.equal("http://example.com/terms", l.copyright.url)
      assert.equal("#foo", l.copyright.params.anchor)
    end)

    it("RFC 8288 section 3.5: several links in one value, title* decoded", function()
      local l = content.links(
        "</TheBook/chapter2>; rel=\"previous\"; title*=UTF-8'de'letztes%20Kapitel, "
          .. "</TheBook/chapter4>; rel=\"next\"; title*=UTF-8'de'n%c3%a4chstes%20Kapitel",
        "http://example.com/TheBook/chapter3")
      assert.same({ "http://example.com/TheBook/chapter2", "http://example.com/TheBook/chapter4" }, urls(l))
      assert.equal("letztes Kapitel", l.previous.params.title)
      assert.equal("n" .. A_UML .. "chstes Kapitel", l.next.params.title)
      assert.equal("n" .. A_UML .. "chstes Kapitel", l.next.params["title*"])
    end)

    it("RFC 8288 section 3.5: rel with several types, lowercased", function()
      local l = content.links('<http://example.org/>; rel="start http://example.net/relation/other"')
      assert.equal(1, #l)
      assert.equal("start http://example.net/relation/other", l[1].rel)
      assert.same({ "start", "http://example.net/relation/other" }, l[1].rels)
      assert.equal(l[1], l.start)
      assert.equal(l[1], l["http://example.net/relation/other"])

      l = content.links('</p/3>; rel="Next  PREV"')
      assert.same({ "next", "prev" }, l[1].rels)
      assert.equal(l[1], l.next)
      assert.equal(l[1], l.prev)
    end)

    it("several Link field values, in order; the first link of a rel is indexed", function()
      local l = content.links({
        '<https://api.example.com/items?page=2>; rel="next", <https://api.example.com/items?page=9>; rel="last"',
        '<https://api.example.com/items?page=1>; rel="first"',
        '<https://mirror.example.com/items?page=2>; rel="next"',
      })
      assert.same({
        "https://api.example.com/items?page=2", "https://api.example.com/items?page=9",
        "https://api.example.com/items?page=1", "https://mirror.example.com/items?page=2",
      }, urls(l))
      assert.equal("https://api.example.com/items?page=2", l.next.url)
      assert.equal("https://api.example.com/items?page=9", l.last.url)
      assert.equal("https://api.example.com/items?page=1", l.first.url)
    end)

    it("quoted params may hold ';' and ','; unquoted ones, params without value", function()
      local l = content.links('</a>; rel=next ; title="a; b, c"; type = text/html ; crossorigin, </b>; rel=prev')
      assert.equal(2, #l)
      assert.same({ rel = "next", title = "a; b, c", type = "text/html", crossorigin = "" }, l[1].params)
      assert.equal("/b", l.prev.url)
    end)

    it("a later duplicate parameter is ignored (RFC 8288 section 3)", function()
      local l = content.links('</a>; rel="next"; rel="prev"; title=one; title=two')
      assert.same({ "next" }, l[1].rels)
      assert.equal("one", l[1].params.title)
      assert.is_nil(l.prev)
    end)

    it("a link without rel is indexed by its target as written", function()
      local l = content.links("</style.css>; type=text/css", "http://h/x/")
      assert.equal("http://h/style.css", l[1].url)
      assert.is_nil(l[1].rel)
      assert.same({}, l[1].rels)
      assert.equal(l[1], l["/style.css"])
    end)

    it("stops at what is not a link-value, in that field only", function()
      local l = content.links({ '</a>; rel=a, junk, </b>; rel=b', '</c>; rel=c' })
      assert.same({ "/a", "/c" }, urls(l))
      assert.same({}, content.links({ "", "   ", "no link" }))
      assert.same({}, content.links(nil))
      assert.same({ "/a", "/b" }, urls(content.links("  , </a>, , </b>")))
    end)

    it("argument errors name the argument", function()
      assert.has_error(function() content.links(42) end,
        "bad argument #1 to 'links' (string or list of strings expected, got number)")
      assert.has_error(function() content.links({ "</a>", false }) end,
        "bad argument #1 to 'links' (string expected at index 2, got boolean)")
      assert.has_error(function() content.links("</a>", 3) end,
        "bad argument #2 to 'links' (URL string or table expected, got number)")
    end)

    it("takes a parsed lurl.url base", function()
      local base = require("lurl.url").parse("https://example.com/dir/page")
      assert.equal("https://example.com/dir/other", content.links("<other>; rel=x", base).x.url)
    end)
  end)

  describe("charset_of, mime_type and get_encoding", function()
    it("charset_of reads the charset parameter, lowercased", function()
      assert.equal("iso-8859-1", content.charset_of("text/html; charset=ISO-8859-1"))
      assert.equal("utf-8", content.charset_of('text/html;charset="UTF-8"'))
      assert.equal("utf-8", content.charset_of("text/plain; format=flowed; Charset = utf-8"))
      assert.equal("latin1", content.charset_of("text/plain; broken; charset=latin1"))
      assert.is_nil(content.charset_of("text/html"))
      assert.is_nil(content.charset_of('text/html; charset=""'))
      assert.is_nil(content.charset_of(nil))
    end)

    it("mime_type is type/subtype, lowercased", function()
      assert.equal("application/json", content.mime_type(" Application/JSON ; charset=utf-8"))
      assert.equal("text/html", content.mime_type("text/html"))
      assert.is_nil(content.mime_type("json"))
      assert.is_nil(content.mime_type("text/html garbage"))
      assert.is_nil(content.mime_type(nil))
    end)

    it("get_encoding follows aiohttp: charset, JSON default, resolver, utf-8", function()
      assert.equal("shift_jis", content.get_encoding("text/plain; charset=Shift_JIS", "x"))
      -- an unknown charset is passed over
      assert.equal("utf-8", content.get_encoding("text/plain; charset=x-klingon", "x"))
      assert.equal("utf-8", content.get_encoding("application/json", "x", function() return "latin1" end))
      assert.equal("utf-8", content.get_encoding("application/rdap+json", "x", function() return "latin1" end))
      assert.equal("latin1", content.get_encoding("text/html", "x", function(body)
        assert.equal("x", body)
        return "latin1"
      end))
      assert.equal("utf-8", content.get_encoding("text/html", "x", function() return nil end))
      assert.equal("utf-8", content.get_encoding(nil, "x"))
    end)

    it("guess_encoding says utf-8 for valid UTF-8 only", function()
      assert.equal("utf-8", content.guess_encoding("plain ascii"))
      assert.equal("utf-8", content.guess_encoding("caf" .. bytes(0xC3, 0xA9)))
      assert.equal("utf-8", content.guess_encoding(""))
      assert.is_nil(content.guess_encoding("caf" .. bytes(0xE9)))
    end)

    it("known_charset asks iconv", function()
      assert.is_true(content.known_charset("UTF-8"))
      assert.is_true(content.known_charset("windows-1252"))
      assert.is_true(content.known_charset("utf-16"))
      assert.is_true(content.known_charset("ucs-2"))
      assert.is_false(content.known_charset("x-klingon"))
      assert.is_false(content.known_charset("utf-8//TRANSLIT"))
    end)
  end)

  describe("decode", function()
    it("ISO-8859-1", function()
      assert.equal("caf" .. bytes(0xC3, 0xA9), content.decode("caf" .. bytes(0xE9), "iso-8859-1"))
      assert.equal("caf" .. bytes(0xC3, 0xA9), content.decode("caf" .. bytes(0xE9), "latin1"))
      assert.equal("caf" .. bytes(0xC3, 0xA9), content.decode("caf" .. bytes(0xE9), "Latin-1"))
    end)

    it("windows-1252, where 0x80-0x9F are not C1 controls", function()
      -- € “q” …
      local text = content.decode(bytes(0x80, 0x20, 0x93, 0x71, 0x94, 0x20, 0x85), "windows-1252")
      assert.equal(EURO .. " " .. bytes(0xE2, 0x80, 0x9C) .. "q" .. bytes(0xE2, 0x80, 0x9D) .. " "
        .. bytes(0xE2, 0x80, 0xA6), text)
    end)

    it("Shift_JIS", function()
      -- 日本語 (0x93FA 0x967B 0x8CEA) and half-width katakana ｱ (0xB1)
      local text = content.decode(bytes(0x93, 0xFA, 0x96, 0x7B, 0x8C, 0xEA, 0x20, 0xB1), "Shift_JIS")
      assert.equal(bytes(0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC, 0xE8, 0xAA, 0x9E, 0x20, 0xEF, 0xBD, 0xB1), text)
    end)

    it("UTF-16 with a byte order mark, either order; big-endian without (RFC 2781 4.3)", function()
      local smile = bytes(0xF0, 0x9F, 0x98, 0x80) -- U+1F600, a surrogate pair in UTF-16
      assert.equal("hi" .. smile, content.decode(bytes(0xFF, 0xFE, 0x68, 0, 0x69, 0, 0x3D, 0xD8, 0x00, 0xDE), "utf-16"))
      assert.equal("hi" .. smile, content.decode(bytes(0xFE, 0xFF, 0, 0x68, 0, 0x69, 0xD8, 0x3D, 0xDE, 0x00), "UTF-16"))
      -- the little-endian mark before does not stick to the cached descriptor
      assert.equal("hi", content.decode(bytes(0, 0x68, 0, 0x69), "utf-16"))
      assert.equal("hi", content.decode(bytes(0x68, 0, 0x69, 0), "utf-16le"))
      assert.equal("hi", content.decode(bytes(0xFF, 0xFE, 0, 0, 0x68, 0, 0, 0, 0x69, 0, 0, 0), "utf-32"))
    end)

    it("ASCII comes back as it is in an ASCII-compatible charset", function()
      assert.equal("plain", content.decode("plain", "iso-8859-15"))
      assert.equal("plain", content.decode("plain", "windows-1251"))
      assert.equal("plain", content.decode("plain"))
      assert.equal("", content.decode("", "shift_jis"))
    end)

    it("UTF-8 is validated, not converted; the BOM is kept", function()
      local s = "a" .. A_UML .. EURO .. bytes(0xF0, 0x9F, 0x98, 0x80) .. bytes(0xF4, 0x8F, 0xBF, 0xBF)
      assert.equal(s, content.decode(s, "utf-8"))
      assert.equal(s, content.decode(s, "UTF8"))
      assert.equal(bytes(0xEF, 0xBB, 0xBF) .. "x", content.decode(bytes(0xEF, 0xBB, 0xBF) .. "x"))
    end)

    it("strict: invalid UTF-8 fails with the charset and the byte offset", function()
      local text, err, off = content.decode("ab" .. bytes(0xFF) .. "c", "utf-8")
      assert.is_nil(text)
      assert.equal("cannot decode 'utf-8': invalid byte 0xff at offset 2", err)
      assert.equal(2, off)
      for _, case in ipairs {
        { bytes(0xC0, 0xAF), 0 },                  -- overlong "/"
        { "x" .. bytes(0xED, 0xA0, 0x80), 1 },     -- a surrogate
        { "xy" .. bytes(0xF4, 0x90, 0x80, 0x80), 2 }, -- above U+10FFFF
        { "x" .. bytes(0x80), 1 },                 -- a lone continuation byte
        { "x" .. bytes(0xE2, 0x82, 0x41), 1 },     -- cut by an ASCII byte
      } do
        local t, _, o = content.decode(case[1])
        assert.is_nil(t)
        assert.equal(case[2], o)
      end
      text, err, off = content.decode("abc" .. bytes(0xE2, 0x82))
      assert.is_nil(text)
      assert.equal("cannot decode 'utf-8': incomplete byte sequence at offset 3 (end of input)", err)
      assert.equal(3, off)
    end)

    it("replace: U+FFFD for each maximal invalid subpart (Unicode 3.9), as Python does", function()
      local R = REPLACEMENT
      assert.equal("a" .. R .. "b", content.decode("a" .. bytes(0xFF) .. "b", "utf-8", "replace"))
      assert.equal(R .. R, content.decode(bytes(0xC0, 0xAF), "utf-8", "replace"))
      assert.equal("x" .. R .. R .. R, content.decode("x" .. bytes(0xED, 0xA0, 0x80), "utf-8", "replace"))
      assert.equal("x" .. R .. "A", content.decode("x" .. bytes(0xE2, 0x82, 0x41), "utf-8", "replace"))
      assert.equal("abc" .. R, content.decode("abc" .. bytes(0xE2, 0x82), "utf-8", "replace"))
      assert.equal("ab", content.decode("a" .. bytes(0xFF) .. "b", "utf-8", "ignore"))
    end)

    it("strict and replace through iconv: Shift_JIS", function()
      -- 0x93 starts a two-byte character; 0x20 cannot end one
      local bad = "a" .. bytes(0x93, 0x20) .. "b"
      local text, err, off = content.decode(bad, "shift_jis")
      assert.is_nil(text)
      assert.equal("cannot decode 'shift_jis': invalid byte 0x93 at offset 1", err)
      assert.equal(1, off)
      assert.equal("a" .. REPLACEMENT .. " b", content.decode(bad, "shift_jis", "replace"))
      assert.equal("a b", content.decode(bad, "shift_jis", "ignore"))
      -- cut off at the end
      text, err = content.decode("ab" .. bytes(0x93), "shift_jis")
      assert.is_nil(text)
      assert.equal("cannot decode 'shift_jis': incomplete byte sequence at offset 2 (end of input)", err)
      assert.equal("ab" .. REPLACEMENT, content.decode("ab" .. bytes(0x93), "shift_jis", "replace"))
      -- the descriptor is fine after a failure
      assert.equal(bytes(0xE6, 0x97, 0xA5), content.decode(bytes(0x93, 0xFA), "shift_jis"))
    end)

    it("strict and replace in UTF-16: offsets count the BOM, a bad unit is skipped whole", function()
      -- a lone low surrogate (0xDC00) between "a" and "b", little-endian
      local bad = bytes(0xFF, 0xFE, 0x61, 0, 0x00, 0xDC, 0x62, 0)
      local text, err, off = content.decode(bad, "utf-16")
      assert.is_nil(text)
      assert.equal(4, off)
      assert.matches("'utf-16'", err, 1, true)
      assert.equal("a" .. REPLACEMENT .. "b", content.decode(bad, "utf-16", "replace"))
    end)

    it("US-ASCII refuses bytes above 0x7F", function()
      local text, err = content.decode("caf" .. bytes(0xE9), "us-ascii")
      assert.is_nil(text)
      assert.equal("cannot decode 'us-ascii': invalid byte 0xe9 at offset 3", err)
      assert.equal("caf" .. REPLACEMENT, content.decode("caf" .. bytes(0xE9), "us-ascii", "replace"))
    end)

    it("an unknown charset, or a name that is not a token, is an error", function()
      assert.same({ nil, "unknown charset 'x-klingon'" }, { content.decode("x", "x-klingon") })
      assert.same({ nil, "unknown charset ''" }, { content.decode("x", "") })
      -- glibc would transliterate or drop characters for these
      assert.same({ nil, "unknown charset 'utf-8//IGNORE'" }, { content.decode("x", "utf-8//IGNORE") })
      assert.same({ nil, "unknown charset 'latin1//TRANSLIT'" }, { content.decode("x", "latin1//TRANSLIT") })
    end)

    it("output larger than iconv's buffer comes out whole (E2BIG)", function()
      local n = 200000
      local text = content.decode(string.rep(bytes(0xE9), n) .. "end", "latin1")
      assert.equal(2 * n + 3, #text)
      assert.equal(string.rep(bytes(0xC3, 0xA9), n) .. "end", text)
      local sjis = string.rep(bytes(0x93, 0xFA), 50000)
      assert.equal(string.rep(bytes(0xE6, 0x97, 0xA5), 50000), content.decode(sjis, "shift_jis"))
    end)

    it("a stateful charset: ISO-2022-JP, and reset between uses", function()
      local jis = bytes(0x1B, 0x24, 0x42, 0x46, 0x7C, 0x4B, 0x5C, 0x1B, 0x28, 0x42) .. "!"
      assert.equal(bytes(0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC) .. "!", content.decode(jis, "iso-2022-jp"))
      -- left in the two-byte shift state by a truncated input...
      assert.is_nil(content.decode(bytes(0x1B, 0x24, 0x42, 0x46), "iso-2022-jp"))
      -- ...the next use starts in ASCII again
      assert.equal("FK", content.decode("FK", "iso-2022-jp"))
    end)

    it("argument errors name the argument", function()
      assert.has_error(function() content.decode(1) end, "bad argument #1 to 'decode' (string expected, got number)")
      assert.has_error(function() content.decode("x", 1) end,
        "bad argument #2 to 'decode' (string expected, got number)")
      assert.has_error(function() content.decode("x", "utf-8", "loose") end,
        "bad argument #3 to 'decode' ('strict', 'replace' or 'ignore' expected, got loose)")
    end)
  end)

  describe("json_type_ok", function()
    local ok = content.json_type_ok

    it("application/json, with parameters or in any case", function()
      assert.is_true(ok("application/json"))
      assert.is_true(ok("application/json; charset=utf-8"))
      assert.is_true(ok("Application/JSON"))
    end)

    it("any type/subtype+json counts, as aiohttp's json_re has it (RFC 6839 3.1)", function()
      assert.is_true(ok("application/problem+json"))
      assert.is_true(ok("application/vnd.api+json; ext=bulk"))
      assert.is_true(ok("application/json-patch+json"))
      assert.is_true(ok("text/vnd.example+json"))
    end)

    it("anything else is not JSON; no Content-Type is application/octet-stream", function()
      assert.is_false(ok("text/html"))
      assert.is_false(ok("text/json"))
      assert.is_false(ok("application/jsonx"))
      assert.is_false(ok("application/json+xml"))
      assert.is_false(ok("application/+json"))
      assert.is_false(ok(nil))
      assert.is_false(ok(""))
    end)

    it("another expected type is looked for in the response's (aiohttp's substring test)", function()
      assert.is_true(ok("text/plain; charset=utf-8", "text/plain"))
      assert.is_true(ok("application/vnd.custom+json", "application/vnd.custom+json"))
      assert.is_true(ok("application/vnd.custom+json", "Application/Vnd.Custom+JSON; v=1"))
      assert.is_false(ok("application/json", "application/vnd.custom+json"))
      assert.is_true(ok(nil, "application/octet-stream"))
    end)

    it("false or '' turns the check off", function()
      assert.is_true(ok("text/html", false))
      assert.is_true(ok("text/html", ""))
      assert.has_error(function() ok("text/html", 1) end,
        "bad argument #2 to 'json_type_ok' (string expected, got number)")
    end)
  end)

  describe("line_reader", function()
    local function drain(r)
      local out = {}
      while true do
        local line = r:next()
        if not line then return out end
        out[#out + 1] = line
      end
    end

    it("returns complete lines, newline included, across chunks", function()
      local r = content.line_reader()
      assert.is_nil(r:next())
      r:feed("ab")
      assert.is_nil(r:next())
      r:feed("c\nde")
      assert.equal("abc\n", r:next())
      assert.is_nil(r:next())
      r:feed("f"):feed("g\nh\ni")
      assert.same({ "defg\n", "h\n" }, drain(r))
      assert.equal(1, r:buffered())
      assert.equal("i", r:rest())
      assert.equal("", r:rest())
      assert.is_nil(r:next())
    end)

    it("keeps CRLF, even with CR and LF in different chunks", function()
      local r = content.line_reader()
      r:feed("GET\r")
      assert.is_nil(r:next())
      r:feed("\nHost: x\r\n\r\n")
      assert.same({ "GET\r\n", "Host: x\r\n", "\r\n" }, drain(r))
      assert.equal("", r:rest())
    end)

    it("many lines in one chunk, empty lines and empty chunks", function()
      local r = content.line_reader()
      r:feed("")
      r:feed("1\n\n2\n3")
      r:feed("")
      assert.same({ "1\n", "\n", "2\n" }, drain(r))
      r:feed("\n")
      assert.same({ "3\n" }, drain(r))
      assert.equal(0, r:buffered())
      r:feed("after")
      assert.equal("after", r:rest())
    end)

    it("a long line in one-byte chunks (linear, not quadratic)", function()
      local r = content.line_reader()
      local n = 100000
      for _ = 1, n do r:feed("x") end
      assert.is_nil(r:next())
      r:feed("\nnext")
      local line = r:next()
      assert.equal(n + 1, #line)
      assert.equal(string.rep("x", n) .. "\n", line)
      assert.equal("next", r:rest())
    end)

    it("rebuilds the body exactly, whatever the chunking", function()
      local body = "alpha\nbeta\r\n\ngamma\ndelta"
      for size = 1, #body do
        local r = content.line_reader()
        local got = {}
        for i = 1, #body, size do
          r:feed(body:sub(i, i + size - 1))
          for _, l in ipairs(drain(r)) do got[#got + 1] = l end
        end
        got[#got + 1] = r:rest()
        assert.same({ "alpha\n", "beta\r\n", "\n", "gamma\n", "delta" }, got, "chunk size " .. size)
      end
    end)

    it("limit: nil and a message once a line outgrows it", function()
      local r = content.line_reader { limit = 8 }
      r:feed("12345678")
      assert.is_nil(r:next())
      r:feed("9")
      local line, err = r:next()
      assert.is_nil(line)
      assert.equal("line longer than 8 bytes", err)
      r:feed("\n")
      assert.equal("123456789\n", r:next())
    end)

    it("argument errors name the argument", function()
      assert.has_error(function() content.line_reader():feed(1) end,
        "bad argument #1 to 'feed' (string expected, got number)")
      assert.has_error(function() content.line_reader { limt = 3 } end,
        "bad argument #1 to 'line_reader' (unknown option 'limt' (did you mean 'limit'?))")
    end)
  end)
end)
