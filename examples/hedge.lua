-- Hedged requests: when the first attempt is slow, a second one races it;
-- the first answer wins and the loser's connection is closed, not leaked.
-- Run: lurl examples/hedge.lua
local lurl = require "lurl"
local testing = require "lurl.testing"

-- Every third request is slow (a straggler, as a GC pause or a busy replica).
local n = 0
local server = testing.server { routes = { ["/search"] = function()
  n = n + 1
  if n % 3 == 1 then return { delay = 1, body = "slow answer" } end
  return { body = "fast answer" }
end } }

local hedge = lurl.hedge {
  delay = 0.05, max = 2,
  on_event = function(ev)
    if ev.type == "hedge_fired" then print(("   hedge fired after %.3f s"):format(ev.delay)) end
  end,
}
local session = lurl.session { base_url = server:url("/"), middlewares = { hedge }, timeout = 5 }

for i = 1, 3 do
  local t0 = lurl.now()
  local resp = assert(session:get("search"))
  print(("%d. GET /search -> %q in %.3f s"):format(i, resp:text(), lurl.now() - t0))
  assert(resp:text() == "fast answer" and lurl.now() - t0 < 0.9)
end

-- The losers' connections were closed at once; the server notices when
-- its slow answers are done, after which only the pooled one is left.
local stats = session.connector:stats()
lurl.sleep(1.1)
print(("pool: %d in use, %d idle; %d connection(s) open on the server once its slow answers are done")
  :format(stats.in_use, stats.idle, server:open_connections()))
assert(stats.in_use == 0 and stats.total == stats.idle and server:open_connections() == stats.idle)

session:close()
server:close()
