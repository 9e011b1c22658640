-- What the resilience policies (lurl.policy.*) share: the object shape
-- (a middleware that is also a wrapper, policy:run(fn)), events, the
-- context of a run, outcome classification, Retry-After, random numbers.
--
-- A policy is used two ways:
--   lurl.session{ middlewares = { policy } }   policy(req, handler)
--   policy:run(fn[, opts])                      fn(ctx) -> value, err
-- Both go through policy:call(ctx, op): ctx is the lurl.request (middleware)
-- or a lurl.policy_context (run); op(ctx) makes one try.
local errors = require "lurl.errors"
local check = require "lurl.check"
local httpdate = require "lurl.httpdate"
local middleware = require "lurl.middleware"
local sched = require "lurl.sched"

local M = {}

-- ---- the object ----

-- class(kind, methods, describe) -> metatable for policies of that kind:
-- methods must hold call(self, ctx, op); describe(self) -> the text
-- between the braces of tostring ("attempts = 3, ...").
function M.class(kind, methods, describe)
  local mt = { __name = "lurl." .. kind, __index = methods }
  mt.__call = function(self, req, handler)
    if not middleware.is_request(req) or type(handler) ~= "function" then
      check.raise(("lurl.%s used as a middleware must be called as (req, handler)"):format(kind))
    end
    return self:call(req, handler)
  end
  mt.__tostring = function(self) return ("lurl.%s { %s }"):format(kind, describe(self)) end
  methods.run = M.run
  return mt
end

-- "name = value, ..." of the given fields, in order, skipping nil ones.
function M.fields(self, names)
  local parts = {}
  for _, name in ipairs(names) do
    local v = self[name]
    if v ~= nil then
      if type(v) == "table" and getmetatable(v) == nil then
        local items = {}
        for i = 1, #v do items[i] = tostring(v[i]) end
        v = "{ " .. table.concat(items, ", ") .. " }"
      elseif type(v) == "string" then
        v = ("%q"):format(v)
      end
      parts[#parts + 1] = name .. " = " .. tostring(v)
    end
  end
  return table.concat(parts, ", ")
end

-- ---- the context of policy:run ----

local Context = {}
local ctx_mt = { __name = "lurl.policy_context" }
function ctx_mt.__index(c, k)
  if k == "remaining" then return middleware.remaining(c) end
  return Context[k]
end
function ctx_mt.__tostring(c) return ("lurl.policy_context (%s, attempt %d)"):format(c.key, c.attempt) end

function Context:copy()
  local c = {}
  for k, v in pairs(self) do c[k] = v end
  return setmetatable(c, ctx_mt)
end
function Context:origin() return self.key end
function Context:idempotent() return true end
function Context:replayable() return true end
function Context:header() return nil end
function Context:emit() end

-- policy:run(fn[, opts]): fn(ctx) under the policy; returns what the policy
-- returns (fn's results, or nil and an error). opts: key (what per-host
-- state is kept under, default "default"), deadline (seconds for the whole
-- run).
function M.run(self, fn, opts)
  check.func("run", "#1", fn)
  opts = opts or {}
  if type(opts) ~= "table" then check.argerror("run", "#2", "options table expected, got " .. type(opts)) end
  local d = check.seconds("run", "'deadline'", opts.deadline)
  local ctx = setmetatable({ key = opts.key or "default", attempt = 1,
    deadline_at = d and sched.now() + d or false }, ctx_mt)
  return self:call(ctx, fn)
end

function M.is_context(v) return getmetatable(v) == ctx_mt end

-- ---- state per key ----

-- keyed(make) -> a table whose entry for a key is made by make(key) when
-- first read: the per-host state of a policy.
function M.keyed(make)
  return setmetatable({}, { __name = "lurl.policy.keyed", __index = function(t, key)
    local v = make(key)
    rawset(t, key, v)
    return v
  end })
end

-- The key of ctx's state: its origin, or one shared key without per_host.
function M.key(self, ctx) return self.per_host and ctx:origin() or "*" end

-- The key a script names in breaker:state(key) and the like: any key is
-- the shared one without per_host; run mode's "default" when none is given.
function M.script_key(self, key, method)
  if key ~= nil and type(key) ~= "string" then
    check.argerror(method, "#1", "key (string) expected, got " .. type(key))
  end
  if not self.per_host then return "*" end
  return key or "default"
end

-- ---- deadlines ----

-- Narrow ctx's deadline to seconds from now (a policy's own deadline);
-- returns the previous one, to be put back when the policy is done.
function M.narrow(ctx, seconds)
  local before = ctx.deadline_at
  if seconds then
    local at = sched.now() + seconds
    if not before or at < before then ctx.deadline_at = at end
  end
  return before
end

-- ---- events ----

local function report(kind, name, err)
  io.stderr:write(("lurl: on_event of lurl.%s failed on %s: %s\n"):format(kind, name, tostring(err)))
end

-- emit(policy, ctx, name, params): params (a table, completed with type,
-- policy and the request's method and url) go to the session's trace
-- configs (signal `name`) and to the policy's on_event. A failing on_event
-- is reported on stderr; the request goes on.
function M.emit(self, ctx, name, params)
  params.type, params.policy = name, self.kind
  if params.method == nil then params.method = ctx.method end
  if params.url == nil then params.url = ctx.url end
  if params.key == nil then params.key = ctx:origin() end
  ctx:emit(name, params)
  local on = self.on_event
  if on then
    local ok, err = xpcall(on, debug.traceback, params)
    if not ok then
      if errors.is(err, "CancelledError") then error(err, 0) end
      report(self.kind, name, err)
    end
  end
end

-- ---- outcomes ----

-- The statuses and error kinds that count as a transient failure unless a
-- policy is told otherwise: overload and gateway answers, and connection
-- and timeout errors, but not TLS trust failures, which do not heal.
M.STATUSES = { 429, 502, 503, 504 }
M.ERROR_KINDS = { "ClientConnectionError", "TimeoutError" }
M.PERMANENT = { "ClientSSLError", "ServerFingerprintMismatch" }

-- rules(list | fn | nil, fname, argname) -> { statuses = set,
-- kinds = list, predicate = fn }. A list mixes statuses (numbers) and error
-- kind names; a function is a predicate(resp, err, attempt).
function M.rules(spec, fname, argname)
  if spec == nil then
    spec = {}
    for _, v in ipairs(M.STATUSES) do spec[#spec + 1] = v end
    for _, v in ipairs(M.ERROR_KINDS) do spec[#spec + 1] = v end
  end
  if type(spec) == "function" then return { statuses = {}, kinds = {}, predicate = spec, spec = spec } end
  if type(spec) ~= "table" then
    check.argerror(fname, argname, "list of statuses and error kinds, or a function expected, got " .. type(spec))
  end
  local r = { statuses = {}, kinds = {}, spec = spec }
  for i, v in ipairs(spec) do
    if type(v) == "number" and v >= 100 and v <= 599 and v % 1 == 0 then
      r.statuses[v] = true
    elseif type(v) == "string" and errors.kinds[v] then
      r.kinds[#r.kinds + 1] = v
    else
      check.argerror(fname, argname, ("item %d (%s) is neither a status nor an error kind"):format(i, tostring(v)))
    end
  end
  return r
end

local function is_response(v) return type(v) == "table" and type(v.status) == "number" end
M.is_response = is_response

-- matches(rules, res, err, attempt) -> whether the outcome is one the rules
-- name. An error that is not a lurl error (what a function under
-- policy:run returns) matches when the rules name any error kind.
function M.matches(rules, res, err, attempt)
  if rules.predicate then return rules.predicate(res, err, attempt) and true or false end
  if res ~= nil and is_response(res) then return rules.statuses[res.status] == true end
  if res ~= nil or err == nil then return false end
  if not errors.is_error(err) then return #rules.kinds > 0 end
  for _, kind in ipairs(M.PERMANENT) do
    if err:is(kind) then
      -- permanent unless named outright
      for _, k in ipairs(rules.kinds) do if k == err.kind then return true end end
      return false
    end
  end
  for _, kind in ipairs(rules.kinds) do
    if err:is(kind) then return true end
  end
  return false
end

-- Give a response back (its connection to the pool) when it is passed
-- over; anything else (a value under policy:run) is left alone.
function M.release(res)
  if is_response(res) and type(res.release) == "function" then res:release() end
end

-- ---- what may be sent twice ----

-- methods(v, fname) -> (the value shown, the set of extra methods or
-- true for all): v is nil, "*" or a list of method names.
function M.methods(v, fname)
  if v == nil then return nil, {} end
  if v == "*" then return v, true end
  if type(v) ~= "table" then
    check.argerror(fname, "'methods'", "list of method names or \"*\" expected, got " .. tostring(v))
  end
  local list, set = {}, {}
  for i, m in ipairs(v) do
    if type(m) ~= "string" or not m:match("^[%w!#$%%&'*+.^_`|~-]+$") then
      check.argerror(fname, "'methods'", ("item %d (%s) is not a method name"):format(i, tostring(m)))
    end
    list[i] = m:upper()
    set[list[i]] = true
  end
  return list, set
end

-- Whether ctx may be sent more than once: its body can be sent again, and
-- its method is idempotent, it carries an Idempotency-Key, or the script
-- allowed the method (set from M.methods).
function M.repeatable(ctx, set)
  if not ctx:replayable() then return false end
  return set == true or ctx:idempotent() or set[ctx.method] == true
end

-- A retry budget (lurl.retry_budget, lurl.token_bucket or any object with
-- their three methods), or nil.
function M.budget(v, fname)
  if v == nil then return nil end
  for _, name in ipairs { "deposit", "withdraw", "record" } do
    if type(v[name]) ~= "function" then
      check.argerror(fname, "'budget'", "lurl.retry_budget or lurl.token_bucket expected (no " .. name .. " method)")
    end
  end
  return v
end

-- ---- Retry-After (RFC 9110 section 10.2.3) ----

-- Seconds the response asks to wait, or nil: delay-seconds, or an HTTP-date
-- (a date in the past means 0), read against sched.wall().
function M.retry_after(resp)
  if not is_response(resp) then return nil end
  local v = resp.headers and resp.headers["retry-after"]
  if not v then return nil end
  v = v:match("^%s*(.-)%s*$")
  if v:match("^%d+$") then return tonumber(v) end
  local at = httpdate.parse(v)
  if not at then return nil end
  return math.max(0, at - sched.wall())
end

-- ---- random numbers ----

-- rng(v, fname) -> function() in [0, 1): v is nil (math.random), a seed
-- (a generator of its own, the same numbers for the same seed on every
-- machine) or a function.
function M.rng(v, fname)
  if v == nil then return math.random end
  if type(v) == "function" then return v end
  if type(v) ~= "number" or v % 1 ~= 0 then
    check.argerror(fname, "'rng'", "seed (integer) or function expected, got " .. tostring(v))
  end
  -- Park and Miller's minimal standard generator: exact in doubles
  local state = v % 2147483646 + 1
  return function()
    state = (state * 16807) % 2147483647
    return (state - 1) / 2147483646
  end
end

-- ---- checks of options ----

function M.check(fname, opts, known)
  if opts == nil then opts = {} end
  return check.options(fname, "#1", opts, known)
end

-- Seconds as messages print them: to the millisecond.
function M.seconds_text(v) return ("%g"):format(math.floor(v * 1000 + 0.5) / 1000) end


return M
