-- IP address literals as text (RFC 3986 section 3.2.2 dec-octet dotted
-- decimal, RFC 4291 section 2.2 IPv6 text) to numbers: one reader for the
-- URL parser, the NO_PROXY matcher and the SOCKS client.
local M = {}

-- v4_octets(s) -> the four octets of dotted decimal (no leading zeros, as
-- inet_pton reads it), or nil.
function M.v4_octets(s)
  local parts = { s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #parts ~= 4 then return nil end
  for i, p in ipairs(parts) do
    if (#p > 1 and p:sub(1, 1) == "0") or #p > 3 or tonumber(p) > 255 then return nil end
    parts[i] = tonumber(p)
  end
  return parts
end

-- The 16-bit groups of one side of "::"; the last piece may be dotted
-- decimal (two groups) when v4 allows it there. nil when malformed.
local function groups_of(side, v4)
  local out = {}
  if side == "" then return out end
  local pieces = {}
  for p in (side .. ":"):gmatch("([^:]*):") do pieces[#pieces + 1] = p end
  for k, p in ipairs(pieces) do
    local o = v4 and k == #pieces and p:find(".", 1, true) and M.v4_octets(p)
    if o then
      out[#out + 1] = o[1] * 256 + o[2]
      out[#out + 1] = o[3] * 256 + o[4]
    elseif p:match("^%x%x?%x?%x?$") then
      out[#out + 1] = tonumber(p, 16)
    else
      return nil
    end
  end
  return out
end

-- v6_groups(s) -> the eight 16-bit groups of an IPv6 address (no brackets,
-- no zone), or nil. "::" stands for one or more zero groups.
function M.v6_groups(s)
  local head, tail = s, nil
  local dbl = s:find("::", 1, true)
  if dbl then head, tail = s:sub(1, dbl - 1), s:sub(dbl + 2) end
  local g, t = groups_of(head, tail == nil), {}
  if tail then t = groups_of(tail, true) end
  if not g or not t then return nil end
  if tail then
    if #g + #t > 7 then return nil end
    for _ = 1, 8 - #g - #t do g[#g + 1] = 0 end
    for _, v in ipairs(t) do g[#g + 1] = v end
  end
  if #g ~= 8 then return nil end
  return g
end

-- bytes(s) -> the 4 or 16 bytes (numbers) of an IPv4 or IPv6 address, or nil.
function M.bytes(s)
  local v4 = M.v4_octets(s)
  if v4 then return v4 end
  local g = s:find(":", 1, true) and M.v6_groups(s)
  if not g then return nil end
  local out = {}
  for i, v in ipairs(g) do out[2 * i - 1], out[2 * i] = math.floor(v / 256), v % 256 end
  return out
end

-- packed(s) -> the address as a binary string of 4 or 16 bytes (network
-- order, as SOCKS sends it), or nil.
function M.packed(s)
  local b = M.bytes(s)
  return b and string.char(unpack(b)) or nil
end

return M
