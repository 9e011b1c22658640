-- lurl.dial.interleave: the order of a Happy Eyeballs race (RFC 8305
-- section 4), without sockets.
local dial = require "lurl.dial"

local function ips(list)
  local out = {}
  for i, a in ipairs(list) do out[i] = a.ip end
  return table.concat(out, " ")
end

local function addrs(spec)
  local out = {}
  for ip, family in spec:gmatch("(%S+)/(%d)") do out[#out + 1] = { ip = ip, family = tonumber(family) } end
  return out
end

describe("lurl.dial.interleave", function()
  it("alternates the families, starting with the first answer's", function()
    assert.are.equal("a1 b1 a2 b2 a3", ips(dial.interleave(addrs "a1/6 a2/6 a3/6 b1/4 b2/4")))
    assert.are.equal("b1 a1 b2 a2 a3", ips(dial.interleave(addrs "b1/4 a1/6 a2/6 a3/6 b2/4")))
  end)

  it("keeps the order within a family", function()
    assert.are.equal("x y z", ips(dial.interleave(addrs "x/4 y/4 z/4")))
  end)

  it("returns a list of fewer than two, or of one family, as it is", function()
    local one = addrs "x/4"
    assert.are.equal(one, dial.interleave(one))
    local same = addrs "x/6 y/6"
    assert.are.equal(same, dial.interleave(same))
    local none = {}
    assert.are.equal(none, dial.interleave(none))
  end)
end)
