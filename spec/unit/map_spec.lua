-- lurl.map (a bounded map on a pool of workers) and lurl.gather over a list.
local lurl = require "lurl"
local support = require "spec.support"

-- The resident set of this process, in KiB (Linux).
local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local kib = f:read("*a"):match("VmRSS:%s*(%d+)")
  f:close()
  return tonumber(kib)
end

describe("lurl.map", function()
  it("gives every item's result, as they finish", function()
    local seen = {}
    for item, res, err in lurl.map({ 3, 1, 2 }, function(n) lurl.sleep(n / 100); return n * 10 end) do
      seen[#seen + 1] = { item, res, err }
    end
    assert.are.same({ { 1, 10 }, { 2, 20 }, { 3, 30 } }, seen)
  end)

  it("keeps the input order when asked", function()
    local order = {}
    for item in lurl.map({ 3, 1, 2 }, function(n) lurl.sleep(n / 100); return n end, { ordered = true }) do
      order[#order + 1] = item
    end
    assert.are.same({ 3, 1, 2 }, order)
  end)

  it("returns each item's error, raised or returned, and loses none", function()
    local got = {}
    local m = lurl.map({ "ok", "raise", "nil-err" }, function(x)
      if x == "raise" then error("boom", 0) end
      if x == "nil-err" then return nil, "said no" end
      return "fine"
    end, { ordered = true })
    for item, res, err in m do got[item] = { res, err } end
    assert.are.same({ ok = { "fine" }, raise = { nil, "boom" }, ["nil-err"] = { nil, "said no" } }, got)
  end)

  it("runs at most concurrency items at once", function()
    local now, peak = 0, 0
    for _ in lurl.map(function() end, function() end) do end -- an empty iterator
    local items = {}
    for i = 1, 50 do items[i] = i end
    for _ in lurl.map(items, function()
      now = now + 1
      peak = math.max(peak, now)
      lurl.sleep(0.001)
      now = now - 1
    end, { concurrency = 7 }) do end
    assert.are.equal(7, peak)
  end)

  it("reads an iterator lazily and calls progress", function()
    local n, pulled, progressed = 0, 0, 0
    local function gen()
      if n == 1000 then return nil end
      n, pulled = n + 1, pulled + 1
      return n
    end
    local count = 0
    for _ in lurl.map(gen, function(x) return x end, { concurrency = 4, progress = function(d) progressed = d end }) do
      count = count + 1
      assert.is_true(pulled <= count + 4 + 4, "pulled " .. pulled .. " with " .. count .. " consumed")
    end
    assert.are.equal(1000, count)
    assert.are.equal(1000, progressed)
  end)

  it("takes io.lines, which must not be called after it ended", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    for i = 1, 50 do f:write("line ", i, "\n") end
    f:close()
    local n = 0
    for _, res in lurl.map(io.lines(path), function(l) return #l end, { concurrency = 8 }) do
      n = n + (res and 1 or 0)
    end
    os.remove(path)
    assert.are.equal(50, n)
  end)

  it("stops its workers on cancel(), after a break", function()
    local started = 0
    local items = {}
    for i = 1, 100 do items[i] = i end
    local m = lurl.map(items, function() started = started + 1; lurl.sleep(10) end, { concurrency = 5 })
    lurl.sleep(0.01)
    m:cancel()
    assert.is_nil(m())
    assert.are.equal(5, started)
  end)

  it("keeps memory flat over 100,000 items", function()
    local i = 0
    local function gen()
      if i == 100000 then return nil end
      i = i + 1
      return "http://host" .. i .. ".test/"
    end
    collectgarbage()
    local before = rss_kib()
    local count = 0
    for _, res in lurl.map(gen, function(u) lurl.sleep(0); return #u end, { concurrency = 200 }) do
      count = count + (res and 1 or 0)
    end
    collectgarbage()
    assert.are.equal(100000, count)
    assert.is_true(rss_kib() - before < 32 * 1024, "grew by " .. (rss_kib() - before) .. " KiB")
  end)

  it("checks its arguments", function()
    support.raises("bad argument #1 to 'map' (list or iterator function expected, got number)", lurl.map, 5, print)
    support.raises("bad argument #3 to 'map' (unknown option 'concurency' (did you mean 'concurrency'?))",
      lurl.map, {}, print, { concurency = 2 })
  end)
end)

describe("lurl.gather", function()
  it("takes a list of 20,000 functions and returns a list", function()
    local fns = {}
    for i = 1, 20000 do fns[i] = function() return i end end
    local results = lurl.gather(fns)
    assert.are.equal(20000, #results)
    assert.are.equal(12345, results[12345])
  end)

  it("still spreads the results of functions given one by one", function()
    local a, b = lurl.gather(function() return 1 end, function() return 2 end)
    assert.are.same({ 1, 2 }, { a, b })
  end)
end)
