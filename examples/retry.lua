-- Retries as a session middleware: exponential backoff with jitter,
-- Retry-After, a retry budget, and POST retried only with an
-- Idempotency-Key. Run: lurl examples/retry.lua (it starts its own server).
local lurl = require "lurl"
local testing = require "lurl.testing"

local server = testing.server { routes = {
  ["/flaky"] = testing.sequence(503, 503, "ok"),                       -- fails twice, then works
  ["/busy"] = testing.sequence({ status = 429, retry_after = 1 }, "served"), -- "come back in 1 s"
  ["/orders"] = testing.sequence(503, { status = 201, body = "created" }),
} }

local retry = lurl.retry {
  attempts = 4,
  backoff = lurl.backoff.exponential { base = 0.05, factor = 2, max = 1, jitter = "full" },
  budget = lurl.retry_budget { ratio = 0.2, min_per_second = 10 },
  on_event = function(ev)
    if ev.type == "backoff" then
      print(("   attempt %d failed (%s): waiting %.3f s"):format(ev.attempt, ev.reason, ev.delay))
    end
  end,
}
local session = lurl.session { base_url = server:url("/"), middlewares = { retry }, timeout = 10 }
print("middlewares: " .. tostring(session.middlewares))

-- 1. A GET that fails twice with 503: retried with backoff.
local resp = assert(session:get("flaky"))
print(("1. GET /flaky -> %d %q after %d attempts"):format(resp.status, resp:text(), server:count("/flaky")))
assert(resp.status == 200 and server:count("/flaky") == 3)

-- 2. 429 with Retry-After: 1 -> the retry waits what the server asked.
local t0 = lurl.now()
resp = assert(session:get("busy"))
print(("2. GET /busy -> %d after waiting %.2f s as asked"):format(resp.status, lurl.now() - t0))
assert(resp.status == 200 and lurl.now() - t0 >= 1)

-- 3. POST is not idempotent: never retried by default.
resp = assert(session:post("orders", { json = { item = "book" } }))
print(("3. POST /orders -> %d, %d attempt (not retried)"):format(resp.status, server:count("/orders")))
assert(resp.status == 503 and server:count("/orders") == 1)

-- 4. With an Idempotency-Key the server can deduplicate: retried.
resp = assert(session:post("orders", { json = { item = "book" }, headers = { ["Idempotency-Key"] = "order-42" } }))
print(("4. POST /orders with Idempotency-Key -> %d %q"):format(resp.status, resp:text()))
assert(resp.status == 201)

-- 5. The same policy around any function: policy:run(fn).
local calls = 0
local value, err = retry:run(function(ctx)
  calls = calls + 1
  if ctx.attempt < 3 then return nil, lurl.error("ClientConnectionError", "simulated failure") end
  return "done on attempt " .. ctx.attempt
end)
print(("5. retry:run -> %s (%d calls)"):format(tostring(value or err), calls))
assert(value and calls == 3)

session:close()
server:close()
