-- Compare retry policies under an outage, in virtual time:
--
--   lurl examples/simulate.lua [clients] [seconds] [capacity]
--
-- `clients` tasks (default 50) each send 10 requests a second for `seconds`
-- (default 10) to a fake server (lurl.testing.mock) that serves `capacity`
-- requests a second (default 600) and answers 503 beyond that, and to
-- everything during an outage from 30% to 60% of the run. Each policy runs
-- the same load; the table shows how many attempts the server saw per
-- client request (retry amplification), how many requests succeeded, and
-- their mean latency. Time is virtual (lurl.testing.clock), so the whole
-- comparison takes a second or two, and the same seed gives the same table.
local lurl = require "lurl"
local testing = require "lurl.testing"

local CLIENTS = tonumber(arg and arg[1]) or 50
local SECONDS = tonumber(arg and arg[2]) or 10
local CAPACITY = tonumber(arg and arg[3]) or 600
local RATE = 10 -- requests per second per client
local OUTAGE = { SECONDS * 0.3, SECONDS * 0.6 }
local URL = "http://api.test/items"

-- The server: 20 ms to answer; 503 in the outage and above capacity (the
-- attempts of one virtual second are counted).
local function fake_server(clock)
  local mock = testing.mock()
  local second, load = -1, 0
  mock:on("GET", URL, function()
    local t = clock:elapsed()
    if math.floor(t) ~= second then second, load = math.floor(t), 0 end
    load = load + 1
    if (t >= OUTAGE[1] and t < OUTAGE[2]) or load > CAPACITY then
      return { status = 503, delay = 0.005 }
    end
    return { status = 200, body = "ok", delay = 0.02 }
  end)
  return mock
end

local function exponential() return lurl.backoff.exponential { base = 0.05, factor = 2, max = 2, jitter = "full" } end

-- Each entry makes fresh policy objects: budgets and breakers keep state.
local POLICIES = {
  { "no retries", function() return {} end },
  { "retry x5, no backoff", function()
    return { lurl.retry { attempts = 5, backoff = 0, rng = 1 } }
  end },
  { "retry x5, exponential + full jitter", function()
    return { lurl.retry { attempts = 5, backoff = exponential(), rng = 1 } }
  end },
  { "  + retry_budget 20%", function()
    return { lurl.retry { attempts = 5, backoff = exponential(), rng = 1,
      budget = lurl.retry_budget { ratio = 0.2, min_per_second = 10 } } }
  end },
  { "  + token_bucket (gRPC)", function()
    return { lurl.retry { attempts = 5, backoff = exponential(), rng = 1,
      budget = lurl.token_bucket { max_tokens = 10, token_ratio = 0.1 } } }
  end },
  { "  + circuit_breaker", function()
    return { lurl.circuit_breaker { failure_ratio = 0.5, min_throughput = 50, window = 2, break_for = 1 },
      lurl.retry { attempts = 5, backoff = exponential(), rng = 1 } }
  end },
  { "  + adaptive_throttle (SRE)", function()
    return { lurl.adaptive_throttle { k = 2, window = 2, rng = 1 },
      lurl.retry { attempts = 5, backoff = exponential(), rng = 1 } }
  end },
}

local function run(middlewares)
  local clock = testing.clock { autojump = true }
  local mock = fake_server(clock)
  local session = mock:session { middlewares = middlewares, connector_owner = true }
  local stats = { requests = 0, ok = 0, latency = 0 }
  local tasks = {}
  for c = 1, CLIENTS do
    tasks[c] = lurl.spawn(function()
      lurl.sleep((c - 1) / (CLIENTS * RATE)) -- spread the clients over the first interval
      while clock:elapsed() < SECONDS do
        local t0 = clock:now()
        local resp = session:get(URL)
        stats.requests = stats.requests + 1
        if resp and resp.status == 200 then
          stats.ok = stats.ok + 1
          stats.latency = stats.latency + (clock:now() - t0)
        end
        lurl.sleep(math.max(0, 1 / RATE - (clock:now() - t0)))
      end
      return true
    end)
  end
  for _, t in ipairs(tasks) do assert(t:join()) end
  session:close()
  clock:close()
  stats.attempts = #mock.calls
  return stats
end

print(("%d clients x %d req/s for %gs, capacity %d req/s, outage %gs-%gs (virtual time)\n")
  :format(CLIENTS, RATE, SECONDS, CAPACITY, OUTAGE[1], OUTAGE[2]))
print(("%-38s %9s %9s %14s %9s %12s"):format("policy", "requests", "attempts", "amplification", "success",
  "mean ok (ms)"))
for _, p in ipairs(POLICIES) do
  local s = run(p[2]())
  print(("%-38s %9d %9d %13.2fx %8.1f%% %12.1f"):format(p[1], s.requests, s.attempts, s.attempts / s.requests,
    100 * s.ok / s.requests, s.ok > 0 and 1000 * s.latency / s.ok or 0))
end
