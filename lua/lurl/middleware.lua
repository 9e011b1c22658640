-- Client middlewares (aiohttp 3.12): functions, or callable objects such as
-- the policies of lurl.policy, that wrap every request of a session:
--
--   function(req, handler)
--     local resp, err = handler(req)  -- may be called again (a retry) or not
--     return resp, err                -- at all (an answer from a cache)
--   end
--
-- The first middleware of the list is the outermost. req is a lurl.request:
-- a mutable description of the request (method, url, headers, options,
-- timeout, attempt) that the next handler reads when it is called.
local check = require "lurl.check"
local h1 = require "lurl.h1"
local headers_mod = require "lurl.headers"
local response = require "lurl.response"
local sched = require "lurl.sched"
local trace = require "lurl.trace"
local url = require "lurl.url"

local M = {}

-- ---- the list ----


-- How a middleware prints: its own __tostring, or where a function is defined.
local function describe(mw)
  if type(mw) == "function" then
    local info = debug.getinfo(mw, "S")
    return ("function <%s:%d>"):format(info.short_src, info.linedefined)
  end
  return tostring(mw)
end
M.describe = describe

local List = {}
local list_mt = { __name = "lurl.middlewares", __index = List }
function list_mt.__tostring(l)
  local parts = {}
  for i = 1, #l do parts[i] = describe(l[i]) end
  if #parts == 0 then return "lurl.middlewares {}" end
  return "lurl.middlewares { " .. table.concat(parts, ", ") .. " }"
end

-- list(v, fname) -> a lurl.middlewares list (maybe empty); raises an
-- argument error naming the culprit.
function M.list(v, fname)
  if v == nil then return setmetatable({}, list_mt) end
  if getmetatable(v) == list_mt then return v end
  if type(v) ~= "table" then
    check.argerror(fname, "'middlewares'", "list of functions expected, got " .. type(v))
  end
  local l = setmetatable({}, list_mt)
  for i = 1, #v do
    if not check.is_callable(v[i]) then
      check.argerror(fname, "'middlewares'", ("item %d is a %s, not a function or callable"):format(i, type(v[i])))
    end
    l[i] = v[i]
  end
  return l
end

-- ---- the request description ----

local Request = {}
M.Request = Request
local req_mt = { __name = "lurl.request" }

-- Seconds left before ctx.deadline_at (math.huge without one): what
-- req.remaining and a policy context's remaining give when read.
function M.remaining(ctx)
  local at = rawget(ctx, "deadline_at")
  if not at then return math.huge end
  return math.max(0, at - sched.now())
end

function req_mt.__index(r, k)
  if k == "remaining" then return M.remaining(r) end
  return Request[k]
end

function req_mt.__tostring(r)
  return ("lurl.request (%s %s, attempt %d)"):format(r.method, r.url, r.attempt)
end

-- new{ method, url, headers, options, session, trace, deadline_at, timeout,
--      fname (the function the script called, which argument errors name) }
function M.request(fields)
  fields.attempt = fields.attempt or 1
  return setmetatable(fields, req_mt)
end

function M.is_request(v) return getmetatable(v) == req_mt end

-- A copy whose headers and options can change without touching this one
-- (for concurrent attempts).
function Request:copy()
  local c = {}
  for k, v in pairs(self) do c[k] = v end
  c.headers = self.headers:copy()
  local o = {}
  for k, v in pairs(self.options) do o[k] = v end
  c.options = o
  return setmetatable(c, req_mt)
end

function Request:header(name)
  local v = self.headers:get(name)
  if v == nil and self.session then v = self.session.headers:get(name) end
  return v
end

-- Whether sending the request twice does no more than sending it once: an
-- idempotent method, or one that carries an Idempotency-Key (the IETF
-- httpapi draft's header, which servers use to deduplicate).
function Request:idempotent()
  return h1.IDEMPOTENT[self.method] == true or self:header("Idempotency-Key") ~= nil
end

-- Whether the body can be sent again: anything but a generator function,
-- which is consumed as it goes out (strings, forms, FormData and files are
-- read afresh for each attempt).
function Request:replayable()
  return type(self.options.data) ~= "function"
end

-- "scheme://host:port", the key of per-host policies. Parsing a URL costs
-- microseconds and a script hits few URLs: the answers are kept, in a
-- table that starts over when full.
local ORIGINS_MAX = 1024
local origins, n_origins = {}, 0

function Request:origin()
  local s = self.url
  local o = origins[s]
  if o then return o end
  local u = url.parse(s)
  o = u and ("%s://%s:%d"):format(u.scheme, u.host, u.port or url.default_ports[u.scheme] or 0) or s
  if n_origins >= ORIGINS_MAX then origins, n_origins = {}, 0 end
  origins[s], n_origins = o, n_origins + 1
  return o
end

-- Send an event to the session's trace configs: signal is one of
-- lurl.trace.SIGNALS (others raise), params its table.
function Request:emit(signal, params)
  if not trace.is_signal(signal) then
    check.argerror("emit", "#1", "unknown signal '" .. tostring(signal) .. "'")
  end
  local tr = self.trace
  if tr then tr:emit(signal, params) end
end

-- ---- running the chain ----

local function check_result(i, mw, resp, err)
  if resp == nil and err == nil then
    error(("middleware %d (%s) returned neither a response nor an error"):format(i, describe(mw)), 0)
  end
  if resp ~= nil and not response.is(resp) then
    error(("middleware %d (%s) returned a %s, not a lurl.response"):format(i, describe(mw), type(resp)), 0)
  end
  return resp, err
end

-- chain(list, final) -> handler(req) that runs list[1] .. list[n] around final.
function M.chain(list, final)
  local handler = final
  for i = #list, 1, -1 do
    local mw, nxt = list[i], handler
    handler = function(req) return check_result(i, mw, mw(req, nxt)) end
  end
  return handler
end

-- An options table without the fields the request description carries
-- itself (params are in its URL).
local OWN = { headers = true, middlewares = true, timeout = true, params = true }

function M.split_options(opts)
  local o = {}
  for k, v in pairs(opts) do
    if not OWN[k] then o[k] = v end
  end
  return o, headers_mod.new(opts.headers)
end

return M
