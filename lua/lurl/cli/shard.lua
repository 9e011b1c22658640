-- lurl.cli.shard: which URLs this run takes. --shard I/N keeps the URLs
-- whose FNV-1a 32-bit hash of the URL's text (as written in the list,
-- without surrounding blanks) modulo N is I: every machine that reads the
-- same list computes the same split, with no coordination and whatever the
-- order. --resume FILE skips the URLs a JSON-lines file already has.
local cjson = require "cjson.safe"

local bit = require "bit"
local bxor, lshift, tobit = bit.bxor, bit.lshift, bit.tobit

local M = {}

local OFFSET, PRIME_LOW = 2166136261, 403 -- the FNV prime is 2^24 + 403
local ENOENT = 2

-- fnv1a32(s) -> the 32-bit FNV-1a hash of s, as a number in [0, 2^32).
-- h * prime is h << 24 plus h * 403: each part stays exact in a double.
function M.fnv1a32(s)
  local h = tobit(OFFSET)
  for i = 1, #s do
    h = bxor(h, s:byte(i))
    h = tobit(lshift(h, 24) + h % 4294967296 * PRIME_LOW)
  end
  return h % 4294967296
end

-- selector(shard) -> keep(url): true for the URLs of shard { index, count }.
function M.selector(shard)
  if not shard then return function() return true end end
  local index, count = shard.index, shard.count
  return function(url) return M.fnv1a32(url) % count == index end
end

-- done_set(path) -> the set of the `url` fields in a JSON-lines file, or
-- an empty set when the file does not exist yet (the first run of a
-- resumable job); nil and a message when it cannot be read. A line that is
-- not JSON (one cut short by a crash) is skipped: its URL is done again.
-- Also returns whether the file ends in the middle of a line.
function M.done_set(path)
  local f, err, errno = io.open(path, "rb")
  if not f then
    if errno == ENOENT then return {}, false end
    return nil, err
  end
  local done, partial = {}, false
  for line in f:lines() do
    local rec = cjson.decode(line)
    if type(rec) == "table" and type(rec.url) == "string" then done[rec.url] = true end
  end
  if f:seek("end") > 0 then
    f:seek("end", -1)
    partial = f:read(1) ~= "\n"
  end
  f:close()
  return done, partial
end

return M
