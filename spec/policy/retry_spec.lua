-- lurl.retry: every rule of the policy, timing-exact under the virtual clock
-- (lurl.testing.clock with autojump) over the socket-free transport
-- (lurl.testing.mock), as a session middleware and as policy:run(fn); and a
-- few runs over real sockets against lurl.testing.server.
local lurl = require "lurl"
local base = require "lurl.policy.base"
local sched = require "lurl.sched"
local support = require "spec.support"

-- The times of mock calls, checked to 1e-9; the events a policy sends.
local assert_near, assert_all_near, starts = support.near, support.all_near, support.call_times
local of_type = support.of_type

local URL = "http://api.test/x"
local ORIGIN = "http://api.test:80"
local WALL = 1700000000
local EPS = 1e-9

-- When the attempts start: at 0, then each after the delay before it.
local function timeline(delays)
  local out, t = { 0 }, 0
  for i, d in ipairs(delays) do
    t = t + d
    out[i + 1] = t
  end
  return out
end

-- The values of a field of a list of events.
local function field(list, name)
  local out = {}
  for i, ev in ipairs(list) do out[i] = ev[name] end
  return out
end

describe("lurl.retry", function()
  local env = support.policy_env()
  local clock, mock
  before_each(function() clock, mock = env.setup() end)
  after_each(env.teardown)

  -- A mock session with the given middlewares.
  local session = env.session

  -- A GET of URL through a session with policy, answered by answer each
  -- time: fails with an error of kind after `calls` calls.
  local function fails(answer, policy, kind, calls, opts)
    local route = mock:on("GET", URL, answer)
    local resp, err = session({ policy }):get(URL, opts)
    assert.is_nil(resp)
    assert.is_true(err:is(kind))
    assert.are.equal(calls, #route.calls)
  end

  describe("as a middleware", function()
    it("retries 503, 503 and returns the 200", function()
      local route = mock:on("GET", URL, 503, 503, "fine")
      local s = session { lurl.retry { attempts = 3, backoff = 0.1 } }
      local resp = assert(s:get(URL))
      assert.are.equal(200, resp.status)
      assert.are.equal("fine", resp:text())
      assert.are.equal(3, #route.calls)
      assert_all_near({ 0, 0.1, 0.2 }, starts(route.calls))
    end)

    it("follows the exact timeline of a 10-attempt exponential policy", function()
      local route = mock:on("GET", URL, { status = 503, body = "busy" })
      local events, on_event = support.events()
      local p = lurl.retry { attempts = 10, on_event = on_event,
        backoff = lurl.backoff.exponential { base = 0.1, factor = 2, max = 10, jitter = "none" } }
      local t0 = clock:now()
      local resp = assert(session({ p }):get(URL))
      -- after the last attempt the last outcome, as it is
      assert.are.equal(503, resp.status)
      assert.are.equal("busy", resp:text())
      local delays = { 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10 }
      assert_all_near(timeline(delays), starts(route.calls))
      assert_all_near(delays, field(of_type(events, "backoff"), "delay"), "delays")
      assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9 }, field(of_type(events, "backoff"), "attempt"))
      assert_near(32.7, clock:now() - t0, "elapsed")
      assert.are.equal(10, #of_type(events, "attempt_start"))
    end)

    -- The delays a jitter gives with a seeded generator, from the formulas.
    local function formula(jitter, seed, n)
      local r, out, prev = base.rng(seed), {}, 0.1
      for i = 1, n do
        local d = math.min(10, 0.1 * 2 ^ (i - 1))
        if jitter == "full" then
          out[i] = r() * d
        elseif jitter == "equal" then
          out[i] = d / 2 + r() * d / 2
        else
          prev = math.min(10, 0.1 + r() * (3 * prev - 0.1))
          out[i] = prev
        end
      end
      return out
    end

    for _, jitter in ipairs { "full", "equal", "decorrelated" } do
      it("sleeps what " .. jitter .. " jitter gives with a seeded rng", function()
        local route = mock:on("GET", URL, 503)
        local events, on_event = support.events()
        local p = lurl.retry { attempts = 8, rng = 1234, on_event = on_event,
          backoff = lurl.backoff.exponential { jitter = jitter } }
        assert(session({ p }):get(URL))
        local delays = formula(jitter, 1234, 7)
        assert_all_near(delays, field(of_type(events, "backoff"), "delay"), "delays")
        assert_all_near(timeline(delays), starts(route.calls))
      end)
    end

    it("uses full-jitter exponential backoff by default", function()
      local route = mock:on("GET", URL, 503)
      local p = lurl.retry { attempts = 4, rng = 7 }
      assert(session({ p }):get(URL))
      assert_all_near(timeline(formula("full", 7, 3)), starts(route.calls))
    end)

    it("takes a generator function as rng", function()
      local route = mock:on("GET", URL, 503)
      local p = lurl.retry { attempts = 3, rng = function() return 0.5 end,
        backoff = lurl.backoff.exponential { base = 1, jitter = "full" } }
      assert(session({ p }):get(URL))
      assert_all_near({ 0, 0.5, 1.5 }, starts(route.calls))
    end)

    it("takes seconds, a strategy or a function(n, prev) as backoff", function()
      local r1 = mock:on("GET", "http://api.test/constant", 503)
      local r2 = mock:on("GET", "http://api.test/linear", 503)
      local r3 = mock:on("GET", "http://api.test/fn", 503)
      local seen = {}
      local s = session {}
      assert(s:get("http://api.test/constant", { middlewares = { lurl.retry { attempts = 3, backoff = 0.25 } } }))
      assert(s:get("http://api.test/linear",
        { middlewares = { lurl.retry { attempts = 4, backoff = lurl.backoff.linear { base = 1, step = 2 } } } }))
      assert(s:get("http://api.test/fn", { middlewares = { lurl.retry { attempts = 4, backoff = function(n, prev)
        seen[#seen + 1] = { n, prev }
        return n / 10
      end } } }))
      assert_all_near({ 0, 0.25, 0.5 }, starts(r1.calls), "constant")
      local t = r2.calls[1].at
      assert_all_near({ t, t + 1, t + 4, t + 9 }, starts(r2.calls), "linear")
      t = r3.calls[1].at
      assert_all_near({ t, t + 0.1, t + 0.3, t + 0.6 }, starts(r3.calls), "function")
      assert.are.same({ { 1, nil }, { 2, 0.1 }, { 3, 0.2 } }, seen)
    end)

    it("returns the last error as it is after the last attempt", function()
      fails({ error = "refused" }, lurl.retry { attempts = 3, backoff = 0 }, "ClientConnectorError", 3)
    end)

    it("releases a retried response before the next try", function()
      mock:on("GET", URL, { status = 503, body = ("x"):rep(1000) }, { status = 503, body = ("x"):rep(1000) },
        { status = 200, body = ("y"):rep(1000) })
      local open = {}
      local function count(req, handler)
        open[#open + 1] = mock:open_streams()
        return handler(req)
      end
      local s = session { lurl.retry { attempts = 3, backoff = 0.1 }, count }
      local resp = assert(s:get(URL, { stream = true }))
      -- each unread 503 was released: its connection closed, none piles up
      assert.are.same({ 0, 0, 0 }, open)
      assert.are.equal(1, mock:open_streams())
      assert.are.equal(("y"):rep(1000), resp:text())
    end)

    it("sets req.attempt before each try", function()
      mock:on("GET", URL, 503, 503, 200)
      local seen = {}
      local s = session { lurl.retry { backoff = 0 }, function(req, handler)
        seen[#seen + 1] = req.attempt
        return handler(req)
      end }
      assert(s:get(URL))
      assert.are.same({ 1, 2, 3 }, seen)
    end)

    it("works as a per-request middleware", function()
      local route = mock:on("GET", URL, 502, 200)
      local resp = assert(session(nil):get(URL, { middlewares = { lurl.retry { backoff = 0 } } }))
      assert.are.equal(200, resp.status)
      assert.are.equal(2, #route.calls)
    end)

    it("refuses to be called as a middleware without a request", function()
      local p = lurl.retry()
      assert.has_error(function() p({}, function() end) end,
        "lurl.retry used as a middleware must be called as (req, handler)")
    end)
  end)

  -- A request answered first by answer, then by 200, through the default
  -- rules: retried (the 200 returned after 2 calls) or not (answer, 1 call).
  local function by_default(answer, retried, method)
    method = method or "GET"
    local route = mock:on(method, URL, answer, 200)
    local resp = assert(session({ lurl.retry { backoff = 0 } }):request(method, URL))
    assert.are.equal(retried and 200 or answer, resp.status)
    assert.are.equal(retried and 2 or 1, #route.calls)
  end

  describe("retry_on", function()
    for _, status in ipairs { 429, 502, 503, 504 } do
      it("retries " .. status .. " by default", function() by_default(status, true) end)
    end

    for _, status in ipairs { 500, 501, 404, 409 } do
      it("does not retry " .. status .. " by default", function() by_default(status, false) end)
    end

    for _, failure in ipairs { "refused", "reset", "disconnect", "dns" } do
      it("retries a connection failure (" .. failure .. ") by default", function()
        by_default({ error = failure }, true)
      end)
    end

    it("retries a timeout by default", function()
      local route = mock:on("GET", URL, { error = "hang" }, 200)
      local s = session { lurl.retry { backoff = 0 } }
      local resp = assert(s:get(URL, { timeout = lurl.timeout { total = 60, sock_read = 1 } }))
      assert.are.equal(200, resp.status)
      assert_all_near({ 0, 1 }, starts(route.calls))
    end)

    it("takes a list of statuses and error kinds", function()
      local route = mock:on("GET", URL, 500, { error = "refused" }, 503, 200)
      local s = session { lurl.retry { attempts = 5, backoff = 0, retry_on = { 500, "ClientConnectorError" } } }
      assert.are.equal(503, assert(s:get(URL)).status)
      assert.are.equal(3, #route.calls)
    end)

    it("takes a predicate(resp, err, attempt)", function()
      local route = mock:on("GET", URL, 200, 500, { error = "refused" }, 201)
      local seen = {}
      local s = session { lurl.retry { attempts = 5, backoff = 0, retry_on = function(resp, err, attempt)
        seen[#seen + 1] = { resp and resp.status or false, err and err.kind or false, attempt }
        return not (resp and resp.status == 201)
      end } }
      assert.are.equal(201, assert(s:get(URL)).status)
      assert.are.equal(4, #route.calls)
      assert.are.same({ { 200, false, 1 }, { 500, false, 2 }, { false, "ClientConnectorError", 3 }, { 201, false, 4 } },
        seen)
    end)
  end)

  describe("methods", function()
    for _, method in ipairs { "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE" } do
      it("retries " .. method .. " (idempotent) by default", function() by_default(503, true, method) end)
    end

    it("never retries POST by default, on a status or on a connection failure", function()
      local route = mock:on("POST", URL, 503, 200)
      local s = session { lurl.retry { attempts = 5, backoff = 0 } }
      local resp = assert(s:post(URL, { data = "order" }))
      assert.are.equal(503, resp.status)
      assert.are.equal(1, #route.calls)
      local reset = mock:on("POST", "http://api.test/reset", { error = "reset" }, 200)
      local r2, err = s:post("http://api.test/reset", { json = { item = 1 } })
      assert.is_nil(r2)
      assert.is_true(err:is("ClientConnectionError"))
      assert.are.equal(1, #reset.calls)
    end)

    it("does not retry PATCH by default", function() by_default(503, false, "PATCH") end)

    it("retries POST that carries an Idempotency-Key, the key sent each time", function()
      local route = mock:on("POST", URL, 503, { error = "reset" }, 201)
      local s = session { lurl.retry { backoff = 0 } }
      local resp = assert(s:post(URL, { data = "order", headers = { ["Idempotency-Key"] = "k-42" } }))
      assert.are.equal(201, resp.status)
      assert.are.equal(3, #route.calls)
      for _, call in ipairs(route.calls) do
        assert.are.equal("k-42", call.headers["idempotency-key"])
        assert.are.equal("order", call.body)
      end
    end)

    it("retries POST when the session's headers carry the Idempotency-Key", function()
      local route = mock:on("POST", URL, 503, 201)
      local s = session({ lurl.retry { backoff = 0 } }, { headers = { ["Idempotency-Key"] = "sess" } })
      assert.are.equal(201, assert(s:post(URL)).status)
      assert.are.equal(2, #route.calls)
    end)

    it("retries the methods it is given, in any case", function()
      local post = mock:on("POST", URL, 503, 201)
      local patch = mock:on("PATCH", URL, 503, 200)
      local s = session { lurl.retry { backoff = 0, methods = { "post" } } }
      assert.are.equal(201, assert(s:post(URL)).status)
      assert.are.equal(2, #post.calls)
      assert.are.equal(503, assert(s:patch(URL)).status)
      assert.are.equal(1, #patch.calls)
    end)

    it("retries any method with methods = \"*\"", function()
      local route = mock:on("PATCH", URL, 503, 200)
      assert.are.equal(200, assert(session({ lurl.retry { backoff = 0, methods = "*" } }):patch(URL)).status)
      assert.are.equal(2, #route.calls)
    end)

    it("never retries a body that cannot be replayed (a generator function)", function()
      for k, p in ipairs { lurl.retry { backoff = 0 }, lurl.retry { backoff = 0, methods = "*" } } do
        local u = URL .. k
        local route = mock:on("PUT", u, 503, 200)
        local parts, i = { "a", "b" }, 0
        local resp = assert(session({ p }):put(u, { data = function()
          i = i + 1
          return parts[i]
        end }))
        assert.are.equal(503, resp.status)
        assert.are.equal(1, #route.calls)
        assert.are.equal("ab", route.calls[1].body)
      end
      -- the same body as a string is retried
      local route = mock:on("PUT", URL, 503, 200)
      assert.are.equal(200, assert(session({ lurl.retry { backoff = 0 } }):put(URL, { data = "ab" })).status)
      assert.are.equal(2, #route.calls)
    end)
  end)

  describe("Retry-After", function()
    -- A Retry-After HTTP-date offset seconds from now, under a new clock
    -- whose wall time is WALL.
    local function http_date(offset)
      clock = env.new_clock { wall = WALL }
      return support.http_date(WALL + offset)
    end

    for _, status in ipairs { 503, 429 } do
      it("waits the delta-seconds of a " .. status .. " instead of the backoff", function()
        local route = mock:on("GET", URL, { status = status, retry_after = 7 }, 200)
        local events, on_event = support.events()
        local s = session { lurl.retry { backoff = 0.5, on_event = on_event } }
        assert.are.equal(200, assert(s:get(URL)).status)
        assert_all_near({ 0, 7 }, starts(route.calls))
        local b = of_type(events, "backoff")[1]
        assert.are.equal(7, b.delay)
        assert.are.equal("retry_after", b.reason)
      end)
    end

    it("waits until an HTTP-date", function()
      local route = mock:on("GET", URL, { status = 503, headers = { ["Retry-After"] = http_date(30) } }, 200)
      assert.are.equal(200, assert(session({ lurl.retry { backoff = 0.5 } }):get(URL)).status)
      assert_all_near({ 0, 30 }, starts(route.calls))
    end)

    it("takes a date in the past as 0", function()
      local route = mock:on("GET", URL, { status = 429, headers = { ["Retry-After"] = http_date(-3600) } }, 200)
      local events, on_event = support.events()
      assert.are.equal(200, assert(session({ lurl.retry { backoff = 0.5, on_event = on_event } }):get(URL)).status)
      assert_all_near({ 0, 0 }, starts(route.calls))
      assert.are.equal(0, of_type(events, "backoff")[1].delay)
    end)

    it("fails with a ClientResponseError beyond max_wait, without sleeping", function()
      local route = mock:on("GET", URL, { status = 503, retry_after = 120, body = ("x"):rep(500) }, 200)
      local events, on_event = support.events()
      local t0 = clock:now()
      local resp, err = session({ lurl.retry { max_wait = 60, on_event = on_event } }):get(URL, { stream = true })
      assert.is_nil(resp)
      assert.are.equal("ClientResponseError", err.kind)
      assert.are.equal(503, err.status)
      assert.are.equal(120, err.retry_after)
      assert.are.equal(URL, err.url)
      assert.are.equal("GET", err.method)
      assert.matches("120", err.message)
      assert.matches("60", err.message)
      assert.are.equal(0, clock:now() - t0)
      assert.are.equal(1, #route.calls)
      assert.are.equal(0, #of_type(events, "backoff"))
      -- the response was released: its unread body closed the connection
      assert.are.equal(0, mock:open_streams())
    end)

    it("fails the same on an HTTP-date beyond max_wait", function()
      mock:on("GET", URL, { status = 429, headers = { ["Retry-After"] = http_date(3600) } }, 200)
      local resp, err = session({ lurl.retry() }):get(URL)
      assert.is_nil(resp)
      assert.are.equal(3600, err.retry_after)
      assert.are.equal(429, err.status)
      assert.are.equal(0, clock:now())
    end)

    it("waits exactly max_wait when asked that", function()
      local route = mock:on("GET", URL, { status = 503, retry_after = 60 }, 200)
      assert.are.equal(200, assert(session({ lurl.retry() }):get(URL)).status)
      assert_all_near({ 0, 60 }, starts(route.calls))
    end)

    it("returns the answer as it is after the last attempt, whatever it asks", function()
      mock:on("GET", URL, { status = 503, retry_after = 120 })
      local resp = assert(session({ lurl.retry { attempts = 1 } }):get(URL))
      assert.are.equal(503, resp.status)
      assert.are.equal("120", resp.headers["Retry-After"])
    end)

    it("is ignored with retry_after = false", function()
      local route = mock:on("GET", URL, { status = 503, retry_after = 7 }, 200)
      assert(session({ lurl.retry { backoff = 0.25, retry_after = false } }):get(URL))
      assert_all_near({ 0, 0.25 }, starts(route.calls))
    end)

    it("counts only on 429 and 503", function()
      local route = mock:on("GET", URL, { status = 502, retry_after = 7 }, 200)
      assert(session({ lurl.retry { backoff = 0.25 } }):get(URL))
      assert_all_near({ 0, 0.25 }, starts(route.calls))
    end)

    it("is not waited when it reaches past the deadline: the answer is returned", function()
      local route = mock:on("GET", URL, { status = 503, retry_after = 10 }, 200)
      local resp = assert(session({ lurl.retry { deadline = 5 } }):get(URL))
      assert.are.equal(503, resp.status)
      assert.are.equal(0, clock:now())
      assert.are.equal(1, #route.calls)
    end)
  end)

  describe("the deadline", function()
    it("is the request's total timeout: no wait reaches it", function()
      local route = mock:on("GET", URL, 503)
      local t0 = clock:now()
      local resp = assert(session({ lurl.retry { attempts = 10, backoff = 0.4 } }):get(URL, { timeout = 1 }))
      assert.are.equal(503, resp.status)
      assert_all_near({ 0, 0.4, 0.8 }, starts(route.calls))
      assert_near(0.8, clock:now() - t0)
    end)

    it("is exposed as req.remaining", function()
      mock:on("GET", URL, 503)
      local remaining = {}
      local s = session { lurl.retry { attempts = 10, backoff = 0.4 }, function(req, handler)
        remaining[#remaining + 1] = req.remaining
        return handler(req)
      end }
      assert(s:get(URL, { timeout = 1 }))
      assert_all_near({ 1, 0.6, 0.2 }, remaining, "remaining")
    end)

    it("narrows to the deadline option, and is put back on return", function()
      local route = mock:on("GET", URL, 503)
      local around, inside = {}, {}
      local s = session({ function(req, handler)
        around[1] = req.deadline_at
        local resp, err = handler(req)
        around[2] = req.deadline_at
        return resp, err
      end, lurl.retry { attempts = 10, backoff = 0.4, deadline = 0.5 }, function(req, handler)
        inside[#inside + 1] = req.deadline_at
        return handler(req)
      end }, { timeout = 10 })
      local t0 = clock:now()
      assert(s:get(URL))
      assert_all_near({ 0, 0.4 }, starts(route.calls))
      assert_near(t0 + 10, around[1])
      assert.are.equal(around[1], around[2])
      assert_all_near({ t0 + 0.5, t0 + 0.5 }, inside, "deadline_at")
    end)

    it("keeps the request's total timeout when the deadline option is longer", function()
      local route = mock:on("GET", URL, 503)
      assert(session({ lurl.retry { attempts = 10, backoff = 0.4, deadline = 60 } }):get(URL, { timeout = 1 }))
      assert.are.equal(3, #route.calls)
    end)

    it("cuts an attempt that hangs, and starts none after it", function()
      local t0 = clock:now()
      fails({ error = "hang" }, lurl.retry { attempts = 5, backoff = 0.1 }, "TimeoutError", 1, { timeout = 2 })
      assert_near(2, clock:now() - t0)
    end)

    it("starts no attempt once it has passed", function() support.nothing_past_deadline(lurl.retry()) end)

    it("holds when callbacks take time: a wait that no longer fits is not begun", function()
      local route = mock:on("GET", URL, 503)
      local _, on_event = support.events()
      local p = lurl.retry { attempts = 5, backoff = 0.5, deadline = 1, on_event = on_event,
        on_retry = function() lurl.sleep(0.8) end }
      local resp = assert(session({ p }):get(URL))
      assert.are.equal(503, resp.status)
      assert.are.equal(1, #route.calls)
      assert_near(0.8, clock:now())
    end)

    -- The property of the issue: whatever the failures, the backoff and its
    -- jitter, the retries never outlast the deadline and start no attempt
    -- after it.
    local JITTERS = { "none", "full", "equal", "decorrelated" }

    local function random_backoff(r)
      local kind = math.floor(r() * 3)
      local b = 0.05 + r() * 0.5
      if kind == 0 then return b end
      local jitter = JITTERS[1 + math.floor(r() * 4)]
      if kind == 1 then return lurl.backoff.linear { base = b, step = r(), jitter = jitter } end
      return lurl.backoff.exponential { base = b, factor = 1 + 2 * r(), max = b + 3 * r(), jitter = jitter }
    end

    local function random_answer(r)
      local k, delay = math.floor(r() * 9), math.floor(r() * 20) / 10
      if k == 0 then return 503 end
      if k == 1 then return { status = 503, delay = delay } end
      if k == 2 then return { error = "reset" } end
      if k == 3 then return { error = "hang" } end
      if k == 4 then return { error = "refused" } end
      if k == 5 then return { status = 429, retry_after = math.floor(r() * 4) } end
      if k == 6 then return { status = 504, delay = delay } end
      if k == 7 then return { status = 502, drip = { size = 1, interval = 0.05 }, body = "abcdefgh" } end
      return { status = 200, delay = delay }
    end

    it("is never exceeded, across 200 random seeds (middleware)", function()
      local retried = 0
      for seed = 1, 200 do
        local r = base.rng(seed)
        local u = URL .. "/" .. seed
        local answers = {}
        for i = 1, 12 do answers[i] = random_answer(r) end
        local route = mock:on("GET", u, unpack(answers))
        local d = 0.2 + r() * 4.8
        local by_option = r() < 0.5
        local starts_at = {}
        local p = lurl.retry { attempts = 2 + math.floor(r() * 9), backoff = random_backoff(r), rng = seed,
          deadline = by_option and d or nil, per_try_timeout = r() < 0.3 and 0.1 + r() or nil,
          on_event = function(ev) if ev.type == "attempt_start" then starts_at[#starts_at + 1] = sched.now() end end }
        local s = session { p }
        local t0 = clock:now()
        s:get(u, { timeout = not by_option and d or nil })
        local elapsed = clock:now() - t0
        assert.is_true(elapsed <= d + EPS, ("seed %d: %.6f s elapsed, deadline %.6f s"):format(seed, elapsed, d))
        for i, t in ipairs(starts_at) do
          assert.is_true(t - t0 < d, ("seed %d: attempt %d started at %.6f, deadline %.6f"):format(seed, i, t - t0, d))
        end
        for i, call in ipairs(route.calls) do
          assert.is_true(call.at - t0 < d, ("seed %d: call %d at %.6f, deadline %.6f"):format(seed, i, call.at - t0, d))
        end
        if #starts_at > 1 then retried = retried + 1 end
        s:close()
      end
      -- the seeds did exercise retries
      assert.is_true(retried > 100, retried .. " runs retried")
    end)

    it("is never exceeded, across 200 random seeds (policy:run)", function()
      for seed = 1, 200 do
        local r = base.rng(seed)
        local d = 0.2 + r() * 4.8
        local by_option = r() < 0.5
        local starts_at = {}
        local p = lurl.retry { attempts = 2 + math.floor(r() * 9), backoff = random_backoff(r), rng = seed,
          deadline = by_option and d or nil, per_try_timeout = r() < 0.3 and 0.1 + r() or nil }
        local t0 = clock:now()
        p:run(function(ctx)
          starts_at[#starts_at + 1] = sched.now()
          assert.is_true(ctx.remaining > 0)
          lurl.sleep(math.floor(r() * 20) / 10)
          local k = r()
          if k < 0.4 then return nil, lurl.error("ClientConnectionError", "down") end
          if k < 0.7 then return lurl.response { status = 503 } end
          if k < 0.85 then return lurl.response { status = 429, headers = { ["Retry-After"] = "1" } } end
          return "ok"
        end, { deadline = not by_option and d or nil })
        local elapsed = clock:now() - t0
        assert.is_true(elapsed <= d + EPS, ("seed %d: %.6f s elapsed, deadline %.6f s"):format(seed, elapsed, d))
        for i, t in ipairs(starts_at) do
          assert.is_true(t - t0 < d, ("seed %d: attempt %d started at %.6f, deadline %.6f"):format(seed, i, t - t0, d))
        end
      end
    end)
  end)

  describe("per_try_timeout", function()
    it("cuts a try that hangs with a TimeoutError, which is retried", function()
      local route = mock:on("GET", URL, { error = "hang" }, 200)
      local events, on_event = support.events()
      local s = session { lurl.retry { backoff = 0.5, per_try_timeout = 1, on_event = on_event } }
      local resp = assert(s:get(URL))
      assert.are.equal(200, resp.status)
      assert_all_near({ 0, 1.5 }, starts(route.calls))
      local first = of_type(events, "attempt_end")[1]
      assert.is_true(first.error:is("TimeoutError"))
      assert.is_true(first.failed)
      assert.are.equal(1, first.elapsed)
      assert.are.equal("TimeoutError", of_type(events, "backoff")[1].reason)
    end)

    it("sets req.timeout for each try and puts the old value back", function()
      mock:on("GET", URL, 503, 200)
      local inside, after = {}, "unset"
      local s = session { function(req, handler)
        local resp, err = handler(req)
        after = req.timeout
        return resp, err
      end, lurl.retry { backoff = 0, per_try_timeout = 2 }, function(req, handler)
        inside[#inside + 1] = req.timeout
        return handler(req)
      end }
      assert(s:get(URL))
      assert.are.same({ 2, 2 }, inside)
      assert.is_nil(after)
    end)

    it("leaves no connection behind when every try hangs", function()
      fails({ error = "hang" }, lurl.retry { backoff = 0.5, per_try_timeout = 1 }, "TimeoutError", 3)
      assert_near(4, clock:now())
      assert.are.equal(0, mock:open_streams())
    end)

    it("is cut by the overall deadline", function()
      local p = lurl.retry { backoff = 0.5, per_try_timeout = 1 }
      fails({ error = "hang" }, p, "TimeoutError", 1, { timeout = 1.25 })
      assert_near(1, clock:now())
    end)

    it("cancels a function under policy:run that overruns it", function()
      local finished, tries = {}, 0
      local p = lurl.retry { backoff = 0.5, per_try_timeout = 1 }
      local res = p:run(function(ctx)
        tries = tries + 1
        if ctx.attempt == 1 then
          lurl.sleep(5)
          finished[#finished + 1] = ctx.attempt
        end
        return "ok " .. ctx.attempt
      end)
      assert.are.equal("ok 2", res)
      assert.are.equal(2, tries)
      assert_near(1.5, clock:now())
      lurl.sleep(10)
      assert.are.same({}, finished)
    end)
  end)

  describe("budget", function()
    it("retry_budget: ratio of the requests of the window, whole retries only", function()
      local route = mock:on("GET", URL, 503)
      local budget = lurl.retry_budget { ratio = 0.5, min_per_second = 0, ttl = 10 }
      local events, on_event = support.events()
      local s = session { lurl.retry { attempts = 2, backoff = 0, budget = budget, on_event = on_event } }
      local calls = {}
      for i = 1, 4 do
        local before = #route.calls
        assert(s:get(URL))
        calls[i] = #route.calls - before
      end
      -- requests 1..4 deposit; 0.5 * n - retries >= 1 holds for the 2nd and the 4th
      assert.are.same({ 1, 2, 1, 2 }, calls)
      local denied = of_type(events, "budget_denied")
      assert.are.equal(2, #denied)
      assert.are.equal(1, denied[1].attempt)
      assert.are.equal(tostring(budget), denied[1].budget)
      assert.are.equal(ORIGIN, denied[1].key)
      -- ten seconds later the window is empty again
      lurl.sleep(10)
      local before = #route.calls
      assert(s:get(URL))
      assert.are.equal(1, #route.calls - before)
    end)

    it("retry_budget: min_per_second * ttl retries however few the requests, renewed over time", function()
      local route = mock:on("GET", URL, 503)
      local budget = lurl.retry_budget { ratio = 0, min_per_second = 0.2, ttl = 10 }
      local s = session { lurl.retry { attempts = 5, backoff = 0, budget = budget } }
      local function calls()
        local before = #route.calls
        assert(s:get(URL))
        return #route.calls - before
      end
      assert.are.equal(3, calls())
      assert.are.equal(1, calls())
      lurl.sleep(5)
      assert.are.equal(1, calls())
      lurl.sleep(5)
      assert.are.equal(3, calls())
    end)

    it("token_bucket: retries stop at max_tokens / 2, successes earn tokens back", function()
      local bad = mock:on("GET", URL, 503)
      local good = mock:on("GET", "http://api.test/ok", 200)
      local budget = lurl.token_bucket { max_tokens = 4, token_ratio = 0.5 }
      local events, on_event = support.events()
      local s = session { lurl.retry { attempts = 5, backoff = 0, budget = budget, on_event = on_event } }
      assert(s:get(URL))
      -- 4 -> 3 (retry allowed: 3 > 2) -> 2 (denied: 2 is not above 2)
      assert.are.equal(2, #bad.calls)
      assert.are.equal(2, budget:tokens(ORIGIN))
      assert.are.equal(1, #of_type(events, "budget_denied"))
      assert(s:get("http://api.test/ok"))
      assert.are.equal(1, #good.calls)
      assert.are.equal(2.5, budget:tokens(ORIGIN))
      assert(s:get(URL))
      -- 2.5 -> 1.5: denied at once
      assert.are.equal(3, #bad.calls)
      assert.are.equal(2, #of_type(events, "budget_denied"))
    end)

    it("is shared across sessions and policies, and kept per host", function()
      local a = mock:on("GET", "http://a.test/", 503)
      local b = mock:on("GET", "http://b.test/", 503)
      local budget = lurl.retry_budget { ratio = 0, min_per_second = 0.1, ttl = 10 }
      local s1 = session { lurl.retry { attempts = 3, backoff = 0, budget = budget } }
      local s2 = session { lurl.retry { attempts = 3, backoff = 0, budget = budget } }
      assert(s1:get("http://a.test/"))
      assert.are.equal(2, #a.calls)
      assert(s2:get("http://a.test/"))
      assert.are.equal(3, #a.calls)
      assert(s2:get("http://b.test/"))
      assert.are.equal(2, #b.calls)
      assert.are.equal(0, budget:balance("http://a.test:80"))
    end)

    it("is kept under run's key", function()
      local budget = lurl.token_bucket { max_tokens = 2, token_ratio = 1 }
      local p = lurl.retry { attempts = 3, backoff = 0, budget = budget }
      p:run(function() return nil, "down" end, { key = "svc" })
      assert.are.equal(1, budget:tokens("svc"))
      assert.are.equal(2, budget:tokens("default"))
    end)
  end)

  describe("on_retry", function()
    it("is called before each wait with what failed", function()
      mock:on("GET", URL, 503, { error = "refused" }, 200)
      local infos = {}
      local s = session { lurl.retry { backoff = 0.5, on_retry = function(info)
        info.now = clock:now()
        infos[#infos + 1] = info
      end } }
      assert(s:get(URL))
      assert.are.equal(2, #infos)
      assert.are.equal(1, infos[1].attempt)
      assert.are.equal(0.5, infos[1].delay)
      assert.are.equal(503, infos[1].response.status)
      assert.is_nil(infos[1].error)
      assert.are.equal("GET", infos[1].method)
      assert.are.equal(URL, infos[1].url)
      assert.are.equal(0, infos[1].now)
      assert.are.equal(2, infos[2].attempt)
      assert.is_nil(infos[2].response)
      assert.is_true(infos[2].error:is("ClientConnectorError"))
      assert.are.equal(0.5, infos[2].now)
    end)

    it("stops the retries by returning false: the last outcome is returned", function()
      local route = mock:on("GET", URL, { status = 503, body = "later" }, 200)
      local events, on_event = support.events()
      local s = session { lurl.retry { on_event = on_event, on_retry = function() return false end } }
      local resp = assert(s:get(URL))
      assert.are.equal(503, resp.status)
      assert.are.equal("later", resp:text())
      assert.are.equal(1, #route.calls)
      assert.are.equal(0, #of_type(events, "backoff"))
    end)
  end)

  describe("events", function()
    local function check(list)
      assert.are.same({ "attempt_start", "attempt_end", "backoff", "attempt_start", "attempt_end" },
        field(list, "type"))
      for _, ev in ipairs(list) do
        assert.are.equal("retry", ev.policy)
        assert.are.equal("GET", ev.method)
        assert.are.equal(URL, ev.url)
        assert.are.equal(ORIGIN, ev.key)
      end
      assert.are.same({ 1, 1, 1, 2, 2 }, field(list, "attempt"))
      assert.are.equal(503, list[2].status)
      assert.is_true(list[2].failed)
      assert.are.equal(0.25, list[2].elapsed)
      assert.are.equal(0.5, list[3].delay)
      assert.are.equal("status 503", list[3].reason)
      assert.are.equal(200, list[5].status)
      assert.is_false(list[5].failed)
      assert.is_nil(list[5].error)
    end

    it("go to the trace configs and to on_event", function()
      mock:on("GET", URL, { status = 503, delay = 0.25 }, 200)
      local traced, tc = support.traced("attempt_start", "attempt_end", "backoff", "budget_denied")
      local hooked, on_event = support.events()
      local s = session({ lurl.retry { backoff = 0.5, on_event = on_event } }, { trace_configs = { tc } })
      assert(s:get(URL))
      check(traced)
      check(hooked)
    end)

    it("include budget_denied, through both", function()
      mock:on("GET", URL, 503)
      local traced, tc = support.traced("budget_denied")
      local hooked, on_event = support.events()
      local budget = lurl.token_bucket { max_tokens = 2, token_ratio = 1 }
      local s = session({ lurl.retry { budget = budget, on_event = on_event } }, { trace_configs = { tc } })
      assert(s:get(URL))
      assert.are.equal(1, #traced)
      local denied = of_type(hooked, "budget_denied")
      assert.are.equal(1, #denied)
      for _, ev in ipairs { traced[1], denied[1] } do
        assert.are.equal(1, ev.attempt)
        assert.are.equal("lurl.token_bucket { max_tokens = 2, token_ratio = 1 }", ev.budget)
        assert.are.equal(ORIGIN, ev.key)
      end
    end)

    it("name the error of a failed attempt", function()
      mock:on("GET", URL, { error = "refused" }, 200)
      local hooked, on_event = support.events()
      assert(session({ lurl.retry { backoff = 0, on_event = on_event } }):get(URL))
      assert.is_true(hooked[2].error:is("ClientConnectorError"))
      assert.is_nil(hooked[2].status)
      assert.are.equal("ClientConnectorError", hooked[3].reason)
    end)
  end)

  describe("policy:run", function()
    it("retries a plain function's failures and returns its value", function()
      local seen = {}
      local p = lurl.retry { attempts = 4, backoff = 0.1 }
      local res = p:run(function(ctx)
        seen[#seen + 1] = { ctx.attempt, sched.now() }
        if ctx.attempt < 3 then return nil, "flaky" end
        return "value"
      end)
      assert.are.equal("value", res)
      assert.are.equal(3, #seen)
      assert.are.equal(1, seen[1][1])
      assert_all_near({ 0, 0.1, 0.2 }, { seen[1][2], seen[2][2], seen[3][2] })
    end)

    it("returns the last error after the last attempt", function()
      local n = 0
      local res, err = lurl.retry { attempts = 3, backoff = 0 }:run(function()
        n = n + 1
        return nil, lurl.error("ClientConnectionError", "down " .. n)
      end)
      assert.is_nil(res)
      assert.are.equal("down 3", err.message)
    end)

    it("does not retry an error no rule names", function()
      local n = 0
      local p = lurl.retry { backoff = 0, retry_on = { 503 } }
      local _, err = p:run(function()
        n = n + 1
        return nil, "plain"
      end)
      assert.are.equal("plain", err)
      assert.are.equal(1, n)
    end)

    it("retries what a function returns when a predicate says so", function()
      local events, on_event = support.events()
      local p = lurl.retry { attempts = 5, backoff = 0, on_event = on_event,
        retry_on = function(res) return res == "not yet" end }
      local n = 0
      assert.are.equal("now", p:run(function()
        n = n + 1
        return n < 3 and "not yet" or "now"
      end))
      assert.are.same({ "retry_on", "retry_on" }, field(of_type(events, "backoff"), "reason"))
      assert.are.same({ "default", "default" }, field(of_type(events, "backoff"), "key"))
    end)

    it("exposes ctx.remaining under a deadline", function()
      local remaining = {}
      lurl.retry { attempts = 3, backoff = 1 }:run(function(ctx)
        remaining[#remaining + 1] = ctx.remaining
        return nil, "again"
      end, { deadline = 5 })
      assert_all_near({ 5, 4, 3 }, remaining, "remaining")
    end)

    it("releases a retried response, not the last", function()
      local released = {}
      local function answer(n)
        local resp = lurl.response { status = 503 }
        resp.release = function() released[#released + 1] = n end
        return resp
      end
      local resp = lurl.retry { attempts = 3, backoff = 0 }:run(function(ctx) return answer(ctx.attempt) end)
      assert.are.equal(503, resp.status)
      assert.are.same({ 1, 2 }, released)
    end)

    it("honours Retry-After of a response it returns", function()
      local times = {}
      lurl.retry { backoff = 0 }:run(function(ctx)
        times[#times + 1] = sched.now()
        if ctx.attempt == 1 then return lurl.response { status = 503, headers = { ["Retry-After"] = "3" } } end
        return "ok"
      end)
      assert_all_near({ 0, 3 }, times)
    end)

    it("lets a raised error through, not retried", function()
      local n = 0
      assert.has_error(function()
        lurl.retry { backoff = 0 }:run(function()
          n = n + 1
          error("bug")
        end)
      end)
      assert.are.equal(1, n)
    end)

    it("never retries a CancelledError", function()
      local n = 0
      local _, err = lurl.retry { backoff = 0, retry_on = function() return true end }:run(function()
        n = n + 1
        return nil, lurl.error("CancelledError", "cancelled")
      end)
      assert.are.equal("CancelledError", err.kind)
      assert.are.equal(1, n)
    end)

    it("is cancelled while it waits", function()
      local n = 0
      local p = lurl.retry { backoff = 10 }
      support.cancel_after(1, p.run, p, function()
        n = n + 1
        return nil, "down"
      end)
      assert.are.equal(1, n)
    end)

    it("checks its arguments", function()
      local p = lurl.retry()
      assert.has_error(function() p:run(42) end, "bad argument #1 to 'run' (function expected, got number)")
    end)
  end)

  describe("printing", function()
    it("has a __name and prints its settings", function()
      local p = lurl.retry()
      assert.are.equal("lurl.retry", getmetatable(p).__name)
      assert.are.equal('lurl.retry { attempts = 3, backoff = lurl.backoff.exponential { base = 0.1, factor = 2, ' ..
        'max = 10, jitter = "full" }, retry_on = { 429, 502, 503, 504, ClientConnectionError, TimeoutError }, ' ..
        'retry_after = true, max_wait = 60 }', tostring(p))
      local full = lurl.retry { attempts = 5, backoff = 0.5, retry_on = { 500, "TimeoutError" },
        methods = { "post", "PATCH" }, retry_after = false, max_wait = 5, deadline = 10, per_try_timeout = 2,
        budget = lurl.token_bucket(), on_retry = function() end, rng = 1 }
      assert.are.equal('lurl.retry { attempts = 5, ' ..
        'backoff = lurl.backoff.constant { delay = 0.5, jitter = "none" }, retry_on = { 500, TimeoutError }, ' ..
        'methods = { POST, PATCH }, retry_after = false, max_wait = 5, ' ..
        'deadline = 10, per_try_timeout = 2, budget = lurl.token_bucket { max_tokens = 10, token_ratio = 0.1 } }',
        tostring(full))
    end)

    it("prints functions as where they are defined, and shows in the session's middlewares", function()
      local p = lurl.retry { methods = "*", retry_on = function() return false end, backoff = function() return 1 end }
      local text = tostring(p)
      assert.matches('retry_on = function <[^>]*retry_spec%.lua:%d+>', text)
      assert.matches('backoff = lurl%.backoff%.custom { function <[^>]*retry_spec%.lua:%d+> }', text)
      assert.matches('methods = "%*"', text)
      local s = session { p }
      assert.are.equal("lurl.middlewares { " .. text .. " }", tostring(s.middlewares))
    end)
  end)

  describe("bad options", function()
    local cases = {
      { { tries = 3 }, "bad argument #1 to 'retry' (unknown option 'tries')" },
      { { attempts = 0 }, "bad argument 'attempts' to 'retry' (integer >= 1 expected, got 0)" },
      { { attempts = 2.5 }, "bad argument 'attempts' to 'retry' (integer >= 1 expected, got 2.5)" },
      { { attempts = "3" }, "bad argument 'attempts' to 'retry' (number expected, got string)" },
      { { backoff = "fast" }, "bad argument 'backoff' to 'retry' (seconds, a function(n, prev) or a lurl.backoff" },
      { { backoff = -1 }, "bad argument 'backoff' to 'retry' (number of seconds >= 0 expected, got -1)" },
      { { retry_on = { 503, "Oops" } }, "bad argument 'retry_on' to 'retry' (item 2 (Oops) is neither a status" },
      { { retry_on = 503 }, "bad argument 'retry_on' to 'retry'" },
      { { methods = 42 }, "bad argument 'methods' to 'retry' (list of method names or \"*\" expected, got 42)" },
      { { methods = "POST" }, "bad argument 'methods' to 'retry' (list of method names or \"*\" expected, got POST)" },
      { { methods = { "GET", 1 } }, "bad argument 'methods' to 'retry' (item 2 (1) is not a method name)" },
      { { retry_after = "yes" }, "bad argument 'retry_after' to 'retry' (boolean expected, got string)" },
      { { max_wait = -1 }, "bad argument 'max_wait' to 'retry' (number of seconds >= 0 expected, got -1)" },
      { { budget = {} }, "bad argument 'budget' to 'retry' (lurl.retry_budget or lurl.token_bucket expected" },
      { { budget = 1 }, "bad argument 'budget' to 'retry' (table expected, got number)" },
      { { deadline = -5 }, "bad argument 'deadline' to 'retry' (number of seconds >= 0 expected, got -5)" },
      { { per_try_timeout = 0 }, "bad argument 'per_try_timeout' to 'retry' (seconds > 0 expected, got 0)" },
      { { on_retry = true }, "bad argument 'on_retry' to 'retry' (function expected, got boolean)" },
      { { on_event = "log" }, "bad argument 'on_event' to 'retry' (function expected, got string)" },
      { { rng = 0.5 }, "bad argument 'rng' to 'retry' (seed (integer) or function expected, got 0.5)" },
    }
    for i, case in ipairs(cases) do
      it("raises for case " .. i .. ": " .. case[2], function()
        support.raises_at(case[2], function() lurl.retry(case[1]) end)
      end)
    end

    it("raises for options that are not a table", function()
      assert.has_error(function() lurl.retry(3) end)
    end)
  end)
end)

describe("lurl.retry over sockets", function()
  local server, s

  after_each(function()
    if s then s:close() end
    if server then server:close() end
  end)

  it("retries 503, 503 and returns the 200 of a real server", function()
    local count = 0
    server = support.server { ["/flaky"] = function()
      count = count + 1
      if count <= 2 then return { status = 503, body = "busy " .. count } end
      return { status = 200, body = "ok" }
    end }
    s = support.session(server, { middlewares = { lurl.retry { attempts = 3, backoff = 0.01 } } })
    local resp = assert(s:get("flaky"))
    assert.are.equal(200, resp.status)
    assert.are.equal("ok", resp:text())
    assert.are.equal(3, count)
  end)

  it("retries a POST with an Idempotency-Key, not one without", function()
    local keys = {}
    server = support.server { ["/orders"] = function(req)
      keys[#keys + 1] = req.headers["idempotency-key"] or false
      return { status = 503 }
    end }
    s = support.session(server, { middlewares = { lurl.retry { attempts = 3, backoff = 0.01 } } })
    assert.are.equal(503, assert(s:post("orders", { data = "x" })).status)
    assert.are.same({ false }, keys)
    assert.are.equal(503, assert(s:post("orders", { data = "x", headers = { ["Idempotency-Key"] = "k1" } })).status)
    assert.are.same({ false, "k1", "k1", "k1" }, keys)
  end)

  it("never retries a generator body, even with methods = \"*\"", function()
    local bodies = {}
    server = support.server { ["/upload"] = function(req)
      bodies[#bodies + 1] = req.body
      return { status = 503 }
    end }
    s = support.session(server, { middlewares = { lurl.retry { attempts = 3, backoff = 0.01, methods = "*" } } })
    local parts = { "a", "b", "c" }
    local i = 0
    local resp = assert(s:put("upload", { data = function()
      i = i + 1
      return parts[i]
    end }))
    assert.are.equal(503, resp.status)
    assert.are.same({ "abc" }, bodies)
  end)
end)
