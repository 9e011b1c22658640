-- Retry budgets on their own, under the virtual clock: Finagle's windowed
-- retry_budget (ratio of requests plus a reserve per second, forgotten after
-- ttl) and gRPC's token_bucket (A6 throttling), both keyed per host. Their
-- use by lurl.retry is in retry_spec.
local lurl = require "lurl"
local testing = require "lurl.testing"

-- withdraw n times; how many were allowed
local function withdrawals(b, key, n)
  local ok = 0
  for _ = 1, n do
    if b:withdraw(key) then ok = ok + 1 end
  end
  return ok
end

local function deposits(b, key, n)
  for _ = 1, n do b:deposit(key) end
end

describe("lurl.retry_budget", function()
  local clock

  before_each(function() clock = testing.clock { autojump = true } end)
  after_each(function() clock:close() end)

  it("prints its settings and has a __name", function()
    local b = lurl.retry_budget()
    assert.are.equal("lurl.retry_budget { ratio = 0.2, min_per_second = 10, ttl = 10 }", tostring(b))
    assert.are.equal("lurl.retry_budget", getmetatable(b).__name)
    assert.are.equal("lurl.retry_budget { ratio = 0.5, min_per_second = 0, ttl = 2 }",
      tostring(lurl.retry_budget { ratio = 0.5, min_per_second = 0, ttl = 2 }))
  end)

  it("allows min_per_second * ttl retries with no requests at all", function()
    local b = lurl.retry_budget { ratio = 0.2, min_per_second = 1, ttl = 10 }
    assert.are.equal(10, b:balance("h"))
    assert.are.equal(10, withdrawals(b, "h", 15))
    assert.is_false(b:withdraw("h"))
    assert.are.equal(0, b:balance("h"))
  end)

  it("adds ratio * requests of the window to the reserve", function()
    local b = lurl.retry_budget { ratio = 0.2, min_per_second = 0, ttl = 10 }
    deposits(b, "h", 10)
    assert.are.equal(2, withdrawals(b, "h", 5))
    deposits(b, "h", 5)
    assert.are.equal(1, withdrawals(b, "h", 5))
    -- both together: 0.2 * 15 + 0.5 * 10 = 8, 3 already taken
    local both = lurl.retry_budget { ratio = 0.2, min_per_second = 0.5, ttl = 10 }
    deposits(both, "h", 15)
    assert.are.equal(8, withdrawals(both, "h", 20))
  end)

  it("takes a whole token per retry, as Finagle: 0.5 * 3 requests allow one retry", function()
    local b = lurl.retry_budget { ratio = 0.5, min_per_second = 0, ttl = 10 }
    deposits(b, "h", 3)
    assert.are.equal(1, withdrawals(b, "h", 3))
    deposits(b, "h", 1)
    assert.are.equal(1, withdrawals(b, "h", 3))
  end)

  it("counts a ratio times requests that floats make inexact as what it is", function()
    local b = lurl.retry_budget { ratio = 0.1, min_per_second = 0, ttl = 10 }
    deposits(b, "h", 30) -- 0.1 * 30 is 3.0000000000000004
    assert.are.equal(3, withdrawals(b, "h", 10))
    local c = lurl.retry_budget { ratio = 0.7, min_per_second = 0, ttl = 10 }
    deposits(c, "h", 10) -- 0.7 * 10 is 7.000000000000001
    assert.are.equal(7, withdrawals(c, "h", 10))
    local d = lurl.retry_budget { ratio = 0.3, min_per_second = 0, ttl = 10 }
    deposits(d, "h", 3) -- 0.3 * 3 is 0.8999999999999999
    assert.are.equal(0, withdrawals(d, "h", 10))
  end)

  it("forgets requests and retries older than ttl, slice by slice", function()
    local b = lurl.retry_budget { ratio = 1, min_per_second = 0, ttl = 10 }
    deposits(b, "h", 4)               -- t = 0
    lurl.sleep(5)
    deposits(b, "h", 2)               -- t = 5
    assert.are.equal(6, b:balance("h"))
    assert.are.equal(3, withdrawals(b, "h", 3))
    lurl.sleep(4.75)                  -- t = 9.75: all still in the window
    assert.are.equal(3, b:balance("h"))
    lurl.sleep(0.25)                  -- t = 10: the 4 requests of t = 0 are gone
    assert.are.equal(0, b:balance("h")) -- 2 requests, 3 retries
    lurl.sleep(5)                     -- t = 15: everything gone
    assert.are.equal(0, b:balance("h"))
    deposits(b, "h", 1)
    assert.are.equal(1, b:balance("h"))
  end)

  it("allows min_per_second again once its retries left the window", function()
    local b = lurl.retry_budget { ratio = 0, min_per_second = 0.2, ttl = 10 }
    assert.are.equal(2, withdrawals(b, "h", 5))
    lurl.sleep(3)
    assert.are.equal(0, withdrawals(b, "h", 5))
    lurl.sleep(7)
    assert.are.equal(2, withdrawals(b, "h", 5))
    lurl.sleep(1000)
    assert.are.equal(2, withdrawals(b, "h", 5))
  end)

  it("keeps each key apart", function()
    local b = lurl.retry_budget { ratio = 0, min_per_second = 0.1, ttl = 10 }
    assert.is_true(b:withdraw("http://a:80"))
    assert.is_false(b:withdraw("http://a:80"))
    assert.is_true(b:withdraw("http://b:80"))
  end)

  it("keeps a fixed memory per key however long it runs", function()
    local b = lurl.retry_budget { ratio = 0.5, min_per_second = 1, ttl = 2 }
    for _ = 1, 500 do
      b:deposit("h")
      b:withdraw("h")
      lurl.sleep(0.37)
    end
    local w = b.windows.h
    assert.are.equal(10, #w.requests)
    assert.are.equal(10, #w.retries)
  end)

  it("starts afresh when time goes back (a virtual clock replaced)", function()
    local b = lurl.retry_budget { ratio = 0, min_per_second = 0.1, ttl = 10 }
    lurl.sleep(100)
    assert.is_true(b:withdraw("h"))
    assert.is_false(b:withdraw("h"))
    clock:close()
    clock = testing.clock { autojump = true }
    assert.is_true(b:withdraw("h"))
  end)

  it("ignores record", function()
    local b = lurl.retry_budget { ratio = 0, min_per_second = 0.1 }
    b:record("h", true)
    assert.are.equal(1, b:balance("h"))
  end)

  describe("bad options", function()
    local cases = {
      { { ratio = -0.1 }, "bad argument 'ratio' to 'retry_budget' (number >= 0 expected, got -0.1)" },
      { { ratio = "a" }, "bad argument 'ratio' to 'retry_budget' (number expected, got string)" },
      { { min_per_second = -1 }, "bad argument 'min_per_second' to 'retry_budget'" },
      { { min_per_second = math.huge }, "bad argument 'min_per_second' to 'retry_budget' (finite number expected)" },
      { { ttl = 0 }, "bad argument 'ttl' to 'retry_budget' (number > 0 expected, got 0)" },
      { { per_second = 1 }, "bad argument #1 to 'retry_budget' (unknown option 'per_second')" },
    }
    for i, case in ipairs(cases) do
      it("raises for case " .. i, function()
        local ok, err = pcall(function() lurl.retry_budget(case[1]) end)
        assert.is_false(ok)
        assert.is_truthy(err:find(case[2], 1, true), err)
        assert.matches("budget_spec%.lua:%d+: ", err)
      end)
    end
  end)
end)

describe("lurl.token_bucket", function()
  it("prints its settings and has a __name", function()
    local b = lurl.token_bucket()
    assert.are.equal("lurl.token_bucket { max_tokens = 10, token_ratio = 0.1 }", tostring(b))
    assert.are.equal("lurl.token_bucket", getmetatable(b).__name)
  end)

  it("starts full, loses a token per failure, gains token_ratio per success, up to max", function()
    local b = lurl.token_bucket { max_tokens = 10, token_ratio = 0.1 }
    assert.are.equal(10, b:tokens("h"))
    b:record("h", false)
    assert.are.equal(10, b:tokens("h"))
    b:record("h", true)
    b:record("h", true)
    assert.are.equal(8, b:tokens("h"))
    b:record("h", false)
    assert.are.equal(8.1, b:tokens("h"))
    for _ = 1, 100 do b:record("h", true) end
    assert.are.equal(0, b:tokens("h"))
  end)

  it("allows retries only while the tokens are above max_tokens / 2", function()
    local b = lurl.token_bucket { max_tokens = 10, token_ratio = 0.1 }
    for _ = 1, 4 do b:record("h", true) end
    assert.are.equal(6, b:tokens("h"))
    assert.is_true(b:withdraw("h"))
    b:record("h", true)
    assert.are.equal(5, b:tokens("h"))
    assert.is_false(b:withdraw("h"))
    -- ten successes of 0.1 make exactly one token, counted in thousandths
    b:record("h", false)
    assert.is_true(b:withdraw("h"))
    for _ = 1, 9 do b:record("h", false) end
    assert.are.equal(6, b:tokens("h"))
    -- withdrawing costs nothing: the failures do
    assert.is_true(b:withdraw("h"))
    assert.are.equal(6, b:tokens("h"))
  end)

  it("ignores deposits and keeps each key apart", function()
    local b = lurl.token_bucket { max_tokens = 2, token_ratio = 1 }
    b:deposit("a")
    b:record("a", true)
    assert.is_false(b:withdraw("a"))
    assert.is_true(b:withdraw("b"))
    assert.are.equal(2, b:tokens("b"))
  end)

  describe("bad options", function()
    local cases = {
      { { max_tokens = 0 }, "bad argument 'max_tokens' to 'token_bucket' (number > 0 expected, got 0)" },
      { { token_ratio = -1 }, "bad argument 'token_ratio' to 'token_bucket' (number > 0 expected, got -1)" },
      { { max_tokens = "10" }, "bad argument 'max_tokens' to 'token_bucket' (number expected, got string)" },
      { { tokens = 1 }, "bad argument #1 to 'token_bucket' (unknown option 'tokens')" },
    }
    for i, case in ipairs(cases) do
      it("raises for case " .. i, function()
        local ok, err = pcall(function() lurl.token_bucket(case[1]) end)
        assert.is_false(ok)
        assert.is_truthy(err:find(case[2], 1, true), err)
        assert.matches("budget_spec%.lua:%d+: ", err)
      end)
    end
  end)
end)
