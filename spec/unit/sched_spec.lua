-- lurl's scheduler: tasks, cancellation, gather, sleep, wait_for, semaphore.
-- The spec body runs inside a lurl task, so blocking calls work directly.
local lurl = require "lurl"
local errors = require "lurl.errors"

-- The lurl binary, for the CLI checks: $LURL_BIN, else argv[0] of this
-- process (the entry of `arg` with the most negative index), else build/lurl.
local function lurl_bin()
  local env = os.getenv("LURL_BIN")
  if env and env ~= "" then return env end
  local lo
  for k in pairs(arg or {}) do
    if type(k) == "number" and k < 0 and (not lo or k < lo) then lo = k end
  end
  return lo and arg[lo] or "build/lurl"
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Run code with `lurl -e`; returns its combined output and exit status.
local function run_cli(code)
  local p = assert(io.popen(shell_quote(lurl_bin()) .. " -e " .. shell_quote(code) .. " 2>&1; echo rc=$?"))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out:gsub("rc=%d+%s*$", ""), rc
end

local function elapsed(fn, ...)
  local t0 = lurl.now()
  local res = { n = select("#", ...), fn(...) }
  return lurl.now() - t0, res
end

-- Poll (with small sleeps) until pred() holds or limit seconds pass.
local function eventually(pred, limit)
  local deadline = lurl.now() + (limit or 2)
  while not pred() do
    if lurl.now() > deadline then return false end
    lurl.sleep(0.005)
  end
  return true
end

local function is_cancelled(err) return errors.is(err, "CancelledError") end

describe("lurl scheduler", function()
  describe("spawn / join", function()
    it("join returns every result, nils included", function()
      local t = lurl.spawn(function(a, b) return a + b, nil, "x", nil end, 1, 2)
      local res = { n = 0 }
      local function collect(...) res = { n = select("#", ...), ... } end
      collect(t:join())
      assert.equal(4, res.n)
      assert.equal(3, res[1])
      assert.is_nil(res[2])
      assert.equal("x", res[3])
    end)

    it("a spawned task starts only when the spawner yields", function()
      local ran = false
      local t = lurl.spawn(function() ran = true end)
      assert.is_false(ran)
      assert.is_false(t:done())
      lurl.sleep(0)
      assert.is_true(ran)
      assert.is_true(t:done())
    end)

    it("join on a finished task returns at once, and again", function()
      local t = lurl.spawn(function() return "r" end)
      assert.equal("r", t:join())
      assert.equal("r", t:join())
    end)

    it("several tasks may join the same task", function()
      local target = lurl.spawn(function() lurl.sleep(0.02); return 7 end)
      local a = lurl.spawn(function() return target:join() end)
      local b = lurl.spawn(function() return target:join() end)
      assert.equal(7, a:join())
      assert.equal(7, b:join())
    end)

    it("join returns nil and the raised value when the task raised", function()
      local t = lurl.spawn(function() lurl.sleep(0); error("boom") end)
      local r, err = t:join()
      assert.is_nil(r)
      assert.matches("boom", err, 1, true)
      assert.equal("failed", t.state)
      assert.is_true(t:done())
    end)

    it("a raised error object is returned as is", function()
      local e = errors.new("ClientPayloadError", "truncated")
      local r, err = lurl.spawn(function() error(e) end):join()
      assert.is_nil(r)
      assert.equal(e, err)
    end)

    it("join with a timeout returns nil, TimeoutError and leaves the task running", function()
      local t = lurl.spawn(function() lurl.sleep(0.2); return "late" end)
      local secs, res = elapsed(t.join, t, 0.05)
      assert.is_nil(res[1])
      assert.is_true(errors.is(res[2], "TimeoutError"))
      assert.is_true(secs >= 0.05)
      assert.is_true(secs < 2.05)
      assert.is_false(t:done())
      assert.equal("late", t:join())
    end)

    it("spawn needs a function; a task cannot join itself", function()
      assert.has_error(function() lurl.spawn("f") end)
      local t
      t = lurl.spawn(function() return pcall(t.join, t) end)
      local ok, msg = t:join()
      assert.is_false(ok)
      assert.matches("cannot join itself", msg, 1, true)
    end)

    it("tostring shows the state", function()
      local t = lurl.spawn(function() end)
      assert.equal("lurl.task (running)", tostring(t))
      t:join()
      assert.equal("lurl.task (done)", tostring(t))
    end)
  end)

  describe("cancel", function()
    it("a sleeping task is resumed with CancelledError; join returns nil, err", function()
      local seen
      local t = lurl.spawn(function()
        local ok, err = pcall(lurl.sleep, 30)
        seen = err
        if not ok then error(err, 0) end
      end)
      lurl.sleep(0.01)
      assert.is_true(t:cancel())
      local secs, res = elapsed(t.join, t)
      assert.is_true(secs < 2)
      assert.is_nil(res[1])
      assert.is_true(res[2]:is("CancelledError"))
      assert.is_true(is_cancelled(seen))
      assert.equal("cancelled", t.state)
    end)

    it("a task waiting on a join is cancelled, the joined task is not", function()
      local inner = lurl.spawn(function() lurl.sleep(0.1); return "inner" end)
      local outer = lurl.spawn(function() return inner:join() end)
      lurl.sleep(0.01)
      outer:cancel()
      local r, err = outer:join()
      assert.is_nil(r)
      assert.is_true(err:is("CancelledError"))
      assert.equal("inner", inner:join())
    end)

    it("a task waiting on a semaphore is cancelled and leaves the queue", function()
      local sem = lurl.semaphore(0)
      local t = lurl.spawn(function() return sem:acquire() end)
      lurl.sleep(0.01)
      t:cancel()
      local r, err = t:join()
      assert.is_nil(r)
      assert.is_true(err:is("CancelledError"))
      assert.equal(0, #sem.waiters)
      sem:release()
      assert.is_true(sem:acquire(0))
    end)

    it("cancel on a finished task returns false", function()
      local t = lurl.spawn(function() return 1 end)
      t:join()
      assert.is_false(t:cancel())
      assert.equal(1, t:join())
    end)

    it("a cancelled task that is never joined is not a failure", function()
      local out, rc = run_cli([[
        local lurl = require "lurl"
        local t = lurl.spawn(function() lurl.sleep(30) end)
        lurl.sleep(0.01)
        t:cancel()
      ]])
      assert.equal(0, rc, out)
      assert.is_nil(out:find("never joined", 1, true))
    end)

    it("a task cancelled before it first runs does not run", function()
      local ran = false
      local t = lurl.spawn(function() ran = true; return 1 end)
      assert.is_true(t:cancel())
      local r, err = t:join()
      assert.is_nil(r)
      assert.is_true(is_cancelled(err))
      assert.is_false(ran)
    end)
  end)

  describe("gather", function()
    it("returns the first result of each function, in argument order", function()
      local a, b, c = lurl.gather(
        function() lurl.sleep(0.03); return "a", "ignored" end,
        function() return "b" end,
        function() lurl.sleep(0.01); return "c" end)
      assert.equal("a", a)
      assert.equal("b", b)
      assert.equal("c", c)
    end)

    it("keeps nil results in place", function()
      local n = select("#", lurl.gather(function() return nil end, function() return 2 end))
      assert.equal(2, n)
      local x, y = lurl.gather(function() return nil end, function() return 2 end)
      assert.is_nil(x)
      assert.equal(2, y)
    end)

    it("runs the functions concurrently", function()
      local log = {}
      local function worker(name)
        return function()
          log[#log + 1] = name .. "1"
          lurl.sleep(0)
          log[#log + 1] = name .. "2"
          return name
        end
      end
      lurl.gather(worker("a"), worker("b"))
      assert.same({ "a1", "b1", "a2", "b2" }, log)
    end)

    it("with no functions returns nothing", function()
      assert.equal(0, select("#", lurl.gather()))
    end)

    it("needs functions", function()
      assert.has_error(function() lurl.gather(function() end, 42) end)
    end)

    it("a raising function re-raises its error and cancels the later ones", function()
      local finished, cancelled = false, false
      local secs, res = elapsed(pcall, lurl.gather,
        function() lurl.sleep(0.01); error("first failed") end,
        function()
          local ok, err = pcall(lurl.sleep, 5)
          if not ok then cancelled = is_cancelled(err); error(err, 0) end
          finished = true
        end)
      assert.is_false(res[1])
      assert.matches("first failed", res[2], 1, true)
      assert.is_true(secs < 2)
      assert.is_true(eventually(function() return cancelled end))
      assert.is_false(finished)
    end)

    it("a raising function cancels the earlier ones too, without waiting for them", function()
      local finished, cancelled = false, false
      local secs, res = elapsed(pcall, lurl.gather,
        function()
          local ok, err = pcall(lurl.sleep, 5)
          if not ok then cancelled = is_cancelled(err); error(err, 0) end
          finished = true
        end,
        function() lurl.sleep(0.01); error("second failed") end)
      assert.is_false(res[1])
      assert.matches("second failed", res[2], 1, true)
      assert.is_true(secs < 2)
      assert.is_true(eventually(function() return cancelled end))
      assert.is_false(finished)
    end)

    it("an error object is re-raised as is", function()
      local e = errors.new("TooManyRedirects", "10")
      local ok, err = pcall(lurl.gather, function() error(e) end)
      assert.is_false(ok)
      assert.equal(e, err)
    end)

    it("cancelling the task that gathers cancels the functions", function()
      local cancelled = 0
      local function sleeper()
        local ok, err = pcall(lurl.sleep, 5)
        if not ok and is_cancelled(err) then cancelled = cancelled + 1 end
        if not ok then error(err, 0) end
      end
      local t = lurl.spawn(function() return lurl.gather(sleeper, sleeper) end)
      lurl.sleep(0.01)
      t:cancel()
      local r, err = t:join()
      assert.is_nil(r)
      assert.is_true(is_cancelled(err))
      assert.is_true(eventually(function() return cancelled == 2 end))
    end)

    it("a handled gather error is not reported as an un-joined failure", function()
      local out, rc = run_cli([[
        local lurl = require "lurl"
        local ok = pcall(lurl.gather, function() error("a") end, function() error("b") end)
        assert(not ok)
      ]])
      assert.equal(0, rc, out)
      assert.is_nil(out:find("never joined", 1, true), out)
    end)
  end)

  describe("sleep", function()
    it("is never early and not much late", function()
      for _, secs in ipairs { 0.001, 0.01, 0.05, 0.2 } do
        local took = elapsed(lurl.sleep, secs)
        assert.is_true(took >= secs, ("sleep(%g) took %g"):format(secs, took))
        assert.is_true(took < secs + 2, ("sleep(%g) took %g"):format(secs, took))
      end
    end)

    it("is never early while other timers keep the loop busy", function()
      local stop = false
      local noise = {}
      for k = 1, 3 do
        noise[k] = lurl.spawn(function() while not stop do lurl.sleep(0.0007 * k) end end)
      end
      local early = {}
      for i = 1, 200 do
        local secs = 0.002 + (i % 7) * 0.0013
        local took = elapsed(lurl.sleep, secs)
        if took < secs then early[#early + 1] = ("%g < %g"):format(took, secs) end
      end
      stop = true
      for _, t in ipairs(noise) do t:join() end
      assert.same({}, early)
    end)

    it("sleep(0) lets the other ready tasks run", function()
      local ran = false
      lurl.spawn(function() ran = true end)
      lurl.sleep(0)
      assert.is_true(ran)
    end)

    it("sleeping tasks wake in deadline order", function()
      local log = {}
      local tasks = {}
      for _, d in ipairs { 0.06, 0.02, 0.04 } do
        tasks[#tasks + 1] = lurl.spawn(function() lurl.sleep(d); log[#log + 1] = d end)
      end
      for _, t in ipairs(tasks) do t:join() end
      assert.same({ 0.02, 0.04, 0.06 }, log)
    end)

    it("rejects negative, NaN and non-number durations", function()
      assert.has_error(function() lurl.sleep(-1) end)
      assert.has_error(function() lurl.sleep(0 / 0) end)
      assert.has_error(function() lurl.sleep("1") end)
      assert.has_error(function() lurl.sleep() end)
    end)

    it("raises inside a plain coroutine", function()
      local co = coroutine.create(function() lurl.sleep(0) end)
      local ok, msg = coroutine.resume(co)
      assert.is_false(ok)
      assert.matches("not a lurl task", msg, 1, true)
    end)
  end)

  describe("later", function()
    local sched = require "lurl.sched"

    it("runs once the ready tasks have run, in order, before what it wakes", function()
      local log = {}
      local waiter = lurl.spawn(function()
        local task, seq = sched.prepare()
        sched.later(function(t) log[#log + 1] = "later 1"; sched.wake(t, seq, "woken") end, task)
        local got = sched.park(task)
        log[#log + 1] = got
      end)
      lurl.spawn(function() log[#log + 1] = "task"; sched.later(function(x) log[#log + 1] = x end, "later 2") end)
      waiter:join()
      assert.same({ "task", "later 1", "later 2", "woken" }, log)
    end)
  end)

  describe("wait_for", function()
    it("passes the results through when the function is quick", function()
      local a, b, c = lurl.wait_for(2, function(x, y) lurl.sleep(0.01); return x, y, "z" end, "x", "y")
      assert.equal("x", a)
      assert.equal("y", b)
      assert.equal("z", c)
    end)

    it("returns nil, TimeoutError and cancels the inner task when too slow", function()
      local inner_err, finished
      local secs, res = elapsed(lurl.wait_for, 0.05, function()
        local ok, err = pcall(lurl.sleep, 5)
        if not ok then inner_err = err; error(err, 0) end
        finished = true
      end)
      assert.is_nil(res[1])
      assert.is_true(errors.is(res[2], "TimeoutError"))
      assert.equal(0.05, res[2].timeout)
      assert.is_true(secs >= 0.05)
      assert.is_true(secs < 2.05)
      assert.is_true(eventually(function() return inner_err ~= nil end))
      assert.is_true(is_cancelled(inner_err))
      assert.is_nil(finished)
    end)

    it("the timed-out inner task is not reported as a failure", function()
      local out, rc = run_cli([[
        local lurl = require "lurl"
        local r, err = lurl.wait_for(0.01, function() lurl.sleep(5) end)
        assert(r == nil and err:is("TimeoutError"))
      ]])
      assert.equal(0, rc, out)
      assert.is_nil(out:find("never joined", 1, true), out)
    end)

    it("re-raises an error of the function", function()
      local ok, msg = pcall(lurl.wait_for, 1, function() error("inner boom") end)
      assert.is_false(ok)
      assert.matches("inner boom", msg, 1, true)
    end)

    it("validates its arguments", function()
      assert.has_error(function() lurl.wait_for(-1, function() end) end)
      assert.has_error(function() lurl.wait_for("1", function() end) end)
      assert.has_error(function() lurl.wait_for(1, "f") end)
    end)

    it("cancelling the waiter cancels the inner task", function()
      local inner_err
      local t = lurl.spawn(function()
        return lurl.wait_for(5, function()
          local ok, err = pcall(lurl.sleep, 5)
          inner_err = err
          if not ok then error(err, 0) end
        end)
      end)
      lurl.sleep(0.01)
      t:cancel()
      local r, err = t:join()
      assert.is_nil(r)
      assert.is_true(is_cancelled(err))
      assert.is_true(eventually(function() return inner_err ~= nil end))
      assert.is_true(is_cancelled(inner_err))
    end)
  end)

  describe("semaphore", function()
    it("acquire takes free slots at once, then waits", function()
      local sem = lurl.semaphore(2)
      assert.is_true(sem:acquire())
      assert.is_true(sem:acquire())
      assert.equal(0, sem.value)
      local r, err = sem:acquire(0.01)
      assert.is_nil(r)
      assert.is_true(err:is("TimeoutError"))
      sem:release()
      assert.is_true(sem:acquire(0))
    end)

    it("grants waiters in FIFO order", function()
      local sem = lurl.semaphore(1)
      sem:acquire()
      local log = {}
      local tasks = {}
      for i = 1, 4 do
        tasks[i] = lurl.spawn(function()
          sem:acquire()
          log[#log + 1] = i
          lurl.sleep(0)
          sem:release()
        end)
        lurl.sleep(0) -- queue them in order
      end
      assert.equal(4, #sem.waiters)
      sem:release()
      for _, t in ipairs(tasks) do t:join() end
      assert.same({ 1, 2, 3, 4 }, log)
      assert.equal(1, sem.value)
    end)

    it("a newcomer does not overtake a granted waiter", function()
      local sem = lurl.semaphore(1)
      sem:acquire()
      local got = {}
      local w = lurl.spawn(function() sem:acquire(); got[#got + 1] = "waiter" end)
      lurl.sleep(0)
      sem:release()             -- handed to w, which has not run yet
      local r = sem:acquire(0.01)
      assert.is_nil(r)
      w:join()
      assert.same({ "waiter" }, got)
    end)

    it("acquire(timeout) returns nil, TimeoutError after the timeout and leaves the queue", function()
      local sem = lurl.semaphore(0)
      local secs, res = elapsed(sem.acquire, sem, 0.05)
      assert.is_nil(res[1])
      assert.is_true(errors.is(res[2], "TimeoutError"))
      assert.is_true(secs >= 0.05)
      assert.is_true(secs < 2.05)
      assert.equal(0, #sem.waiters)
      sem:release()
      assert.equal(1, sem.value)
    end)

    it("with(fn) returns fn's results and releases the slot", function()
      local sem = lurl.semaphore(1)
      local a, b = sem:with(function(x) assert.equal(0, sem.value); return x, "b" end, "a")
      assert.equal("a", a)
      assert.equal("b", b)
      assert.equal(1, sem.value)
    end)

    it("with(fn) releases the slot when fn raises, and re-raises", function()
      local sem = lurl.semaphore(1)
      local e = errors.new("ClientError", "x")
      local ok, err = pcall(sem.with, sem, function() lurl.sleep(0); error(e) end)
      assert.is_false(ok)
      assert.equal(e, err)
      assert.equal(1, sem.value)
      assert.is_true(sem:acquire(0))
    end)

    it("with(fn) releases the slot when the holder is cancelled", function()
      local sem = lurl.semaphore(1)
      local t = lurl.spawn(function() sem:with(lurl.sleep, 5) end)
      lurl.sleep(0.01)
      assert.equal(0, sem.value)
      t:cancel()
      local _, err = t:join()
      assert.is_true(is_cancelled(err))
      assert.equal(1, sem.value)
    end)

    it("a waiter cancelled after being granted passes the slot on", function()
      local sem = lurl.semaphore(1)
      sem:acquire()
      local log = {}
      local b = lurl.spawn(function() sem:acquire(); log[#log + 1] = "b"; sem:release() end)
      local c = lurl.spawn(function() sem:acquire(); log[#log + 1] = "c"; sem:release() end)
      lurl.sleep(0)
      assert.equal(2, #sem.waiters)
      sem:release()             -- granted to b, which has not resumed yet
      assert.is_true(b:cancel())
      local r, err = b:join()
      assert.is_nil(r)
      assert.is_true(is_cancelled(err))
      c:join()
      assert.same({ "c" }, log)
      assert.equal(1, sem.value)
      assert.equal(0, #sem.waiters)
    end)

    it("validates n", function()
      assert.has_error(function() lurl.semaphore(-1) end)
      assert.has_error(function() lurl.semaphore(1.5) end)
      assert.has_error(function() lurl.semaphore("2") end)
      assert.equal("lurl.semaphore (3 free, 0 waiting)", tostring(lurl.semaphore(3)))
    end)
  end)

  describe("now", function()
    it("is monotonic", function()
      local prev = lurl.now()
      for _ = 1, 10000 do
        local t = lurl.now()
        assert(t >= prev, "lurl.now went backwards")
        prev = t
      end
    end)

    it("advances across a sleep by at least the sleep", function()
      local t0 = lurl.now()
      lurl.sleep(0.02)
      local d = lurl.now() - t0
      assert.is_true(d >= 0.02)
      assert.is_true(d < 2.02)
    end)
  end)

  describe("the CLI", function()
    it("reports an un-joined failing task on stderr and exits 1", function()
      local out, rc = run_cli([[
        local lurl = require "lurl"
        lurl.spawn(function() error("unjoined-boom") end)
      ]])
      assert.equal(1, rc, out)
      assert.matches("never joined", out, 1, true)
      assert.matches("unjoined-boom", out, 1, true)
    end)

    it("reports a failing task even when its handle was collected", function()
      local out, rc = run_cli([[
        local lurl = require "lurl"
        lurl.spawn(function() error("collected-boom") end)
        lurl.sleep(0.01)
        collectgarbage(); collectgarbage()
      ]])
      assert.equal(1, rc, out)
      assert.matches("collected-boom", out, 1, true)
    end)

    it("a joined failing task is not reported", function()
      local out, rc = run_cli([[
        local lurl = require "lurl"
        local r, err = lurl.spawn(function() error("joined-boom") end):join()
        assert(r == nil and err:find("joined-boom", 1, true))
      ]])
      assert.equal(0, rc, out)
      assert.is_nil(out:find("never joined", 1, true), out)
    end)

    it("waits for spawned tasks before exiting", function()
      local out, rc = run_cli([[
        local lurl = require "lurl"
        lurl.spawn(function() lurl.sleep(0.05); io.write("late-task-done\n") end)
      ]])
      assert.equal(0, rc, out)
      assert.matches("late-task-done", out, 1, true)
    end)
  end)
end)
