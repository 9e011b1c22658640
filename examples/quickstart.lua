-- lurl quickstart: run with `lurl examples/quickstart.lua` (./scripts/demo does).
-- It starts a small HTTP server inside the same process, so it needs no network.
local lurl = require "lurl"
local testing = require "lurl.testing"

-- A local server with one well-behaved, one slow and one flaky route.
local attempts = 0
local server = testing.server { routes = {
  ["/items"] = function(req)
    return { headers = { ["Content-Type"] = "application/json" },
             body = ('{"page": %q, "items": ["a", "b"]}'):format(req.query:match("page=(%d+)") or "1") }
  end,
  ["/slow"] = function() return { delay = 2, body = "finally" } end,
  ["/flaky"] = function()
    attempts = attempts + 1
    if attempts < 3 then return { status = 503, body = "try again" } end
    return { body = "ok after " .. attempts .. " attempts" }
  end,
} }

-- One session: shared base URL, headers, default timeouts and a connection pool.
local session = lurl.session {
  base_url = server:url("/"),
  headers = { ["User-Agent"] = "quickstart/1.0" },
  timeout = lurl.timeout { total = 10, sock_connect = 2 },
}

-- 1. A GET with query parameters; the body is read before get() returns.
local resp, err = session:get("items", { params = { page = 2 } })
assert(resp, err)
local doc = resp:json()
print(("1. GET %s -> %d %s, page %s, %d items"):format(resp.url, resp.status, resp.reason, doc.page, #doc.items))

-- 2. A per-request timeout: the slow route takes 2 s, we allow 0.5 s.
local _, terr = session:get("slow", { timeout = 0.5 })
print(("2. slow route with timeout=0.5 -> %s (is TimeoutError: %s)")
  :format(tostring(terr), tostring(terr:is("TimeoutError"))))

-- 3. Handling the timeout: fall back to a default value.
local function fetch_or_default(path, default)
  local r, e = session:get(path, { timeout = lurl.timeout { sock_read = 0.3 } })
  if not r then
    if e:is("TimeoutError") then return default end
    error(e)
  end
  return r:text()
end
print("3. with fallback -> " .. fetch_or_default("slow", "(cached value)"))

-- 4. A retry loop written in plain Lua: exponential backoff on 5xx and
--    connection errors, at most 5 attempts.
local function get_with_retry(path, max_attempts)
  local delay = 0.05
  for attempt = 1, max_attempts do
    local r, e = session:get(path)
    if r and r.status < 500 then return r, attempt end
    print(("   attempt %d: %s"):format(attempt, r and (r.status .. " " .. r.reason) or tostring(e)))
    lurl.sleep(delay)
    delay = delay * 2
  end
  return nil, "gave up"
end
local r, n = get_with_retry("flaky", 5)
print(("4. flaky route -> %q after %d attempts"):format(r and r:text() or "?", n or 0))

-- 5. Concurrency: ten requests at once in tasks.
local tasks = {}
for i = 1, 10 do
  tasks[i] = lurl.spawn(function() return session:get("items", { params = { page = i } }) end)
end
local ok = 0
for _, t in ipairs(tasks) do
  local tr = t:join()
  if tr and tr.status == 200 then ok = ok + 1 end
end
print(("5. 10 concurrent GETs -> %d ok, pool: %s"):format(ok, tostring(session.connector)))

session:close()
server:close()
