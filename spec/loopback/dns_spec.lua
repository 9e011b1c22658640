-- The connector's name resolution: the DNS cache (hits, shared lookups, TTL,
-- size bound, clearing, switched off), resolver failures, real getaddrinfo,
-- and the address family option.
--
-- Names end in .test (RFC 6761) and are answered by a counting resolver
-- (support.resolver); the connectors use force_close so that every request
-- opens a connection and so resolves its host (a pooled connection needs no
-- name).
local lurl = require "lurl"
local support = require "spec.support"

local LOOPBACK = { { ip = "127.0.0.1", family = 4 } }

-- Every dns_* signal of a session's requests, as "signal host".
local function dns_log()
  local log = {}
  local tc = lurl.trace_config()
  for _, name in ipairs { "dns_cache_hit", "dns_cache_miss", "dns_resolvehost_start", "dns_resolvehost_end" } do
    table.insert(tc["on_" .. name], function(_, _, p) log[#log + 1] = name .. " " .. tostring(p.host) end)
  end
  return log, tc
end

local function ok_body(resp, err)
  assert(resp, tostring(err))
  return resp:read()
end

describe("dns", function()
  local server, s

  before_each(function()
    server = support.server { ["/x"] = function(req) return "x " .. req.headers["host"] end }
  end)

  after_each(function()
    if s then s:close(); s = nil end
    server:close()
  end)

  -- A session over a force_close connector with the given options.
  local function session(opts, session_opts)
    opts = opts or {}
    if opts.force_close == nil then opts.force_close = true end
    session_opts = session_opts or {}
    session_opts.connector = lurl.connector(opts)
    s = lurl.session(session_opts)
    return s
  end

  local function url(host, port, path)
    return ("http://%s:%d%s"):format(host, port or server.port, path or "/x")
  end

  describe("cache", function()
    it("a second request for a name hits the cache", function()
      local r = support.resolver { ["example.test"] = LOOPBACK }
      local log, tc = dns_log()
      session({ resolver = r.fn }, { trace_configs = { tc } })
      assert.are.equal("x example.test:" .. server.port, ok_body(s:get(url("example.test"))))
      assert.are.equal("x example.test:" .. server.port, ok_body(s:get(url("example.test"))))
      assert.are.equal(2, server.connections)
      assert.are.equal(1, r.calls)
      assert.are.same({ "example.test", server.port, 0 }, r.seen[1])
      assert.are.same({
        "dns_cache_miss example.test", "dns_resolvehost_start example.test", "dns_resolvehost_end example.test",
        "dns_cache_hit example.test",
      }, log)
      assert.are.equal(1, s.connector:stats().dns_cache)
    end)

    it("a pooled connection needs no resolution at all", function()
      local r = support.resolver { ["example.test"] = LOOPBACK }
      session { resolver = r.fn, force_close = false }
      for _ = 1, 3 do ok_body(s:get(url("example.test"))) end
      assert.are.equal(1, server.connections)
      assert.are.equal(1, r.calls)
    end)

    it("concurrent requests for one name share one lookup", function()
      local r = support.resolver({ ["example.test"] = LOOPBACK }, 0.2)
      session { resolver = r.fn }
      local tasks = {}
      for i = 1, 20 do tasks[i] = lurl.spawn(function() return s:get(url("example.test")) end) end
      for _, t in ipairs(tasks) do ok_body(t:join(10)) end
      assert.are.equal(1, r.calls)
      assert.are.equal(20, server.connections)
    end)

    it("names are cached separately", function()
      local r = support.resolver { ["a.test"] = LOOPBACK, ["b.test"] = LOOPBACK }
      session { resolver = r.fn }
      for _ = 1, 2 do
        ok_body(s:get(url("a.test")))
        ok_body(s:get(url("b.test")))
      end
      assert.are.same({ ["a.test"] = 1, ["b.test"] = 1 }, r.by_host)
      assert.are.equal(2, s.connector:stats().dns_cache)
    end)

    it("entries expire after ttl_dns_cache", function()
      local r = support.resolver { ["example.test"] = LOOPBACK }
      session { resolver = r.fn, ttl_dns_cache = 0.2 }
      ok_body(s:get(url("example.test")))
      ok_body(s:get(url("example.test")))
      assert.are.equal(1, r.calls)
      lurl.sleep(0.4)
      ok_body(s:get(url("example.test")))
      assert.are.equal(2, r.calls)
      ok_body(s:get(url("example.test")))
      assert.are.equal(2, r.calls)
    end)

    it("ttl_dns_cache = false never expires", function()
      local r = support.resolver { ["example.test"] = LOOPBACK }
      session { resolver = r.fn, ttl_dns_cache = false }
      ok_body(s:get(url("example.test")))
      lurl.sleep(0.3)
      ok_body(s:get(url("example.test")))
      assert.are.equal(1, r.calls)
    end)

    it("dns_cache_max bounds the entries, the oldest going first", function()
      local map = {}
      for c in ("abcdef"):gmatch(".") do map[c .. ".test"] = LOOPBACK end
      local r = support.resolver(map)
      session { resolver = r.fn, dns_cache_max = 3 }
      for c in ("abcdef"):gmatch(".") do
        ok_body(s:get(url(c .. ".test")))
        assert.is_true(s.connector:stats().dns_cache <= 3, "dns_cache " .. s.connector:stats().dns_cache)
      end
      assert.are.equal(3, s.connector:stats().dns_cache)
      -- the most recent names are still cached, the oldest was evicted
      ok_body(s:get(url("f.test")))
      ok_body(s:get(url("d.test")))
      assert.are.equal(1, r.by_host["f.test"])
      assert.are.equal(1, r.by_host["d.test"])
      ok_body(s:get(url("a.test")))
      assert.are.equal(2, r.by_host["a.test"])
      assert.are.equal(3, s.connector:stats().dns_cache)
    end)

    it("dns_cache_max evicts by the age of the entry, not of the name", function()
      local r = support.resolver { ["a.test"] = LOOPBACK, ["b.test"] = LOOPBACK, ["c.test"] = LOOPBACK }
      session { resolver = r.fn, dns_cache_max = 2 }
      ok_body(s:get(url("a.test")))
      ok_body(s:get(url("b.test")))
      -- a.test is forgotten and resolved again: its entry is now younger than b.test's
      s.connector:clear_dns_cache("a.test")
      ok_body(s:get(url("a.test")))
      assert.are.equal(2, r.by_host["a.test"])
      -- a third name evicts the oldest entry: b.test
      ok_body(s:get(url("c.test")))
      assert.are.equal(2, s.connector:stats().dns_cache)
      ok_body(s:get(url("a.test")))
      assert.are.equal(2, r.by_host["a.test"], "a.test was evicted instead of b.test")
    end)

    -- Unit level (lurl.dns): a name whose entry keeps expiring is stored
    -- again and again; the cache's bookkeeping must not grow with that.
    it("memory stays bounded when entries keep expiring", function()
      local dns = require "lurl.dns"
      local timeout = require "lurl.timeout"
      local cache = dns.new { enabled = true, ttl = 0, max = 10, resolver = function() return LOOPBACK end }
      local function run(n)
        for _ = 1, n do assert(cache:resolve("a.test", 80, 0, timeout.start(timeout.new {}))) end
      end
      run(1000) -- warm up whatever the scheduler keeps around
      collectgarbage("collect")
      local before = collectgarbage("count")
      run(30000)
      collectgarbage("collect")
      local grown = collectgarbage("count") - before
      assert.are.equal(1, cache:size())
      -- 30,000 stores of one name: a leak of one slot per store is ~256 KB
      assert.is_true(grown < 128, ("memory grew by %.0f KB"):format(grown))
    end)

    it("use_dns_cache = false resolves every time", function()
      local r = support.resolver { ["example.test"] = LOOPBACK }
      local log, tc = dns_log()
      session({ resolver = r.fn, use_dns_cache = false }, { trace_configs = { tc } })
      for _ = 1, 3 do ok_body(s:get(url("example.test"))) end
      assert.are.equal(3, r.calls)
      assert.are.equal(0, s.connector:stats().dns_cache)
      -- no cache, so no hit or miss: only the lookups
      for _, line in ipairs(log) do assert.matches("^dns_resolvehost_", line) end
      assert.are.equal(6, #log)
    end)

    it("IP literals never reach the resolver", function()
      local r = support.resolver {}
      session { resolver = r.fn }
      ok_body(s:get(url("127.0.0.1")))
      assert.are.equal(0, r.calls)
      assert.are.equal(0, s.connector:stats().dns_cache)
    end)

    it("a lookup outlives a request that timed out waiting for it", function()
      local r = support.resolver({ ["slow.test"] = LOOPBACK }, 0.4)
      session { resolver = r.fn }
      local resp, err = s:get(url("slow.test"), { timeout = lurl.timeout { connect = 0.1 } })
      assert.is_nil(resp)
      assert.are.equal("ConnectionTimeoutError", err.kind)
      -- the shared lookup went on and its answer was cached
      assert.is_truthy(support.eventually(function() return s.connector:stats().dns_cache == 1 end))
      ok_body(s:get(url("slow.test")))
      assert.are.equal(1, r.calls)
    end)
  end)

  describe("clear_dns_cache", function()
    local other, r

    before_each(function()
      other = support.server { ["/x"] = function() return "other" end }
      r = support.resolver { ["a.test"] = LOOPBACK, ["b.test"] = LOOPBACK }
      session { resolver = r.fn }
      ok_body(s:get(url("a.test")))
      ok_body(s:get(url("a.test", other.port)))
      ok_body(s:get(url("b.test")))
      assert.are.equal(3, s.connector:stats().dns_cache)
      assert.are.equal(3, r.calls)
    end)

    after_each(function() other:close() end)

    it("(host, port) forgets one entry", function()
      s.connector:clear_dns_cache("a.test", server.port)
      assert.are.equal(2, s.connector:stats().dns_cache)
      ok_body(s:get(url("a.test", other.port)))
      assert.are.equal(3, r.calls)
      ok_body(s:get(url("a.test")))
      assert.are.equal(4, r.calls)
    end)

    it("(host) forgets the name on every port", function()
      s.connector:clear_dns_cache("a.test")
      assert.are.equal(1, s.connector:stats().dns_cache)
      ok_body(s:get(url("b.test")))
      assert.are.equal(3, r.calls)
      ok_body(s:get(url("a.test")))
      ok_body(s:get(url("a.test", other.port)))
      assert.are.equal(5, r.calls)
    end)

    it("() forgets everything", function()
      s.connector:clear_dns_cache()
      assert.are.equal(0, s.connector:stats().dns_cache)
      ok_body(s:get(url("b.test")))
      assert.are.equal(4, r.calls)
    end)

    it("a name that is not cached is fine", function()
      s.connector:clear_dns_cache("nothing.test", 80)
      s.connector:clear_dns_cache("nothing.test")
      assert.are.equal(3, s.connector:stats().dns_cache)
    end)
  end)

  describe("failures", function()
    local function assert_dns_error(resp, err, host)
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorDNSError", err.kind)
      assert.is_true(err:is("ClientConnectorError"))
      assert.are.equal(host, err.host)
      assert.matches(host, err.message, 1, true)
      assert.are.equal(0, s.connector:stats().in_use)
      assert.are.equal(0, s.connector:stats().total)
    end

    it("a resolver that answers nil, message gives ClientConnectorDNSError naming the host", function()
      local r = support.resolver { ["bad.test"] = "no such name" }
      session { resolver = r.fn }
      local resp, err = s:get(url("bad.test"))
      assert_dns_error(resp, err, "bad.test")
      assert.matches("no such name", err.message, 1, true)
      assert.are.equal(0, server.connections)
    end)

    it("failures are not cached", function()
      local r = support.resolver { ["bad.test"] = "no such name" }
      session { resolver = r.fn }
      for _ = 1, 2 do
        local resp, err = s:get(url("bad.test"))
        assert_dns_error(resp, err, "bad.test")
      end
      assert.are.equal(2, r.calls)
      assert.are.equal(0, s.connector:stats().dns_cache)
    end)

    it("a resolver that raises gives the same error, not a crash", function()
      local r = support.resolver { ["boom.test"] = function() error("resolver exploded") end }
      session { resolver = r.fn }
      local resp, err = s:get(url("boom.test"))
      assert_dns_error(resp, err, "boom.test")
      assert.matches("resolver exploded", err.message, 1, true)
      -- the session is fine afterwards
      ok_body(s:get(url("127.0.0.1")))
    end)

    it("a resolver that raises an error object gives the same error", function()
      local r = support.resolver { ["boom.test"] = function() error({ code = 42 }) end }
      session { resolver = r.fn }
      local resp, err = s:get(url("boom.test"))
      assert_dns_error(resp, err, "boom.test")
    end)

    -- A resolver is user code: a malformed answer is its bug, but must come
    -- back as a connector error of the request, not as a Lua error raised
    -- from deep inside the connector.
    for _, case in ipairs {
      { "a string", "127.0.0.1" },
      { "a number", 5 },
      { "an address that is not an IP", { { ip = "not-an-ip", family = 4 } } },
      { "an entry without ip", { { family = 4 } } },
    } do
      it("a malformed answer (" .. case[1] .. ") gives a ClientConnectorError", function()
        local r = support.resolver { ["odd.test"] = function() return case[2] end }
        session { resolver = r.fn }
        local ok, resp, err = pcall(s.get, s, url("odd.test"))
        assert.is_true(ok, "the request raised: " .. tostring(resp))
        assert.is_nil(resp)
        assert.is_true(err:is("ClientConnectorError"), tostring(err))
        assert.are.equal("odd.test", err.host)
        assert.are.equal(0, s.connector:stats().total)
        -- the session is fine afterwards
        ok_body(s:get(url("127.0.0.1")))
      end)
    end

    it("an empty answer gives ClientConnectorDNSError", function()
      local r = support.resolver { ["empty.test"] = {} }
      session { resolver = r.fn }
      local resp, err = s:get(url("empty.test"))
      assert_dns_error(resp, err, "empty.test")
    end)

    it("every waiter of a shared lookup gets the failure", function()
      local r = support.resolver({ ["bad.test"] = "nope" }, 0.1)
      session { resolver = r.fn }
      local tasks = {}
      for i = 1, 5 do tasks[i] = lurl.spawn(function() return s:get(url("bad.test")) end) end
      for _, t in ipairs(tasks) do
        local resp, err = t:join(10)
        assert_dns_error(resp, err, "bad.test")
      end
      assert.are.equal(1, r.calls)
    end)

    it("a slow resolver is bounded by the connect timeout", function()
      local r = support.resolver({ ["slow.test"] = LOOPBACK }, 5)
      session { resolver = r.fn }
      local dt, resp, err = support.timed(s.get, s, url("slow.test"), { timeout = lurl.timeout { connect = 0.3 } })
      assert.is_nil(resp)
      assert.are.equal("ConnectionTimeoutError", err.kind)
      assert.is_true(dt >= 0.299 and dt < 2.3, "fired after " .. dt)
    end)
  end)

  describe("getaddrinfo", function()
    it("resolves localhost", function()
      session()
      local resp, err = s:get(url("localhost"), { timeout = 10 })
      assert.are.equal("x localhost:" .. server.port, ok_body(resp, err))
      assert.are.equal(1, s.connector:stats().dns_cache)
    end)

    it("resolves localhost with family = 4", function()
      session { family = 4 }
      assert.are.equal("x localhost:" .. server.port, ok_body(s:get(url("localhost"), { timeout = 10 })))
    end)

    it("an unresolvable name gives ClientConnectorDNSError", function()
      -- rejected by the resolver library before any query is sent
      session()
      local resp, err = s:get("http://a..invalid/", { timeout = 10 })
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorDNSError", err.kind)
      assert.are.equal("a..invalid", err.host)
    end)
  end)

  describe("family", function()
    it("is passed to the resolver", function()
      for _, fam in ipairs { 0, 4, 6 } do
        local r = support.resolver { ["example.test"] = LOOPBACK }
        session { resolver = r.fn, family = fam }
        ok_body(s:get(url("example.test")))
        assert.are.same({ "example.test", server.port, fam }, r.seen[1])
        s:close()
      end
    end)

    it("4 with an IPv6 literal fails with a clear ClientConnectorError", function()
      session { family = 4 }
      local resp, err = s:get(("http://[::1]:%d/x"):format(server.port))
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorError", err.kind)
      assert.matches("family", err.message, 1, true)
      assert.are.equal(0, server.connections)
      assert.are.equal(0, s.connector:stats().total)
    end)

    it("6 with an IPv4 literal fails the same way", function()
      session { family = 6 }
      local resp, err = s:get(url("127.0.0.1"))
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorError", err.kind)
      assert.matches("family", err.message, 1, true)
    end)

    it("4 with an IPv4 literal works", function()
      session { family = 4 }
      ok_body(s:get(url("127.0.0.1")))
    end)
  end)
end)
