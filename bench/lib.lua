-- What the lurl benchmark scripts share. A script loads it by its own path:
--   local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")   -- bench/clients/
--   local lib = dofile((arg[0]:match("^(.*/)") or "") .. "lib.lua")      -- bench/
local lurl = require "lurl"
local cjson = require "cjson"

local M = {}

-- The workload as scripts/bench hands it to an adapter (bench/README.md,
-- "Adapters"): BENCH_URL, and the numbers and files that go with it.
function M.params()
  local env = os.getenv
  return {
    url = assert(env("BENCH_URL"), "BENCH_URL is not set: scripts/bench runs this adapter"),
    requests = tonumber(env("BENCH_REQUESTS")) or 1,
    conns = tonumber(env("BENCH_CONNS")) or 1,
    bytes = tonumber(env("BENCH_BYTES")),
    cafile = env("BENCH_CAFILE"),
    file = env("BENCH_FILE"),
    resume = env("BENCH_RESUME"),
    proxy = env("BENCH_PROXY"),
    http2 = env("BENCH_HTTP2") == "1",
  }
end

-- The adapter's result: one JSON line on stdout.
function M.print_json(t)
  io.write(cjson.encode(t), "\n")
end

-- This process's resident set (VmRSS), in bytes.
function M.vmrss()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+) kB")) * 1024
end

-- Task t's share (1 to conns) of total requests split over conns tasks.
function M.share(total, conns, t)
  return math.floor(total / conns) + (t <= total % conns and 1 or 0)
end

-- Runs fn(t) in tasks t = 1 to conns, all at once, and waits for every one;
-- the first task's error (by t) is raised again.
function M.run_tasks(conns, fn)
  local tasks = {}
  for t = 1, conns do
    tasks[t] = lurl.spawn(function()
      fn(t)
      return true
    end)
  end
  for _, task in ipairs(tasks) do
    local ok, err = task:join()
    if not ok then error(err, 0) end
  end
end

-- GET url on session and read the body: it must be status 200 with len
-- bytes, or this raises an error naming task t's request i. Returns the
-- response.
function M.get(session, url, len, t, i)
  local resp, err = session:get(url)
  if not resp then error(("task %d request %d: %s"):format(t, i, tostring(err)), 0) end
  local body, rerr = resp:read()
  if resp.status ~= 200 or not body or #body ~= len then
    error(("task %d request %d: status %s, %s bytes (%s)"):format(t, i, tostring(resp.status),
      body and #body or "no", tostring(rerr)), 0)
  end
  return resp
end

-- load(session, p, check) -> the load phase's seconds and the pool's stats
-- at its end: p.requests GETs of p.url (M.get) from p.conns tasks, each
-- response given to check(resp, t, i). The session is closed after.
function M.load(session, p, check)
  local t0, done = lurl.now(), 0
  M.run_tasks(p.conns, function(t)
    for i = 1, M.share(p.requests, p.conns, t) do
      check(M.get(session, p.url, p.bytes, t, i), t, i)
      done = done + 1
    end
  end)
  local elapsed = lurl.now() - t0
  local stats = session.connector:stats()
  session:close()
  assert(done == p.requests, ("%d of %d requests done"):format(done, p.requests))
  return elapsed, stats
end

-- p.requests GETs of p.url over p.conns keep-alive connections, each body
-- streamed (stream = true, iter_chunked(chunk)) and dropped, every byte
-- counted: each must come to p.bytes, decoded (auto_decompress, the default)
-- when the body is encoded. Prints requests, seconds (the load phase) and bytes.
-- session(p) -> the session an adapter measures with, its TLS context (or
-- nil) and its http2 option: a pool of p.conns connections, verifying the
-- server against p.cafile, through p.proxy; with p.http2, HTTP/2 as the URL
-- allows (by ALPN and required over TLS, with prior knowledge on h2c).
function M.session(p)
  local h2 = p.http2 and (p.url:match("^https:") and "required" or "prior_knowledge") or false
  local ssl = p.cafile and lurl.ssl_context { cafile = p.cafile, alpn = h2 and { "h2", "http/1.1" } or nil } or nil
  local session = lurl.session {
    connector = lurl.connector { limit = p.conns, ssl = ssl, keepalive_timeout = 300 },
    proxy = p.proxy, http2 = h2,
  }
  return session, ssl, h2
end

function M.stream_load(p, chunk)
  local session = M.session(p)
  local t0 = lurl.now()
  local done, bytes = 0, 0
  M.run_tasks(p.conns, function(t)
    for i = 1, M.share(p.requests, p.conns, t) do
      local resp, err = session:get(p.url, { stream = true })
      if not resp then error(("task %d request %d: %s"):format(t, i, tostring(err)), 0) end
      local got = 0
      for piece in resp:iter_chunked(chunk) do got = got + #piece end
      if resp.status ~= 200 or got ~= p.bytes then
        error(("task %d request %d: status %s, %d bytes"):format(t, i, tostring(resp.status), got), 0)
      end
      done, bytes = done + 1, bytes + got
    end
  end)
  local elapsed = lurl.now() - t0
  session:close()
  assert(done == p.requests and bytes == p.requests * p.bytes,
    ("%d of %d requests, %d bytes"):format(done, p.requests, bytes))
  M.print_json { requests = done, seconds = elapsed, bytes = bytes }
end

return M
