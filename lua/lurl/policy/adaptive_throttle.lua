-- lurl.adaptive_throttle: client-side throttling from the Google SRE book
-- ("Handling Overload", "Client-side throttling"). Over the last `window`
-- seconds each key counts
--   requests  the calls the application made (those rejected here too), and
--   accepts   the calls the backend accepted,
-- and before each call rejects it locally with probability
--   max(0, (requests - k * accepts) / (requests + 1)).
-- While the backend accepts everything the probability is 0; once more than
-- one request in k is refused, the client sheds load before it leaves the
-- process, and as accepts come back the throttling fades away.
--
-- As in grpc-go's adaptive throttler (balancer/rls), a call that goes
-- through is counted when its outcome is known, so calls in flight do not
-- throttle each other at start; a rejected call counts at once. A cancelled
-- call (CancelledError, raised again) counts neither way. Counts live in
-- per-second buckets: an outcome is forgotten between window - 1 and window
-- seconds after it.
local base = require "lurl.policy.base"
local errors = require "lurl.errors"
local check = require "lurl.check"
local window = require "lurl.policy.window"

local M = {}

local FNAME = "adaptive_throttle"

local Throttle = {}

local function describe(self) return base.fields(self, { "k", "window", "failure_on", "per_host" }) end

local mt = base.class(FNAME, Throttle, describe)

local function probability(self, requests, accepts)
  return math.max(0, (requests - self.k * accepts) / (requests + 1))
end

local function rejection(self, ctx, key, p, requests, accepts)
  local msg = ("adaptive throttling rejected the request to %s locally (probability %.3f: %d requests, %d accepts"
    .. " in %g s)"):format(key, p, requests, accepts, self.window)
  return errors.new("ThrottledError", msg, { probability = p, key = key, requests = requests, accepts = accepts,
    url = ctx.url, method = ctx.method })
end

function Throttle:call(ctx, op)
  local key = base.key(self, ctx)
  local w = self.counts[key]
  local requests, accepts = w:sums()
  local p = probability(self, requests, accepts)
  if p > 0 and self.rng() < p then
    w:add(1, 0)
    base.emit(self, ctx, "throttled", { key = key, probability = p, method = ctx.method, url = ctx.url })
    return nil, rejection(self, ctx, key, p, requests, accepts)
  end
  local res, err = op(ctx)
  if errors.is(err, "CancelledError") then error(err, 0) end
  w:add(1, base.matches(self.rules, res, err, ctx.attempt) and 0 or 1)
  return res, err
end

-- throttle:stats([key]) -> { requests, accepts, probability } in the window
-- now (key: the origin, run mode's "default" when none is given).
function Throttle:stats(key)
  local requests, accepts = self.counts[base.script_key(self, key, "stats")]:sums()
  return { requests = requests, accepts = accepts, probability = probability(self, requests, accepts) }
end

-- ---- construction ----

local OPTIONS = { k = "number", window = "number", per_host = "boolean", failure_on = "any", rng = "any",
  on_event = "function" }

local function bad(name, msg) check.argerror(FNAME, "'" .. name .. "'", msg) end

-- new{ k = 2, window = 120, per_host = true, failure_on, rng, on_event }
-- failure_on names the outcomes that are not accepts (lurl.policy.base.rules:
-- statuses, error kinds or a predicate); by default base's transient
-- failures: 429, 502, 503, 504, connection errors and timeouts. rng: a seed
-- or a function (lurl.policy.base.rng). Each local rejection is a
-- "throttled" event { key, probability } for on_event and trace configs.
function M.new(opts)
  opts = base.check(FNAME, opts, OPTIONS, 2)
  local k = opts.k or 2
  if not (k >= 1 and k < math.huge) then bad("k", "number >= 1 expected, got " .. k) end
  local span = check.seconds(FNAME, "'window'", opts.window) or 120
  if not (span > 0 and span < math.huge) then bad("window", "seconds > 0 expected, got " .. span) end
  return setmetatable({
    kind = FNAME, k = k, window = span, failure_on = opts.failure_on, per_host = opts.per_host ~= false,
    rules = base.rules(opts.failure_on, FNAME, "'failure_on'"), rng = base.rng(opts.rng, FNAME),
    on_event = opts.on_event,
    counts = base.keyed(function() return window.new(span, math.ceil(span)) end),
  }, mt)
end

return M
