-- Client middlewares (lurl.middleware and the session's middlewares
-- option): order, printing, the request description they get and change,
-- deadlines across several handler calls (exact, under the virtual clock).
local lurl = require "lurl"
local support = require "spec.support"

-- A middleware that notes its name in log on the way in and out.
local function tracer(log, name)
  return function(req, handler)
    log[#log + 1] = "enter " .. name
    local resp, err = handler(req)
    log[#log + 1] = "leave " .. name
    return resp, err
  end
end

-- A callable object that prints as a policy does.
local function policy(log, name)
  return setmetatable({}, {
    __call = function(_, req, handler) return tracer(log, name)(req, handler) end,
    __tostring = function() return "my.policy { name = \"" .. name .. "\" }" end,
  })
end

-- A middleware that hands its request to inspect(req) and passes it on.
local function peek(inspect)
  return function(req, handler)
    inspect(req)
    return handler(req)
  end
end

-- A middleware that sleeps secs (virtual time), then hands its request to
-- inspect(req) when given and passes it on.
local function after(secs, inspect)
  return function(req, handler)
    lurl.sleep(secs)
    if inspect then inspect(req) end
    return handler(req)
  end
end

local function where(fn)
  local info = debug.getinfo(fn, "S")
  return ("function <%s:%d>"):format(info.short_src, info.linedefined)
end

describe("middlewares", function()
  local env = support.policy_env()
  local session = env.session
  local mock

  before_each(function()
    env.setup()
    mock = env.mock
    mock:on("*", "http://api.test/echo", function(call)
      return { json = { method = call.method, url = call.url, body = call.body, x = call.headers["x-added"] } }
    end)
    mock:on("GET", "http://api.test/hang", { error = "hang" })
    mock:on("GET", "http://api.test/slow6", { delay = 6, body = "slow" })
    mock:on("GET", "http://api.test/503", 503)
    mock:on("GET", "http://other.test/x", "other")
  end)

  after_each(env.teardown)

  -- A session whose one middleware calls inspect(req), then answers a 204
  -- itself: nothing is sent.
  local function short_cut(inspect, opts)
    return session({ function(req)
      inspect(req)
      return lurl.response { status = 204 }
    end }, opts)
  end

  describe("the list", function()
    it("runs outer to inner: the first of the list is the outermost", function()
      local log = {}
      local s = session { tracer(log, "a"), policy(log, "b"), tracer(log, "c") }
      assert.are.equal(200, assert(s:get("http://api.test/echo")).status)
      assert.are.same({ "enter a", "enter b", "enter c", "leave c", "leave b", "leave a" }, log)
    end)

    it("prints: functions by where they are defined, objects by their tostring", function()
      local log = {}
      local fn = tracer(log, "a")
      local s = session { fn, policy(log, "b") }
      assert.are.equal("lurl.middlewares { " .. where(fn) .. ", my.policy { name = \"b\" } }", tostring(s.middlewares))
      assert.matches("^lurl%.middlewares { function <[^>]*middleware_spec%.lua:%d+>, my%.policy",
        tostring(s.middlewares))
    end)

    it("is the session's own copy of the list", function()
      local log = {}
      local list = { tracer(log, "a") }
      local s = session(list)
      list[2] = tracer(log, "b")
      s:get("http://api.test/echo")
      assert.are.same({ "enter a", "leave a" }, log)
      -- and another session may take it as it is
      local s2 = env.keep(mock:session { middlewares = s.middlewares })
      assert.are.equal(tostring(s.middlewares), tostring(s2.middlewares))
    end)

    it("an empty list runs none", function()
      local s = session {}
      assert.are.equal("lurl.middlewares {}", tostring(s.middlewares))
      assert.are.equal(200, assert(s:get("http://api.test/echo")).status)
    end)

    it("a request's middlewares replace the session's; middlewares = {} runs none", function()
      local log = {}
      local s = session { tracer(log, "session") }
      s:get("http://api.test/echo", { middlewares = { tracer(log, "request") } })
      assert.are.same({ "enter request", "leave request" }, log)
      log = {}
      s = session { tracer(log, "session") }
      assert.are.equal(200, assert(s:get("http://api.test/echo", { middlewares = {} })).status)
      assert.are.same({}, log)
      s:get("http://api.test/echo")
      assert.are.same({ "enter session", "leave session" }, log)
    end)

    it("items that cannot be called raise argument errors naming the item", function()
      support.raises_at("bad argument 'middlewares' to 'session' (item 2 is a number, not a function or callable)",
        function() lurl.session { middlewares = { function() end, 42 } } end)
      support.raises("item 1 is a table, not a function or callable", lurl.session,
        { middlewares = { setmetatable({}, {}) } })
      local s = session()
      support.raises_at("bad argument 'middlewares' to 'get' (item 1 is a string, not a function or callable)",
        function() s:get("http://api.test/echo", { middlewares = { "no" } }) end)
      support.raises("'middlewares'", s.get, s, "http://api.test/echo", { middlewares = "no" })
      support.raises("'middlewares'", lurl.session, { middlewares = 5 })
    end)

    it("an option error under a middleware blames the script's line, a typo gets a suggestion", function()
      -- a middleware that is no tail call: its own frame stays on the stack
      local s = session { function(req, handler)
        local resp, err = handler(req)
        return resp, err
      end }
      local line = debug.getinfo(1, "l").currentline
      local ok, err = pcall(function()
        local resp = s:post("http://api.test/echo", { data = 42 })
        return resp
      end)
      assert.is_false(ok)
      assert.matches("middleware_spec.lua:" .. line + 2 .. ": bad argument 'data' to 'post'", err, 1, true)
      local _, typo = pcall(function()
        local resp = s:get("http://api.test/echo", { timout = 1 })
        return resp
      end)
      assert.matches("middleware_spec.lua:" .. line + 8 .. ": bad argument #2 to 'get' (unknown option 'timout' "
        .. "(did you mean 'timeout'?))", typo, 1, true)
    end)

    it("the one-shot lurl.get takes them too", function()
      local resp = assert(lurl.get("http://nowhere.invalid/", {
        middlewares = { function() return lurl.response { status = 200, body = "short-cut" } end },
      }))
      assert.are.equal("short-cut", resp:read())
    end)
  end)

  describe("what a middleware may do", function()
    it("call the handler twice (a retry)", function()
      local statuses = {}
      local route = mock:on("GET", "http://api.test/flaky", 503, "ok")
      local s = session { function(req, handler)
        local resp, err = handler(req)
        statuses[#statuses + 1] = resp.status
        if resp.status == 503 then
          resp:release()
          req.attempt = req.attempt + 1
          resp, err = handler(req)
        end
        return resp, err
      end }
      local resp = assert(s:get("http://api.test/flaky"))
      assert.are.equal("ok", resp:read())
      assert.are.same({ 503 }, statuses)
      assert.are.equal(2, #route.calls)
    end)

    it("not call it at all (an answer from a cache)", function()
      local s = session { function()
        return lurl.response { status = 200, body = "cached", headers = { ["X-Cache"] = "hit" } }
      end }
      local resp = assert(s:get("http://api.test/echo"))
      assert.are.equal(200, resp.status)
      assert.are.equal("cached", resp:read())
      assert.are.equal("hit", resp.headers["x-cache"])
      assert.are.equal(0, #mock.calls)
    end)

    it("return nil and an error, which the caller gets", function()
      local s = session { function() return nil, lurl.error("ThrottledError", "held back") end }
      local err = support.failed("ThrottledError", nil, s:get("http://api.test/echo"))
      assert.are.equal("held back", err.message)
    end)

    it("raise, which propagates", function()
      local s = session { function() error("middleware bug", 0) end }
      local ok, err = pcall(s.get, s, "http://api.test/echo")
      assert.is_false(ok)
      assert.are.equal("middleware bug", err)
    end)

    it("add a header", function()
      local s = session { peek(function(req) req.headers:set("X-Added", "yes") end) }
      assert.are.equal("yes", assert(s:get("http://api.test/echo")):json().x)
    end)

    it("change a request the session had prepared before (its cache is not used then)", function()
      local n = 0
      local s = session { peek(function(req)
        n = n + 1
        if n == 2 then req.headers:set("X-Added", "second") end
      end) }
      assert.is_nil(assert(s:get("http://api.test/echo")):json().x)
      assert.are.equal("second", assert(s:get("http://api.test/echo")):json().x)
      assert.is_nil(assert(s:get("http://api.test/echo")):json().x)
    end)

    it("switch the URL and the method", function()
      local s = session { peek(function(req)
        if req.url == "http://api.test/503" then req.url = "http://other.test/x" end
        if req.method == "PATCH" then req.method = "PUT" end
      end) }
      assert.are.equal("other", assert(s:get("http://api.test/503")):read())
      assert.are.equal("PUT", assert(s:patch("http://api.test/echo")):json().method)
    end)

    it("change the options (params, body)", function()
      local s = session { peek(function(req)
        req.options.params = { page = 2 }
        req.options.json = { n = 1 }
      end) }
      local got = assert(s:post("http://api.test/echo")):json()
      assert.are.equal("http://api.test/echo?page=2", got.url)
      assert.are.equal('{"n":1}', got.body)
    end)

    it("returning nothing raises an error naming the middleware", function()
      local quiet = function() end
      local s = session { quiet }
      support.raises("middleware 1 (" .. where(quiet) .. ") returned neither a response nor an error",
        s.get, s, "http://api.test/echo")
      local obj = setmetatable({}, { __call = function() end, __tostring = function() return "quiet.policy {}" end })
      s = session { tracer({}, "outer"), obj }
      support.raises("middleware 2 (quiet.policy {}) returned neither a response nor an error",
        s.get, s, "http://api.test/echo")
    end)
  end)

  describe("the request description", function()
    it("has method, url, headers, options, attempt 1 and prints", function()
      local seen
      local s = session { peek(function(req) seen = req end) }
      s:post("http://api.test/echo", { headers = { ["X-H"] = "1" }, params = { a = 1 }, data = "d", timeout = 5 })
      assert.are.equal("POST", seen.method)
      -- params are part of the URL, as in aiohttp's request
      assert.are.equal("http://api.test/echo?a=1", seen.url)
      assert.are.equal("1", seen.headers:get("X-H"))
      assert.is_nil(seen.options.params)
      assert.are.equal("d", seen.options.data)
      -- what the description carries itself is not in options
      assert.is_nil(seen.options.headers)
      assert.is_nil(seen.options.timeout)
      assert.is_nil(seen.options.middlewares)
      assert.are.equal(1, seen.attempt)
      assert.are.equal("lurl.request (POST http://api.test/echo?a=1, attempt 1)", tostring(seen))
    end)

    it("an inner middleware sees what an outer one changed", function()
      local seen
      local s = session {
        peek(function(req) req.attempt = 3; req.headers:set("X-Added", "outer") end),
        peek(function(req) seen = { req.attempt, req.headers:get("X-Added") } end),
      }
      s:get("http://api.test/echo")
      assert.are.same({ 3, "outer" }, seen)
    end)

    it("remaining is math.huge without a total timeout", function()
      local seen
      local s = session({ peek(function(req) seen = req.remaining end) }, { timeout = false })
      s:get("http://api.test/echo")
      assert.are.equal(math.huge, seen)
      s:get("http://api.test/echo", { timeout = lurl.timeout { sock_read = 5 } })
      assert.are.equal(math.huge, seen)
    end)

    it("remaining is the exact time left of the total timeout", function()
      local seen = {}
      local s = session { peek(function(req) seen[#seen + 1] = req.remaining end),
        after(4, function(req) seen[#seen + 1] = req.remaining end) }
      s:get("http://api.test/echo", { timeout = 10 })
      assert.are.same({ 10, 6 }, seen)
      -- the session's default total (300 s) counts too
      seen = {}
      s:get("http://api.test/echo")
      assert.are.same({ 300, 296 }, seen)
    end)

    it("remaining never goes below 0", function()
      local seen
      local s = short_cut(function(req)
        lurl.sleep(3)
        seen = req.remaining
      end)
      s:get("http://api.test/echo", { timeout = 1 })
      assert.are.equal(0, seen)
    end)

    it("idempotent(): by method, or by an Idempotency-Key in the request or session headers", function()
      local seen
      local s = short_cut(function(req) seen = req:idempotent() end)
      for _, m in ipairs { "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE" } do
        s:request(m, "http://api.test/echo")
        assert.is_true(seen, m)
      end
      for _, m in ipairs { "POST", "PATCH" } do
        s:request(m, "http://api.test/echo")
        assert.is_false(seen, m)
      end
      s:post("http://api.test/echo", { headers = { ["Idempotency-Key"] = "k" } })
      assert.is_true(seen)
      s = short_cut(function(req) seen = { req:idempotent(), req:header("Idempotency-Key") } end,
        { headers = { ["idempotency-key"] = "s" } })
      s:post("http://api.test/echo")
      assert.are.same({ true, "s" }, seen)
    end)

    it("replayable(): false for a generator body only", function()
      local seen
      local s = short_cut(function(req) seen = req:replayable() end)
      s:post("http://api.test/echo", { data = function() return nil end })
      assert.is_false(seen)
      for _, opts in ipairs { {}, { data = "text" }, { data = { a = 1 } }, { json = { 1 } } } do
        s:post("http://api.test/echo", opts)
        assert.is_true(seen)
      end
    end)

    it("origin(): scheme://host:port with the default port filled in", function()
      local seen
      local s = short_cut(function(req) seen = req:origin() end)
      s:get("http://api.test/echo?x=1")
      assert.are.equal("http://api.test:80", seen)
      s:get("https://Secure.test/a/b")
      assert.are.equal("https://secure.test:443", seen)
      s:get("http://api.test:8080/")
      assert.are.equal("http://api.test:8080", seen)
    end)

    it("copy() is independent: headers, options and fields", function()
      local orig, copy
      local s = session { function(req, handler)
        copy = req:copy()
        copy.headers:set("X-Added", "copy")
        copy.options.data = "copy"
        copy.method = "DELETE"
        copy.attempt = 2
        orig = req
        return handler(req)
      end }
      local got = assert(s:get("http://api.test/echo", { params = { a = 1 } })):json()
      assert.are.equal("GET", got.method)
      assert.are.equal("http://api.test/echo?a=1", got.url)
      assert.is_nil(got.x)
      assert.is_nil(orig.headers:get("X-Added"))
      assert.is_nil(orig.options.data)
      assert.are.equal("http://api.test/echo?a=1", orig.url)
      assert.are.equal(1, orig.attempt)
      assert.are.equal(getmetatable(orig), getmetatable(copy))
      assert.are.equal("lurl.request (DELETE http://api.test/echo?a=1, attempt 2)", tostring(copy))
      assert.are.equal(orig.remaining, copy.remaining)
    end)

    it("a copy may be sent in place of the request", function()
      local s = session { function(req, handler)
        local c = req:copy()
        c.headers:set("X-Added", "from copy")
        return handler(c)
      end }
      assert.are.equal("from copy", assert(s:get("http://api.test/echo")):json().x)
    end)
  end)

  describe("deadlines", function()
    it("req.timeout is a per-attempt limit: a hang fails at t = 1 while the total is 10", function()
      local s = session { peek(function(req) req.timeout = 1 end) }
      support.failed("TimeoutError", 1, s:get("http://api.test/hang", { timeout = 10 }))
    end)

    it("per-attempt limits, then the total for the last try", function()
      local times = {}
      local s = session { function(req, handler)
        req.timeout = 1
        local _, err = handler(req)
        times[#times + 1] = err.kind .. "@" .. lurl.now()
        req.timeout = 2
        _, err = handler(req)
        times[#times + 1] = err.kind .. "@" .. lurl.now()
        req.timeout = nil
        return handler(req)
      end }
      support.failed("TimeoutError", 10, s:get("http://api.test/hang", { timeout = 10 }))
      assert.are.same({ "TimeoutError@1", "TimeoutError@3" }, times)
    end)

    it("req.timeout is clamped by the overall deadline", function()
      local s = session { after(8, function(req) req.timeout = 5 end) }
      local err = support.failed("TimeoutError", 10, s:get("http://api.test/hang", { timeout = 10 }))
      assert.matches("10", err.message, 1, true)
    end)

    it("a deadline a middleware narrowed names the time the attempt had left", function()
      local s = session { peek(function(req) req.deadline_at = lurl.now() + 2 end) }
      local err = support.failed("TimeoutError", 2, s:get("http://api.test/hang", { timeout = 10 }))
      assert.matches("total timeout of 2s expired", err.message, 1, true)
    end)

    it("an attempt's own limit says so when it expires", function()
      local s = session { peek(function(req) req.timeout = 1 end) }
      local err = support.failed("TimeoutError", 1, s:get("http://api.test/hang", { timeout = 10 }))
      assert.are.equal("timeout of 1s for this attempt expired after 1.00s waiting for the response head", err.message)
      assert.are.equal("head", err.phase)
    end)

    it("req.timeout applies without any total timeout", function()
      local s = session({ peek(function(req) req.timeout = 2.5 end) }, { timeout = false })
      support.failed("TimeoutError", 2.5, s:get("http://api.test/hang"))
    end)

    it("req.timeout may be a lurl.timeout (sock_read for one attempt)", function()
      mock:on("GET", "http://api.test/drip", { body = "abc", drip = { size = 1, interval = 2 } })
      local s = session { peek(function(req) req.timeout = lurl.timeout { sock_read = 1 } end) }
      support.failed("SocketTimeoutError", 1, s:get("http://api.test/drip", { timeout = 10 }))
    end)

    it("the overall deadline covers every handler call: two of 6 s against 10 fail the second at t = 10", function()
      local first
      local s = session { function(req, handler)
        local resp = assert(handler(req))
        first = { resp:read(), lurl.now() }
        return handler(req)
      end }
      support.failed("TimeoutError", 10, s:get("http://api.test/slow6", { timeout = 10 }))
      assert.are.same({ "slow", 6 }, first)
    end)

    it("req.deadline_at narrowed by a middleware bounds the handler", function()
      local s = session { function(req, handler)
        req.deadline_at = lurl.now() + 2
        assert.are.equal(2, req.remaining)
        return handler(req)
      end }
      support.failed("TimeoutError", 2, s:get("http://api.test/hang", { timeout = 10 }))
    end)

    it("a handler called after the overall deadline fails at once, without sending the request", function()
      local s = session { after(12) }
      support.failed("TimeoutError", 12, s:get("http://api.test/hang", { timeout = 10 }))
      assert.are.equal(0, #mock.calls)
    end)

    it("the time a middleware spends itself counts against the deadline", function()
      local s = session { after(5) }
      support.failed("TimeoutError", 10, s:get("http://api.test/slow6", { timeout = 10 }))
    end)
  end)

  describe("with the rest of the session", function()
    it("raise_for_status applies after the chain: a middleware sees the 503", function()
      local seen
      local s = session({ function(req, handler)
        local resp, err = handler(req)
        seen = resp and resp.status
        return resp, err
      end }, { raise_for_status = true })
      local err = support.failed("ClientResponseError", nil, s:get("http://api.test/503"))
      assert.are.equal(503, seen)
      assert.are.equal(503, err.status)
    end)

    it("raise_for_status sees what the chain returns, not what the handler got", function()
      local s = session({ function(req, handler)
        local resp = handler(req)
        if resp.status == 503 then
          resp:release()
          return lurl.response { status = 200, body = "stale but fine" }
        end
        return resp
      end }, { raise_for_status = true })
      assert.are.equal("stale but fine", assert(s:get("http://api.test/503")):read())
    end)

    it("a request's raise_for_status applies too", function()
      local s = session { peek(function() end) }
      support.failed("ClientResponseError", nil, s:get("http://api.test/503", { raise_for_status = true }))
    end)

    it("trace configs see request_start for each handler call", function()
      local starts, ends = {}, {}
      local tc = lurl.trace_config {
        on_request_start = function(_, _, p) starts[#starts + 1] = p.method .. " " .. p.url end,
        on_request_end = function(_, _, p) ends[#ends + 1] = p.response.status end,
      }
      local s = session({ function(req, handler)
        local resp = assert(handler(req))
        resp:release()
        req.url = "http://other.test/x"
        return handler(req)
      end }, { trace_configs = { tc } })
      assert.are.equal("other", assert(s:get("http://api.test/503")):read())
      assert.are.same({ "GET http://api.test/503", "GET http://other.test/x" }, starts)
      assert.are.same({ 503, 200 }, ends)
    end)

    it("req:emit sends a signal to the trace configs", function()
      local got
      local tc = lurl.trace_config { on_backoff = function(_, _, p) got = p end }
      local s = session({ function(req, handler)
        req:emit("backoff", { delay = 0.5 })
        return handler(req)
      end }, { trace_configs = { tc } })
      s:get("http://api.test/echo")
      assert.are.same({ delay = 0.5 }, got)
    end)

    it("req:emit of a signal lurl.trace does not know raises, traced or not", function()
      local s = session { function(req, handler)
        req:emit("no_such_signal", {})
        return handler(req)
      end }
      support.raises("bad argument #1 to 'emit' (unknown signal 'no_such_signal')", s.get, s, "http://api.test/echo")
    end)

    it("cookies set during the first call go with the second", function()
      mock:on("GET", "http://api.test/login", { headers = { ["Set-Cookie"] = "sid=1" }, body = "in" })
      mock:on("GET", "http://api.test/me", function(call) return call.headers["cookie"] or "none" end)
      local s = session { function(req, handler)
        local url = req.url
        req.url = "http://api.test/login"
        assert(handler(req)):release()
        req.url = url
        return handler(req)
      end }
      assert.are.equal("sid=1", assert(s:get("http://api.test/me")):read())
    end)

    it("connections are reused across handler calls and none is left open", function()
      local s = session { function(req, handler)
        assert(handler(req)):release()
        return handler(req)
      end }
      assert(s:get("http://api.test/echo")):read()
      assert.are.same({ 1, 1 }, { mock.calls[1].connection, mock.calls[2].connection })
      assert.are.equal(0, s.connector:stats().in_use)
      s:close()
      assert.are.equal(0, mock:open_streams())
    end)
  end)
end)
