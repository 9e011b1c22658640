-- lurl.testing.clock: virtual time for the scheduler, every timer and every
-- deadline. Times are checked exactly: under the clock nothing depends on
-- how fast the machine is.
local lurl = require "lurl"
local sched = require "lurl.sched"
local support = require "spec.support"
local testing = require "lurl.testing"

-- A task that sleeps each of delays in turn and notes in log the virtual
-- time it wakes at (as "name@time" when it has a name).
local function sleeper(log, delays, name)
  return lurl.spawn(function()
    for _, d in ipairs(delays) do
      lurl.sleep(d)
      log[#log + 1] = name and name .. "@" .. lurl.now() or lurl.now()
    end
  end)
end

describe("lurl.testing.clock", function()
  local clock, timers

  before_each(function() timers = {} end)

  after_each(function()
    for _, t in ipairs(timers) do t:close() end
    if clock then clock:close() end
    clock = nil
  end)

  -- A timer of the scheduler, closed after the test.
  local function timer()
    local t = sched.timer()
    timers[#timers + 1] = t
    return t
  end

  -- A timer due in `due` seconds that notes "name@time" in fired when it
  -- fires; unreferenced when ref is false.
  local function noting(fired, name, due, ref)
    local t = timer()
    if ref == false then t:ref(false) end
    t:start(due, function() fired[#fired + 1] = name .. "@" .. lurl.now() end)
    return t
  end

  describe("install and close", function()
    it("is reachable as lurl.testing", function()
      assert.are.equal(testing, lurl.testing)
    end)

    it("starts at 0 (or start =) and sched.now, lurl.now read it", function()
      clock = testing.clock()
      assert.are.equal(0, clock:now())
      assert.are.equal(0, clock:elapsed())
      assert.are.equal(0, lurl.now())
      assert.are.equal(0, sched.now())
      clock:close()
      clock = testing.clock { start = 100 }
      assert.are.equal(100, clock:now())
      assert.are.equal(100, lurl.now())
      assert.are.equal(0, clock:elapsed())
      clock:advance(2.5)
      assert.are.equal(102.5, clock:now())
      assert.are.equal(102.5, lurl.now())
      assert.are.equal(2.5, clock:elapsed())
    end)

    it("time stands still until told to move", function()
      clock = testing.clock()
      lurl.sleep(0)
      local spin = 0
      for _ = 1, 1000 do spin = spin + 1 end
      assert.are.equal(0, lurl.now())
    end)

    it("close() goes back to real time; closing twice is fine", function()
      clock = testing.clock { start = -5 }
      assert.are.equal(-5, lurl.now())
      clock:close()
      local real = sched.real_now()
      assert.is_true(math.abs(lurl.now() - real) < 1)
      assert.are.equal(sched.real_now, sched.now)
      assert.are.equal(os.time, sched.wall)
      clock:close()
      assert.matches(", closed", tostring(clock), 1, true)
    end)

    it("a closed clock refuses to move", function()
      clock = testing.clock()
      clock:close()
      support.raises("the clock is closed", clock.advance, clock, 1)
      support.raises("the clock is closed", clock.run_until_idle, clock)
    end)

    it("installing a second clock raises, and the first one stays", function()
      clock = testing.clock { start = 7 }
      support.raises("a virtual clock is already installed", testing.clock)
      assert.are.equal(7, lurl.now())
      clock:advance(1)
      assert.are.equal(8, lurl.now())
    end)

    it("a new clock may be installed after close", function()
      clock = testing.clock { start = 1 }
      clock:close()
      clock = testing.clock { start = 2 }
      assert.are.equal(2, lurl.now())
    end)

    it("tostring shows the time, the pending timers and the state", function()
      clock = testing.clock { start = 3 }
      assert.are.equal("lurl.testing.clock (t = 3, 0 timers)", tostring(clock))
      local t1, t2 = sched.timer(), sched.timer()
      t1:start(1, function() end)
      t2:start(2, function() end)
      assert.are.equal("lurl.testing.clock (t = 3, 2 timers)", tostring(clock))
      t2:stop()
      assert.are.equal("lurl.testing.clock (t = 3, 1 timers)", tostring(clock))
      t1:close()
      t2:close()
      clock:close()
      assert.are.equal("lurl.testing.clock (t = 3, 0 timers, closed)", tostring(clock))
    end)

    it("bad options raise argument errors naming the option", function()
      local cases = {
        { "yes", "bad argument #1 to 'clock' (options table expected, got string)" },
        { { autojump = "yes" }, "bad argument 'autojump' to 'clock' (number of seconds >= 0 expected, got yes)" },
        { { autojump = -1 }, "bad argument 'autojump' to 'clock' (number of seconds >= 0 expected, got -1)" },
        { { start = "0" }, "bad argument 'start' to 'clock' (number expected, got string)" },
        { { wall = "now" }, "bad argument 'wall' to 'clock' (number expected, got string)" },
        { { atuojump = true }, "bad argument #1 to 'clock' (unknown option 'atuojump' (did you mean 'autojump'?))" },
      }
      for _, case in ipairs(cases) do support.raises(case[2], testing.clock, case[1]) end
      -- none of them was installed
      clock = testing.clock()
    end)

    it("advance needs seconds >= 0", function()
      clock = testing.clock()
      for _, v in ipairs { -1, "1", 0 / 0 } do
        support.raises("bad argument #1 to 'advance' (number", clock.advance, clock, v)
      end
      assert.has_error(function() clock:advance() end)
      assert.are.equal(0, clock:now())
    end)

    it("a virtual timer needs seconds >= 0 too", function()
      clock = testing.clock()
      local t = sched.timer()
      support.raises("bad argument #1 to 'start' (number of seconds >= 0 expected, got -1)", t.start, t, -1,
        function() end)
      t:close()
      assert.is_true(t:closed())
    end)
  end)

  describe("advance", function()
    -- A task that sleeps 1 then 2; each step { seconds, timers fired, log }
    -- advances the clock and checks what fired; the task is done at t = now.
    for _, case in ipairs {
      { "fires timers in due order, letting tasks run between: each sees its exact time",
        { { 0.5, 0, {} }, { 0.5, 1, { 1 } }, { 5, 1, { 1, 3 } } }, 6 },
      { "a task that sleeps 1 then 2 sees t = 1 and t = 3 within one advance", { { 10, 2, { 1, 3 } } }, 10 },
    } do
      it(case[1], function()
        clock = testing.clock()
        local log = {}
        local task = sleeper(log, { 1, 2 })
        for _, step in ipairs(case[2]) do
          assert.are.equal(step[2], clock:advance(step[1]))
          assert.are.same(step[3], log)
        end
        assert.are.equal(case[3], clock:now())
        assert.is_true(task:done())
      end)
    end

    it("a timer due exactly at the target fires", function()
      clock = testing.clock()
      local log = {}
      sleeper(log, { 2 })
      clock:advance(2)
      assert.are.same({ 2 }, log)
    end)

    it("several tasks interleave by their times", function()
      clock = testing.clock()
      local log = {}
      sleeper(log, { 1, 1, 1 }, "a")
      sleeper(log, { 1.5, 1 }, "b")
      sleeper(log, { 0.25 }, "c")
      clock:advance(10)
      assert.are.same({ "c@0.25", "a@1", "b@1.5", "a@2", "b@2.5", "a@3" }, log)
    end)

    it("timers due at the same time fire in the order they were started", function()
      clock = testing.clock()
      local order = {}
      for i = 1, 6 do lurl.spawn(function() lurl.sleep(1); order[#order + 1] = i end) end
      clock:advance(1)
      assert.are.same({ 1, 2, 3, 4, 5, 6 }, order)
      -- started at different times, due at the same one: start order still
      local fired = {}
      local a, b = timer(), timer()
      a:start(2, function() fired[#fired + 1] = "a" end)
      clock:advance(1)
      b:start(1, function() fired[#fired + 1] = "b" end)
      clock:advance(1)
      assert.are.same({ "a", "b" }, fired)
    end)

    it("fires many timers in (due, start) order", function()
      clock = testing.clock()
      math.randomseed(7)
      local fired, want = {}, {}
      for i = 1, 200 do
        local due = math.random(0, 20) / 4
        timer():start(due, function() fired[#fired + 1] = i end)
        want[i] = { due = due, i = i }
      end
      table.sort(want, function(x, y) return x.due < y.due or (x.due == y.due and x.i < y.i) end)
      assert.are.equal(200, clock:advance(5))
      for k, w in ipairs(want) do want[k] = w.i end
      assert.are.same(want, fired)
    end)

    it("a stopped timer does not fire; a restarted one fires at its new time only", function()
      clock = testing.clock()
      local fired = {}
      local t, u = noting(fired, "t", 1), noting(fired, "u", 1)
      u:stop()
      t:start(3, function() fired[#fired + 1] = "t'@" .. lurl.now() end)
      assert.are.equal(1, clock:advance(5))
      assert.are.same({ "t'@3" }, fired)
    end)

    it("advance(0) lets ready tasks run without moving time", function()
      clock = testing.clock()
      local ran = false
      lurl.spawn(function() ran = true end)
      assert.are.equal(0, clock:advance(0))
      assert.is_true(ran)
      assert.are.equal(0, clock:now())
    end)

    it("joins and wait_for time out at their exact virtual time", function()
      clock = testing.clock()
      local forever = lurl.spawn(function() lurl.sleep(100) end)
      local out = {}
      local waiter = lurl.spawn(function()
        local _, err = forever:join(2)
        out.join = { err.kind, lurl.now() }
        local r, werr = lurl.wait_for(1.5, lurl.sleep, 50)
        out.wait_for = { r, werr.kind, lurl.now() }
      end)
      clock:advance(10)
      assert.are.same({ "TimeoutError", 2 }, out.join)
      assert.are.same({ nil, "TimeoutError", 3.5 }, out.wait_for)
      assert.is_true(waiter:done())
      forever:cancel()
      clock:advance(0)
      assert.are.equal("cancelled", forever.state)
    end)
  end)

  describe("run_until_idle", function()
    it("fires every timer at its time and returns the seconds that passed", function()
      clock = testing.clock { start = 10 }
      local log = {}
      sleeper(log, { 3 })
      sleeper(log, { 1, 6 })
      assert.are.equal(7, clock:run_until_idle())
      assert.are.same({ 11, 13, 17 }, log)
      assert.are.equal(17, clock:now())
    end)

    it("returns 0 when nothing is pending, and again after that", function()
      clock = testing.clock()
      assert.are.equal(0, clock:run_until_idle())
      sleeper({}, { 1 })
      assert.are.equal(1, clock:run_until_idle())
      assert.are.equal(0, clock:run_until_idle())
      assert.are.equal(1, clock:now())
    end)

    -- Under a new clock, an unreferenced timer "sweeper" due in `due`
    -- seconds and a referenced one "ref" due in 2: what fired.
    local function sweeper_and_ref(due)
      clock = testing.clock()
      local fired = {}
      noting(fired, "sweeper", due, false)
      noting(fired, "ref", 2)
      return fired
    end

    it("ignores unreferenced timers, which still fire when time passes them", function()
      local fired = sweeper_and_ref(5)
      assert.are.equal("lurl.testing.clock (t = 0, 1 timers)", tostring(clock))
      assert.are.equal(2, clock:run_until_idle())
      assert.are.same({ "ref@2" }, fired)
      assert.are.equal(0, clock:run_until_idle())
      clock:advance(3)
      assert.are.same({ "ref@2", "sweeper@5" }, fired)
    end)

    it("fires the unreferenced timers that time passes on the way", function()
      local fired = sweeper_and_ref(1)
      assert.are.equal(2, clock:run_until_idle())
      assert.are.same({ "sweeper@1", "ref@2" }, fired)
    end)

    it("a timer switched to unreferenced while pending is no longer waited for", function()
      clock = testing.clock()
      local fired = {}
      local t = noting(fired, "t", 4)
      t:ref(false)
      assert.are.equal(0, clock:run_until_idle())
      assert.are.same({}, fired)
      t:ref(true)
      assert.are.equal(4, clock:run_until_idle())
      assert.are.same({ "t@4" }, fired)
    end)

    it("raises after `limit` firings when a timer re-arms forever", function()
      clock = testing.clock()
      local t, n = sched.timer(), 0
      local function again()
        n = n + 1
        t:start(1, again)
      end
      t:start(1, again)
      local ok, err = pcall(clock.run_until_idle, clock, 50)
      assert.is_false(ok)
      assert.matches("more than 50 timers fired without getting idle", err, 1, true)
      assert.are.equal(50, n)
      t:close()
      assert.are.equal(0, clock:run_until_idle())
    end)
  end)

  describe("autojump", function()
    it("= true: a blocking sleep in the spec returns at once, at the exact time", function()
      clock = testing.clock { autojump = true }
      local real0 = sched.real_now()
      lurl.sleep(10)
      assert.are.equal(10, clock:now())
      lurl.sleep(0.25)
      lurl.sleep(0.25)
      assert.are.equal(10.5, lurl.now())
      assert.is_true(sched.real_now() - real0 < 5)
    end)

    it("= true: concurrent tasks each wake at their time", function()
      clock = testing.clock { autojump = true }
      local order = {}
      local function nap(d) return function() lurl.sleep(d); order[#order + 1] = lurl.now(); return d end end
      assert.are.same({ 3, 1, 2 }, { lurl.gather(nap(3), nap(1), nap(2)) })
      assert.are.same({ 1, 2, 3 }, order)
      assert.are.equal(3, clock:now())
    end)

    it("= true: a 10-step exponential timeline is exact", function()
      clock = testing.clock { autojump = true }
      local times = {}
      for i = 0, 9 do
        lurl.sleep(0.1 * 2 ^ i)
        times[#times + 1] = lurl.now()
      end
      local want, t = {}, 0
      for i = 0, 9 do
        t = t + 0.1 * 2 ^ i
        want[#want + 1] = t
      end
      assert.are.same(want, times)
      assert.is_true(math.abs(clock:now() - 102.3) < 1e-9)
    end)

    it("= seconds: jumps only after that much real quiet, so real sockets get their answers", function()
      local server = support.server {
        ["/slow"] = function() return { delay = 30, body = "late" } end,
        ["/fast"] = function() return "fast" end,
      }
      local s = support.session(server)
      local ok, e = pcall(function()
        local real0 = sched.real_now()
        clock = testing.clock { autojump = 0.2 }
        -- the route's delay is a virtual sleep: the clock jumps over it
        local resp = assert(s:get("slow", { timeout = 60 }))
        assert.are.equal("late", resp:read())
        assert.are.equal(30, clock:now())
        -- the server read the request at 0, before its delay
        assert.are.equal(0, server.received[1].at)
        -- while the real socket answers, no jump fires the 1 s timeout
        local t0 = clock:now()
        assert.are.equal("fast", assert(s:get("fast", { timeout = 1 })):read())
        assert.are.equal(t0, clock:now())
        -- a virtual sleep in the spec jumps too
        lurl.sleep(100)
        assert.are.equal(130, clock:now())
        assert.is_true(sched.real_now() - real0 < 10, "took " .. (sched.real_now() - real0))
      end)
      s:close()
      server:close()
      if not ok then error(e, 0) end
    end)

    it("= true: fires the unreferenced timers that a jump passes", function()
      clock = testing.clock { autojump = true }
      local fired = {}
      noting(fired, "sweeper", 1, false)
      lurl.sleep(2)
      fired[#fired + 1] = "slept@" .. lurl.now()
      assert.are.same({ "sweeper@1", "slept@2" }, fired)
    end)

    it("= 0 is accepted (a jump as soon as the loop is quiet)", function()
      clock = testing.clock { autojump = 0 }
      lurl.sleep(5)
      assert.are.equal(5, clock:now())
    end)
  end)

  describe("deadlines and timeouts", function()
    local mock, s

    before_each(function()
      mock = testing.mock()
      mock:on("GET", "http://api.test/hang", { error = "hang" })
      mock:on("GET", "http://api.test/drip", { body = "abcdef", drip = { size = 1, interval = 2 } })
      s = mock:session()
    end)

    after_each(function() s:close() end)

    it("a request's total timeout fires at exactly t = 3 (autojump)", function()
      clock = testing.clock { autojump = true }
      support.failed("TimeoutError", 3, s:get("http://api.test/hang", { timeout = 3 }))
    end)

    it("a request's total timeout fires at exactly t = 3 (advance)", function()
      clock = testing.clock()
      local task = lurl.spawn(function() return s:get("http://api.test/hang", { timeout = 3 }) end)
      clock:advance(2.999)
      assert.is_false(task:done())
      clock:advance(0.001)
      assert.is_true(task:done())
      support.failed("TimeoutError", 3, task:join())
    end)

    it("sock_read fires at exactly its limit after the last byte", function()
      clock = testing.clock { autojump = true }
      local resp, err = s:get("http://api.test/drip", { timeout = lurl.timeout { sock_read = 1.5 } })
      -- the head and the first byte come at 0, the second would at 2
      support.failed("SocketTimeoutError", 1.5, resp, err)
    end)

    it("sock_read does not fire for gaps shorter than itself", function()
      clock = testing.clock { autojump = true }
      local resp = assert(s:get("http://api.test/drip", { timeout = lurl.timeout { sock_read = 2 } }))
      assert.are.equal("abcdef", resp:read())
      assert.are.equal(10, clock:now())
    end)
  end)

  describe("wall", function()
    it("sched.wall() is wall = at start, and moves with the clock", function()
      clock = testing.clock { wall = 1000000000 }
      assert.are.equal(1000000000, sched.wall())
      clock:advance(90)
      assert.are.equal(1000000090, sched.wall())
    end)

    it("counts from start =", function()
      clock = testing.clock { start = 50, wall = 2000 }
      assert.are.equal(2000, sched.wall())
      clock:advance(1.5)
      assert.are.equal(2001.5, sched.wall())
    end)

    it("defaults to the real epoch time", function()
      local before = os.time()
      clock = testing.clock()
      local w = sched.wall()
      assert.is_true(w >= before and w <= os.time())
    end)
  end)

  describe("close with pending timers", function()
    it("moves them onto real timers: a task sleeping virtually 0.05 s still wakes", function()
      clock = testing.clock()
      local woke = false
      local task = lurl.spawn(function() lurl.sleep(0.05); woke = true end)
      clock:advance(0)
      clock:close()
      local real0 = sched.real_now()
      task:join(5)
      assert.is_true(woke)
      local dt = sched.real_now() - real0
      assert.is_true(dt >= 0.04 and dt < 5, "woke after " .. dt)
    end)

    it("a timer made under the clock and started after close runs on real time", function()
      clock = testing.clock()
      local t = sched.timer()
      clock:close()
      local fired = false
      t:start(0.02, function() fired = true end)
      assert.is_truthy(support.eventually(function() return fired end, 2))
      t:close()
    end)

    it("keeps the virtual time they had left", function()
      clock = testing.clock()
      local woke = {}
      local t1 = lurl.spawn(function() lurl.sleep(1.05); woke[#woke + 1] = "late" end)
      local t2 = lurl.spawn(function() lurl.sleep(1.01); woke[#woke + 1] = "early" end)
      clock:advance(1)
      clock:close()
      t1:join(5)
      t2:join(5)
      assert.are.same({ "early", "late" }, woke)
    end)
  end)
end)
