-- A route to an origin, for the connector (lurl.connector) when it opens
-- a connection: the name resolved (overrides, IP literals, the DNS cache),
-- the TCP or Unix-socket connection, a proxy and its tunnel (SOCKS, or
-- CONNECT), and TLS to the origin. It reads the connector's settings
-- (resolve, dns, family, dial_opts, path, dialer) and writes the times of
-- each step into the exchange record (ex.dns, connect, proxy_time,
-- handshake), under the request's deadline and its phases.
local dial = require "lurl.dial"
local dns = require "lurl.dns"
local errors = require "lurl.errors"
local sched = require "lurl.sched"
local http_tunnel = require "lurl.http_tunnel"
local socks = require "lurl.socks"
local tls = require "lurl.tls"

local M = {}

-- error(host, port, msg, errno, ctx[, kind]) -> a ClientConnectorError (or
-- kind) for host:port, annotated with the request's context.
function M.error(host, port, msg, errno, ctx, kind)
  return errors.annotate(errors.new(kind or "ClientConnectorError",
    ("cannot connect to %s:%s: %s"):format(host, tostring(port), tostring(msg)),
    { host = host, port = port, errno = errno, os_error = msg }), ctx or {})
end

-- The addresses (and port) to connect to for host:port.
local function resolve(self, host, port, deadline, ex)
  local override = self.resolve and self.resolve[host .. ":" .. port]
  if override then return { override }, override.port end
  local fam = dns.ip_family(host)
  if not fam then
    local addrs, err = self.dns:resolve(host, port, self.family, deadline, ex.context, ex.trace)
    if not addrs then return nil, err end
    return addrs, port
  end
  if self.family ~= 0 and self.family ~= fam then
    return nil, M.error(host, port, "address is not of family " .. self.family, "EAI_ADDRFAMILY", ex.context)
  end
  return { { ip = host, family = fam } }, port
end

-- A new transport stream to host:port (or the Unix socket), with the time
-- spent resolving and connecting noted in ex (the request's timings).
local function open_stream(self, host, port, deadline, ex)
  local ctx = ex.context
  local t0 = sched.now()
  -- a transport without sockets (lurl.testing.mock)
  if self.dialer then
    deadline:enter("connect", t0)
    return self.dialer(host, port, deadline, ex)
  end
  if self.path then
    deadline:enter("connect", t0)
    deadline:begin_sock_connect()
    local s, e, en = dial.unix(self.path, deadline, ctx)
    ex.connect = sched.now() - t0
    if not s and type(e) ~= "table" then return nil, M.error("unix:" .. self.path, port, e, en, ctx,
      "UnixClientConnectorError") end
    return s, e
  end
  deadline:enter("dns", t0)
  local addrs, to_port = resolve(self, host, port, deadline, ex)
  if not addrs then return nil, to_port end
  local t1 = sched.now()
  ex.dns = t1 - t0
  deadline:enter("connect", t1)
  deadline:begin_sock_connect()
  local s, a, en = dial.tcp(addrs, to_port, deadline, self.dial_opts, ctx)
  ex.connect = sched.now() - t1
  if not s and type(a) ~= "table" then return nil, M.error(host, port, a, en, ctx) end
  return s, a
end

-- TLS on s to host:port as settings say; returns what TLS negotiated and
-- the stream to use from then on (TLS inside a proxy's TLS is a new one),
-- or nil, err with s closed.
local function secure(s, settings, host, port, deadline, ctx)
  local info, inner = tls.handshake(s, settings, host, port, deadline, ctx)
  if not info then
    if not s:closed() then s:close() end
    return nil, inner
  end
  return info, inner or s
end

-- Failing to reach the proxy is the proxy's failure (aiohttp's
-- ClientProxyConnectionError); a timeout stays a timeout.
local function unreachable(err, proxy, ctx)
  if errors.is(err, "TimeoutError") then return err end
  return errors.annotate(errors.new("ClientProxyConnectionError",
    ("cannot connect to proxy %s: %s"):format(proxy.url, err.os_error or err.message),
    { proxy = proxy.url, errno = err.errno, os_error = err.os_error, cause = err }), ctx)
end

-- The address a SOCKS proxy that resolves nothing is given: lurl resolves
-- the name (socks4 takes IPv4 only).
local function socks_target(self, proxy, ex, deadline)
  local host = ex.url.host
  if proxy.remote_dns then return host end
  local addrs, err = resolve(self, host, ex.port, deadline, ex)
  if not addrs then return nil, err end
  for _, a in ipairs(addrs) do
    if a.family == 4 or proxy.scheme == "socks5" then return a.ip end
  end
  return nil, M.error(host, ex.port, "no IPv4 address for a socks4 proxy", "EAI_ADDRFAMILY", ex.context)
end

-- Through the proxy's stream s, a tunnel to the origin: SOCKS, or CONNECT
-- to an HTTP proxy. Returns true or nil, err.
local function tunnel(self, s, proxy, ex, deadline)
  if not proxy.socks then
    return http_tunnel.open(s, proxy, ex.url.host, ex.port, deadline, ex.context)
  end
  local host, err = socks_target(self, proxy, ex, deadline)
  if not host then return nil, err end
  local ok, extra = socks.handshake(s, proxy, host, ex.port, deadline, ex.context)
  if ok and extra and #extra > 0 then
    return nil, errors.annotate(errors.new("ClientProxyConnectionError",
      ("proxy %s sent bytes before the request"):format(proxy.url), { proxy = proxy.url }), ex.context)
  end
  return ok, extra
end

-- A stream to the proxy, its TLS when it is an https proxy, and the tunnel
-- when the request needs one; the time from the proxy's TCP connection to
-- an open tunnel goes to ex.proxy_time.
local function through_proxy(self, ex, deadline)
  local proxy, ctx = ex.proxy, ex.context
  if ex.trace then ex.trace:emit("proxy_connect_start", { proxy = proxy.url }) end
  local s, addr = open_stream(self, proxy.host, proxy.port, deadline, ex)
  if not s then return nil, type(addr) == "table" and unreachable(addr, proxy, ctx) or addr end
  local t0 = sched.now()
  deadline:enter("proxy", t0)
  local ok, err = true, nil
  if proxy.ssl then
    ok, s = secure(s, proxy.ssl, proxy.host, proxy.port, deadline, ctx)
    if not ok then return nil, s end
  end
  if proxy.tunnel then ok, err = tunnel(self, s, proxy, ex, deadline) end
  ex.proxy_time = sched.now() - t0
  if not ok then
    if not s:closed() then s:close() end
    return nil, err
  end
  if ex.trace then ex.trace:emit("proxy_connect_end", { proxy = proxy.url }) end
  return s, addr
end

-- open(connector, ex, deadline) -> the stream to speak HTTP on, the
-- address connected to and what TLS negotiated (nil over plain TCP); or
-- nil, err. A mock connector's dialer replaces all of it (proxies
-- included) and skips TLS.
function M.open(self, ex, deadline)
  local host, port = ex.url.host, ex.port
  local s, addr
  if ex.proxy and not self.dialer then
    s, addr = through_proxy(self, ex, deadline)
  else
    s, addr = open_stream(self, host, port, deadline, ex)
  end
  if not s then return nil, addr end
  local info
  if ex.ssl and not self.dialer and not (ex.proxy and not ex.proxy.tunnel) then
    local t0 = sched.now()
    deadline:enter("tls", t0)
    info, s = secure(s, ex.ssl, host, port, deadline, ex.context)
    ex.handshake = sched.now() - t0
    if not info then return nil, s end
  end
  return s, addr, info
end

return M
