-- lurl.hedge: hedged requests, timing-exact under the virtual clock with the
-- mock transport, and once over real sockets for the losers' connections.
local lurl = require "lurl"
local errors = require "lurl.errors"
local middleware = require "lurl.middleware"
local support = require "spec.support"

local URL = "http://api.test/items"
local near, all_near, times = support.near, support.all_near, support.call_times
local events, of_type = support.events, support.of_type

-- A budget with the interface of lurl.retry_budget that counts its calls.
local function fake_budget(allow)
  local b = { deposits = {}, withdrawals = 0, records = {}, allow = allow }
  function b.deposit(_, key) b.deposits[#b.deposits + 1] = key end
  function b.withdraw(_, key)
    b.withdrawals = b.withdrawals + 1
    b.withdraw_key = key
    return b.allow
  end
  function b.record(_, key, failed) b.records[#b.records + 1] = { key, failed } end
  return setmetatable(b, { __tostring = function() return "fake budget" end })
end

-- Sleeps secs; cancelled meanwhile, calls on_cancel() and lets the
-- CancelledError through.
local function sleep_or(secs, on_cancel)
  local ok, err = pcall(lurl.sleep, secs)
  if not ok then
    on_cancel()
    error(err, 0)
  end
end

-- An answer of the mock: status (200 unless given) with body, after delay.
local function answer(body, delay, status)
  return { status = status or 200, body = body, delay = delay }
end

describe("lurl.hedge", function()
  local env = support.policy_env()
  local session = env.session
  local clock, mock, s
  before_each(function() clock, mock = env.setup() end)
  after_each(env.teardown)

  local function no_leak() support.no_leak(s, mock) end

  describe("timeline", function()
    -- A GET through lurl.hedge { delay = 0.05, max = case.max }, its
    -- attempts answered in turn by case.answers: the response that wins, when
    -- each attempt was sent, when the GET returned; no connection leaks.
    for _, case in ipairs {
      { "fires the second attempt exactly at delay; the faster one wins",
        answers = { answer("slow", 1), answer("fast", 0.01) }, body = "fast", sent = { 0, 0.05 }, returned = 0.06 },
      { "sends no hedge when the first attempt answers within delay",
        answers = { answer("quick", 0.03) }, body = "quick", sent = { 0 }, returned = 0.03 },
      { "lets the first attempt win when it answers after the hedge was sent",
        answers = { answer("first", 0.08), answer("second", 1) }, body = "first", sent = { 0, 0.05 }, returned = 0.08 },
      { "fires the next attempt at once when one fails fast",
        answers = { answer(nil, 0.01, 503), answer("ok", 0.01) }, body = "ok", sent = { 0, 0.01 }, returned = 0.02 },
      { "fires at once after a connection error too",
        answers = { { error = "refused" }, answer("ok", 0.01) }, body = "ok", sent = { 0, 0 }, returned = 0.01 },
      { "sends at most max attempts, delay apart", max = 3,
        answers = { answer("late", 1) }, body = "late", sent = { 0, 0.05, 0.1 }, returned = 1 },
      { "returns the last failure when every attempt fails, the earlier ones released", max = 3,
        answers = { answer("one", 0.01, 503), answer("two", 0.01, 502), answer("three", 0.01, 504) },
        status = 504, body = "three", sent = { 0, 0.01, 0.02 }, returned = 0.03 },
      { "a failure after the others were sent waits for those still running",
        answers = { answer("slow", 0.5), answer(nil, 0.01, 503) }, body = "slow", sent = { 0, 0.05 }, returned = 0.5 },
    } do
      it(case[1], function()
        local r = mock:on("GET", URL, unpack(case.answers))
        s = session(lurl.hedge { delay = 0.05, max = case.max })
        local resp = assert(s:get(URL))
        assert.are.equal(case.status or 200, resp.status)
        assert.are.equal(case.body, resp:text())
        all_near(case.sent, times(r.calls), "sent")
        near(case.returned, clock:now(), "returned")
        no_leak()
      end)
    end

    it("max = 1 sends one attempt", function()
      local r = mock:on("GET", URL, { status = 200, delay = 1 })
      s = session(lurl.hedge { delay = 0.05, max = 1 })
      assert(s:get(URL))
      assert.are.equal(1, #r.calls)
    end)

    it("an outcome hedge_on does not name wins, even an error status", function()
      local r = mock:on("GET", URL, { status = 503, delay = 0.01 }, { status = 200, delay = 0.01 })
      s = session(lurl.hedge { delay = 0.05, hedge_on = { 500 } })
      assert.are.equal(503, assert(s:get(URL)).status)
      assert.are.equal(1, #r.calls)
    end)

    it("hedge_on may be a predicate", function()
      local seen = {}
      local r = mock:on("GET", URL, { status = 200, body = "bad", delay = 0.01 }, { status = 200, body = "good" })
      s = session(lurl.hedge { delay = 0.05, hedge_on = function(res, _, attempt)
        seen[#seen + 1] = attempt
        return res and res.headers["content-length"] == "3"
      end })
      assert.are.equal("good", assert(s:get(URL)):text())
      assert.are.same({ 1, 2 }, seen)
      all_near({ 0, 0.01 }, times(r.calls))
    end)

    it("gives each attempt its own copy of the request with its attempt number", function()
      local seen = {}
      mock:on("GET", URL, { status = 200, delay = 1 })
      local mw = function(req, handler)
        seen[#seen + 1] = req.attempt
        req.headers:set("X-Attempt", tostring(req.attempt))
        return handler(req)
      end
      s = session { lurl.hedge { delay = 0.05, max = 3 }, mw }
      assert(s:get(URL))
      assert.are.same({ 1, 2, 3 }, seen)
      for i, c in ipairs(mock.calls) do assert.are.equal(tostring(i), c.headers["x-attempt"]) end
    end)
  end)

  describe("which requests", function()
    it("does not hedge a POST by default", function()
      local r = mock:on("POST", URL, { status = 200, body = "done", delay = 1 })
      local evs, on_event = events()
      s = session(lurl.hedge { delay = 0.05, on_event = on_event })
      assert.are.equal("done", assert(s:post(URL, { data = "x" })):text())
      assert.are.equal(1, #r.calls)
      near(1, clock:now())
      assert.are.same({}, evs)
    end)

    it("hedges a POST that carries an Idempotency-Key", function()
      local r = mock:on("POST", URL, { status = 200, delay = 1 }, { status = 201, delay = 0.01 })
      s = session(lurl.hedge { delay = 0.05 })
      local resp = assert(s:post(URL, { data = "x", headers = { ["Idempotency-Key"] = "k1" } }))
      assert.are.equal(201, resp.status)
      assert.are.equal(2, #r.calls)
      assert.are.equal("k1", r.calls[2].headers["idempotency-key"])
      assert.are.equal("x", r.calls[2].body)
    end)

    it("hedges the methods named in methods, or every one with \"*\"", function()
      local slow, fast = { status = 200, delay = 1 }, { status = 201, delay = 0.01 }
      local r = mock:on("*", URL, slow, fast, slow, fast, slow)
      s = session(lurl.hedge { delay = 0.05, methods = { "post" } })
      assert.are.equal(201, assert(s:post(URL, { data = "x" })).status)
      assert.are.equal(2, #r.calls)
      s:close()
      s = session(lurl.hedge { delay = 0.05, methods = "*" })
      assert.are.equal(201, assert(s:patch(URL, { data = "x" })).status)
      assert.are.equal(4, #r.calls)
      s:close()
      s = session(lurl.hedge { delay = 0.05, methods = { "POST" } })
      assert(s:patch(URL, { data = "x" }))
      assert.are.equal(5, #r.calls)
    end)

    it("never hedges a body that cannot be replayed", function()
      -- called as a middleware by hand: the mock does not take a streamed body
      local calls = 0
      local req = middleware.request { method = "PUT", url = URL, headers = lurl.headers(), options = {
        data = function() return nil end } }
      local resp = lurl.hedge { delay = 0.05 }(req, function()
        calls = calls + 1
        lurl.sleep(1)
        return lurl.response { status = 204 }
      end)
      assert.are.equal(204, resp.status)
      assert.are.equal(1, calls)
      near(1, clock:now())
    end)
  end)

  describe("the losers", function()
    it("leave no open connection: a loser's connection is closed, not pooled", function()
      mock:on("GET", URL, { status = 200, body = "slow", delay = 1 }, { status = 200, body = "fast", delay = 0.01 },
        { status = 200, body = "again", delay = 0.01 })
      s = session(lurl.hedge { delay = 0.05 })
      assert.are.equal("fast", assert(s:get(URL)):text())
      local st = s.connector:stats()
      assert.are.equal(0, st.in_use)
      assert.are.equal(1, st.idle)
      assert.are.equal(1, mock:open_streams())
      assert.are.equal(2, mock.streams) -- two connections were made; the loser's is gone
      -- the pooled one is the winner's, and it serves the next request
      assert.are.equal("again", assert(s:get(URL)):text())
      assert.are.equal(2, mock.streams)
      clock:advance(2) -- the loser's answer would have come by now
      no_leak()
    end)

    it("a loser that answered a failure first has its response released", function()
      mock:on("GET", URL, { status = 503, body = ("x"):rep(100), delay = 0.01 },
        { status = 200, body = "ok", delay = 0.01 })
      s = session(lurl.hedge { delay = 0.05 })
      assert.are.equal("ok", assert(s:get(URL, { stream = true })):text())
      no_leak()
    end)

    it("are cancelled, not left running: their work stops", function()
      local cancelled = {}
      local hedge = lurl.hedge { delay = 0.05, max = 3 }
      local res = hedge:run(function(ctx)
        if ctx.attempt == 3 then return "third" end
        sleep_or(10, function() cancelled[#cancelled + 1] = ctx.attempt end)
        return "late"
      end)
      assert.are.equal("third", res)
      -- cancelled and finished by the time the call returned
      assert.are.same({ 1, 2 }, cancelled)
      near(0.1, clock:now())
    end)
  end)

  describe("cancellation", function()
    it("cancelling the caller cancels every attempt and closes their connections", function()
      s = session(lurl.hedge { delay = 0.05 })
      local r = mock:on("GET", URL, { status = 200, delay = 1 })
      local task = lurl.spawn(function() return s:get(URL) end)
      lurl.sleep(0.07)
      assert.are.equal(2, #r.calls)
      assert.are.equal(2, mock:open_streams())
      task:cancel()
      local res, err = task:join()
      assert.is_nil(res)
      assert.is_true(errors.is(err, "CancelledError"))
      assert.are.equal(0, mock:open_streams())
      assert.are.equal(0, s.connector:stats().in_use)
      clock:advance(2)
      assert.are.equal(2, #r.calls)
      near(2.07, clock:now())
    end)

    it("re-raises the CancelledError in run mode and cancels the attempts", function()
      local stopped = 0
      local hedge = lurl.hedge { delay = 0.05 }
      support.cancel_after(0.06, hedge.run, hedge, function()
        sleep_or(5, function() stopped = stopped + 1 end)
        return "never"
      end)
      lurl.sleep(0)
      assert.are.equal(2, stopped)
    end)

    it("an error raised by an attempt is raised again, the others cancelled", function()
      local stopped = false
      local hedge = lurl.hedge { delay = 0.05 }
      local ok, err = pcall(hedge.run, hedge, function(ctx)
        if ctx.attempt == 2 then error("boom", 0) end
        sleep_or(5, function() stopped = true end)
      end)
      assert.is_false(ok)
      assert.are.equal("boom", err)
      assert.is_true(stopped) -- by the time the error came out
      near(0.05, clock:now())
    end)
  end)

  describe("deadline", function()
    it("sends no hedge once the deadline is reached, and returns at the deadline", function()
      local r = mock:on("GET", URL, { status = 200, delay = 1 })
      s = session(lurl.hedge { delay = 0.05, max = 5 }, { timeout = 0.12 })
      local resp, err = s:get(URL)
      assert.is_nil(resp)
      assert.is_true(err:is("TimeoutError"))
      all_near({ 0, 0.05, 0.1 }, times(r.calls))
      near(0.12, clock:now())
      no_leak()
      assert.are.equal(0, mock:open_streams())
    end)

    it("never fires a hedge when no time remains", function()
      local evs, on_event = events()
      local hedge = lurl.hedge { delay = 0.1, on_event = on_event }
      local calls = 0
      local res, err = hedge:run(function()
        calls = calls + 1
        lurl.sleep(1)
        return "late"
      end, { deadline = 0.1 })
      assert.is_nil(res)
      assert.are.equal("TimeoutError", err.kind)
      assert.are.equal(1, calls)
      assert.are.same({}, of_type(evs, "hedge_fired"))
      near(0.1, clock:now())
    end)

    it("starts nothing when the deadline has passed already", function()
      support.nothing_past_deadline(lurl.hedge { delay = 0.1 })
    end)
  end)

  describe("percentile delay", function()
    -- A probe whose attempts both fail (attempt 1 late), so that it adds no
    -- latency sample: the hedge_fired event tells the delay in use.
    local function probe(hedge, evs)
      local before = #of_type(evs, "hedge_fired")
      hedge:run(function(ctx)
        if ctx.attempt == 1 then lurl.sleep(5) end
        return nil, errors.new("TimeoutError", "probe")
      end)
      local fired = of_type(evs, "hedge_fired")
      assert.are.equal(before + 1, #fired)
      return fired[#fired].delay
    end

    it("uses initial_delay until min_samples latencies were seen, then their percentile", function()
      mock:on("GET", URL, function(call)
        return { status = 200, delay = tonumber(call.headers["x-latency"]) }
      end)
      local evs, on_event = events()
      local hedge = lurl.hedge { delay = "p95", min_samples = 20, initial_delay = 1, on_event = on_event }
      s = session(hedge)
      for i = 1, 19 do assert(s:get(URL, { headers = { ["X-Latency"] = tostring(i / 100) } })) end
      assert.are.same({}, of_type(evs, "hedge_fired"))
      near(1, probe(hedge, evs), "delay with 19 samples")
      assert(s:get(URL, { headers = { ["X-Latency"] = "0.2" } }))
      -- nearest rank: the 19th of the 20 latencies 0.01 .. 0.20
      near(0.19, probe(hedge, evs), "delay with 20 samples")
      -- the next request is hedged after that delay
      local t0 = clock:now()
      local route = mock:on("GET", "http://api.test/slow", { status = 200, delay = 1 }, { status = 200 })
      assert(s:get("http://api.test/slow"))
      all_near({ t0, t0 + 0.19 }, times(route.calls))
    end)

    it("defaults: initial_delay 0.05, min_samples 20", function()
      local evs, on_event = events()
      local hedge = lurl.hedge { delay = "p50", on_event = on_event }
      near(0.05, probe(hedge, evs))
      for _ = 1, 19 do hedge:run(function() lurl.sleep(0.02); return "ok" end) end
      near(0.05, probe(hedge, evs))
      hedge:run(function() lurl.sleep(0.02); return "ok" end)
      near(0.02, probe(hedge, evs))
    end)

    it("keeps the last 1000 latencies only", function()
      local evs, on_event = events()
      local hedge = lurl.hedge { delay = "p99", min_samples = 1000, initial_delay = 10, on_event = on_event }
      for _ = 1, 1000 do hedge:run(function() lurl.sleep(0.3); return "ok" end) end
      near(0.3, probe(hedge, evs))
      for _ = 1, 1000 do hedge:run(function() lurl.sleep(0.1); return "ok" end) end
      near(0.1, probe(hedge, evs))
    end)

    it("accepts fractional percentiles", function()
      local evs, on_event = events()
      local hedge = lurl.hedge { delay = "p99.9", min_samples = 1, on_event = on_event }
      hedge:run(function() lurl.sleep(0.25); return "ok" end)
      near(0.25, probe(hedge, evs))
    end)
  end)

  describe("budget", function()
    it("withdraws for each hedge; a refusal emits budget_denied and sends none", function()
      local r = mock:on("GET", URL, { status = 200, delay = 1 })
      local budget = fake_budget(false)
      local evs, on_event = events()
      s = session(lurl.hedge { delay = 0.05, max = 3, budget = budget, on_event = on_event })
      assert(s:get(URL))
      assert.are.equal(1, #r.calls)
      near(1, clock:now())
      assert.are.same({ "http://api.test:80" }, budget.deposits)
      assert.are.equal(1, budget.withdrawals)
      assert.are.equal("http://api.test:80", budget.withdraw_key)
      assert.are.same({ { "http://api.test:80", false } }, budget.records)
      local denied = of_type(evs, "budget_denied")
      assert.are.equal(1, #denied)
      assert.are.equal(2, denied[1].attempt)
      assert.are.equal("fake budget", denied[1].budget)
      assert.are.same({}, of_type(evs, "hedge_fired"))
    end)

    it("deposits once per call and records every attempt that finished", function()
      mock:on("GET", URL, { status = 503, delay = 0.01 }, { status = 502, delay = 0.01 },
        { status = 200, delay = 0.01 })
      local budget = fake_budget(true)
      s = session(lurl.hedge { delay = 0.05, max = 3, budget = budget })
      assert.are.equal(200, assert(s:get(URL)).status)
      assert.are.equal(1, #budget.deposits)
      assert.are.equal(2, budget.withdrawals)
      local failed = {}
      for i, rec in ipairs(budget.records) do failed[i] = rec[2] end
      assert.are.same({ true, true, false }, failed)
    end)

    it("leaves the budget alone for a request it does not hedge", function()
      mock:on("POST", URL, 200)
      local budget = fake_budget(true)
      s = session(lurl.hedge { budget = budget })
      assert(s:post(URL))
      assert.are.same({}, budget.deposits)
      assert.are.same({}, budget.records)
    end)
  end)

  describe("events", function()
    it("go to trace configs and on_event: attempt_start, hedge_fired, attempt_end", function()
      mock:on("GET", URL, { status = 200, delay = 1 }, { status = 200, delay = 0.01 })
      local traced, tc = support.traced("hedge_fired", "attempt_start", "attempt_end")
      local evs, on_event = events()
      s = session(lurl.hedge { delay = 0.05, on_event = on_event }, { trace_configs = { tc } })
      assert(s:get(URL))
      local kinds = {}
      for i, ev in ipairs(evs) do kinds[i] = ev.type .. " " .. ev.attempt end
      assert.are.same({ "attempt_start 1", "hedge_fired 2", "attempt_start 2", "attempt_end 2", "attempt_end 1" },
        kinds)
      assert.are.equal(#evs, #traced)
      for i = 1, #evs do assert.are.equal(evs[i], traced[i]) end
      local fired = evs[2]
      assert.are.equal("hedge", fired.policy)
      assert.are.equal("GET", fired.method)
      assert.are.equal(URL, fired.url)
      near(0.05, fired.delay)
      local won, lost = evs[4], evs[5]
      assert.are.equal(200, won.status)
      assert.is_false(won.failed)
      near(0.01, won.elapsed)
      assert.is_true(lost.cancelled)
      assert.is_true(errors.is(lost.error, "CancelledError"))
      assert.is_false(lost.failed)
      near(0.06, lost.elapsed)
    end)

    it("attempt_end tells a failure, its error and status", function()
      mock:on("GET", URL, { error = "refused" }, { status = 503 }, { status = 200 })
      local evs, on_event = events()
      s = session(lurl.hedge { delay = 0.05, max = 3, on_event = on_event })
      assert(s:get(URL))
      local ends = of_type(evs, "attempt_end")
      assert.are.equal(3, #ends)
      assert.is_true(ends[1].failed)
      assert.is_true(ends[1].error:is("ClientConnectorError"))
      assert.is_nil(ends[1].status)
      assert.is_true(ends[2].failed)
      assert.are.equal(503, ends[2].status)
      assert.is_false(ends[3].failed)
      local fired = of_type(evs, "hedge_fired")
      near(0, fired[1].delay)
      near(0, fired[2].delay)
    end)
  end)

  describe("run mode", function()
    it("races fn in tasks and compares the results with hedge_on", function()
      local hedge = lurl.hedge { delay = 0.05, max = 3 }
      local res = hedge:run(function(ctx)
        if ctx.attempt == 1 then lurl.sleep(1); return "first" end
        if ctx.attempt == 2 then lurl.sleep(0.01); return nil, errors.new("ClientConnectionError", "down") end
        lurl.sleep(0.01)
        return "third"
      end)
      assert.are.equal("third", res)
      near(0.07, clock:now())
    end)

    it("counts a plain error as a failure under the default rules", function()
      local hedge = lurl.hedge { delay = 0.05 }
      local res, err = hedge:run(function(ctx)
        lurl.sleep(0.01)
        return nil, "plain " .. ctx.attempt
      end)
      assert.is_nil(res)
      assert.are.equal("plain 2", err)
      near(0.02, clock:now())
    end)

    it("uses the run's key for the budget", function()
      local budget = fake_budget(true)
      lurl.hedge { delay = 0.05, budget = budget }:run(function() lurl.sleep(0.1); return 1 end, { key = "db" })
      assert.are.same({ "db" }, budget.deposits)
      assert.are.equal("db", budget.withdraw_key)
    end)
  end)

  describe("construction", function()
    it("prints its settings", function()
      assert.are.equal("lurl.hedge { delay = 0.05, max = 2 }", tostring(lurl.hedge()))
      assert.are.equal('lurl.hedge { delay = "p95", initial_delay = 0.1, min_samples = 50, max = 3, '
        .. "methods = { POST }, hedge_on = { 503 }, budget = fake budget }",
        tostring(lurl.hedge { delay = "p95", initial_delay = 0.1, min_samples = 50, max = 3, methods = { "post" },
          hedge_on = { 503 }, budget = fake_budget(true) }))
      assert.are.equal('lurl.hedge { delay = 0.2, max = 2, methods = "*" }',
        tostring(lurl.hedge { delay = 0.2, methods = "*" }))
    end)

    it("is a middleware and prints in the session's list", function()
      local hedge = lurl.hedge()
      s = session(hedge)
      assert.are.equal("lurl.middlewares { lurl.hedge { delay = 0.05, max = 2 } }", tostring(s.middlewares))
    end)

    it("raises argument errors naming the option", function()
      local cases = {
        { { delay = -1 }, "'delay'" }, { { delay = "p0" }, "'delay'" }, { { delay = "p100" }, "'delay'" },
        { { delay = "95" }, "'delay'" }, { { delay = true }, "'delay'" },
        { { max = 0 }, "'max'" }, { { max = 1.5 }, "'max'" }, { { max = "2" }, "'max'" },
        { { min_samples = 0, delay = "p90" }, "'min_samples'" },
        { { initial_delay = -1, delay = "p90" }, "'initial_delay'" },
        { { hedge_on = 7 }, "'hedge_on'" }, { { hedge_on = { "Nope" } }, "'hedge_on'" },
        { { methods = "GET" }, "'methods'" }, { { methods = { 1 } }, "'methods'" },
        { { budget = {} }, "'budget'" }, { { on_event = 1 }, "'on_event'" },
        { { bogus = 1 }, "unknown option 'bogus'" },
      }
      for _, case in ipairs(cases) do
        local err = support.raises_at(case[2], function() lurl.hedge(case[1]) end)
        assert.is_truthy(err:find("to 'hedge'", 1, true), err)
      end
      assert.has_error(function() lurl.hedge(3) end)
    end)

    it("must be called as (req, handler) when used as a middleware", function()
      assert.has_error(function() lurl.hedge()({}, nil) end)
    end)
  end)
end)

describe("lurl.hedge over real sockets", function()
  it("the server sees the loser's connection closed (its stream reset over HTTP/2); the pool keeps the winner's",
    function()
    local n = 0
    local server = support.server { ["/slow"] = function()
      n = n + 1
      if n == 1 then return { delay = 0.5, body = "slow" } end
      return { body = "fast" }
    end }
    local s = support.session(server, { middlewares = { lurl.hedge { delay = 0.05 } } })
    local t0 = lurl.now()
    assert.are.equal("fast", assert(s:get("slow")):text())
    assert.is_true(lurl.now() - t0 < 0.45)
    local st = s.connector:stats()
    assert.are.equal(0, st.in_use)
    assert.are.equal(1, st.idle)
    if support.http2 then
      -- HTTP/2: both tries on one connection, the loser's stream reset
      assert.are.equal(1, server.connections)
      assert.is_truthy(support.eventually(function() return server.resets == 1 end), "no RST_STREAM came")
      s:close()
      server:close()
      return
    end
    assert.are.equal(2, server.connections)
    -- the server notices the close once its delayed answer goes out
    assert.is_true(support.eventually(function() return server:open_connections() == 1 end),
      "the server still holds the loser's connection")
    assert.are.equal(1, s.connector:stats().idle)
    s:close()
    server:close()
  end)
end)
