-- The connection pool, after aiohttp's TCPConnector and UnixConnector.
--
-- Connections are counted per pool key (scheme, host, port: one origin) and
-- in all: `count` covers every open connection, idle, in use or being
-- established, so `limit` really caps sockets. A request that finds no idle
-- connection and no free slot waits in a FIFO queue; a freed slot or idle
-- connection is handed to the first waiter that can use it (the hand-off
-- means a newcomer never overtakes a waiter). A waiter that times out or is
-- cancelled after it was handed something gives it back, so nothing leaks
-- (aiohttp #9670).
--
-- Idle connections are kept most recent first, expire after
-- keepalive_timeout and are the first to go when a new connection needs
-- room under `limit`.
local conn = require "lurl.conn"
local dns = require "lurl.dns"
local errors = require "lurl.errors"
local check = require "lurl.check"
local sched = require "lurl.sched"
local h2conn = require "lurl.h2conn"
local route = require "lurl.route"
local tls = require "lurl.tls"

local M = {}

local Connector = {}
local mt = { __name = "lurl.connector", __index = Connector }
function mt.__tostring(c)
  return ("lurl.connector (%s%d idle, %d in use, %d waiting%s)"):format(c.path and ("unix:" .. c.path .. ", ") or "",
    c.idle_count, c.busy_count, c.waiting, c.closed and ", closed" or "")
end

-- ---- options ----

local function integer(v) return type(v) == "number" and v >= 0 and v % 1 == 0, "integer >= 0 expected" end
local function seconds(v) return check.is_seconds(v), "number of seconds >= 0 expected" end
local function seconds_or_false(v)
  return v == false or check.is_seconds(v), "number of seconds >= 0 or false expected"
end
local function boolean(v) return type(v) == "boolean", "boolean expected" end

local POOL_OPTIONS = {
  limit = integer, limit_per_host = integer, keepalive_timeout = seconds, force_close = boolean,
  timeout_ceil_threshold = seconds,
  retry_stale = boolean,
  max_line_size = integer, max_field_size = integer,
  ssl = tls.check,
}
local TCP_OPTIONS = setmetatable({
  use_dns_cache = boolean, ttl_dns_cache = seconds_or_false, happy_eyeballs_delay = seconds_or_false,
  dns_cache_max = function(v) return type(v) == "number" and v >= 1 and v % 1 == 0, "integer >= 1 expected" end,
  family = function(v) return v == 0 or v == 4 or v == 6, "must be 0, 4 or 6" end,
  resolver = function(v)
    return type(v) == "function" or v == "ares" or v == "threaded", "function, \"ares\" or \"threaded\" expected"
  end,
  dns_servers = function(v)
    local ok = type(v) == "table" and #v > 0
    for _, server in ipairs(ok and v or {}) do
      ok = ok and type(server) == "string" and not server:find(",", 1, true)
    end
    return ok, "non-empty list of \"ip[:port]\" strings expected"
  end,
  dns_timeout = function(v) return check.is_seconds(v) and v > 0, "number of seconds > 0 expected" end,
  dns_tries = function(v)
    return type(v) == "number" and v >= 1 and v <= 100 and v % 1 == 0, "integer 1 to 100 expected"
  end,
  local_addr = function(v)
    return type(v) == "string" or (type(v) == "table" and type(v[1]) == "string"),
      "IP string or { ip, port } expected"
  end,
  resolve = function(v) return type(v) == "table", "table of \"host:port\" = \"ip[:port]\" expected" end,
}, { __index = POOL_OPTIONS })
-- sun_path holds 108 bytes with the terminating NUL (Linux)
local UNIX_OPTIONS = setmetatable({
  path = function(v)
    return type(v) == "string" and #v > 0 and #v < 108, "socket path string of 1 to 107 bytes expected"
  end,
}, { __index = POOL_OPTIONS })

local function check_options(fname, opts, known)
  opts = opts or {}
  if type(opts) ~= "table" then check.argerror(fname, "#1", "table expected, got " .. type(opts)) end
  for k, v in pairs(opts) do
    local ok, why = (known[k] or function() return false, "unknown option" end)(v)
    if not ok then check.argerror(fname, "'" .. tostring(k) .. "'", why .. ", got " .. tostring(v)) end
  end
  if opts.force_close and opts.keepalive_timeout then
    check.argerror(fname, "'keepalive_timeout'", "cannot be set together with force_close")
  end
  return opts
end

local function new(opts)
  local self = setmetatable({
    limit = opts.limit or 100,
    limit_per_host = opts.limit_per_host or 0,
    keepalive_timeout = opts.keepalive_timeout or 15,
    force_close = opts.force_close or false,
    timeout_ceil_threshold = opts.timeout_ceil_threshold or false,
    retry_stale = opts.retry_stale ~= false,
    ssl = opts.ssl,    -- aiohttp's ssl= for https requests that do not set their own
    tls = false,       -- the settings made of it, when first needed
    tls_h2 = false,    -- the same, offering h2
    max_line_size = opts.max_line_size, max_field_size = opts.max_field_size,
    idle = {},         -- key -> idle connections, most recently used last
    idle_count = 0,
    busy = {},         -- HTTP/1.1 conn -> true while a request holds it (hold)
    busy_count = 0,
    count = 0,         -- open or opening connections
    per_key = {},      -- key -> open or opening connections
    waiters = {},      -- key -> FIFO list { first, last } of waiting requests
    waiting = 0,
    seq = 0,
    closed = false,
    dialer = false,    -- set by lurl.testing.mock: streams without sockets
    h2 = {},           -- key -> HTTP/2 connections (lurl.h2conn), each in its slot
    h2_spare = {},     -- key -> the HTTP/2 connection a stream last ended on
    h2_opening = {},   -- key -> connections being opened that may speak h2
    h2_gate = {},      -- key -> requests waiting for them
    h1_origins = {},   -- key -> true: its last connection offered h2 and got HTTP/1.1
    h1_origin_count = 0,
  }, mt)
  self.on_close = function(c) return M.forget(self, c) end
  self.on_h2_close = function(c) return M.forget_h2(self, c) end
  -- a stream ended: a request queued for room may take its place
  self.on_h2_stream_end = function(c)
    self.h2_spare[c.key] = c
    return M.dispatch(self)
  end
  return self
end

-- resolve = { ["host:port"] = "ip[:port]" } (curl's --resolve, with an
-- optional other port): connections to host:port go to that address, while
-- the URL, the Host header, SNI and certificate checks keep the name.
local function parse_overrides(map)
  if not map then return nil end
  local out = {}
  for from, to in pairs(map) do
    local host, port = tostring(from):match("^%[?([^%]]-)%]?:(%d+)$")
    local ip, to_port = tostring(to):match("^%[?([^%]]-)%]?:(%d+)$")
    if not ip then ip = tostring(to):match("^%[?([^%]]-)%]?$") end
    local fam = ip and dns.ip_family(ip)
    if not host or not fam then
      check.argerror("connector", "'resolve'", ("\"host:port\" = \"ip[:port]\" expected, got %s = %s")
        :format(tostring(from), tostring(to)))
    end
    out[host:lower() .. ":" .. port] = { ip = ip, family = fam, port = tonumber(to_port) or tonumber(port) }
  end
  return out
end

-- resolver = fn | "ares" | "threaded" (nil: dns.default_kind); dns_servers,
-- dns_timeout and dns_tries configure c-ares, and so imply "ares".
local function resolver_of(opts)
  local ares = opts.dns_servers or opts.dns_timeout or opts.dns_tries
  if ares and opts.resolver ~= nil and opts.resolver ~= "ares" then
    check.argerror("connector", "'resolver'", "must be \"ares\" with dns_servers, dns_timeout or dns_tries")
  end
  if type(opts.resolver) == "function" then return opts.resolver end
  return dns.resolver(ares and "ares" or opts.resolver,
    { servers = opts.dns_servers, timeout = opts.dns_timeout, tries = opts.dns_tries })
end

-- lurl.connector{ limit = 100, limit_per_host = 0, keepalive_timeout = 15,
--   force_close = false, use_dns_cache = true, ttl_dns_cache = 10,
--   dns_cache_max = 1000, family = 0, local_addr = nil,
--   happy_eyeballs_delay = 0.25, resolver = fn | "ares" | "threaded",
--   dns_servers = { "ip[:port]" }, dns_timeout = seconds, dns_tries = n,
--   retry_stale = true, resolve = { ["host:port"] = "ip[:port]" }, ssl = true }
function M.new(opts)
  opts = check_options("connector", opts, TCP_OPTIONS)
  local self = new(opts)
  self.family = opts.family or 0
  local ttl = opts.ttl_dns_cache
  if ttl == nil then ttl = 10 end
  self.dns = dns.new { enabled = opts.use_dns_cache ~= false, ttl = ttl,
    max = opts.dns_cache_max or 1000, resolver = resolver_of(opts) }
  local la = opts.local_addr
  if type(la) == "string" then la = { la, 0 } end
  self.local_addr = la
  local delay = opts.happy_eyeballs_delay
  if delay == nil then delay = 0.25 end
  self.happy_eyeballs_delay = delay
  self.dial_opts = { delay = delay, local_ip = la and la[1], local_port = la and la[2] }
  self.resolve = parse_overrides(opts.resolve)
  return self
end

-- lurl.unix_connector{ path = "/run/app.sock", ...pool options }: every
-- request goes over that Unix socket whatever the URL's host.
function M.unix(opts)
  opts = check_options("unix_connector", opts, UNIX_OPTIONS)
  if not opts.path then check.argerror("unix_connector", "'path'", "socket path string expected") end
  local self = new(opts)
  self.path = opts.path
  return self
end

function M.is(v) return getmetatable(v) == mt end

-- The TLS settings of an https request: its own ssl= and server_hostname,
-- or the connector's (ssl = true means the connector's too, as in aiohttp).
function Connector:tls_for(ssl, server_hostname, h2)
  if ssl == true then ssl = nil end
  if ssl == nil and server_hostname == nil then
    -- the connector's own settings, made once (with h2 and without)
    local field = h2 and "tls_h2" or "tls"
    local s = self[field] or tls.settings(self.ssl, nil, h2)
    self[field] = s
    return s
  end
  if ssl == nil then ssl = self.ssl end
  return tls.settings(ssl, server_hostname, h2)
end

-- The pool key of an origin: connections are shared only within one key,
-- which for https includes the TLS settings (settings.tag).
function Connector:key(scheme, host, port, settings)
  local key = scheme .. "://" .. (host:find(":", 1, true) and ("[" .. host .. "]") or host) .. ":" .. port
  return settings and key .. settings.tag or key
end

-- ---- idle connections ----

-- A connection (or the slot of one being opened) counted under key goes.
local function unslot(self, key)
  self.count = self.count - 1
  local n = self.per_key[key] - 1
  self.per_key[key] = n > 0 and n or nil
end

-- Every idle connection is also in one list of the whole pool, oldest
-- first (linked through c.older and c.newer), so that the least recently
-- used one is at hand however many origins a long URL list has touched.
local function lru_push(self, c)
  c.older, c.newer = self.newest, nil
  if self.newest then self.newest.newer = c else self.oldest = c end
  self.newest = c
end

local function lru_remove(self, c)
  if c.older then c.older.newer = c.newer else self.oldest = c.newer end
  if c.newer then c.newer.older = c.older else self.newest = c.older end
  c.older, c.newer = nil, nil
end

local function unpool(self, c)
  if not c.pooled then return end
  c.pooled = false
  self.idle_count = self.idle_count - 1
  lru_remove(self, c)
  local list = self.idle[c.key]
  for i = #list, 1, -1 do
    if list[i] == c then table.remove(list, i); break end
  end
end

-- A request holds c. An HTTP/1.1 connection goes in busy (the connector
-- closes it with itself); an HTTP/2 stream, new for each request, says so
-- itself (its connection closes it), so that busy is not a set whose keys
-- change with every request (its table would rehash every few requests).
local function hold(self, c)
  if c.h2 then c.held = true else self.busy[c] = true end
  self.busy_count = self.busy_count + 1
  return c
end

-- c is held no more -> whether it was.
local function unhold(self, c)
  if c.h2 then
    if not c.held then return false end
    c.held = false
  else
    if not self.busy[c] then return false end
    self.busy[c] = nil
  end
  self.busy_count = self.busy_count - 1
  return true
end

-- Called by every connection of this pool as it closes, for any reason.
function M.forget(self, c)
  unpool(self, c)
  unhold(self, c)
  unslot(self, c.key)
  -- the origin's last connection: its (empty) idle list goes too
  if not self.per_key[c.key] then self.idle[c.key] = nil end
  -- while grant() makes room, the room is its own: dispatch afterwards
  if self.granting then self.freed = true else M.dispatch(self) end
end

local function expired(self, c, now) return now - c.idle_since >= self.keepalive_timeout end

local function take_idle(self, key)
  local list = self.idle[key]
  if not list then return nil end
  local now = sched.now()
  while #list > 0 do
    local c = list[#list]
    unpool(self, c)
    if not expired(self, c, now) then return c end
    c:close()
  end
  return nil
end

-- Close idle connections past keepalive_timeout, oldest first; the timer
-- runs while any connection is idle and never keeps the loop alive by itself.
local function sweep(self)
  local now = sched.now()
  while self.oldest and expired(self, self.oldest, now) do self.oldest:close() end
  if self.oldest then self.sweeper:start(self.oldest.idle_since + self.keepalive_timeout - now, self.sweep_cb) end
end

local function new_sweeper(self)
  self.sweeper = sched.timer()
  self.sweeper:ref(false)
  self.sweep_cb = function()
    self.sweeping = false
    sweep(self)
    self.sweeping = self.idle_count > 0
  end
end

local function arm_sweeper(self)
  if self.sweeping then return end
  if not self.sweeper then new_sweeper(self) end
  self.sweeping = true
  self.sweeper:start(self.keepalive_timeout, self.sweep_cb)
end

-- ---- slots and the wait queue ----

local SLOT = setmetatable({}, { __name = "lurl.connector.slot" }) -- leave to open one connection

-- An HTTP/2 connection to key that can take one more stream, if any, but
-- not avoid (the connection that refused the request being sent again).
local function h2_room(self, key, avoid)
  local list = self.h2[key]
  if not list then return nil end
  -- the connection a stream last ended on, then the first, apart: then
  -- the lookup of a request that follows another's end, or of an origin
  -- with one connection, enters no loop, which would stop LuaJIT
  -- compiling the request path
  local c = self.h2_spare[key]
  if c and c ~= avoid and c:can_open() then return c end
  c = list[1]
  if c ~= avoid and c:can_open() then return c end
  for i = 2, #list do
    c = list[i]
    if c ~= avoid and c:can_open() then return c end
  end
  return nil
end

-- Whether the request for key could get something now: an idle connection,
-- or a slot within both limits (an idle connection of any key may be
-- closed to make room).
local function can_grant(self, key, fresh)
  local list = self.idle[key]
  if not fresh and ((list and #list > 0) or h2_room(self, key)) then return true end
  local per = self.limit_per_host
  if per > 0 and (self.per_key[key] or 0) >= per and not (list and #list > 0) then return false end
  return self.limit == 0 or self.count < self.limit or self.idle_count > 0
end

local function reserve(self, key)
  self.count = self.count + 1
  self.per_key[key] = (self.per_key[key] or 0) + 1
end

-- Something for a request that can_grant approved: an idle connection or
-- SLOT, after closing idle ones that stand in the way of the limits.
local function grant(self, key, fresh)
  -- a stream that freed on an HTTP/2 connection (a waiter queued while
  -- every stream was taken and no connection could be added)
  local h2 = not fresh and h2_room(self, key)
  if h2 then return h2:channel() end
  self.granting = true
  local g = not fresh and take_idle(self, key)
  if not g then
    local per = self.limit_per_host
    if per > 0 and (self.per_key[key] or 0) >= per then self.idle[key][1]:close() end
    if self.limit > 0 and self.count >= self.limit then self.oldest:close() end
    reserve(self, key)
    g = SLOT
  end
  self.granting = false
  -- expired idle connections closed on the way may serve other waiters
  if self.freed then
    self.freed = false
    M.dispatch(self)
  end
  return g
end

-- Return what a waiter was handed but cannot use.
local function give_back(self, key, g)
  if g == SLOT then
    unslot(self, key)
    M.dispatch(self)
  else
    Connector.release(self, hold(self, g), true)
  end
end

local function unlink(self, e)
  local q = self.waiters[e.key]
  if e.prev then e.prev.next = e.next else q.first = e.next end
  if e.next then e.next.prev = e.prev else q.last = e.prev end
  e.prev, e.next, e.linked = nil, nil, false
  if not q.first then self.waiters[e.key] = nil end
  self.waiting = self.waiting - 1
end

local function link(self, e)
  local q = self.waiters[e.key]
  if not q then q = {}; self.waiters[e.key] = q end
  self.seq = self.seq + 1
  e.seq, e.linked, e.prev = self.seq, true, q.last
  if q.last then q.last.next = e else q.first = e end
  q.last = e
  self.waiting = self.waiting + 1
end

-- The earliest waiter that can be served now, if any.
local function next_waiter(self)
  local best
  for key, q in pairs(self.waiters) do
    local e = q.first
    if (not best or e.seq < best.seq) and can_grant(self, key, e.fresh) then best = e end
  end
  return best
end

-- Hand freed slots and idle connections to waiters, oldest first. Runs on
-- every change of the pool; a change made while it runs makes it go again.
function M.dispatch(self)
  if self.waiting == 0 or self.closed then return end
  if self.dispatching then self.again = true; return end
  self.dispatching = true
  repeat
    self.again = false
    local e = next_waiter(self)
    while e do
      unlink(self, e)
      local g = grant(self, e.key, e.fresh)
      if e.wake(g) then e.granted = g else give_back(self, e.key, g) end
      e = next_waiter(self)
    end
  until not self.again
  self.dispatching = false
end

local function closed_error(ctx)
  return errors.new("ClientConnectionError", "connector is closed", ctx)
end

local function thousands(n)
  local s = tostring(n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

-- A timeout in the queue tells what held the request there and what helps:
-- more concurrent requests than the pool allows is the usual cause.
local function pool_timeout(self, key, err)
  local per, limit, in_use = self.limit_per_host, self.limit, self.count
  local what = "limit"
  if per > 0 and (self.per_key[key] or 0) >= per then
    what, limit, in_use = "limit_per_host", per, self.per_key[key]
  end
  err.limit, err.in_use, err.queued = limit, in_use, self.waiting
  err.message = ("%s (%s %d: %d connections in use, %s more requests queued; bound concurrency with "
    .. "lurl.semaphore, raise the connector's %s, or set the timeout's pool field)")
    :format(err.message, what, limit, in_use, thousands(self.waiting), what)
  return err
end

-- Wait in the queue; returns an idle connection or SLOT, or nil and an error.
local function queue_wait(self, key, fresh, deadline, ctx, trace)
  if trace then trace:emit("connection_queued_start", {}) end
  local e = { key = key, fresh = fresh }
  local ok, g, err = pcall(deadline.wait, deadline, "queue", function(wake)
    e.wake = wake
    link(self, e)
    return function() if e.linked then unlink(self, e) end end
  end, ctx)
  if not ok then
    if e.granted then give_back(self, key, e.granted) end
    error(g, 0)
  end
  if trace then trace:emit("connection_queued_end", {}) end
  if g == false then return nil, closed_error(ctx) end
  if not g then return nil, pool_timeout(self, key, err) end
  return g
end

-- ---- HTTP/2 connections: one carries many requests ----

-- An HTTP/2 connection keeps the slot it was opened in until it closes;
-- requests take streams on it while it can open them.
local function add_h2(self, c)
  local list = self.h2[c.key]
  if not list then list = {}; self.h2[c.key] = list end
  list[#list + 1] = c
end

-- Called by every HTTP/2 connection of this pool as it closes.
function M.forget_h2(self, c)
  if self.h2_spare[c.key] == c then self.h2_spare[c.key] = nil end
  local list = self.h2[c.key]
  for i = #(list or {}), 1, -1 do
    if list[i] == c then table.remove(list, i) end
  end
  if list and #list == 0 then self.h2[c.key] = nil end
  unslot(self, c.key)
  M.dispatch(self)
end

-- A stream on an HTTP/2 connection to key that can take one more.
local function h2_stream(self, key, avoid)
  local c = h2_room(self, key, avoid)
  return c and c:channel()
end

-- A request that may speak HTTP/2 waits while a connection to its origin
-- is being opened (it will most likely carry the request too) instead of
-- opening one of its own, as curl waits to multiplex; then it takes a
-- stream, or nil to open a connection after all. Or nil, err on timeout.
local function await_opening(self, key, deadline, ctx)
  while self.h2_opening[key] do
    local ok, err = deadline:wait("connect", function(wake)
      local list = self.h2_gate[key]
      if not list then list = {}; self.h2_gate[key] = list end
      list[#list + 1] = wake
    end, ctx)
    if not ok then return nil, err end
  end
  return true
end

-- (the wait in a function of its own: its loop and closure, on the path
-- of every request, would keep LuaJIT from compiling that path)
local function h2_wait(self, key, deadline, ctx, avoid)
  if self.h2_opening[key] then
    local ok, err = await_opening(self, key, deadline, ctx)
    if not ok then return nil, err end
  end
  return self.h2[key] and h2_stream(self, key, avoid)
end

-- Origins whose last connection offered h2 by ALPN and got HTTP/1.1: their
-- requests open connections of their own at once rather than wait to share
-- one being opened (with 16 new TLS connections at a time, waiting made the
-- handshakes to an HTTP/1.1 server go one by one). Forgotten all at once
-- past H1_ORIGINS_MAX, so that a list of many hosts keeps memory bounded.
local H1_ORIGINS_MAX = 4096
local function note_protocol(self, key, h2)
  local known = self.h1_origins
  if h2 then
    if known[key] then
      known[key] = nil
      self.h1_origin_count = self.h1_origin_count - 1
    end
  elseif not known[key] then
    if self.h1_origin_count >= H1_ORIGINS_MAX then
      known = {}
      self.h1_origins, self.h1_origin_count = known, 0
    end
    known[key] = true
    self.h1_origin_count = self.h1_origin_count + 1
  end
end

local function h2_opened(self, key)
  local n = self.h2_opening[key] - 1
  self.h2_opening[key] = n > 0 and n or nil
  local list = self.h2_gate[key]
  self.h2_gate[key] = nil
  for _, wake in ipairs(list or {}) do wake(true) end
end

-- The gate opens once a new HTTP/2 connection has the server's SETTINGS
-- and so its limit on streams: until then nghttp2 assumes 100, and the
-- requests let through earlier would open connections of their own (1,000
-- requests at once took 2 connections to a server allowing 1,000 streams).
local function h2_settle(self, key, ch)
  local c = ch and ch.h2 and ch.conn
  if not c or c.settled then return h2_opened(self, key) end
  c.on_settled = function() h2_opened(self, key) end
end

-- ---- opening connections ----

-- A new connection for ex (its route: lurl.route), HTTP/1.1 or HTTP/2 as
-- TLS's ALPN or the request's http2 option says; for HTTP/2, a channel of it.
local function open(self, ex, deadline)
  local trace = ex.trace
  if trace then trace:emit("connection_create_start", {}) end
  local s, addr, info = route.open(self, ex, deadline)
  if not s then return nil, addr end
  if self.closed then
    s:close()
    return nil, closed_error(ex.context)
  end
  local opts = {
    max_line_size = ex.max_line_size or self.max_line_size,
    max_field_size = ex.max_field_size or self.max_field_size,
    on_close = self.on_close,
  }
  -- RFC 9113 section 3.2 (h2 chosen by ALPN) and 3.3 (prior knowledge)
  local h2 = (info and info.alpn == "h2") or (ex.http2 == "prior_knowledge" and not ex.ssl)
  if ex.http2 == "required" and not h2 then
    s:close()
    return nil, route.error(ex.url.host, ex.port, "the server does not speak HTTP/2 (ALPN chose "
      .. tostring(info and info.alpn or "nothing") .. ")", "EPROTO", ex.context)
  end
  local c
  if h2 then
    opts.on_close, opts.on_stream_end = self.on_h2_close, self.on_h2_stream_end
    opts.keepalive_timeout = self.keepalive_timeout
    c = h2conn.new(s, ex.key, opts)
    add_h2(self, c)
  else
    c = conn.new(s, ex.key, opts)
  end
  c.ip = addr and addr.ip
  c.tls = info
  if trace then trace:emit("connection_create_end", {}) end
  if h2 then return c:channel() end
  return c
end

-- acquire(ex, deadline) -> conn, reused; or nil, err. ex: the exchange
-- record (lurl.exchange.new): key (the pool key), url.host, port, context
-- (error context), trace, fresh (skip idle connections), max_line_size,
-- max_field_size, ssl (the TLS settings of an https request,
-- Connector:tls_for); the time spent waiting, resolving, connecting and in
-- the TLS handshake is written to ex.queue, dns, connect and handshake.
function Connector:acquire(ex, deadline)
  local key = ex.key
  if self.closed then return nil, closed_error(ex.context) end
  deadline:begin_connect(self.timeout_ceil_threshold)
  -- a request sent again (fresh) after its stream was refused may take a
  -- stream of another HTTP/2 connection, so that the refused ones of a
  -- GOAWAY share the new connection instead of opening one each
  local may_h2 = ex.http2 and not self.h1_origins[key]
  if may_h2 then
    local stream, err = h2_wait(self, key, deadline, ex.context, ex.avoid)
    if err then deadline:end_connect(); return nil, err end
    if stream then
      deadline:end_connect()
      if ex.trace then ex.trace:emit("connection_reuseconn", {}) end
      return hold(self, stream), true
    end
  end
  local g, err
  if can_grant(self, key, ex.fresh) then
    g = grant(self, key, ex.fresh)
  else
    local t0 = sched.now()
    deadline:enter("pool", t0)
    g, err = queue_wait(self, key, ex.fresh, deadline, ex.context, ex.trace)
    ex.queue = sched.now() - t0
  end
  if g ~= SLOT then
    deadline:end_connect()
    if not g then return nil, err end
    if ex.trace then ex.trace:emit("connection_reuseconn", {}) end
    return hold(self, g), true
  end
  local ok, c
  if may_h2 then self.h2_opening[key] = (self.h2_opening[key] or 0) + 1 end
  ok, c, err = pcall(open, self, ex, deadline)
  if may_h2 then h2_settle(self, key, ok and c) end
  if ex.http2 and ok and c then note_protocol(self, key, c.h2) end
  deadline:end_connect()
  deadline:end_sock_connect()
  if not ok or not c then
    unslot(self, key)
    M.dispatch(self)
    if not ok then error(c, 0) end
    return nil, err
  end
  return hold(self, c), false
end

-- release(conn, reusable[, now]): back to the idle list, or closed. now:
-- the clock, when the caller just read it.
function Connector:release(c, reusable, now)
  if not unhold(self, c) then return end
  -- a stream of an HTTP/2 connection goes (reset unless it ended, its
  -- place given back if it never opened); its connection stays
  if c.h2 then
    c:close()
    return
  end
  if not reusable or self.force_close or self.closed or c.closed then
    c:close()
    return
  end
  c.idle_since = now or sched.now()
  c:idle()
  local list = self.idle[c.key]
  if not list then list = {}; self.idle[c.key] = list end
  list[#list + 1] = c
  c.pooled = true
  self.idle_count = self.idle_count + 1
  lru_push(self, c)
  arm_sweeper(self)
  M.dispatch(self)
end

-- detach(conn) -> its stream: a connection acquired for an upgrade leaves
-- the pool (its slot is free again) and becomes the caller's.
function Connector:detach(c)
  unhold(self, c)
  unslot(self, c.key)
  M.dispatch(self)
  return c:detach()
end

-- cached_hosts() -> the DNS cache's entries (dns.lua's Cache:hosts); an
-- empty list for a Unix-socket or mock connector.
function Connector:cached_hosts()
  return self.dns and self.dns:hosts() or {}
end

-- clear_dns_cache(host, port): forget a name (all ports if port is nil), or
-- every name when called without arguments.
function Connector:clear_dns_cache(host, port)
  if self.dns then self.dns:clear(host, port) end
end

function Connector:stats()
  local per_host = {}
  local function entry(key)
    local e = per_host[key]
    if not e then e = { idle = 0, in_use = 0, connecting = 0, waiting = 0 }; per_host[key] = e end
    return e
  end
  for key, n in pairs(self.per_key) do
    if n > 0 then entry(key).connecting = n end
  end
  for key, list in pairs(self.idle) do
    local e = entry(key)
    e.idle = #list
    e.connecting = e.connecting - #list
  end
  local in_use = 0
  for c in pairs(self.busy) do
    if not c.h2 then -- an HTTP/2 stream counts with its connection, below
      local e = entry(c.key)
      e.in_use = e.in_use + 1
      e.connecting = e.connecting - 1
      in_use = in_use + 1
    end
  end
  for key, q in pairs(self.waiters) do
    local e = entry(key)
    local w = q.first
    while w do e.waiting = e.waiting + 1; w = w.next end
  end
  -- an HTTP/2 connection is one connection, in use while it carries
  -- streams and idle without
  local streams, idle = 0, self.idle_count
  for key, list in pairs(self.h2) do
    local e = entry(key)
    e.streams = 0
    e.connecting = e.connecting - #list
    for _, c in ipairs(list) do
      e.streams = e.streams + c.open_streams
      if c.open_streams > 0 then
        e.in_use, in_use = e.in_use + 1, in_use + 1
      else
        e.idle, idle = e.idle + 1, idle + 1
      end
    end
    streams = streams + e.streams
  end
  return {
    limit = self.limit, limit_per_host = self.limit_per_host,
    total = self.count, idle = idle, in_use = in_use,
    connecting = self.count - idle - in_use,
    waiting = self.waiting, per_host = per_host, streams = streams,
    dns_cache = self.dns and self.dns:size() or 0,
  }
end

-- Close every connection, idle or in use (requests in flight fail, waiters
-- get "connector is closed").
function Connector:close()
  if self.closed then return end
  self.closed = true
  if self.sweeper then self.sweeper:close(); self.sweeper = nil end
  if self.dns then self.dns:close() end
  for _, list in pairs(self.idle) do
    for i = #list, 1, -1 do list[i]:close() end
  end
  for c in pairs(self.busy) do c:close() end
  for _, list in pairs(self.h2) do
    for i = #list, 1, -1 do list[i]:close() end
  end
  for _, q in pairs(self.waiters) do
    local e = q.first
    while e do
      local nxt = e.next
      unlink(self, e)
      e.wake(false)
      e = nxt
    end
  end
end

return M
