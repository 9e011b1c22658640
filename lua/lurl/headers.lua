-- Case-insensitive header multimap (aiohttp's CIMultiDict, Lua-idiomatic):
--   h["content-type"]        first value, any case
--   h:get_all("set-cookie")  every value, in order
--   for name, value in h:items() do ... end   wire order, original case
local new_tab = require "table.new"
local check = require "lurl.check"

local M = {}

local Headers = {}
local mt = { __name = "lurl.headers" }
M.methods = Headers

local NAMES, VALUES, LOWER, CHANGES = {}, {}, {}, {} -- private keys

mt.__index = function(h, key)
  local m = Headers[key]
  if m ~= nil then return m end
  if type(key) == "string" then return Headers.get(h, key) end
  return nil
end

mt.__newindex = function(h, key, value)
  if type(key) ~= "string" then check.raise("header names must be strings") end
  if value == nil then Headers.remove(h, key) else Headers.set(h, key, value) end
end

function mt.__tostring(h)
  local out = {}
  for name, value in Headers.items(h) do out[#out + 1] = name .. ": " .. value end
  return "lurl.headers {" .. table.concat(out, ", ") .. "}"
end

local function new()
  return setmetatable({ [NAMES] = {}, [VALUES] = {}, [LOWER] = {}, [CHANGES] = 0 }, mt)
end

-- Lower-case names, made on first lookup: a response's headers are often
-- never looked up at all.
local function lowers(h)
  local l = h[LOWER]
  if l then return l end
  local names = h[NAMES]
  l = new_tab(#names, 0)
  for i = 1, #names do l[i] = names[i]:lower() end
  h[LOWER] = l
  return l
end

local function check_value(name, value)
  local t = type(value)
  if t == "number" then return tostring(value) end
  if t ~= "string" then check.raise(("header '%s' must be a string or number, got %s"):format(name, t)) end
  if value:find("[\r\n%z]") then check.raise(("header '%s' contains CR, LF or NUL"):format(name)) end
  return value
end

-- RFC 9110 5.1: a field name is a token.
local function check_name(name)
  if type(name) ~= "string" or not name:match("^[%w!#$%%&'*+.^_`|~-]+$") then
    check.raise(("invalid header name %q: must be a non-empty token"):format(tostring(name)))
  end
end

function Headers:add(name, value)
  check_name(name)
  value = check_value(name, value)
  local names = self[NAMES]
  local n = #names + 1
  lowers(self)[n] = name:lower()
  names[n], self[VALUES][n] = name, value
  self[CHANGES] = self[CHANGES] + 1
  return self
end

function Headers:get(name, default)
  local lname, lower = name:lower(), lowers(self)
  for i = 1, #lower do
    if lower[i] == lname then return self[VALUES][i] end
  end
  return default
end

function Headers:get_all(name)
  local lname, lower, out = name:lower(), lowers(self), {}
  for i = 1, #lower do
    if lower[i] == lname then out[#out + 1] = self[VALUES][i] end
  end
  return out
end

function Headers:has(name) return Headers.get(self, name) ~= nil end

function Headers:remove(name)
  local lname = name:lower()
  local names, values, lower = self[NAMES], self[VALUES], lowers(self)
  for i = #lower, 1, -1 do
    if lower[i] == lname then
      table.remove(names, i); table.remove(values, i); table.remove(lower, i)
    end
  end
  self[CHANGES] = self[CHANGES] + 1
  return self
end

-- How many changes the headers saw: lets a cache built from them notice
-- that they changed.
function Headers:changes() return self[CHANGES] end
function M.changes(h) return h[CHANGES] end

-- Replace every value of name with value (a list sets several).
function Headers:set(name, value)
  Headers.remove(self, name)
  if type(value) == "table" then
    for _, v in ipairs(value) do Headers.add(self, name, v) end
  else
    Headers.add(self, name, value)
  end
  return self
end

function Headers:count() return #self[NAMES] end

function Headers:items()
  local i, names, values = 0, self[NAMES], self[VALUES]
  return function()
    i = i + 1
    if names[i] then return names[i], values[i] end
  end
end

-- fields() -> the lower-case names and the values, in wire order: the
-- lists themselves, for an encoder that only reads them (HTTP/2's, whose
-- field names are lower case, RFC 9113 section 8.2.1).
function Headers:fields() return lowers(self), self[VALUES] end

-- Flat {name1, value1, ...} list for the wire encoder.
function Headers:flat()
  local out, names, values = {}, self[NAMES], self[VALUES]
  for i = 1, #names do out[2 * i - 1], out[2 * i] = names[i], values[i] end
  return out
end

function Headers:copy()
  local c = new()
  local names, values, lower = self[NAMES], self[VALUES], lowers(self)
  local cn, cv, cl = c[NAMES], c[VALUES], c[LOWER]
  for i = 1, #names do cn[i], cv[i], cl[i] = names[i], values[i], lower[i] end
  return c
end

-- Merge: values in other replace same-named ones here.
function Headers:update(other)
  local seen, o = {}, M.new(other)
  local names, values, lower = o[NAMES], o[VALUES], lowers(o)
  for i = 1, #names do
    local l = lower[i]
    if not seen[l] then Headers.remove(self, names[i]); seen[l] = true end
    Headers.add(self, names[i], values[i])
  end
  return self
end

function M.is(v) return getmetatable(v) == mt end

-- new(src): src is nil, headers, a map {name = value or {values}}, or a list
-- of {name, value} pairs. Map keys are added in sorted order so the wire
-- order is stable.
function M.new(src)
  if getmetatable(src) == mt then return Headers.copy(src) end
  local h = new()
  if src == nil then return h end
  if type(src) ~= "table" then check.raise("headers must be a table, got " .. type(src)) end
  if #src > 0 then
    for i, pair in ipairs(src) do
      if type(pair) ~= "table" then check.raise(("headers item %d must be a {name, value} pair"):format(i)) end
      Headers.add(h, pair[1], pair[2])
    end
    return h
  end
  local keys = {}
  for k in pairs(src) do
    if type(k) ~= "string" then check.raise("header names must be strings") end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do Headers.set(h, k, src[k]) end
  return h
end

-- has_token(value, token): a comma-separated field value (RFC 9110
-- section 5.6.1) lists token, compared case-insensitively (Connection:
-- keep-alive, Upgrade; token: lower case).
function M.has_token(value, token)
  for t in (value or ""):gmatch("[^,%s]+") do
    if t:lower() == token then return true end
  end
  return false
end

-- from_lists(names, values): headers over the parser's two lists, taken
-- as they are (no copy).
function M.from_lists(names, values)
  return setmetatable({ [NAMES] = names, [VALUES] = values, [LOWER] = false, [CHANGES] = 0 }, mt)
end

-- from_block(s): headers from the parser's "Name: value\r\n..." string
-- (a name has no colon, a value no CR or LF, so the split is exact).
function M.from_block(block)
  local names, values, n = {}, {}, 0
  for name, value in block:gmatch("([^:\r\n]+): ([^\r\n]*)\r\n") do
    n = n + 1
    names[n], values[n] = name, value
  end
  return M.from_lists(names, values)
end

return M
