-- luajit cmake/bytecode.lua MODULE SOURCE OUTPUT.h: SOURCE compiled to LuaJIT
-- bytecode (with debug info, as `luajit -bg -n MODULE` would) and written
-- as the C header that `luajit -b` makes: luaJIT_BC_<MODULE, dots as
-- underscores>[] and its _SIZE. CMakeLists.txt runs it for each module of
-- lua/lurl.
--
-- Why not `luajit -b` itself: a table constructor's template keeps every
-- key of the constructor, the ones with computed values too (nil until the
-- constructor stores them), so that the table is made at its final size.
-- LuaJIT's bytecode writer drops those nil entries (lj_bcwrite.c,
-- bcwrite_ktab), so a constructor loaded from bytecode starts from the
-- constant keys only and grows, rehashing, one computed field at a time,
-- and the JIT calls lj_tab_newkey for each: a request's exchange and
-- response records cost a fifth of the CPU of an HTTP/2 run that way. This
-- puts the keys back (see complete and Code:sure_keys), so that the
-- bytecode builds tables as the source does.
--
-- The dump format is lj_bcdump.h's:
--   dump   = header proto+ 0U
--   header = ESC 'L' 'J' versionB flagsU [namelenU nameB*]
--   proto  = lengthU pdata
--   pdata  = phead bcinsW* uvdataH* kgc* knum* [debugB*]
--   phead  = flagsB numparamsB framesizeB numuvB numkgcU numknU numbcU
--            [debuglenU [firstlineU numlineU]]
--   kgc    = kgctypeU { ktab | (loU hiU) | (rloU rhiU iloU ihiU) | strB* }
--   ktab   = narrayU nhashU karray* khash*
--   ktabk  = ktabtypeU { intU | (loU hiU) | strB* }
local jutil = require "jit.util"
local vmdef = require "jit.vmdef"

local F_BE, F_STRIP = 1, 2
local KGC_TAB, KGC_I64, KGC_COMPLEX, KGC_STR = 1, 2, 4, 5
local KTAB_FALSE, KTAB_INT, KTAB_NUM, KTAB_STR = 1, 3, 4, 5

-- opcode numbers of this LuaJIT
local OP = {}
for i = 0, #vmdef.bcnames / 6 - 1 do
  OP[vmdef.bcnames:sub(i * 6 + 1, i * 6 + 6):match("%S+")] = i
end
local function opset(names)
  local set = {}
  for _, name in ipairs(names) do set[assert(OP[name], name)] = true end
  return set
end
-- where a table under construction may be seen or the path leaves
local STOP = opset { "RET", "RET0", "RET1", "RETM", "FNEW", "UCLO" }

-- ---- reading ----

local Reader = {}
Reader.__index = Reader

local function reader(s, pos) return setmetatable({ s = s, pos = pos or 1 }, Reader) end

function Reader:byte()
  local b = self.s:byte(self.pos)
  assert(b, "truncated bytecode dump")
  self.pos = self.pos + 1
  return b
end

function Reader:uleb()
  local v, shift = 0, 0
  repeat
    local b = self:byte()
    v = v + (b % 128) * 2 ^ shift
    shift = shift + 7
  until b < 128
  return v
end

function Reader:bytes(n)
  local s = self.s:sub(self.pos, self.pos + n - 1)
  assert(#s == n, "truncated bytecode dump")
  self.pos = self.pos + n
  return s
end

local function uleb(v)
  local t = {}
  repeat
    local b = v % 128
    v = (v - b) / 128
    t[#t + 1] = string.char(v > 0 and b + 128 or b)
  until v == 0
  return table.concat(t)
end

-- A table constant's entry (ktabk), as its bytes and, for a string, the string.
local function read_ktabk(r)
  local start, tp = r.pos, r:uleb()
  local str
  if tp >= KTAB_STR then
    str = r:bytes(tp - KTAB_STR)
  elseif tp == KTAB_INT then
    r:uleb()
  elseif tp == KTAB_NUM then
    r:uleb()
    r:uleb()
  end
  return r.s:sub(start, r.pos - 1), str
end

-- A template: its array entries' bytes, its hash pairs' bytes and keys.
local function read_ktab(r)
  local narray, nhash = r:uleb(), r:uleb()
  local t = { narray = narray, nhash = nhash, array = {}, hash = {}, keys = {} }
  for i = 1, narray do t.array[i] = read_ktabk(r) end
  for i = 1, nhash do
    local kbytes, key = read_ktabk(r)
    t.hash[i] = kbytes .. read_ktabk(r)
    if key then t.keys[key] = true end
  end
  return t
end

-- One kgc entry: { tab = template } or { str = string } or { raw = bytes }.
local function read_kgc(r)
  local start, tp = r.pos, r:uleb()
  if tp == KGC_TAB then return { tab = read_ktab(r) } end
  if tp >= KGC_STR then return { str = r:bytes(tp - KGC_STR), raw = r.s:sub(start, r.pos - 1) } end
  local words = tp == KGC_COMPLEX and 4 or tp >= KGC_I64 and 2 or 0
  for _ = 1, words do r:uleb() end
  return { raw = r.s:sub(start, r.pos - 1) }
end

-- ---- the analysis ----

-- Operand modes of each opcode (lj_bc.h's BCMode: 1 dst, 2 base, 3 var,
-- 4 rbase, 13 jump), read off the prototypes of the chunk being written.
local DST, BASE, VAR, RBASE, JUMP = 1, 2, 3, 4, 13

local function opmodes(fn, modes)
  local info = jutil.funcinfo(fn)
  for pc = 1, info.bytecodes - 1 do
    local ins, m = jutil.funcbc(fn, pc)
    modes[ins % 256] = { m % 8, math.floor(m / 8) % 16, math.floor(m / 128) % 16 }
  end
  for i = 1, info.gcconsts do
    local k = jutil.funck(fn, -i)
    if type(k) == "proto" then opmodes(k, modes) end
  end
  return modes
end

local function decode(s, pc, be)
  local b0, b1, b2, b3 = s:byte(pc * 4 + 1, pc * 4 + 4)
  if be then b0, b1, b2, b3 = b3, b2, b1, b0 end
  return b0, b1, b2, b3 -- op, A, C, B; D is C + 256 * B
end

-- Whether operand v of mode mode may read or write register reg: the
-- register itself, or a range from a base at or below it.
local function touches(mode, v, reg)
  if mode == DST or mode == VAR then return v == reg end
  if mode == BASE or mode == RBASE then return v <= reg end
  return false
end

local Code = {}
Code.__index = Code

-- Whether a TSETS into reg lies strictly between pc and target.
function Code:stores_between(pc, target, reg)
  for i = pc + 1, target - 1 do
    local op, _, _, b = decode(self.bc, i, self.be)
    if op == OP.TSETS and b == reg then return true end
  end
  return false
end

-- The string keys and the array indexes (up to 255) that a table made by
-- TDUP into reg at pc surely gets
-- before anything can see it: the TSETS into reg that every path from the
-- TDUP runs, up to the first instruction that reads, writes or passes reg,
-- returns, makes a closure, loops back or jumps over such a store.
-- Those stores overwrite whatever the template holds for their keys.
function Code:sure_keys(pc, reg)
  local keys, indexes = {}, {}
  for i = pc + 1, self.n - 1 do
    local op, a, c, b = decode(self.bc, i, self.be)
    local ma, mb, mc = unpack(self.modes[op])
    local d = c + 256 * b
    if op == OP.TSETS and b == reg and a ~= reg then
      keys[#keys + 1] = self.kgc[self.numkgc - c].str -- the key is string constant C
    elseif op == OP.TSETB and b == reg and a ~= reg then
      indexes[c] = true -- the index is C itself
    elseif STOP[op] or touches(ma, a, reg) then
      break
    elseif mb ~= 0 then
      -- a store into the table at a computed key (TSETV) is not a use of it
      if (touches(mb, b, reg) and not (op == OP.TSETV and b == reg)) or touches(mc, c, reg) then break end
    elseif mc == JUMP then
      local target = i + 1 + d - 0x8000
      if target <= i or self:stores_between(i, target, reg) then break end
    elseif touches(mc, d, reg) then
      break
    end
  end
  return keys, indexes
end

-- ---- one prototype ----

-- A template given the keys and indexes its constructor surely stores, with
-- false as their value: false, not nil, because the reader would let a
-- later key take the slot of a nil one (lj_tab_newkey); the store
-- overwrites it before the table can be seen. The array part grows only
-- over indexes stored without a gap.
local function complete(t, keys, indexes)
  for _, key in ipairs(keys) do
    if not t.keys[key] then
      t.keys[key] = true
      t.nhash = t.nhash + 1
      t.hash[#t.hash + 1] = uleb(KTAB_STR + #key) .. key .. uleb(KTAB_FALSE)
    end
  end
  while indexes[t.narray] do
    t.narray = t.narray + 1
    t.array[t.narray] = uleb(KTAB_FALSE)
  end
end

local function rewrite_proto(pdata, strip, be, modes)
  local r = reader(pdata)
  r:bytes(3) -- flags, numparams, framesize
  local numuv = r:byte()
  local numkgc = r:uleb()
  r:uleb() -- numkn: the numeric constants come after the kgc, copied as they are
  local numbc = r:uleb()
  local head_end = r.pos
  if not strip then
    local debuglen = r:uleb()
    if debuglen > 0 then
      r:uleb()
      r:uleb()
    end
    head_end = r.pos
  end
  local bc = r:bytes(numbc * 4)
  local uv = r:bytes(numuv * 2)
  local kgc = {}
  for i = 1, numkgc do kgc[i] = read_kgc(r) end
  local rest = pdata:sub(r.pos) -- knum and debug info, unchanged

  -- kgc entry D of an instruction is the (numkgc - D)th written
  local code = setmetatable({ bc = bc, be = be, n = numbc, kgc = kgc, numkgc = numkgc, modes = modes }, Code)
  for pc = 0, numbc - 1 do
    local op, a, c, b = decode(bc, pc, be)
    if op == OP.TDUP then
      local keys, indexes = code:sure_keys(pc, a)
      complete(kgc[numkgc - (c + 256 * b)].tab, keys, indexes)
    end
  end

  local out = { pdata:sub(1, head_end - 1), bc, uv }
  for _, k in ipairs(kgc) do
    if k.tab then
      local t = k.tab
      out[#out + 1] = uleb(KGC_TAB) .. uleb(t.narray) .. uleb(t.nhash) .. table.concat(t.array) .. table.concat(t.hash)
    else
      out[#out + 1] = k.raw
    end
  end
  out[#out + 1] = rest
  return table.concat(out)
end

-- ---- the dump ----

local function rewrite(dump, modes)
  local r = reader(dump)
  assert(r:bytes(3) == "\27LJ", "not a LuaJIT bytecode dump")
  r:byte()
  local flags = r:uleb()
  local strip, be = flags % 4 >= F_STRIP, flags % 2 == F_BE
  if not strip then r:bytes(r:uleb()) end
  local out = { dump:sub(1, r.pos - 1) }
  while true do
    local len = r:uleb()
    if len == 0 then break end
    local pdata = rewrite_proto(r:bytes(len), strip, be, modes)
    out[#out + 1] = uleb(#pdata) .. pdata
  end
  assert(r.pos == #dump + 1, "trailing bytes after the bytecode dump")
  out[#out + 1] = "\0"
  return table.concat(out)
end

local M = {}

-- dump(fn) -> the bytecode of the Lua function fn (loaded from source),
-- with debug info, its templates completed.
function M.dump(fn)
  local dump = rewrite(string.dump(fn), opmodes(fn, {}))
  assert(loadstring(dump), "the rewritten dump does not load")
  return dump
end

-- header(mod, dump) -> the C header that `luajit -b -n mod` writes.
function M.header(mod, dump)
  local sym = "luaJIT_BC_" .. mod:gsub("%.", "_")
  local lines = { ("#define %s_SIZE %d\nstatic const unsigned char %s[] = {\n"):format(sym, #dump, sym) }
  for i = 1, #dump, 24 do
    local last = math.min(i + 23, #dump)
    lines[#lines + 1] = table.concat({ dump:byte(i, last) }, ",") .. (last < #dump and ",\n" or "\n")
  end
  lines[#lines + 1] = "};\n"
  return table.concat(lines)
end

-- Run as a script it writes the header; loaded (spec/unit/bytecode_spec.lua)
-- it is M.
local mod, source, output = ...
if not mod then return M end
assert(source and output, "usage: luajit cmake/bytecode.lua MODULE SOURCE OUTPUT.h")
local f = assert(io.open(output, "wb"))
f:write(M.header(mod, M.dump(assert(loadfile(source)))))
assert(f:close())
