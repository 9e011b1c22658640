-- Fallback as a session middleware: a primary that fails, a second server,
-- and a canned answer when both are down. Run: lurl examples/fallback.lua
local lurl = require "lurl"
local testing = require "lurl.testing"

local primary = testing.server { routes = { ["*"] = function() return { status = 503, retry_after = 30 } end } }
local secondary = testing.server {
  routes = { ["/price"] = function() return { json = { price = 42, from = "secondary" } } end } }

local fallback = lurl.fallback {
  secondary:url("/"),                                                   -- the same request, another server
  { status = 200, headers = { ["Content-Type"] = "application/json" }, body = '{"price": 40, "from": "cache"}' },
  on_event = function(ev) print(("   fallback_taken: #%d %s (%s)"):format(ev.index, ev.alternative, ev.reason)) end,
}
local session = lurl.session { base_url = primary:url("/"), middlewares = { fallback }, timeout = 5 }

-- 1. The primary answers 503 with Retry-After: 30 -> the secondary serves.
local resp = assert(session:get("price"))
print(("1. GET /price -> %d %s"):format(resp.status, resp:text()))
assert(resp:json().from == "secondary")

-- 2. The primary asked for 30 s of rest: it is skipped while it cools down.
local before = primary:count()
resp = assert(session:get("price"))
print(("2. again -> %s; primary asked %d more times"):format(resp:json().from, primary:count() - before))
assert(primary:count() == before)

-- 3. Both servers down: the canned answer.
secondary:close()
resp = assert(session:get("price"))
print(("3. secondary down too -> %d %s"):format(resp.status, resp:text()))
assert(resp:json().from == "cache")

session:close()
primary:close()
