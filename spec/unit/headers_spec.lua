-- lurl.headers: the case-insensitive header multimap.
local lurl = require "lurl"
local headers = require "lurl.headers"

local function items(h)
  local out = {}
  for name, value in h:items() do out[#out + 1] = { name, value } end
  return out
end

describe("lurl.headers", function()
  describe("get", function()
    it("is case-insensitive, by method and by index", function()
      local h = headers.new { ["Content-Type"] = "text/plain" }
      assert.equal("text/plain", h:get("content-type"))
      assert.equal("text/plain", h:get("CONTENT-TYPE"))
      assert.equal("text/plain", h["content-type"])
      assert.equal("text/plain", h["Content-type"])
    end)

    it("returns the first value, or the default when absent", function()
      local h = headers.new { { "X-A", "1" }, { "x-a", "2" } }
      assert.equal("1", h:get("X-A"))
      assert.is_nil(h:get("missing"))
      assert.is_nil(h["missing"])
      assert.equal("dflt", h:get("missing", "dflt"))
      assert.is_true(h:has("x-A"))
      assert.is_false(h:has("missing"))
    end)

    it("lurl.headers is headers.new", function()
      assert.equal(headers.new, lurl.headers)
    end)
  end)

  describe("get_all", function()
    it("returns every value in order, whatever the case", function()
      local h = headers.new()
      h:add("Set-Cookie", "a=1")
      h:add("X-Other", "o")
      h:add("set-cookie", "b=2")
      h:add("SET-COOKIE", "c=3")
      assert.same({ "a=1", "b=2", "c=3" }, h:get_all("Set-Cookie"))
      assert.same({}, h:get_all("missing"))
    end)
  end)

  describe("add / set / remove", function()
    it("add appends and keeps the original case", function()
      local h = headers.new()
      assert.equal(h, h:add("X-One", "1"))
      h:add("x-one", "2")
      assert.equal(2, h:count())
      assert.same({ { "X-One", "1" }, { "x-one", "2" } }, items(h))
    end)

    it("numbers are stored as strings", function()
      local h = headers.new()
      h:add("Content-Length", 42)
      assert.equal("42", h:get("content-length"))
    end)

    it("set replaces every value of that name, any case", function()
      local h = headers.new { { "Accept", "a" }, { "X", "x" }, { "ACCEPT", "b" } }
      h:set("accept", "c")
      assert.same({ "c" }, h:get_all("Accept"))
      assert.same({ { "X", "x" }, { "accept", "c" } }, items(h))
    end)

    it("set with a list sets several values", function()
      local h = headers.new()
      h:set("Via", { "1.1 a", "1.1 b" })
      assert.same({ "1.1 a", "1.1 b" }, h:get_all("via"))
    end)

    it("index assignment sets, nil removes", function()
      local h = headers.new()
      h["X-Token"] = "t1"
      h["x-token"] = "t2"
      assert.same({ "t2" }, h:get_all("X-Token"))
      h["X-TOKEN"] = nil
      assert.is_nil(h["x-token"])
      assert.equal(0, h:count())
    end)

    it("remove drops every value of that name, any case", function()
      local h = headers.new { { "A", "1" }, { "B", "2" }, { "a", "3" } }
      assert.equal(h, h:remove("a"))
      assert.same({ { "B", "2" } }, items(h))
      h:remove("not-there")
      assert.equal(1, h:count())
    end)

    it("update replaces same-named values and keeps the others", function()
      local h = headers.new { { "A", "1" }, { "B", "2" }, { "a", "3" } }
      h:update { { "a", "x" }, { "A", "y" }, { "C", "z" } }
      assert.same({ { "B", "2" }, { "a", "x" }, { "A", "y" }, { "C", "z" } }, items(h))
    end)

    it("copy is independent", function()
      local h = headers.new { A = "1" }
      local c = h:copy()
      c:add("B", "2")
      assert.equal(1, h:count())
      assert.equal(2, c:count())
    end)
  end)

  describe("items", function()
    it("iterate in insertion (wire) order with the original case", function()
      local h = headers.new()
      h:add("Host", "h")
      h:add("user-agent", "ua")
      h:add("Accept", "*/*")
      h:add("host", "h2")
      assert.same({ { "Host", "h" }, { "user-agent", "ua" }, { "Accept", "*/*" }, { "host", "h2" } }, items(h))
      assert.same({ "Host", "h", "user-agent", "ua", "Accept", "*/*", "host", "h2" }, h:flat())
    end)

    it("tostring lists the fields", function()
      local h = headers.new { { "A", "1" }, { "B", "2" } }
      assert.equal("lurl.headers {A: 1, B: 2}", tostring(h))
    end)
  end)

  describe("from_block and from_lists (the parser's shapes)", function()
    it("from_block splits 'Name: value' lines in order", function()
      local h = headers.from_block "Content-Type: text/html\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty: \r\n"
      assert.is_true(headers.is(h))
      assert.equal(4, h:count())
      assert.equal("text/html", h["content-type"])
      assert.same({ "a=1", "b=2" }, h:get_all("SET-COOKIE"))
      assert.equal("", h["x-empty"])
      assert.same({ { "Content-Type", "text/html" }, { "Set-Cookie", "a=1" }, { "set-cookie", "b=2" },
        { "X-Empty", "" } },
        items(h))
    end)

    it("a value keeps its own colons", function()
      assert.equal("http://x:1/", headers.from_block("Location: http://x:1/\r\n")["location"])
    end)

    it("from_lists wraps names and values", function()
      local h = headers.from_lists({ "A", "b" }, { "1", "2" })
      assert.same({ { "A", "1" }, { "b", "2" } }, items(h))
      assert.equal("2", h.B)
    end)

    it("an empty block gives empty headers", function()
      assert.equal(0, headers.from_block(""):count())
    end)
  end)

  describe("new", function()
    it("with nothing gives empty headers", function()
      local h = headers.new()
      assert.is_true(headers.is(h))
      assert.equal(0, h:count())
    end)

    it("from a map adds the keys in sorted order; list values repeat", function()
      local h = headers.new { ["X-B"] = "b", ["X-A"] = { "a1", "a2" }, ["X-C"] = 3 }
      assert.same({ { "X-A", "a1" }, { "X-A", "a2" }, { "X-B", "b" }, { "X-C", "3" } }, items(h))
    end)

    it("from a list of pairs keeps the order", function()
      local h = headers.new { { "Z", "1" }, { "A", "2" }, { "z", "3" } }
      assert.same({ { "Z", "1" }, { "A", "2" }, { "z", "3" } }, items(h))
    end)

    it("from headers copies them", function()
      local h = headers.new { { "A", "1" } }
      local c = headers.new(h)
      assert.are_not.equal(h, c)
      assert.same(items(h), items(c))
      c:add("B", "2")
      assert.equal(1, h:count())
    end)

    it("rejects a non-table, a bad list item and non-string names", function()
      assert.has_error(function() headers.new("A: 1") end)
      assert.has_error(function() headers.new { "A: 1" } end)
      assert.has_error(function() headers.new { [true] = "x" } end)
      assert.has_error(function() headers.new()[1] = "x" end)
    end)

    it("rejects values that are not strings or numbers", function()
      assert.has_error(function() headers.new { A = true } end)
      assert.has_error(function() headers.new():add("A", {}) end)
    end)
  end)

  describe("CR / LF", function()
    it("values containing CR, LF or NUL raise, naming the header", function()
      for _, bad in ipairs { "a\r\nX-Injected: 1", "a\nb", "a\rb", "a\0b" } do
        local ok, msg = pcall(function() headers.new():add("X-Bad", bad) end)
        assert.is_false(ok)
        assert.matches("X-Bad", msg, 1, true)
        assert.has_error(function() headers.new():set("X-Bad", bad) end)
        assert.has_error(function() headers.new { ["X-Bad"] = bad } end)
        assert.has_error(function() headers.new { { "X-Bad", bad } } end)
        assert.has_error(function() local h = headers.new(); h["X-Bad"] = bad end)
      end
    end)

    it("a failed add leaves the headers unchanged", function()
      local h = headers.new { A = "1" }
      pcall(h.add, h, "B", "x\r\ny")
      assert.equal(1, h:count())
      assert.is_nil(h:get("B"))
    end)

    it("names containing CR, LF, NUL, ':' or spaces raise", function()
      for _, bad in ipairs { "X-A\r\nX-Injected", "X\nA", "X:A", "X A", "" } do
        assert.has_error(function() headers.new():add(bad, "v") end, nil, ("name %q"):format(bad))
      end
    end)
  end)
end)
