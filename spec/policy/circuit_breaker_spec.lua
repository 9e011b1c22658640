-- lurl.circuit_breaker: closed -> open at the threshold, fail fast, half-open
-- probes, the sliding window, per-host state, events, cancellation. Timelines
-- run on the virtual clock (autojump), requests on the mock transport.
local lurl = require "lurl"
local support = require "spec.support"

local A, B = "http://a.test/x", "http://b.test/x"
local KEY_A, KEY_B = "http://a.test:80", "http://b.test:80"

local function ok_fn() return "ok" end
local function fail_fn() return nil, lurl.error("ClientConnectionError", "down") end

-- n calls of fn through the breaker in run mode (key "default" unless given)
local function run(breaker, n, fn, opts)
  for _ = 1, n do breaker:run(fn, opts) end
end

-- The status of a GET, or its error (the response released).
local function get(s, u)
  local resp, err = s:get(u)
  if not resp then return err end
  resp:release()
  return resp.status
end

describe("circuit_breaker", function()
  local env = support.policy_env()
  local clock, mock, s
  before_each(function() clock, mock = env.setup() end)
  after_each(env.teardown)

  describe("closed -> open", function()
    it("stays closed below min_throughput, whatever the ratio", function()
      local b = lurl.circuit_breaker { min_throughput = 4, failure_ratio = 0.5 }
      run(b, 3, fail_fn)
      assert.are.same({ total = 3, failures = 3, state = "closed" }, b:stats())
      run(b, 1, fail_fn)
      assert.are.equal("open", b:state())
    end)

    it("opens exactly when failures / total reaches failure_ratio", function()
      local b = lurl.circuit_breaker { min_throughput = 10, failure_ratio = 0.5 }
      run(b, 6, ok_fn)
      run(b, 4, fail_fn)
      assert.are.same({ total = 10, failures = 4, state = "closed" }, b:stats()) -- 0.4
      run(b, 1, fail_fn)
      assert.are.equal("closed", b:state()) -- 5 / 11
      run(b, 1, fail_fn)
      assert.are.same({ total = 12, failures = 6, state = "open" }, b:stats()) -- 6 / 12 = 0.5
    end)

    it("has Polly v8's defaults: 10% of at least 100 calls in 30 s, a 5 s break", function()
      local b = lurl.circuit_breaker()
      run(b, 90, ok_fn)
      run(b, 9, fail_fn)
      assert.are.equal("closed", b:state()) -- 99 calls
      run(b, 1, fail_fn)
      assert.are.equal("open", b:state()) -- 10 / 100
      clock:advance(4.999)
      assert.are.equal("open", b:state())
      clock:advance(0.001)
      assert.are.equal("half_open", b:state())
    end)

    it("counts every 5xx and the transient errors by default, not 4xx", function()
      local status = 500
      mock:on("GET", A, function() return status end)
      local b = lurl.circuit_breaker { min_throughput = 1000 }
      s = env.session(b)
      for _, st in ipairs { 500, 501, 503, 404, 429, 200 } do
        status = st
        assert.are.equal(st, get(s, A))
      end
      assert.are.same({ total = 6, failures = 4, state = "closed" }, b:stats(KEY_A))
      mock:on("GET", B, { error = "refused" })
      assert.are.equal("ClientConnectorError", get(s, B).kind)
      assert.are.same({ total = 1, failures = 1, state = "closed" }, b:stats(KEY_B))
    end)

    it("counts what failure_on names instead, as a list or a predicate", function()
      local status = 500
      mock:on("GET", A, function() return status end)
      local b = lurl.circuit_breaker { min_throughput = 1000, failure_on = { 503 } }
      s = env.session(b)
      get(s, A)
      status = 503
      get(s, A)
      assert.are.same({ total = 2, failures = 1, state = "closed" }, b:stats(KEY_A))
      local seen
      local p = lurl.circuit_breaker { min_throughput = 1, failure_ratio = 0.5,
        failure_on = function(res, err, attempt) seen = { res, err, attempt }; return res == "bad" end }
      p:run(function() return "good" end)
      assert.are.same({ "good", nil, 1 }, seen)
      assert.are.equal("closed", p:state())
      p:run(function() return "bad" end)
      assert.are.equal("open", p:state())
    end)
  end)

  describe("open", function()
    it("fails fast with CircuitOpenError and no call reaches the server", function()
      local b = lurl.circuit_breaker { min_throughput = 2, failure_ratio = 1, break_for = 5 }
      local route = mock:on("GET", A, 503)
      s = env.session(b)
      assert.are.equal(503, get(s, A))
      assert.are.equal(503, get(s, A))
      assert.are.equal("open", b:state(KEY_A))
      clock:advance(1.5)
      local t0 = clock:now()
      local err = get(s, A)
      assert.are.equal(t0, clock:now())
      assert.are.equal(2, #route.calls)
      assert.are.equal("CircuitOpenError", err.kind)
      assert.is_true(err:is("ClientError"))
      assert.are.equal(KEY_A, err.key)
      assert.are.equal("open", err.state)
      assert.is_near(3.5, err.retry_in, 1e-9)
      assert.are.equal(A, err.url)
      assert.are.equal("GET", err.method)
      assert.matches("circuit open for http://a.test:80", err.message, 1, true)
      assert.matches("3.5 more seconds", err.message, 1, true)
    end)

    it("fails fast in run mode without calling fn", function()
      local b = lurl.circuit_breaker { min_throughput = 1, failure_ratio = 1, break_for = 2 }
      run(b, 1, fail_fn)
      local called = false
      local res, err = b:run(function() called = true; return "ok" end)
      assert.is_nil(res)
      assert.is_false(called)
      assert.are.equal("CircuitOpenError", err.kind)
      assert.are.equal("default", err.key)
      assert.are.equal(2, err.retry_in)
    end)
  end)

  describe("half-open", function()
    local b

    -- a breaker on A, opened by two 503s at t = 0
    local function opened(opts)
      opts.min_throughput, opts.failure_ratio, opts.break_for = 2, 1, 5
      b = lurl.circuit_breaker(opts)
      s = env.session(b)
      get(s, A)
      get(s, A)
      assert.are.equal("open", b:state(KEY_A))
    end

    it("lets a probe through once break_for has passed, and its success closes the circuit", function()
      local route = mock:on("GET", A, 503, 503, 200)
      opened {}
      clock:advance(4.999)
      assert.are.equal("CircuitOpenError", get(s, A).kind)
      clock:advance(0.001)
      assert.are.equal("half_open", b:state(KEY_A))
      assert.are.equal(200, get(s, A))
      assert.are.equal(3, #route.calls)
      assert.are.same({ total = 0, failures = 0, state = "closed" }, b:stats(KEY_A))
      assert.are.equal(200, get(s, A))
    end)

    it("lets at most half_open_max probes in at once; the others fail fast", function()
      local route = mock:on("GET", A, 503, 503, { status = 200, delay = 1 })
      opened { half_open_max = 2 }
      clock:advance(5)
      local tasks = {}
      for i = 1, 3 do tasks[i] = lurl.spawn(get, s, A) end
      local err = tasks[3]:join()
      assert.are.equal("CircuitOpenError", err.kind)
      assert.are.equal("half_open", err.state)
      assert.are.equal(0, err.retry_in)
      assert.matches("2 probes are in flight", err.message, 1, true)
      assert.are.equal(200, tasks[1]:join())
      assert.are.equal(200, tasks[2]:join())
      assert.are.equal(4, #route.calls)
      assert.are.equal("closed", b:state(KEY_A))
    end)

    it("opens again for break_for when a probe fails", function()
      local route = mock:on("GET", A, 503)
      opened {}
      clock:advance(7)
      assert.are.equal(503, get(s, A))
      assert.are.equal("open", b:state(KEY_A))
      local err = get(s, A)
      assert.are.equal(5, err.retry_in)
      clock:advance(5)
      assert.are.equal(503, get(s, A))
      assert.are.equal(4, #route.calls)
    end)

    it("frees the slot of a cancelled probe, which counts neither way", function()
      local route = mock:on("GET", A, 503, 503, { error = "hang" }, 200)
      opened {}
      clock:advance(5)
      local probe = lurl.spawn(get, s, A)
      clock:advance(1)
      assert.are.equal("CircuitOpenError", get(s, A).kind)
      probe:cancel()
      local _, err = probe:join()
      assert.are.equal("CancelledError", err.kind)
      assert.are.equal("half_open", b:state(KEY_A))
      assert.are.equal(200, get(s, A))
      assert.are.equal(4, #route.calls)
      assert.are.equal("closed", b:state(KEY_A))
    end)
  end)

  it("ignores the outcome of a call let in before the state changed", function()
    local b = lurl.circuit_breaker { min_throughput = 1, failure_ratio = 1, break_for = 5 }
    local slow = lurl.spawn(function() return b:run(function() lurl.sleep(2); return "late success" end) end)
    clock:advance(1)
    run(b, 1, fail_fn)
    assert.are.equal("open", b:state())
    assert.are.equal("late success", slow:join())
    assert.are.equal("open", b:state())
    assert.are.same({ total = 1, failures = 1, state = "open" }, b:stats())
  end)

  it("raises CancelledError again and does not count a cancelled call", function()
    local b = lurl.circuit_breaker { min_throughput = 1 }
    support.cancel_after(1, b.run, b, function() lurl.sleep(10); return "never" end)
    assert.are.same({ total = 0, failures = 0, state = "closed" }, b:stats())
  end)

  it("raises an error fn raises again, counting it neither way", function()
    local b = lurl.circuit_breaker { min_throughput = 1 }
    assert.has_error(function() b:run(function() error("bug", 0) end) end, "bug")
    assert.are.same({ total = 0, failures = 0, state = "closed" }, b:stats())
  end)

  it("slides its window: failures older than window are forgotten", function()
    local b = lurl.circuit_breaker { min_throughput = 4, failure_ratio = 0.5, window = 10 }
    run(b, 3, fail_fn)
    clock:advance(9.5) -- bucket [9, 10): the failures of [0, 1) still count
    assert.are.equal(3, b:stats().total)
    run(b, 1, fail_fn)
    assert.are.equal("open", b:state())

    b:reset()
    run(b, 3, fail_fn)               -- at 9.5
    clock:advance(10)                -- 19.5: the bucket of 9.5 is out
    assert.are.same({ total = 0, failures = 0, state = "closed" }, b:stats())
    run(b, 1, fail_fn)
    assert.are.same({ total = 1, failures = 1, state = "closed" }, b:stats())
  end)

  describe("keys", function()
    it("keeps one circuit per host", function()
      mock:on("GET", A, 503)
      local rb = mock:on("GET", B, 200)
      local b = lurl.circuit_breaker { min_throughput = 2, failure_ratio = 1 }
      s = env.session(b)
      get(s, A)
      get(s, A)
      assert.are.equal("open", b:state(KEY_A))
      assert.are.equal("closed", b:state(KEY_B))
      assert.are.equal(200, get(s, B))
      assert.are.equal(1, #rb.calls)
      assert.are.equal("CircuitOpenError", get(s, A).kind)
    end)

    it("shares one circuit with per_host = false", function()
      mock:on("GET", A, 503)
      local rb = mock:on("GET", B, 200)
      local b = lurl.circuit_breaker { min_throughput = 2, failure_ratio = 1, per_host = false }
      s = env.session(b)
      get(s, A)
      get(s, A)
      local err = get(s, B)
      assert.are.equal("CircuitOpenError", err.kind)
      assert.are.equal("*", err.key)
      assert.are.equal(0, #rb.calls)
      assert.are.equal("open", b:state())
      assert.are.equal("open", b:state(KEY_B))
    end)

    it("keys run mode by opts.key, \"default\" when none is given", function()
      local b = lurl.circuit_breaker { min_throughput = 1, failure_ratio = 1 }
      run(b, 1, fail_fn, { key = "db" })
      assert.are.equal("open", b:state("db"))
      assert.are.equal("closed", b:state())
      assert.are.equal("ok", b:run(ok_fn))
      assert.are.equal("CircuitOpenError", select(2, b:run(ok_fn, { key = "db" })).kind)
    end)

    it("resets one circuit or all of them", function()
      local b = lurl.circuit_breaker { min_throughput = 1, failure_ratio = 1 }
      run(b, 1, fail_fn, { key = "x" })
      run(b, 1, fail_fn, { key = "y" })
      b:reset("x")
      assert.are.equal("closed", b:state("x"))
      assert.are.equal("open", b:state("y"))
      b:reset()
      assert.are.equal("closed", b:state("y"))
      assert.are.equal("ok", b:run(ok_fn, { key = "y" }))
    end)
  end)

  describe("events", function()
    it("sends every transition to trace configs and on_event", function()
      local traced, tc = support.traced("breaker_transition")
      local hooked, on_event = support.events()
      local b = lurl.circuit_breaker { min_throughput = 1, failure_ratio = 1, break_for = 5, on_event = on_event }
      mock:on("GET", A, 503, 503, 200)
      s = env.session(b, { trace_configs = { tc } })
      get(s, A)          -- closed > open
      clock:advance(5)
      get(s, A)          -- open > half_open, then half_open > open
      clock:advance(5)
      get(s, A)          -- open > half_open > closed
      local function transitions(list)
        local out = {}
        for i, ev in ipairs(list) do out[i] = ev.from .. ">" .. ev.to end
        return out
      end
      local want = { "closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed" }
      assert.are.same(want, transitions(traced))
      assert.are.equal(5, #hooked)
      assert.are.same({ type = "breaker_transition", policy = "circuit_breaker", key = KEY_A, from = "closed",
        to = "open", method = "GET", url = A }, hooked[1])
      assert.are.same(want, transitions(hooked))
    end)

    it("tells on_event of a reset", function()
      local seen = {}
      local b = lurl.circuit_breaker { min_throughput = 1, failure_ratio = 1,
        on_event = function(ev) seen[#seen + 1] = ev.from .. ">" .. ev.to .. " " .. ev.key end }
      run(b, 1, fail_fn)
      b:reset()
      b:reset()
      assert.are.same({ "closed>open default", "open>closed default" }, seen)
    end)
  end)

  it("prints its options", function()
    assert.are.equal("lurl.circuit_breaker { failure_ratio = 0.1, min_throughput = 100, window = 30, break_for = 5, "
      .. "half_open_max = 1, per_host = true }", tostring(lurl.circuit_breaker()))
    assert.are.equal("lurl.circuit_breaker { failure_ratio = 0.5, min_throughput = 3, window = 10, break_for = 1, "
      .. "half_open_max = 2, failure_on = { 500, TimeoutError }, per_host = false }",
      tostring(lurl.circuit_breaker { failure_ratio = 0.5, min_throughput = 3, window = 10, break_for = 1,
        half_open_max = 2, failure_on = { 500, "TimeoutError" }, per_host = false }))
    assert.are.equal("lurl.middlewares { lurl.circuit_breaker { failure_ratio = 0.1, min_throughput = 100, "
      .. "window = 30, break_for = 5, half_open_max = 1, per_host = true } }",
      tostring(env.session(lurl.circuit_breaker()).middlewares))
  end)

  it("raises argument errors naming the bad option, at the caller's line", function()
    support.bad_options(lurl.circuit_breaker, {
      { { failure_ratio = 0 }, "bad argument 'failure_ratio' to 'circuit_breaker' (number in (0, 1] expected, got 0)" },
      { { failure_ratio = 1.5 }, "'failure_ratio'" },
      { { failure_ratio = "x" }, "'failure_ratio' to 'circuit_breaker' (number expected, got string)" },
      { { min_throughput = 0 }, "'min_throughput' to 'circuit_breaker' (integer >= 1 expected, got 0)" },
      { { min_throughput = 2.5 }, "'min_throughput'" },
      { { window = 0 }, "'window' to 'circuit_breaker' (seconds > 0 expected, got 0)" },
      { { window = -1 }, "'window'" },
      { { break_for = -1 }, "'break_for'" },
      { { half_open_max = 0 }, "'half_open_max'" },
      { { failure_on = { "Nope" } }, "'failure_on'" },
      { { failure_on = 7 }, "'failure_on'" },
      { { per_host = "yes" }, "'per_host' to 'circuit_breaker' (boolean expected, got string)" },
      { { on_event = true }, "'on_event'" },
      { { windows = 1 }, "unknown option 'windows'" },
      { "x", "options table expected" },
    })
    support.raises_at("bad argument", function() lurl.circuit_breaker { failure_ratio = 2 } end)
    assert.has_error(function() lurl.circuit_breaker():state(1) end,
      "bad argument #1 to 'state' (key (string) expected, got number)")
    assert.has_error(function() lurl.circuit_breaker()(1, 2) end)
  end)
end)
