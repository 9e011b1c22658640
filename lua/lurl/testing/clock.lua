-- lurl.testing.clock: virtual time for specs of policies and timeouts.
--
--   local clock = lurl.testing.clock()            -- installed at once
--   clock:advance(0.3)       -- fire what is due within 0.3 s, in order
--   clock:run_until_idle()   -- fire every timer until none is left
--   clock:close()            -- back to real time
--
-- While it is installed, sched.now() (and lurl.now(), every deadline,
-- timing and policy) reads the virtual time, and every timed wait (sleeps,
-- timeouts, backoffs, pool keep-alive) waits on a virtual timer. Time moves
-- only when told: a spec checks a 10-attempt backoff timeline exactly and at
-- once. Between two timers the clock lets every ready task run, so each sees
-- the time its timer was due.
--
-- autojump = true moves time to the next timer by itself whenever no task
-- is ready (trio's autojump clock): a script then runs as under real time,
-- instantly. Sockets are not virtual: a task waiting for the network is not
-- "ready", so with real I/O in flight give autojump a number instead, the
-- real seconds of quiet to wait before each jump.
--
-- Unreferenced timers (timer:ref(false), like the pool's sweeper) fire when
-- time passes them, but neither autojump nor run_until_idle waits for them.
local core = require "lurl.core"
local check = require "lurl.check"
local sched = require "lurl.sched"

local M = {}

local Clock = {}
local mt = { __name = "lurl.testing.clock", __index = Clock }
function mt.__tostring(c)
  return ("lurl.testing.clock (t = %g, %d timers%s)"):format(c.t, c.active, c.closed and ", closed" or "")
end

-- ---- timers: a binary heap ordered by due time, then by start order ----

local function less(a, b) return a.due < b.due or (a.due == b.due and a.seq < b.seq) end

local function heap_push(h, e)
  local i = #h + 1
  h[i] = e
  while i > 1 do
    local p = math.floor(i / 2)
    if not less(h[i], h[p]) then break end
    h[i], h[p] = h[p], h[i]
    i = p
  end
end

local function heap_pop(h)
  local top, n = h[1], #h
  -- two statements: in one multiple assignment LuaJIT clears h[n] first
  -- and then moves the old h[n] to h[1], so a last entry would stay
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and less(h[l], h[m]) then m = l end
    if r <= n and less(h[r], h[m]) then m = r end
    if m == i then break end
    h[i], h[m] = h[m], h[i]
    i = m
  end
  return top
end

local Timer = {}
local timer_mt = { __name = "lurl.testing.clock.timer", __index = Timer }

-- The entry of a started timer; a stop or restart makes it stale (the heap
-- drops stale entries as it meets them).
local function live(e) return e.timer.entry == e end

function Timer:start(secs, cb)
  if not self.real and self.clock.closed then
    -- made under the clock, started after it: real time from now on
    self.real = core.timer()
    if not self.referenced then self.real:ref(false) end
  end
  if self.real then return self.real:start(secs, cb) end
  check.seconds("start", "#1", check.arg("start", "#1", secs, "number"))
  self:stop()
  local clock = self.clock
  clock.seq = clock.seq + 1
  local e = { timer = self, due = clock.t + secs, seq = clock.seq, cb = cb }
  self.entry = e
  if self.referenced then clock.active = clock.active + 1 end
  heap_push(clock.heap, e)
end

function Timer:stop()
  if self.real then return self.real:stop() end
  if self.entry then
    if self.referenced then self.clock.active = self.clock.active - 1 end
    self.entry = nil
  end
end

function Timer:close()
  if self.real then return self.real:close() end
  self:stop()
  self.is_closed = true
end

function Timer:closed() return self.is_closed == true end

function Timer:ref(on)
  if self.real then return self.real:ref(on) end
  on = on ~= false
  if on == self.referenced then return end
  if self.entry then self.clock.active = self.clock.active + (on and 1 or -1) end
  self.referenced = on
end

-- The next live entry, stale ones dropped; nil when there is none.
-- referenced_only: skip (without dropping) unreferenced ones.
local function peek(self, referenced_only)
  local h = self.heap
  while h[1] and not live(h[1]) do heap_pop(h) end
  if not referenced_only or not h[1] or h[1].timer.referenced then return h[1] end
  -- rare: an unreferenced timer is first; look for a referenced one
  local best
  for _, e in ipairs(h) do
    if live(e) and e.timer.referenced and (not best or less(e, best)) then best = e end
  end
  return best
end

-- Fire entry e: time moves to its due time (never back).
local function fire(self, e)
  local t = e.timer
  t.entry = nil
  if t.referenced then self.active = self.active - 1 end
  if e.due > self.t then self.t = e.due end
  -- the heap may hold e still when it was found by the scan in peek
  if self.heap[1] == e then heap_pop(self.heap) end
  e.cb()
end

-- ---- moving time ----

-- Let every ready task run until none is. Inside a task this task yields
-- (sleep(0) queues it behind all the others); outside, the queue is drained.
local function settle()
  if not sched.running() then return sched.run_pending() end
  repeat sched.sleep(0) until sched.quiescent()
end

local function run_to(self, target, referenced_only, limit)
  local fired = 0
  settle()
  while true do
    -- the next referenced timer bounds the run; unreferenced ones due
    -- before it fire on the way
    local e = peek(self, referenced_only)
    if e and referenced_only then e = peek(self, false) end
    if not e or e.due > target then break end
    fired = fired + 1
    if fired > limit then
      check.raise(("lurl.testing.clock: more than %d timers fired without getting idle"):format(limit))
    end
    fire(self, e)
    settle()
  end
  if target ~= math.huge and target > self.t then self.t = target end
  settle()
  return fired
end

local LIMIT = 1000000

-- advance(seconds): move time forward, firing the timers due on the way in
-- order and letting tasks run after each. Returns how many fired.
function Clock:advance(secs)
  check.seconds("advance", "#1", check.arg("advance", "#1", secs, "number"))
  if self.closed then check.raise("the clock is closed") end
  return run_to(self, self.t + secs, false, LIMIT)
end

-- run_until_idle([limit]): fire timers, each at its time, until no
-- referenced timer is left and no task is ready; returns the seconds that
-- passed. More than limit (1e6) firings raise: something re-arms forever.
function Clock:run_until_idle(limit)
  if self.closed then check.raise("the clock is closed") end
  local t0 = self.t
  run_to(self, math.huge, true, limit or LIMIT)
  return self.t - t0
end

function Clock:now() return self.t end

-- Seconds since the clock was made.
function Clock:elapsed() return self.t - self.start end

-- Back to real time. Timers still pending move onto real timers with the
-- virtual time they had left, so nothing waiting on them is stranded.
function Clock:close()
  if self.closed then return end
  self.closed = true
  sched.use_clock(nil)
  if self.jumper then self.jumper:close() end
  for _, e in ipairs(self.heap) do
    if live(e) then
      local t, real = e.timer, core.timer()
      t.entry, t.real = nil, real
      if not t.referenced then real:ref(false) end
      -- libuv timers take under 1e9 s; a guard set beyond that never fires
      real:start(math.min(math.max(0, e.due - self.t), 1e8), e.cb)
    end
  end
  self.heap, self.active = {}, 0
end

-- Jumps made in a row before libuv gets a turn: real events (sockets, the
-- spec watchdog) still come through while a script runs in virtual time.
local BURST = 1000

-- The hook sched calls when no task is ready: jump to the next referenced
-- timer at once (a burst at a time), or arm the real timer that jumps after
-- quiet seconds.
local function on_quiet(self)
  if self.active == 0 then return false end
  if self.autojump == true and self.burst < BURST then
    if not peek(self, true) then return false end
    self.burst = self.burst + 1
    fire(self, peek(self, false))
    return true
  end
  self.burst = 0
  self.jumper:start(self.autojump == true and 0 or self.autojump, self.jump_cb)
  return false
end

-- lurl.testing.clock{ start = 0, wall = os.time(), autojump = false | true | seconds }
-- start: the virtual sched.now(); wall: the epoch seconds it stands for.
local OPTIONS = { start = "number", wall = "number", autojump = "any" }

function M.new(opts)
  opts = check.options("clock", "#1", opts or {}, OPTIONS)
  local aj = opts.autojump or false
  if type(aj) ~= "boolean" then check.seconds("clock", "'autojump'", aj) end
  local start = opts.start or 0
  local wall = opts.wall or os.time()
  local self = setmetatable({ t = start, start = start, wall = wall, heap = {}, seq = 0, active = 0, autojump = aj,
    closed = false }, mt)
  if aj then
    self.burst = 0
    self.jumper = core.timer()
    self.jump_cb = function()
      if peek(self, true) then fire(self, peek(self, false)) end
    end
  end
  sched.use_clock({
    now = function() return self.t end,
    wall = function() return self.wall + (self.t - self.start) end,
    timer = function() return setmetatable({ clock = self, referenced = true, is_closed = false }, timer_mt) end,
    on_quiet = aj and function() return on_quiet(self) end or function() return false end,
  })
  return self
end

return M
