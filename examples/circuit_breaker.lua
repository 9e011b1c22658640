-- A circuit breaker: after enough failures it opens and requests fail fast
-- with CircuitOpenError (the server gets a rest); after break_for one probe
-- goes through and, when it succeeds, the circuit closes.
-- Run: lurl examples/circuit_breaker.lua
local lurl = require "lurl"
local testing = require "lurl.testing"

local healthy = false
local server = testing.server { routes = { ["/status"] = function()
  if healthy then return "ok" end
  return 503
end } }

local breaker = lurl.circuit_breaker {
  failure_ratio = 0.5, min_throughput = 5, window = 10, break_for = 0.5,
  on_event = function(ev) print(("   breaker %s: %s -> %s"):format(ev.key, ev.from, ev.to)) end,
}
local session = lurl.session { base_url = server:url("/"), middlewares = { breaker }, timeout = 5 }

-- 1. Five failures in a row: the circuit opens.
for _ = 1, 5 do session:get("status") end
print(("1. after 5 failures the circuit is %s; the server saw %d requests")
  :format(breaker:state(server:url("")), server:count()))

-- 2. While open, requests fail fast without reaching the server.
local resp, err = session:get("status")
print(("2. GET while open -> %s"):format(tostring(err)))
assert(not resp and err:is("CircuitOpenError") and server:count() == 5)

-- 3. The server recovers; after break_for a probe closes the circuit.
healthy = true
lurl.sleep(0.6)
resp = assert(session:get("status"))
print(("3. after break_for -> %d %s"):format(resp.status, resp:text()))
assert(resp.status == 200)

session:close()
server:close()
