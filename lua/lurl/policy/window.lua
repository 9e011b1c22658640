-- Two counts over a sliding window of time (requests and failures, requests
-- and accepts), for the circuit breaker and adaptive throttling.
local sched = require "lurl.sched"

local M = {}

-- new(span, n): counts a and b over the last span seconds, kept in n
-- buckets of span / n seconds (Polly's rolling health metrics use 10): the
-- memory is bounded and the window slides one bucket at a time, so an
-- outcome is forgotten between span - span / n and span seconds after it.
local Window = {}
local window_mt = { __name = "lurl.policy.window", __index = Window }
function window_mt.__tostring(w)
  return ("lurl.policy.window (%g s in %d buckets: %d, %d)"):format(w.width * w.n, w.n, w.sum_a, w.sum_b)
end

function M.new(span, n)
  local w = setmetatable({ width = span / n, n = n, a = {}, b = {}, last = false }, window_mt)
  w:reset()
  return w
end

function Window:reset()
  for k = 1, self.n do self.a[k], self.b[k] = 0, 0 end
  self.sum_a, self.sum_b = 0, 0
end

local function empty(w, k)
  w.sum_a, w.sum_b = w.sum_a - w.a[k], w.sum_b - w.b[k]
  w.a[k], w.b[k] = 0, 0
end

-- Move the window up to now, emptying the buckets that fell out of it;
-- returns the slot of the current bucket.
local function slide(w)
  local idx = math.floor(sched.now() / w.width)
  local last = w.last
  if last and idx < last then
    -- time went back: another clock (virtual or real) was installed
    w:reset()
  elseif last then
    for i = math.max(last + 1, idx - w.n + 1), idx do empty(w, i % w.n + 1) end
  end
  w.last = idx
  return idx % w.n + 1
end

function Window:add(da, db)
  local k = slide(self)
  self.a[k], self.b[k] = self.a[k] + da, self.b[k] + db
  self.sum_a, self.sum_b = self.sum_a + da, self.sum_b + db
end

-- The two counts over the window now.
function Window:sums()
  slide(self)
  return self.sum_a, self.sum_b
end

return M
