-- Request tracing (lurl.trace_config, after aiohttp's TraceConfig) and the
-- per-response timings (resp.timings).
local lurl = require "lurl"
local trace = require "lurl.trace"
local support = require "spec.support"

local LOOPBACK = { { ip = "127.0.0.1", family = 4 } }

-- A trace config that logs every signal's name, in order, with its params.
local function recorder()
  local rec = { names = {}, params = {}, ctxs = {} }
  local tc = lurl.trace_config()
  for _, name in ipairs(trace.SIGNALS) do
    table.insert(tc["on_" .. name], function(session, ctx, params)
      rec.names[#rec.names + 1] = name
      rec.params[#rec.params + 1] = params
      rec.ctxs[#rec.ctxs + 1] = ctx
      rec.session = session
    end)
  end
  rec.tc = tc
  function rec.reset() rec.names, rec.params, rec.ctxs = {}, {}, {} end
  -- params of the first signal with that name
  function rec.get(name)
    for i, n in ipairs(rec.names) do if n == name then return rec.params[i] end end
  end
  function rec.count(name)
    local n = 0
    for _, v in ipairs(rec.names) do if v == name then n = n + 1 end end
    return n
  end
  -- the names without response_chunk_received (how many there are depends
  -- on how the body arrives)
  function rec.shape()
    local out = {}
    for _, n in ipairs(rec.names) do
      if n ~= "response_chunk_received" or out[#out] ~= n then out[#out + 1] = n end
    end
    return out
  end
  return rec
end

-- Run fn with io.stderr replaced; returns what was written and fn's results.
local function capture_stderr(fn)
  local saved, buf = io.stderr, {}
  io.stderr = { write = function(self, ...)
    for i = 1, select("#", ...) do buf[#buf + 1] = tostring((select(i, ...))) end
    return self
  end }
  local res = { pcall(fn) }
  io.stderr = saved
  if not res[1] then error(res[2], 0) end
  return table.concat(buf), unpack(res, 2, table.maxn(res))
end

local function ok_body(resp, err)
  assert(resp, tostring(err))
  return resp:read()
end

-- Every spec below has a fresh test server, and closes it and its session s
-- (if it made one) at the end.
local server, s

local function start_server()
  server = support.server {
    ["/x"] = function() return "hello" end,
    ["/hop2"] = function() return { status = 302, headers = { Location = "/hop1" } } end,
    ["/hop1"] = function() return { status = 301, headers = { Location = "/x" } } end,
    ["/echo"] = function(req) return req.body end,
    ["/slow"] = function() return { delay = 0.2, body = "slow" } end,
    ["/drip"] = function() return { body = "abcde", drip = { size = 1, interval = 0.05 } } end,
    ["/once"] = function(req)
      if req.connection_requests > 1 then return { drop = true } end
      return "once"
    end,
    ["/hold"] = function() lurl.sleep(0.3); return "held" end,
  }
end

local function stop_server()
  if s then s:close(); s = nil end
  server:close()
end

describe("trace", function()
  before_each(start_server)
  after_each(stop_server)

  describe("trace_config", function()
    it("lists every signal and offers each as a list", function()
      for _, name in ipairs {
        "request_start", "request_end", "request_exception", "request_redirect",
        "request_headers_sent", "request_chunk_sent", "response_chunk_received",
        "connection_queued_start", "connection_queued_end",
        "connection_create_start", "connection_create_end", "connection_reuseconn",
        "dns_resolvehost_start", "dns_resolvehost_end", "dns_cache_hit", "dns_cache_miss",
        "request_stale_retry",
      } do
        local found = false
        for _, n in ipairs(trace.SIGNALS) do found = found or n == name end
        assert.is_true(found, name .. " missing from SIGNALS")
      end
      local tc = lurl.trace_config()
      for _, name in ipairs(trace.SIGNALS) do assert.are.same({}, tc["on_" .. name]) end
    end)

    it("takes a function or a list of functions per signal", function()
      local f, g = function() end, function() end
      local tc = lurl.trace_config { on_request_start = f, on_request_end = { f, g } }
      assert.are.same({ f }, tc.on_request_start)
      assert.are.same({ f, g }, tc.on_request_end)
    end)

    it("rejects an unknown signal, a non-function and a non-table", function()
      local ok, err = pcall(lurl.trace_config, { on_request_begin = function() end })
      assert.is_false(ok)
      assert.matches("on_request_begin", err, 1, true)
      ok, err = pcall(lurl.trace_config, { on_request_start = "print" })
      assert.is_false(ok)
      assert.matches("on_request_start", err, 1, true)
      assert.has_error(function() lurl.trace_config { on_request_end = { function() end, 5 } } end)
      assert.has_error(function() lurl.trace_config { ctx_factory = {} } end)
      assert.has_error(function() lurl.trace_config(5) end)
    end)

    it("sessions reject items that are not trace configs", function()
      local ok, err = pcall(lurl.session, { trace_configs = { { on_request_start = {} } } })
      assert.is_false(ok)
      assert.matches("trace_configs", err, 1, true)
      assert.has_error(function() lurl.session { trace_configs = { lurl.trace_config(), "x" } } end)
    end)
  end)

  describe("signals", function()
    it("of a first request, in order", function()
      local rec = recorder()
      local r = support.resolver { ["example.test"] = LOOPBACK }
      s = lurl.session { connector = lurl.connector { resolver = r.fn }, trace_configs = { rec.tc } }
      local u = ("http://example.test:%d/x"):format(server.port)
      assert.are.equal("hello", ok_body(s:get(u)))
      assert.are.same({
        "request_start",
        "connection_create_start",
        "dns_cache_miss", "dns_resolvehost_start", "dns_resolvehost_end",
        "connection_create_end",
        "request_headers_sent",
        "response_chunk_received",
        "request_end",
      }, rec.shape())
      assert.are.equal(s, rec.session)
    end)

    it("of a request on a reused connection, in order", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      ok_body(s:get("x"))
      rec.reset()
      ok_body(s:get("x"))
      assert.are.same({
        "request_start", "connection_reuseconn", "request_headers_sent", "response_chunk_received", "request_end",
      }, rec.shape())
    end)

    it("of a request on a new connection to an IP: no DNS signals", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      ok_body(s:get("x"))
      assert.are.same({
        "request_start", "connection_create_start", "connection_create_end", "request_headers_sent",
        "response_chunk_received", "request_end",
      }, rec.shape())
    end)

    it("of a second connection to a cached name: a cache hit", function()
      local rec = recorder()
      local r = support.resolver { ["example.test"] = LOOPBACK }
      s = lurl.session { connector = lurl.connector { resolver = r.fn, force_close = true },
        trace_configs = { rec.tc } }
      local u = ("http://example.test:%d/x"):format(server.port)
      ok_body(s:get(u))
      rec.reset()
      ok_body(s:get(u))
      assert.are.same({
        "request_start", "connection_create_start", "dns_cache_hit", "connection_create_end",
        "request_headers_sent", "response_chunk_received", "request_end",
      }, rec.shape())
      assert.are.equal("example.test", rec.get("dns_cache_hit").host)
    end)

    it("of a request that waited for a pool slot", function()
      if support.h1_only("over HTTP/2 the second request takes a stream of the same connection") then return end
      local rec = recorder()
      s = support.session(server, { connector = lurl.connector { limit = 1 } })
      local holder = lurl.spawn(function() return s:get("hold") end)
      assert.is_truthy(support.eventually(function() return s.connector:stats().in_use == 1 end))
      local traced = support.session(server, { connector = s.connector, connector_owner = false,
        trace_configs = { rec.tc } })
      ok_body(traced:get("x"))
      ok_body(holder:join(10))
      traced:close()
      assert.are.same({
        "request_start", "connection_queued_start", "connection_queued_end", "connection_reuseconn",
        "request_headers_sent", "response_chunk_received", "request_end",
      }, rec.shape())
    end)

    it("of a request body: request_chunk_sent carries it", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      ok_body(s:post("echo", { data = "payload" }))
      local sent = rec.get("request_chunk_sent")
      assert.are.equal("payload", sent.chunk)
      assert.are.equal("POST", sent.method)
      -- after the headers, before the answer
      local shape = rec.shape()
      assert.are.same({ "request_headers_sent", "request_chunk_sent", "response_chunk_received" },
        { shape[4], shape[5], shape[6] })
      -- no body, no chunk signal
      rec.reset()
      ok_body(s:get("x"))
      assert.are.equal(0, rec.count("request_chunk_sent"))
    end)

    it("of a failed request: request_exception with the error", function()
      local rec = recorder()
      s = lurl.session { trace_configs = { rec.tc } }
      local u = ("http://127.0.0.1:%d/"):format(support.free_port())
      local resp, err = s:get(u)
      assert.is_nil(resp)
      assert.are.same({ "request_start", "connection_create_start", "request_exception" }, rec.shape())
      local p = rec.get("request_exception")
      assert.are.equal("GET", p.method)
      assert.are.equal(u, p.url)
      assert.are.equal("ClientConnectorError", p.exception.kind)
      assert.are.equal(err.kind, p.exception.kind)
    end)

    it("of a timed-out request: request_exception with the timeout", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      local resp = s:get("slow", { timeout = 0.05 })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", rec.get("request_exception").exception.kind)
      assert.are.equal(0, rec.count("request_end"))
    end)

    it("of a stale connection retried", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      ok_body(s:get("once"))
      rec.reset()
      assert.are.equal("once", ok_body(s:get("once")))
      assert.are.same({
        "request_start", "connection_reuseconn", "request_headers_sent",
        "request_stale_retry",
        "connection_create_start", "connection_create_end", "request_headers_sent",
        "response_chunk_received", "request_end",
      }, rec.shape())
      local p = rec.get("request_stale_retry")
      assert.are.equal("GET", p.method)
      assert.are.equal(server:url("/once"), p.url)
      assert.is_true(p.exception:is("ClientConnectionError"))
    end)

    it("response_chunk_received carries the body as it arrives", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      ok_body(s:get("drip"))
      local chunks = {}
      for i, n in ipairs(rec.names) do
        if n == "response_chunk_received" then chunks[#chunks + 1] = rec.params[i].chunk end
      end
      assert.are.equal("abcde", table.concat(chunks))
      assert.is_true(#chunks >= 2, #chunks .. " chunk(s)")
    end)

    it("response_chunk_received fires as a streamed body is read", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      server:route("/dripped", function() return { body = "hello", drip = { size = 1, interval = 0.02 } } end)
      local resp = assert(s:get("dripped", { stream = true }))
      -- request_end comes with the response; the body is still arriving
      assert.is_true(rec.count("response_chunk_received") < 5)
      assert.are.equal(1, rec.count("request_end"))
      assert.are.equal("hello", resp:read())
      assert.are.equal(5, rec.count("response_chunk_received"))
    end)

    it("request_redirect fires for each redirect followed, between one start and one end", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      local resp = assert(s:get("hop2"))
      assert.are.equal("hello", resp:text())
      assert.are.equal(2, rec.count("request_redirect"))
      assert.are.equal(1, rec.count("request_start"))
      assert.are.equal(1, rec.count("request_end"))
      assert.are.equal(3, rec.count("request_headers_sent"))
      local first = rec.get("request_redirect")
      assert.are.equal("GET", first.method)
      assert.are.equal(server:url("/hop2"), first.url)
      assert.are.equal(302, first.response.status)
      assert.are.equal("127.0.0.1:" .. server.port, first.headers["host"])
      assert.are.equal(server:url("/hop2"), rec.get("request_start").url)
      assert.are.equal(resp, rec.get("request_end").response)
      assert.are.equal(server:url("/x"), rec.get("request_end").url) -- the last hop, as in aiohttp
    end)
  end)

  describe("params", function()
    it("request_start, request_headers_sent and request_end carry method, url, headers and response", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      local resp = assert(s:get("x", { headers = { ["X-Mine"] = "1" } }))
      local u = server:url("/x")
      local start = rec.get("request_start")
      assert.are.equal("GET", start.method)
      assert.are.equal(u, start.url)
      assert.are.equal("1", start.headers["x-mine"])
      local sent = rec.get("request_headers_sent")
      assert.are.equal("GET", sent.method)
      assert.are.equal(u, sent.url)
      assert.are.equal("127.0.0.1:" .. server.port, sent.headers["host"])
      local done = rec.get("request_end")
      assert.are.equal("GET", done.method)
      assert.are.equal(u, done.url)
      assert.are.equal(resp, done.response)
      assert.are.equal(200, done.response.status)
    end)
  end)

  describe("ctx", function()
    it("is one table per request and config, with trace_request_ctx", function()
      local rec = recorder()
      s = support.session(server, { trace_configs = { rec.tc } })
      local mine = { id = 7 }
      ok_body(s:get("x", { trace_ctx = mine }))
      local first = rec.ctxs[1]
      for _, ctx in ipairs(rec.ctxs) do assert.are.equal(first, ctx) end
      assert.are.equal(mine, first.trace_request_ctx)
      rec.reset()
      ok_body(s:get("x"))
      assert.are_not.equal(first, rec.ctxs[1])
      assert.is_nil(rec.ctxs[1].trace_request_ctx)
    end)

    it("carries state from request_start to request_end", function()
      local elapsed
      local tc = lurl.trace_config {
        on_request_start = function(_, ctx) ctx.t0 = lurl.now() end,
        on_request_end = function(_, ctx) elapsed = lurl.now() - ctx.t0 end,
      }
      s = support.session(server, { trace_configs = { tc } })
      ok_body(s:get("slow"))
      assert.is_true(elapsed >= 0.199 and elapsed < 2.2, "elapsed " .. tostring(elapsed))
    end)

    it("comes from ctx_factory when given", function()
      local got_arg, seen
      local tc = lurl.trace_config {
        ctx_factory = function(trc) got_arg = trc; return { made = true } end,
        on_request_end = function(_, ctx) seen = ctx end,
      }
      s = support.session(server, { trace_configs = { tc } })
      local mine = { id = 1 }
      ok_body(s:get("x", { trace_ctx = mine }))
      assert.are.equal(mine, got_arg)
      assert.is_true(seen.made)
      assert.are.equal(mine, seen.trace_request_ctx)
    end)

    it("is separate for each trace config", function()
      local a, b = recorder(), recorder()
      s = support.session(server, { trace_configs = { a.tc, b.tc } })
      ok_body(s:get("x", { trace_ctx = "shared" }))
      assert.are.same(a.names, b.names)
      assert.are_not.equal(a.ctxs[1], b.ctxs[1])
      assert.are.equal("shared", a.ctxs[1].trace_request_ctx)
      assert.are.equal("shared", b.ctxs[1].trace_request_ctx)
    end)
  end)

  describe("failing callbacks", function()
    it("are reported on stderr and the request succeeds", function()
      local after = 0
      local tc = lurl.trace_config {
        on_request_start = { function() error("tracer bug") end, function() after = after + 1 end },
        on_request_end = function() error("end bug") end,
      }
      s = support.session(server, { trace_configs = { tc } })
      local out, resp, err = capture_stderr(function() return s:get("x") end)
      assert.are.equal("hello", ok_body(resp, err))
      assert.matches("on_request_start", out, 1, true)
      assert.matches("tracer bug", out, 1, true)
      assert.matches("on_request_end", out, 1, true)
      assert.matches("end bug", out, 1, true)
      -- the next callback of the same signal still ran
      assert.are.equal(1, after)
    end)

    it("a failing ctx_factory is reported and a plain ctx used", function()
      local seen
      local tc = lurl.trace_config {
        ctx_factory = function() error("factory bug") end,
        on_request_end = function(_, ctx) seen = ctx end,
      }
      s = support.session(server, { trace_configs = { tc } })
      local out, resp, err = capture_stderr(function() return s:get("x", { trace_ctx = 3 }) end)
      assert.are.equal("hello", ok_body(resp, err))
      assert.matches("factory bug", out, 1, true)
      assert.are.equal(3, seen.trace_request_ctx)
    end)
  end)

  describe("without trace configs", function()
    it("a session works with none or an empty list", function()
      s = support.session(server)
      assert.are.equal("hello", ok_body(s:get("x")))
      s:close()
      s = support.session(server, { trace_configs = {} })
      assert.are.equal("hello", ok_body(s:get("x", { trace_ctx = { ignored = true } })))
    end)

    it("one session's configs do not trace another's requests", function()
      local rec = recorder()
      local c = lurl.connector()
      local traced = support.session(server, { connector = c, connector_owner = false, trace_configs = { rec.tc } })
      s = support.session(server, { connector = c })
      ok_body(s:get("x"))
      assert.are.same({}, rec.names)
      ok_body(traced:get("x"))
      traced:close()
      assert.are.equal(1, rec.count("request_end"))
    end)
  end)
end)

describe("timings", function()
  before_each(start_server)
  after_each(stop_server)

  local FIELDS = { "queue", "dns", "connect", "tls", "request", "ttfb", "body", "total" }

  local function assert_sane(t)
    for _, f in ipairs(FIELDS) do
      assert.are.equal("number", type(t[f]), f .. " is " .. type(t[f]))
      assert.is_true(t[f] >= 0, f .. " = " .. t[f])
    end
    assert.are.equal("boolean", type(t.reused))
    assert.is_true(t.total >= t.ttfb, ("total %g < ttfb %g"):format(t.total, t.ttfb))
    assert.is_true(t.total >= t.body, ("total %g < body %g"):format(t.total, t.body))
    assert.is_true(t.ttfb >= t.request, ("ttfb %g < request %g"):format(t.ttfb, t.request))
    -- total runs from the start to the end of the body: ttfb, then body
    assert.is_true(math.abs(t.total - (t.ttfb + t.body)) < 1e-6)
  end

  it("are all there, in seconds", function()
    s = support.session(server)
    local resp = assert(s:get("x"))
    local t = resp.timings
    assert_sane(t)
    assert.are.equal(0, t.tls)
    assert.are.equal(0, t.queue)
    assert.is_true(t.total < 2, "total " .. t.total)
  end)

  it("ttfb includes a slow server", function()
    s = support.session(server)
    local t = assert(s:get("slow")).timings
    assert_sane(t)
    assert.is_true(t.ttfb >= 0.199 and t.ttfb < 2.2, "ttfb " .. t.ttfb)
    assert.is_true(t.body < 0.2, "body " .. t.body)
  end)

  it("body covers a dripped body", function()
    s = support.session(server)
    local t = assert(s:get("drip")).timings
    assert_sane(t)
    -- five bytes, four pauses of 0.05 s
    assert.is_true(t.body >= 0.19 and t.body < 2.2, "body " .. t.body)
  end)

  it("a first connection shows connect, a reused one none", function()
    s = support.session(server)
    local first = assert(s:get("x")).timings
    assert_sane(first)
    assert.is_false(first.reused)
    assert.is_true(first.connect > 0)
    local again = assert(s:get("x")).timings
    assert_sane(again)
    assert.is_true(again.reused)
    assert.are.equal(0, again.dns)
    assert.are.equal(0, again.connect)
    assert.are.equal(0, again.tls)
  end)

  it("a first connection through a resolver shows dns", function()
    local r = support.resolver({ ["example.test"] = LOOPBACK }, 0.1)
    s = lurl.session { connector = lurl.connector { resolver = r.fn } }
    local t = assert(s:get(("http://example.test:%d/x"):format(server.port))).timings
    assert_sane(t)
    assert.is_true(t.dns >= 0.099 and t.dns < 2.1, "dns " .. t.dns)
    assert.is_true(t.connect > 0)
    assert.is_false(t.reused)
    assert.is_true(t.ttfb >= t.dns)
  end)

  it("a request queued behind limit = 1 shows queue", function()
    if support.h1_only("over HTTP/2 the second request takes a stream of the same connection") then return end
    s = support.session(server, { connector = lurl.connector { limit = 1 } })
    local holder = lurl.spawn(function() return s:get("hold") end)
    assert.is_truthy(support.eventually(function() return s.connector:stats().in_use == 1 end))
    local resp = assert(s:get("x"))
    ok_body(holder:join(10))
    local t = resp.timings
    assert_sane(t)
    assert.is_true(t.queue > 0.05 and t.queue < 2.3, "queue " .. t.queue)
    assert.is_true(t.ttfb >= t.queue)
    assert.is_true(t.reused)
  end)

  it("of a streamed response: body and total once the body was read", function()
    s = support.session(server)
    local resp = assert(s:get("drip", { stream = true }))
    local t = resp.timings
    assert.is_nil(t.total)
    assert.is_nil(t.body)
    assert.are.equal("number", type(t.ttfb))
    assert.are.equal("abcde", resp:read())
    t = resp.timings
    assert_sane(t)
    assert.is_true(t.body >= 0.15, "body " .. t.body)
  end)

  it("of a streamed response released unread have no body time", function()
    s = support.session(server)
    local resp = assert(s:get("drip", { stream = true }))
    resp:release()
    local t = resp.timings
    assert.are.equal("number", type(t.ttfb))
    -- released: the exchange is over, whatever was not read
    assert.is_true(t.total == nil or t.total >= t.ttfb)
  end)
end)
