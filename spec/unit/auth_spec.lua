-- lurl.auth: HTTP Basic credentials (RFC 7617) as aiohttp's BasicAuth.
-- Expected headers were checked with aiohttp 3.8 (BasicAuth(...).encode()).
local auth = require "lurl.auth"
local url = require "lurl.url"

local function raises(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(err), 1, true)
  assert.matches("bad argument", tostring(err), 1, true)
end

describe("lurl.auth", function()
  describe("base64 (RFC 4648)", function()
    it("the section 10 test vectors", function()
      local vectors = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" } }
      for _, v in ipairs(vectors) do
        assert.equal(v[2], auth.b64encode(v[1]))
        assert.equal(v[1], auth.b64decode(v[2]))
      end
    end)

    it("every byte value round-trips", function()
      local all = {}
      for b = 0, 255 do all[#all + 1] = string.char(b) end
      local s = table.concat(all)
      for cut = 0, 2 do
        local part = s:sub(1, #s - cut)
        assert.equal(part, auth.b64decode(auth.b64encode(part)))
      end
    end)

    it("decoding is strict, as Python's b64decode(validate=True)", function()
      for _, bad in ipairs { "Zg", "Zg=", "Zg===", "Z===", "=Zg=", "Zg=a", "Zm9v\n", "Zm 9v", "Zm9v!" } do
        assert.is_nil(auth.b64decode(bad), bad)
      end
    end)
  end)

  describe("basic", function()
    it("encodes login:password", function()
      local a = auth.basic("Aladdin", "open sesame")
      assert.equal("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", a:encode()) -- RFC 7617 section 2
      assert.equal("Aladdin", a.login)
      assert.equal("open sesame", a.password)
      assert.equal("latin1", a.encoding)
    end)

    it("the password defaults to ''", function()
      assert.equal("Basic dXNlcjo=", auth.basic("user"):encode())
      assert.equal("Basic Og==", auth.basic(""):encode())
    end)

    it("latin1 by default, utf-8 on request (RFC 7617 section 2.1)", function()
      assert.equal("Basic 6Tr8", auth.basic("\195\169", "\195\188"):encode())
      assert.equal("Basic w6k6w7w=", auth.basic("\195\169", "\195\188", "utf-8"):encode())
      assert.equal("Basic 55So5oi3Ong=", auth.basic("\231\148\168\230\136\183", "x", "utf8"):encode())
      assert.equal("Basic dTpw", auth.basic("u", "p", "ascii"):encode())
      assert.equal("ISO-8859-1", auth.basic("u", "p", "ISO-8859-1").encoding)
    end)

    it("a ':' in the login is an argument error (RFC 7617 section 2)", function()
      raises("':' is not allowed in login", auth.basic, "a:b", "pw")
      assert.equal("Basic dTpwOnc6", auth.basic("u", "p:w:"):encode()) -- the password may hold them
    end)

    it("text the encoding lacks, bad UTF-8 and bad types are argument errors", function()
      raises("U+7528", auth.basic, "\231\148\168", "x")
      raises("U+00E9", auth.basic, "u", "\195\169", "ascii")
      raises("not UTF-8", auth.basic, "\233", "x", "utf-8")
      raises("unknown encoding 'koi8-r'", auth.basic, "u", "p", "koi8-r")
      raises("login must be a string", auth.basic, nil, "p")
      raises("password must be a string", auth.basic, "u", 42)
      raises("encoding must be a string", auth.basic, "u", "p", true)
    end)

    it("prints without the password", function()
      local s = tostring(auth.basic("user", "s3cret"))
      assert.matches("user", s, 1, true)
      assert.is_nil(s:find("s3cret", 1, true))
    end)

    it("compares by value; auth.is knows its objects", function()
      assert.equal(auth.basic("u", "p"), auth.basic("u", "p"))
      assert.are_not.equal(auth.basic("u", "p"), auth.basic("u", "q"))
      assert.is_true(auth.is(auth.basic("u")))
      assert.is_false(auth.is({ login = "u", password = "p" }))
    end)
  end)

  describe("decode", function()
    it("reverses encode", function()
      for _, a in ipairs { auth.basic("Aladdin", "open sesame"), auth.basic("u", ""), auth.basic("", "p:q"),
        auth.basic("\195\169", "\195\188") } do
        assert.equal(a, auth.decode(a:encode()))
      end
      local u8 = auth.basic("\231\148\168", "\195\188", "utf-8")
      assert.equal(u8, auth.decode(u8:encode(), "utf-8"))
    end)

    it("the scheme is case-insensitive (RFC 7235 section 2.1)", function()
      assert.equal("Aladdin", auth.decode("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").login)
      assert.equal("Aladdin", auth.decode("BASIC QWxhZGRpbjpvcGVuIHNlc2FtZQ==").login)
    end)

    it("latin1 bytes become UTF-8 text", function()
      assert.equal("\195\169", auth.decode("Basic 6Tr8").login)
    end)

    it("a bad header raises as aiohttp's ValueError", function()
      raises("could not parse", auth.decode, "Basic")
      raises("unknown authorization method 'Bearer'", auth.decode, "Bearer abc")
      raises("invalid base64", auth.decode, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=")
      raises("invalid base64", auth.decode, "Basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
      raises("invalid credentials", auth.decode, "Basic " .. auth.b64encode("no colon"))
      raises("invalid credentials", auth.decode, "Basic ")
      raises("not utf-8", auth.decode, "Basic 6Tr8", "utf-8")
      raises("string expected", auth.decode, nil)
    end)
  end)

  describe("from_url", function()
    it("takes the percent-decoded user and password", function()
      local a = auth.from_url("http://us%65r:p%40ss%3Aw@h/")
      assert.equal("user", a.login)
      assert.equal("p@ss:w", a.password)
      assert.equal(a, auth.from_url(url.parse("http://us%65r:p%40ss%3Aw@h/")))
    end)

    it("nil without userinfo", function()
      assert.is_nil(auth.from_url("http://h/"))
      assert.is_nil(auth.from_url("http://@h/"))
    end)

    it("an absent part is ''", function()
      assert.equal(auth.basic("u", ""), auth.from_url("http://u@h/"))
      assert.equal(auth.basic("", "p"), auth.from_url("http://:p@h/"))
    end)

    it("the encoding applies", function()
      assert.equal("Basic w6k6cA==", auth.from_url("http://%C3%A9:p@h/", "utf-8"):encode())
      assert.equal("Basic 6Tpw", auth.from_url("http://%C3%A9:p@h/"):encode())
    end)

    it("credentials that cannot be Basic ones are nil, InvalidUrlClientError without the password", function()
      local a, err = auth.from_url("http://a%3Ab:s3cret@h/")
      assert.is_nil(a)
      assert.equal("InvalidUrlClientError", err.kind)
      assert.matches("':'", err.message, 1, true)
      assert.is_nil(tostring(err):find("s3cret", 1, true))
      a, err = auth.from_url("http://%E7%94%A8:s3cret@h/")
      assert.is_nil(a)
      assert.matches("latin1", err.message, 1, true)
    end)

    it("a bad URL string is nil, InvalidURL; a wrong type raises", function()
      local a, err = auth.from_url("http://u:p@h:99999/")
      assert.is_nil(a)
      assert.is_true(err:is("InvalidURL"))
      raises("URL string or table expected", auth.from_url, 42)
    end)

    it("with strip_userinfo it is what a session needs to send", function()
      local u = url.parse("http://user:pass@h/x")
      local a = auth.from_url(u)
      local bare = url.strip_userinfo(u)
      assert.equal("Basic dXNlcjpwYXNz", a:encode())
      assert.equal("http://h/x", url.tostring(bare))
      assert.equal("/x", url.target(bare))
    end)
  end)
end)
