-- lurl.rate_limit: exact spacing of concurrent calls (GCRA), bursts, keys,
-- waits the deadline or max_wait forbid, cancellation of a waiter. Times are
-- virtual (autojump): a call's time is when the mock received it.
local lurl = require "lurl"
local support = require "spec.support"

local A, B = "http://a.test/x", "http://b.test/x"

-- Start n GETs of u (u?i=1 .. u?i=n) at once, wait for them; returns the
-- results (status or error) in order.
local function burst_of(s, u, n, opts)
  local tasks = {}
  for i = 1, n do
    tasks[i] = lurl.spawn(function()
      local resp, err = s:get(u .. "?i=" .. i, opts)
      if not resp then return err end
      resp:release()
      return resp.status
    end)
  end
  local res = {}
  for i = 1, n do res[i] = tasks[i]:join() end
  return res
end

-- When each call of route came, and in which order (its ?i=).
local function timeline(route)
  local at, order = {}, {}
  for i, c in ipairs(route.calls) do
    at[i] = c.at
    order[i] = tonumber(c.url:match("i=(%d+)"))
  end
  return at, order
end

local assert_times = support.all_near

describe("rate_limit", function()
  local env = support.policy_env()
  local clock, mock
  before_each(function() clock, mock = env.setup() end)
  after_each(env.teardown)

  describe("spacing", function()
    it("spreads N calls made at once 1 / rate apart, in the order they came", function()
      local route = mock:on("GET", A, 200)
      local s = env.session(lurl.rate_limit { rate = 10 })
      assert.are.same({ 200, 200, 200, 200, 200 }, burst_of(s, A, 5))
      local at, order = timeline(route)
      assert_times({ 0, 0.1, 0.2, 0.3, 0.4 }, at)
      assert.are.same({ 1, 2, 3, 4, 5 }, order)
    end)

    it("lets the first `burst` calls go at once, then one per interval", function()
      local route = mock:on("GET", A, 200)
      local s = env.session(lurl.rate_limit { rate = 4, burst = 3 })
      burst_of(s, A, 6)
      assert_times({ 0, 0, 0, 0.25, 0.5, 0.75 }, (timeline(route)))
    end)

    it("refills the burst while idle", function()
      local route = mock:on("GET", A, 200)
      local s = env.session(lurl.rate_limit { rate = 10, burst = 2 })
      burst_of(s, A, 3)           -- 0, 0, 0.1
      clock:advance(0.15)         -- 0.25: one token back at 0.2, the second at 0.3
      burst_of(s, A, 3)
      clock:advance(5)
      burst_of(s, A, 2)
      assert_times({ 0, 0, 0.1, 0.25, 0.3, 0.4, 5.4, 5.4 }, (timeline(route)))
    end)

    it("keeps one limit per host", function()
      local ra, rb = mock:on("GET", A, 200), mock:on("GET", B, 200)
      local s = env.session(lurl.rate_limit { rate = 10 })
      local ta = lurl.spawn(burst_of, s, A, 3)
      local tb = lurl.spawn(burst_of, s, B, 3)
      ta:join()
      tb:join()
      assert_times({ 0, 0.1, 0.2 }, (timeline(ra)))
      assert_times({ 0, 0.1, 0.2 }, (timeline(rb)))
    end)

    it("shares one limit with per_host = false", function()
      local route = mock:on("*", { pattern = "^http://[ab]%.test/x" }, 200)
      local s = env.session(lurl.rate_limit { rate = 10, per_host = false })
      local ta = lurl.spawn(burst_of, s, A, 2)
      local tb = lurl.spawn(burst_of, s, B, 2)
      ta:join()
      tb:join()
      assert_times({ 0, 0.1, 0.2, 0.3 }, (timeline(route)))
    end)
  end)

  describe("waits it does not take", function()
    it("fails with ThrottledError at once when the wait would pass the deadline", function()
      local route = mock:on("GET", A, 200)
      local s = env.session(lurl.rate_limit { rate = 10 })
      local res = burst_of(s, A, 3, { timeout = 0.15 })
      assert.are.equal(200, res[1])
      assert.are.equal(200, res[2])                 -- waited 0.1 of its 0.15
      local err = res[3]
      assert.are.equal("ThrottledError", err.kind)
      assert.is_true(err:is("ClientError"))
      assert.is_near(0.2, err.wait, 1e-9)
      assert.are.equal("http://a.test:80", err.key)
      assert.are.equal("GET", err.method)
      assert.matches("would wait 0.2 s", err.message, 1, true)
      assert.matches("deadline allows (0.15 s left)", err.message, 1, true)
      assert.matches("10/s", err.message, 1, true)
      assert_times({ 0, 0.1 }, (timeline(route)))
    end)

    it("does not sleep nor reserve a slot when it refuses", function()
      local route = mock:on("GET", A, 200)
      local s = env.session(lurl.rate_limit { rate = 10 })
      assert.are.equal(200, s:get(A).status)
      local t0 = clock:now()
      local resp, err = s:get(A, { timeout = 0.05 })
      assert.is_nil(resp)
      assert.are.equal("ThrottledError", err.kind)
      assert.are.equal(t0, clock:now())
      assert.are.equal(200, s:get(A).status)         -- the slot at 0.1 is still free
      assert_times({ 0, 0.1 }, (timeline(route)))
    end)

    it("refuses waits longer than max_wait", function()
      local route = mock:on("GET", A, 200)
      local s = env.session(lurl.rate_limit { rate = 10, max_wait = 0.1 })
      local res = burst_of(s, A, 3)
      assert.are.same({ 200, 200 }, { res[1], res[2] }) -- a wait of exactly max_wait is taken
      assert.are.equal("ThrottledError", res[3].kind)
      assert.matches("more than max_wait (0.1 s)", res[3].message, 1, true)
      assert_times({ 0, 0.1 }, (timeline(route)))
      local never = lurl.rate_limit { rate = 1, max_wait = 0 }
      assert.are.equal("ok", never:run(function() return "ok" end))
      local _, err = never:run(function() return "ok" end)
      assert.are.equal("ThrottledError", err.kind)
      assert.are.equal(1, err.wait)
    end)
  end)

  describe("cancellation", function()
    local lim, times

    local function call(i)
      return lim:run(function() times[i] = clock:now(); return i end)
    end

    before_each(function()
      lim = lurl.rate_limit { rate = 10 }
      times = {}
    end)

    it("gives a cancelled waiter's slot to those behind it", function()
      local tasks = {}
      for i = 1, 4 do tasks[i] = lurl.spawn(call, i) end -- slots 0, 0.1, 0.2, 0.3
      clock:advance(0.05)
      tasks[2]:cancel()
      local _, err = tasks[2]:join()
      assert.are.equal("CancelledError", err.kind)
      tasks[5] = lurl.spawn(call, 5)                  -- after the cancel: the last slot, 0.3
      for _, i in ipairs { 1, 3, 4, 5 } do assert.are.equal(i, tasks[i]:join()) end
      assert.is_nil(times[2])
      assert_times({ 0, 0.1, 0.2, 0.3 }, { times[1], times[3], times[4], times[5] })
    end)

    it("gives the last waiter's slot back to the next caller", function()
      local t1, t2 = lurl.spawn(call, 1), lurl.spawn(call, 2) -- slots 0, 0.1
      clock:advance(0.01)
      t2:cancel()
      t1:join()
      t2:join()
      assert.are.equal(3, call(3))
      assert_times({ 0, 0.1 }, { times[1], times[3] })
    end)
  end)

  describe("run mode", function()
    it("spaces calls of fn and returns fn's results", function()
      local lim = lurl.rate_limit { rate = 2 }
      local times = {}
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = lurl.spawn(function()
          return lim:run(function(ctx) times[i] = clock:now(); return ctx.key, i end)
        end)
      end
      for i = 1, 3 do
        local key, n = tasks[i]:join()
        assert.are.equal("default", key)
        assert.are.equal(i, n)
      end
      assert_times({ 0, 0.5, 1 }, times)
    end)

    it("honours run's deadline and keys", function()
      local lim = lurl.rate_limit { rate = 1 }
      local function fn() return "ok" end
      assert.are.equal("ok", lim:run(fn))
      local _, err = lim:run(fn, { deadline = 0.5 })
      assert.are.equal("ThrottledError", err.kind)
      assert.are.equal("default", err.key)
      assert.are.equal(0, clock:now())
      -- a wait that ends right at the deadline leaves no time for the call
      assert.are.equal("ThrottledError", select(2, lim:run(fn, { deadline = 1 })).kind)
      assert.are.equal("ok", lim:run(fn, { key = "other", deadline = 0.5 }))
      assert.are.equal("ok", lim:run(fn, { deadline = 1.5 }))
      assert.are.equal(1, clock:now())
    end)
  end)

  it("prints its options", function()
    assert.are.equal("lurl.rate_limit { rate = 10, burst = 1, per_host = true }",
      tostring(lurl.rate_limit { rate = 10 }))
    assert.are.equal("lurl.rate_limit { rate = 0.5, burst = 4, per_host = false, max_wait = 2 }",
      tostring(lurl.rate_limit { rate = 0.5, burst = 4, per_host = false, max_wait = 2 }))
  end)

  it("raises argument errors naming the bad option, at the caller's line", function()
    support.bad_options(lurl.rate_limit, {
      { {}, "bad argument 'rate' to 'rate_limit' (requests per second expected, got nil)" },
      { nil, "'rate'" },
      { { rate = 0 }, "'rate' to 'rate_limit' (requests per second > 0 expected, got 0)" },
      { { rate = -1 }, "'rate'" },
      { { rate = math.huge }, "'rate'" },
      { { rate = "10" }, "'rate' to 'rate_limit' (number expected, got string)" },
      { { rate = 1, burst = 0 }, "'burst' to 'rate_limit' (integer >= 1 expected, got 0)" },
      { { rate = 1, burst = 1.5 }, "'burst'" },
      { { rate = 1, max_wait = -1 }, "'max_wait'" },
      { { rate = 1, per_host = 1 }, "'per_host'" },
      { { rate = 1, brust = 2 }, "unknown option 'brust'" },
    })
    support.raises_at("bad argument", function() lurl.rate_limit { rate = -1 } end)
  end)
end)
