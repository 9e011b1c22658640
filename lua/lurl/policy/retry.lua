-- lurl.retry: try again after a transient failure, safely.
--
--   lurl.session{ middlewares = { lurl.retry{ attempts = 4 } } }
--   lurl.retry{ attempts = 3 }:run(function(ctx) ... end)
--
-- Options (defaults in brackets):
--   attempts [3]         tries in all, the first included
--   backoff [exponential, full jitter]  a lurl.backoff, seconds (constant)
--                        or function(n, prev) -> seconds (n = 1 for the
--                        first retry, prev the previous delay or nil)
--   retry_on [429 502 503 504, ClientConnectionError, TimeoutError]
--                        statuses and error kinds, or predicate(resp, err, attempt)
--   methods [idempotent] extra methods to retry ({ "POST" }), or "*" for all
--   retry_after [true]   on 429 and 503, wait what Retry-After asks instead
--                        of the backoff (RFC 9110 section 10.2.3)
--   max_wait [60]        a longer Retry-After fails at once: nil and a
--                        ClientResponseError (status, retry_after, url, method)
--   budget               a lurl.retry_budget or lurl.token_bucket
--   deadline             seconds for everything, narrowing the request's total
--   per_try_timeout      seconds for one try (a TimeoutError, retried)
--   on_retry(info)       before each wait, info = { attempt, delay, response,
--                        error, method, url }; false cancels the retry
--   on_event(ev)         attempt_start, attempt_end, backoff, budget_denied
--   rng                  seed or function() in [0, 1) for the jitter
--
-- What is safe to retry (urllib3 Retry's allowed_methods, gRPC A6): the
-- idempotent methods of RFC 9110 section 9.2.2 and any request carrying an
-- Idempotency-Key; POST and PATCH only when the script names them. A body
-- that cannot be sent twice (a generator function) is never retried.
--
-- Time: the deadline (the request's total timeout, narrowed by `deadline`)
-- bounds everything. No attempt starts once it has passed, and a wait that
-- would reach it is not begun: the last outcome is returned at once, which
-- says more than a timeout would. Under policy:run each try is also cut at
-- the deadline (sched.wait_for), as the session cuts a request's.
--
-- The outcome: a retried response is released before the next try; once the
-- policy stops (attempts spent, a failure it does not retry, the deadline,
-- the budget, on_retry) the last outcome is returned as it is. A
-- CancelledError is never retried.
--
-- The backoff's prev is the backoff's own previous delay: a wait that
-- Retry-After dictated does not feed decorrelated jitter.
local backoff = require "lurl.policy.backoff"
local base = require "lurl.policy.base"
local errors = require "lurl.errors"
local check = require "lurl.check"
local middleware = require "lurl.middleware"
local sched = require "lurl.sched"

local M = {}

local Retry = {}

-- The statuses whose Retry-After means "come back then" (RFC 9110 section
-- 10.2.3, RFC 6585 section 4).
local RETRY_AFTER = { [429] = true, [503] = true }

local SHOWN = { "attempts", "backoff", "retry_on", "methods", "retry_after", "max_wait", "deadline", "per_try_timeout",
  "budget" }

-- A function printed as where it is defined (base.fields prints a value
-- with a metatable through tostring).
local function shown(v)
  if type(v) ~= "function" then return v end
  return setmetatable({}, { __name = "lurl.function", __tostring = function() return middleware.describe(v) end })
end

local function describe(self)
  local view = {}
  for _, k in ipairs(SHOWN) do view[k] = shown(self[k]) end
  return base.fields(view, SHOWN)
end

local mt = base.class("retry", Retry, describe)

-- ---- options ----

local OPTIONS = {
  attempts = "number", backoff = "any", retry_on = "any", methods = "any", retry_after = "boolean",
  max_wait = "number", budget = "table", deadline = "number", per_try_timeout = "number", on_retry = "function",
  on_event = "function", rng = "any",
}

local function check_attempts(v)
  if v == nil then return 3 end
  if v < 1 or v % 1 ~= 0 then
    check.argerror("retry", "'attempts'", "integer >= 1 expected, got " .. tostring(v))
  end
  return v
end

function M.new(opts)
  opts = base.check("retry", opts, OPTIONS, 2)
  local rules = base.rules(opts.retry_on, "retry", "'retry_on'")
  local self = setmetatable({
    kind = "retry",
    attempts = check_attempts(opts.attempts),
    backoff = backoff.from(opts.backoff, "retry", "'backoff'"),
    rules = rules,
    retry_on = rules.spec,
    retry_after = opts.retry_after ~= false,
    max_wait = check.seconds("retry", "'max_wait'", opts.max_wait) or 60,
    budget = base.budget(opts.budget, "retry"),
    deadline = check.seconds("retry", "'deadline'", opts.deadline),
    per_try_timeout = check.seconds("retry", "'per_try_timeout'", opts.per_try_timeout),
    on_retry = opts.on_retry,
    on_event = opts.on_event,
    rng = base.rng(opts.rng, "retry"),
  }, mt)
  if self.per_try_timeout == 0 then check.argerror("retry", "'per_try_timeout'", "seconds > 0 expected, got 0") end
  self.methods, self.method_set = base.methods(opts.methods, "retry")
  return self
end

-- ---- one try ----

-- op(ctx) within the per-try timeout: the session enforces ctx.timeout on a
-- request; a function under policy:run runs in a task cut at the per-try
-- timeout or the deadline, whichever comes first.
local function try(self, ctx, op)
  if base.is_context(ctx) then
    local limit = math.min(self.per_try_timeout or math.huge, ctx.remaining)
    if limit == math.huge then return op(ctx) end
    return sched.wait_for(limit, op, ctx)
  end
  if not self.per_try_timeout then return op(ctx) end
  local saved = ctx.timeout
  ctx.timeout = self.per_try_timeout
  local res, err = op(ctx)
  ctx.timeout = saved
  return res, err
end

-- Attempt n, with its events and its record in the budget; returns the
-- outcome and whether it is a failure to retry.
local function attempt(self, ctx, op, n, key)
  ctx.attempt = n
  base.emit(self, ctx, "attempt_start", { attempt = n, key = key })
  local t0 = sched.now()
  local res, err = try(self, ctx, op)
  local failed = not errors.is(err, "CancelledError") and base.matches(self.rules, res, err, n)
  base.emit(self, ctx, "attempt_end", { attempt = n, status = base.is_response(res) and res.status or nil, error = err,
    elapsed = sched.now() - t0, failed = failed, key = key })
  if self.budget then self.budget:record(key, failed) end
  return res, err, failed
end

-- ---- between tries ----

-- Why attempt n is retried, for the backoff event.
local function reason(res, err)
  if base.is_response(res) then return "status " .. res.status end
  if errors.is_error(err) then return err.kind end
  if err ~= nil then return tostring(err) end
  return "retry_on" -- a predicate that refused a value
end

-- The wait after attempt n: what Retry-After asks, when the answer carries
-- one and the policy honours it (true as second value), else the backoff's.
local function wait_after(self, res, n, prev)
  if self.retry_after and base.is_response(res) and RETRY_AFTER[res.status] then
    local secs = base.retry_after(res)
    if secs then return secs, true end
  end
  return self.backoff:delay(n, prev, self.rng), false
end

local function too_long(self, ctx, res, secs)
  base.release(res)
  return nil, errors.new("ClientResponseError",
    ("Retry-After asks to wait %g seconds, more than max_wait (%g seconds)"):format(secs, self.max_wait),
    { status = res.status, retry_after = secs, url = ctx.url, method = ctx.method, headers = res.headers })
end

local function expired(ctx, n)
  return nil, errors.new("TimeoutError", ("the deadline passed before attempt %d"):format(n),
    { url = ctx.url, method = ctx.method, attempt = n })
end

-- Whether the wait still ends before the deadline.
local function fits(ctx, delay) return delay < ctx.remaining end

-- Everything that may stop the retry after attempt n, in order: the
-- deadline (cheapest), the budget (a withdrawal counts), then on_retry.
-- Returns whether to go on.
local function allowed(self, ctx, n, key, delay, res, err)
  if not fits(ctx, delay) then return false end
  local budget = self.budget
  if budget and not budget:withdraw(key) then
    base.emit(self, ctx, "budget_denied", { attempt = n, budget = tostring(budget), key = key })
    return false
  end
  if self.on_retry then
    local info = { attempt = n, delay = delay, response = res, error = err, method = ctx.method, url = ctx.url }
    if self.on_retry(info) == false then return false end
  end
  return true
end

-- ---- the policy ----

local function attempts(self, ctx, op)
  local key = ctx:origin()
  if self.budget then self.budget:deposit(key) end
  local retryable = base.repeatable(ctx, self.method_set)
  local prev
  for n = 1, self.attempts do
    if ctx.remaining <= 0 then return expired(ctx, n) end
    local res, err, failed = attempt(self, ctx, op, n, key)
    if not failed or not retryable or n == self.attempts then return res, err end
    local delay, asked = wait_after(self, res, n, prev)
    if asked and delay > self.max_wait then return too_long(self, ctx, res, delay) end
    if not asked then prev = delay end
    if not allowed(self, ctx, n, key, delay, res, err) then return res, err end
    base.emit(self, ctx, "backoff", { attempt = n, delay = delay, reason = asked and "retry_after" or reason(res, err),
      key = key })
    -- callbacks may have taken time: the wait must still fit
    if not fits(ctx, delay) then return res, err end
    base.release(res)
    sched.sleep(delay)
  end
end

function Retry:call(ctx, op)
  local before = base.narrow(ctx, self.deadline)
  local res, err = attempts(self, ctx, op)
  ctx.deadline_at = before
  return res, err
end

return M
