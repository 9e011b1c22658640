-- lurl.connector: options, pool limits and the FIFO wait queue, keep-alive
-- expiry, stale-connection retry, Happy Eyeballs, local_addr, shared
-- connectors and Unix sockets.
--
-- Timing: no assertion depends on a duration beyond generous bounds. Where a
-- request must be held "in use", a gate route blocks until the spec opens it;
-- where a state is reached asynchronously (a FIN noticed, a sweeper run), the
-- spec polls for it with support.eventually.
local lurl = require "lurl"
local core = require "lurl.core"
local dial = require "lurl.dial"
local support = require "spec.support"

-- A route that blocks until g:open(); g.entered counts requests that reached it.
local function gate()
  local g = { opened = false, entered = 0 }
  function g.route(req)
    g.entered = g.entered + 1
    while not g.opened do lurl.sleep(0.005) end
    return "released " .. req.query
  end
  function g.open() g.opened = true end
  return g
end

local function ok_body(resp, err)
  assert(resp, tostring(err))
  return resp:read()
end

-- Join every task; returns the list of { results... } per task.
local function join_all(tasks, secs)
  local out = {}
  for i, t in ipairs(tasks) do out[i] = { t:join(secs or 30) } end
  return out
end

-- The pool is at rest: nothing waiting, in use or connecting.
local function assert_quiet(c, limit)
  local quiet = support.eventually(function()
    local st = c:stats()
    return st.waiting == 0 and st.in_use == 0 and st.connecting == 0
  end, 5)
  local st = c:stats()
  assert.is_truthy(quiet, ("pool not at rest: waiting %d, in_use %d, connecting %d, total %d")
    :format(st.waiting, st.in_use, st.connecting, st.total))
  if limit and limit > 0 then
    assert.is_true(st.total <= limit, ("total %d over the limit %d"):format(st.total, limit))
  end
  assert.are.equal(st.idle, st.total)
end

describe("connector", function()
  local server, s

  after_each(function()
    if s then s:close(); s = nil end
    if server then server:close(); server = nil end
  end)

  -- Fills a pool of one: starts the server (`routes` and a gate at /gate) and
  -- session s on lurl.connector { limit = 1, force_close = opts.force_close },
  -- then spawns a task (opts.hold, by default a GET of "gate?1") and waits
  -- until its request is in the gate. Returns the gate, the connector and the task.
  local function full_pool(routes, opts)
    opts = opts or {}
    local g = gate()
    routes = routes or {}
    routes["/gate"] = g.route
    server = support.server(routes)
    local c = lurl.connector { limit = 1, force_close = opts.force_close }
    s = support.session(server, { connector = c })
    local holder = lurl.spawn(opts.hold or function() return s:get("gate?1") end)
    assert.is_truthy(support.eventually(function() return g.entered == 1 end))
    return g, c, holder
  end

  describe("options", function()
    it("have aiohttp's defaults", function()
      local c = lurl.connector()
      local st = c:stats()
      assert.are.equal(100, st.limit)
      assert.are.equal(0, st.limit_per_host)
      assert.are.equal(0, st.total)
      assert.are.equal(0, st.dns_cache)
      assert.are.same({}, st.per_host)
      assert.are.equal(15, c.keepalive_timeout)
      assert.is_false(c.force_close)
      assert.are.equal(0.25, c.happy_eyeballs_delay)
      assert.is_false(c.closed)
      c:close()
      assert.is_true(c.closed)
      c:close() -- twice is fine
    end)

    it("an unknown option raises naming it", function()
      local ok, err = pcall(lurl.connector, { limt = 1 })
      assert.is_false(ok)
      assert.matches("'limt'", err, 1, true)
      assert.matches("unknown option", err, 1, true)
    end)

    local bad = {
      { limit = "10" }, { limit = -1 }, { limit = 1.5 }, { limit_per_host = true },
      { keepalive_timeout = -1 }, { keepalive_timeout = "15" }, { force_close = 1 },
      { use_dns_cache = "yes" }, { ttl_dns_cache = true }, { ttl_dns_cache = -1 },
      { dns_cache_max = 0 }, { family = 5 }, { local_addr = 5 }, { local_addr = {} },
      { happy_eyeballs_delay = -0.1 }, { happy_eyeballs_delay = true }, { resolver = "dns" },
      { retry_stale = "no" },
    }
    for _, opts in ipairs(bad) do
      local name, value = next(opts)
      it(("a wrong %s (%s) raises naming it"):format(name, tostring(value)), function()
        local ok, err = pcall(lurl.connector, opts)
        assert.is_false(ok)
        assert.matches("'" .. name .. "'", err, 1, true)
      end)
    end

    it("force_close together with keepalive_timeout raises", function()
      local ok, err = pcall(lurl.connector, { force_close = true, keepalive_timeout = 5 })
      assert.is_false(ok)
      assert.matches("keepalive_timeout", err, 1, true)
      assert.matches("force_close", err, 1, true)
      -- either alone is fine
      lurl.connector({ force_close = true }):close()
      lurl.connector({ keepalive_timeout = 5 }):close()
    end)

    it("a non-table raises", function()
      assert.has_error(function() lurl.connector(5) end)
      assert.has_error(function() lurl.unix_connector("/tmp/x.sock") end)
    end)

    it("unix_connector needs a path and takes no TCP options", function()
      local ok, err = pcall(lurl.unix_connector, {})
      assert.is_false(ok)
      assert.matches("'path'", err, 1, true)
      ok, err = pcall(lurl.unix_connector, { path = "/tmp/x.sock", resolver = function() end })
      assert.is_false(ok)
      assert.matches("'resolver'", err, 1, true)
      ok, err = pcall(lurl.unix_connector, { path = "" })
      assert.is_false(ok)
      assert.matches("'path'", err, 1, true)
    end)

    it("a session rejects a connector that is not one", function()
      assert.has_error(function() lurl.session { connector = { limit = 1 } } end)
    end)

    it("key() names an origin, IPv6 hosts in brackets", function()
      local c = lurl.connector()
      assert.are.equal("http://127.0.0.1:8080", c:key("http", "127.0.0.1", 8080))
      assert.are.equal("http://example.com:80", c:key("http", "example.com", 80))
      assert.are.equal("http://[::1]:80", c:key("http", "::1", 80))
      c:close()
    end)
  end)

  describe("stats", function()
    it("counts per origin", function()
      server = support.server { ["/x"] = function() return "x" end }
      local c = lurl.connector()
      s = support.session(server, { connector = c })
      assert.are.equal("x", ok_body(s:get("x")))
      local key = c:key("http", "127.0.0.1", server.port)
      assert.are.equal("http://127.0.0.1:" .. server.port, key)
      local st = c:stats()
      assert.are.equal(1, st.total)
      assert.are.equal(1, st.idle)
      assert.are.equal(0, st.in_use)
      assert.are.equal(0, st.connecting)
      assert.are.equal(0, st.waiting)
      assert.are.same({ idle = 1, in_use = 0, connecting = 0, waiting = 0 }, st.per_host[key])
    end)

    it("shows a request in use and one waiting", function()
      local g, c, t1 = full_pool()
      local t2 = lurl.spawn(function() return s:get("gate?2") end)
      assert.is_truthy(support.eventually(function() return c:stats().waiting == 1 end))
      local st = c:stats()
      local key = c:key("http", "127.0.0.1", server.port)
      assert.are.equal(1, st.total)
      assert.are.equal(1, st.in_use)
      assert.are.same({ idle = 0, in_use = 1, connecting = 0, waiting = 1 }, st.per_host[key])
      g.open()
      assert.are.equal("released 1", ok_body(t1:join(10)))
      assert.are.equal("released 2", ok_body(t2:join(10)))
      assert_quiet(c, 1)
    end)
  end)

  describe("limit", function()
    -- the server counts requests it is working on at the same time
    local active, peak
    local function counting(req)
      active = active + 1
      if active > peak then peak = active end
      lurl.sleep(0.02)
      active = active - 1
      return req.query
    end

    before_each(function() active, peak = 0, 0 end)

    it("caps every open connection of the pool", function()
      server = support.server { ["/count"] = counting }
      local c = lurl.connector { limit = 3 }
      s = support.session(server, { connector = c })
      local over, sampling = 0, true
      local sampler = lurl.spawn(function()
        while sampling do
          if c:stats().total > 3 then over = over + 1 end
          lurl.sleep(0.002)
        end
      end)
      local tasks = {}
      for i = 1, 30 do tasks[i] = lurl.spawn(function() return s:get("count?" .. i) end) end
      for i, r in ipairs(join_all(tasks)) do assert.are.equal(tostring(i), ok_body(r[1], r[2])) end
      sampling = false
      sampler:join(5)
      assert.are.equal(0, over)
      assert.is_true(peak <= 3, "server saw " .. peak .. " requests at once")
      assert.is_true(server.connections <= 3, server.connections .. " connections")
      assert_quiet(c, 3)
    end)

    it("0 means unlimited", function()
      local g = gate()
      server = support.server { ["/gate"] = g.route }
      local c = lurl.connector { limit = 0 }
      s = support.session(server, { connector = c })
      local tasks = {}
      for i = 1, 120 do tasks[i] = lurl.spawn(function() return s:get("gate?" .. i) end) end
      -- all 120 reach the server at once: none waits for a slot
      assert.is_truthy(support.eventually(function() return g.entered == 120 end, 10))
      assert.are.equal(120, c:stats().in_use)
      assert.are.equal(0, c:stats().waiting)
      g.open()
      for i, r in ipairs(join_all(tasks)) do assert.are.equal("released " .. i, ok_body(r[1], r[2])) end
      assert_quiet(c)
    end)

    it("limit_per_host caps one origin and leaves the others free", function()
      local ga, gb = gate(), gate()
      server = support.server { ["/gate"] = ga.route }
      local other = support.server { ["/gate"] = gb.route }
      local c = lurl.connector { limit_per_host = 1 }
      s = lurl.session { connector = c }
      local a1 = lurl.spawn(function() return s:get(server:url("/gate?a1")) end)
      assert.is_truthy(support.eventually(function() return ga.entered == 1 end))
      local a2 = lurl.spawn(function() return s:get(server:url("/gate?a2")) end)
      -- the other origin is not held up by the first one's limit
      local b1 = lurl.spawn(function() return s:get(other:url("/gate?b1")) end)
      assert.is_truthy(support.eventually(function() return gb.entered == 1 end))
      local st = c:stats()
      local ka, kb = c:key("http", "127.0.0.1", server.port), c:key("http", "127.0.0.1", other.port)
      assert.are.equal(1, st.per_host[ka].waiting)
      assert.are.equal(1, st.per_host[ka].in_use)
      assert.are.equal(1, st.per_host[kb].in_use)
      assert.are.equal(1, ga.entered)
      ga.open(); gb.open()
      assert.are.equal("released a1", ok_body(a1:join(10)))
      assert.are.equal("released a2", ok_body(a2:join(10)))
      assert.are.equal("released b1", ok_body(b1:join(10)))
      assert.are.equal(1, server.connections)
      assert_quiet(c)
      other:close()
    end)

    it("limit_per_host holds under load across several origins", function()
      server = support.server { ["/count"] = counting }
      local other = support.server { ["/count"] = counting }
      local c = lurl.connector { limit = 10, limit_per_host = 2 }
      s = lurl.session { connector = c }
      local over, sampling = nil, true
      local sampler = lurl.spawn(function()
        while sampling do
          for key, e in pairs(c:stats().per_host) do
            if e.idle + e.in_use + e.connecting > 2 then over = key end
          end
          lurl.sleep(0.002)
        end
      end)
      local tasks = {}
      for i = 1, 40 do
        local srv = i % 2 == 0 and server or other
        tasks[i] = lurl.spawn(function() return s:get(srv:url("/count?" .. i)) end)
      end
      for i, r in ipairs(join_all(tasks)) do assert.are.equal(tostring(i), ok_body(r[1], r[2])) end
      sampling = false
      sampler:join(5)
      assert.is_nil(over)
      assert.is_true(server.connections <= 2 and other.connections <= 2,
        ("connections: %d and %d"):format(server.connections, other.connections))
      assert_quiet(c, 4)
      other:close()
    end)

    it("closes an idle connection of another origin to make room", function()
      server = support.server { ["/x"] = function() return "a" end }
      local other = support.server { ["/x"] = function() return "b" end }
      local c = lurl.connector { limit = 1 }
      s = lurl.session { connector = c }
      assert.are.equal("a", ok_body(s:get(server:url("/x"))))
      assert.are.equal(1, c:stats().idle)
      -- the pool is full with an idle connection to the first origin: it goes
      assert.are.equal("b", ok_body(s:get(other:url("/x"))))
      local st = c:stats()
      assert.are.equal(1, st.total)
      -- the first origin has nothing left (an empty entry may remain)
      local gone = st.per_host[c:key("http", "127.0.0.1", server.port)]
      assert.is_true(gone == nil or (gone.idle + gone.in_use + gone.connecting + gone.waiting == 0))
      assert.are.equal(1, st.per_host[c:key("http", "127.0.0.1", other.port)].idle)
      assert.is_truthy(support.eventually(function() return server:open_connections() == 0 end))
      other:close()
    end)

    it("the idle connection closed to make room is the least recently used", function()
      local servers = {}
      for i, name in ipairs { "a", "b", "c" } do servers[i] = support.server { ["/x"] = function() return name end } end
      local a, b, cc = servers[1], servers[2], servers[3]
      local c = lurl.connector { limit = 2 }
      s = lurl.session { connector = c }
      assert.are.equal("a", ok_body(s:get(a:url("/x"))))
      assert.are.equal("b", ok_body(s:get(b:url("/x"))))
      assert.are.equal("a", ok_body(s:get(a:url("/x")))) -- b is now the older idle one
      assert.are.equal("c", ok_body(s:get(cc:url("/x"))))
      local per = c:stats().per_host
      assert.are.equal(1, per[c:key("http", "127.0.0.1", a.port)].idle)
      assert.is_nil(per[c:key("http", "127.0.0.1", b.port)])
      assert.are.equal(1, a.connections)
      for _, srv in ipairs(servers) do srv:close() end
    end)
  end)

  describe("wait queue", function()
    it("serves waiters first in, first out", function()
      local seen = {}
      server = support.server { ["/slow"] = function(req)
        seen[#seen + 1] = tonumber(req.query)
        lurl.sleep(0.01)
        return req.query
      end }
      local c = lurl.connector { limit = 1 }
      s = support.session(server, { connector = c })
      local tasks = {}
      for i = 1, 25 do
        tasks[i] = lurl.spawn(function() return s:get("slow?" .. i) end)
        lurl.sleep(0) -- let task i reach the queue before task i + 1 starts
      end
      for i, r in ipairs(join_all(tasks)) do assert.are.equal(tostring(i), ok_body(r[1], r[2])) end
      local want = {}
      for i = 1, 25 do want[i] = i end
      assert.are.same(want, seen)
      assert.are.equal(1, server.connections)
    end)

    it("a freed slot goes to the oldest waiter, whatever its origin", function()
      local log = {}
      local g = gate()
      server = support.server {
        ["/gate"] = function(req) local r = g.route(req); log[#log + 1] = "a-" .. req.query; return r end,
        ["/x"] = function(req) log[#log + 1] = "a-" .. req.query; return "a" end,
      }
      local other = support.server { ["/x"] = function(req) log[#log + 1] = "b-" .. req.query; return "b" end }
      local c = lurl.connector { limit = 1 }
      s = lurl.session { connector = c }
      local t1 = lurl.spawn(function() return s:get(server:url("/gate?1")) end)
      assert.is_truthy(support.eventually(function() return g.entered == 1 end))
      local t2 = lurl.spawn(function() return s:get(other:url("/x?2")) end)
      lurl.sleep(0)
      local t3 = lurl.spawn(function() return s:get(server:url("/x?3")) end)
      assert.is_truthy(support.eventually(function() return c:stats().waiting == 2 end))
      g.open()
      for _, r in ipairs(join_all { t1, t2, t3 }) do ok_body(r[1], r[2]) end
      -- t3 could have reused t1's connection, but t2 waited longer
      assert.are.same({ "a-1", "b-2", "a-3" }, log)
      assert_quiet(c, 1)
      other:close()
    end)

    it("pool limits the wait alone, with ConnectionTimeoutError", function()
      local g, c, holder = full_pool { ["/x"] = function() return "x" end }
      local dt, resp, err = support.timed(s.get, s, "x", { timeout = lurl.timeout { pool = 0.2 } })
      assert.is_nil(resp)
      assert.are.equal("ConnectionTimeoutError", err.kind)
      assert.is_true(err:is("TimeoutError"))
      assert.matches("pool=0.2", err.message, 1, true)
      assert.is_true(dt >= 0.199 and dt < 2.2, "fired after " .. dt)
      assert.are.equal(0, c:stats().waiting)
      g.open()
      assert.are.equal("released 1", ok_body(holder:join(10)))
      assert.are.equal("x", ok_body(s:get("x")))
      assert_quiet(c, 1)
    end)

    it("the wait counts towards connect", function()
      local g, c, holder = full_pool { ["/x"] = function() return "x" end }
      local dt, resp, err = support.timed(s.get, s, "x", { timeout = lurl.timeout { connect = 0.3 } })
      assert.is_nil(resp)
      assert.are.equal("ConnectionTimeoutError", err.kind)
      assert.matches("connect=0.3", err.message, 1, true)
      assert.is_true(dt >= 0.299 and dt < 2.3, "fired after " .. dt)
      g.open()
      ok_body(holder:join(10))
      assert_quiet(c, 1)
    end)

    it("pool does not limit name resolution or connecting", function()
      server = support.server { ["/x"] = function() return "x" end }
      local r = support.resolver({ ["slow.test"] = { { ip = "127.0.0.1", family = 4 } } }, 0.3)
      local c = lurl.connector { resolver = r.fn }
      s = lurl.session { connector = c }
      local resp = s:get(("http://slow.test:%d/x"):format(server.port), { timeout = lurl.timeout { pool = 0.05 } })
      assert.are.equal("x", ok_body(resp))
    end)

    it("a request without a pool limit waits as long as it takes", function()
      local g, c, t1 = full_pool()
      local t2 = lurl.spawn(function() return s:get("gate?2") end)
      assert.is_truthy(support.eventually(function() return c:stats().waiting == 1 end))
      lurl.sleep(0.3)
      assert.are.equal(1, c:stats().waiting)
      g.open()
      assert.are.equal("released 1", ok_body(t1:join(10)))
      assert.are.equal("released 2", ok_body(t2:join(10)))
    end)
  end)

  -- aiohttp #9670: a waiter that gave up could keep (or lose) the slot it was
  -- promised, and the pool deadlocked once every slot had leaked.
  describe("waiters that give up leak nothing (aiohttp #9670)", function()
    -- Waiter w2 is handed the connection (or slot) t1 frees, and is cancelled
    -- in the same loop turn, before it runs: what it was handed must go on
    -- to w3. `force_close` makes the freed thing a slot rather than an idle
    -- connection.
    for _, force_close in ipairs { false, true } do
      it("a waiter cancelled after the hand-off passes it on"
        .. (force_close and " (a slot)" or " (a connection)"), function()
        local w2
        local function hold()
          local resp, err = s:get("gate?1")
          -- the connection was released while the body was read: w2 has been
          -- woken with it, but has not run yet
          assert.is_true(w2:cancel())
          return resp, err
        end
        local g, c, t1 = full_pool({ ["/x"] = function(req) return req.query end },
          { force_close = force_close, hold = hold })
        w2 = lurl.spawn(function() return s:get("x?2") end)
        lurl.sleep(0)
        local w3 = lurl.spawn(function() return s:get("x?3") end)
        assert.is_truthy(support.eventually(function() return c:stats().waiting == 2 end))
        g.open()
        assert.are.equal("released 1", ok_body(t1:join(10)))
        local resp, err = w2:join(10)
        assert.is_nil(resp)
        assert.are.equal("CancelledError", err.kind)
        assert.are.equal("3", ok_body(w3:join(10)))
        assert_quiet(c, 1)
        assert.are.equal(force_close and 2 or 1, server.connections)
        assert.are.equal("4", ok_body(s:get("x?4")))
      end)
    end

    it("a waiter that times out while queued leaves the queue", function()
      local g, c, t1 = full_pool { ["/x"] = function(req) return req.query end }
      local timed_out = {}
      for i = 1, 5 do
        timed_out[i] = lurl.spawn(function() return s:get("x?" .. i, { timeout = lurl.timeout { pool = 0.05 } }) end)
      end
      local patient = lurl.spawn(function() return s:get("x?p") end)
      for _, t in ipairs(timed_out) do
        local resp, err = t:join(10)
        assert.is_nil(resp)
        assert.are.equal("ConnectionTimeoutError", err.kind)
      end
      assert.are.equal(1, c:stats().waiting)
      g.open()
      ok_body(t1:join(10))
      assert.are.equal("p", ok_body(patient:join(10)))
      assert_quiet(c, 1)
    end)

    -- A request that holds a slot while its connection is being opened
    -- (here: a slow name lookup) and gives up must free the slot.
    for _, how in ipairs { "cancelled", "timed out" } do
      it("a request " .. how .. " while resolving frees its slot", function()
        server = support.server { ["/x"] = function(req) return req.query end }
        local r = support.resolver({ ["slow.test"] = { { ip = "127.0.0.1", family = 4 } } }, 0.3)
        local c = lurl.connector { limit = 1, resolver = r.fn }
        s = lurl.session { connector = c }
        local u = ("http://slow.test:%d/x?"):format(server.port)
        local first = lurl.spawn(function()
          return s:get(u .. "1", { timeout = how == "timed out" and lurl.timeout { connect = 0.1 } or nil })
        end)
        assert.is_truthy(support.eventually(function() return c:stats().connecting == 1 end))
        local second = lurl.spawn(function() return s:get(u .. "2") end)
        assert.is_truthy(support.eventually(function() return c:stats().waiting == 1 end))
        if how == "cancelled" then first:cancel() end
        local resp, err = first:join(10)
        assert.is_nil(resp)
        assert.are.equal(how == "cancelled" and "CancelledError" or "ConnectionTimeoutError", err.kind)
        assert.are.equal("2", ok_body(second:join(10)))
        assert_quiet(c, 1)
        assert.are.equal(1, r.calls)
      end)
    end

    -- Hundreds of requests through a small pool; some are cancelled at
    -- random moments (queued, connecting, mid-exchange), others carry a
    -- short pool timeout. After each round the pool must be at rest and
    -- still serve requests.
    for _, cfg in ipairs {
      { limit = 4, limit_per_host = 0, origins = 1 },
      { limit = 5, limit_per_host = 2, origins = 3 },
      { limit = 3, limit_per_host = 0, origins = 2, force_close = true },
    } do
      local name = ("limit %d, limit_per_host %d, %d origins%s"):format(cfg.limit, cfg.limit_per_host, cfg.origins,
        cfg.force_close and ", force_close" or "")
      it("holds under load with random cancels and pool timeouts (" .. name .. ")", function()
        local seed = os.time()
        math.randomseed(seed)
        local function work(req)
          lurl.sleep(math.random() * 0.01)
          return req.query
        end
        local servers = {}
        for i = 1, cfg.origins do servers[i] = support.server { ["/w"] = work } end
        local c = lurl.connector { limit = cfg.limit, limit_per_host = cfg.limit_per_host,
          force_close = cfg.force_close }
        s = lurl.session { connector = c }
        local totals = { ok = 0, cancelled = 0, pool_timeout = 0 }
        for round = 1, 4 do
          local tasks = {}
          for i = 1, 150 do
            local srv = servers[math.random(cfg.origins)]
            local q = round .. "-" .. i
            local opts = math.random(3) == 1 and { timeout = lurl.timeout { pool = 0.05 } } or nil
            tasks[i] = lurl.spawn(function()
              local resp, err = s:get(srv:url("/w?" .. q), opts)
              return resp, err
            end)
          end
          -- cancel about a quarter of them at random moments
          local canceller = lurl.spawn(function()
            for _ = 1, 40 do
              lurl.sleep(math.random() * 0.008)
              tasks[math.random(#tasks)]:cancel()
            end
          end)
          canceller:join(30)
          for i, t in ipairs(tasks) do
            local resp, err = t:join(30)
            if resp then
              assert.are.equal(("%d-%d"):format(round, i), resp:read(), "seed " .. seed)
              totals.ok = totals.ok + 1
            elseif err.kind == "CancelledError" then
              totals.cancelled = totals.cancelled + 1
            else
              assert.are.equal("ConnectionTimeoutError", err.kind, tostring(err) .. " (seed " .. seed .. ")")
              assert.matches("pool=", err.message, 1, true)
              totals.pool_timeout = totals.pool_timeout + 1
            end
          end
          assert_quiet(c, cfg.limit)
          if cfg.limit_per_host > 0 then
            for key, e in pairs(c:stats().per_host) do
              assert.is_true(e.idle <= cfg.limit_per_host, key .. ": " .. e.idle .. " idle")
            end
          end
          -- no deadlock: every origin is still served, concurrently
          local after = {}
          for i = 1, 20 do
            local srv = servers[(i % cfg.origins) + 1]
            after[i] = lurl.spawn(function() return s:get(srv:url("/w?after-" .. i), { timeout = 10 }) end)
          end
          for i, r in ipairs(join_all(after)) do assert.are.equal("after-" .. i, ok_body(r[1], r[2])) end
          assert_quiet(c, cfg.limit)
        end
        -- the run did exercise every path
        assert.is_true(totals.ok > 0, "no request succeeded")
        assert.is_true(totals.cancelled > 0, "no request was cancelled")
        assert.is_true(totals.pool_timeout > 0, "no pool timeout fired")
        for _, srv in ipairs(servers) do srv:close() end
      end)
    end
  end)

  describe("keep-alive", function()
    before_each(function()
      server = support.server {
        ["/x"] = function(req)
          return { body = "x", headers = { ["X-Connection"] = req.headers["connection"] or "" } }
        end,
        ["/big"] = function() return ("b"):rep(200000) end,
      }
    end)

    it("reuses an idle connection", function()
      s = support.session(server)
      for _ = 1, 5 do assert.are.equal("x", ok_body(s:get("x"))) end
      assert.are.equal(1, server.connections)
    end)

    it("idle connections expire after keepalive_timeout", function()
      local c = lurl.connector { keepalive_timeout = 0.2 }
      s = support.session(server, { connector = c })
      assert.are.equal("x", ok_body(s:get("x")))
      assert.are.equal("x", ok_body(s:get("x")))
      assert.are.equal(1, server.connections)
      lurl.sleep(0.5)
      assert.are.equal("x", ok_body(s:get("x")))
      assert.are.equal(2, server.connections)
    end)

    it("a sweeper closes expired idle connections without new requests", function()
      local c = lurl.connector { keepalive_timeout = 0.2 }
      s = support.session(server, { connector = c })
      local tasks = {}
      for i = 1, 3 do tasks[i] = lurl.spawn(function() return s:get("x") end) end
      for _, r in ipairs(join_all(tasks)) do ok_body(r[1], r[2]) end
      assert.are.equal(3, c:stats().idle)
      assert.is_truthy(support.eventually(function() return c:stats().idle == 0 end, 3))
      assert.are.equal(0, c:stats().total)
      -- the client closed its ends: the server sees every connection go
      assert.is_truthy(support.eventually(function() return server:open_connections() == 0 end, 3))
    end)

    it("a connection used again before it expires stays open", function()
      local c = lurl.connector { keepalive_timeout = 0.5 }
      s = support.session(server, { connector = c })
      -- requests 0.1 s apart keep one connection fresh well past the timeout
      for _ = 1, 10 do
        assert.are.equal("x", ok_body(s:get("x")))
        lurl.sleep(0.1)
      end
      assert.are.equal(1, server.connections)
    end)

    it("force_close never reuses and sends Connection: close", function()
      local c = lurl.connector { force_close = true }
      s = support.session(server, { connector = c })
      for i = 1, 4 do
        local resp = assert(s:get("x"))
        assert.are.equal("close", resp.headers["x-connection"]:lower())
        assert.are.equal(i, server.connections)
        assert.are.equal(0, c:stats().idle)
      end
      assert_quiet(c)
      assert.are.equal(0, c:stats().total)
    end)

    it("a streamed response released before its body was read closes its connection", function()
      local c = lurl.connector()
      s = support.session(server, { connector = c })
      local resp = assert(s:get("big", { stream = true }))
      assert.are.equal(1, c:stats().in_use)
      resp:release()
      local st = c:stats()
      assert.are.equal(0, st.in_use)
      assert.are.equal(0, st.idle)
      assert.are.equal(0, st.total)
      assert.are.equal("x", ok_body(s:get("x")))
      assert.are.equal(2, server.connections)
    end)

    it("a streamed response read to the end is pooled", function()
      local c = lurl.connector()
      s = support.session(server, { connector = c })
      local resp = assert(s:get("big", { stream = true }))
      assert.are.equal(200000, #resp:read())
      assert.are.equal(1, c:stats().idle)
      assert.are.equal("x", ok_body(s:get("x")))
      assert.are.equal(1, server.connections)
    end)
  end)

  describe("stale keep-alive connections", function()
    local retries
    -- the server drops every request after the first on a connection, as a
    -- server does that closed the connection just as the client reused it
    before_each(function()
      retries = {}
      server = support.server { ["/once"] = function(req)
        if req.connection_requests > 1 then return { drop = true } end
        return ("conn %d %s"):format(req.connection, req.method)
      end }
    end)

    local function session(opts)
      local tc = lurl.trace_config { on_request_stale_retry = function(_, _, p) retries[#retries + 1] = p end }
      return support.session(server, { connector = lurl.connector(opts), trace_configs = { tc } })
    end

    it("a GET is retried once on a fresh connection", function()
      s = session()
      assert.are.equal("conn 1 GET", ok_body(s:get("once")))
      assert.are.equal("conn 2 GET", ok_body(s:get("once")))
      assert.are.equal("conn 3 GET", ok_body(s:get("once")))
      assert.are.equal(3, server.connections)
      assert.are.equal(2, #retries)
      assert.are.equal("GET", retries[1].method)
      assert.are.equal(server:url("/once"), retries[1].url)
      assert.are.equal("ServerDisconnectedError", retries[1].exception.kind)
      assert_quiet(s.connector)
    end)

    for _, method in ipairs { "HEAD", "PUT", "DELETE", "OPTIONS" } do
      it("an idempotent " .. method .. " is retried too", function()
        s = session()
        assert.is_truthy(s:request(method, "once"))
        local resp, err = s:request(method, "once")
        assert(resp, tostring(err))
        assert.are.equal(200, resp.status)
        assert.are.equal(2, server.connections)
        assert.are.equal(1, #retries)
      end)
    end

    it("a POST on a reused connection fails with ServerDisconnectedError, not retried", function()
      s = session()
      assert.are.equal("conn 1 POST", ok_body(s:post("once", { data = "a" })))
      local resp, err = s:post("once", { data = "b" })
      assert.is_nil(resp)
      assert.are.equal("ServerDisconnectedError", err.kind)
      assert.are.equal("POST", err.method)
      assert.are.equal(1, server.connections)
      assert.are.equal(0, #retries)
      assert_quiet(s.connector)
      -- the pool recovers: the next request gets a new connection
      assert.are.equal("conn 2 POST", ok_body(s:post("once", { data = "c" })))
    end)

    it("retry_stale = false does not retry a GET either", function()
      s = session { retry_stale = false }
      assert.are.equal("conn 1 GET", ok_body(s:get("once")))
      local resp, err = s:get("once")
      assert.is_nil(resp)
      assert.are.equal("ServerDisconnectedError", err.kind)
      assert.are.equal(0, #retries)
      assert.are.equal(1, server.connections)
    end)

    it("a request on a fresh connection is never retried", function()
      server:route("/drop", function() return { drop = true } end)
      s = session()
      local resp, err = s:get("drop")
      assert.is_nil(resp)
      assert.are.equal("ServerDisconnectedError", err.kind)
      assert.are.equal(1, server.connections)
      assert.are.equal(0, #retries)
    end)

    it("the retry is tried once: a second drop fails", function()
      server:route("/drop2", function(req)
        if req.connection == 1 and req.connection_requests == 1 then return "first" end
        return { drop = true }
      end)
      s = session()
      assert.are.equal("first", ok_body(s:get("drop2")))
      local resp, err = s:get("drop2")
      assert.is_nil(resp)
      assert.are.equal("ServerDisconnectedError", err.kind)
      assert.are.equal(2, server.connections)
      assert.are.equal(1, #retries)
    end)

    -- The server closes idle keep-alive connections at random moments while
    -- 8 tasks each make 200 GETs: a connection closed under a request is
    -- retried, one closed while idle is dropped from the pool; no request fails.
    it("survives a server closing idle connections at random", function()
      server:route("/n", function(req) return req.query end)
      s = support.session(server)
      local seed = os.time()
      math.randomseed(seed)
      local running, closed = true, 0
      local closer = lurl.spawn(function()
        while running do
          lurl.sleep(math.random() * 0.005)
          closed = closed + server:close_idle()
        end
      end)
      local errs = {}
      local tasks = {}
      for t = 1, 8 do
        tasks[t] = lurl.spawn(function()
          for i = 1, 200 do
            local q = t .. "-" .. i
            local resp, err = s:get("n?" .. q)
            if not resp then errs[#errs + 1] = tostring(err)
            else
              local body = resp:read()
              if body ~= q then errs[#errs + 1] = ("%s: got %q"):format(q, tostring(body)) end
            end
          end
        end)
      end
      join_all(tasks, 60)
      running = false
      closer:join(5)
      assert.are.same({}, errs, "seed " .. seed)
      assert.is_true(closed > 0, "the server never closed an idle connection")
      assert.is_true(server.connections > 8, "only " .. server.connections .. " connections")
      assert_quiet(s.connector)
    end)
  end)

  describe("happy eyeballs", function()
    it("interleaves address families, the first answer's family first (RFC 8305)", function()
      local a6, b6, c6 = { ip = "::1", family = 6 }, { ip = "::2", family = 6 }, { ip = "::3", family = 6 }
      local a4, b4 = { ip = "127.0.0.1", family = 4 }, { ip = "127.0.0.2", family = 4 }
      assert.are.same({ a6, a4, b6, b4, c6 }, dial.interleave { a6, b6, c6, a4, b4 })
      assert.are.same({ a4, a6, b4, b6, c6 }, dial.interleave { a4, b4, a6, b6, c6 })
      assert.are.same({ a4, b4 }, dial.interleave { a4, b4 })
      assert.are.same({ a6 }, dial.interleave { a6 })
    end)

    it("a refused address falls through to the next at once", function()
      -- the server listens on 127.0.0.1 only: 127.0.0.2 refuses at once
      server = support.server { ["/x"] = function() return "x" end }
      local r = support.resolver { ["two.test"] = {
        { ip = "127.0.0.2", family = 4 }, { ip = "127.0.0.1", family = 4 } } }
      for _, delay in ipairs { 2, false } do
        s = lurl.session { connector = lurl.connector { resolver = r.fn, happy_eyeballs_delay = delay } }
        local dt, resp, err = support.timed(s.get, s, ("http://two.test:%d/x"):format(server.port))
        assert.are.equal("x", ok_body(resp, err))
        assert.is_true(dt < 1, ("took %.3fs with delay %s"):format(dt, tostring(delay)))
        s:close()
      end
      s = nil
    end)

    it("every address refused gives ClientConnectorError with the last failure", function()
      local port = support.free_port()
      local r = support.resolver { ["none.test"] = {
        { ip = "127.0.0.2", family = 4 }, { ip = "127.0.0.3", family = 4 } } }
      s = lurl.session { connector = lurl.connector { resolver = r.fn } }
      local resp, err = s:get(("http://none.test:%d/"):format(port))
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorError", err.kind)
      assert.are.equal("ECONNREFUSED", err.errno)
      assert.are.equal("none.test", err.host)
      assert_quiet(s.connector)
    end)

    describe("with a black hole at [::1]", function()
      local cleanup, why

      before_each(function()
        server = support.server { ["/x"] = function() return "x" end }
        cleanup, why = support.black_hole6(server.port)
      end)

      after_each(function()
        if cleanup then cleanup() end
      end)

      local function resolver()
        return support.resolver { ["dual.test"] = {
          { ip = "::1", family = 6 }, { ip = "127.0.0.1", family = 4 } } }
      end

      it("the IPv4 address wins after happy_eyeballs_delay", function()
        if not cleanup then return pending("no IPv6 black hole on this machine: " .. tostring(why)) end
        local r = resolver()
        local fds = core.open_fds()
        s = lurl.session { connector = lurl.connector { resolver = r.fn, happy_eyeballs_delay = 0.3 } }
        local dt, resp, err = support.timed(s.get, s, ("http://dual.test:%d/x"):format(server.port))
        assert.are.equal("x", ok_body(resp, err))
        assert.is_true(dt >= 0.3 * 0.8 and dt < 3, ("took %.3fs"):format(dt))
        assert.are.equal(1, s.connector:stats().total)
        -- the losing attempt to [::1] was closed
        s:close()
        s = nil
        assert.is_truthy(support.eventually(function() return core.open_fds() <= fds end),
          ("fds: %d before, %d after"):format(fds, core.open_fds()))
      end)

      it("without happy eyeballs, sock_connect fires on the first address", function()
        if not cleanup then return pending("no IPv6 black hole on this machine: " .. tostring(why)) end
        local r = resolver()
        s = lurl.session { connector = lurl.connector { resolver = r.fn, happy_eyeballs_delay = false },
          timeout = lurl.timeout { sock_connect = 0.5 } }
        local dt, resp, err = support.timed(s.get, s, ("http://dual.test:%d/x"):format(server.port))
        assert.is_nil(resp)
        assert.are.equal("ConnectionTimeoutError", err.kind)
        assert.is_true(dt >= 0.499 and dt < 3, ("took %.3fs"):format(dt))
        assert_quiet(s.connector)
      end)

      it("the IPv6 literal alone times out, proving the black hole", function()
        if not cleanup then return pending("no IPv6 black hole on this machine: " .. tostring(why)) end
        s = lurl.session { timeout = lurl.timeout { sock_connect = 0.3 } }
        local resp, err = s:get(("http://[::1]:%d/x"):format(server.port))
        assert.is_nil(resp)
        assert.are.equal("ConnectionTimeoutError", err.kind)
      end)
    end)
  end)

  describe("local_addr", function()
    -- A bare listener that records each client's address and answers once.
    local function peer_recorder()
      local rec, streams = { peers = {} }, {}
      local listener
      listener = assert(core.tcp.listen("127.0.0.1", 0, function()
        local t = listener:accept()
        if not t then return end
        streams[#streams + 1] = t
        rec.peers[#rec.peers + 1] = { t:peername() }
        t:read_start(function(data)
          if data and not t:closed() then
            t:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", function() end)
          end
        end)
      end))
      listener:ref(false)
      local _, port = listener:sockname()
      rec.url = ("http://127.0.0.1:%d/"):format(port)
      function rec.close()
        for _, t in ipairs(streams) do if not t:closed() then t:close() end end
        listener:close()
      end
      return rec
    end

    it("binds the client end to the given IP", function()
      local rec = peer_recorder()
      -- all of 127.0.0.0/8 is loopback on Linux: 127.0.0.2 reaches 127.0.0.1
      s = lurl.session { connector = lurl.connector { local_addr = "127.0.0.2" } }
      local ok, e = pcall(function()
        assert.are.equal("ok", ok_body(s:get(rec.url)))
        assert.are.equal("127.0.0.2", rec.peers[1][1])
      end)
      rec.close()
      if not ok then error(e, 0) end
    end)

    it("binds to { ip, port }", function()
      local rec = peer_recorder()
      local port = support.free_port()
      s = lurl.session { connector = lurl.connector { local_addr = { "127.0.0.1", port } } }
      local ok, e = pcall(function()
        assert.are.equal("ok", ok_body(s:get(rec.url)))
        assert.are.same({ "127.0.0.1", port }, rec.peers[1])
      end)
      rec.close()
      if not ok then error(e, 0) end
    end)

    it("an address this machine does not have gives ClientConnectorError", function()
      server = support.server { ["/x"] = function() return "x" end }
      s = support.session(server, { connector = lurl.connector { local_addr = "192.0.2.1" }, timeout = 10 })
      local resp, err = s:get("x")
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorError", err.kind)
      assert.are.equal("EADDRNOTAVAIL", err.errno)
      assert_quiet(s.connector)
    end)
  end)

  describe("resolve overrides", function()
    it("send host:port to another address and port, keeping the name in the request", function()
      server = support.server { ["*"] = function(req) return req.headers["host"] end }
      local resolver = support.resolver {}
      s = lurl.session { connector = lurl.connector {
        resolve = { ["home.example.org:8888"] = "127.0.0.1:" .. server.port, ["Other.Example:80"] = "127.0.0.1" },
        resolver = resolver.fn } }
      assert.are.equal("home.example.org:8888", ok_body(s:get("http://home.example.org:8888/x")))
      assert.are.equal(0, resolver.calls)
      -- without a port the override keeps the URL's (nothing listens on 80)
      local resp, err = s:get("http://other.example/x", { timeout = lurl.timeout { sock_connect = 2 } })
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorError", err.kind)
      assert.are.equal("ECONNREFUSED", err.errno) -- connected to 127.0.0.1:80, no DNS asked
      assert.are.equal(0, resolver.calls)
    end)

    it("reject entries that are not host:port = ip[:port]", function()
      for _, map in ipairs { { nope = "127.0.0.1" }, { ["a:1"] = "not-an-ip" }, { ["a:1"] = "127.0.0.1:x" } } do
        local okc, err = pcall(lurl.connector, { resolve = map })
        assert.is_false(okc)
        assert.matches("resolve", err, 1, true)
      end
    end)
  end)

  describe("shared connectors", function()
    before_each(function()
      server = support.server { ["/x"] = function(req) return "conn " .. req.connection end }
    end)

    it("sessions with connector_owner = false share its connections", function()
      local c = lurl.connector()
      local s1 = support.session(server, { connector = c, connector_owner = false })
      local s2 = support.session(server, { connector = c, connector_owner = false })
      assert.are.equal("conn 1", ok_body(s1:get("x")))
      assert.are.equal("conn 1", ok_body(s2:get("x")))
      assert.are.equal("conn 1", ok_body(s1:get("x")))
      assert.are.equal(1, server.connections)
      s1:close()
      assert.is_false(c.closed)
      assert.are.equal("conn 1", ok_body(s2:get("x")))
      s2:close()
      assert.is_false(c.closed)
      assert.are.equal(1, c:stats().idle)
      c:close()
      assert.is_true(c.closed)
      assert.are.equal(0, c:stats().total)
    end)

    it("a session given a connector owns it by default and closes it", function()
      local c = lurl.connector()
      s = support.session(server, { connector = c })
      assert.is_truthy(s:get("x"))
      s:close()
      assert.is_true(c.closed)
      assert.are.equal(0, c:stats().total)
    end)

    it("a session's own connector is closed with it", function()
      s = support.session(server)
      local c = s.connector
      assert.is_truthy(s:get("x"))
      s:close()
      assert.is_true(c.closed)
    end)

    it("a closed connector fails requests with ClientConnectionError", function()
      local c = lurl.connector()
      s = support.session(server, { connector = c, connector_owner = false })
      c:close()
      local resp, err = s:get("x")
      assert.is_nil(resp)
      assert.are.equal("ClientConnectionError", err.kind)
      assert.matches("closed", err.message, 1, true)
    end)

    it("closing a connector fails its waiters and requests in flight", function()
      local g = gate()
      server:route("/gate", g.route)
      local c = lurl.connector { limit = 1 }
      s = support.session(server, { connector = c, connector_owner = false })
      local busy = lurl.spawn(function() return s:get("gate?1") end)
      assert.is_truthy(support.eventually(function() return g.entered == 1 end))
      local waiter = lurl.spawn(function() return s:get("x") end)
      assert.is_truthy(support.eventually(function() return c:stats().waiting == 1 end))
      c:close()
      local resp, err = waiter:join(5)
      assert.is_nil(resp)
      assert.is_true(err:is("ClientConnectionError"), tostring(err))
      assert.matches("closed", err.message, 1, true)
      resp, err = busy:join(5)
      assert.is_nil(resp)
      assert.is_true(err:is("ClientError"), tostring(err))
      local st = c:stats()
      assert.are.equal(0, st.total)
      assert.are.equal(0, st.waiting)
      g.open()
    end)
  end)

  describe("unix sockets", function()
    local path

    before_each(function()
      path = support.socket_path()
      server = support.server({
        ["/x"] = function(req) return ("conn %d %s"):format(req.connection, req.headers["host"]) end,
      }, { path = path })
    end)

    it("a unix_connector session talks HTTP over the socket, reusing its connection", function()
      assert.are.equal("http://localhost/x", server:url("/x"))
      local c = lurl.unix_connector { path = path }
      s = lurl.session { connector = c }
      assert.are.equal("conn 1 localhost", ok_body(s:get(server:url("/x"))))
      assert.are.equal("conn 1 localhost", ok_body(s:get(server:url("/x"))))
      assert.are.equal(1, server.connections)
      -- the URL's host only names the origin: another name is another pool
      -- key (so another connection), over the same socket
      assert.are.equal("conn 2 api.internal", ok_body(s:get("http://api.internal/x")))
      assert.are.equal(2, server.connections)
      local st = c:stats()
      assert.are.equal(1, st.per_host["http://localhost:80"].idle)
      assert.are.equal(1, st.per_host["http://api.internal:80"].idle)
    end)

    it("its limit queues requests like a TCP pool", function()
      local c = lurl.unix_connector { path = path, limit = 2 }
      s = lurl.session { connector = c }
      local tasks = {}
      for i = 1, 20 do tasks[i] = lurl.spawn(function() return s:get(server:url("/x")) end) end
      for _, r in ipairs(join_all(tasks)) do assert.matches("^conn [12] ", ok_body(r[1], r[2])) end
      assert.is_true(server.connections <= 2)
      assert_quiet(c, 2)
    end)

    it("a missing socket gives UnixClientConnectorError, a ClientConnectorError", function()
      s = lurl.session { connector = lurl.unix_connector { path = path .. ".missing" } }
      local resp, err = s:get("http://localhost/x")
      assert.is_nil(resp)
      assert.are.equal("UnixClientConnectorError", err.kind)
      assert.is_true(err:is("ClientConnectorError"))
      assert.are.equal("ENOENT", err.errno)
      assert_quiet(s.connector)
    end)

    it("a path too long for a Unix socket is refused cleanly", function()
      local long = "/tmp/" .. ("x"):rep(200) .. ".sock"
      local ok, c = pcall(lurl.unix_connector, { path = long })
      if not ok then
        -- refused up front, naming the option
        assert.matches("'path'", c, 1, true)
        return
      end
      -- or the request fails with a connector error, without raising
      s = lurl.session { connector = c }
      local ok2, resp, err = pcall(s.get, s, "http://localhost/x")
      assert.is_true(ok2, "the request raised: " .. tostring(resp))
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorError", err.kind)
      assert_quiet(c)
    end)

    it("the server removes its socket file on close", function()
      server:close()
      assert.is_falsy(os.rename(path, path))
      server = nil
    end)
  end)
end)
