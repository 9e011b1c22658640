-- Establishing a transport stream for a new connection: TCP to resolved
-- addresses (Happy Eyeballs, RFC 8305) or a Unix socket. Everything here runs
-- under the sock_connect limit of the request's deadline.
local core = require "lurl.core"
local sched = require "lurl.sched"

local M = {}

-- RFC 8305 section 4: alternate the address families, starting with the
-- family of the resolver's first (preferred) answer.
function M.interleave(addrs)
  if #addrs < 2 then return addrs end
  local first = addrs[1].family
  local a, b = {}, {}
  for _, addr in ipairs(addrs) do
    local list = addr.family == first and a or b
    list[#list + 1] = addr
  end
  if #b == 0 then return addrs end
  local out = {}
  for i = 1, math.max(#a, #b) do
    out[#out + 1] = a[i]
    out[#out + 1] = b[i]
  end
  return out
end

-- One race over the addresses. A new attempt starts when the previous one
-- failed, or when `delay` seconds passed without an answer (RFC 8305 section
-- 5; delay false: strictly one after the other). The first stream to connect
-- wins and the others are closed. Returns stream, address or nil, message,
-- errno (the last failure) or nil and the deadline's timeout error.
local function race(addrs, port, deadline, opts, ctx)
  local delay, local_ip, local_port = opts.delay, opts.local_ip, opts.local_port
  local pending, timer, finished = {}, nil, false
  local function stop()
    finished = true
    for s in pairs(pending) do s:close() end
    pending = {}
    if timer then timer:close(); timer = nil end
  end
  return deadline:wait("sock_connect", function(wake)
    local i, live, last, lastname = 0, 0, "no address", nil
    local launch
    local function failed(msg, ename)
      last, lastname = msg, ename
      if not launch() and live == 0 and not finished then
        stop()
        wake(nil, last, lastname)
      end
    end
    launch = function()
      i = i + 1
      local addr = addrs[i]
      if not addr or finished then return false end
      local s, e, en
      -- pcall: a malformed address (from a custom resolver) is a failed
      -- attempt like any other, not an error raised into the request
      local called
      called, s, e, en = pcall(core.tcp.connect, addr.ip, port, function(ok, ce, cen)
        pending[s], live = nil, live - 1
        if ok then
          stop()
          wake(s, addr)
        else
          s:close()
          failed(ce, cen)
        end
      end, local_ip, local_port)
      if not called then s, e, en = nil, tostring(s), "EINVAL" end
      if not s then
        failed(e, en)
        return true
      end
      pending[s], live = addr, live + 1
      if delay and addrs[i + 1] then
        timer = timer or sched.timer()
        timer:start(delay, launch)
      end
      return true
    end
    launch()
    return stop
  end, ctx)
end

-- A single address needs no race: one connect, parked on directly (a burst
-- of new connections allocates less).
local function connect_one(addr, port, deadline, opts, ctx)
  local task, seq
  local called, s, e, en = pcall(core.tcp.connect, addr.ip, port, function(ok, ce, cen)
    sched.wake(task, seq, ok, ce, cen)
  end, opts.local_ip, opts.local_port)
  if not called then return nil, tostring(s), "EINVAL" end
  if not s then return nil, e, en end
  task, seq = sched.prepare()
  local ok, ce, cen = deadline:park(task, "sock_connect", ctx, function() s:close() end)
  if ok then return s, addr end
  if not s:closed() then s:close() end
  return nil, ce, cen
end

-- tcp(addrs, port, deadline, opts, ctx): opts.delay (Happy Eyeballs),
-- opts.local_ip / opts.local_port. Returns stream, address or a failure as
-- race does.
function M.tcp(addrs, port, deadline, opts, ctx)
  if #addrs == 1 then return connect_one(addrs[1], port, deadline, opts, ctx) end
  return race(M.interleave(addrs), port, deadline, opts, ctx)
end

-- unix(path, deadline, ctx) -> stream or nil, message, errno (or nil and
-- the timeout error).
function M.unix(path, deadline, ctx)
  local s
  local ok, e, en = deadline:wait("sock_connect", function(wake)
    s = core.pipe.connect(path, wake)
    return function() s:close() end
  end, ctx)
  if ok then return s end
  if not s:closed() then s:close() end
  return nil, e, en
end

return M
