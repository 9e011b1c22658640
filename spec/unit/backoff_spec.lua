-- lurl.backoff: the delays of each strategy, each jitter against the AWS
-- "Exponential Backoff And Jitter" formulas with a seeded generator, how
-- they print, and the argument errors.
local ffi = require "ffi"
local lurl = require "lurl"
local base = require "lurl.policy.base"
local backoff = require "lurl.policy.backoff"
local support = require "spec.support"

local EPS = 1e-12

ffi.cdef "long readlink(const char *path, char *buf, size_t size);"
local exe_buf = ffi.new("char[4096]")

-- The delays for retries 1..n, each fed the previous one as prev.
local function delays(b, n, rng)
  local out, prev = {}, nil
  for i = 1, n do
    prev = b:delay(i, prev, rng)
    out[i] = prev
  end
  return out
end

local function assert_delays(expected, actual)
  assert.are.equal(#expected, #actual)
  for i = 1, #expected do
    assert.is_true(math.abs(expected[i] - actual[i]) < EPS,
      ("retry %d: expected %.17g, got %.17g"):format(i, expected[i], actual[i]))
  end
end

describe("lurl.backoff", function()
  it("is reachable as lurl.backoff.<name>", function()
    assert.are.equal(backoff.exponential, lurl.backoff.exponential)
    assert.are.equal(backoff.linear, lurl.backoff.linear)
    assert.are.equal(backoff.constant, lurl.backoff.constant)
  end)

  describe("constant", function()
    it("waits the same each time", function()
      assert_delays({ 0.5, 0.5, 0.5, 0.5 }, delays(lurl.backoff.constant(0.5), 4))
      assert_delays({ 0, 0 }, delays(lurl.backoff.constant(0), 2))
    end)

    it("takes full and equal jitter", function()
      local r = base.rng(3)
      local full = delays(lurl.backoff.constant(2, { jitter = "full" }), 5, base.rng(3))
      for i = 1, 5 do assert.is_true(math.abs(full[i] - 2 * r()) < EPS) end
      local r2 = base.rng(4)
      local equal = delays(lurl.backoff.constant(2, { jitter = "equal" }), 5, base.rng(4))
      for i = 1, 5 do assert.is_true(math.abs(equal[i] - (1 + r2())) < EPS) end
    end)

    it("refuses decorrelated jitter, which needs a growing strategy", function()
      assert.has_error(function() lurl.backoff.constant(1, { jitter = "decorrelated" }) end,
        "bad argument 'jitter' to 'constant' (decorrelated grows from the previous delay: use linear or exponential)")
    end)
  end)

  describe("linear", function()
    it("adds step each retry, from base, up to max", function()
      assert_delays({ 1, 1.5, 2, 2.5, 3, 3, 3 }, delays(lurl.backoff.linear { base = 1, step = 0.5, max = 3 }, 7))
    end)

    it("defaults to base 0.1, step = base, no cap and no jitter", function()
      local b = lurl.backoff.linear()
      assert_delays({ 0.1, 0.2, 0.30000000000000004, 0.4, 0.5 }, delays(b, 5))
      assert.are.equal(10, b:delay(100))
      assert_delays({ 2, 4, 6 }, delays(lurl.backoff.linear { base = 2 }, 3))
    end)

    it("jitters as asked", function()
      local r = base.rng(11)
      local got = delays(lurl.backoff.linear { base = 1, step = 1, max = 3, jitter = "full" }, 5, base.rng(11))
      for i, d in ipairs { 1, 2, 3, 3, 3 } do assert.is_true(math.abs(got[i] - r() * d) < EPS) end
    end)
  end)

  describe("exponential", function()
    it("multiplies by factor from base, capped at max", function()
      local b = lurl.backoff.exponential { base = 0.1, factor = 2, max = 10, jitter = "none" }
      assert_delays({ 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10, 10 }, delays(b, 10))
      local by3 = lurl.backoff.exponential { base = 1, factor = 3, max = 20, jitter = "none" }
      assert_delays({ 1, 3, 9, 20 }, delays(by3, 4))
    end)

    it("defaults to base 0.1, factor 2, max 10 and full jitter", function()
      local b = lurl.backoff.exponential()
      assert.are.same({ 0.1, 2, 10, "full" }, { b.base, b.factor, b.max, b.jitter })
      for n = 1, 12 do
        local d = b:delay(n)
        assert.is_true(d >= 0 and d < math.min(10, 0.1 * 2 ^ (n - 1)))
      end
    end)

    -- The formulas, with the generator the strategy is given, draw by draw.
    local function capped(n) return math.min(10, 0.1 * 2 ^ (n - 1)) end

    it("full jitter is U(0, d)", function()
      local r = base.rng(42)
      local expected = {}
      for n = 1, 10 do expected[n] = r() * capped(n) end
      assert_delays(expected, delays(lurl.backoff.exponential { jitter = "full" }, 10, base.rng(42)))
    end)

    it("equal jitter is d / 2 + U(0, d / 2)", function()
      local r = base.rng(42)
      local expected = {}
      for n = 1, 10 do expected[n] = capped(n) / 2 + r() * capped(n) / 2 end
      local got = delays(lurl.backoff.exponential { jitter = "equal" }, 10, base.rng(42))
      assert_delays(expected, got)
      for n = 1, 10 do assert.is_true(got[n] >= capped(n) / 2 and got[n] <= capped(n)) end
    end)

    it("decorrelated jitter is min(max, U(base, 3 * prev)), from prev = base", function()
      local r = base.rng(42)
      local expected, prev = {}, 0.1
      for n = 1, 20 do
        prev = math.min(10, 0.1 + r() * (3 * prev - 0.1))
        expected[n] = prev
      end
      local got = delays(lurl.backoff.exponential { jitter = "decorrelated" }, 20, base.rng(42))
      assert_delays(expected, got)
      for n = 1, 20 do assert.is_true(got[n] >= 0.1 and got[n] <= 10) end
    end)

    it("decorrelated jitter reaches the cap and stays within it", function()
      local got = delays(lurl.backoff.exponential { base = 1, max = 4, jitter = "decorrelated" }, 200, base.rng(5))
      local top = 0
      for _, d in ipairs(got) do
        assert.is_true(d >= 1 and d <= 4)
        top = math.max(top, d)
      end
      assert.are.equal(4, top)
    end)

    it("uses math.random without a generator", function()
      math.randomseed(1)
      local a = lurl.backoff.exponential { base = 1, max = 1 }:delay(1)
      math.randomseed(1)
      assert.are.equal(a, math.random())
    end)

    it("draws other delays in every lurl process: the runtime seeds math.random from the OS", function()
      local exe = ffi.string(exe_buf, ffi.C.readlink("/proc/self/exe", exe_buf, 4096))
      local script = [[local b = require("lurl").backoff.exponential { base = 1, max = 100 }
        print(b:delay(1), b:delay(2), b:delay(3))]]
      local runs = {}
      for i = 1, 2 do
        local p = assert(io.popen(("%q -e %q"):format(exe, script)))
        runs[i] = p:read("*a")
        p:close()
        assert.matches("^[%d.e-]+\t[%d.e-]+\t[%d.e-]+\n$", runs[i])
      end
      assert.are_not.equal(runs[1], runs[2])
    end)
  end)

  describe("printing", function()
    it("has a __name and prints its settings", function()
      assert.are.equal("lurl.backoff", getmetatable(lurl.backoff.exponential()).__name)
      assert.are.equal('lurl.backoff.exponential { base = 0.1, factor = 2, max = 10, jitter = "full" }',
        tostring(lurl.backoff.exponential()))
      assert.are.equal('lurl.backoff.linear { base = 1, step = 0.5, max = 3, jitter = "none" }',
        tostring(lurl.backoff.linear { base = 1, step = 0.5, max = 3 }))
      assert.are.equal('lurl.backoff.linear { base = 0.1, step = 0.1, jitter = "none" }',
        tostring(lurl.backoff.linear()))
      assert.are.equal('lurl.backoff.constant { delay = 2, jitter = "equal" }',
        tostring(lurl.backoff.constant(2, { jitter = "equal" })))
    end)

    it("prints a function given to a retry as where it is defined", function()
      local b = backoff.from(function(n) return n end, "retry", "'backoff'", 1)
      assert.matches("^lurl%.backoff%.custom { function <.*backoff_spec%.lua:%d+> }$", tostring(b))
      assert.are.equal(3, b:delay(3))
    end)
  end)

  describe("what a retry's backoff option takes", function()
    it("seconds as a constant, a function, a strategy, nothing as the default", function()
      assert.are.equal('lurl.backoff.constant { delay = 0.25, jitter = "none" }',
        tostring(backoff.from(0.25, "retry", "'backoff'", 1)))
      local b = lurl.backoff.linear()
      assert.are.equal(b, backoff.from(b, "retry", "'backoff'", 1))
      assert.are.equal(tostring(lurl.backoff.exponential()), tostring(backoff.from(nil, "retry", "'backoff'", 1)))
    end)

    it("a function gets n and the previous delay, and must give seconds", function()
      local seen = {}
      local b = backoff.from(function(n, prev) seen[#seen + 1] = { n, prev }; return n * 2 end, "retry", "'b'", 1)
      delays(b, 3)
      assert.are.same({ { 1, nil }, { 2, 2 }, { 3, 4 } }, seen)
      local bad = backoff.from(function() return -1 end, "retry", "'b'", 1)
      assert.has_error(function() bad:delay(1) end)
      local nan = backoff.from(function() return "soon" end, "retry", "'b'", 1)
      support.raises("returned soon, not seconds >= 0", nan.delay, nan, 1)
    end)
  end)

  describe("bad arguments", function()
    -- each raises naming the option, at the caller's line
    local cases = {
      { function() lurl.backoff.constant(-1) end, "bad argument #1 to 'constant' (number of seconds >= 0 expected" },
      { function() lurl.backoff.constant("1") end, "bad argument #1 to 'constant'" },
      { function() lurl.backoff.constant(1, { max = 2 }) end, "bad argument #2 to 'constant' (unknown option 'max')" },
      { function() lurl.backoff.constant(1, { jitter = "some" }) end, "bad argument 'jitter' to 'constant'" },
      { function() lurl.backoff.linear { bass = 1 } end,
        "bad argument #1 to 'linear' (unknown option 'bass' (did you mean 'base'?))" },
      { function() lurl.backoff.linear { step = -1 } end, "bad argument 'step' to 'linear'" },
      { function() lurl.backoff.linear { base = "1" } end, "bad argument 'base' to 'linear' (number expected" },
      { function() lurl.backoff.linear { base = 2, max = 1 } end, "bad argument 'max' to 'linear' (1 is below 'base'" },
      { function() lurl.backoff.exponential { factor = 0.5 } end, "bad argument 'factor' to 'exponential' (number >=" },
      { function() lurl.backoff.exponential { base = 30 } end, "bad argument 'max' to 'exponential' (10 is below" },
      { function() lurl.backoff.exponential { max = -1 } end, "bad argument 'max' to 'exponential'" },
      { function() lurl.backoff.exponential { jitter = "half" } end,
        "(\"none\", \"full\", \"equal\" or \"decorrelated\" expected, got half)" },
      { function() lurl.backoff.exponential { jitter = true } end, "bad argument 'jitter' to 'exponential'" },
      { function() lurl.backoff.exponential(5) end, "bad argument #1 to 'exponential' (options table expected" },
    }
    for i, case in ipairs(cases) do
      it("raises for case " .. i .. ": " .. case[2], function() support.raises_at(case[2], case[1]) end)
    end
  end)
end)
