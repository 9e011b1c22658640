-- c-ares as a resolver (core.ares, and lurl.connector{ resolver = "ares",
-- dns_servers = ... }): answers, failures by name, per-query timeouts,
-- /etc/hosts, cancellation, a thousand names at once, and the connector's
-- use of it (the DNS cache, Happy Eyeballs, typed errors).
--
-- The names are answered by spec/dns_server.py (python3-dnslib) on a free
-- loopback UDP port: nx.* is NXDOMAIN, drop.* is never answered, v6.* has
-- only AAAA ::1, both.* A and AAAA, anything else A 127.0.0.1.
local lurl = require "lurl"
local core = require "lurl.core"
local sched = require "lurl.sched"
local support = require "spec.support"

-- The server, started with io.popen (it prints its port and pid) and
-- stopped by its pid.
local function dns_server(delay_ms)
  local f = assert(io.popen(("/usr/bin/python3 spec/dns_server.py --delay %d --lifetime 200"):format(delay_ms or 0)))
  local port, pid = f:read("*n", "*n")
  assert(port and pid, "spec/dns_server.py did not start (python3-dnslib installed?)")
  return {
    addr = "127.0.0.1:" .. port,
    stop = function()
      os.execute("kill " .. pid)
      f:close()
    end,
  }
end

-- resolver:getaddrinfo parked on: list or nil, message, code; and seconds.
local function lookup(r, host, family)
  local t0 = lurl.now()
  local a, b, c = sched.wait(function(wake) r:getaddrinfo(host, 80, family or 0, wake) end)
  return a, b, c, lurl.now() - t0
end

local function ips(list)
  local out = {}
  for i, a in ipairs(list) do out[i] = a.ip .. "/" .. a.family end
  return table.concat(out, " ")
end

describe("c-ares", function()
  local dns, slow

  setup(function()
    dns = dns_server(0)
    slow = dns_server(50)
  end)

  teardown(function()
    dns.stop()
    slow.stop()
  end)

  describe("core.ares.resolver", function()
    local r
    before_each(function() r = assert(core.ares.resolver { servers = { dns.addr }, timeout = 0.2, tries = 2 }) end)
    after_each(function() r:close() end)

    it("answers A and AAAA as core.getaddrinfo does", function()
      assert.are.equal("127.0.0.1/4", ips(assert(lookup(r, "a.test"))))
      assert.are.equal("::1/6", ips(assert(lookup(r, "v6.test"))))
      local both = ips(assert(lookup(r, "both.test")))
      assert.is_truthy(both == "::1/6 127.0.0.1/4" or both == "127.0.0.1/4 ::1/6", both)
      assert.are.equal("127.0.0.1/4", ips(assert(lookup(r, "both.test", 4))))
      assert.are.equal("::1/6", ips(assert(lookup(r, "both.test", 6))))
    end)

    it("NXDOMAIN and no address of the family fail with the c-ares status name", function()
      local a, msg, code = lookup(r, "nx.test")
      assert.is_nil(a)
      assert.are.equal("ARES_ENOTFOUND", code)
      assert.are.equal("ARES_ENOTFOUND: Domain name not found", msg)
      a, msg, code = lookup(r, "a.test", 6)
      assert.is_nil(a)
      assert.are.equal("ARES_ENODATA", code, msg)
    end)

    it("a server that never answers is an ARES_ETIMEOUT within timeout and tries", function()
      -- 0.2 s, then 0.4 s: c-ares doubles the wait with each round
      local a, msg, code, secs = lookup(r, "drop.test")
      assert.is_nil(a)
      assert.are.equal("ARES_ETIMEOUT", code, msg)
      assert.is_true(secs > 0.5 and secs < 1.5, tostring(secs))
      assert.are.equal(0, r:pending())
    end)

    it("honours /etc/hosts, and calls fn only after getaddrinfo returned", function()
      local returned, got = false, nil
      local list = sched.wait(function(wake)
        r:getaddrinfo("localhost", nil, 4, function(l)
          got = returned
          wake(l)
        end)
        returned = true
      end)
      assert.are.equal("127.0.0.1/4", ips(list))
      assert.is_true(got)
    end)

    it("a malformed name fails, never raises", function()
      local a, _, code = lookup(r, "bad..name")
      assert.is_nil(a)
      assert.are.equal("ARES_EBADNAME", code)
    end)

    it("a cancelled query never calls fn; once none is wanted they end and the sockets close", function()
      local fds = core.open_fds()
      local called = false
      local q1 = r:getaddrinfo("drop.test", 80, 0, function() called = true end)
      local q2 = r:getaddrinfo("drop.test", 80, 0, function() called = true end)
      assert.are.equal(2, r:pending())
      assert.is_true(q1:cancel())
      assert.is_false(q1:cancel())
      lurl.sleep(0.05)
      assert.are.equal(2, r:pending()) -- q2 is still wanted
      assert.is_true(q2:cancel())
      assert.is_true(support.eventually(function() return r:pending() == 0 end))
      lurl.sleep(0.7) -- past the queries' timeouts
      assert.is_false(called)
      assert.is_true(core.open_fds() <= fds + 1, "sockets left open")
    end)

    it("close ends the pending queries without calling fn; a closed resolver raises", function()
      local called = false
      r:getaddrinfo("drop.test", 80, 0, function() called = true end)
      r:getaddrinfo("localhost", 80, 0, function() called = true end)
      r:close()
      lurl.sleep(0.05)
      assert.is_false(called)
      assert.are.equal(0, r:pending())
      assert.has_error(function() r:getaddrinfo("a.test", 80, 0, function() end) end)
    end)

    it("resolves a thousand distinct names at once, not four at a time", function()
      local r2 = assert(core.ares.resolver { servers = { slow.addr }, timeout = 5, tries = 1 })
      local t0, ok, fns = lurl.now(), 0, {}
      for i = 1, 1000 do
        fns[i] = function() if lookup(r2, ("h%d.bench.test"):format(i)) then ok = ok + 1 end end
      end
      lurl.gather(fns)
      local secs = lurl.now() - t0
      r2:close()
      assert.are.equal(1000, ok)
      -- each answer takes 50 ms: 4 at a time would be 12.5 s
      assert.is_true(secs < 4, ("%.2f s"):format(secs))
    end)

    it("checks its options", function()
      assert.has_error(function() core.ares.resolver { servers = {} } end)
      assert.has_error(function() core.ares.resolver { servers = { 53 } } end)
      assert.has_error(function() core.ares.resolver { timeout = 0 } end)
      assert.has_error(function() core.ares.resolver { tries = 0 } end)
      local bad, msg = core.ares.resolver { servers = { "not an address" } }
      assert.is_nil(bad)
      assert.matches("ARES_EBADSTR", msg)
    end)
  end)

  describe("lurl.connector", function()
    local server, s

    before_each(function()
      server = support.server { ["/x"] = function(req) return "x " .. req.headers["host"] end }
    end)

    after_each(function()
      if s then s:close(); s = nil end
      server:close()
    end)

    local function session(opts, session_opts)
      session_opts = session_opts or {}
      session_opts.connector = lurl.connector(opts)
      s = lurl.session(session_opts)
      return s
    end

    local function url(host) return ("http://%s:%d/x"):format(host, server.port) end

    it("resolves through dns_servers, and the answers go to the DNS cache", function()
      local hits = 0
      local tc = lurl.trace_config()
      table.insert(tc.on_dns_cache_hit, function() hits = hits + 1 end)
      session({ dns_servers = { dns.addr }, force_close = true }, { trace_configs = { tc } })
      for _ = 1, 2 do
        local resp = assert(s:get(url("a.test")))
        assert.are.equal("x a.test:" .. server.port, resp:read())
      end
      assert.are.equal(1, hits)
      assert.are.equal(1, s.connector:stats().dns_cache)
    end)

    it("Happy Eyeballs takes the IPv4 address when ::1 does not answer", function()
      session { dns_servers = { dns.addr } }
      local resp = assert(s:get(url("both.test")))
      assert.are.equal(200, resp.status)
    end)

    it("a name that does not exist is ClientConnectorDNSError with the c-ares status", function()
      session { dns_servers = { dns.addr } }
      local resp, err = s:get(url("nx.test"))
      assert.is_nil(resp)
      assert.are.equal("ClientConnectorDNSError", err.kind)
      assert.are.equal("ARES_ENOTFOUND", err.errno)
      assert.matches("cannot resolve host nx.test: ARES_ENOTFOUND", err.message, 1, true)
    end)

    it("a server that never answers fails within dns_timeout and dns_tries", function()
      session { dns_servers = { dns.addr }, dns_timeout = 0.1, dns_tries = 1 }
      local t0 = lurl.now()
      local resp, err = s:get(url("drop.test"))
      assert.is_nil(resp)
      assert.are.equal("ARES_ETIMEOUT", err.errno)
      assert.is_true(lurl.now() - t0 < 1)
    end)

    it("resolver = \"ares\" reads /etc/hosts and resolv.conf", function()
      session { resolver = "ares" }
      assert.are.equal(200, assert(s:get(url("localhost"))).status)
    end)

    it("closing the connector ends the lookups in flight", function()
      session { dns_servers = { dns.addr }, dns_timeout = 5, dns_tries = 1 }
      local t0 = lurl.now()
      local task = lurl.spawn(function() return s:get(url("drop.test")) end)
      lurl.sleep(0.05)
      s:close()
      s = nil
      local resp, err = task:join()
      assert.is_nil(resp)
      assert.is_truthy(err)
      assert.is_true(lurl.now() - t0 < 1)
    end)

    it("checks the options", function()
      assert.has_error(function() lurl.connector { resolver = "dnsmasq" } end)
      assert.has_error(function() lurl.connector { resolver = "threaded", dns_servers = { dns.addr } } end)
      assert.has_error(function() lurl.connector { dns_servers = {} } end)
      assert.has_error(function() lurl.connector { dns_servers = { "1.1.1.1,8.8.8.8" } } end)
      assert.has_error(function() lurl.connector { dns_timeout = 0 } end)
      assert.has_error(function() lurl.connector { dns_tries = 1.5 } end)
      assert.has_error(function() lurl.connector { dns_servers = { "nowhere" } } end)
      lurl.connector({ resolver = "threaded" }):close()
    end)
  end)
end)
