-- cmake/bytecode.lua, the build step that compiles lua/lurl to the bytecode
-- linked into lurl: tables made from its bytecode are the source's, and
-- their constructors run at their final size.
local jutil = require "jit.util"
local vmdef = require "jit.vmdef"
local bytecode = assert(loadfile("cmake/bytecode.lua"))()

-- The fixture's functions, from the rewritten bytecode and from source.
local SOURCE = [[
local M = {}
function M.record(a, b, c)
  return { kind = "record", a = a, b = b, c = c, n = 0, flag = false }
end
function M.event(x, y)
  return { "head", x, y }
end
function M.conditional(x, late)
  local t = { a = x }
  if late then t.b = 1 end
  return t
end
function M.read_first(x)
  local t = { a = x }
  local seen = t.b
  t.b = 2
  return t, seen
end
function M.passed(x, f)
  local t = { a = x }
  f(t)
  t.b = 1
  return t
end
function M.wide(x)
  return { k1 = x, k2 = x, k3 = x, k4 = x, k5 = x, k6 = x, k7 = x, k8 = x, k9 = x, k10 = x, k11 = x,
    k12 = x, k13 = x, k14 = x, k15 = x, k16 = x, k17 = x, k18 = x, k19 = x, k20 = x, k21 = 0 }
end
return M
]]

local function from_bytecode()
  local fn = assert(loadstring(SOURCE, "=fixture"))
  return assert(loadstring(bytecode.dump(fn), "=fixture"))()
end

local function sorted_pairs(t)
  local out = {}
  for k, v in pairs(t) do out[#out + 1] = tostring(k) .. "=" .. tostring(v) end
  table.sort(out)
  return table.concat(out, " ")
end

-- The IR instructions named op in every trace there is.
local function count_ir(op)
  local n = 0
  for tr = 1, 65535 do
    local info = jutil.traceinfo(tr)
    if not info then break end
    for ref = 1, info.nins do
      local _, ot = jutil.traceir(tr, ref)
      if vmdef.irnames:sub(math.floor(ot / 256) * 6 + 1, math.floor(ot / 256) * 6 + 6):match("%S+") == op then
        n = n + 1
      end
    end
  end
  return n
end

describe("cmake/bytecode.lua", function()
  local bc, src = from_bytecode(), assert(loadstring(SOURCE, "=fixture"))()

  it("makes tables with the source's keys and values", function()
    for _, m in ipairs { bc, src } do
      assert.equal("a=1 b=x flag=false kind=record n=0", sorted_pairs(m.record(1, "x", nil)))
      assert.equal("1=head 2=7", sorted_pairs(m.event(7, nil)))
      assert.equal("a=1", sorted_pairs(m.conditional(1, false)))
      assert.equal("a=1 b=1", sorted_pairs(m.conditional(1, true)))
      local t, seen = m.read_first(1)
      assert.is_nil(seen)
      assert.equal(2, t.b)
      local inside
      m.passed(1, function(p) inside = sorted_pairs(p) end)
      assert.equal("a=1", inside)
    end
  end)

  it("writes the header luajit -b writes", function()
    local h = bytecode.header("lurl.some_mod", "\1\2\3")
    assert.equal("#define luaJIT_BC_lurl_some_mod_SIZE 3\n"
      .. "static const unsigned char luaJIT_BC_lurl_some_mod[] = {\n1,2,3\n};\n", h)
  end)

  it("gives constructors every key up front, so that compiled code adds none", function()
    jit.flush()
    local sink = {}
    for i = 1, 2000 do sink[i % 8 + 1] = bc.wide(i) end
    assert.equal(2000, sink[1].k20)
    assert.equal(0, count_ir("NEWREF"))
  end)
end)
