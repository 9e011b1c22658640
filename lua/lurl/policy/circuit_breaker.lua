-- lurl.circuit_breaker: stop calling a host that keeps failing, and probe it
-- again after a pause. Defaults, states and sampling follow Polly v8's
-- circuit breaker (CircuitBreakerStrategyOptions):
--
--   closed     calls go through; their outcomes fill a sliding window of
--              `window` seconds. Once it holds at least min_throughput
--              outcomes and failures / total >= failure_ratio, the circuit
--              opens.
--   open       calls fail fast for break_for seconds, without calling op:
--              nil, CircuitOpenError.
--   half_open  after the break, up to half_open_max calls go through as
--              probes while the others fail fast; a probe's success closes
--              the circuit (its window starts afresh), a failure opens it
--              again for break_for.
--
-- An outcome counts only in the state its call was let in: each change of
-- state starts a new epoch, and a call let in while closed that ends after
-- the circuit opened changes nothing (Polly ignores such outcomes too).
-- A cancelled call (CancelledError, raised again) or one whose op raised is
-- neither a success nor a failure; a cancelled probe frees its slot.
--
-- State is kept per key: the request's origin (per_host) or one shared "*".
local base = require "lurl.policy.base"
local errors = require "lurl.errors"
local check = require "lurl.check"
local sched = require "lurl.sched"
local window = require "lurl.policy.window"

local M = {}

local FNAME = "circuit_breaker"
-- the "request" of a change made outside any call (breaker:reset): its
-- event goes to on_event only
local QUIET = { emit = function() end }

-- ---- the breaker ----

local Breaker = {}

local function describe(self)
  return base.fields(self, { "failure_ratio", "min_throughput", "window", "break_for", "half_open_max", "failure_on",
    "per_host" })
end

local mt = base.class("circuit_breaker", Breaker, describe)


-- Change state (a new epoch), then tell the trace configs and on_event.
local function transition(self, c, ctx, to)
  local from = c.state
  c.state, c.epoch, c.probes = to, c.epoch + 1, 0
  if to == "open" then c.open_until = sched.now() + self.break_for end
  if to == "closed" then c.counts:reset() end
  base.emit(self, ctx, "breaker_transition", { key = c.key, from = from, to = to })
end


local function rejection(c, ctx)
  local retry_in, msg = 0
  if c.state == "open" then
    retry_in = math.max(0, c.open_until - sched.now())
    msg = ("circuit open for %s: failing fast for %s more seconds"):format(c.key, base.seconds_text(retry_in))
  else
    msg = ("circuit half-open for %s: failing fast while %d probe%s in flight"):format(c.key, c.probes,
      c.probes == 1 and " is" or "s are")
  end
  return errors.new("CircuitOpenError", msg, { key = c.key, retry_in = retry_in, state = c.state, url = ctx.url,
    method = ctx.method })
end

-- Let the call in: returns the epoch it belongs to, or nil and the error
-- of a fast failure. The break is over once a call comes after it (as in
-- Polly, the open -> half_open change waits for a call).
local function admit(self, c, ctx)
  if c.state == "open" and sched.now() >= c.open_until then transition(self, c, ctx, "half_open") end
  -- read again: the event's callbacks may have let other calls in meanwhile
  if c.state == "closed" then return c.epoch end
  if c.state == "half_open" and c.probes < self.half_open_max then
    c.probes = c.probes + 1
    return c.epoch
  end
  return nil, rejection(c, ctx)
end

-- A call of this epoch ended without an outcome: a probe frees its slot.
local function leave(c, epoch)
  if c.epoch == epoch and c.state == "half_open" then c.probes = c.probes - 1 end
end

local function record(self, c, ctx, epoch, failed)
  if c.epoch ~= epoch then return end
  if c.state == "half_open" then return transition(self, c, ctx, failed and "open" or "closed") end
  c.counts:add(1, failed and 1 or 0)
  if failed then
    local total, failures = c.counts:sums()
    if total >= self.min_throughput and failures / total >= self.failure_ratio then
      transition(self, c, ctx, "open")
    end
  end
end

local function failed(self, res, err, attempt)
  if base.matches(self.rules, res, err, attempt) then return true end
  return self.any_5xx and base.is_response(res) and res.status >= 500 or false
end

function Breaker:call(ctx, op)
  local c = self.circuits[base.key(self, ctx)]
  local epoch, rejected = admit(self, c, ctx)
  if not epoch then return nil, rejected end
  local ok, res, err = pcall(op, ctx)
  if not ok or errors.is(err, "CancelledError") then
    leave(c, epoch)
    error(ok and err or res, 0)
  end
  record(self, c, ctx, epoch, failed(self, res, err, ctx.attempt))
  return res, err
end

-- ---- for scripts and specs ----


-- breaker:state([key]) -> "closed" | "open" | "half_open": what the next
-- call would find (an open circuit whose break is over reads "half_open").
function Breaker:state(key)
  local c = self.circuits[base.script_key(self, key, "state")]
  if not c then return "closed" end
  if c.state == "open" and sched.now() >= c.open_until then return "half_open" end
  return c.state
end

-- breaker:stats([key]) -> { total, failures, state }: the outcomes in the
-- window now.
function Breaker:stats(key)
  local c = self.circuits[base.script_key(self, key, "stats")]
  local total, failures = 0, 0
  if c then total, failures = c.counts:sums() end
  return { total = total, failures = failures, state = self:state(key) }
end

local function reset(self, c)
  if c.state ~= "closed" then
    transition(self, c, QUIET, "closed")
  else
    c.counts:reset()
  end
end

-- breaker:reset([key]): close the circuit of key (every circuit without a
-- key) and forget its outcomes. The transitions reach on_event only: there
-- is no request to trace.
function Breaker:reset(key)
  if key == nil then
    for _, c in pairs(self.circuits) do reset(self, c) end
    return
  end
  local c = self.circuits[base.script_key(self, key, "reset")]
  if c then reset(self, c) end
end

-- ---- construction ----

local OPTIONS = {
  failure_ratio = "number", min_throughput = "number", window = "number", break_for = "number",
  half_open_max = "number", failure_on = "any", per_host = "boolean", on_event = "function",
}

local function bad(name, msg) check.argerror(FNAME, "'" .. name .. "'", msg) end

local function count(v) return v % 1 == 0 and v >= 1 and v < math.huge end

-- new{ failure_ratio = 0.1, min_throughput = 100, window = 30, break_for = 5,
-- half_open_max = 1, failure_on, per_host = true, on_event }
-- failure_on: statuses, error kinds or a predicate (lurl.policy.base.rules);
-- by default the transient failures of base (429, 502, 503, 504, connection
-- errors, timeouts) and every other 5xx status as well: a breaker guards
-- against a sick server, which a 500 signals as much as a 503.
function M.new(opts)
  opts = base.check(FNAME, opts, OPTIONS, 2)
  local ratio = opts.failure_ratio or 0.1
  if not (ratio > 0 and ratio <= 1) then bad("failure_ratio", "number in (0, 1] expected, got " .. ratio) end
  local min = opts.min_throughput or 100
  if not count(min) then bad("min_throughput", "integer >= 1 expected, got " .. min) end
  local span = check.seconds(FNAME, "'window'", opts.window) or 30
  if not (span > 0 and span < math.huge) then bad("window", "seconds > 0 expected, got " .. span) end
  local max = opts.half_open_max or 1
  if not count(max) then bad("half_open_max", "integer >= 1 expected, got " .. max) end
  local self = setmetatable({
    kind = FNAME, failure_ratio = ratio, min_throughput = min, window = span,
    break_for = check.seconds(FNAME, "'break_for'", opts.break_for) or 5, half_open_max = max,
    failure_on = opts.failure_on, rules = base.rules(opts.failure_on, FNAME, "'failure_on'"),
    any_5xx = opts.failure_on == nil, per_host = opts.per_host ~= false, on_event = opts.on_event,
    circuits = base.keyed(function(key)
      return { key = key, state = "closed", epoch = 0, probes = 0, open_until = 0, counts = window.new(span, 10) }
    end),
  }, mt)
  return self
end

return M
