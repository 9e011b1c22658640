-- Retry budgets on their own, under the virtual clock: Finagle's windowed
-- retry_budget (ratio of requests plus a reserve per second, forgotten after
-- ttl) and gRPC's token_bucket (A6 throttling), both keyed per host. Their
-- use by lurl.retry is in retry_spec.
local lurl = require "lurl"
local testing = require "lurl.testing"
local support = require "spec.support"

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

-- A retry_budget { ratio, min_per_second, ttl = 10 } on one key: each step
-- { d, w, allowed } makes d deposits, then w withdrawals of which `allowed`
-- must be allowed.
local function steps(ratio, min_per_second, list)
  local b = lurl.retry_budget { ratio = ratio, min_per_second = min_per_second, ttl = 10 }
  for i, step in ipairs(list) do
    deposits(b, "h", step[1])
    assert.are.equal(step[3], withdrawals(b, "h", step[2]), "step " .. i)
  end
end

-- The argument errors of a budget constructor: an `it` per case
-- { options, message }, the error raised at the spec's line.
local function bad_options(make, cases)
  describe("bad options", function()
    for i, case in ipairs(cases) do
      it("raises for case " .. i, function()
        support.raises_at(case[2], function() make(case[1]) end)
      end)
    end
  end)
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
    steps(0.2, 0, { { 10, 5, 2 }, { 5, 5, 1 } })
    -- both together: 0.2 * 15 + 0.5 * 10 = 8
    steps(0.2, 0.5, { { 15, 20, 8 } })
  end)

  it("takes a whole token per retry, as Finagle: 0.5 * 3 requests allow one retry", function()
    steps(0.5, 0, { { 3, 3, 1 }, { 1, 3, 1 } })
  end)

  it("counts a ratio times requests that floats make inexact as what it is", function()
    steps(0.1, 0, { { 30, 10, 3 } }) -- 0.1 * 30 is 3.0000000000000004
    steps(0.7, 0, { { 10, 10, 7 } }) -- 0.7 * 10 is 7.000000000000001
    steps(0.3, 0, { { 3, 10, 0 } })  -- 0.3 * 3 is 0.8999999999999999
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
    -- h's window (lurl.policy.window): requests (a) and retries (b) in 10 buckets
    local w = b.windows.h
    assert.are.equal(10, #w.a)
    assert.are.equal(10, #w.b)
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

  bad_options(lurl.retry_budget, {
    { { ratio = -0.1 }, "bad argument 'ratio' to 'retry_budget' (number >= 0 expected, got -0.1)" },
    { { ratio = "a" }, "bad argument 'ratio' to 'retry_budget' (number expected, got string)" },
    { { min_per_second = -1 }, "bad argument 'min_per_second' to 'retry_budget'" },
    { { min_per_second = math.huge }, "bad argument 'min_per_second' to 'retry_budget' (finite number expected)" },
    { { ttl = 0 }, "bad argument 'ttl' to 'retry_budget' (number > 0 expected, got 0)" },
    { { per_second = 1 },
      "bad argument #1 to 'retry_budget' (unknown option 'per_second' (did you mean 'min_per_second'?))" },
  })
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

  bad_options(lurl.token_bucket, {
    { { max_tokens = 0 }, "bad argument 'max_tokens' to 'token_bucket' (number > 0 expected, got 0)" },
    { { token_ratio = -1 }, "bad argument 'token_ratio' to 'token_bucket' (number > 0 expected, got -1)" },
    { { max_tokens = "10" }, "bad argument 'max_tokens' to 'token_bucket' (number expected, got string)" },
    { { tokens = 1 }, "bad argument #1 to 'token_bucket' (unknown option 'tokens')" },
  })
end)
