-- Retry budgets: a bound on how much extra load retries (and hedges) may
-- add, so that a struggling server is not buried under them. Shared by
-- lurl.retry and lurl.hedge; one object may serve many policies and
-- sessions, with its state kept per key (the host, ctx:origin()).
--
--   budget:deposit(key)        once per original request
--   budget:withdraw(key) -> ok before each retry or hedge (false: give up)
--   budget:record(key, failed) after each attempt's outcome
--
-- lurl.retry_budget{ ratio = 0.2, min_per_second = 10, ttl = 10 }
--   Finagle's RetryBudget (com.twitter.finagle.service.RetryBudget): over
--   the last ttl seconds, retries may reach ratio * requests, plus a
--   reserve of min_per_second * ttl so that a quiet client can still retry.
--   As in Finagle a retry takes one whole token: it is allowed when
--   retries + 1 <= ratio * requests + min_per_second * ttl. The window is
--   ten slices of ttl / 10 seconds (Finagle's WindowedAdder; lurl.policy.window),
--   so the memory per key is fixed and a slice is forgotten as a whole.
--
-- lurl.token_bucket{ max_tokens = 10, token_ratio = 0.1 }
--   gRPC retry throttling (gRFC A6): a key starts with max_tokens; every
--   failed attempt takes 1 token, every other one gives token_ratio back
--   (up to max_tokens); retries and hedges are allowed only while the count
--   is above max_tokens / 2. "Failed" is what the policy counts as a
--   transient failure (its retry_on): gRPC's retryable status codes. Tokens
--   are counted in thousandths, as A6 asks, so the threshold is exact.
local base = require "lurl.policy.base"
local check = require "lurl.check"
local window = require "lurl.policy.window"

local M = {}

-- ---- retry_budget ----

-- ratio * requests is a float: 0.1 * 30 must allow 3 retries, not 2
local EPSILON = 1e-9

local RetryBudget = {}
local rb_mt = { __name = "lurl.retry_budget", __index = RetryBudget }
function rb_mt.__tostring(b)
  return ("lurl.retry_budget { %s }"):format(base.fields(b, { "ratio", "min_per_second", "ttl" }))
end

-- Each key's window counts requests (a) and retries (b).
function RetryBudget:deposit(key) self.windows[key]:add(1, 0) end

-- balance(key) -> how many retries key may make now.
function RetryBudget:balance(key)
  local requests, retries = self.windows[key]:sums()
  return math.max(0, math.floor(self.ratio * requests + self.reserve - retries + EPSILON))
end

function RetryBudget:withdraw(key)
  if self:balance(key) < 1 then return false end
  self.windows[key]:add(0, 1)
  return true
end

function RetryBudget:record() end

local function positive(fname, name, v)
  if v ~= nil and not (v > 0 and v < math.huge) then
    check.argerror(fname, "'" .. name .. "'", "number > 0 expected, got " .. tostring(v))
  end
  return v
end

function M.retry_budget(opts)
  opts = base.check("retry_budget", opts, { ratio = "number", min_per_second = "number", ttl = "number" }, 2)
  local ratio = opts.ratio or 0.2
  if not (ratio >= 0 and ratio < math.huge) then
    check.argerror("retry_budget", "'ratio'", "number >= 0 expected, got " .. tostring(ratio))
  end
  local min = check.seconds("retry_budget", "'min_per_second'", opts.min_per_second) or 10
  if min == math.huge then check.argerror("retry_budget", "'min_per_second'", "finite number expected") end
  local ttl = positive("retry_budget", "ttl", opts.ttl) or 10
  return setmetatable({ ratio = ratio, min_per_second = min, ttl = ttl, reserve = min * ttl,
    windows = base.keyed(function() return window.new(ttl, 10) end) }, rb_mt)
end

-- ---- token_bucket ----

local MILLI = 1000

local TokenBucket = {}
local tb_mt = { __name = "lurl.token_bucket", __index = TokenBucket }
function tb_mt.__tostring(b)
  return ("lurl.token_bucket { %s }"):format(base.fields(b, { "max_tokens", "token_ratio" }))
end

local function milli(self, key)
  return self.counts[key] or self.max_milli
end

-- tokens(key) -> the tokens key holds now.
function TokenBucket:tokens(key) return milli(self, key) / MILLI end

function TokenBucket:deposit() end

function TokenBucket:withdraw(key)
  return milli(self, key) * 2 > self.max_milli
end

function TokenBucket:record(key, failed)
  local m = milli(self, key)
  if failed then
    m = math.max(0, m - MILLI)
  else
    m = math.min(self.max_milli, m + self.ratio_milli)
  end
  self.counts[key] = m
end

function M.token_bucket(opts)
  opts = base.check("token_bucket", opts, { max_tokens = "number", token_ratio = "number" }, 2)
  local max = positive("token_bucket", "max_tokens", opts.max_tokens) or 10
  local ratio = positive("token_bucket", "token_ratio", opts.token_ratio) or 0.1
  return setmetatable({ max_tokens = max, token_ratio = ratio, max_milli = math.floor(max * MILLI + 0.5),
    ratio_milli = math.floor(ratio * MILLI + 0.5), counts = {} }, tb_mt)
end

return M
