-- core.codec: streaming decoders for gzip, deflate, br and zstd, encoders for
-- request bodies. Compressed data comes from the real tools at test time
-- (the gzip CLI; the zstd CLI of Debian's zstd package when installed, else
-- the encoder). br has no CLI on Debian 12, so its vectors below were made
-- once with libbrotlienc 1.0.9's BrotliEncoderCompress (quality 11, default
-- window) in a throwaway C program, and the encoder adds round trips.
local support = require "spec.support"
local codec = require("lurl.core").codec

local MiB = 1024 * 1024

local function have(tool)
  local r = os.execute("command -v " .. tool .. " >/dev/null 2>&1")
  return r == 0 or r == true
end

local read_file, write_file = support.read_file, support.write_file

-- Output of a shell command given input on stdin (the command may be a pipeline).
local function run(cmd, input)
  local inp, outp = os.tmpname(), os.tmpname()
  write_file(inp, input or "")
  local r = os.execute(("(%s) < %s > %s"):format(cmd, inp, outp))
  local out = read_file(outp)
  os.remove(inp)
  os.remove(outp)
  assert(r == 0 or r == true, "command failed: " .. cmd)
  return out
end

-- Deterministic text-like data: words picked by a linear congruential
-- generator, compressible but not trivially.
local function sample(n, seed)
  local words = { "lurl", "HTTP", "chunk", "brotli", "zstd", "gzip", "deflate", "\n", "\0\1\2",
    "Content-Encoding", "stream", "\255\254", "lorem", "ipsum", "dolor", " ", "," }
  local x, parts, len = seed or 1, {}, 0
  while len < n do
    x = (x * 1103515245 + 12345) % 2147483648
    local w = words[x % #words + 1]
    if x % 7 == 0 then w = string.char(x % 256, math.floor(x / 256) % 256) end
    parts[#parts + 1] = w
    len = len + #w
  end
  return table.concat(parts):sub(1, n)
end

-- Decode data fed in pieces of `step` bytes (1: byte by byte), then finish.
-- Returns the output, or nil and the error and its name.
local function decode(name, data, step, ...)
  local d = codec.decoder(name, ...)
  local parts = {}
  step = step or #data
  for i = 1, #data, math.max(step, 1) do
    local out, err, ename = d:feed(data:sub(i, i + step - 1))
    if not out then return nil, err, ename end
    parts[#parts + 1] = out
  end
  local rest, err, ename = d:finish()
  if not rest then return nil, err, ename end
  parts[#parts + 1] = rest
  return table.concat(parts), d
end

local function encode(name, data, level, step)
  local e = codec.encoder(name, level)
  local parts = {}
  step = step or #data
  for i = 1, #data, math.max(step, 1) do parts[#parts + 1] = assert(e:feed(data:sub(i, i + step - 1))) end
  parts[#parts + 1] = assert(e:finish())
  return table.concat(parts)
end

-- zlib format (RFC 1950) around raw deflate data: header 78 9c, Adler-32.
local function adler32(s)
  local a, b = 1, 0
  for i = 1, #s do
    a = (a + s:byte(i)) % 65521
    b = (b + a) % 65521
  end
  return b * 65536 + a
end

local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
    math.floor(n / 256) % 256, n % 256)
end

-- gzip -n writes a 10-byte header and an 8-byte trailer around raw deflate.
-- zstd-compressed data from the CLI (args: its level option) or, without
-- the zstd package, from the encoder.
local ZSTD_CLI = have("zstd")
local function zstd(data, level)
  if ZSTD_CLI then return run("zstd -q -c" .. (level and " -" .. level or ""), data) end
  return encode("zstd", data, level)
end
local it_zstd_cli = ZSTD_CLI and it or pending

local function raw_deflate(data) return run("gzip -c -n", data):sub(11, -9) end
local function zlib_deflate(data) return "\120\156" .. raw_deflate(data) .. be32(adler32(data)) end

-- Flip the bits of the byte at i.
local function flip(s, i) return s:sub(1, i - 1) .. string.char(255 - s:byte(i)) .. s:sub(i + 1) end

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  assert.matches(pattern, tostring(err))
end

local function expect_error(pattern, out, err, ename)
  assert.is_nil(out)
  assert.equal("EDECODE", ename)
  assert.matches("^EDECODE: ", err)
  assert.matches(pattern, err)
end

local TEXT = sample(200000, 7)

-- Vectors from libbrotlienc (see the top of the file).
local BR_FOX = "\x1b\xc7\xaf\x88\x2c\x0e\xec\x98\x32\x78\x61\xc3\x74\xea\x6b\x05\xaa\x32\x34\x49"
  .. "\x66\xc6\xd6\x20\x67\x78\x7a\x2a\xec\xad\x41\x5c\xe6\xf2\xc2\x06\x1c\x38\x24\x90"
  .. "\x37\x1a\xdc\xa0\xd3\x0a\x67\x1e\x1e\x27\xaa\x29\x38\xc2\xa9\x3a\x05\xd8\xa7\x81\x01"
local FOX = ("The quick brown fox jumps over the lazy dog.\n"):rep(1000)
local BR_HELLO = "\x8b\x06\x80\x68\x65\x6c\x6c\x6f\x2c\x20\x62\x72\x6f\x74\x6c\x69\x0a\x03"
local BR_EMPTY = "\x06"

describe("core.codec", function()
  it("names what the decoder supports, in Accept-Encoding order", function()
    assert.same({ "gzip", "deflate", "br", "zstd" }, codec.names)
  end)

  it("raises for unknown codings and bad levels; names are case-insensitive", function()
    raises("unknown content coding 'compress'", codec.decoder, "compress")
    raises("unknown content coding 'identity'", codec.encoder, "identity")
    raises("string expected", codec.decoder)
    raises("gzip level must be 0 to 9", codec.encoder, "gzip", 10)
    raises("br level must be 0 to 11", codec.encoder, "br", -1)
    raises("zstd level must be 1 to 19", codec.encoder, "zstd", 22)
    raises("max_output must be >= 0", codec.decoder, "gzip", -1)
    assert.equal("hi", (decode("GZIP", run("gzip -c", "hi"))))
    assert.equal("hi", (decode("x-gzip", run("gzip -c", "hi"))))
  end)

  it("an empty body is empty, not truncated", function()
    for _, name in ipairs(codec.names) do
      local d = codec.decoder(name)
      assert.equal("", d:feed(""))
      assert.equal("", d:finish())
      assert.equal(0, d.total_in)
      assert.equal(0, d.total_out)
    end
  end)

  describe("gzip", function()
    local gz = run("gzip -c", TEXT)

    it("decodes the gzip CLI's output whole, in odd pieces and byte by byte", function()
      for _, step in ipairs({ #gz, 4096, 7, 1 }) do
        local out, d = decode("gzip", gz, step)
        assert.equal(TEXT, out, "step " .. step)
        assert.equal(#gz, d.total_in)
        assert.equal(#TEXT, d.total_out)
      end
    end)

    it("decodes every gzip level, and stored blocks", function()
      for _, level in ipairs({ 1, 9 }) do
        assert.equal(TEXT, (decode("gzip", run("gzip -c -" .. level, TEXT), 1000)))
      end
      local noise = sample(5000, 3):gsub(".", function(c) return string.char((c:byte() * 37 + 11) % 256) end)
      assert.equal(noise, (decode("gzip", run("gzip -c -1", noise), 3)))
    end)

    it("decodes concatenated members (RFC 1952 2.2), split anywhere", function()
      local a, b = sample(30000, 1), sample(20000, 2)
      local stream = run("gzip -c", a) .. run("gzip -c", "") .. run("gzip -c -9", b) .. run("gzip -c", "x")
      for _, step in ipairs({ #stream, 1000, 1 }) do
        assert.equal(a .. b .. "x", (decode("gzip", stream, step)))
      end
      -- a member boundary exactly at a chunk boundary
      local first = run("gzip -c", a)
      local d = codec.decoder("gzip")
      assert.equal(a, d:feed(first))
      assert.equal("x", d:feed(run("gzip -c", "x")))
      assert.equal("", d:finish())
    end)

    it("rejects data after the end that is not another member", function()
      local g = run("gzip -c", "abc")
      expect_error("data after the end of the gzip stream", decode("gzip", g .. "garbage"))
      expect_error("data after the end of the gzip stream", decode("gzip", g .. "\0\0\0\0"))
      -- one byte that cannot start a member fails at once, in the same feed
      local d = codec.decoder("gzip")
      assert.equal("abc", d:feed(g))
      expect_error("data after the end of the gzip stream", d:feed("x"))
      -- a magic byte alone, then the wrong second byte
      expect_error("data after the end of the gzip stream", decode("gzip", g .. "\31\0", 1))
    end)

    it("reports corrupt data naming gzip", function()
      expect_error("invalid gzip stream %(incorrect header check%)", decode("gzip", "not gzip at all"))
      -- a damaged CRC-32 in the trailer
      expect_error("invalid gzip stream %(incorrect data check%)", decode("gzip", flip(gz, #gz - 5)))
      -- damage inside the compressed blocks
      local out, err, ename = decode("gzip", flip(gz, 200))
      expect_error("invalid gzip stream", out, err, ename)
      -- once failed, the decoder keeps failing with the same error
      local d = codec.decoder("gzip")
      local _, err1 = d:feed("bad data")
      local o2, err2, e2 = d:feed(gz)
      assert.is_nil(o2)
      assert.equal(err1, err2)
      assert.equal("EDECODE", e2)
      assert.equal(err1, select(2, d:finish()))
    end)

    it("reports a truncated stream at finish, wherever it was cut", function()
      for _, cut in ipairs({ 1, 5, 10, 11, 100, #gz - 8, #gz - 1 }) do
        local out, err, ename = decode("gzip", gz:sub(1, cut), 3)
        assert.equal(nil, out, "cut at " .. cut)
        assert.equal("EDECODE: truncated gzip stream", err)
        assert.equal("EDECODE", ename)
      end
      -- the first byte of a second member, and nothing after it
      expect_error("truncated gzip stream", decode("gzip", gz .. "\31"))
    end)
  end)

  describe("deflate", function()
    it("decodes the zlib format (RFC 1950) and raw deflate (RFC 1951) alike", function()
      local raw, zlib = raw_deflate(TEXT), zlib_deflate(TEXT)
      for _, step in ipairs({ #raw, 999, 2, 1 }) do
        assert.equal(TEXT, (decode("deflate", raw, step)), "raw, step " .. step)
        assert.equal(TEXT, (decode("deflate", zlib, step)), "zlib, step " .. step)
      end
      assert.equal("a", (decode("deflate", raw_deflate("a"), 1)))
      assert.equal("", (decode("deflate", raw_deflate(""), 1)))
      assert.equal("", (decode("deflate", zlib_deflate(""), 1)))
    end)

    it("reports corrupt data naming deflate", function()
      -- zlib with a damaged Adler-32
      local z = zlib_deflate(TEXT)
      expect_error("invalid deflate stream %(incorrect data check%)", decode("deflate", flip(z, #z)))
      -- raw: BFINAL 1, BTYPE 11 (reserved)
      expect_error("invalid deflate stream %(invalid block type%)", decode("deflate", "\7\0\0\0"))
      -- a zlib header asking for a preset dictionary (FDICT)
      expect_error("invalid deflate stream %(it needs a preset dictionary%)",
        decode("deflate", "\120\187\0\0\0\1"))
    end)

    it("reports a truncated stream, raw or zlib", function()
      local raw, zlib = raw_deflate(TEXT), zlib_deflate(TEXT)
      expect_error("^EDECODE: truncated deflate stream$", decode("deflate", raw:sub(1, -2)))
      expect_error("^EDECODE: truncated deflate stream$", decode("deflate", zlib:sub(1, -2)))
      expect_error("^EDECODE: truncated deflate stream$", decode("deflate", zlib:sub(1, 1)))
      expect_error("^EDECODE: truncated deflate stream$", decode("deflate", raw:sub(1, 100), 1))
    end)

    it("rejects data after the end of the stream", function()
      expect_error("data after the end of the deflate stream", decode("deflate", zlib_deflate("abc") .. "x"))
      expect_error("data after the end of the deflate stream", decode("deflate", raw_deflate("abc") .. "x", 1))
    end)
  end)

  describe("br", function()
    it("decodes libbrotlienc's vectors whole and byte by byte", function()
      for _, step in ipairs({ #BR_FOX, 5, 1 }) do
        assert.equal(FOX, (decode("br", BR_FOX, step)))
        assert.equal("hello, brotli\n", (decode("br", BR_HELLO, step)))
      end
      assert.equal("", (decode("br", BR_EMPTY)))
    end)

    it("round-trips through the encoder at several qualities", function()
      for _, q in ipairs({ 0, 5, 11 }) do
        local text = q == 11 and TEXT:sub(1, 30000) or TEXT
        local c = encode("br", text, q, 7777)
        assert.equal(text, (decode("br", c, 1000)))
      end
      assert.equal(TEXT:sub(1, 5000), (decode("br", encode("br", TEXT:sub(1, 5000)), 1)))
    end)

    it("reports corrupt data naming brotli", function()
      -- brotli has no checksum: these damaged bytes are ones the format catches
      expect_error("invalid brotli stream %(SIMPLE_HUFFMAN_SAME%)", decode("br", flip(BR_FOX, 1)))
      expect_error("invalid brotli stream %(CONTEXT_MAP_REPEAT%)", decode("br", flip(BR_FOX, 9), 1))
      expect_error("invalid brotli stream %(PADDING_2%)", decode("br", flip(BR_FOX, #BR_FOX)))
      expect_error("invalid brotli stream %(", decode("br", "\255\255\255\255"))
    end)

    it("reports a truncated stream", function()
      for _, cut in ipairs({ 1, 10, #BR_FOX - 1 }) do
        expect_error("^EDECODE: truncated brotli stream$", decode("br", BR_FOX:sub(1, cut), 1))
      end
    end)

    it("rejects data after the end of the stream", function()
      expect_error("data after the end of the brotli stream", decode("br", BR_HELLO .. "x"))
      expect_error("data after the end of the brotli stream", decode("br", BR_HELLO .. BR_HELLO, 1))
    end)
  end)

  describe("zstd", function()
    local zs = zstd(TEXT)

    it("decodes the zstd CLI's output whole, in odd pieces and byte by byte", function()
      for _, step in ipairs({ #zs, 3333, 1 }) do
        local out, d = decode("zstd", zs, step)
        assert.equal(TEXT, out, "step " .. step)
        assert.equal(#zs, d.total_in)
      end
      assert.equal(TEXT, (decode("zstd", zstd(TEXT, 19), 100)))
    end)

    it("decodes several frames and skips skippable frames (RFC 8878 3)", function()
      local skippable = "\x50\x2a\x4d\x18\3\0\0\0abc"
      local stream = zstd("first ") .. skippable .. zstd("second")
      for _, step in ipairs({ #stream, 1 }) do
        assert.equal("first second", (decode("zstd", stream, step)))
      end
    end)

    it("refuses frames that need a window over 8 MiB (RFC 9659)", function()
      -- Hand-made frames (RFC 8878 3.1.1): magic, a descriptor without
      -- content size, a window descriptor (exponent << 3: window 2^(10 +
      -- exponent)), one last raw block of 1 byte ("z").
      local function frame(exponent) return "\x28\xb5\x2f\xfd\0" .. string.char(exponent * 8) .. "\9\0\0z" end
      assert.equal("z", (decode("zstd", frame(13))))  -- 8 MiB
      expect_error("invalid zstd stream %(a frame needs a window over 8 MiB%)", decode("zstd", frame(14)))
      expect_error("invalid zstd stream %(a frame needs a window over 8 MiB%)", decode("zstd", frame(17)))
    end)

    it("reports corrupt data naming zstd", function()
      expect_error("invalid zstd stream %(no RFC 8878 frame magic%)", decode("zstd", "\x28\xb5\x2f\xfe" .. zs:sub(5)))
      -- a legacy (v0.5) frame, which libzstd would read whole but not in pieces
      expect_error("no RFC 8878 frame magic", decode("zstd", "\x25\xb5\x2f\xfd\x04\xd8\xbd\x2b"))
      -- the CLI writes a content checksum; damage a literal byte
      local z = zstd("0123456789abcdefghijklmnopqrstuvwxyz")
      expect_error("invalid zstd stream", decode("zstd", flip(z, 12)))
      expect_error("invalid zstd stream", decode("zstd", flip(zs, #zs)))
    end)

    it("reports a truncated stream", function()
      for _, cut in ipairs({ 1, 4, 10, #zs - 1 }) do
        expect_error("^EDECODE: truncated zstd stream$", decode("zstd", zs:sub(1, cut), 2))
      end
      expect_error("^EDECODE: truncated zstd stream$", decode("zstd", zs .. "\x28\xb5"))
    end)

    it("rejects data after the end that is not another frame", function()
      expect_error("data after the end of the zstd stream", decode("zstd", zs .. "garbage"))
      expect_error("data after the end of the zstd stream", decode("zstd", zs .. "\x28\xb5\x2f\0", 1))
    end)
  end)

  describe("large output", function()
    local function zeros_check(name, compressed, chunk, size)
      size = size or 64 * MiB
      local d = codec.decoder(name)
      local total, max_piece = 0, 0
      for i = 1, #compressed, chunk do
        local out = assert(d:feed(compressed:sub(i, i + chunk - 1)))
        assert.is_nil(out:find("[^%z]"))
        total = total + #out
        if #out > max_piece then max_piece = #out end
        assert.equal(total, d.total_out)
      end
      assert.equal("", d:finish())
      assert.equal(size, total)
      assert.equal(size, d.total_out)
      assert.equal(#compressed, d.total_in)
      d:close()
      return max_piece
    end

    it("64 MiB of zeros through gzip, zstd and br, fed in chunks", function()
      local gz = run("head -c 67108864 /dev/zero | gzip -c")
      zeros_check("gzip", gz, 1024)
      zeros_check("gzip", gz, 65536)
      zeros_check("zstd", zstd(("\0"):rep(64 * MiB)), 100)
      zeros_check("br", encode("br", ("\0"):rep(64 * MiB), 1, 4 * MiB), 10)
      zeros_check("deflate", raw_deflate(("\0"):rep(8 * MiB)), 1, 8 * MiB)
    end)

    it("max_output stops a decompression bomb before its output is made", function()
      local gz = run("head -c 67108864 /dev/zero | gzip -c")
      local d = codec.decoder("gzip", 1 * MiB)
      local out, err, ename = d:feed(gz)
      assert.is_nil(out)
      assert.equal("ELIMIT", ename)
      assert.equal("ELIMIT: decoded gzip body larger than max_output (1048576 bytes)", err)
      assert.is_true(d.total_out <= 1 * MiB)
      -- exactly at the limit is fine
      assert.equal(1000, #(decode("zstd", zstd(("a"):rep(1000)), 1, 1000)))
      local _, err2, e2 = decode("zstd", zstd(("a"):rep(1001)), 1, 1000)
      assert.equal("ELIMIT", e2)
      assert.matches("zstd", err2)
      local _, _, e3 = decode("br", BR_FOX, nil, 100)
      assert.equal("ELIMIT", e3)
    end)
  end)

  describe("encoders", function()
    it("gzip output is read by the gzip CLI, whatever the pieces", function()
      for _, step in ipairs({ #TEXT, 1000, 1 }) do
        local data = step == 1 and TEXT:sub(1, 20000) or TEXT
        assert.equal(data, run("gzip -dc", encode("gzip", data, nil, step)))
      end
      for _, level in ipairs({ 0, 1, 9 }) do
        local c = encode("gzip", TEXT, level)
        assert.equal(TEXT, run("gzip -dc", c))
        assert.equal(TEXT, (decode("gzip", c, 4096)))
      end
      assert.equal("", run("gzip -dc", encode("gzip", "")))
    end)

    it("deflate is the zlib format, which the decoder reads", function()
      local c = encode("deflate", TEXT)
      assert.equal(0x78, c:byte(1))
      assert.equal(0, (c:byte(1) * 256 + c:byte(2)) % 31)
      assert.equal(be32(adler32(TEXT)), c:sub(-4))
      assert.equal(TEXT, (decode("deflate", c, 1)))
    end)

    it_zstd_cli("zstd output is read by the zstd CLI", function()
      assert.equal(TEXT, run("zstd -q -dc", encode("zstd", TEXT, nil, 5000)))
      assert.equal(TEXT, run("zstd -q -dc", encode("zstd", TEXT, 19)))
      assert.equal(TEXT, (decode("zstd", encode("zstd", TEXT, 1), 999)))
    end)

    it("counts bytes in and out", function()
      local e = codec.encoder("gzip")
      local a = e:feed(TEXT)
      local b = e:finish()
      assert.equal(#TEXT, e.total_in)
      assert.equal(#a + #b, e.total_out)
    end)
  end)

  describe("misuse", function()
    it("a closed coder raises; close twice is fine; counts stay readable", function()
      for _, name in ipairs(codec.names) do
        local d = codec.decoder(name)
        d:close()
        d:close()
        raises("calling 'feed' on bad self %(decoder is closed%)", function() local r = d:feed("x"); return r end)
        raises("decoder is closed", d.finish, d)
        assert.equal(0, d.total_in)
        assert.matches("^lurl.codec.decoder %(" .. name .. ", 0 in, 0 out, closed%)$", tostring(d))
        local e = codec.encoder(name)
        e:close()
        raises("encoder is closed", e.feed, e, "x")
        raises("encoder is closed", e.finish, e)
      end
    end)

    it("a finished coder raises", function()
      local d = codec.decoder("gzip")
      assert.equal("hi", d:feed(run("gzip -c", "hi")))
      assert.equal("", d:finish())
      raises("decoder is finished", d.feed, d, "x")
      raises("decoder is finished", d.finish, d)
      d:close()
      local e = codec.encoder("br")
      e:finish()
      raises("encoder is finished", e.feed, e, "x")
    end)

    it("methods check their arguments and object type", function()
      local d = codec.decoder("gzip")
      raises("string expected", d.feed, d)
      raises("string expected", d.feed, d, {})
      raises("lurl.codec.decoder expected", d.feed, codec.encoder("gzip"), "x")
      raises("bad argument #1", d.close, {})
    end)

    it("unclosed coders are collected (ASan checks nothing leaks)", function()
      local partial = { gzip = run("gzip -c", TEXT):sub(1, 5000), deflate = raw_deflate(TEXT):sub(1, 5000),
        br = BR_FOX:sub(1, 30), zstd = zstd(TEXT):sub(1, 5000) }
      for _ = 1, 200 do
        for _, name in ipairs(codec.names) do
          assert(codec.decoder(name):feed(partial[name]))
          assert(codec.encoder(name):feed(TEXT:sub(1, 1000)))
        end
      end
      collectgarbage()
      collectgarbage()
    end)
  end)
end)
