-- ClientTimeout: each field fires in its phase with its kind, and only then.
-- Bounds are generous: a limit fires no earlier than itself and within +2 s;
-- a "does not fire" case uses a limit 10x the phase's duration.
local lurl = require "lurl"
local core = require "lurl.core"
local support = require "spec.support"

local SLACK = 2

local routes = {
  ["/fast"] = function() return "fast" end,
  ["/slow-head"] = function() return { delay = 3, body = "late" } end,
  ["/head-0.1"] = function() return { delay = 0.1, body = "soon" } end,
  ["/slow-drip"] = function() return { body = ("x"):rep(30), drip = { size = 1, interval = 0.1 } } end,
  ["/gap-drip"] = function() return { body = "abc", drip = { size = 1, interval = 1.5 } } end,
  ["/steady-drip"] = function() return { body = ("y"):rep(20), drip = { size = 1, interval = 0.02 } } end,
  ["/never"] = function() return { never = true } end,
}

local function assert_fired(elapsed, limit)
  assert.is_true(elapsed >= limit - 0.001, ("fired after %.3fs, before the %.3fs limit"):format(elapsed, limit))
  assert.is_true(elapsed < limit + SLACK, ("fired after %.3fs, limit %.3fs"):format(elapsed, limit))
end

-- A loopback listener that never accepts, with its backlog filled by raw
-- connections so that a further SYN is dropped and connect() hangs.
local function hanging_listener()
  local listener = assert(core.tcp.listen("127.0.0.1", 0, function() end, 1))
  local _, port = listener:sockname()
  local held = {}
  for _ = 1, 8 do
    local connected = false
    held[#held + 1] = assert(core.tcp.connect("127.0.0.1", port, function(ok) connected = ok end))
    lurl.sleep(0.3)
    if not connected then
      return port, function()
        for _, t in ipairs(held) do if not t:closed() then t:close() end end
        listener:close()
      end
    end
  end
  for _, t in ipairs(held) do t:close() end
  listener:close()
  error("could not fill the accept backlog of a loopback listener")
end

describe("timeouts", function()
  local server, s

  before_each(function()
    server = support.server(routes)
    s = support.session(server)
  end)

  after_each(function()
    if s then s:close() end
    server:close()
  end)

  describe("total", function()
    it("fires over a slow head with TimeoutError", function()
      local dt, resp, err = support.timed(s.get, s, "slow-head", { timeout = lurl.timeout { total = 0.5 } })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert.is_false(err:is("ServerTimeoutError"))
      assert_fired(dt, 0.5)
    end)

    it("fires over a slow dripped body", function()
      local dt, resp, err = support.timed(s.get, s, "slow-drip", { timeout = lurl.timeout { total = 0.5 } })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert_fired(dt, 0.5)
    end)

    it("does not fire when the exchange is fast", function()
      assert.are.equal("soon", assert(s:get("head-0.1", { timeout = lurl.timeout { total = 1 } })):read())
      assert.are.equal(("y"):rep(20), assert(s:get("steady-drip", { timeout = lurl.timeout { total = 4 } })):read())
    end)

    it("a number as the request timeout means total", function()
      local dt, resp, err = support.timed(s.get, s, "slow-head", { timeout = 0.5 })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert_fired(dt, 0.5)
    end)

    it("a number as the session timeout means total", function()
      s:close()
      s = support.session(server, { timeout = 0.5 })
      local dt, resp, err = support.timed(s.get, s, "slow-head")
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert_fired(dt, 0.5)
    end)

    it("has millisecond precision", function()
      local dt, resp, err = support.timed(s.get, s, "slow-head", { timeout = 0.25 })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert.is_true(dt >= 0.249, ("fired after %.4fs"):format(dt))
      assert.is_true(dt < 1, ("fired after %.4fs"):format(dt))
    end)
  end)

  describe("sock_read", function()
    it("fires for a gap between two body reads with SocketTimeoutError", function()
      local dt, resp, err = support.timed(s.get, s, "gap-drip", { timeout = lurl.timeout { sock_read = 0.3 } })
      assert.is_nil(resp)
      assert.are.equal("SocketTimeoutError", err.kind)
      assert.is_true(err:is("ServerTimeoutError"))
      assert.is_true(err:is("TimeoutError"))
      assert_fired(dt, 0.3)
    end)

    it("fires while waiting for the head", function()
      local dt, resp, err = support.timed(s.get, s, "slow-head", { timeout = lurl.timeout { sock_read = 0.3 } })
      assert.is_nil(resp)
      assert.are.equal("SocketTimeoutError", err.kind)
      assert_fired(dt, 0.3)
    end)

    it("is not fired by a steady drip whose gaps are shorter, however long the body takes", function()
      -- 20 pieces 0.02 s apart: about 0.4 s in all, twice the sock_read limit
      local resp = assert(s:get("steady-drip", { timeout = lurl.timeout { sock_read = 0.2 } }))
      assert.are.equal(("y"):rep(20), resp:read())
    end)

    it("fires on a streamed body read", function()
      local resp = assert(s:get("gap-drip", { stream = true, timeout = lurl.timeout { sock_read = 0.3 } }))
      local dt, body, err = support.timed(resp.read, resp)
      assert.is_nil(body)
      assert.are.equal("SocketTimeoutError", err.kind)
      assert_fired(dt, 0.3)
      assert.are.equal(0, s.connector:stats().in_use)
    end)
  end)

  describe("connect and sock_connect", function()
    for _, field in ipairs { "connect", "sock_connect" } do
      it(field .. " fires with ConnectionTimeoutError when connect() hangs", function()
        local port, cleanup = hanging_listener()
        local ok, e = pcall(function()
          local dt, resp, err = support.timed(s.get, s, ("http://127.0.0.1:%d/"):format(port),
            { timeout = lurl.timeout { [field] = 0.5, total = 10 } })
          assert.is_nil(resp)
          assert.are.equal("ConnectionTimeoutError", err.kind)
          assert.is_true(err:is("ServerTimeoutError"))
          assert.is_true(err:is("TimeoutError"))
          assert_fired(dt, 0.5)
          assert.are.equal(0, s.connector:stats().in_use)
        end)
        cleanup()
        if not ok then error(e, 0) end
      end)

      it(field .. " does not fire when connecting is fast", function()
        assert.are.equal("fast", assert(s:get("fast", { timeout = lurl.timeout { [field] = 0.5 } })):read())
      end)
    end
  end)

  describe("overrides", function()
    it("a request timeout object overrides the session's field by field", function()
      s:close()
      s = support.session(server, { timeout = lurl.timeout { total = 10, sock_read = 0.3 } })
      -- total replaced, sock_read kept from the session
      local dt, resp, err = support.timed(s.get, s, "slow-head", { timeout = lurl.timeout { total = 5 } })
      assert.is_nil(resp)
      assert.are.equal("SocketTimeoutError", err.kind)
      assert_fired(dt, 0.3)
      -- sock_read switched off for one request: total of the request applies
      dt, resp, err = support.timed(s.get, s, "slow-head", { timeout = { sock_read = false, total = 0.6 } })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert_fired(dt, 0.6)
      -- sock_read = 0 means no limit too
      assert.are.equal("soon", assert(s:get("head-0.1", { timeout = { sock_read = 0 } })):read())
    end)

    it("an unknown timeout field raises", function()
      assert.has_error(function() lurl.timeout { totl = 1 } end)
      assert.has_error(function() s:get("fast", { timeout = { totl = 1 } }) end)
      assert.has_error(function() lurl.timeout { total = -1 } end)
    end)
  end)

  describe("after a timeout", function()
    it("the connection is closed, never pooled", function()
      assert.is_truthy(s:get("fast"))
      assert.are.equal(1, s.connector:stats().idle)
      local resp, err = s:get("slow-head", { timeout = 0.3 })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      local st = s.connector:stats()
      assert.are.equal(0, st.idle)
      assert.are.equal(0, st.in_use)
      assert.is_truthy(s:get("fast"))
      assert.are.equal(2, server.connections)
    end)

    it("the connection is closed after a body timeout too", function()
      local resp, err = s:get("slow-drip", { timeout = 0.3 })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert.are.equal(0, s.connector:stats().idle)
    end)
  end)

  describe("cancellation", function()
    for _, path in ipairs { "never", "slow-drip" } do
      it("mid-request (" .. path .. ") gives CancelledError and leaks nothing", function()
        assert.is_truthy(s:get("fast")) -- open the pooled connection first
        lurl.sleep(0.05)
        local fds = core.open_fds()
        local task = lurl.spawn(function() return s:get(path) end)
        lurl.sleep(0.3)
        assert.is_true(task:cancel())
        local resp, err = task:join(5)
        assert.is_nil(resp)
        assert.are.equal("CancelledError", err.kind)
        assert.are.equal(0, s.connector:stats().in_use)
        assert.are.equal(0, s.connector:stats().idle)
        -- the server side notices the close and drops its end
        local now
        for _ = 1, 50 do
          now = core.open_fds()
          if now <= fds - 2 then break end
          lurl.sleep(0.02)
        end
        -- the pooled client connection and its server peer are gone
        assert.are.equal(fds - 2, now)
      end)
    end
  end)
end)
