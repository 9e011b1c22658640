-- Response decompression (RFC 9110 section 8.4): every coding lurl
-- advertises (gzip, deflate as zlib or raw, br, zstd) decoded whole and
-- streamed, damaged and truncated streams, stacked codings, aliases and
-- unknown codings, auto_decompress, Accept-Encoding, bodiless responses and
-- the guards against decompression bombs. Compressed bodies come from
-- core.codec's encoders at test time; an in-process server sends them.
local support = require "spec.support"
local codec = require("lurl.core").codec
local errors = require "lurl.errors"

local MiB = 1024 * 1024
local CODINGS = { "gzip", "deflate", "br", "zstd" }

-- Deterministic text-like data, compressible about 3:1 (so that a few MiB
-- stay MiB on the wire): words and odd bytes picked by a linear
-- congruential generator whose arithmetic stays exact in doubles.
local function sample(n, seed)
  local words = { "lurl", "HTTP", "chunk", "brotli", "zstd", "gzip", "deflate", "\n", "\0\1\2",
    "Content-Encoding", "stream", "\255\254", "lorem", "ipsum", "dolor", " ", "," }
  local char, floor = string.char, math.floor
  local x, parts, len = seed or 1, {}, 0
  while len < n do
    x = (x * 69069 + 1) % 4294967296
    local hi = floor(x / 65536)
    local w = words[hi % #words + 1]
    if hi % 5 == 0 then w = char(hi % 251, floor(x / 256) % 256, floor(hi / 64) % 256) end
    parts[#parts + 1] = w
    len = len + #w
  end
  return table.concat(parts):sub(1, n)
end

-- name's encoding of data, fed in 4 MiB pieces (or the piece given, for
-- data made of repetitions of it: `times` of them).
local function encode(name, data, times)
  local e = codec.encoder(name, name == "br" and times and 1 or nil)
  local parts = {}
  if times then
    for _ = 1, times do parts[#parts + 1] = assert(e:feed(data)) end
  else
    for i = 1, #data, 4 * MiB do parts[#parts + 1] = assert(e:feed(data:sub(i, i + 4 * MiB - 1))) end
  end
  parts[#parts + 1] = assert(e:finish())
  return table.concat(parts)
end

-- deflate without the zlib wrapper (RFC 1951): the 2-byte header and the
-- 4-byte Adler-32 trailer stripped.
local function raw_deflate(data) return encode("deflate", data):sub(3, -5) end

-- Bytes at the middle overwritten: every decoder reports these (gzip and
-- zlib by their checks, zstd by its frame checksum, brotli by its syntax).
local function corrupt(s)
  local m = math.floor(#s / 2)
  return s:sub(1, m - 1) .. ("\255"):rep(16) .. s:sub(m + 16)
end

-- Compare bodies without printing megabytes on a failure.
local function same(want, got, what)
  if got == want then return end
  local n = 1
  if type(got) == "string" then
    while n <= #got and n <= #want and got:byte(n) == want:byte(n) do n = n + 1 end
  end
  error(("%s differs: got %s bytes, want %d; first difference at byte %d"):format(what or "body",
    type(got) == "string" and #got or tostring(got), #want, n), 2)
end

local function payload_error(err, pattern)
  assert(err, "expected an error")
  assert.is_true(errors.is(err, "ClientPayloadError"), "not a ClientPayloadError: " .. tostring(err))
  if pattern then assert.matches(pattern, err.message) end
end

-- A request or read that must have failed: nil (what came instead is
-- shown briefly).
local function failed(v, what)
  if v == nil then return end
  local shown = type(v) == "string" and ("%d bytes"):format(#v) or tostring(v)
  error(("%sexpected a failure, got %s"):format(what and what .. ": " or "", shown), 2)
end

-- Pattern that matches a literal string.
local function lit(s) return (s:gsub("%p", "%%%0")) end

-- Everything an iterator yields, and the error it raised (nil when none).
local function drain(iter)
  local parts, biggest = {}, 0
  local ok, err = pcall(function()
    for piece in iter do
      assert(#piece > 0, "an empty piece")
      parts[#parts + 1] = piece
      if #piece > biggest then biggest = #piece end
    end
  end)
  return table.concat(parts), not ok and err or nil, #parts, biggest
end

local SMALL = sample(3000, 5)
local BIG = sample(6 * MiB, 3) -- compresses to about 2.2 MiB with each coding
local small, big = {}, {}
for _, name in ipairs(CODINGS) do
  small[name] = encode(name, SMALL)
  big[name] = encode(name, BIG)
end

-- ---- the server ----

-- A route sending body with Content-Encoding ce (nil: none). opts: chunked,
-- status. Every response tells which connection carried it (X-Conn).
local function coded(ce, body, opts)
  opts = opts or {}
  return function(req)
    local h = { { "X-Conn", tostring(req.connection) } }
    if ce then h[#h + 1] = { "Content-Encoding", ce } end
    return { status = opts.status, headers = h, body = body, chunked = opts.chunked }
  end
end

-- The same in a single write, head and body together: the client sees the
-- whole response in one read, the path that decodes a body whole.
local function whole(ce, body)
  return function()
    -- HTTP/2 has no raw bytes to send; its head and first DATA frame go
    -- out back to back
    if support.http2 then return { headers = { ["Content-Encoding"] = ce }, body = body } end
    return { raw = ("HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s"):format(ce, #body, body) }
  end
end

describe("response decompression", function()
  local srv, s, seen

  before_each(function()
    seen = {}
    srv = support.server({
      -- what the request said about encodings
      ["/ae"] = function(req)
        seen[#seen + 1] = req.headers["accept-encoding"] or false
        return { headers = { ["Content-Encoding"] = "gzip" }, body = encode("gzip", "ok") }
      end,
    })
    s = support.session(srv)
  end)

  after_each(function()
    s:close()
    srv:close()
  end)

  local function get(path, opts)
    local resp, err = s:get(path, opts)
    assert(resp, tostring(err))
    assert.are.equal(200, resp.status)
    return resp
  end

  for _, name in ipairs(CODINGS) do
    describe(name, function()
      it("decodes a small body that arrives whole with its head", function()
        srv:route("/whole", whole(name, small[name]))
        local resp = get("/whole")
        same(SMALL, resp:read())
        assert.are.equal(name, resp.headers["content-encoding"])
        -- the headers stay as they came
        assert.are.equal(tostring(#small[name]), resp.headers["content-length"])
        -- the same with stream = true: the body is there already
        same(SMALL, get("/whole", { stream = true }):read())
      end)

      it("decodes a small body sent apart from its head, and one dripped in 7-byte pieces", function()
        srv:route("/small", coded(name, small[name]))
        same(SMALL, get("/small"):read())
        srv:route("/drip", function()
          return { headers = { ["Content-Encoding"] = name }, body = small[name], drip = { size = 7, interval = 0 } }
        end)
        local body, err, n = drain(get("/drip", { stream = true }):iter_any())
        assert.is_nil(err)
        same(SMALL, body)
        assert.is_true(n >= 1)
      end)

      it("streams a 6 MiB body: iter_chunked(65536) gives pieces of at most 65536 bytes", function()
        srv:route("/big", coded(name, big[name]))
        local resp = get("/big", { stream = true })
        local body, err, n, biggest = drain(resp:iter_chunked(65536))
        assert.is_nil(err)
        same(BIG, body)
        -- HTTP/2's DATA frames (16 KiB) decode to smaller pieces
        if support.http2 then assert.is_true(biggest <= 65536) else assert.are.equal(65536, biggest) end
        assert.is_true(n >= #BIG / 65536, "pieces: " .. n)
      end)

      it("streams a 6 MiB chunked body read with read(), and reads it whole without stream", function()
        srv:route("/big-chunked", coded(name, big[name], { chunked = true }))
        local resp = get("/big-chunked", { stream = true })
        if not support.http2 then assert.are.equal("chunked", resp.headers["transfer-encoding"]) end
        same(BIG, resp:read())
        same(BIG, get("/big-chunked"):read())
        -- read(n) across the decoded pieces
        resp = get("/big-chunked", { stream = true })
        local parts = {}
        while true do
          local piece = assert(resp:read(100000))
          if piece == "" then break end
          parts[#parts + 1] = piece
        end
        same(BIG, table.concat(parts))
      end)

      it("corrupt data is a ClientPayloadError naming " .. name .. ", and the connection (its stream) is dropped",
        function()
        srv:route("/bad-whole", whole(name, corrupt(small[name])))
        srv:route("/bad-big", coded(name, corrupt(big[name])))
        srv:route("/conn", coded(nil, "x"))
        local first = get("/conn").headers["x-conn"]
        assert.are.equal(first, get("/conn").headers["x-conn"]) -- kept alive so far
        local resp, err = s:get("/bad-whole")
        failed(resp)
        payload_error(err, "^cannot decode " .. name .. " body: EDECODE: invalid ")
        local after = get("/conn").headers["x-conn"]
        -- HTTP/1.1 drops the connection; HTTP/2 resets the stream alone
        if support.http2 then assert.are.equal(first, after) else assert.are_not.equal(first, after) end
        -- mid-stream: what came before the damage, then the error
        local got, ierr = drain(get("/bad-big", { stream = true }):iter_chunked(65536))
        payload_error(ierr, "^cannot decode " .. name .. " body: EDECODE: invalid ")
        assert.is_true(#got < #BIG)
        resp, err = s:get("/bad-big")
        failed(resp)
        payload_error(err, "^cannot decode " .. name .. " body")
        local last = get("/conn").headers["x-conn"]
        if support.http2 then assert.are.equal(after, last) else assert.are_not.equal(after, last) end
      end)

      it("a truncated stream (complete as HTTP) is a ClientPayloadError naming " .. name, function()
        local cut = small[name]:sub(1, math.floor(#small[name] / 2))
        srv:route("/cut-whole", whole(name, cut))
        srv:route("/cut-big", coded(name, big[name]:sub(1, -6)))
        local resp, err = s:get("/cut-whole")
        failed(resp)
        payload_error(err, "^cannot decode " .. name .. " body: EDECODE: truncated ")
        -- streamed: what the stream held (all of it, for the codings whose
        -- last bytes are a checksum), then the error at the end
        local got, ierr = drain(get("/cut-big", { stream = true }):iter_chunked(65536))
        payload_error(ierr, "^cannot decode " .. name .. " body: EDECODE: truncated ")
        assert.is_true(#got <= #BIG and #got > #BIG / 2, "decoded before the error: " .. #got)
        same(BIG:sub(1, #got), got)
        resp = get("/cut-big", { stream = true })
        local body, rerr = resp:read()
        failed(body)
        payload_error(rerr, "truncated")
      end)

      it("a truncated stream stays failed: reading again is the same error, not \"\"", function()
        srv:route("/cut-big", coded(name, big[name]:sub(1, -6)))
        local resp = get("/cut-big", { stream = true })
        local body, rerr = resp:read()
        failed(body)
        payload_error(rerr, "truncated")
        local again, aerr = resp:read()
        failed(again)
        assert.are.equal(rerr, aerr)
        local text, terr = resp:text()
        failed(text)
        assert.are.equal(rerr, terr)
      end)

      it("an empty body is \"\" without error, however framed", function()
        srv:route("/empty", coded(name, ""))
        srv:route("/empty-chunked", coded(name, "", { chunked = true }))
        assert.are.equal("", get("/empty"):read())
        assert.are.equal("", get("/empty", { stream = true }):read())
        assert.are.equal("", get("/empty-chunked"):read())
        local body, err = drain(get("/empty-chunked", { stream = true }):iter_any())
        assert.is_nil(err)
        assert.are.equal("", body)
      end)
    end)
  end

  describe("deflate", function()
    it("is read in the zlib format (RFC 1950) and as raw deflate (RFC 1951)", function()
      assert.are.equal(0x78, small.deflate:byte(1)) -- the encoder's is zlib
      srv:route("/zlib", whole("deflate", small.deflate))
      srv:route("/raw", whole("deflate", raw_deflate(SMALL)))
      srv:route("/raw-big", coded("deflate", raw_deflate(BIG)))
      same(SMALL, get("/zlib"):read())
      same(SMALL, get("/raw"):read())
      local body, err = drain(get("/raw-big", { stream = true }):iter_chunked(65536))
      assert.is_nil(err)
      same(BIG, body)
    end)

    it("raw deflate damaged or cut short is a ClientPayloadError too", function()
      srv:route("/raw-bad", whole("deflate", "\255" .. raw_deflate(SMALL):sub(2)))
      srv:route("/raw-cut", whole("deflate", raw_deflate(SMALL):sub(1, 500)))
      local _, err = s:get("/raw-bad")
      payload_error(err, "^cannot decode deflate body: EDECODE: invalid deflate stream")
      _, err = s:get("/raw-cut")
      payload_error(err, "^cannot decode deflate body: EDECODE: truncated deflate stream")
    end)
  end)

  describe("Content-Encoding lists", function()
    it("undoes stacked codings in reverse order: \"gzip, br\" is br(gzip(x))", function()
      local stacked = encode("br", encode("gzip", SMALL))
      srv:route("/gzip-br", whole("gzip, br", stacked))
      same(SMALL, get("/gzip-br"):read())
      -- the other order is another body: br(gzip(x)) read as gzip(br(x)) fails
      srv:route("/br-gzip", whole("br, gzip", stacked))
      local _, err = s:get("/br-gzip")
      payload_error(err, "^cannot decode br, gzip body: ")
    end)

    it("three codings, the large body streamed, and two Content-Encoding fields", function()
      local triple = encode("br", encode("gzip", encode("zstd", BIG)))
      srv:route("/triple", coded("zstd,gzip ,  br", triple, { chunked = true }))
      local body, err = drain(get("/triple", { stream = true }):iter_chunked(65536))
      assert.is_nil(err)
      same(BIG, body)
      same(BIG, get("/triple"):read())
      -- RFC 9110 section 5.3: two fields are one list, in order
      srv:route("/two-fields", function()
        return { headers = { { "Content-Encoding", "deflate" }, { "Content-Encoding", "zstd" } },
          body = encode("zstd", small.deflate) }
      end)
      same(SMALL, get("/two-fields"):read())
    end)

    it("a stacked body damaged inside is an error naming the codings", function()
      srv:route("/inner-bad", whole("gzip, br", encode("br", corrupt(small.gzip))))
      local _, err = s:get("/inner-bad")
      payload_error(err, "^cannot decode gzip, br body: EDECODE: invalid gzip stream")
    end)

    it("x-gzip is gzip (RFC 9110 section 8.4.1.3); names are case-insensitive", function()
      srv:route("/x-gzip", whole("x-gzip", small.gzip))
      srv:route("/upper", whole("GZIP", small.gzip))
      srv:route("/x-gzip-big", coded("X-Gzip", big.gzip))
      local resp = get("/x-gzip")
      same(SMALL, resp:read())
      assert.are.equal("x-gzip", resp.headers["content-encoding"])
      same(SMALL, get("/upper"):read())
      same(BIG, get("/x-gzip-big", { stream = true }):read())
    end)

    it("identity changes nothing, alone or in a list", function()
      srv:route("/identity", whole("identity", SMALL))
      srv:route("/identity-gzip", whole("identity, gzip, identity", small.gzip))
      same(SMALL, get("/identity"):read())
      same(SMALL, get("/identity-gzip"):read())
    end)

    it("an unknown coding leaves the body as it came, even next to known ones", function()
      for _, ce in ipairs({ "compress", "x-unknown", "gzip, x-unknown", "pack200-gzip" }) do
        srv:route("/unknown", whole(ce, small.gzip))
        local resp = get("/unknown")
        same(small.gzip, resp:read(), ce)
        assert.are.equal(ce, resp.headers["content-encoding"])
      end
      srv:route("/unknown-big", coded("snappy", big.gzip))
      same(big.gzip, get("/unknown-big", { stream = true }):read())
    end)
  end)

  describe("auto_decompress and Accept-Encoding", function()
    it("Accept-Encoding is exactly \"gzip, deflate, br, zstd\" by default", function()
      assert.are.equal("ok", get("/ae"):read())
      assert.are.same({ "gzip, deflate, br, zstd" }, seen)
    end)

    it("auto_decompress = false on the session: the raw bytes, no Accept-Encoding", function()
      srv:route("/gz", coded("gzip", small.gzip))
      srv:route("/gz-big", coded("gzip", big.gzip))
      local raw = support.session(srv, { auto_decompress = false })
      local resp = assert(raw:get("/gz"))
      same(small.gzip, resp:read())
      assert.are.equal("gzip", resp.headers["content-encoding"])
      same(big.gzip, assert(raw:get("/gz-big", { stream = true })):read())
      assert.are.equal(encode("gzip", "ok"), assert(raw:get("/ae")):read())
      assert.are.same({ false }, seen)
      -- the request may turn it back on
      assert.are.equal("ok", assert(raw:get("/ae", { auto_decompress = true })):read())
      assert.are.same({ false, "gzip, deflate, br, zstd" }, seen)
      raw:close()
    end)

    it("auto_decompress = false on one request: the raw bytes, no Accept-Encoding", function()
      srv:route("/br", whole("br", small.br))
      srv:route("/zstd-big", coded("zstd", big.zstd))
      same(small.br, get("/br", { auto_decompress = false }):read())
      local body, err = drain(get("/zstd-big", { auto_decompress = false, stream = true }):iter_chunked(65536))
      assert.is_nil(err)
      same(big.zstd, body)
      -- raw bytes that would not decode are no error either
      srv:route("/bad", whole("gzip", "not gzip"))
      assert.are.equal("not gzip", get("/bad", { auto_decompress = false }):read())
      assert.are.equal(encode("gzip", "ok"), get("/ae", { auto_decompress = false }):read())
      assert.are.equal("ok", get("/ae"):read())
      assert.are.same({ false, "gzip, deflate, br, zstd" }, seen)
    end)

    it("an Accept-Encoding the script sets wins, on the session or the request", function()
      local own = support.session(srv, { headers = { ["Accept-Encoding"] = "gzip" } })
      assert.are.equal("ok", assert(own:get("/ae")):read()) -- still decoded
      assert.are.equal("ok", assert(own:get("/ae", { headers = { ["accept-encoding"] = "br;q=1.0, *;q=0" } })):read())
      own:close()
      assert.are.equal("ok", get("/ae", { headers = { ["ACCEPT-ENCODING"] = "identity" } }):read())
      -- sent even when nothing is decoded
      assert.are.equal(encode("gzip", "ok"),
        get("/ae", { auto_decompress = false, headers = { ["Accept-Encoding"] = "zstd" } }):read())
      -- and left out when asked
      assert.are.equal("ok", get("/ae", { skip_auto_headers = { "accept-encoding" } }):read())
      assert.are.same({ "gzip", "br;q=1.0, *;q=0", "identity", "zstd", false }, seen)
    end)
  end)

  describe("responses without a body", function()
    it("HEAD, 204 and 304 with Content-Encoding are fine, and the connection stays usable", function()
      srv:route("/gz", coded("gzip", big.gzip))
      srv:route("/204", coded("gzip", "", { status = 204 }))
      srv:route("/304", coded("br", "", { status = 304 }))
      local first = get("/gz")
      same(BIG, first:read())
      local conn = first.headers["x-conn"]
      local head = assert(s:head("/gz"))
      assert.are.equal(200, head.status)
      assert.are.equal("gzip", head.headers["content-encoding"])
      assert.are.equal(tostring(#big.gzip), head.headers["content-length"])
      assert.are.equal("", head:read())
      for _, path in ipairs({ "/204", "/304" }) do
        for _, stream in ipairs({ false, true }) do
          local resp = assert(s:get(path, { stream = stream }))
          assert.are.equal(tonumber(path:sub(2)), resp.status)
          assert.are.equal("", resp:read())
          local body, err = drain(resp:iter_any())
          assert.is_nil(err)
          assert.are.equal("", body)
        end
      end
      head = assert(s:head("/gz", { stream = true }))
      assert.are.equal("", head:read())
      local last = get("/gz")
      same(BIG, last:read())
      assert.are.equal(conn, last.headers["x-conn"])
    end)
  end)

  describe("resp:save", function()
    it("writes the decoded bytes of a gzip body, streamed or read whole", function()
      srv:route("/gz-big", coded("gzip", big.gzip))
      srv:route("/gz", whole("gzip", small.gzip))
      local path = os.tmpname()
      local totals, last = {}, 0
      local n = assert(get("/gz-big", { stream = true }):save(path, {
        progress = function(done, total) totals[#totals + 1] = total; last = done end }))
      assert.are.equal(#BIG, n)
      assert.are.equal(#BIG, last)
      assert.are.same({}, totals) -- no total: Content-Length counts the compressed bytes
      local f = assert(io.open(path, "rb"))
      same(BIG, f:read("*a"))
      f:close()
      assert.are.equal(#SMALL, assert(get("/gz"):save(path)))
      f = assert(io.open(path, "rb"))
      same(SMALL, f:read("*a"))
      f:close()
      os.remove(path)
    end)

    it("a body that fails to decode leaves no file", function()
      srv:route("/bad", coded("gzip", corrupt(big.gzip)))
      local path = os.tmpname()
      local n, err = get("/bad", { stream = true }):save(path)
      assert.is_nil(n)
      payload_error(err, "cannot decode gzip body")
      assert.is_nil(io.open(path, "rb"))
    end)
  end)

  describe("limits", function()
    -- 2 MiB of text: about 3:1, far from the ratio guard
    local TWO = sample(2 * MiB, 11)

    it("max_decompressed_size stops a body that inflates past it, with every coding", function()
      local capped = support.session(srv, { max_decompressed_size = MiB })
      for _, name in ipairs(CODINGS) do
        srv:route("/two", coded(name, encode(name, TWO)))
        local resp, err = capped:get("/two")
        failed(resp)
        payload_error(err, lit("decompressed body exceeds max_decompressed_size=1048576"))
        -- streamed: never more than the limit reaches the script
        local got, ierr = drain(assert(capped:get("/two", { stream = true })):iter_chunked(65536))
        payload_error(ierr, "max_decompressed_size")
        assert.is_true(#got <= MiB, name .. ": got " .. #got)
      end
      -- exactly at the limit is fine
      srv:route("/one", coded("zstd", encode("zstd", TWO:sub(1, MiB))))
      same(TWO:sub(1, MiB), assert(capped:get("/one")):read())
      capped:close()
    end)

    it("max_decompressed_size on one request stops the body, and overrides the session's", function()
      srv:route("/two", coded("gzip", encode("gzip", TWO)))
      local resp, err = s:get("/two", { max_decompressed_size = MiB })
      failed(resp)
      payload_error(err, "max_decompressed_size=1048576")
      -- and overrides the session's
      local capped = support.session(srv, { max_decompressed_size = 1000 })
      same(TWO, assert(capped:get("/two", { max_decompressed_size = 4 * MiB })):read())
      capped:close()
    end)

    describe("decompression bombs", function()
      -- 200 MiB of zeros: gzip makes about 200 KiB of it (a ratio of 1030),
      -- zstd 6 KiB, brotli 38 KiB
      local zeros = ("\0"):rep(MiB)
      local bomb = {}
      setup(function()
        bomb.gzip = encode("gzip", zeros, 200)
        bomb.deflate = bomb.gzip:sub(11, -9) -- the raw deflate inside
        bomb.br = encode("br", zeros, 200)
        bomb.zstd = encode("zstd", zeros, 200)
      end)
      teardown(function() bomb = nil end)

      it("the default ratio guard stops a 200 MiB gzip bomb of ~200 KiB with a clear message", function()
        assert.is_true(#bomb.gzip < 256 * 1024, "bomb size " .. #bomb.gzip)
        srv:route("/bomb", coded("gzip", bomb.gzip))
        local elapsed, resp, err = support.timed(s.get, s, "/bomb")
        failed(resp)
        payload_error(err, lit("decompressed body grew over 1000 times its compressed size (a decompression bomb?)"))
        assert.is_true(elapsed < 5, "took " .. elapsed)
        -- streamed, the script sees none of it (or some), never all of it
        local got, ierr = drain(get("/bomb", { stream = true }):iter_any())
        payload_error(ierr, "decompression bomb")
        assert.is_true(#got < 200 * MiB, "got " .. #got)
        -- the session goes on
        assert.are.equal("ok", get("/ae"):read())
      end)

      it("stops bombs in every coding, with or without max_decompressed_size", function()
        local capped = support.session(srv, { max_decompressed_size = 8 * MiB })
        for _, name in ipairs(CODINGS) do
          srv:route("/bomb", coded(name, bomb[name]))
          local resp, err = s:get("/bomb")
          failed(resp, name)
          payload_error(err, "decompression bomb")
          resp, err = capped:get("/bomb")
          failed(resp, name)
          payload_error(err, "decompressed body")
        end
        capped:close()
      end)

      it("a small body of zeros (1 MiB, under the guard's floor) is not a bomb", function()
        srv:route("/zeros", coded("zstd", encode("zstd", zeros)))
        same(zeros, get("/zeros"):read())
      end)

      -- Peak memory (VmHWM) grown by one request, or nil when the peak
      -- cannot be reset (/proc/self/clear_refs).
      local function peak_growth(fn)
        collectgarbage()
        collectgarbage()
        local function hwm()
          for line in io.lines("/proc/self/status") do
            local kb = line:match("^VmHWM:%s*(%d+)")
            if kb then return tonumber(kb) * 1024 end
          end
        end
        local f = io.open("/proc/self/clear_refs", "w")
        if not f or not f:write("5") then return nil end
        f:close()
        local before = hwm()
        fn()
        return hwm() - before
      end

      it("with max_decompressed_size, a bomb is stopped before it is inflated (peak memory)", function()
        local capped = support.session(srv, { max_decompressed_size = MiB })
        for _, name in ipairs(CODINGS) do
          srv:route("/bomb", coded(name, bomb[name]))
          local grew = peak_growth(function() failed((capped:get("/bomb")), name) end)
          if not grew then capped:close(); return pending("cannot reset the peak RSS here") end
          assert.is_true(grew < 16 * MiB,
            ("%s bomb, max_decompressed_size = 1 MiB: peak memory grew by %d MiB"):format(name, grew / MiB))
        end
        capped:close()
      end)

      -- Without max_decompressed_size the ratio guard stops a gzip or
      -- deflate bomb after a 64 KiB slice of input (64 MiB out, 1/3 of it).
      local function ratio_guard_peak(names)
        for _, name in ipairs(names) do
          srv:route("/bomb", coded(name, bomb[name]))
          local grew = peak_growth(function() failed((s:get("/bomb")), name) end)
          if not grew then return pending("cannot reset the peak RSS here") end
          assert.is_true(grew < 200 * MiB,
            ("%s bomb: peak memory grew by %d MiB, inflating it all costs 200"):format(name, grew / MiB))
        end
      end

      it("the ratio guard stops a gzip or deflate bomb before it is all inflated (peak memory)", function()
        ratio_guard_peak({ "gzip", "deflate" })
      end)

      -- zstd and brotli pack GiBs in a few KiB (a zstd RLE block is 4 bytes
      -- for 128 KiB): the decoders get a cap on their output with every
      -- slice of input, so the guard acts before the output exists.
      it("the ratio guard stops a br or zstd bomb before it is all inflated", function()
        ratio_guard_peak({ "br", "zstd" })
      end)

      -- Issue 20's bound: a 64 MiB text body, compressed some 160 times,
      -- read in 64 KiB pieces grows the peak RSS by under 8 MiB (it grew by
      -- 73 MiB when a 64 KiB slice of input came out as one string of some
      -- 10 MiB, and LuaJIT collected the pieces only once the heap doubled).
      it("a 64 MiB decoded stream read with iter_chunked(65536) keeps peak RSS growth under 8 MiB", function()
        if os.getenv("LURL_SANITIZED") then return pending("ASan's quarantine keeps freed memory") end
        local line = ("lurl decodes a gzip stream in bounded pieces; "):rep(64)
        local times = math.ceil(64 * MiB / #line)
        srv:route("/text64", coded("gzip", encode("gzip", line, times)))
        local n
        local grew = peak_growth(function()
          n = 0
          for chunk in get("/text64", { stream = true }):iter_chunked(65536) do n = n + #chunk end
        end)
        assert.are.equal(times * #line, n)
        if not grew then return pending("cannot reset the peak RSS here") end
        assert.is_true(grew < 8 * MiB, ("peak RSS grew by %.1f MiB"):format(grew / MiB))
      end)
    end)
  end)
end)
