-- lurl.timeout: ClientTimeout objects, their validation and merging.
local lurl = require "lurl"
local timeout = require "lurl.timeout"

local FIELDS = { "total", "connect", "sock_connect", "sock_read" }

-- The fields of a timeout as a plain table (false = no limit, nil = absent).
local function fields(t)
  local out = {}
  for _, f in ipairs(FIELDS) do out[f] = t[f] end
  return out
end

describe("lurl.timeout", function()
  describe("object", function()
    it("keeps the given fields", function()
      local t = lurl.timeout { total = 30, connect = 10, sock_connect = 5, sock_read = 2.5 }
      assert.is_true(timeout.is(t))
      assert.same({ total = 30, connect = 10, sock_connect = 5, sock_read = 2.5 }, fields(t))
    end)

    it("milliseconds are kept", function()
      assert.equal(0.001, lurl.timeout({ sock_read = 0.001 }).sock_read)
    end)

    it("an absent field is no limit", function()
      local t = lurl.timeout { total = 1 }
      assert.is_nil(t.connect)
      assert.is_nil(t.sock_connect)
      assert.is_nil(t.sock_read)
      assert.same({}, fields(lurl.timeout {}))
      assert.same({}, fields(lurl.timeout()))
    end)

    it("0 and false mean no limit", function()
      local t = lurl.timeout { total = 0, connect = false, sock_connect = 0, sock_read = false }
      assert.same({ total = false, connect = false, sock_connect = false, sock_read = false }, fields(t))
    end)

    it("an unknown field raises, naming it", function()
      local ok, msg = pcall(lurl.timeout, { totl = 5 })
      assert.is_false(ok)
      assert.matches("unknown field 'totl'", msg, 1, true)
      assert.has_error(function() lurl.timeout { read = 1 } end)
      assert.has_error(function() lurl.timeout { 5 } end)
    end)

    it("a negative value raises, naming the field", function()
      for _, f in ipairs(FIELDS) do
        local ok, msg = pcall(lurl.timeout, { [f] = -1 })
        assert.is_false(ok, f)
        assert.matches("'" .. f .. "'", msg, 1, true)
      end
    end)

    it("NaN, strings, true and tables raise", function()
      for _, bad in ipairs { 0 / 0, "5", true, {} } do
        assert.has_error(function() lurl.timeout { total = bad } end, nil, tostring(bad))
      end
    end)

    it("a non-table raises", function()
      assert.has_error(function() lurl.timeout("5") end)
    end)

    it("the error points at the caller", function()
      local ok, msg = pcall(function() local t = lurl.timeout { total = -1 }; return t end)
      assert.is_false(ok)
      assert.matches("timeout_spec.lua", msg, 1, true)
      ok, msg = pcall(function() local t = lurl.timeout { bogus = 1 }; return t end)
      assert.is_false(ok)
      assert.matches("timeout_spec.lua", msg, 1, true)
    end)

    it("tostring lists the set fields", function()
      assert.equal("lurl.timeout { total = 30, sock_read = false }",
        tostring(lurl.timeout { total = 30, sock_read = 0 }))
    end)
  end)

  describe("default", function()
    it("is { total = 300, sock_connect = 30 }", function()
      assert.same({ total = 300, sock_connect = 30 }, fields(timeout.default))
      assert.is_true(timeout.is(timeout.default))
    end)

    it("is the session timeout when none is given", function()
      assert.equal(timeout.default, timeout.for_session(nil))
    end)

    it("a session number is total alone; false is no limit at all", function()
      assert.same({ total = 7 }, fields(timeout.for_session(7)))
      assert.same({ total = false }, fields(timeout.for_session(false)))
    end)

    it("a session timeout object or table replaces the default", function()
      local t = lurl.timeout { sock_read = 3 }
      assert.equal(t, timeout.for_session(t))
      assert.same({ connect = 4 }, fields(timeout.for_session { connect = 4 }))
      assert.has_error(function() timeout.for_session("5") end)
      assert.has_error(function() timeout.for_session { bogus = 1 } end)
    end)
  end)

  describe("merge", function()
    local base = timeout.default

    it("no override keeps the session timeout", function()
      assert.equal(base, timeout.merge(base, nil))
    end)

    it("a number overrides total only", function()
      local t = timeout.merge(base, 5)
      assert.is_true(timeout.is(t))
      assert.same({ total = 5, sock_connect = 30 }, fields(t))
    end)

    it("0 or false as a number-like override removes the total limit only", function()
      assert.same({ total = false, sock_connect = 30 }, fields(timeout.merge(base, 0)))
      assert.same({ total = false, sock_connect = 30 }, fields(timeout.merge(base, false)))
    end)

    it("a table overrides field by field; absent fields keep the session's", function()
      local t = timeout.merge(base, { sock_read = 2 })
      assert.same({ total = 300, sock_connect = 30, sock_read = 2 }, fields(t))
      t = timeout.merge(lurl.timeout { total = 10, connect = 3, sock_read = 1 }, { connect = 8 })
      assert.same({ total = 10, connect = 8, sock_read = 1 }, fields(t))
    end)

    it("a timeout object overrides field by field too", function()
      local t = timeout.merge(base, lurl.timeout { sock_connect = 1, sock_read = 4 })
      assert.same({ total = 300, sock_connect = 1, sock_read = 4 }, fields(t))
    end)

    it("0 or false in an override field removes that limit", function()
      local t = timeout.merge(base, { total = 0, sock_connect = false })
      assert.same({ total = false, sock_connect = false }, fields(t))
    end)

    it("neither input is modified", function()
      local over = lurl.timeout { total = 1 }
      timeout.merge(base, over)
      assert.same({ total = 300, sock_connect = 30 }, fields(base))
      assert.same({ total = 1 }, fields(over))
    end)

    it("a bad override raises", function()
      assert.has_error(function() timeout.merge(base, "5") end)
      assert.has_error(function() timeout.merge(base, -1) end)
      assert.has_error(function() timeout.merge(base, { total = -1 }) end)
      assert.has_error(function() timeout.merge(base, { sock_reed = 1 }) end)
    end)
  end)

  describe("deadline", function()
    it("read limit is the smaller of the remaining total and sock_read", function()
      local d = timeout.start(lurl.timeout { total = 100, sock_read = 2 })
      local secs, kind = d:limit("read")
      assert.equal(2, secs)
      assert.equal("SocketTimeoutError", kind)
      d = timeout.start(lurl.timeout { total = 1, sock_read = 50 })
      secs, kind = d:limit("read")
      assert.is_true(secs <= 1 and secs > 0.5)
      assert.equal("TimeoutError", kind)
    end)

    it("sock_connect limits a new connection with ConnectionTimeoutError", function()
      local d = timeout.start(timeout.default)
      local secs, kind = d:limit("sock_connect")
      assert.equal(30, secs)
      assert.equal("ConnectionTimeoutError", kind)
      secs, kind = d:limit("write")
      assert.is_true(secs <= 300 and secs > 299)
      assert.equal("TimeoutError", kind)
    end)

    it("connect starts counting at begin_connect and covers the pool wait", function()
      local d = timeout.start(lurl.timeout { connect = 5 })
      assert.is_nil((d:limit("connect")))
      d:begin_connect()
      local secs, kind = d:limit("connect")
      assert.is_true(secs <= 5 and secs > 4)
      assert.equal("ConnectionTimeoutError", kind)
      d:end_connect()
      assert.is_nil((d:limit("connect")))
    end)

    it("no limits at all gives nil", function()
      local d = timeout.start(lurl.timeout { total = false })
      assert.is_nil((d:limit("read")))
      assert.is_nil((d:limit("sock_connect")))
    end)

    it("an expired total gives 0, never a negative wait", function()
      local d = timeout.start(lurl.timeout { total = 0.01 })
      lurl.sleep(0.05)
      assert.equal(0, (d:limit("read")))
    end)

    it("errors name the expired limit and are typed", function()
      local d = timeout.start(lurl.timeout { total = 5, sock_read = 2, sock_connect = 1 })
      local e = d:error("TimeoutError", { url = "http://127.0.0.1/", method = "GET" })
      assert.is_true(e:is("TimeoutError"))
      assert.matches("5s", e.message, 1, true)
      assert.equal("GET", e.method)
      e = d:error("SocketTimeoutError")
      assert.is_true(e:is("TimeoutError"))
      assert.matches("sock_read=2s", e.message, 1, true)
      e = d:error("ConnectionTimeoutError")
      assert.is_true(e:is("ServerTimeoutError"))
      assert.matches("sock_connect=1s", e.message, 1, true)
    end)

    it("wait returns the timeout error when the limit expires first", function()
      local d = timeout.start(lurl.timeout { sock_read = 0.05 })
      local t0 = lurl.now()
      local r, err = d:wait("read", function() end, { url = "u" })
      assert.is_nil(r)
      assert.is_true(err:is("SocketTimeoutError"))
      assert.equal("u", err.url)
      assert.is_true(lurl.now() - t0 >= 0.05)
      assert.is_true(lurl.now() - t0 < 2.05)
    end)

    it("wait passes the operation's results through when it is quick", function()
      local d = timeout.start(lurl.timeout { sock_read = 5 })
      local a, b = d:wait("read", function(wake) wake("data", 2) end)
      assert.equal("data", a)
      assert.equal(2, b)
    end)

    it("errors name the phase the request was in and the time spent in it", function()
      local clock = lurl.testing.clock { start = 100 }
      local d = timeout.start(lurl.timeout { total = 5, sock_read = 2 })
      clock:advance(1)
      d:enter("body")
      clock:advance(0.5)
      local e = d:error("total")
      assert.equal("body", e.phase)
      assert.equal("total timeout of 5s expired after 0.50s reading the body", e.message)
      e = d:error("sock_read")
      assert.equal("no data from the peer for sock_read=2s while reading the body", e.message)
      clock:close()
    end)
  end)

  describe("attempt: the deadline of one handler call under middlewares", function()
    local clock
    before_each(function() clock = lurl.testing.clock { start = 100 } end)
    after_each(function() clock:close() end)

    local base = lurl.timeout { total = 10, sock_read = 3 }

    it("is the request's deadline when nothing narrows it", function()
      local d = timeout.attempt(base, nil, 110, 110)
      assert.equal(110, d.total_at)
      assert.equal(base, d.t)
      assert.is_nil(d.attempt)
      assert.matches("^total timeout of 10s expired after", d:error("total").message)
    end)

    it("never runs past the shared deadline; later attempts get what is left", function()
      clock:advance(4)
      local d = timeout.attempt(base, nil, 110, 110)
      assert.equal(110, d.total_at)
      assert.equal(10, d.t.total) -- an expiry names the request's own total
      assert.equal(3, d.t.sock_read)
    end)

    it("a deadline a policy narrowed names the time the attempt had left", function()
      local d = timeout.attempt(base, nil, 102.5, 110)
      assert.equal(102.5, d.total_at)
      assert.equal(2.5, d.t.total)
    end)

    it("the attempt's own total binds when it is the shorter, and says so", function()
      local d = timeout.attempt(base, 1, 110, 110)
      assert.equal(101, d.total_at)
      assert.is_true(d.attempt)
      assert.matches("^timeout of 1s for this attempt expired", d:error("total").message)
    end)

    it("the attempt's own fields override the request's field by field", function()
      local d = timeout.attempt(base, { sock_read = 1 }, 110, 110)
      assert.equal(1, d.t.sock_read)
      assert.equal(110, d.total_at)
      assert.is_nil(d.attempt)
    end)
  end)

  describe("ceil_threshold (aiohttp's, accepted for compatibility)", function()
    it("rounds limits of at least that many seconds up to a whole second, and no others", function()
      local t = timeout.new { total = 5, sock_connect = 2, ceil_threshold = 5 }
      local d = timeout.start(t, 10.2)
      assert.equal(16, d.total_at)
      assert.equal(5, t.ceil_threshold)
      assert.matches("ceil_threshold = 5", tostring(t), 1, true)
      assert.equal(14.2, timeout.start(timeout.new { total = 4, ceil_threshold = 5 }, 10.2).total_at)
      assert.equal(15.2, timeout.start(timeout.new { total = 5 }, 10.2).total_at)
    end)

    it("takes the connector's timeout_ceil_threshold for the connect limits", function()
      local d = timeout.start(timeout.new { connect = 6, sock_connect = 6 })
      d:begin_connect(5)
      assert.equal(math.ceil(d.connect_at), d.connect_at)
      d:begin_sock_connect()
      assert.equal(math.ceil(d.sock_connect_at), d.sock_connect_at)
    end)
  end)
end)
