-- lurl.fallback: when an answer is a failure, try alternatives in order
-- (Polly's fallback strategy; Envoy's priority levels, which fail over to
-- the next priority when one is unhealthy).
--
--   lurl.fallback{ alt1, alt2, ..., on = rules, cooldown = true, on_event }
--
-- As a middleware the primary is the next handler; under policy:run(fn) it
-- is fn. When the outcome matches `on` (statuses, error kinds or a
-- predicate(res, err, attempt); default: every 5xx, 429, connection and
-- timeout errors, CircuitOpenError and ThrottledError), the next
-- alternative is tried:
--   "https://b.example:8443"  another base of the same service: the request
--        (method, headers, body, options) goes again with its
--        scheme://host:port replaced by this one's; the primary's userinfo
--        is not carried over. A path in the alternative is a prefix: with
--        "http://b/mirror", GET http://a/items?x=1 becomes
--        GET http://b/mirror/items?x=1. A string is always such a URL,
--        checked when the policy is made; under run(fn) it is the result.
--   { status, reason, headers, body }  (those fields only) a canned answer,
--        made into a fresh lurl.response for the request each time (under
--        run(fn): the table itself).
--   function(ctx, res, err) -> res, err  called with the outcome passed
--        over; it may send anything or nothing.
--   any other value (another table, a number...): under run(fn) the result
--        itself; a middleware raises an error if it is reached.
-- Each alternative taken emits fallback_taken { index, alternative, reason }
-- (reason: why the one before was passed over, "status 503", the error's
-- kind, or "cooldown"); a response passed over is released. No alternative
-- starts once the deadline (ctx.remaining) is reached: the last outcome is
-- returned.
--
-- cooldown: an endpoint (the primary's origin, a URL alternative's) that
-- answered 429 or 503 with Retry-After (RFC 9110 10.2.3, RFC 6585 4) is
-- skipped, reason "cooldown", until that time has passed; when every one
-- is cooling the answer is a ThrottledError. The state lives in the policy,
-- so sessions that share the policy share it.
local base = require "lurl.policy.base"
local errors = require "lurl.errors"
local check = require "lurl.check"
local middleware = require "lurl.middleware"
local response = require "lurl.response"
local sched = require "lurl.sched"
local url = require "lurl.url"

local M = {}

local Fallback = {}

local KNOWN = { on = "any", cooldown = "boolean", on_event = "function" }
local CANNED = { status = true, reason = true, headers = true, body = true }

-- The default `on`: base's transient failures, every server error, and the
-- client-side refusals of the other policies.
local function default_on()
  local list = {}
  for _, s in ipairs(base.STATUSES) do list[#list + 1] = s end
  for s = 500, 599 do list[#list + 1] = s end
  for _, k in ipairs(base.ERROR_KINDS) do list[#list + 1] = k end
  list[#list + 1] = "CircuitOpenError"
  list[#list + 1] = "ThrottledError"
  return list
end

-- ---- alternatives ----

local function origin_of(u)
  return ("%s://%s:%d"):format(u.scheme, u.host, u.port or url.default_ports[u.scheme])
end

-- A description for events and tostring.
local function describe_alt(alt)
  if alt.kind == "url" then return alt.value end
  if alt.kind == "canned" then return ("canned %d"):format(alt.value.status or 200) end
  if alt.kind == "function" then return middleware.describe(alt.value) end
  return "value " .. (type(alt.value) == "table" and "table" or tostring(alt.value))
end

local function parse_url_alt(i, s)
  local u = url.parse(s)
  local ok = u and url.check_http(u, s)
  if not ok or (u.query and u.query ~= "") or u.fragment then
    check.argerror("fallback", "#1", ("alternative %d (%q) is not an http(s) base URL without query"):format(i, s))
  end
  return { kind = "url", value = s, url = u, origin = origin_of(u), prefix = ((u.path or ""):gsub("/+$", "")) }
end

-- A table whose fields are all those of a response is a canned answer,
-- checked now; any other table is a value for run(fn).
local function parse_table(i, t)
  for k in pairs(t) do
    if not CANNED[k] then return { kind = "value", value = t } end
  end
  local ok, why = pcall(response.static, t)
  if not ok then
    why = tostring(why):gsub("^[^:]*:%d+: ", "")
    check.argerror("fallback", "#1", ("alternative %d is not a valid canned answer: %s"):format(i, why))
  end
  return { kind = "canned", value = t }
end

local function parse_alt(i, v)
  local t = type(v)
  local alt
  if t == "string" then
    alt = parse_url_alt(i, v)
  elseif t == "table" and getmetatable(v) == nil then
    alt = parse_table(i, v)
  else
    alt = { kind = t == "function" and "function" or "value", value = v }
  end
  return alt
end

-- The request's URL on the alternative's base.
local function rebase(alt, raw)
  local u = url.parse(raw)
  local b = alt.url
  local r = { scheme = b.scheme, host = b.host, port = b.port, ipv6 = b.ipv6, user = b.user, password = b.password,
    path = alt.prefix .. ((u and u.path ~= "") and u.path or "/"), query = u and u.query }
  return url.tostring(r)
end

-- ---- cooldown ----

local function cooling(self, origin)
  local until_at = origin and self.cooling[origin]
  if not until_at then return false end
  if sched.now() < until_at then return true end
  self.cooling[origin] = nil
  return false
end

local function learn(self, origin, res)
  if not self.cooldown or not origin or not base.is_response(res) then return end
  if res.status ~= 429 and res.status ~= 503 then return end
  local secs = base.retry_after(res)
  if not secs or secs <= 0 then return end
  local now = sched.now()
  -- forget the endpoints that cooled down, so the table stays small
  for k, at in pairs(self.cooling) do
    if at <= now then self.cooling[k] = nil end
  end
  self.cooling[origin] = now + secs
end

-- ---- trying ----

local function reason_of(res, err)
  if base.is_response(res) then return "status " .. res.status end
  if errors.is_error(err) then return err.kind end
  if err ~= nil then return tostring(err) end
  return "result " .. tostring(res)
end

-- The endpoint whose cooldown applies to candidate i (0: the primary).
local function endpoint(self, ctx, i)
  if i == 0 then return ctx:origin() end
  return self.alts[i].origin
end

-- One alternative, given the outcome passed over.
local function try_alt(ctx, alt, res, err)
  local in_run = base.is_context(ctx)
  local kind = alt.kind
  if kind == "function" then return alt.value(ctx, res, err) end
  if in_run then return alt.value end
  if kind == "canned" then
    local t = alt.value
    return response.static { status = t.status, reason = t.reason, headers = t.headers, body = t.body,
      url = ctx.url, method = ctx.method }
  end
  error(("lurl.fallback: alternative %s cannot answer an HTTP request"):format(describe_alt(alt)), 0)
end

local function run_candidate(self, ctx, op, i, res, err)
  if i == 0 then return op(ctx) end
  local alt = self.alts[i]
  if alt.kind == "url" and not base.is_context(ctx) then
    local c = ctx:copy()
    c.url = rebase(alt, ctx.url)
    return op(c)
  end
  return try_alt(ctx, alt, res, err)
end

function Fallback:call(ctx, op)
  local res, err, ran, reason
  for i = 0, #self.alts do
    if ran and not base.matches(self.rules, res, err, ctx.attempt) then break end
    if i > 0 and ctx.remaining <= 0 then break end
    local origin = endpoint(self, ctx, i)
    if cooling(self, origin) then
      reason = "cooldown"
    else
      if i > 0 then
        base.emit(self, ctx, "fallback_taken", { index = i, alternative = describe_alt(self.alts[i]), reason = reason })
      end
      -- a response passed over gives its connection back before the next
      -- try, unless a function alternative is to see it
      local prev = res
      if i > 0 and self.alts[i].kind ~= "function" then base.release(prev) end
      res, err = run_candidate(self, ctx, op, i, res, err)
      if prev ~= nil and prev ~= res then base.release(prev) end
      ran = true
      learn(self, origin, res)
      reason = reason_of(res, err)
    end
  end
  if not ran then
    return nil, errors.new("ThrottledError", "every endpoint of the fallback is cooling down (Retry-After)",
      { method = ctx.method, url = ctx.url })
  end
  return res, err
end

-- ---- construction ----

local function describe(self)
  local parts = {}
  for i, alt in ipairs(self.alts) do
    parts[i] = alt.kind == "url" and ("%q"):format(alt.value) or describe_alt(alt)
  end
  local rest = base.fields(self, { "on", "cooldown" })
  if rest ~= "" then parts[#parts + 1] = rest end
  return table.concat(parts, ", ")
end

local mt = base.class("fallback", Fallback, describe)

-- new{ alt1, alt2, ..., on =, cooldown =, on_event = } -> a fallback policy.
function M.new(opts)
  if type(opts) ~= "table" then
    check.argerror("fallback", "#1", "table of alternatives expected, got " .. type(opts))
  end
  local n, named = #opts, {}
  for k, v in pairs(opts) do
    if type(k) ~= "number" then
      named[k] = v
    elseif k % 1 ~= 0 or k < 1 or k > n then
      check.argerror("fallback", "#1", "alternatives must form a list without holes")
    end
  end
  if n == 0 then check.argerror("fallback", "#1", "at least one alternative expected") end
  base.check("fallback", named, KNOWN, 2)
  local alts = {}
  for i = 1, n do
    if opts[i] == nil then check.argerror("fallback", "#1", "alternatives must form a list without holes") end
    alts[i] = parse_alt(i, opts[i], 2)
  end
  return setmetatable({
    kind = "fallback", alts = alts,
    on = opts.on, rules = base.rules(opts.on == nil and default_on() or opts.on, "fallback", "'on'"),
    cooldown = opts.cooldown ~= false, cooling = {}, on_event = opts.on_event,
  }, mt)
end

return M
