-- "HTTP-ping" a list of URLs: which answer 200, 3xx, 404, 5xx or nothing.
-- The scenario lurl started from. Gathering one task per URL, each with a
-- per-request timeout, makes the requests queue for the pool inside their
-- own timeout and reports servers that answer as timed out. lurl.map runs
-- a fixed pool of workers instead, so each timeout measures its request
-- alone; and the pool has room for every worker, so nothing queues.
--
--   build/lurl examples/ping_list.lua [urls.txt]
--
-- Without a file it starts a local server and checks a list against it, so
-- it runs as written. The same from the shell: lurl --fetch -c 50 -t 2 -a urls.txt
local lurl = require "lurl"

local CONCURRENCY, TIMEOUT = 50, 2

-- The URLs: the file's lines, or a local list over routes that answer 200,
-- 404 and 500, redirect, or never answer in time, plus a refused port.
local function urls_and_server()
  if arg[1] then return io.lines(arg[1]) end
  local server = lurl.testing.server { routes = {
    ["/up"] = function() return { body = "ok" } end,
    ["/gone"] = function() return { status = 404 } end,
    ["/broken"] = function() return { status = 500 } end,
    ["/moved"] = function() return { status = 301, headers = { Location = "/up" } } end,
    ["/stuck"] = function() return { delay = TIMEOUT + 1 } end,
  } }
  local list = {}
  for i = 1, 200 do
    local path = ({ "/up", "/up", "/up", "/gone", "/broken", "/moved", "/up", "/up", "/up", "/stuck" })[i % 10 + 1]
    list[#list + 1] = server:url(path .. "?n=" .. i)
  end
  list[#list + 1] = "http://127.0.0.1:1/" -- nothing listens there
  return list, server
end

local items, server = urls_and_server()
local session = lurl.session {
  -- a connection for every worker (no request waits in the pool) and
  -- idle ones for hosts that come again (at its limit the pool closes the
  -- least recently used idle connection); c-ares resolves many names at
  -- once (libuv's getaddrinfo does four at a time: on a long list of hosts
  -- the others would wait for a thread inside their own timeout)
  connector = lurl.connector { limit = 4 * CONCURRENCY, resolver = "ares" },
  timeout = lurl.timeout { total = TIMEOUT },
}

-- HEAD would do for most servers; GET is what every server answers.
local function ping(url)
  local resp, err = session:get(url)
  if not resp then return nil, err end
  return resp.status
end

local counts = {}
for url, status, err in lurl.map(items, ping, { concurrency = CONCURRENCY }) do
  local what = status and tostring(status) or err.kind .. (err.phase and (" in " .. err.phase) or "")
  counts[what] = (counts[what] or 0) + 1
  if not status or status >= 400 then print(url, what) end
end

session:close()
if server then server:close() end
local keys = {}
for k in pairs(counts) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do print(("%6d  %s"):format(counts[k], k)) end
-- against the local list, the answer is known: check it
if server then
  assert(counts["200"] == 140 and counts["404"] == 20 and counts["500"] == 20, "a server that answered was missed")
  assert(counts["TimeoutError in head"] == 20, "the stuck route should time out, and only it")
  assert(counts["ClientConnectorError"] == 1, "the refused port")
end
