-- core.ws: the WebSocket codec (RFC 6455 framing, RFC 7692 permessage-deflate)
-- without sockets: handshake values, frames out and back, every refusal of
-- the reader with its close code, the UTF-8 validator, deflate.
local bit = require "bit"
local support = require "spec.support"
local ws = require("lurl.core").ws

local KiB, MiB = 1024, 1024 * 1024
local raises = support.raises

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
local function unhex(h)
  return (h:gsub("%s", ""):gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- Deterministic text-like data: compressible but not trivially.
local function sample(n, seed)
  local words = { "lurl", "WebSocket", "frame", " ", "deflate", "\n", "ping", "é", "€", "\0\1" }
  local x, parts, len = seed or 1, {}, 0
  while len < n do
    x = (x * 1103515245 + 12345) % 2147483648
    local w = words[x % #words + 1]
    if x % 5 == 0 then w = string.char(x % 256) end
    parts[#parts + 1] = w
    len = len + #w
  end
  return table.concat(parts):sub(1, n)
end

-- Every frame the reader has for now: { op, payload, fin, rsv1 } each, and
-- the failure (false, code, reason) when there is one.
local function drain(r, into)
  into = into or {}
  while true do
    local op, payload, fin, rsv1 = r:next()
    if op == nil then return into end
    if op == false then return into, payload, fin end
    into[#into + 1] = { op, payload, fin, rsv1 }
  end
end

-- What a reader makes of bytes fed whole: frames, close code, reason.
local function read_all(bytes, opts)
  local r = ws.reader(opts or {})
  assert(r:feed(bytes))
  return drain(r)
end

-- The refusal of bytes fed whole: close code and reason, after no frame.
local function refusal(bytes, opts)
  local frames, code, reason = read_all(bytes, opts)
  return code, reason, frames
end

-- The masking key of a masked frame, and its payload unmasked by hand.
local function unmask(frame)
  local len, at = bit.band(frame:byte(2), 127), 3
  if len == 126 then at = 5 elseif len == 127 then at = 11 end
  local key = frame:sub(at, at + 3)
  local out = {}
  for i = at + 4, #frame do
    local k = key:byte((i - at - 4) % 4 + 1)
    out[#out + 1] = string.char(bit.bxor(frame:byte(i), k))
  end
  return key, table.concat(out)
end

describe("core.ws", function()
  it("has one metatable with __name per kind of object", function()
    assert.equal("lurl.ws_reader", getmetatable(ws.reader{}).__name)
    assert.equal("lurl.ws_utf8", getmetatable(ws.utf8()).__name)
    assert.equal("lurl.ws_deflater", getmetatable(ws.deflater()).__name)
    assert.equal("lurl.ws_inflater", getmetatable(ws.inflater()).__name)
  end)

  describe("handshake", function()
    it("accept: RFC 6455 1.3's example", function()
      assert.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", ws.accept("dGhlIHNhbXBsZSBub25jZQ=="))
    end)

    it("key: 16 random bytes in base64, fresh each time (4.1)", function()
      local seen = {}
      for _ = 1, 100 do
        local k = ws.key()
        assert.matches("^[A-Za-z0-9+/]+==$", k)
        assert.equal(24, #k)
        assert.is_nil(seen[k])
        seen[k] = true
      end
    end)
  end)

  describe("frame", function()
    it("writes the header with the shortest length (5.2)", function()
      assert.equal("8100", hex(ws.frame(1, "")))
      assert.equal("827d", hex(ws.frame(2, ("x"):rep(125))):sub(1, 4))
      assert.equal("827e007e", hex(ws.frame(2, ("x"):rep(126))):sub(1, 8))
      assert.equal("827effff", hex(ws.frame(2, ("x"):rep(65535))):sub(1, 8))
      assert.equal("827f0000000000010000", hex(ws.frame(2, ("x"):rep(65536))):sub(1, 20))
      assert.equal("827f0000000000100000", hex(ws.frame(2, ("x"):rep(MiB))):sub(1, 20))
      assert.equal("0903", hex(ws.frame(9, "abc", false)):sub(1, 4))
      assert.equal("c1", hex(ws.frame(1, "a", true, true)):sub(1, 2))
      assert.equal("8a00", hex(ws.frame(10, "", true, false, false)))
      assert.equal(#"abc" + 2, #ws.frame(1, "abc"))
    end)

    it("masks with a key after the length, the payload XORed with it (5.3)", function()
      for _, n in ipairs({ 0, 1, 7, 8, 31, 32, 33, 125, 126, 1000 }) do
        local payload = sample(n, n)
        local f = ws.frame(2, payload, true, false, true)
        assert.equal(0x80, bit.band(f:byte(2), 0x80))
        assert.equal(#payload + (n < 126 and 6 or 8), #f)
        local _, plain = unmask(f)
        assert.equal(payload, plain, "length " .. n)
      end
    end)

    it("draws a fresh masking key for every frame", function()
      local keys = {}
      for _ = 1, 2000 do
        local key = unmask(ws.frame(1, "same", true, false, true))
        assert.is_nil(keys[key], "a masking key came twice")
        keys[key] = true
      end
    end)

    it("raises for a bad opcode or payload", function()
      -- frame_pieces: the same bytes as pieces below LuaJIT's big strings
      local big = ("z"):rep(300000)
      local pieces = ws.frame_pieces(2, big, true, false, false)
      assert.equal(3, #pieces)
      for _, p in ipairs(pieces) do assert.is_true(#p <= 124 * 1024) end
      assert.equal(ws.frame(2, big, true, false, false), table.concat(pieces))
      raises("opcode must be 0 to 15", ws.frame, 16, "")
      raises("opcode must be 0 to 15", ws.frame, -1, "")
      raises("string expected", ws.frame, 1)
    end)
  end)

  describe("reader", function()
    local LENGTHS = { 0, 1, 125, 126, 127, 65535, 65536, MiB }

    it("round-trips every length class, masked and not", function()
      for _, n in ipairs(LENGTHS) do
        local payload = sample(n, n + 1)
        for _, masked in ipairs({ false, true }) do
          local frames, code = read_all(ws.frame(2, payload, true, false, masked), { masked = masked })
          assert.is_nil(code)
          assert.equal(1, #frames)
          assert.same({ 2, payload, true, false }, frames[1], "length " .. n)
        end
      end
    end)

    it("returns opcode, fin and rsv1 as sent", function()
      local r = ws.reader{ rsv1 = true }
      r:feed(ws.frame(1, "a", false, true) .. ws.frame(9, "p") .. ws.frame(0, "b", false) .. ws.frame(0, "c"))
      assert.same({ { 1, "a", false, true }, { 9, "p", true, false }, { 0, "b", false, false },
        { 0, "c", true, false } }, drain(r))
    end)

    it("reads frames fed one byte at a time, and in odd pieces", function()
      local stream, want = {}, {}
      for i, n in ipairs({ 0, 5, 125, 200, 70000, 3 }) do
        local op, payload = i % 2 + 1, sample(n, i)
        stream[#stream + 1] = ws.frame(op, payload, true, false, true)
        want[#want + 1] = { op, payload, true, false }
        -- a ping between the fragments of a message (5.4)
        stream[#stream + 1] = ws.frame(1, "frag", false, false, true) .. ws.frame(9, "ping", true, false, true)
          .. ws.frame(0, "ment", true, false, true)
        want[#want + 1] = { 1, "frag", false, false }
        want[#want + 1] = { 9, "ping", true, false }
        want[#want + 1] = { 0, "ment", true, false }
      end
      stream = table.concat(stream)
      for _, step in ipairs({ 1, 3, 4096, 65536 }) do
        local r, got = ws.reader{ masked = true }, {}
        for i = 1, #stream, step do
          assert(r:feed(stream:sub(i, i + step - 1)))
          drain(r, got)
        end
        assert.same(want, got, "step " .. step)
        assert.is_nil(r:next())
      end
    end)

    it("waits for the rest of a header or a payload", function()
      local f = ws.frame(2, ("z"):rep(70000), true, false, true)
      for _, cut in ipairs({ 1, 2, 4, 9, 13, 14, 100, #f - 1 }) do
        local r = ws.reader{ masked = true }
        assert.is_true(r:feed(f:sub(1, cut)))
        assert.equal(1, select("#", r:next()), "one nil, cut at " .. cut)
        assert.is_nil(r:next())
        r:feed(f:sub(cut + 1))
        local op, payload = r:next()
        assert.equal(2, op)
        assert.equal(70000, #payload)
      end
    end)

    describe("fails the connection", function()
      local client, server = { masked = false }, { masked = true }

      local function fails(code, pattern, bytes, opts)
        local got, reason = refusal(bytes, opts or client)
        assert.equal(code, got, "bytes " .. hex(bytes:sub(1, 16)))
        assert.matches(pattern, reason)
        assert.is_true(#reason <= 123, "a close reason fits a control frame (5.5)")
      end

      it("with 1002 for RSV2 or RSV3 (5.2)", function()
        fails(1002, "RSV2 or RSV3", "\xa1\x00")
        fails(1002, "RSV2 or RSV3", "\x91\x00")
        fails(1002, "RSV2 or RSV3", "\xb1\x00", { rsv1 = true })
      end)

      it("with 1002 for RSV1 without an extension, on control frames and continuations", function()
        fails(1002, "RSV1 set without an extension", "\xc1\x00")
        fails(1002, "RSV1 set on a control frame", "\xc9\x00", { rsv1 = true })
        fails(1002, "RSV1 set on a control frame", "\xca\x00", { rsv1 = true })
        fails(1002, "RSV1 set on a continuation", "\x41\x00\xc0\x00", { rsv1 = true })
        assert.same({ { 1, "", true, true } }, (read_all("\xc1\x00", { rsv1 = true })))
      end)

      it("with 1002 for the reserved opcodes (5.2)", function()
        for _, op in ipairs({ 3, 4, 5, 6, 7, 11, 12, 13, 14, 15 }) do
          fails(1002, "reserved opcode", string.char(0x80 + op, 0))
        end
      end)

      it("with 1002 for control frames over 125 bytes or fragmented (5.5)", function()
        fails(1002, "control frame payload over 125 bytes", "\x89\x7e")
        fails(1002, "control frame payload over 125 bytes", "\x8a\x7f")
        fails(1002, "control frame payload over 125 bytes", ws.frame(8, ("x"):rep(126)))
        fails(1002, "fragmented control frame", "\x09\x00")
        fails(1002, "fragmented control frame", "\x08\x00")
        assert.same({ 9, ("x"):rep(125), true, false }, read_all(ws.frame(9, ("x"):rep(125)))[1])
      end)

      it("with 1002 for a continuation without a message, or a data frame inside one (5.4)", function()
        fails(1002, "continuation frame without a message", "\x80\x00")
        fails(1002, "continuation frame without a message", "\x00\x00")
        fails(1002, "continuation frame without a message", "\x81\x00\x80\x00")
        fails(1002, "data frame inside a fragmented message", "\x01\x00\x81\x00")
        fails(1002, "data frame inside a fragmented message", "\x02\x00\x89\x00\x02\x00")
      end)

      it("with 1002 for masking the wrong way (5.1)", function()
        fails(1002, "masked frame from the server", ws.frame(1, "x", true, false, true), client)
        fails(1002, "unmasked frame from a client", ws.frame(1, "x"), server)
      end)

      it("with 1002 for a 64-bit length with its top bit set (5.2)", function()
        fails(1002, "64%-bit payload length", "\x82\x7f\x80\0\0\0\0\0\0\0")
        fails(1002, "64%-bit payload length", "\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff")
      end)

      it("with 1009 for a frame over max_size, as soon as its header says so", function()
        local r = ws.reader{ max_size = 100 }
        r:feed("\x82\x65")
        local ok, code, reason = r:next()
        assert.is_false(ok)
        assert.equal(1009, code)
        assert.matches("frame of 101 bytes over the limit of 100", reason)
        fails(1009, "over the limit", "\x82\x7e\x10\x00", { max_size = 4095 })
        fails(1009, "over the limit", "\x82\x7f\0\0\0\1\0\0\0\0", { max_size = MiB })
        assert.same({ 2, ("x"):rep(100), true, false }, read_all(ws.frame(2, ("x"):rep(100)), { max_size = 100 })[1])
        assert.same({ 2, "", true, false }, read_all(ws.frame(2, ""), { max_size = 0 })[1])
        fails(1009, "over the limit", ws.frame(2, "x"), { max_size = 0 })
      end)

      it("after the frames before the violation, and stays failed", function()
        local frames, code = read_all(ws.frame(1, "ok") .. "\x83\x00" .. ws.frame(1, "never"))
        assert.same({ { 1, "ok", true, false } }, frames)
        assert.equal(1002, code)
        local r = ws.reader{}
        r:feed("\x83\x00")
        assert.is_false((r:next()))
        assert.is_true(r:feed(ws.frame(1, "later")))
        local ok, again, reason = r:next()
        assert.is_false(ok)
        assert.equal(1002, again)
        assert.equal("reserved opcode", reason)
      end)
    end)

    it("raises for bad options", function()
      raises("table expected", ws.reader)
      raises("max_size must be a number >= 0", ws.reader, { max_size = -1 })
      raises("max_size must be a number >= 0", ws.reader, { max_size = "big" })
      raises("masked must be a boolean", ws.reader, { masked = 1 })
      raises("rsv1 must be a boolean", ws.reader, { rsv1 = "yes" })
    end)
  end)

  describe("utf8", function()
    -- RFC 3629 section 4, decoded the plain way, as the reference. A lead
    -- byte gives the sequence's length, its first bits and the least code
    -- point that needs that length.
    local function lead(c)
      if c < 0x80 then return 1, c, 0 end
      if c >= 0xc2 and c <= 0xdf then return 2, c - 0xc0, 0x80 end
      if c >= 0xe0 and c <= 0xef then return 3, c - 0xe0, 0x800 end
      if c >= 0xf0 and c <= 0xf4 then return 4, c - 0xf0, 0x10000 end
    end

    local function valid(s)
      local i, n = 1, #s
      while i <= n do
        local len, cp, min = lead(s:byte(i))
        if not len or i + len - 1 > n then return false end
        for k = 1, len - 1 do
          local d = s:byte(i + k)
          if d < 0x80 or d > 0xbf then return false end
          cp = cp * 64 + d - 0x80
        end
        if cp < min or cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff) then return false end
        i = i + len
      end
      return true
    end

    local function check(s)
      local v = ws.utf8()
      return v:feed(s) and v:finish()
    end

    local TEXT = "κόσμε: Hello-µ@ßöäüàá-UTF-8!! € \u{10000} \u{10ffff} \u{d7ff} \u{e000} \u{fffd} "
      .. "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}"

    it("accepts valid text whole, byte by byte, and split at every byte", function()
      assert.is_true(check(""))
      assert.is_true(check(TEXT))
      assert.is_true(check(TEXT:rep(100)))
      for k = 0, #TEXT do
        local v = ws.utf8()
        assert.is_true(v:feed(TEXT:sub(1, k)))
        assert.is_true(v:feed(TEXT:sub(k + 1)))
        assert.is_true(v:finish(), "split at " .. k)
      end
      local v = ws.utf8()
      for i = 1, #TEXT do assert.is_true(v:feed(TEXT:sub(i, i))) end
      assert.is_true(v:finish())
    end)

    it("finish() is false inside a sequence", function()
      local v = ws.utf8()
      assert.is_true(v:feed("\xe2\x82"))
      assert.is_false(v:finish())
      assert.is_true(v:feed("\xac"))
      assert.is_true(v:finish())
    end)

    it("refuses each class of invalid sequence at the first byte that cannot be valid", function()
      -- { bytes, the byte at which no valid text can go on }
      local cases = {
        overlong = { { "\xc0\x80", 1 }, { "\xc1\xbf", 1 }, { "\xe0\x80\x80", 2 }, { "\xe0\x9f\xbf", 2 },
          { "\xf0\x80\x80\x80", 2 }, { "\xf0\x8f\xbf\xbf", 2 } },
        surrogate = { { "\xed\xa0\x80", 2 }, { "\xed\xbf\xbf", 2 }, { "a\xed\xb0\x80", 3 } },
        ["above U+10FFFF"] = { { "\xf4\x90\x80\x80", 2 }, { "\xf5\x80\x80\x80", 1 }, { "\xf7\xbf\xbf\xbf", 1 },
          { "\xf8\x88\x80\x80\x80", 1 }, { "\xfc\x84\x80\x80\x80\x80", 1 } },
        ["stray byte"] = { { "\x80", 1 }, { "\xbf", 1 }, { "a\x80b", 2 }, { "\xfe", 1 }, { "\xff", 1 },
          { "\xc3\x41", 2 }, { "\xe2\x82\x41", 3 }, { "\xf0\x9f\x98\xe2", 4 } },
      }
      for class, list in pairs(cases) do
        for _, case in ipairs(list) do
          local s, at = case[1], case[2]
          local v = ws.utf8()
          for i = 1, #s do
            assert.equal(i < at, v:feed(s:sub(i, i)), ("%s: %s, byte %d"):format(class, hex(s), i))
          end
          assert.is_false(v:finish())
          assert.is_false(check(s))
          v:reset()
          assert.is_true(v:feed("ok") and v:finish())
        end
      end
    end)

    it("refuses truncated sequences at finish()", function()
      for _, s in ipairs({ "\xc3", "\xe2\x82", "\xf0\x9f\x98", "ok\xf4\x8f\xbf" }) do
        local v = ws.utf8()
        assert.is_true(v:feed(s))
        assert.is_false(v:finish(), hex(s))
      end
    end)

    it("agrees with the reference on every 1- and 2-byte string and many longer ones", function()
      local function agree(s)
        if valid(s) ~= check(s) then assert.equal(valid(s), check(s), hex(s)) end
      end
      for a = 0, 255 do
        agree(string.char(a))
        for b = 0, 255 do agree(string.char(a, b)) end
      end
      local edges = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff }
      for a = 0xe0, 0xf7 do
        for b = 0, 255 do
          for _, c in ipairs(edges) do
            for _, d in ipairs({ 0x80, 0xbf, 0x41 }) do agree(string.char(a, b, c, d)) end
          end
        end
      end
    end)
  end)

  describe("permessage-deflate", function()
    local TEXT = sample(200 * KiB, 3)

    local function roundtrip(bits, no_takeover, messages)
      local d, i = ws.deflater(bits, no_takeover), ws.inflater(bits, no_takeover)
      local sizes = {}
      for n, m in ipairs(messages) do
        local c = assert(d:compress(m))
        sizes[n] = #c
        assert.are_not.equal("\0\0\255\255", c:sub(-4), "the tail is removed (7.2.1)")
        assert.equal(m, i:decompress(c), ("bits %d, message %d"):format(bits, n))
      end
      return sizes
    end

    it("compresses RFC 7692 7.2.3.1 and 7.2.3.2's Hello", function()
      local d = ws.deflater()
      assert.equal("f248cdc9c90700", hex(d:compress("Hello")))
      assert.equal("f200110000", hex(d:compress("Hello")), "the second refers to the first")
      d = ws.deflater(15, true)
      assert.equal("f248cdc9c90700", hex(d:compress("Hello")))
      assert.equal("f248cdc9c90700", hex(d:compress("Hello")), "no context takeover")
    end)

    it("decompresses the RFC 7692 7.2.3 examples", function()
      local i = ws.inflater()
      assert.equal("Hello", i:decompress(unhex("f2 48 cd c9 c9 07 00")))             -- 7.2.3.1
      assert.equal("Hello", i:decompress(unhex("f2 00 11 00 00")))                   -- 7.2.3.2
      assert.equal("Hello", i:decompress(unhex("00 05 00 fa ff 48 65 6c 6c 6f 00"))) -- 7.2.3.3
      assert.equal("Hello", i:decompress(unhex("f3 48 cd c9 c9 07 00 00")))          -- 7.2.3.4
      assert.equal("Hello", i:decompress(unhex("f2 00 11 00 00")), "the window survives BFINAL")
      assert.equal("Hello", i:decompress(unhex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00"))) -- 7.2.3.5
      assert.equal("", i:decompress(unhex("00")))                                    -- 7.2.3.6
      assert.equal("", i:decompress(""), "no payload at all")
      assert.equal("Hello", i:decompress(unhex("f2 00 11 00 00")), "and the window is still there")
      -- a final block that ends the payload, without 7.2.3.4's 00 after it
      assert.equal("Hello", i:decompress(unhex("f3 48 cd c9 c9 07 00")))
      assert.equal("Hello", i:decompress(unhex("f2 00 11 00 00")))
    end)

    it("an empty message compresses to 00 (7.2.3.6), in any state", function()
      local d, i = ws.deflater(), ws.inflater()
      for _, m in ipairs({ "", "Hello", "", "", "Hello", "" }) do
        local c = d:compress(m)
        if m == "" then assert.equal("00", hex(c)) end
        assert.equal(m, i:decompress(c))
      end
    end)

    it("round-trips with and without context takeover, window bits 8 to 15", function()
      -- short enough for zlib's smallest window (512 bytes less 262 of lookahead)
      local short = sample(200, 9)
      local messages = { "", "Hello", TEXT, short, short, support.random_bytes(70000), "Hello", "" }
      for bits = 8, 15 do
        local shared = roundtrip(bits, false, messages)
        local fresh = roundtrip(bits, true, messages)
        assert.is_true(shared[5] < fresh[5] / 4, "a repeated message takes back-references")
        assert.equal(fresh[4], fresh[5])
        assert.equal(fresh[2], fresh[7])
      end
    end)

    it("without context takeover, each message inflates on its own", function()
      local d = ws.deflater(15, true)
      local a, b = d:compress(TEXT), d:compress(TEXT)
      assert.equal(a, b)
      assert.equal(TEXT, ws.inflater():decompress(b))
    end)

    it("an inflater's window is no larger than asked, across messages", function()
      -- the second message refers 2000 bytes back, into the first: more
      -- than a 512-byte window holds (within one message zlib refers to
      -- what that call wrote, whatever the window)
      local chunk = sample(2000, 5)
      local d = ws.deflater(15)
      local c1, c2 = d:compress(chunk), d:compress(chunk)
      assert.is_true(#c2 < 100)
      local i = ws.inflater(9)
      assert.equal(chunk, i:decompress(c1))
      local out, err, ename = i:decompress(c2)
      assert.is_nil(out)
      assert.equal("EDECODE", ename)
      assert.equal("EDECODE: invalid compressed message (invalid distance too far back)", err)
      i = ws.inflater(12)
      assert.equal(chunk, i:decompress(c1))
      assert.equal(chunk, i:decompress(c2))
    end)

    it("stops a deflate bomb at max with EMSGSIZE, quickly and in little memory", function()
      -- 100 MiB of zeros in about 100 KiB: 1 MiB messages joined by the
      -- empty stored blocks the sender removed (7.2.3.5's layout).
      local d, parts, zeros = ws.deflater(), {}, ("\0"):rep(MiB)
      for n = 1, 100 do parts[n] = d:compress(zeros) end
      local bomb = table.concat(parts, "\0\0\255\255")
      assert.is_true(#bomb < 200 * KiB)
      local function rss()
        local f = assert(io.open("/proc/self/statm"))
        local pages = f:read("*n") and f:read("*n")
        f:close()
        return pages * 4096
      end
      local before, t0 = rss(), os.clock()
      local out, err, ename = ws.inflater():decompress(bomb, MiB)
      assert.is_nil(out)
      assert.equal("EMSGSIZE", err)
      assert.equal("EMSGSIZE", ename)
      assert.is_true(os.clock() - t0 < 0.5, "took " .. (os.clock() - t0) .. " s")
      assert.is_true(rss() - before < 16 * MiB, "memory grew by " .. (rss() - before))
      -- exactly max is fine; one byte more is not
      local i = ws.inflater()
      assert.equal(MiB, #i:decompress(parts[1], MiB))
      assert.equal("EMSGSIZE", select(2, ws.inflater():decompress(parts[1], MiB - 1)))
      assert.equal("EMSGSIZE", select(2, ws.inflater():decompress(d:compress("ab"), 1)))
      assert.equal("", ws.inflater():decompress(ws.deflater():compress(""), 0))
    end)

    it("reports corrupt data, and stays failed", function()
      local i = ws.inflater()
      local out, err, ename = i:decompress("\255\255\255\255")
      assert.is_nil(out)
      assert.equal("EDECODE", ename)
      assert.matches("^EDECODE: invalid compressed message %(invalid block type%)", err)
      local again, err2 = i:decompress(ws.deflater():compress("Hello"))
      assert.is_nil(again)
      assert.equal(err, err2)
      -- a stored block whose length check fails
      assert.matches("invalid stored block lengths", select(2, ws.inflater():decompress(unhex("00 05 00 00 00"))))
    end)

    it("close() frees zlib now; a closed one raises", function()
      local d, i = ws.deflater(), ws.inflater()
      d:close()
      i:close()
      i:close()
      raises("deflater is closed", d.compress, d, "x")
      raises("inflater is closed", i.decompress, i, "x")
    end)

    it("raises for bad window bits and max", function()
      raises("window bits must be 8 to 15", ws.deflater, 7)
      raises("window bits must be 8 to 15", ws.inflater, 16)
      raises("max must be >= 0", ws.inflater().decompress, ws.inflater(), "", -1)
    end)
  end)
end)
