-- Typed errors after aiohttp's ClientError hierarchy.
--
-- Operational failures are returned as `nil, err`; err is a table with
-- `kind`, `message` and context fields (url, method, status, errno, cause, ...),
-- prints as "Kind: message", and answers err:is(kind) for its kind and every
-- ancestor. A kind may have two parents: every ServerTimeoutError is also a
-- TimeoutError, as in aiohttp.
local M = {}

local parents = {
  ClientError = {},
  ClientConnectionError = { "ClientError" },
  ClientConnectionResetError = { "ClientConnectionError" },
  ClientOSError = { "ClientConnectionError" },
  ClientConnectorError = { "ClientOSError" },
  ClientConnectorDNSError = { "ClientConnectorError" },
  ClientProxyConnectionError = { "ClientConnectorError" },
  ClientSSLError = { "ClientConnectorError" },
  ClientConnectorSSLError = { "ClientSSLError" },
  ClientConnectorCertificateError = { "ClientSSLError" },
  ServerConnectionError = { "ClientConnectionError" },
  ServerDisconnectedError = { "ServerConnectionError" },
  ServerFingerprintMismatch = { "ServerConnectionError" },
  ServerTimeoutError = { "ServerConnectionError", "TimeoutError" },
  ConnectionTimeoutError = { "ServerTimeoutError" },
  SocketTimeoutError = { "ServerTimeoutError" },
  ClientResponseError = { "ClientError" },
  ContentTypeError = { "ClientResponseError" },
  TooManyRedirects = { "ClientResponseError" },
  WSServerHandshakeError = { "ClientResponseError" },
  ClientPayloadError = { "ClientError" },
  InvalidURL = { "ClientError" },
  InvalidUrlClientError = { "InvalidURL" },
  NonHttpUrlClientError = { "InvalidUrlClientError" },
  InvalidUrlRedirectClientError = { "InvalidURL" },
  NonHttpUrlRedirectClientError = { "NonHttpUrlClientError", "InvalidUrlRedirectClientError" },
  CircuitOpenError = { "ClientError" },
  -- a request held back on the client side: a rate limit whose wait would
  -- pass the deadline, or adaptive throttling (lurl.policy)
  ThrottledError = { "ClientError" },
  TimeoutError = {},
  CancelledError = {},
}
M.kinds = parents

-- ancestors[kind][other] is true when kind is other or descends from it.
local ancestors = {}
local function collect(kind, into)
  into[kind] = true
  for _, p in ipairs(parents[kind]) do collect(p, into) end
  return into
end
for kind in pairs(parents) do ancestors[kind] = collect(kind, {}) end

local Error = {}
local mt = { __name = "lurl.error", __index = Error }

function mt.__tostring(e)
  local s = e.kind .. ": " .. tostring(e.message)
  if e.method and e.url then s = s .. " (" .. e.method .. " " .. tostring(e.url) .. ")"
  elseif e.url then s = s .. " (" .. tostring(e.url) .. ")" end
  return s
end

-- err:is(kind): true when err is of kind or of a kind below it.
function Error:is(kind)
  if not parents[kind] then M.raise("bad argument #1 to 'is' (unknown error kind '" .. tostring(kind) .. "')") end
  return ancestors[self.kind][kind] == true
end

-- errors.new(kind, message[, context]) -> err. context fields are copied in.
function M.new(kind, message, context)
  if not parents[kind] then M.raise("unknown error kind '" .. tostring(kind) .. "'") end
  local e = { kind = kind, message = message }
  if context then for k, v in pairs(context) do if e[k] == nil then e[k] = v end end end
  return setmetatable(e, mt)
end

-- errors.is(value, kind): like err:is, for any value (false for non-errors).
function M.is(value, kind)
  if not parents[kind] then M.raise("bad argument #2 to 'is' (unknown error kind '" .. tostring(kind) .. "')") end
  return getmetatable(value) == mt and ancestors[value.kind][kind] == true
end

-- errors.is_error(value): value is a lurl error.
function M.is_error(value) return getmetatable(value) == mt end

-- Add context (url, method, ...) to an error that lacks it; returns err.
function M.annotate(err, context)
  if getmetatable(err) == mt then
    for k, v in pairs(context) do if err[k] == nil then err[k] = v end end
  end
  return err
end

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

-- check_options(fname, argn, opts, known): opts, a table of options for
-- fname's argument argn ("#2"), may hold only the keys of known, each of the
-- Lua type known gives ("any": anything). Raises an argument error naming
-- the culprit, and for an unknown option the one it may have meant.
function M.check_options(fname, argn, opts, known)
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

return M
