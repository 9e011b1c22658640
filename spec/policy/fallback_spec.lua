-- lurl.fallback: alternatives tried in order on chosen failures, with the
-- deadline and the cooldowns learnt from Retry-After, under the virtual
-- clock with the mock transport.
local lurl = require "lurl"
local errors = require "lurl.errors"
local sched = require "lurl.sched"
local support = require "spec.support"

local PRIMARY = "http://primary.test/items"
local BACKUP = "http://backup.test:8080"
local events, near = support.events, support.near

describe("lurl.fallback", function()
  local env = support.policy_env()
  local clock, mock, s
  before_each(function() clock, mock = env.setup() end)
  after_each(env.teardown)
  local session = env.session

  describe("alternatives", function()
    it("sends the request again to a URL alternative: same path and query, another origin", function()
      local p = mock:on("GET", PRIMARY, 503)
      local b = mock:on("GET", BACKUP .. "/items", { status = 200, body = "from backup" })
      s = session(lurl.fallback { BACKUP })
      local resp = assert(s:get(PRIMARY .. "?page=2", { headers = { ["X-Trace"] = "t1" } }))
      assert.are.equal("from backup", resp:text())
      assert.are.equal(1, #p.calls)
      assert.are.equal(1, #b.calls)
      assert.are.equal("http://backup.test:8080/items?page=2", b.calls[1].url)
      assert.are.equal("page=2", b.calls[1].query)
      assert.are.equal("t1", b.calls[1].headers["x-trace"])
      assert.are.equal("backup.test:8080", b.calls[1].headers["host"])
    end)

    it("puts a URL alternative's path in front of the request's", function()
      mock:on("GET", PRIMARY, { error = "refused" })
      local b = mock:on("GET", "https://mirror.test/v1/items", "mirrored")
      s = session(lurl.fallback { "https://mirror.test/v1/" })
      assert.are.equal("mirrored", assert(s:get(PRIMARY)):text())
      assert.are.equal(1, #b.calls)
    end)

    it("does not carry the primary's credentials to another origin", function()
      local p = mock:on("GET", PRIMARY, 502)
      local b = mock:on("GET", BACKUP .. "/items", 200)
      s = session(lurl.fallback { BACKUP })
      assert(s:get("http://user:secret@primary.test/items"))
      assert.is_truthy(p.calls[1].headers["authorization"])
      assert.is_nil(b.calls[1].headers["authorization"])
    end)

    it("answers with a canned table made into a response for the request", function()
      mock:on("GET", PRIMARY, 500)
      local canned = { status = 200, headers = { ["Content-Type"] = "application/json" }, body = '{"n":1}' }
      s = session(lurl.fallback { canned })
      local resp = assert(s:get(PRIMARY))
      assert.are.equal(200, resp.status)
      assert.are.equal(1, resp:json().n)
      assert.are.equal(PRIMARY, resp.url)
      assert.are.equal("GET", resp.method)
      -- a fresh response each time
      local again = assert(s:get(PRIMARY))
      assert.are_not.equal(resp, again)
      assert.are.equal('{"n":1}', again:text())
    end)

    it("calls a function alternative with the request and the outcome passed over", function()
      mock:on("GET", PRIMARY, { status = 503, body = "busy" })
      local seen
      s = session(lurl.fallback { function(req, res, err)
        seen = { url = req.url, status = res.status, err = err }
        return lurl.response { status = 203, body = "from function" }
      end })
      local resp = assert(s:get(PRIMARY))
      assert.are.equal(203, resp.status)
      assert.are.equal("from function", resp:text())
      assert.are.same({ url = PRIMARY, status = 503 }, seen)
    end)

    it("a function alternative may send a request of its own", function()
      mock:on("GET", PRIMARY, { error = "reset" })
      local other = mock:on("GET", "http://other.test/cache/items", "cached")
      s = session(lurl.fallback { function(_, res, err)
        assert.is_nil(res)
        assert.is_true(err:is("ClientConnectionError"))
        return s:get("http://other.test/cache/items", { middlewares = {} })
      end })
      assert.are.equal("cached", assert(s:get(PRIMARY)):text())
      assert.are.equal(1, #other.calls)
    end)

    it("tries the alternatives in order until one does not fail", function()
      local p = mock:on("GET", PRIMARY, 503)
      local b = mock:on("GET", BACKUP .. "/items", { error = "refused" })
      local evs, on_event = events()
      s = session(lurl.fallback { BACKUP, { status = 200, body = "canned" }, on_event = on_event })
      assert.are.equal("canned", assert(s:get(PRIMARY)):text())
      assert.are.equal(1, #p.calls)
      assert.are.equal(1, #b.calls)
      assert.are.equal(2, #evs)
      assert.are.same({ 1, BACKUP, "status 503" }, { evs[1].index, evs[1].alternative, evs[1].reason })
      assert.are.same({ 2, "canned 200", "ClientConnectorError" }, { evs[2].index, evs[2].alternative, evs[2].reason })
    end)

    it("returns the last outcome when every alternative fails", function()
      mock:on("GET", PRIMARY, 503)
      mock:on("GET", BACKUP .. "/items", { status = 502, body = "bad gateway" })
      s = session(lurl.fallback { BACKUP })
      local resp = assert(s:get(PRIMARY))
      assert.are.equal(502, resp.status)
      assert.are.equal("bad gateway", resp:text())
    end)

    it("passes a good answer through untouched", function()
      mock:on("GET", PRIMARY, "fine")
      local b = mock:on("GET", BACKUP .. "/items", "backup")
      local evs, on_event = events()
      s = session(lurl.fallback { BACKUP, on_event = on_event })
      assert.are.equal("fine", assert(s:get(PRIMARY)):text())
      assert.are.equal(0, #b.calls)
      assert.are.same({}, evs)
    end)

    it("releases a failed response it passes over", function()
      mock:on("GET", PRIMARY, { status = 503, body = ("x"):rep(1000) })
      mock:on("GET", BACKUP .. "/items", "ok")
      s = session(lurl.fallback { BACKUP })
      assert.are.equal("ok", assert(s:get(PRIMARY, { stream = true })):text())
      support.no_leak(s, mock)
    end)
  end)

  describe("on", function()
    it("by default takes every 5xx, 429, connection and timeout errors, CircuitOpenError, ThrottledError", function()
      for i, answer in ipairs { 500, 501, 503, 599, 429, { error = "refused" }, { error = "reset" } } do
        local u = "http://primary.test/" .. i
        mock:on("GET", u, answer)
        assert.are.equal("alt", assert(session(lurl.fallback { { status = 200, body = "alt" } }):get(u)):text())
      end
      for _, kind in ipairs { "CircuitOpenError", "ThrottledError", "TimeoutError" } do
        local res = lurl.fallback { 42 }:run(function() return nil, errors.new(kind, "no") end)
        assert.are.equal(42, res)
      end
    end)

    it("by default leaves a 4xx and a non-transient error alone", function()
      mock:on("GET", PRIMARY, 404)
      s = session(lurl.fallback { { status = 200 } })
      assert.are.equal(404, assert(s:get(PRIMARY)).status)
      local res, err = lurl.fallback { 42 }:run(function() return nil, errors.new("InvalidURL", "bad") end)
      assert.is_nil(res)
      assert.are.equal("InvalidURL", err.kind)
    end)

    it("takes a list of statuses and error kinds", function()
      mock:on("GET", PRIMARY, 404, 503)
      s = session(lurl.fallback { { status = 200 }, on = { 404, "TimeoutError" } })
      assert.are.equal(200, assert(s:get(PRIMARY)).status)
      assert.are.equal(503, assert(s:get(PRIMARY)).status)
    end)

    it("takes a predicate", function()
      mock:on("GET", PRIMARY, { status = 200, body = "stale", headers = { ["X-Stale"] = "1" } })
      local seen
      s = session(lurl.fallback { { status = 200, body = "fresh" }, on = function(res, _, attempt)
        seen = attempt
        return res.headers["x-stale"] == "1"
      end })
      assert.are.equal("fresh", assert(s:get(PRIMARY)):text())
      assert.are.equal(1, seen)
    end)
  end)

  describe("deadline", function()
    it("tries no alternative once the deadline is reached", function()
      mock:on("GET", PRIMARY, { status = 200, delay = 2 })
      local b = mock:on("GET", BACKUP .. "/items", "backup")
      local evs, on_event = events()
      s = session(lurl.fallback { BACKUP, on_event = on_event }, { timeout = 0.5 })
      local resp, err = s:get(PRIMARY)
      assert.is_nil(resp)
      assert.is_true(err:is("TimeoutError"))
      near(0.5, clock:now())
      assert.are.equal(0, #b.calls)
      assert.are.same({}, evs)
    end)

    it("tries alternatives while time remains, within the same deadline", function()
      mock:on("GET", PRIMARY, { status = 503, delay = 0.2 })
      mock:on("GET", BACKUP .. "/items", { status = 200, delay = 1 })
      s = session(lurl.fallback { BACKUP, { status = 200, body = "canned" } }, { timeout = 0.5 })
      -- the backup times out at the overall deadline: no time for the canned answer
      local resp, err = s:get(PRIMARY)
      assert.is_nil(resp)
      assert.is_true(err:is("TimeoutError"))
      near(0.5, clock:now())
    end)

    it("in run mode, with the run's deadline", function()
      local calls = 0
      local res, err = lurl.fallback { function() calls = calls + 1; return "alt" end }:run(function()
        lurl.sleep(1)
        return nil, errors.new("TimeoutError", "slow")
      end, { deadline = 1 })
      assert.is_nil(res)
      assert.are.equal("slow", err.message)
      assert.are.equal(0, calls)
    end)
  end)

  describe("cooldown", function()
    it("skips a primary that asked for Retry-After until that time has passed", function()
      local p = mock:on("GET", PRIMARY, { status = 503, retry_after = 10 }, "primary again")
      local b = mock:on("GET", BACKUP .. "/items", "backup")
      local evs, on_event = events()
      s = session(lurl.fallback { BACKUP, on_event = on_event })
      assert.are.equal("backup", assert(s:get(PRIMARY)):text())
      assert.are.equal("status 503", evs[1].reason)
      -- cooling: the primary is not asked
      clock:advance(9.9)
      assert.are.equal("backup", assert(s:get(PRIMARY)):text())
      assert.are.equal(1, #p.calls)
      assert.are.equal(2, #b.calls)
      assert.are.same({ 1, BACKUP, "cooldown" }, { evs[2].index, evs[2].alternative, evs[2].reason })
      -- the time has passed: the primary serves again
      clock:advance(0.1)
      assert.are.equal("primary again", assert(s:get(PRIMARY)):text())
      assert.are.equal(2, #p.calls)
      assert.are.equal(2, #b.calls)
      assert.are.equal(2, #evs)
    end)

    it("learns from 429 and from an HTTP-date", function()
      local date = support.http_date(math.floor(sched.wall()) + 30)
      local p = mock:on("GET", PRIMARY, { status = 429, headers = { ["Retry-After"] = date } }, "ok")
      mock:on("GET", BACKUP .. "/items", "backup")
      s = session(lurl.fallback { BACKUP })
      assert(s:get(PRIMARY))
      clock:advance(25)
      assert.are.equal("backup", assert(s:get(PRIMARY)):text())
      assert.are.equal(1, #p.calls)
      clock:advance(6)
      assert.are.equal("ok", assert(s:get(PRIMARY)):text())
    end)

    it("ignores Retry-After on other statuses, and a 503 without it", function()
      local p = mock:on("GET", PRIMARY, { status = 500, retry_after = 10 }, 503, "ok")
      mock:on("GET", BACKUP .. "/items", "backup")
      s = session(lurl.fallback { BACKUP })
      assert.are.equal("backup", assert(s:get(PRIMARY)):text())
      assert.are.equal("backup", assert(s:get(PRIMARY)):text())
      assert.are.equal("ok", assert(s:get(PRIMARY)):text())
      assert.are.equal(3, #p.calls)
    end)

    it("applies to a URL alternative too", function()
      mock:on("GET", PRIMARY, 503)
      local b = mock:on("GET", BACKUP .. "/items", { status = 503, retry_after = 5 }, "backup")
      local evs, on_event = events()
      s = session(lurl.fallback { BACKUP, { status = 200, body = "canned" }, on_event = on_event })
      assert.are.equal("canned", assert(s:get(PRIMARY)):text())
      assert.are.equal("canned", assert(s:get(PRIMARY)):text())
      assert.are.equal(1, #b.calls)
      assert.are.equal(3, #evs)
      assert.are.same({ 2, "canned 200", "cooldown" }, { evs[3].index, evs[3].alternative, evs[3].reason })
      clock:advance(5)
      assert.are.equal("backup", assert(s:get(PRIMARY)):text())
    end)

    it("fails with ThrottledError when every endpoint is cooling", function()
      local p = mock:on("GET", PRIMARY, { status = 503, retry_after = 5 })
      local b = mock:on("GET", BACKUP .. "/items", { status = 503, retry_after = 5 })
      s = session(lurl.fallback { BACKUP })
      assert.are.equal(503, assert(s:get(PRIMARY)).status)
      local resp, err = s:get(PRIMARY)
      assert.is_nil(resp)
      assert.are.equal("ThrottledError", err.kind)
      assert.are.equal(1, #p.calls)
      assert.are.equal(1, #b.calls)
    end)

    it("is shared by the sessions that share the policy", function()
      local p = mock:on("GET", PRIMARY, { status = 503, retry_after = 10 })
      mock:on("GET", BACKUP .. "/items", "backup")
      local policy = lurl.fallback { BACKUP }
      s = session(policy)
      local other = session(policy)
      assert(s:get(PRIMARY))
      assert.are.equal("backup", assert(other:get(PRIMARY)):text())
      assert.are.equal(1, #p.calls)
    end)

    it("cooldown = false turns it off", function()
      local p = mock:on("GET", PRIMARY, { status = 503, retry_after = 10 })
      mock:on("GET", BACKUP .. "/items", "backup")
      s = session(lurl.fallback { BACKUP, cooldown = false })
      assert(s:get(PRIMARY))
      assert(s:get(PRIMARY))
      assert.are.equal(2, #p.calls)
    end)
  end)

  describe("events", function()
    it("go to trace configs (on_fallback_taken) and on_event", function()
      mock:on("GET", PRIMARY, { error = "refused" })
      local traced, tc = support.traced("fallback_taken")
      local evs, on_event = events()
      local fn = function() return lurl.response { status = 200 } end
      s = session(lurl.fallback { fn, on_event = on_event }, { trace_configs = { tc } })
      assert(s:get(PRIMARY))
      assert.are.equal(1, #evs)
      assert.are.equal(evs[1], traced[1])
      local ev = evs[1]
      assert.are.equal("fallback_taken", ev.type)
      assert.are.equal("fallback", ev.policy)
      assert.are.equal("GET", ev.method)
      assert.are.equal(PRIMARY, ev.url)
      assert.are.equal(1, ev.index)
      assert.are.equal("ClientConnectorError", ev.reason)
      assert.is_truthy(ev.alternative:match("^function <.*fallback_spec.lua:%d+>$"), ev.alternative)
    end)
  end)

  describe("run mode", function()
    it("the primary is fn; a function alternative gets (ctx, res, err); other values are the result", function()
      local f = lurl.fallback { function(ctx, res, err)
        assert.are.equal("db", ctx:origin())
        assert.is_nil(res)
        return nil, errors.new("ClientConnectionError", "still down: " .. err.message)
      end, { cached = true }, "http://not.sent" }
      local res = f:run(function() return nil, errors.new("TimeoutError", "slow") end, { key = "db" })
      assert.are.same({ cached = true }, res)
      assert.are.equal("value 42", tostring(lurl.fallback { 42 }):match("value 42"))
      assert.are.equal(42, lurl.fallback { 42 }:run(function() return nil, "plain error" end))
      -- a string is always a base URL; under run(fn) it is the result as it is
      assert.are.equal("http://not.sent", lurl.fallback { "http://not.sent" }:run(function() return nil, "x" end))
    end)

    it("returns fn's good result untouched", function()
      local calls = 0
      local res, extra = lurl.fallback { function() calls = calls + 1 end }:run(function() return "fine" end)
      assert.are.equal("fine", res)
      assert.is_nil(extra)
      assert.are.equal(0, calls)
    end)

    it("learns a cooldown from a response fn returns, under the run's key", function()
      local f = lurl.fallback { 42 }
      local calls = 0
      local function fn()
        calls = calls + 1
        return lurl.response { status = 503, headers = { ["Retry-After"] = "3" } }
      end
      assert.are.equal(42, f:run(fn, { key = "svc" }))
      assert.are.equal(42, f:run(fn, { key = "svc" }))
      assert.are.equal(1, calls)
      f:run(fn, { key = "other" })
      assert.are.equal(2, calls)
    end)

    it("a value alternative cannot answer an HTTP request", function()
      mock:on("GET", PRIMARY, 503)
      s = session(lurl.fallback { 42 })
      assert.has_error(function() s:get(PRIMARY) end,
        "lurl.fallback: alternative value 42 cannot answer an HTTP request")
    end)
  end)

  describe("construction", function()
    it("prints its alternatives and options", function()
      local fn = function() end
      local info = debug.getinfo(fn, "S")
      assert.are.equal(('lurl.fallback { "http://b.test", canned 503, function <%s:%d>, cooldown = true }'):format(
        info.short_src, info.linedefined), tostring(lurl.fallback { "http://b.test", { status = 503 }, fn }))
      assert.are.equal('lurl.fallback { canned 200, on = { 500, TimeoutError }, cooldown = false }',
        tostring(lurl.fallback { {}, on = { 500, "TimeoutError" }, cooldown = false }))
    end)

    it("is a middleware and prints in the session's list", function()
      s = session(lurl.fallback { BACKUP })
      assert.are.equal('lurl.middlewares { lurl.fallback { "http://backup.test:8080", cooldown = true } }',
        tostring(s.middlewares))
    end)

    it("raises argument errors naming the option or the alternative", function()
      local cases = {
        { {}, "at least one alternative" },
        { { "ftp://b.test" }, "alternative 1" },
        { { "not a url" }, "alternative 1" },
        { { "http://b.test/?q=1" }, "alternative 1" },
        { { "http://b.test", { status = 42 } }, "alternative 2" },
        { { { body = 5 } }, "alternative 1" },
        { { "http://b.test", on = 3 }, "'on'" },
        { { "http://b.test", on = { "NoSuchError" } }, "'on'" },
        { { "http://b.test", cooldown = "yes" }, "'cooldown'" },
        { { "http://b.test", on_event = true }, "'on_event'" },
        { { "http://b.test", bogus = 1 }, "unknown option 'bogus'" },
        { { "http://b.test", [3] = "http://c.test" }, "without holes" },
      }
      for _, case in ipairs(cases) do
        local err = support.raises_at(case[2], function() lurl.fallback(case[1]) end)
        assert.is_truthy(err:find("to 'fallback'", 1, true), err)
      end
      support.raises("table of alternatives expected", function() lurl.fallback(nil) end)
    end)
  end)
end)
