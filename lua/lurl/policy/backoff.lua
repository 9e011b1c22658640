-- Backoff strategies for lurl.retry: how long to wait before retry n.
--
--   lurl.backoff.constant(1)                                  1, 1, 1, ...
--   lurl.backoff.constant(1, { jitter = "full" })             U(0, 1) each time
--   lurl.backoff.linear{ base = 0.1, step = 0.1, max = inf }  0.1, 0.2, 0.3, ...
--   lurl.backoff.exponential{ base = 0.1, factor = 2, max = 10, jitter = "full" }
--
-- b:delay(n, prev, rng) -> seconds before retry n (n = 1 for the first
-- retry); prev is the delay this strategy gave for retry n - 1 (nil before
-- the first), rng a function() in [0, 1) (default math.random).
--
-- Jitter, after AWS "Exponential Backoff And Jitter" (Marc Brooker, 2015),
-- where d is the strategy's delay for n capped at max:
--   "none"          d
--   "full"          U(0, d)
--   "equal"         d / 2 + U(0, d / 2)
--   "decorrelated"  min(max, U(base, 3 * prev)), prev = base before the first
--                   retry; it grows from the previous delay, so it ignores
--                   step and factor, and a constant strategy has no use for it.
-- Without jitter clients that failed together retry together; the AWS
-- measurements favour full jitter, the default of exponential. Constant and
-- linear default to "none" (a fixed pace is what one asks them for).
local base = require "lurl.policy.base"
local check = require "lurl.check"
local middleware = require "lurl.middleware"

local M = {}

local Backoff = {}
local mt = { __name = "lurl.backoff", __index = Backoff }
function mt.__tostring(b) return ("lurl.backoff.%s { %s }"):format(b.kind, b:describe()) end

local function uniform(rng, lo, hi) return lo + rng() * (hi - lo) end

local JITTER = {
  none = function(d) return d end,
  full = function(d, _, _, rng) return uniform(rng, 0, d) end,
  equal = function(d, _, _, rng) return d / 2 + uniform(rng, 0, d / 2) end,
  decorrelated = function(_, b, prev, rng) return math.min(b.max, uniform(rng, b.base, 3 * (prev or b.base))) end,
}

-- The strategy's delay for retry n, before jitter, capped at max.
local RAW = {
  constant = function(b) return b.seconds end,
  linear = function(b, n) return math.min(b.max, b.base + b.step * (n - 1)) end,
  exponential = function(b, n) return math.min(b.max, b.base * b.factor ^ (n - 1)) end,
}

function Backoff:delay(n, prev, rng)
  return JITTER[self.jitter](RAW[self.kind](self, n), self, prev, rng or math.random)
end

local SHOWN = {
  constant = { "delay", "jitter" },
  linear = { "base", "step", "max", "jitter" },
  exponential = { "base", "factor", "max", "jitter" },
}

-- An unbounded max is left out; a constant's delay is kept as `seconds`
-- (`delay` is the method).
function Backoff:describe()
  local view = setmetatable({ delay = rawget(self, "seconds") }, { __index = self })
  local names = {}
  for _, k in ipairs(SHOWN[self.kind]) do
    if view[k] ~= math.huge then names[#names + 1] = k end
  end
  return base.fields(view, names)
end

-- ---- construction ----

local function check_jitter(fname, v)
  if v ~= nil and not JITTER[v] then
    check.argerror(fname, "'jitter'", ("\"none\", \"full\", \"equal\" or \"decorrelated\" expected, got %s")
      :format(tostring(v)))
  end
  return v
end

-- A strategy of kind fname from its options table.
local function growing(fname, opts, known, defaults)
  opts = base.check(fname, opts, known)
  local b = setmetatable({ kind = fname, jitter = check_jitter(fname, opts.jitter) or defaults.jitter }, mt)
  for _, k in ipairs { "base", "step", "max" } do
    if known[k] then b[k] = check.seconds(fname, "'" .. k .. "'", opts[k]) end
  end
  b.base = b.base or defaults.base
  b.max = b.max or defaults.max
  if b.max < b.base then
    check.argerror(fname, "'max'", ("%g is below 'base' (%g)"):format(b.max, b.base))
  end
  return b, opts
end

-- constant(delay[, { jitter = "none" }])
function M.constant(delay, opts)
  check.seconds("constant", "#1", check.arg("constant", "#1", delay, "number"))
  -- argument #2, which base.check (for #1) cannot name
  opts = check.options("constant", "#2", opts == nil and {} or opts, { jitter = "string" })
  local jitter = check_jitter("constant", opts.jitter) or "none"
  if jitter == "decorrelated" then
    check.argerror("constant", "'jitter'", "decorrelated grows from the previous delay: use linear or exponential")
  end
  return setmetatable({ kind = "constant", seconds = delay, jitter = jitter }, mt)
end

-- linear{ base = 0.1, step = base, max = unbounded, jitter = "none" }: base + step * (n - 1)
function M.linear(opts)
  local b = growing("linear", opts, { base = "number", step = "number", max = "number", jitter = "string" },
    { base = 0.1, max = math.huge, jitter = "none" }, 2)
  b.step = b.step or b.base
  return b
end

-- exponential{ base = 0.1, factor = 2, max = 10, jitter = "full" }: base * factor ^ (n - 1)
function M.exponential(opts)
  local b, o = growing("exponential", opts, { base = "number", factor = "number", max = "number", jitter = "string" },
    { base = 0.1, max = 10, jitter = "full" }, 2)
  local factor = o.factor or 2
  if factor < 1 or factor ~= factor then
    check.argerror("exponential", "'factor'", "number >= 1 expected, got " .. tostring(factor))
  end
  b.factor = factor
  return b
end

-- ---- what lurl.retry accepts ----

local Custom = {}
local custom_mt = { __name = "lurl.backoff", __index = Custom }
function custom_mt.__tostring(c) return ("lurl.backoff.custom { %s }"):format(middleware.describe(c.fn)) end

-- A function(n, prev) -> seconds, checked at each use: a bad value is a bug
-- of the script, raised where the retry sleeps.
function Custom:delay(n, prev)
  local d = self.fn(n, prev)
  if not check.is_seconds(d) then
    error(("backoff function %s returned %s, not seconds >= 0"):format(middleware.describe(self.fn), tostring(d)), 0)
  end
  return d
end

-- from(v, fname, argname) -> a strategy for a retry's backoff
-- option: nil (exponential with full jitter), seconds (constant), a
-- function(n, prev), a strategy of this module or any table with a delay
-- method.
function M.from(v, fname, argname)
  if v == nil then return M.exponential() end
  local t = type(v)
  if t == "number" then
    return M.constant(check.seconds(fname, argname, v))
  end
  if t == "function" then return setmetatable({ fn = v }, custom_mt) end
  if t == "table" and type(v.delay) == "function" then return v end
  check.argerror(fname, argname, "seconds, a function(n, prev) or a lurl.backoff expected, got " .. t)
end

return M
