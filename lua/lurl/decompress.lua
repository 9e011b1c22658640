-- Response content codings (RFC 9110 section 8.4): the decoders for a
-- Content-Encoding list, undone in reverse order of application, streaming,
-- with a guard against decompression bombs. The decoders themselves are C
-- (core.codec: zlib, brotli, zstd).
local codec = require("lurl.core").codec

local M = {}

-- What Accept-Encoding advertises: exactly what can be decoded.
M.ACCEPT = table.concat(codec.names, ", ")

local SUPPORTED = {}
for _, name in ipairs(codec.names) do SUPPORTED[name] = true end
local ALIASES = { ["x-gzip"] = "gzip" } -- RFC 9110 section 8.4.1.3

-- A decompressed body may grow this many times its compressed size (once
-- past FLOOR bytes), unless the caller sets its own limits. Input is fed
-- at most SLICE bytes at a time so that the check runs before a bomb's
-- chunk is all inflated (deflate can grow 1032 times: 64 MiB at most per
-- slice). The first slice is FIRST_SLICE; it halves while a slice's
-- output passes OUT_TARGET and doubles below a quarter of it, so that a
-- highly compressed body comes out in strings under LuaJIT's 128 KiB (each
-- larger one is mapped afresh) and the decoder's buffer stays small: a 64
-- MiB text body read in 64 KiB pieces grew the peak RSS by 73 MiB when a
-- 64 KiB slice came out as one string of some 10 MiB, and by 1.9 MiB now.
M.MAX_RATIO = 1000
local FLOOR = 1024 * 1024
local SLICE, FIRST_SLICE, MIN_SLICE, OUT_TARGET = 65536, 4096, 256, 98304

local Chain = {}
local chain_mt = { __name = "lurl.decoder_chain", __index = Chain }

-- The codings of a Content-Encoding value in the order they were applied,
-- without identity; nil when one of them is unknown (the body is then left
-- as it came, as aiohttp does).
local function codings(header)
  local list = {}
  for token in header:gmatch("[^,]+") do
    local name = token:match("^%s*(.-)%s*$"):lower()
    name = ALIASES[name] or name
    if name ~= "" and name ~= "identity" then
      if not SUPPORTED[name] then return nil end
      list[#list + 1] = name
    end
  end
  return list
end

-- More stacked codings than this are refused before any decoder is made
-- (curl's limit): a head listing gzip a million times would otherwise cost
-- a million decoders.
local MAX_CODINGS = 5

-- chain(header, max_size, max_ratio) -> a decoder chain, or nil when there
-- is nothing (known) to undo, or nil and a message when there are too many
-- codings. max_size: most decompressed bytes (nil: no cap); max_ratio: most
-- output per input byte (nil: MAX_RATIO; false: none).
function M.chain(header, max_size, max_ratio)
  local _, n = header:gsub("[^,%s][^,]*", "")
  if n > MAX_CODINGS then
    return nil, ("Content-Encoding lists %d codings, more than the %d lurl undoes"):format(n, MAX_CODINGS)
  end
  local list = codings(header)
  if not list or #list == 0 then return nil end
  local decoders = {}
  for i = #list, 1, -1 do decoders[#decoders + 1] = codec.decoder(list[i]) end
  -- a caller's own max_size replaces the ratio guard unless it sets both
  if max_ratio == nil then max_ratio = not max_size and M.MAX_RATIO end
  return setmetatable({ decoders = decoders, names = table.concat(list, ", "), max_size = max_size,
    max_ratio = max_ratio, fed = 0, done = false, slice = FIRST_SLICE }, chain_mt)
end

function Chain:close()
  for _, d in ipairs(self.decoders) do d:close() end
end

-- The most output every decoder may have given once the next input is in:
-- max_size, or what the ratio allows; nil for no cap.
local function cap(self, more)
  local ratio = self.max_ratio
  local by_ratio = ratio and math.max(FLOOR, ratio * (self.fed + more))
  if self.max_size and (not by_ratio or self.max_size <= by_ratio) then return self.max_size end
  return by_ratio or nil
end

-- Each decoder's output into the next; finishing runs finish() down the
-- chain, each one's rest going through the ones after it. limit: the cap
-- every decoder stops at before allocating past it.
local function run(self, data, finishing, limit)
  for i, d in ipairs(self.decoders) do
    local out, err = d:feed(data, limit)
    if not out then return nil, err end
    if finishing then
      local rest
      rest, err = d:finish()
      if not rest then return nil, err end
      out = out .. rest
    end
    data = out
    if i < #self.decoders and #data == 0 and not finishing then return "" end
  end
  return data
end

-- The message for a decoder's failure; ELIMIT is a decoder stopping at the
-- cap, which is the limits' doing (the decoders enforce them).
local function failure(self, err, limit)
  if not err:find("^ELIMIT") then return ("cannot decode %s body: %s"):format(self.names, err) end
  if self.max_size and limit == self.max_size then
    return ("decompressed body exceeds max_decompressed_size=%d"):format(self.max_size)
  end
  return ("decompressed body grew over %d times its compressed size (a decompression bomb?)"):format(self.max_ratio)
end

local function feed_slice(self, slice)
  local limit = cap(self, #slice)
  self.fed = self.fed + #slice
  local out, err = run(self, slice, false, limit)
  if not out then return nil, failure(self, err, limit) end
  if #out > OUT_TARGET and self.slice > MIN_SLICE then
    self.slice = math.max(MIN_SLICE, self.slice / 2)
  elseif #out < OUT_TARGET / 4 and self.slice < SLICE then
    self.slice = self.slice * 2
  end
  return out
end

-- feed_part(chunk, i) -> the decoded bytes of one slice of chunk from
-- byte i (maybe ""), and where the next slice starts (past #chunk when the
-- chunk is all in); or nil and a message. A reader that takes one slice's
-- output at a time holds at most about OUT_TARGET of decoded bytes.
function Chain:feed_part(chunk, i)
  local n = self.slice
  local out, err = feed_slice(self, i == 1 and #chunk <= n and chunk or chunk:sub(i, i + n - 1))
  if not out then return nil, err end
  return out, i + n
end

-- feed(chunk) -> decoded bytes (maybe ""), or nil and a message.
function Chain:feed(chunk)
  local outs, i = {}, 1
  repeat
    local out, nxt = self:feed_part(chunk, i)
    if not out then return nil, nxt end
    outs[#outs + 1] = out
    i = nxt
  until i > #chunk
  return #outs == 1 and outs[1] or table.concat(outs)
end

-- finish() -> the last bytes, or nil and a message (a truncated stream). An
-- empty body is taken as empty, whatever its coding says.
function Chain:finish()
  if self.done then return "" end
  self.done = true
  if self.fed == 0 then self:close(); return "" end
  local limit = cap(self, 0)
  local out, err = run(self, "", true, limit)
  self:close()
  if not out then return nil, failure(self, err, limit) end
  return out
end

return M
