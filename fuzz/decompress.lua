-- Driver of fuzz_decompress: a response body through lurl.decompress's
-- decoder chain (the C decoders of lurl.core.codec: gzip, deflate, br,
-- zstd, stacked as Content-Encoding lists them) with an output limit, fed
-- in pieces and as one read. Or, in round-trip mode, data through the
-- encoders and back.
local codec = require("lurl.core").codec
local decompress = require "lurl.decompress"

local function check(ok, fmt, ...)
  if not ok then error(fmt:format(...), 2) end
end

local CHAINS = {
  "gzip", "deflate", "br", "zstd", "x-gzip", "GZIP", "identity, gzip",
  "gzip, br", "deflate, zstd", "br, gzip", "zstd, deflate", "gzip, gzip",
}
-- Decoded bytes allowed (the chain always has a limit here: a bomb of a few
-- KiB would otherwise make gigabytes) and output per input byte.
local MAX_SIZES = { 4096, 65536, 1048576 }
local MAX_RATIOS = { false, 3, 100 }

local function decode(header, pieces, max_size, max_ratio)
  local chain = decompress.chain(header, max_size, max_ratio)
  check(chain ~= nil, "no decoder chain for %q", header)
  local outs, total = {}, 0
  for _, piece in ipairs(pieces) do
    local out, err = chain:feed(piece)
    if not out then
      chain:close()
      check(type(err) == "string", "feed failed without a message")
      return nil, err
    end
    total = total + #out
    check(total <= max_size, "%d bytes decoded past max_size %d", total, max_size)
    outs[#outs + 1] = out
  end
  local out, err = chain:finish()
  if not out then
    check(type(err) == "string", "finish failed without a message")
    return nil, err
  end
  outs[#outs + 1] = out
  check(total + #out <= max_size, "%d bytes decoded past max_size %d", total + #out, max_size)
  return table.concat(outs)
end

-- The ratio guard looks at the input fed so far, so where reads end may
-- decide whether it trips; nothing else may depend on them.
local function same_result(whole, werr, split, serr)
  if whole and split then
    check(whole == split, "one read decodes to %d bytes, pieces to %d (or different ones)", #whole, #split)
  elseif whole or split then
    local err = werr or serr
    check(err:find("decompression bomb", 1, true) ~= nil,
      "one read %s, pieces %s: %s", whole and "decodes" or "fails", split and "decode" or "fail", err)
  end
end

local function codings(header)
  local list = {}
  for token in header:gmatch("[^,]+") do
    local name = token:match("^%s*(.-)%s*$"):lower()
    if name ~= "identity" then list[#list + 1] = name end
  end
  return list
end

-- Levels kept low for br and zstd: higher ones clear megabytes of match
-- tables per encoder, which under ASan costs more than the decoding does,
-- and the decoders are the target.
local function level(name, n)
  if name == "br" then return n % 5 end
  if name == "zstd" then return 1 + n % 3 end
  return n % 10
end

local function encode(name, pieces, lvl)
  local enc = codec.encoder(name, level(name, lvl))
  local outs = {}
  for _, piece in ipairs(pieces) do
    local out, err = enc:feed(piece)
    check(out ~= nil, "%s encoder failed: %s", name, tostring(err))
    outs[#outs + 1] = out
  end
  local rest, err = enc:finish()
  check(rest ~= nil, "%s encoder failed: %s", name, tostring(err))
  outs[#outs + 1] = rest
  return table.concat(outs)
end

-- Encoded with the chain's codings in order, decoded back with max_size
-- exactly what the largest stage gives (reaching the limit is not passing
-- it; the limit holds for every decoder of a chain, so an inner stage
-- bigger than the body counts).
local function round_trip(header, data, seed, lvl)
  local encoded, largest = data, #data
  for _, name in ipairs(codings(header)) do
    largest = math.max(largest, #encoded)
    encoded = encode(name, fuzz_split(encoded, seed), lvl)
  end
  local back, err = decode(header, fuzz_split(encoded, seed), largest, false)
  check(back ~= nil, "%q round trip of %d bytes failed: %s", header, #data, tostring(err))
  check(back == data, "%q round trip of %d bytes gives %d different bytes", header, #data, #back)
end

-- chain, limits: indices into CHAINS and the limits; mode: 1 round trip,
-- the rest an encoder level.
return function(data, chain, limits, seed, mode)
  local header = CHAINS[chain % #CHAINS + 1]
  if mode % 2 == 1 then return round_trip(header, data, seed, math.floor(mode / 2)) end
  local max_size = MAX_SIZES[limits % #MAX_SIZES + 1]
  local max_ratio = MAX_RATIOS[math.floor(limits / #MAX_SIZES) % #MAX_RATIOS + 1]
  local whole, werr = decode(header, { data }, max_size, max_ratio)
  if seed ~= 0 then same_result(whole, werr, decode(header, fuzz_split(data, seed), max_size, max_ratio)) end
end
