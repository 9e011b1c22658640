-- Host name resolution for the connector: a bounded cache whose entries
-- expire after a TTL, with concurrent lookups of one name shared (one
-- getaddrinfo, however many requests wait for it), as aiohttp's
-- TCPConnector does with use_dns_cache/ttl_dns_cache.
--
-- A resolver is function(host, port, family) -> { { ip =, family = }, ... }
-- or nil, message; it runs in a task of its own, so it may block. The default
-- one is libuv's getaddrinfo on the thread pool.
local core = require "lurl.core"
local errors = require "lurl.errors"
local sched = require "lurl.sched"

local M = {}

local Cache = {}
local mt = { __name = "lurl.dns_cache", __index = Cache }

function M.getaddrinfo(host, _, family)
  local addrs, err = sched.wait(function(wake)
    local ok, e = core.getaddrinfo(host, family, wake)
    if not ok then wake(nil, e) end
  end)
  if addrs and #addrs == 0 then return nil, "no address" end
  return addrs, err
end

-- new{ ttl = seconds | false (never expire), max = entries, resolver = fn,
--      enabled = false (resolve every time) }
function M.new(opts)
  return setmetatable({
    ttl = opts.ttl, max = opts.max, resolver = opts.resolver or M.getaddrinfo,
    enabled = opts.enabled,
    entries = {}, count = 0, -- key -> { addrs, expires } or { waiters } while resolving
    order = { head = 1, tail = 0 }, -- keys in insertion order, for eviction
  }, mt)
end

local function cache_key(host, port, family) return host .. "\0" .. tostring(port) .. "\0" .. family end

local function evict_oldest(self)
  local order = self.order
  while order.head <= order.tail do
    local key = order[order.head]
    order[order.head] = nil
    order.head = order.head + 1
    local e = self.entries[key]
    if e and e.addrs then
      self.entries[key] = nil
      self.count = self.count - 1
      return
    end
  end
end

local function store(self, key, addrs)
  if self.count >= self.max then evict_oldest(self) end
  self.entries[key] = { addrs = addrs, expires = self.ttl and sched.now() + self.ttl }
  self.count = self.count + 1
  local order = self.order
  order.tail = order.tail + 1
  order[order.tail] = key
end

-- Run the resolver in its own task so that a waiter's timeout or
-- cancellation does not abandon a lookup others share.
local function lookup(self, key, host, port, family, pending)
  sched.spawn(function()
    local ok, addrs, err = pcall(self.resolver, host, port, family)
    if not ok then addrs, err = nil, tostring(addrs) end
    if type(addrs) == "table" and #addrs == 0 then addrs, err = nil, "no address" end
    if self.entries[key] == pending then self.entries[key] = nil end
    if addrs and self.enabled then store(self, key, addrs) end
    for _, wake in ipairs(pending.waiters) do wake(addrs, err) end
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
  local addrs, err = wait_for(deadline, e, ctx)
  fire(trace, "dns_resolvehost_end", host)
  if addrs then return addrs end
  if type(err) == "table" then return nil, err end
  local c = { host = host, port = port }
  if ctx then for k, v in pairs(ctx) do c[k] = v end end
  return nil, errors.new("ClientConnectorDNSError", ("cannot resolve host %s: %s"):format(host, tostring(err)), c)
end

-- clear(host, port): forget one name (any port when port is nil), or all.
function Cache:clear(host, port)
  if host == nil then
    self.entries, self.count, self.order = {}, 0, { head = 1, tail = 0 }
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

return M
