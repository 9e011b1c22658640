-- lurl.rate_limit: at most `rate` requests per second, after a burst of
-- `burst`, per host or shared by all.
--
-- The Generic Cell Rate Algorithm (ITU-T I.371; a token bucket of `burst`
-- tokens refilled at `rate` per second, kept as one number): each key has a
-- theoretical arrival time `tat`; a call at time t gets the slot
-- max(t, tat - tolerance), where tolerance = (burst - 1) / rate, and moves
-- tat one interval (1 / rate) on. A call whose slot is later waits for it
-- (sched.sleep): slots are handed out in the order of the calls, so N calls
-- at once go out `burst` at a time, then one every interval.
--
-- A wait that would pass the request's deadline (ctx.remaining) or max_wait
-- is not taken: the call returns nil, ThrottledError at once and reserves
-- nothing.
local base = require "lurl.policy.base"
local errors = require "lurl.errors"
local check = require "lurl.check"
local sched = require "lurl.sched"

local M = {}

local FNAME = "rate_limit"

local Limiter = {}

local function describe(self) return base.fields(self, { "rate", "burst", "per_host", "max_wait" }) end

local mt = base.class(FNAME, Limiter, describe)

-- Seconds as the messages print them: to the millisecond.

local function throttled(self, ctx, key, wait)
  local left, why = ctx.remaining
  if wait >= left then
    why = ("the deadline allows (%s s left)"):format(base.seconds_text(left))
  else
    why = ("max_wait (%s s)"):format(base.seconds_text(self.max_wait))
  end
  local msg = ("rate limit of %g/s (burst %d) for %s: the request would wait %s s, more than %s"):format(self.rate,
    self.burst, key, base.seconds_text(wait), why)
  return errors.new("ThrottledError", msg, { wait = wait, key = key, rate = self.rate, url = ctx.url,
    method = ctx.method })
end

-- Sleep until entry.at; a waiter behind a cancelled one is woken to sleep
-- again until its earlier slot.
local function sleep_until(entry)
  while true do
    local left = entry.at - sched.now()
    if left <= 0 then return end
    if sched.wait(function(wake) entry.wake = wake end, left) == sched.TIMEOUT then return end
  end
end

local function remove(queue, entry)
  for i = 1, #queue do
    if queue[i] == entry then
      table.remove(queue, i)
      return i
    end
  end
end

-- A waiter was cancelled: its slot goes back. The reservations after a
-- waiting one are all waiting, one interval apart (each took tat as the one
-- before left it), so each moves up one interval and tat moves back one:
-- nobody waits longer than if the cancelled call had never come.
local function give_back(self, b, i)
  local q = b.queue
  b.tat = b.tat - self.interval
  for j = i, #q do
    local e = q[j]
    e.at = e.at - self.interval
    if e.wake then e.wake() end
  end
end

local function hold(self, b, at)
  local entry = { at = at }
  local q = b.queue
  q[#q + 1] = entry
  local ok, err = pcall(sleep_until, entry)
  local i = remove(q, entry)
  if not ok then
    give_back(self, b, i)
    error(err, 0)
  end
end

-- Take a slot for ctx's request: true (after waiting for it if need be), or
-- nil and ThrottledError when the wait is not allowed.
local function acquire(self, ctx)
  local key = base.key(self, ctx)
  local b = self.buckets[key]
  local now = sched.now()
  local at = math.max(now, b.tat - self.tolerance)
  local wait = at - now
  if wait > 0 and (wait >= ctx.remaining or (self.max_wait and wait > self.max_wait)) then
    return nil, throttled(self, ctx, key, wait)
  end
  b.tat = math.max(b.tat, at) + self.interval
  if wait > 0 then hold(self, b, at) end
  return true
end

function Limiter:call(ctx, op)
  local ok, err = acquire(self, ctx)
  if not ok then return nil, err end
  return op(ctx)
end

-- ---- construction ----

local OPTIONS = { rate = "number", burst = "number", per_host = "boolean", max_wait = "number" }

local function bad(name, msg) check.argerror(FNAME, "'" .. name .. "'", msg) end

-- new{ rate, burst = 1, per_host = true, max_wait }: rate in requests per
-- second (> 0); max_wait, the longest wait a call may take (seconds).
function M.new(opts)
  opts = base.check(FNAME, opts, OPTIONS, 2)
  local rate = opts.rate
  if rate == nil then bad("rate", "requests per second expected, got nil") end
  if not (rate > 0 and rate < math.huge) then bad("rate", "requests per second > 0 expected, got " .. rate) end
  local burst = opts.burst or 1
  if not (burst % 1 == 0 and burst >= 1 and burst < math.huge) then
    bad("burst", "integer >= 1 expected, got " .. burst)
  end
  return setmetatable({
    kind = FNAME, rate = rate, burst = burst, per_host = opts.per_host ~= false,
    max_wait = check.seconds(FNAME, "'max_wait'", opts.max_wait),
    interval = 1 / rate, tolerance = (burst - 1) / rate,
    buckets = base.keyed(function() return { tat = -math.huge, queue = {} } end),
  }, mt)
end

return M
