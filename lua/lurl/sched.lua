-- The scheduler: tasks are coroutines on the runtime's libuv loop.
--
-- A blocking-looking call parks its task with `wait(arm, seconds)`: arm
-- starts the operation and hands it a `wake` function that the libuv callback
-- calls with the results. Each wait has its own wake, so a late callback of
-- an abandoned operation (timed out, cancelled) is ignored.
--
-- Resumes never nest: a wake only queues the task, and the runtime drains the
-- queue after every entry from C (a libuv callback or lurl_call).
local core = require "lurl.core"
local errors = require "lurl.errors"
local check = require "lurl.check"

local M = {}

local TIMEOUT = setmetatable({}, { __name = "lurl.sched.timeout", __tostring = function() return "timeout" end })
local CANCEL = setmetatable({}, { __name = "lurl.sched.cancel" })
M.TIMEOUT = TIMEOUT

local Task = {}
local task_mt = { __name = "lurl.task", __index = Task }
function task_mt.__tostring(t) return ("lurl.task (%s)"):format(t.state) end

local current = nil          -- the task whose coroutine is running
local ready, rhead, rtail = {}, 1, 0
local failed = {}            -- failed tasks nobody joined (yet)

local unpack, select, pack = unpack, select, function(...) return { n = select("#", ...), ... } end

local function report(task)
  io.stderr:write("lurl: task failed and was never joined: ", tostring(task.traceback), "\n")
end

local function finish(task, ok, res)
  if task.timer then task.timer:close(); task.timer = false end
  if ok then
    task.state, task.results = "done", res
  else
    local err = res[1]
    task.state, task.error, task.traceback = "failed", err, res[2]
    if errors.is(err, "CancelledError") then task.state = "cancelled" end
  end
  local joiners = task.joiners
  task.joiners = false
  if task.on_done then
    -- a task started from C: its host callback takes the outcome
    if ok then task.on_done(true, unpack(res, 1, res.n))
    else task.on_done(false, task.state == "cancelled" and tostring(task.error) or tostring(task.traceback)) end
  elseif task.state == "failed" and not (joiners and #joiners > 0) then
    failed[task] = true
  end
  if joiners then
    for i = 1, #joiners do joiners[i]() end
  end
end

-- xpcall handler: keep the raised value (it may be an error object) and the
-- traceback of where it was raised.
local function traceback(err)
  return { err, debug.traceback(tostring(err), 2), n = 2 }
end

-- The coroutine body: run fn protected so a failure keeps its traceback.
local function body(task, ...)
  if task.cancel_requested then -- cancelled before it ever ran
    return false, { errors.new("CancelledError", "task was cancelled"), "task was cancelled before it started", n = 2 }
  end
  local res = pack(xpcall(task.fn, traceback, ...))
  if res[1] then return true, pack(unpack(res, 2, res.n)) end
  return false, res[2]
end

local function step(task, ...)
  local prev = current
  current = task
  local ok, a, b = coroutine.resume(task.co, ...)
  current = prev
  if coroutine.status(task.co) == "dead" then
    if not ok then a, b = false, { a, debug.traceback(task.co, tostring(a)), n = 2 } end
    finish(task, a, b)
  end
end

-- The ready queue holds tasks; the values a task resumes with wait in its
-- fields r1..r4 (a wake carries at most four), so scheduling allocates
-- nothing. A task's first resume takes its start arguments instead.
local function run_ready()
  while rhead <= rtail do
    local task = ready[rhead]
    ready[rhead] = nil
    rhead = rhead + 1
    local args = task.start_args
    if args then
      task.start_args = false
      step(task, unpack(args, 1, args.n))
    else
      local a, b, c, d = task.r1, task.r2, task.r3, task.r4
      task.r1, task.r2, task.r3, task.r4 = false, false, false, false
      step(task, a, b, c, d)
    end
  end
  rhead, rtail = 1, 0
end

-- The runtime calls drain after every callback into Lua (core.set_drain):
-- resumes never nest, and a callback that wakes a task only queues it. A
-- drain started while one runs (a host's lurl_call from a done callback)
-- leaves the work to the running one.
local draining = false
local virtual = nil -- the installed virtual clock (lurl.testing.clock), or nil

-- Work left for when no task is ready (M.later): fn(arg) pairs, run in the
-- order given; what they wake runs after them.
local later_fn, later_arg, lhead, ltail = {}, {}, 1, 0

local function run_later()
  while lhead <= ltail do
    local fn, arg = later_fn[lhead], later_arg[lhead]
    later_fn[lhead], later_arg[lhead] = nil, nil
    lhead = lhead + 1
    fn(arg)
  end
  lhead, ltail = 1, 0
end

-- With a virtual clock that jumps by itself, time moves to its next timer
-- whenever no task is ready.
local function run_all()
  repeat
    run_ready()
    run_later()
  until rhead > rtail and not (virtual and virtual.on_quiet())
end

local function drain()
  if draining then return end
  draining = true
  local ok, err = pcall(run_all)
  draining = false
  if not ok then error(err, 0) end
end
core.set_drain(drain)

-- later(fn, arg): fn(arg) once every ready task has run and yielded, before
-- the loop polls again. A connection gathers what the tasks of one turn
-- want written into one write (one system call, not one a request).
function M.later(fn, arg)
  ltail = ltail + 1
  later_fn[ltail], later_arg[ltail] = fn, arg
end

-- Queue task to resume with the given values once the running task yields
-- or the current callback returns.
local function schedule(task, a, b, c, d)
  task.r1, task.r2, task.r3, task.r4 = a, b, c, d
  rtail = rtail + 1
  ready[rtail] = task
end

-- on_done(ok, ...) is set for tasks started from C (lurl_call).
--
-- Every field a task ever gets is here from the start, and one it is done
-- with is set to false, not nil: a field added later makes a table rehash,
-- which forgets the fields that are nil at that moment, and abandon and
-- r1..r4 come and go with every wait, so the table would rehash again and
-- again.
local function new_task(on_done, fn, ...)
  local task = setmetatable({ fn = fn, state = "running", seq = 0, on_done = on_done,
    co = coroutine.create(body), start_args = false, waiting = false, cancel_requested = false, abandon = false,
    r1 = false, r2 = false, r3 = false, r4 = false, timer = false, timer_clock = false, on_timer = false,
    joiners = false, results = false, error = false, traceback = false }, task_mt)
  task.start_args = pack(task, ...)
  rtail = rtail + 1
  ready[rtail] = task
  return task
end

-- The running task, or nil outside any task.
function M.running() return current end

-- The running task; raises when called outside one.
function M.current()
  if not current then check.raise("lurl: a blocking call needs a task (use lurl.spawn)") end
  return current
end

-- Parking, in three steps for hot paths that keep their waker state in
-- fields rather than closures (closures stop LuaJIT's trace compiler):
--   local task, seq = sched.prepare()    -- the running task, this wait's number
--   ...store task and seq where the completion callback finds them...
--   local ... = sched.park(task, seconds, abandon)
-- and the callback calls sched.wake(task, seq, ...). park returns wake's
-- values (up to four), or TIMEOUT after seconds; abandon(), if given, runs on timeout or
-- cancellation. A wake for an older wait (its seq is stale) does nothing.
function M.prepare()
  local task = current
  if not task then check.raise("lurl: a blocking call needs a task (use lurl.spawn)") end
  if task.cancel_requested then error(errors.new("CancelledError", "task was cancelled"), 0) end
  if coroutine.running() ~= task.co then
    check.raise("lurl: blocking call inside a coroutine that is not a lurl task")
  end
  local seq = task.seq + 1
  task.seq = seq
  task.waiting = true
  return task, seq
end

-- Resume task with the values if it still waits in wait number seq; returns
-- true when it did, false for a stale wake.
local function wake_task(task, seq, ...)
  if task.seq ~= seq or not task.waiting then return false end
  task.waiting = false
  schedule(task, ...)
  return true
end
M.wake = wake_task

-- Each task has one timer for its timed waits, made on its first one (and
-- made again when the clock changed between real and virtual).
local function new_timer(task)
  if task.timer then task.timer:close() end
  task.timer = M.timer()
  task.timer_clock = virtual
  task.on_timer = task.on_timer or function() wake_task(task, task.seq, TIMEOUT) end
end

function M.park(task, seconds, abandon)
  if seconds then
    if not task.timer or task.timer_clock ~= virtual then new_timer(task) end
    task.timer:start(seconds, task.on_timer)
  end
  task.abandon = abandon
  local first, b, c, d = coroutine.yield()
  task.abandon = false
  if seconds then task.timer:stop() end
  if (first == TIMEOUT or first == CANCEL) and abandon then abandon() end
  if first == CANCEL or task.cancel_requested then
    error(errors.new("CancelledError", "task was cancelled"), 0)
  end
  return first, b, c, d
end

-- Park the running task until its wake function is called, or until seconds
-- pass (then returns TIMEOUT). arm(wake) starts the operation and may return
-- a function that abandons it, called on timeout or cancellation.
function M.wait(arm, seconds)
  local task, seq = M.prepare()
  local abandon = arm(function(...) return wake_task(task, seq, ...) end)
  return M.park(task, seconds, abandon)
end

function M.spawn(fn, ...)
  check.func("spawn", "#1", fn)
  return new_task(nil, fn, ...)
end

-- Entry point of lurl_call: done(ok, ...) receives the outcome (nil: report
-- a failure like any task's).
M.host_spawn = new_task

function M.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    check.raise("bad argument #1 to 'sleep' (number of seconds >= 0 expected)")
  end
  if seconds == 0 then
    M.wait(function(wake) wake() end) -- queued behind every task that is ready
  else
    M.wait(function() end, seconds)
  end
end

-- ---- time ----

-- The clock every deadline, timing and policy reads, and the timers every
-- timed wait uses: the monotonic clock and libuv timers, or a virtual clock
-- installed by lurl.testing.clock (see there). Modules read sched.now() and
-- call sched.timer() at the time of use, so a change takes effect at once.
M.real_now = require "lurl.clock"
M.now = M.real_now
-- Wall-clock epoch seconds, for HTTP-dates (Retry-After)
M.wall = os.time

function M.timer()
  if virtual then return virtual.timer() end
  return core.timer()
end

-- use_clock(hooks | nil): hooks.now() reads the virtual time, hooks.wall()
-- the virtual wall clock (epoch seconds), hooks.timer()
-- makes a timer (start, stop, close, ref as core.timer's) and
-- hooks.on_quiet() runs when no task is ready (true: it woke something).
function M.use_clock(hooks)
  if hooks and virtual then check.raise("a virtual clock is already installed") end
  virtual = hooks
  M.now = hooks and hooks.now or M.real_now
  M.wall = hooks and hooks.wall or os.time
end

-- No task is ready to run.
function M.quiescent() return rhead > rtail end

-- Run the ready tasks now, from outside any task (a task yields instead).
function M.run_pending() drain() end

function M.unjoined_failures()
  local n = 0
  for task in pairs(failed) do
    report(task)
    failed[task] = nil
    n = n + 1
  end
  return n
end

-- ---- Task methods ----

function Task:done() return self.state ~= "running" end

local function outcome(task)
  failed[task] = nil
  if task.state == "done" then return unpack(task.results, 1, task.results.n) end
  return nil, task.error
end

-- Wait for the task; returns its results, or nil and its error (a raised
-- value, or a CancelledError).
function Task:join(seconds)
  if self.state ~= "running" then return outcome(self) end
  if self == current then check.raise("a task cannot join itself") end
  local r = M.wait(function(wake)
    self.joiners = self.joiners or {}
    local list = self.joiners
    list[#list + 1] = wake
    return function()
      for i = #list, 1, -1 do if list[i] == wake then table.remove(list, i) end end
    end
  end, seconds)
  if r == TIMEOUT then return nil, errors.new("TimeoutError", "join timed out") end
  return outcome(self)
end

-- Cancel the task: an operation it waits on is abandoned (connections it holds
-- are closed) and it is resumed with a CancelledError raised where it waits.
function Task:cancel()
  if self.state ~= "running" then return false end
  self.cancel_requested = true
  if self.waiting then
    self.waiting = false
    self.seq = self.seq + 1
    schedule(self, CANCEL)
  end
  return true
end

-- ---- combinators ----

-- Run the functions concurrently; return the first result of each, in order.
-- As soon as one raises, the others are cancelled and its error is raised
-- again; gather owns its children's outcomes, so none is reported unjoined.
-- gather(list) takes the functions in a list and returns the results in
-- one (any number: Lua cannot return more than a few thousand values).
local function gather(fns, n)
  for i = 1, n do
    if type(fns[i]) ~= "function" then
      check.raise(("bad argument #%d to 'gather' (function expected, got %s)"):format(i, type(fns[i])))
    end
  end
  local tasks, remaining, failure, wake_gatherer = {}, n, nil, nil
  local function child_done(task)
    remaining = remaining - 1
    if task.state ~= "done" and not failure then failure = task end
    if (failure or remaining == 0) and wake_gatherer then wake_gatherer() end
  end
  for i = 1, n do
    local task = new_task(nil, fns[i])
    task.joiners = { function() child_done(task) end }
    tasks[i] = task
  end
  local ok, err = true, nil
  if remaining > 0 and not failure then
    ok, err = pcall(M.wait, function(wake) wake_gatherer = wake end)
  end
  if not ok or failure then
    for _, t in ipairs(tasks) do t:cancel(); failed[t] = nil end
    error(ok and failure.error or err, 0)
  end
  local results = {}
  for i = 1, n do results[i] = tasks[i].results[1] end
  return results
end

function M.gather(...)
  local first, n = ..., select("#", ...)
  if n == 1 and type(first) == "table" then return gather(first, #first) end
  return unpack(gather({ ... }, n), 1, n)
end

-- Run fn(...) in a task; if it is not done within seconds, cancel it and
-- return nil, TimeoutError. Otherwise return its results.
function M.wait_for(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds < 0 then
    check.raise("bad argument #1 to 'wait_for' (number of seconds >= 0 expected)")
  end
  if type(fn) ~= "function" then check.raise("bad argument #2 to 'wait_for' (function expected)") end
  local task = new_task(nil, fn, ...)
  local ok, r = pcall(M.wait, function(wake)
    task.joiners = task.joiners or {}
    task.joiners[#task.joiners + 1] = wake
  end, seconds)
  if not ok then task:cancel(); error(r, 0) end
  if r == TIMEOUT then
    task:cancel()
    task.joiners = { function() failed[task] = nil end } -- its outcome is ours, not unjoined
    return nil, errors.new("TimeoutError", ("timed out after %g seconds"):format(seconds), { timeout = seconds })
  end
  if task.state == "failed" then failed[task] = nil; error(task.error, 0) end
  return outcome(task)
end

-- ---- semaphore ----

local Semaphore = {}
local sem_mt = { __name = "lurl.semaphore", __index = Semaphore }
function sem_mt.__tostring(s) return ("lurl.semaphore (%d free, %d waiting)"):format(s.value, #s.waiters) end

function M.semaphore(n)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    check.raise("bad argument #1 to 'semaphore' (integer >= 0 expected)")
  end
  return setmetatable({ value = n, waiters = {} }, sem_mt)
end

-- Take a slot, waiting in FIFO order. Returns true, or nil and TimeoutError.
function Semaphore:acquire(seconds)
  if self.value > 0 and #self.waiters == 0 then
    self.value = self.value - 1
    return true
  end
  local waiters = self.waiters
  local entry = {}
  local ok, r = pcall(M.wait, function(wake)
    entry.wake = wake
    waiters[#waiters + 1] = entry
    return function()
      for i = 1, #waiters do if waiters[i] == entry then table.remove(waiters, i); break end end
    end
  end, seconds)
  if not ok then
    -- cancelled after release() handed us the slot: pass it on
    if entry.granted then self:release() end
    error(r, 0)
  end
  if r == TIMEOUT then return nil, errors.new("TimeoutError", "semaphore acquire timed out") end
  return true
end

-- Give the slot to the first waiter still waiting, else back to the pool.
function Semaphore:release()
  local waiters = self.waiters
  while #waiters > 0 do
    local entry = table.remove(waiters, 1)
    if entry.wake(true) then entry.granted = true; return end
  end
  self.value = self.value + 1
end

-- Run fn(...) holding a slot; the slot is released even when fn raises.
function Semaphore:with(fn, ...)
  self:acquire()
  local res = pack(pcall(fn, ...))
  self:release()
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

return M
