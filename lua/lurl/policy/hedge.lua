-- lurl.hedge: hedged requests ("backup requests"). When the first attempt
-- is slow, a second copy races it and the first good answer wins (Dean and
-- Barroso, "The Tail at Scale", CACM 2013; gRPC A6 hedging policy; Envoy's
-- hedge_on_per_try_timeout; Finagle's BackupRequestFilter).
--
--   lurl.hedge{ delay = 0.05, max = 2, hedge_on, methods, budget, on_event,
--               initial_delay = 0.05, min_samples = 20 }
--
-- Attempt 1 starts at once in a task of its own; while none has succeeded,
-- attempt n + 1 starts `delay` seconds after attempt n, up to `max` in all
-- (gRPC's hedgingDelay and maxAttempts). An attempt whose outcome is a
-- failure (hedge_on: statuses, error kinds or a predicate, as lurl.retry's
-- retry_on; default 429 502 503 504, connection and timeout errors) starts
-- the next one at once, as gRPC does on a non-fatal status. The first outcome
-- that is not a failure wins: the other attempts are cancelled (the session
-- closes the connection of a cancelled request: a loser is never pooled half
-- read) and a response a loser already holds is released. When every
-- attempt fails, the last failure is returned.
--
-- delay = "p95" (any "pNN", 1 to 99.9) is the percentile mode of Finagle's
-- backup requests: the delay is that percentile (nearest rank) of the
-- latencies of the last 1000 winning attempts, each measured from its own
-- start; until min_samples are seen it is initial_delay.
--
-- Only a request that may be sent twice is hedged: an idempotent one
-- (RFC 9110 9.2.2, or carrying an Idempotency-Key), or one whose method is
-- in `methods` ({ "POST" } or "*", in addition to the idempotent ones), and
-- whose body can be replayed. Any other request, and every request when
-- max = 1, passes through untouched: no task, no events, no budget.
--
-- Events: attempt_start and attempt_end for each attempt (a loser's end
-- has cancelled = true and its CancelledError), hedge_fired { attempt,
-- delay } where delay is the time since the previous attempt started (less
-- than `delay` when a failure fired it early).
--
-- budget (lurl.retry_budget or lurl.token_bucket, keyed by ctx:origin()):
-- one deposit per hedged call, one withdraw per hedge (a refusal emits
-- budget_denied and no more hedges are sent), one record per attempt that
-- finished. The deadline (ctx.remaining) bounds the wait: no hedge starts
-- once it is reached, and attempts still running then are cancelled.
local base = require "lurl.policy.base"
local errors = require "lurl.errors"
local check = require "lurl.check"
local sched = require "lurl.sched"

local M = {}

local Hedge = {}

-- latencies kept for percentile mode
local WINDOW = 1000
-- virtual and libuv timers may land a hair before the time asked for
local EPS = 1e-9

local KNOWN = {
  delay = "any", max = "number", hedge_on = "any", methods = "any", budget = "table", on_event = "function",
  initial_delay = "number", min_samples = "number",
}

-- ---- latency samples: a ring in arrival order and the same values sorted ----

local function search(sorted, v)
  local lo, hi = 1, #sorted + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if sorted[mid] < v then lo = mid + 1 else hi = mid end
  end
  return lo
end

local function add_sample(self, v)
  local ring, sorted = self.ring, self.sorted
  local i = self.ring_next
  local old = ring[i]
  if old then table.remove(sorted, search(sorted, old)) end
  ring[i] = v
  self.ring_next = i % WINDOW + 1
  table.insert(sorted, search(sorted, v), v)
end

-- The delay before the next hedge: fixed, or the percentile (nearest rank)
-- of the latencies seen.
local function current_delay(self)
  local p = self.percentile
  if not p then return self.delay end
  local sorted = self.sorted
  local n = #sorted
  if n < self.min_samples then return self.initial_delay end
  return sorted[math.max(1, math.ceil(p / 100 * n - EPS))]
end

-- ---- which requests ----

local function may_hedge(self, ctx)
  return self.max >= 2 and base.repeatable(ctx, self.allowed)
end

-- ---- the race ----

-- The body of an attempt's task: op on the attempt's own copy of ctx. Its
-- outcome (or what it raised) is queued for the caller, who is woken.
local function run_attempt(race, a)
  local ok, res, err = pcall(race.op, a.ctx)
  if ok then a.res, a.err = res, err else a.raised = res end
  a.finished = sched.now()
  local done = race.done
  done[#done + 1] = a
  if race.wake then race.wake() end
  if not ok and errors.is(res, "CancelledError") then error(res, 0) end
end

local function launch(self, race)
  local n = race.n + 1
  local c = race.ctx:copy()
  c.attempt = n
  local a = { n = n, ctx = c, started = sched.now() }
  race.n, race.attempts[n], race.last_start = n, a, a.started
  base.emit(self, race.ctx, "attempt_start", { attempt = n })
  a.task = sched.spawn(run_attempt, race, a)
end

-- Start the next hedge if the budget allows it.
local function fire(self, race)
  local n, budget = race.n + 1, self.budget
  if budget and not budget:withdraw(race.key) then
    race.stopped = true
    base.emit(self, race.ctx, "budget_denied", { attempt = n, budget = tostring(budget) })
    return
  end
  base.emit(self, race.ctx, "hedge_fired", { attempt = n, delay = sched.now() - race.last_start })
  launch(self, race)
end

local function can_fire(self, race)
  return race.n < self.max and not race.stopped and race.ctx.remaining > EPS
end

-- An attempt's outcome: classified, reported, counted by the budget.
local function settle(self, race, a)
  local failed = base.matches(self.rules, a.res, a.err, a.n)
  a.failed, a.settled = failed, true
  local res = a.res
  base.emit(self, race.ctx, "attempt_end", { attempt = a.n, status = base.is_response(res) and res.status or nil,
    error = a.err, elapsed = a.finished - a.started, failed = failed })
  if self.budget then self.budget:record(race.key, failed) end
  return failed
end

-- The attempts still running when the race is decided: cancelled, then
-- waited for, so that their connections are closed by the time the call
-- returns. An attempt that finished meanwhile is settled and released.
local function stop_others(self, race, winner)
  local running = {}
  for _, a in ipairs(race.attempts) do
    if a ~= winner and not a.finished then
      a.task:cancel()
      running[#running + 1] = a
    end
  end
  for _, a in ipairs(running) do
    a.task:join()
    if a.raised then
      base.emit(self, race.ctx, "attempt_end", { attempt = a.n, error = a.raised, cancelled = true, failed = false,
        elapsed = a.finished - a.started })
    elseif not a.settled then
      settle(self, race, a)
    end
    base.release(a.res)
  end
  for i = race.seen + 1, #race.done do
    local a = race.done[i]
    if a ~= winner and not a.settled and not a.raised then
      settle(self, race, a)
      base.release(a.res)
    end
  end
end

local function outcome_of(self, race, a)
  stop_others(self, race, a)
  return a.res, a.err
end

-- Park until an attempt finishes or secs pass (nil: no limit).
local function wait(race, secs)
  return sched.wait(function(wake)
    race.wake = wake
    if race.seen < #race.done then wake() end
  end, secs)
end

local function deadline_error(race)
  return errors.new("TimeoutError", ("deadline reached with %d hedged attempts unanswered"):format(race.n - race.seen),
    { method = race.ctx.method, url = race.ctx.url })
end

local function race_loop(self, race)
  launch(self, race)
  local last
  while true do
    if race.seen < #race.done then
      race.seen = race.seen + 1
      local a = race.done[race.seen]
      if a.raised then error(a.raised, 0) end
      if not settle(self, race, a) then
        add_sample(self, a.finished - a.started)
        if last then base.release(last.res) end
        return outcome_of(self, race, a)
      end
      if last then base.release(last.res) end
      last, race.urgent = a, true
    elseif can_fire(self, race) and (race.urgent or sched.now() >= race.last_start + race.delay - EPS) then
      race.urgent = false
      fire(self, race)
    elseif race.seen == race.n and not can_fire(self, race) then
      return last.res, last.err
    elseif race.ctx.remaining <= EPS then
      local err = deadline_error(race)
      stop_others(self, race)
      if last then base.release(last.res) end
      return nil, err
    else
      local secs = race.ctx.remaining
      if can_fire(self, race) then secs = math.min(secs, race.last_start + race.delay - sched.now()) end
      wait(race, secs ~= math.huge and math.max(0, secs) or nil)
    end
  end
end

-- Raised out of the race (the caller was cancelled, an attempt raised):
-- every attempt is cancelled and every response released. The attempts are
-- waited for unless the caller itself is cancelled (then a join raises at
-- once, and they end on their own right after).
local function abandon(race)
  for _, a in ipairs(race.attempts) do a.task:cancel() end
  for _, a in ipairs(race.attempts) do
    pcall(a.task.join, a.task)
    base.release(a.res)
  end
end

function Hedge:call(ctx, op)
  if not may_hedge(self, ctx) then return op(ctx) end
  if ctx.remaining <= EPS then
    return nil, errors.new("TimeoutError", "deadline reached before the first attempt", { method = ctx.method,
      url = ctx.url })
  end
  local key = ctx:origin()
  if self.budget then self.budget:deposit(key) end
  local race = { ctx = ctx, op = op, key = key, n = 0, seen = 0, attempts = {}, done = {},
    delay = current_delay(self), stopped = false, urgent = false }
  local ok, res, err = pcall(race_loop, self, race)
  if not ok then
    abandon(race)
    error(res, 0)
  end
  return res, err
end

-- ---- construction ----

local function describe(self)
  local budget = self.budget and tostring(self.budget) or nil
  local parts = base.fields(self, { "delay", "initial_delay", "min_samples", "max", "methods", "hedge_on" })
  if budget then parts = parts .. ", budget = " .. budget end
  return parts
end

local mt = base.class("hedge", Hedge, describe)

-- delay: seconds, or "pNN" -> nil, NN
local function parse_delay(v)
  if v == nil then return 0.05 end
  if type(v) == "number" then
    check.seconds("hedge", "'delay'", v)
    return v
  end
  local p = type(v) == "string" and tonumber(v:match("^p(%d+%.?%d*)$"))
  if not p or p < 1 or p > 99.9 then
    check.argerror("hedge", "'delay'", "seconds >= 0 or a percentile \"p1\" to \"p99.9\" expected, got "
      .. (type(v) == "string" and ("%q"):format(v) or tostring(v)))
  end
  return nil, p
end

local function check_integer(name, v, min)
  if v ~= nil and (v % 1 ~= 0 or v < min) then
    check.argerror("hedge", "'" .. name .. "'", ("integer >= %d expected, got %s"):format(min, tostring(v)))
  end
  return v
end

-- new(opts) -> a hedge policy (a middleware, and policy:run(fn)).
function M.new(opts)
  opts = base.check("hedge", opts, KNOWN, 2)
  local delay, percentile = parse_delay(opts.delay, 2)
  local methods, allowed = base.methods(opts.methods, "hedge")
  local self = setmetatable({
    kind = "hedge",
    delay = percentile and opts.delay or delay,
    percentile = percentile,
    max = check_integer("max", opts.max, 1) or 2,
    methods = methods,
    allowed = allowed,
    hedge_on = opts.hedge_on,
    rules = base.rules(opts.hedge_on, "hedge", "'hedge_on'"),
    budget = base.budget(opts.budget, "hedge"),
    on_event = opts.on_event,
    ring = {}, sorted = {}, ring_next = 1,
  }, mt)
  if percentile then
    self.initial_delay = check.seconds("hedge", "'initial_delay'", opts.initial_delay) or 0.05
    self.min_samples = check_integer("min_samples", opts.min_samples, 1) or 20
  end
  return self
end

return M
