-- The scenario lurl started from: 13,000 GETs gathered at once with
-- timeout = 2 through the default pool of 100, from a server that answers
-- each in 50 ms. Most never leave the pool's queue within their 2 s; each
-- of those must say so, with the pool's numbers, instead of a bare
-- "total timeout expired" (aiohttp gives the same failure with an empty
-- message).
local lurl = require "lurl"
local support = require "spec.support"

local REQUESTS, LIMIT = 13000, 100

describe("the pool trap", function()
  it("requests that never left the queue say so, with the pool's numbers", function()
    local server = support.server { ["/answer"] = function() return { delay = 0.05, body = "ok" } end }
    local s = support.session(server)
    local tasks = {}
    for i = 1, REQUESTS do tasks[i] = lurl.spawn(function() return s:get("answer", { timeout = 2 }) end) end
    local ok, by_phase, sample = 0, {}, nil
    for i = 1, REQUESTS do
      local resp, err = tasks[i]:join()
      if resp then
        ok = ok + 1
      else
        assert.are.equal("TimeoutError", err.kind, tostring(err))
        by_phase[err.phase] = (by_phase[err.phase] or 0) + 1
        if err.phase == "pool" then sample = sample or err end
      end
    end
    s:close()
    server:close()
    assert.is_true(ok >= LIMIT, ("only %d answered"):format(ok))
    -- thousands waited in the queue all along; the others were handed a
    -- connection or a slot in their last moments (when the requests in
    -- flight at the 2 s mark expired and closed theirs) and say so: how
    -- many of each depends on the machine's load
    local failed = REQUESTS - ok
    assert.is_true(by_phase.pool > 1000, ("pool %d of %d failures"):format(by_phase.pool, failed))
    for phase in pairs(by_phase) do assert.is_truthy(({ pool = 1, connect = 1, send = 1, head = 1 })[phase], phase) end
    assert.are.equal(LIMIT, sample.limit)
    assert.are.equal(LIMIT, sample.in_use)
    assert.is_true(sample.queued > 0 and sample.queued < REQUESTS)
    local queued = tostring(sample.queued):reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
    assert.matches("^total timeout of 2s expired after [12]%.%d%ds waiting for a free connection %(limit 100: 100 "
      .. "connections in use, " .. queued .. " more requests queued; bound concurrency with lurl%.semaphore",
      sample.message)
  end)
end)
