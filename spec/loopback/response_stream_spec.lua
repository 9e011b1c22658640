-- The response's stream readers (aiohttp's StreamReader, lurl.stream_reader)
-- and read_bufsize.
local lurl = require "lurl"
local support = require "spec.support"

local TEXT = "alpha\nbeta\r\ngamma--delta--\nlast"
-- more than one read: the readers see the body in several pieces
local BIG = ("0123456789abcdef"):rep(65536) -- 1 MiB
local LINES = {}
for i = 1, 20000 do LINES[i] = ("line %05d\n"):format(i) end
LINES = table.concat(LINES)

local routes = {
  ["/length"] = function() return { body = TEXT } end,
  ["/chunked"] = function() return { chunked = true, body = TEXT } end,
  ["/gzip"] = function()
    return { chunked = true, body = support.gzip(LINES), headers = { ["Content-Encoding"] = "gzip" } }
  end,
  ["/drip"] = function() return { body = TEXT, drip = { size = 3, interval = 0.002 } } end,
  ["/big"] = function() return { body = BIG } end,
  ["/lines"] = function() return { body = LINES } end,
  ["/short"] = function() return { body = "12345" } end,
  ["/cut"] = function() return { body = "12345", content_length = 10, close = true } end,
  ["/empty-chunked"] = function() return { chunked = true, body = "" } end,
  ["/stall"] = function() return { body = "ab\ncd", drip = { size = 3, interval = 2 } } end,
}

-- every piece of a reader until it gives "" (or fails)
local function drain(read)
  local parts = {}
  while true do
    local c = assert(read())
    if c == "" then return table.concat(parts), #parts end
    parts[#parts + 1] = c
  end
end

describe("response stream readers", function()
  local server, s

  before_each(function()
    server = support.server(routes)
    s = support.session(server, { timeout = 20 })
  end)

  after_each(function()
    if s then s:close() end
    server:close()
  end)

  local function stream(path, opts)
    opts = opts or {}
    opts.stream = true
    return assert(s:get(path, opts))
  end

  for _, path in ipairs { "length", "chunked", "drip" } do
    describe(path .. " body", function()
      it("readline gives each line, CRLF kept, then the rest and \"\"", function()
        local resp = stream(path)
        assert.are.equal("alpha\n", resp:readline())
        assert.are.equal("beta\r\n", resp:readline())
        assert.are.equal("gamma--delta--\n", resp:readline())
        assert.is_false(resp:at_eof())
        assert.are.equal("last", resp:readline())
        assert.are.equal("", resp:readline())
        assert.is_true(resp:at_eof())
      end)

      it("readuntil(sep) with a separator of several bytes", function()
        local resp = stream(path)
        assert.are.equal("alpha\nbeta\r\ngamma--", resp:readuntil("--"))
        assert.are.equal("delta--", resp:readuntil("--"))
        assert.are.equal("\nlast", resp:readuntil("--"))
        assert.are.equal("", resp:readuntil("--"))
      end)

      it("read(n), readline and readexactly interleave on one position", function()
        local resp = stream(path)
        assert.are.equal("al", resp:read(2))
        assert.are.equal("pha\n", resp:readline())
        assert.are.equal("be", resp:readexactly(2))
        assert.are.equal("ta\r\n", resp:readline())
        assert.are.equal("gam", resp:readexactly(3))
        assert.are.equal("ma--delta--\n", resp:readline())
        assert.are.equal("last", resp:read())
        assert.is_true(resp:at_eof())
        assert.are.equal("", resp:read(5))
        assert.are.equal("", resp:readany())
      end)

      it("readany and iter_any give every byte; total_bytes counts them", function()
        local resp = stream(path)
        assert.are.equal(TEXT, drain(function() return resp:readany() end))
        assert.are.equal(#TEXT, resp.total_bytes)
        local again = stream(path)
        local parts = {}
        for c in again:iter_any() do parts[#parts + 1] = c end
        assert.are.equal(TEXT, table.concat(parts))
      end)

      it("iter_chunked(n) gives pieces of at most n bytes", function()
        local parts = {}
        for c in stream(path):iter_chunked(4) do
          assert.is_true(#c >= 1 and #c <= 4)
          parts[#parts + 1] = c
        end
        assert.are.equal(TEXT, table.concat(parts))
      end)

      it("read(-1) and read() give what is left", function()
        local resp = stream(path)
        assert.are.equal("alpha\n", resp:readline())
        assert.are.equal(TEXT:sub(7), resp:read(-1))
        assert.are.equal("", resp:read(-1))
        assert.are.equal(0, #stream(path):read(0))
      end)
    end)
  end

  describe("iter_chunks", function()
    local function chunks(path)
      local data, flags = {}, {}
      for d, last in stream(path):iter_chunks() do
        data[#data + 1] = d
        flags[#flags + 1] = last
      end
      return table.concat(data), flags
    end

    it("ends a chunked body with (\"\", true), the end of its last HTTP chunk", function()
      if support.h1_only("HTTP/1.1's chunks") then return end
      local data, flags = chunks("chunked")
      assert.are.equal(TEXT, data)
      assert.is_true(flags[#flags])
      for i = 1, #flags - 1 do assert.is_false(flags[i]) end
    end)

    it("flags nothing on a Content-Length body, nor on a chunked body without data (aiohttp)", function()
      local data, flags = chunks("length")
      assert.are.equal(TEXT, data)
      for _, f in ipairs(flags) do assert.is_false(f) end
      data, flags = chunks("empty-chunked")
      assert.are.equal("", data)
      assert.are.equal(0, #flags)
    end)
  end)

  describe("readexactly", function()
    it("is IncompleteReadError with partial and expected when the body ends first", function()
      local resp = stream("short")
      assert.are.equal("12", resp:readexactly(2))
      local got, err = resp:readexactly(10)
      assert.is_nil(got)
      assert.are.equal("IncompleteReadError", err.kind)
      assert.is_true(err:is("ClientPayloadError"))
      assert.are.equal("345", err.partial)
      assert.are.equal(10, err.expected)
      assert.are.equal("", resp:readexactly(0))
      assert.is_true(resp:at_eof())
      -- the body ended properly: the connection is pooled
      assert.are.equal(1, s.connector:stats().idle)
    end)

    it("is ClientPayloadError when the connection closes mid-body", function()
      local got, err = stream("cut"):readexactly(10)
      assert.is_nil(got)
      assert.are.equal("ClientPayloadError", err.kind)
    end)

    it("reads across pieces of a large body", function()
      local resp = stream("big")
      assert.are.equal(BIG:sub(1, 300000), resp:readexactly(300000))
      assert.are.equal(BIG:sub(300001, 300010), resp:readexactly(10))
      assert.are.equal(BIG:sub(300011), resp:read())
    end)
  end)

  describe("readuntil's limit", function()
    it("is LineTooLong past max_size, the bytes left unread", function()
      local resp = stream("length")
      local got, err = resp:readuntil("--", 10)
      assert.is_nil(got)
      assert.are.equal("LineTooLong", err.kind)
      assert.is_true(err:is("ClientPayloadError"))
      assert.are.equal(10, err.limit)
      assert.are.equal("alpha\n", resp:readline(10))
      assert.are.equal("beta\r\n", resp:readline(6))
      assert.is_nil((resp:readline(5)))
      assert.are.equal(TEXT:sub(13), resp:read())
    end)

    it("is twice read_bufsize by default (aiohttp's high-water mark)", function()
      local long = stream("big", { read_bufsize = 1000 })
      local got, err = long:readline()
      assert.is_nil(got)
      assert.are.equal(2000, err.limit)
      -- a line of exactly the limit passes; one byte more does not
      local resp = stream("lines", { read_bufsize = 5 })
      assert.are.equal("line 00001\n", resp:readuntil("\n", 11))
      assert.is_nil((resp:readuntil("\n", 10)))
    end)

    it("rejects an empty separator and bad sizes", function()
      local resp = stream("length")
      assert.has_error(function() resp:readuntil("") end)
      assert.has_error(function() resp:readuntil("\n", 0) end)
      assert.has_error(function() resp:readexactly(-1) end)
      assert.has_error(function() resp:iter_chunked(1.5) end)
      resp:release()
    end)
  end)

  describe("decoded bodies", function()
    it("read the gzip-decoded bytes; total_bytes counts decoded bytes", function()
      local resp = stream("gzip")
      assert.are.equal("line 00001\n", resp:readline())
      assert.are.equal("line 0", resp:readexactly(6))
      assert.are.equal("0002\n", resp:readuntil("\n"))
      local n = 2
      while true do
        local line = assert(resp:readline())
        if line == "" then break end
        n = n + 1
        assert.are.equal(("line %05d\n"):format(n), line)
      end
      assert.are.equal(20000, n)
      assert.are.equal(#LINES, resp.total_bytes)
      assert.is_true(resp:at_eof())
    end)
  end)

  describe("on a body read whole", function()
    it("read from what was kept, and read() still gives the whole body", function()
      local resp = assert(s:get("chunked"))
      assert.are.equal(#TEXT, resp.total_bytes)
      assert.is_false(resp:at_eof())
      assert.are.equal("alpha\n", resp:readline())
      assert.are.equal("beta", resp:readexactly(4))
      assert.are.equal(TEXT, resp:text())
      assert.are.equal("\r\n", resp:read(2))
      assert.are.equal(TEXT:sub(13), resp:read())
      assert.is_true(resp:at_eof())
      local again = assert(s:get("length"))
      assert.are.equal(TEXT, again:read())
      assert.are.equal(TEXT, again:read())
      assert.are.equal("alpha\n", again:readline())
    end)

    it("and on a response made in Lua", function()
      local resp = lurl.response { body = "a\nb" }
      assert.are.equal(3, resp.total_bytes)
      assert.are.equal("a\n", resp:readline())
      assert.are.equal("b", resp:readany())
      assert.is_true(resp:at_eof())
    end)
  end)

  describe("timeouts", function()
    it("a reader waits under sock_read like the other body reads", function()
      local resp = stream("stall", { timeout = { sock_read = 0.3 } })
      assert.are.equal("ab\n", resp:readline())
      local got, err = resp:readexactly(5)
      assert.is_nil(got)
      assert.is_true(err:is("TimeoutError"))
    end)
  end)
end)

describe("read_bufsize", function()
  local server, s

  before_each(function()
    server = support.server(routes)
  end)

  after_each(function()
    if s then s:close() end
    server:close()
  end)

  it("is a byte count >= 1, on the session and per request", function()
    for _, bad in ipairs { 0, -1, 1.5, 0 / 0, math.huge } do
      assert.has_error(function() lurl.session { read_bufsize = bad } end)
    end
    assert.has_error(function() lurl.session { read_bufsize = "64k" } end)
    s = support.session(server)
    assert.has_error(function() s:get("length", { read_bufsize = 0 }) end)
  end)

  it("sets the marks where a slow reader's connection pauses and resumes reading", function()
    if support.h1_only("over HTTP/2 the stream's flow-control window bounds what waits") then return end
    s = support.session(server, { read_bufsize = 4096 })
    local resp = assert(s:get("big", { stream = true }))
    local c = resp._conn
    assert.are.equal(4096, c.low_water)
    assert.are.equal(8192, c.high_water)
    lurl.sleep(0.1)
    assert.is_false(c.reading) -- more than 8 KiB waits: paused
    assert.are.equal(BIG, resp:read())
    -- per request, over the session's; the connection is reused with it
    resp = assert(s:get("big", { stream = true, read_bufsize = 1048576 }))
    assert.are.equal(2097152, resp._conn.high_water)
    assert.are.equal(BIG, resp:read())
    assert.are.equal(1, server.connections)
  end)

  it("defaults to the runtime's read size, 256 KiB", function()
    s = support.session(server)
    assert.are.equal(256 * 1024, s.read_bufsize)
    if support.http2 then return end -- the pause marks are HTTP/1.1's
    local resp = assert(s:get("big", { stream = true }))
    assert.are.equal(512 * 1024, resp._conn.high_water)
    resp:release()
  end)
end)
