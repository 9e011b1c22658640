-- Host name resolution for the connector: a bounded cache whose entries
-- expire after a TTL, with concurrent lookups of one name shared (one
-- getaddrinfo, however many requests wait for it), as aiohttp's
-- TCPConnector does with use_dns_cache/ttl_dns_cache.
--
-- A resolver is function(host, port, family) -> { { ip =, family = }, ... }
-- or nil, message[, code]; it runs in a task of its own, so it may block.
-- Two are built in (M.resolver): "threaded", the C library's getaddrinfo
-- on libuv's thread pool (4 threads, shared with file I/O; all of
-- nsswitch.conf), and "ares", c-ares on the event loop (any number of
-- lookups at once; /etc/hosts and resolv.conf, or servers of its own).
local check = require "lurl.check"
local core = require "lurl.core"
local errors = require "lurl.errors"
local sched = require "lurl.sched"

local M = {}

local Cache = {}
local mt = { __name = "lurl.dns_cache", __index = Cache }

function M.getaddrinfo(host, _, family)
  return sched.wait(function(wake)
    local ok, e, code = core.getaddrinfo(host, family, wake)
    if not ok then wake(nil, e, code) end
  end)
end

-- One c-ares channel per configuration, for the runtime's life (closed with
-- it): connectors that resolve alike share its sockets.
local channels = {}

-- ares{ servers = { "ip[:port]", ... }, timeout = seconds, tries = n } -> a
-- resolver on a c-ares channel (core.ares.resolver); a lookup whose task is
-- cancelled cancels its query.
function M.ares(opts)
  local key = table.concat(opts.servers or {}, ",") .. "|" .. tostring(opts.timeout) .. "|" .. tostring(opts.tries)
  local channel = channels[key]
  if not channel then
    local err
    channel, err = core.ares.resolver(opts)
    if not channel then check.raise("cannot start the c-ares resolver: " .. tostring(err)) end
    channels[key] = channel
  end
  return function(host, port, family)
    return sched.wait(function(wake)
      local query = channel:getaddrinfo(host, port, family, wake)
      return function() query:cancel() end
    end)
  end
end

-- The resolver sessions use unless told otherwise (docs/pool.md, "DNS").
M.default_kind = "threaded"

-- resolver(kind, ares_opts) -> a resolver function: kind "threaded" or
-- "ares" (nil: default_kind; ares_opts, for ares, as M.ares takes).
function M.resolver(kind, ares_opts)
  kind = kind or M.default_kind
  if kind == "ares" then return M.ares(ares_opts or {}) end
  return M.getaddrinfo
end

-- new{ ttl = seconds | false (never expire), max = entries, resolver = fn,
--      enabled = false (resolve every time) }
function M.new(opts)
  return setmetatable({
    ttl = opts.ttl, max = opts.max, resolver = opts.resolver or M.getaddrinfo,
    enabled = opts.enabled,
    entries = {}, -- key -> { addrs, expires, seq } or { waiters } while resolving
    count = 0, seq = 0,
  }, mt)
end

local function cache_key(host, port, family) return host .. "\0" .. tostring(port) .. "\0" .. family end

-- A full cache drops its oldest entry (by when it was stored). The scan
-- runs only when full, and keeps the bookkeeping to the entries themselves.
local function evict_oldest(self)
  local oldest_key, oldest
  for key, e in pairs(self.entries) do
    if e.addrs and (not oldest or e.seq < oldest.seq) then oldest_key, oldest = key, e end
  end
  if oldest_key then
    self.entries[oldest_key] = nil
    self.count = self.count - 1
  end
end

local function store(self, key, addrs)
  if self.count >= self.max then evict_oldest(self) end
  self.seq = self.seq + 1
  self.entries[key] = { addrs = addrs, expires = self.ttl and sched.now() + self.ttl, seq = self.seq }
  self.count = self.count + 1
end

local function ip_family(ip)
  if type(ip) ~= "string" then return nil end
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a then
    return tonumber(a) < 256 and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256 and 4 or nil
  end
  -- IPv6, possibly with a zone (fe80::1%eth0)
  if ip:find(":", 1, true) and (ip:match("^[%x:.]+$") or ip:match("^[%x:.]+%%[%w._-]+$")) then return 6 end
end

-- A resolver's answer as a clean list, or nil and what is wrong with it.
local function check_answer(addrs)
  if type(addrs) ~= "table" then return nil, "resolver returned " .. type(addrs) .. ", not an address list" end
  if #addrs == 0 then return nil, "no address" end
  local out = {}
  for i, a in ipairs(addrs) do
    local fam = type(a) == "table" and ip_family(a.ip)
    if not fam or (a.family ~= nil and a.family ~= fam) then
      return nil, ("resolver returned an invalid address (item %d: %s)"):format(i,
        type(a) == "table" and tostring(a.ip) .. "/" .. tostring(a.family) or tostring(a))
    end
    out[i] = { ip = a.ip, family = fam }
  end
  return out
end
M.ip_family = ip_family

-- Run the resolver in its own task so that a waiter's timeout or
-- cancellation does not abandon a lookup others share (the answer is cached
-- for the next request); closing the cache cancels it.
local function lookup(self, key, host, port, family, pending)
  pending.task = sched.spawn(function()
    local ok, addrs, err, code = pcall(self.resolver, host, port, family)
    if not ok then addrs, err, code = nil, tostring(addrs), nil
    elseif addrs ~= nil then addrs, err = check_answer(addrs) end
    if self.entries[key] == pending then self.entries[key] = nil end
    if addrs and self.enabled then store(self, key, addrs) end
    for _, wake in ipairs(pending.waiters) do wake(addrs, err, code) end
  end)
end

local function wait_for(deadline, pending, ctx)
  return deadline:wait("connect", function(wake)
    local list = pending.waiters
    list[#list + 1] = wake
  end, ctx)
end

local function fire(trace, signal, host)
  if trace then trace:emit(signal, { host = host }) end
end

-- resolve(host, port, family, deadline, ctx, trace) -> addresses, or nil and
-- ClientConnectorDNSError (or the timeout error of the connect phase).
function Cache:resolve(host, port, family, deadline, ctx, trace)
  local key = cache_key(host, port, family)
  local e = self.entries[key]
  if e and e.addrs then
    if not e.expires or sched.now() < e.expires then
      fire(trace, "dns_cache_hit", host)
      return e.addrs
    end
    self.entries[key] = nil
    self.count = self.count - 1
    e = nil
  end
  if self.enabled then fire(trace, "dns_cache_miss", host) end
  fire(trace, "dns_resolvehost_start", host)
  if not e then
    e = { waiters = {} }
    self.entries[key] = e
    lookup(self, key, host, port, family, e)
  end
  local addrs, err, code = wait_for(deadline, e, ctx)
  fire(trace, "dns_resolvehost_end", host)
  if addrs then return addrs end
  if type(err) == "table" then return nil, err end
  return nil, errors.annotate(errors.new("ClientConnectorDNSError",
    ("cannot resolve host %s: %s"):format(host, tostring(err)), { host = host, port = port, errno = code }),
    ctx or {})
end

-- close(): the lookups in flight end (their waiters, if any, get an error).
function Cache:close()
  for _, e in pairs(self.entries) do
    if e.task then e.task:cancel() end
  end
end

-- clear(host, port): forget one name (any port when port is nil), or all.
function Cache:clear(host, port)
  if host == nil then
    for key, e in pairs(self.entries) do
      if e.addrs then self.entries[key] = nil end
    end
    self.count = 0
    return
  end
  local prefix = host .. "\0" .. (port and (tostring(port) .. "\0") or "")
  for key, e in pairs(self.entries) do
    if e.addrs and key:sub(1, #prefix) == prefix then
      self.entries[key] = nil
      self.count = self.count - 1
    end
  end
end

function Cache:size() return self.count end

-- hosts() -> what the cache holds (aiohttp's cached_hosts): a list of
-- { host, port, family, addrs = { { ip, family }, ... }, ttl = seconds
-- left or false }.
function Cache:hosts()
  local out, now = {}, sched.now()
  for key, e in pairs(self.entries) do
    if e.addrs then
      local host, port, family = key:match("^(.-)%z(.-)%z(.*)$")
      out[#out + 1] = { host = host, port = tonumber(port) or port, family = tonumber(family), addrs = e.addrs,
        ttl = e.expires and math.max(0, e.expires - now) or false }
    end
  end
  table.sort(out, function(a, b) return a.host .. tostring(a.port) < b.host .. tostring(b.port) end)
  return out
end

return M
