-- SOCKS, the client side, over a stream already connected to the proxy:
-- SOCKS5 (RFC 1928) with username/password authentication (RFC 1929), and
-- SOCKS4 with its 4A extension (the proxy resolves the name). CONNECT only:
-- once the handshake succeeded the stream is a tunnel to the target, and
-- what runs next (TLS, HTTP/1.1) uses it as if it were connected directly.
-- Everything runs under the sock_connect limit of the request's deadline.
local errors = require "lurl.errors"
local ip = require "lurl.ip"

local M = {}

-- RFC 1928 section 6
local SOCKS5_REPLIES = {
  [1] = "general SOCKS server failure", [2] = "connection not allowed by ruleset",
  [3] = "network unreachable", [4] = "host unreachable", [5] = "connection refused",
  [6] = "TTL expired", [7] = "command not supported", [8] = "address type not supported",
}

-- SOCKS4 (and 4A): 90 is "request granted"
local SOCKS4_REPLIES = {
  [91] = "request rejected or failed",
  [92] = "request rejected: the proxy cannot reach identd on the client",
  [93] = "request rejected: identd reports another user id",
}

-- ---- addresses ----

-- The 4 or 16 bytes of an IP literal ([brackets] and a zone allowed: a
-- zone does not travel), or nil.
local function ipv4_bytes(s) return s:find("^%d+%.%d+%.%d+%.%d+$") and ip.packed(s) or nil end
local function ipv6_bytes(s)
  local text = (s:match("^%[(.*)%]$") or s):gsub("%%.*$", "")
  return ip.packed(text)
end

local function port_bytes(port) return string.char(math.floor(port / 256), port % 256) end

-- ---- one handshake ----

local Handshake = {}
local hs_mt = { __name = "lurl.socks.handshake", __index = Handshake }

local function where(proxy)
  local host = proxy.host:find(":", 1, true) and ("[" .. proxy.host .. "]") or proxy.host
  return host .. ":" .. tostring(proxy.port)
end

-- The proxy's bytes are collected by the stream's read callback; read()
-- takes exact counts from them, so nothing after the reply is consumed.
local function new_handshake(stream, proxy, host, port, deadline, ctx)
  local h = setmetatable({ stream = stream, proxy = proxy, host = host, port = port, deadline = deadline,
    ctx = ctx or {}, buf = "", ended = false, ename = false, waker = false,
    label = proxy.scheme:find("^socks5") and "SOCKS5" or "SOCKS4" }, hs_mt)
  -- a timeout or a cancellation leaves the handshake half done: the
  -- stream is of no further use
  h.abandon = function() stream:close() end
  local ok, e, en = stream:read_start(function(data, err, ename)
    if data then h.buf = h.buf .. data else h.ended, h.ename = err, ename end
    local w = h.waker
    if w then h.waker = false; w(true) end
  end)
  if not ok then h.ended, h.ename = e, en end
  return h
end

-- A ClientProxyConnectionError: "SOCKS5 proxy 127.0.0.1:1080 <what>".
function Handshake:fail(what, fields)
  fields = fields or {}
  fields.proxy, fields.host, fields.port = self.proxy.url, self.host, self.port
  local err = errors.new("ClientProxyConnectionError", ("%s proxy %s %s"):format(self.label, where(self.proxy), what),
    fields)
  return errors.annotate(err, self.ctx)
end

-- A failure of the stream itself (message, errno), or the deadline's error.
function Handshake:broken(msg, ename)
  if type(msg) == "table" then return errors.annotate(msg, { proxy = self.proxy.url }) end
  if ename == "EOF" then return self:fail("closed the connection before its reply was complete") end
  return self:fail("failed: " .. tostring(msg), { errno = ename, os_error = msg })
end

function Handshake:send(bytes)
  local stream, abandon = self.stream, self.abandon
  local ok, e, en = self.deadline:wait("sock_connect", function(wake)
    local r, we, wen = stream:write(bytes, wake)
    if r ~= false then wake(r, we, wen) end
    return abandon
  end, self.ctx)
  if ok then return true end
  return nil, self:broken(e, en)
end

-- read(n) -> the proxy's next n bytes, or nil and the error.
function Handshake:read(n)
  while #self.buf < n do
    if self.ended then return nil, self:broken(self.ended, self.ename) end
    local ok, err = self.deadline:wait("sock_connect", function(wake)
      self.waker = wake
      return self.abandon
    end, self.ctx)
    self.waker = false
    if not ok then return nil, self:broken(err) end
  end
  local s = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return s
end

function Handshake:invalid(why) return self:fail("sent an invalid reply (" .. why .. ")") end

function Handshake:refused(code, meanings)
  return self:fail(("refused: %s (reply %d)"):format(meanings[code] or "unknown reply code", code),
    { socks_reply = code })
end

-- ---- SOCKS5 ----

-- RFC 1929: the username and password, each 1 to 255 bytes.
local function authenticate(h)
  local user, pass = h.proxy.username, h.proxy.password or ""
  local ok, err = h:send("\1" .. string.char(#user) .. user .. string.char(#pass) .. pass)
  if not ok then return nil, err end
  local r
  r, err = h:read(2)
  if not r then return nil, err end
  -- the version byte is not checked: servers send 1 (RFC 1929) or 5
  if r:byte(2) ~= 0 then return nil, h:fail("authentication failed (status " .. r:byte(2) .. ")") end
  return true
end

-- The method negotiation (RFC 1928 section 3): no authentication, and
-- username/password when the proxy URL has credentials.
local function negotiate(h)
  local creds = h.proxy.username ~= nil
  local ok, err = h:send(creds and "\5\2\0\2" or "\5\1\0")
  if not ok then return nil, err end
  local r
  r, err = h:read(2)
  if not r then return nil, err end
  if r:byte(1) ~= 5 then return nil, h:invalid(("version %d, expected 5"):format(r:byte(1))) end
  local method = r:byte(2)
  if method == 0 then return true end
  if method == 2 and creds then return authenticate(h) end
  if method == 0xFF then
    return nil, h:fail(creds and "accepts none of the offered authentication methods (none, username/password)"
      or "requires authentication (no credentials in the proxy URL)")
  end
  return nil, h:invalid(("authentication method %d, which was not offered"):format(method))
end

-- DST.ADDR with its ATYP (section 5): an IP literal as it is, a name for
-- the proxy to resolve.
local function socks5_address(h)
  local host = h.host
  local v4 = ipv4_bytes(host)
  if v4 then return "\1" .. v4 end
  local v6 = host:find(":", 1, true) and ipv6_bytes(host)
  if v6 then return "\4" .. v6 end
  if #host > 255 then return nil, h:fail("cannot carry a host name longer than 255 bytes") end
  return "\3" .. string.char(#host) .. host
end

-- The rest of a successful reply (section 6): RSV, ATYP, BND.ADDR, BND.PORT.
local function bound_address(h)
  local r, err = h:read(2)
  if not r then return nil, err end
  local atyp = r:byte(2)
  local len
  if atyp == 1 then
    len = 4
  elseif atyp == 4 then
    len = 16
  elseif atyp == 3 then
    r, err = h:read(1)
    if not r then return nil, err end
    len = r:byte()
  else
    return nil, h:invalid("address type " .. atyp)
  end
  r, err = h:read(len + 2)
  if not r then return nil, err end
  return true
end

local function socks5(h)
  local ok, err = negotiate(h)
  if not ok then return nil, err end
  local addr
  addr, err = socks5_address(h)
  if not addr then return nil, err end
  ok, err = h:send("\5\1\0" .. addr .. port_bytes(h.port))
  if not ok then return nil, err end
  local r
  r, err = h:read(2)
  if not r then return nil, err end
  if r:byte(1) ~= 5 then return nil, h:invalid(("version %d, expected 5"):format(r:byte(1))) end
  -- a refusal ends here: what follows it does not matter
  if r:byte(2) ~= 0 then return nil, h:refused(r:byte(2), SOCKS5_REPLIES) end
  return bound_address(h)
end

-- ---- SOCKS4 and 4A ----

-- VN 4, CD 1 (CONNECT), DSTPORT, DSTIP, USERID, NUL; SOCKS4A sends a name
-- as DSTIP 0.0.0.1 followed by the name and a NUL.
local function socks4(h)
  local addr, name = ipv4_bytes(h.host), ""
  if not addr then
    if h.proxy.scheme ~= "socks4a" then
      return nil, h:fail("carries IPv4 addresses only, not " .. h.host .. " (socks4a:// sends names)")
    end
    addr, name = "\0\0\0\1", h.host .. "\0"
  end
  local ok, err = h:send("\4\1" .. port_bytes(h.port) .. addr .. (h.proxy.username or "") .. "\0" .. name)
  if not ok then return nil, err end
  local r
  r, err = h:read(2)
  if not r then return nil, err end
  if r:byte(1) ~= 0 then return nil, h:invalid(("version %d, expected 0"):format(r:byte(1))) end
  if r:byte(2) ~= 90 then return nil, h:refused(r:byte(2), SOCKS4_REPLIES) end
  -- DSTPORT and DSTIP, which a CONNECT reply does not use
  r, err = h:read(6)
  if not r then return nil, err end
  return true
end

-- ---- the handshake ----

local PROTOCOLS = { socks5 = socks5, socks5h = socks5, socks4 = socks4, socks4a = socks4 }

-- misuse(proxy) -> what no SOCKS proxy could take, or nil. lurl.proxy asks
-- it when the request is made, so that the script's mistake is raised at
-- its line; handshake asks again and, should it ever get here, fails.
function M.misuse(proxy)
  local user, pass = proxy.username, proxy.password
  if not PROTOCOLS[proxy.scheme] then return "not a SOCKS proxy: " .. tostring(proxy.scheme) end
  if proxy.scheme:find("^socks5") then
    if (user and #user > 255) or (pass and #pass > 255) then
      return "SOCKS5 username and password are at most 255 bytes each (RFC 1929)"
    end
  elseif user and user:find("\0", 1, true) then
    return "a SOCKS4 user id cannot contain a NUL byte"
  end
end

-- handshake(stream, proxy, host, port, deadline, ctx) -> true[, extra], or
-- nil and a typed error. stream is connected to the proxy (proxy: { scheme
-- = "socks5" | "socks5h" | "socks4" | "socks4a", host, port, username,
-- password, url }); host:port is the target: an IP literal for socks5 and
-- socks4 (IPv4 only), or a name for socks5h and socks4a, which the proxy
-- resolves. On success the stream's reading is stopped right after the
-- reply; extra is nil unless the proxy sent bytes beyond its reply in the
-- same read: they are the tunnel's first bytes, and the caller hands them to
-- what reads the stream next (before its first read_start delivers more).
-- On failure the stream is closed: ClientProxyConnectionError (socks_reply
-- for a refusal, errno for a broken stream; proxy, host and port), or the
-- deadline's error (sock_connect).
function M.handshake(stream, proxy, host, port, deadline, ctx)
  local h = new_handshake(stream, proxy, host, port, deadline, ctx)
  local why = M.misuse(proxy)
  if why then
    stream:close()
    return nil, h:fail("cannot be used: " .. why)
  end
  local ok, err = PROTOCOLS[proxy.scheme](h)
  if not stream:closed() then
    if ok then stream:read_stop() else stream:close() end
  end
  if not ok then return nil, err end
  return true, h.buf ~= "" and h.buf or nil
end

return M
