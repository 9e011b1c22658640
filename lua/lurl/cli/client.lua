-- lurl.cli.client: the session the fetch command builds from its options,
-- and one URL fetched through it. The body is streamed and counted (or
-- handed to the caller piece by piece), never kept: memory stays flat
-- however many URLs and however large their bodies.
local core = require "lurl.core"
local lurl = require "lurl"

local M = {}

local Client = {}
local mt = { __name = "lurl.cli.client", __index = Client }

local CHUNK = 1048576

-- policy(path) -> { middlewares = {...}, on_result = fn } from the Lua file
-- --script names, or nil and a message.
function M.policy(path)
  if not path then return {} end
  local chunk, err = loadfile(path)
  if not chunk then return nil, "--script: " .. err end
  local ok, p = pcall(chunk)
  if not ok then return nil, "--script " .. path .. ": " .. tostring(p) end
  if type(p) ~= "table" then return nil, "--script " .. path .. ": a table expected, got " .. type(p) end
  for k, v in pairs(p) do
    local want = ({ middlewares = "table", on_result = "function" })[k]
    if not want then return nil, ("--script %s: unknown field '%s' (middlewares, on_result)"):format(path, k) end
    if type(v) ~= want then return nil, ("--script %s: '%s' must be a %s"):format(path, k, want) end
  end
  return p
end

-- The middlewares, outermost first: the retry policy, then the script's, so
-- that each try goes through what the script adds (a rate limit, a header).
local function middlewares(o, p)
  local list = {}
  if o.retry > 0 then list[1] = lurl.retry { attempts = o.retry + 1 } end
  for _, m in ipairs(p.middlewares or {}) do list[#list + 1] = m end
  return #list > 0 and list or nil
end

-- The pool's limit: a connection for every worker, so that no request
-- waits for a slot and a timeout never counts time spent queueing, and
-- three idle ones a worker kept for hosts that come again (curl keeps four
-- a transfer). At the limit the pool closes the least recently used idle
-- connection, so with the concurrency alone as the limit a list over many
-- hosts opened a new connection for nearly every URL (W15: 20,000 connects
-- for 20,000 URLs, 5,280 with this). All within the open-file limit, which
-- is raised to the hard one; a few descriptors stay for the output, DNS
-- and the loop.
local SPARE_FDS = 64

local function pool_limit(concurrency)
  local fds = core.raise_nofile()
  if fds - SPARE_FDS < concurrency then
    error(("-c %d needs at least %d open files; the limit here is %d (ulimit -n)")
      :format(concurrency, concurrency + SPARE_FDS, fds), 0)
  end
  return math.min(4 * concurrency, fds - SPARE_FDS)
end

-- new(options, policy) -> a client: no cookie jar (a jar would grow with
-- every host of a long list), bodies counted as they come (no decoding).
function M.new(o, p)
  local ssl -- nil: verified, as every request is by default
  if o.insecure then ssl = false end
  local headers = lurl.headers()
  for _, h in ipairs(o.headers) do headers:add(h[1], h[2]) end
  local session = lurl.session {
    timeout = lurl.timeout(o.timeout),
    headers = headers,
    -- c-ares: many distinct names resolve at once on the loop, not four at a
    -- time on libuv's thread pool (bench/dns_resolvers.sh: 1,000 names in
    -- 0.88 s against 11.3 s)
    connector = lurl.connector { limit = pool_limit(o.concurrency), ssl = ssl, resolver = "ares" },
    proxy = o.proxy, trust_env = o.trust_env or false,
    cookie_jar = lurl.dummy_cookie_jar(),
    auto_decompress = false,
    middlewares = middlewares(o, p),
  }
  return setmetatable({
    session = session, method = o.method,
    opts = { stream = true, allow_redirects = not o.no_follow, max_redirects = o.max_redirects },
  }, mt)
end

-- fetch(url[, out]) -> resp, err, got: the last response (nil when none
-- came), the error (a response whose body failed half way has both), and
-- got = { elapsed, bytes }. out.head(resp) runs before the body is read and
-- out.body(bytes) for each piece of it.
function Client:fetch(url, out)
  local t0 = lurl.now()
  local resp, err = self.session:request(self.method, url, self.opts)
  local bytes = 0
  if resp then
    if out and out.head then out.head(resp) end
    while true do
      local chunk, rerr = resp:read(CHUNK)
      if not chunk then err = rerr; break end
      if chunk == "" then break end
      bytes = bytes + #chunk
      if out and out.body then out.body(chunk) end
    end
  end
  return resp, err, { elapsed = lurl.now() - t0, bytes = bytes }
end

function Client:close() self.session:close() end

return M
