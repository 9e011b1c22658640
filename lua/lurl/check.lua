-- Argument checks for every public function: argument errors that blame
-- the script's line, option tables with typo suggestions, seconds and
-- callables. Misuse raises (a bug in the script); operational failures are
-- lurl.errors values returned as nil, err.
--
-- The bottom of the module order: it requires nothing.
local M = {}

-- Whether a function's source is lurl's own library: embedded modules are
-- named @lurl/..., and LURL_LUA_PATH loads them from a lua/lurl/ folder.
local function in_library(source)
  return source:find("^@lurl/") ~= nil or source:find("/lua/lurl/", 1, true) ~= nil
end

-- The error level, counted from argerror, of the first function outside
-- lurl's library on the stack: the script's line that made the call, however
-- deep in the library the mistake is found (no hand-counted levels).
local function caller_level()
  local level = 3 -- argerror's caller
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 1 end
    if not in_library(info.source) then return level - 1 end
    level = level + 1
  end
end

-- Raise an argument error naming the function and argument, as Lua does,
-- at the script's line.
function M.argerror(fname, what, msg)
  error(("bad argument %s to '%s' (%s)"):format(what, fname, msg), caller_level())
end

-- Raise a misuse (a call that cannot work as made) at the script's line.
function M.raise(msg)
  error(msg, caller_level())
end

-- Levenshtein distance of two short strings, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The known key nearest to k, if it is near enough to be a typo.
local function nearest(k, known)
  local best, best_d
  for name in pairs(known) do
    local d = distance(k, name)
    if d <= math.max(1, math.floor(#name / 3)) and (not best_d or d < best_d or (d == best_d and name < best)) then
      best, best_d = name, d
    end
  end
  return best
end

-- options(fname, argn, opts, known): opts, a table of options for
-- fname's argument argn ("#2"), may hold only the keys of known, each of the
-- Lua type known gives ("any": anything). Raises an argument error naming
-- the culprit, and for an unknown option the one it may have meant.
function M.options(fname, argn, opts, known)
  if type(opts) ~= "table" then M.argerror(fname, argn, "options table expected, got " .. type(opts)) end
  for k, v in pairs(opts) do
    local want = known[k]
    if not want then
      local guess = type(k) == "string" and nearest(k, known)
      M.argerror(fname, argn, "unknown option '" .. tostring(k) .. "'"
        .. (guess and (" (did you mean '" .. guess .. "'?)") or ""))
    end
    if want ~= "any" and type(v) ~= want then
      M.argerror(fname, "'" .. tostring(k) .. "'", want .. " expected, got " .. type(v))
    end
  end
  return opts
end

-- arg(fname, what, v, want) -> v: v has the Lua type want.
function M.arg(fname, what, v, want)
  if type(v) == want then return v end
  M.argerror(fname, what, want .. " expected, got " .. type(v))
end

-- A number of seconds: >= 0 and not NaN (math.huge is allowed: no limit).
function M.is_seconds(v) return type(v) == "number" and v >= 0 and v == v end

-- seconds(fname, what, v[, or_false]) -> v: nil passes (the option is
-- unset), so does false when or_false says it means "no limit".
function M.seconds(fname, what, v, or_false)
  if v == nil or M.is_seconds(v) or (or_false and v == false) then return v end
  M.argerror(fname, what, "number of seconds >= 0" .. (or_false and " or false" or "") .. " expected, got "
    .. tostring(v))
end

-- A function, or a table whose metatable has __call.
function M.is_callable(v)
  if type(v) == "function" then return true end
  local m = getmetatable(v)
  return type(m) == "table" and m.__call ~= nil
end

-- func(fname, what, v) -> v: a function or a callable object.
function M.func(fname, what, v)
  if M.is_callable(v) then return v end
  M.argerror(fname, what, "function expected, got " .. type(v))
end

return M
