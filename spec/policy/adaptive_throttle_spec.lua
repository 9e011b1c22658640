-- lurl.adaptive_throttle (Google SRE book, "Handling Overload"): the local
-- rejection probability max(0, (requests - k * accepts) / (requests + 1))
-- over a sliding window, with a seeded rng and the virtual clock.
local lurl = require "lurl"
local base = require "lurl.policy.base"
local support = require "spec.support"

local A, B = "http://a.test/x", "http://b.test/x"

local function accepted() return "ok" end
local function overloaded() return lurl.response { status = 503 } end

-- An rng that draws from `source`, which a spec swaps: NEVER while it fills
-- the window (no probability reaches it), ALWAYS to force a rejection.
local function NEVER() return 0.9999999 end
local function ALWAYS() return 0 end

describe("adaptive_throttle", function()
  local env = support.policy_env()
  local clock, mock, s, source
  before_each(function()
    clock, mock = env.setup()
    source = NEVER
  end)
  after_each(env.teardown)

  local function throttle(opts)
    opts = opts or {}
    opts.rng = function() return source() end
    return lurl.adaptive_throttle(opts)
  end

  -- n calls in run mode, the first `accepts` of them accepted, none rejected
  local function fill(t, n, accepts, opts)
    local before = source
    source = NEVER
    for i = 1, n do assert(t:run(i <= accepts and accepted or overloaded, opts)) end
    source = before
  end

  describe("the probability", function()
    it("is 0 while the backend accepts everything: nothing is rejected", function()
      local t = lurl.adaptive_throttle { rng = 1 }
      for _ = 1, 1000 do assert.are.equal("ok", t:run(accepted)) end
      assert.are.same({ requests = 1000, accepts = 1000, probability = 0 }, t:stats())
    end)

    it("is (requests - k * accepts) / (requests + 1)", function()
      local t = throttle()
      fill(t, 100, 10)
      assert.are.same({ requests = 100, accepts = 10, probability = 80 / 101 }, t:stats())
      local t1 = throttle { k = 1 }
      fill(t1, 10, 5)
      assert.are.equal(5 / 11, t1:stats().probability)
      local t3 = throttle { k = 3 }
      fill(t3, 10, 3)
      assert.are.equal(1 / 11, t3:stats().probability)
      fill(t3, 1, 1)
      assert.are.equal(0, t3:stats().probability) -- 11 - 12 < 0
    end)

    it("rejects that share of calls, drawn from a seeded rng", function()
      local seeded = base.rng(2024)
      local rejected, trials = 0, 2000
      for _ = 1, trials do
        local t = throttle()
        fill(t, 100, 10)
        source = seeded
        local res, err = t:run(accepted)
        if not res then
          assert.are.equal(80 / 101, err.probability)
          rejected = rejected + 1
        end
        source = NEVER
      end
      assert.is_near(80 / 101, rejected / trials, 0.03)
    end)

    it("counts rejected calls as requests", function()
      local t = throttle()
      fill(t, 10, 0)
      source = ALWAYS
      local called = false
      for i = 10, 12 do
        local res, err = t:run(function() called = true; return "ok" end)
        assert.is_nil(res)
        assert.are.equal(i / (i + 1), err.probability)
      end
      assert.is_false(called)
      assert.are.same({ requests = 13, accepts = 0, probability = 13 / 14 }, t:stats())
    end)

    it("forgets outcomes older than window: throttling ends", function()
      local t = throttle { window = 120 }
      fill(t, 50, 0)
      clock:advance(119.5)       -- the bucket of second 0 is still in the window
      assert.are.equal(50, t:stats().requests)
      source = ALWAYS
      assert.are.equal("ThrottledError", select(2, t:run(accepted)).kind)
      clock:advance(0.5)         -- 120: second 0 is out, second 119 in
      assert.are.same({ requests = 1, accepts = 0, probability = 0.5 }, t:stats())
      clock:advance(120)
      assert.are.same({ requests = 0, accepts = 0, probability = 0 }, t:stats())
      assert.are.equal("ok", t:run(accepted))
    end)

    it("fades as accepts come back", function()
      local t = throttle()
      fill(t, 30, 0)
      local p = t:stats().probability
      for _ = 1, 5 do
        fill(t, 5, 5)
        local q = t:stats().probability
        assert.is_true(q < p)
        p = q
      end
      fill(t, 10, 10)
      assert.are.equal(0, t:stats().probability) -- 70 - 2 * 35
    end)
  end)

  describe("as a middleware", function()
    it("rejects locally with ThrottledError; the mock sees only the calls let through", function()
      local route = mock:on("GET", A, 503)
      local t = throttle()
      s = env.session(t)
      source = base.rng(5)
      local rejected = 0
      for _ = 1, 200 do
        local resp, err = s:get(A)
        if resp then
          assert.are.equal(503, resp.status)
          resp:release()
        else
          rejected = rejected + 1
          assert.are.equal("ThrottledError", err.kind)
          assert.is_true(err:is("ClientError"))
          assert.are.equal("http://a.test:80", err.key)
          assert.are.equal(A, err.url)
          assert.are.equal("GET", err.method)
          assert.is_true(err.probability > 0 and err.probability < 1)
          assert.matches("adaptive throttling rejected the request to http://a.test:80 locally", err.message, 1, true)
        end
      end
      assert.are.equal(200 - rejected, #route.calls)
      assert.is_true(rejected > 150, "rejected " .. rejected)
      assert.are.same({ requests = 200, accepts = 0, probability = 200 / 201 }, t:stats("http://a.test:80"))
    end)

    it("does not count the transient failures as accepts by default, other answers do count", function()
      local answer = 503
      mock:on("GET", A, function() return answer end)
      local t = throttle()
      s = env.session(t)
      for _, a in ipairs { 429, 502, 503, 504, { error = "reset" }, 200, 404, 500 } do
        answer = a
        local resp = s:get(A)
        if resp then resp:release() end
      end
      assert.are.same({ requests = 8, accepts = 3, probability = 2 / 9 }, t:stats("http://a.test:80"))
      local r = throttle()
      r:run(function() return nil, "a plain error" end)
      r:run(function() return nil, lurl.error("TimeoutError", "slow") end)
      assert.are.equal(0, r:stats().accepts)
    end)

    it("counts what failure_on names as not accepted instead", function()
      local answer = 503
      mock:on("GET", A, function() return answer end)
      local t = throttle { failure_on = { 500 } }
      s = env.session(t)
      s:get(A):release()
      answer = 500
      s:get(A):release()
      assert.are.same({ requests = 2, accepts = 1, probability = 0 }, t:stats("http://a.test:80"))
      local p = throttle { failure_on = function(res) return res == "busy" end }
      p:run(function() return "busy" end)
      p:run(function() return "fine" end)
      assert.are.equal(1, p:stats().accepts)
    end)

    it("keeps counts per host, or shared with per_host = false", function()
      mock:on("GET", A, 503)
      local rb = mock:on("GET", B, 200)
      local t = throttle()
      s = env.session(t)
      for _ = 1, 10 do s:get(A):release() end
      source = ALWAYS
      assert.are.equal("ThrottledError", select(2, s:get(A)).kind)
      for _ = 1, 10 do s:get(B):release() end
      assert.are.equal(10, #rb.calls)

      local shared = throttle { per_host = false }
      local s2 = env.session(shared)
      source = NEVER
      for _ = 1, 10 do s2:get(A):release() end
      source = ALWAYS
      local _, err = s2:get(B)
      assert.are.equal("ThrottledError", err.kind)
      assert.are.equal("*", err.key)
      assert.are.equal(10, #rb.calls)
      assert.are.equal(11, shared:stats("anything").requests)
    end)
  end)

  describe("run mode", function()
    it("returns fn's results and keys by opts.key", function()
      local t = throttle()
      assert.are.equal("ok", t:run(accepted))
      fill(t, 10, 0, { key = "db" })
      source = ALWAYS
      local res, err = t:run(accepted, { key = "db" })
      assert.is_nil(res)
      assert.are.equal("db", err.key)
      assert.are.equal("ok", t:run(accepted))
      assert.are.equal(2, t:stats().requests)
    end)

    it("raises CancelledError again and counts a cancelled call neither way", function()
      local t = throttle()
      support.cancel_after(1, t.run, t, function() lurl.sleep(5); return "never" end)
      assert.has_error(function() t:run(function() return nil, lurl.error("CancelledError", "gone") end) end)
      assert.are.same({ requests = 0, accepts = 0, probability = 0 }, t:stats())
    end)
  end)

  it("tells on_event of each local rejection", function()
    local seen, on_event = support.events()
    local t = lurl.adaptive_throttle { rng = ALWAYS, on_event = on_event }
    t:run(overloaded)
    t:run(accepted)
    assert.are.same({ { type = "throttled", policy = "adaptive_throttle", key = "default", probability = 0.5 } }, seen)
  end)

  it("prints its options", function()
    assert.are.equal("lurl.adaptive_throttle { k = 2, window = 120, per_host = true }",
      tostring(lurl.adaptive_throttle()))
    assert.are.equal("lurl.adaptive_throttle { k = 1.5, window = 60, failure_on = { 503 }, per_host = false }",
      tostring(lurl.adaptive_throttle { k = 1.5, window = 60, failure_on = { 503 }, per_host = false, rng = 3 }))
  end)

  it("raises argument errors naming the bad option, at the caller's line", function()
    support.bad_options(lurl.adaptive_throttle, {
      { { k = 0.5 }, "bad argument 'k' to 'adaptive_throttle' (number >= 1 expected, got 0.5)" },
      { { k = "2" }, "'k' to 'adaptive_throttle' (number expected, got string)" },
      { { window = 0 }, "'window' to 'adaptive_throttle' (seconds > 0 expected, got 0)" },
      { { window = -5 }, "'window'" },
      { { failure_on = { "Nope" } }, "'failure_on'" },
      { { rng = 1.5 }, "'rng'" },
      { { per_host = 0 }, "'per_host'" },
      { { on_event = {} }, "'on_event'" },
      { { kk = 1 }, "unknown option 'kk'" },
    })
    support.raises_at("bad argument", function() lurl.adaptive_throttle { window = 0 } end)
    assert.has_error(function() lurl.adaptive_throttle():stats(7) end,
      "bad argument #1 to 'stats' (key (string) expected, got number)")
  end)
end)
