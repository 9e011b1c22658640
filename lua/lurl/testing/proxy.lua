-- lurl.testing.proxy: a forward proxy on loopback, inside the runtime, for
-- specs (ours and users'). One listener speaks HTTP and SOCKS, told apart by
-- the first byte a client sends (5: SOCKS5, 4: SOCKS4, else HTTP):
--   HTTP         absolute-form requests to http origins (RFC 9112 section
--                3.2.2) are relayed to the origin, Proxy-Authorization and
--                Proxy-Connection taken out, and the response relayed back
--                byte for byte; both connections are kept alive when both
--                allow it. CONNECT host:port (RFC 9110 section 9.3.6) is
--                answered "200 Connection established" and becomes a blind
--                relay of bytes, a FIN passed on each way, closed when both
--                sides ended.
--   SOCKS5       (RFC 1928) methods 0 (none) or 2 (RFC 1929, when auth is
--                set), CONNECT to ATYP 1, 3 or 4.
--   SOCKS4/4A    CONNECT; with auth set the user id must be auth.user.
-- Only loopback targets are ever dialled: an IP literal in 127.0.0.0/8 or
-- ::1, or the name localhost (RFC 6761 section 6.3, never looked up). Any
-- other target is refused (502, SOCKS5 reply 2, SOCKS4 reply 91): this is a
-- test tool and never reaches off the machine, not even for DNS.
--
-- proxy{ auth = { user =, password = } (Basic for HTTP: 407 with
--          Proxy-Authenticate: Basic realm="lurl" when missing or wrong),
--        tls = lurl.ssl_context{ server = true, certfile =, keyfile = }
--          (clients speak TLS to the proxy first: an https:// proxy),
--        http = true, socks = true (which sides answer),
--        answer_connect = { status = 403, body = "no" } (every CONNECT
--          gets this answer instead of a tunnel),
--        socks_reply = 5 (every SOCKS request is refused with this code;
--          SOCKS4 takes codes from 91, a smaller one becomes 91) }
-- proxy:url() is "http://127.0.0.1:PORT" (https:// with tls),
-- proxy:url("socks5") "socks5://127.0.0.1:PORT" (socks5h, socks4, socks4a
-- too); proxy:close() stops listening and drops every connection.
--
-- What came is recorded: proxy.connections (accepted so far) and
-- proxy.seen, one entry per request: { kind = "forward" | "connect" |
-- "socks5" | "socks4", target = absolute URL (forward) or "host:port",
-- headers = the request's fields as the proxy got them, lower-case names
-- (HTTP only), auth_ok, user (the SOCKS user name or id), connection (the
-- proxy's count of connections when this one came), connection_requests
-- (this request's number on its connection) }. A SOCKS5 client that fails
-- authentication is recorded without a target.
local core = require "lurl.core"
local check = require "lurl.check"
local sched = require "lurl.sched"
local auth = require "lurl.auth"
local url = require "lurl.url"
local wire = require "lurl.testing.wire"

local M = {}

local Proxy = {}
local mt = { __name = "lurl.testing.proxy", __index = Proxy }
function mt.__tostring(p) return ("lurl.testing.proxy (%s)"):format(p:url()) end

-- ---- one stream, read as a buffer ----

local Link = {}
local link_mt = { __name = "lurl.testing.proxy.link", __index = Link }

local function new_link(proxy, tcp)
  local l = setmetatable({ tcp = tcp, buf = "", eof = false, waker = false }, link_mt)
  proxy.links[l] = true
  -- an idle proxy connection must not keep a finished script running
  tcp:ref(false)
  tcp:read_start(function(data)
    if data then l.buf = l.buf .. data else l.eof = true end
    local w = l.waker
    if w then l.waker = false; w() end
  end)
  return l
end

-- Wait until n bytes are buffered: true, or false when the peer ended first.
function Link:fill(n)
  while #self.buf < n do
    if self.eof or self.tcp:closed() then return false end
    sched.wait(function(wake) self.waker = wake end)
  end
  return true
end

-- Exactly n bytes, or nil when the peer ended first.
function Link:read(n)
  if not self:fill(n) then return nil end
  local s = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return s
end

-- What is buffered, once there is something; nil at the end.
function Link:receive()
  if not self:fill(1) then return nil end
  local s = self.buf
  self.buf = ""
  return s
end

-- The bytes before the next NUL (a SOCKS4 field), or nil.
function Link:read_cstring()
  while true do
    local i = self.buf:find("\0", 1, true)
    if i then
      local s = self.buf:sub(1, i - 1)
      self.buf = self.buf:sub(i + 1)
      return s
    end
    if #self.buf > 1024 or not self:fill(#self.buf + 1) then return nil end
  end
end

function Link:send(data)
  if self.tcp:closed() then return false end
  return sched.wait(function(wake)
    local r = self.tcp:write(data, wake)
    if r ~= false then wake(r) end
  end)
end

function Link:close()
  if not self.tcp:closed() then self.tcp:close() end
end

-- ---- the targets: loopback only ----

local function loopback_ips(host)
  host = host:match("^%[(.*)%]$") or host
  if host:lower() == "localhost" or host:lower():find("%.localhost%.?$") then return { "127.0.0.1", "::1" } end
  local a, b, c = host:match("^127%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  if (a and tonumber(a) < 256 and tonumber(b) < 256 and tonumber(c) < 256) or host == "::1" then return { host } end
  return nil
end

-- dial(host, port) -> a link to the target, or nil, "refused" (not
-- loopback) or "failed" (the connect failed), and why.
local function dial(proxy, host, port)
  local ips = loopback_ips(host)
  if not ips then return nil, "refused", "not a loopback target: " .. host end
  if not port or port < 1 or port > 65535 then return nil, "refused", "bad port" end
  local why = "no address"
  for _, ip in ipairs(ips) do
    local tcp
    local ok, e = sched.wait(function(wake)
      local err
      tcp, err = core.tcp.connect(ip, port, wake)
      if not tcp then wake(nil, err) end
    end)
    if ok then return new_link(proxy, tcp) end
    if tcp and not tcp:closed() then tcp:close() end
    why = tostring(e)
  end
  return nil, "failed", why
end

-- A blind relay from one link to another; the end of from becomes a FIN on to.
local function pump(from, to)
  while true do
    local data = from:receive()
    if not data or not to:send(data) then break end
  end
  if not to.tcp:closed() then to.tcp:shutdown() end
end

-- Both ways until both ended (bytes already buffered on either go first).
local function tunnel(proxy, client, target)
  local back = sched.spawn(pump, target, client)
  proxy.tasks[back] = true
  pump(client, target)
  back:join()
  proxy.tasks[back] = nil
  target:close()
end

local function record(proxy, entry)
  proxy.seen[#proxy.seen + 1] = entry
  return entry
end

-- ---- SOCKS ----

local function port_of(bytes) return bytes:byte(1) * 256 + bytes:byte(2) end

-- The SOCKS5 reply: VER, REP, RSV, ATYP 1 and a zero bound address.
local function socks5_reply(code) return "\5" .. string.char(code) .. "\0\1\0\0\0\0\0\0" end

-- RFC 1929: true when the user and password are auth's.
local function socks5_login(proxy, client, entry)
  local ver = client:read(2)
  if not ver then return false end
  local user = client:read(ver:byte(2))
  local plen = user and client:read(1)
  local pass = plen and client:read(plen:byte())
  if not pass then return false end
  entry.user = user
  entry.auth_ok = user == proxy.auth.user and pass == proxy.auth.password
  client:send(entry.auth_ok and "\1\0" or "\1\1")
  return entry.auth_ok
end

-- DST.ADDR of a request (RFC 1928 section 5) as text, or nil.
local function socks5_host(client, atyp)
  if atyp == 1 then
    local b = client:read(4)
    return b and ("%d.%d.%d.%d"):format(b:byte(1, 4))
  elseif atyp == 3 then
    local n = client:read(1)
    return n and client:read(n:byte())
  elseif atyp == 4 then
    local b = client:read(16)
    if not b then return nil end
    local g = {}
    for i = 1, 16, 2 do g[#g + 1] = ("%x"):format(b:byte(i) * 256 + b:byte(i + 1)) end
    -- "::1" is the one IPv6 target the proxy dials; others only need to be told apart
    return (table.concat(g, ":"):gsub("^0:0:0:0:0:0:0:1$", "::1"))
  end
end

-- Connect to the target, or answer code (from the SOCKS reply table) when
-- that fails; returns the link or nil.
local function socks_dial(proxy, client, host, port, reply, codes)
  if proxy.socks_reply then
    client:send(reply(codes.forced))
    return nil
  end
  local target, how = dial(proxy, host, port)
  if not target then
    client:send(reply(how == "refused" and codes.refused or codes.failed))
    return nil
  end
  client:send(reply(codes.ok))
  return target
end

local function socks5(proxy, client, number)
  local head = client:read(2)
  local methods = head and client:read(head:byte(2))
  if not methods then return end
  local want = proxy.auth and 2 or 0
  if not methods:find(string.char(want), 1, true) then
    client:send("\5\255")
    record(proxy, { kind = "socks5", auth_ok = false, connection = number, connection_requests = 1 })
    return
  end
  client:send("\5" .. string.char(want))
  local entry = { kind = "socks5", auth_ok = true, connection = number, connection_requests = 1 }
  if want == 2 and not socks5_login(proxy, client, entry) then
    record(proxy, entry)
    return
  end
  local req = client:read(4)
  local host = req and socks5_host(client, req:byte(4))
  local port = host and client:read(2)
  if not port then
    if req then client:send(socks5_reply(8)) end
    return
  end
  entry.target = (host:find(":", 1, true) and "[" .. host .. "]" or host) .. ":" .. port_of(port)
  record(proxy, entry)
  if req:byte(2) ~= 1 then
    client:send(socks5_reply(7))
    return
  end
  local codes = { ok = 0, refused = 2, failed = 5, forced = proxy.socks_reply }
  local target = socks_dial(proxy, client, host, port_of(port), socks5_reply, codes)
  if target then tunnel(proxy, client, target) end
end

-- The SOCKS4 reply: VN 0, CD, a zero port and address.
local function socks4_reply(code) return "\0" .. string.char(code) .. "\0\0\0\0\0\0" end

local function socks4(proxy, client, number)
  local req = client:read(8)
  local user = req and client:read_cstring()
  if not user then return end
  local host = ("%d.%d.%d.%d"):format(req:byte(5, 8))
  -- SOCKS4A: 0.0.0.x (x not 0) says a name follows the user id
  if req:sub(5, 7) == "\0\0\0" and req:byte(8) ~= 0 then
    host = client:read_cstring()
    if not host then return end
  end
  local port = port_of(req:sub(3, 4))
  local entry = record(proxy, { kind = "socks4", target = host .. ":" .. port, user = user,
    auth_ok = not proxy.auth or user == proxy.auth.user, connection = number, connection_requests = 1 })
  if req:byte(2) ~= 1 or not entry.auth_ok then
    client:send(socks4_reply(91))
    return
  end
  local codes = { ok = 90, refused = 91, failed = 91, forced = math.max(91, proxy.socks_reply or 91) }
  local target = socks_dial(proxy, client, host, port, socks4_reply, codes)
  if target then tunnel(proxy, client, target) end
end

-- ---- HTTP ----

local function lower_fields(h)
  local out = {}
  for name, value in h:items() do
    local k = name:lower()
    out[k] = out[k] and (out[k] .. ", " .. value) or value
  end
  return out
end

local function authorized(proxy, req)
  if not proxy.auth then return true end
  local got = req.headers["Proxy-Authorization"]
  local want = auth.b64encode(proxy.auth.user .. ":" .. proxy.auth.password)
  local scheme, token = (got or ""):match("^(%S+)%s+(%S+)%s*$")
  return scheme ~= nil and scheme:lower() == "basic" and token == want
end

-- Answer the client from the proxy itself; returns whether the connection stays.
local function answer(client, req, resp)
  local head, body = wire.response(resp, req)
  client:send(head .. body)
  return req.keep_alive and not resp.close
end

local function bad_gateway(client, req, why)
  return answer(client, req, { status = 502, body = why .. "\n", close = true })
end

-- The next request on the connection, or nil at its end.
local function read_request(client, reader)
  while true do
    local req = reader:take()
    if req then return req end
    if req == false then return nil end
    local data = client:receive()
    if not data then return nil end
    reader:feed(data)
  end
end

local function connect(proxy, client, reader, req)
  if proxy.answer_connect then return answer(client, req, wire.answer(proxy.answer_connect)) end
  local host, port = req.target:match("^(.+):(%d+)$")
  local target, _, why = dial(proxy, host or req.target, tonumber(port))
  if not target then return bad_gateway(client, req, why) end
  client:send("HTTP/1.1 200 Connection established\r\n\r\n")
  -- bytes the client sent after the head, which the reader holds, are the
  -- tunnel's first
  client.buf = table.concat(reader.chunks) .. client.buf
  reader.chunks = {}
  tunnel(proxy, client, target)
  return false
end

-- The request as the origin gets it: origin-form, the proxy's own fields
-- taken out, a body the reader decoded sent with its length.
local function origin_request(req, u)
  local h = req.headers:copy()
  h:remove("Proxy-Authorization")
  h:remove("Proxy-Connection")
  if h:has("Transfer-Encoding") then
    h:remove("Transfer-Encoding")
    h:set("Content-Length", tostring(#req.body))
  end
  local line = ("%s %s HTTP/%s"):format(req.method, url.target(u), req.version)
  return assert(core.h1.encode(line, h:flat())) .. req.body
end

-- Relay the origin's response to the client as it comes. Returns "keep"
-- (both connections may stay), "close" (the response ended, a connection
-- must not stay) or "failed", and whether any byte reached the client.
local function relay_response(client, origin, no_body)
  local parser = core.h1.parser("response", 65536, 65536)
  parser:reset(no_body)
  local keep, sent = false, false
  while true do
    local data = origin:receive()
    -- a body delimited by the end of the connection ends here (RFC 9112 section 6.3)
    if not data then return parser:finish() == true and "close" or "failed", sent end
    local n, head, _, done = parser:execute(data)
    if not n then return "failed", sent end
    if head then keep = select(7, parser:head()) end
    sent = client:send(n < #data and data:sub(1, n) or data) or sent
    -- bytes after the response make the origin's connection unusable
    if done then return (keep and n == #data) and "keep" or "close", true end
  end
end

-- One absolute-form request: returns whether the client connection stays.
local function forward(proxy, client, req, origins)
  local u = url.parse(req.target)
  if not u or u.scheme ~= "http" or not u.host then
    return answer(client, req, { status = 400, body = "absolute-form http:// URL expected\n", close = true })
  end
  local key = u.host .. ":" .. (u.port or 80)
  local bytes = origin_request(req, u)
  -- a kept origin connection the origin closed meanwhile is replaced once
  for attempt = 1, 2 do
    local origin, reused = origins[key], origins[key] ~= nil
    if not origin then
      local _, why
      origin, _, why = dial(proxy, u.host, u.port or 80)
      if not origin then return bad_gateway(client, req, why) end
    end
    origins[key] = nil
    local outcome, sent = "failed", false
    if origin:send(bytes) then outcome, sent = relay_response(client, origin, req.method == "HEAD") end
    if outcome == "keep" then
      origins[key] = origin
      return req.keep_alive
    end
    origin:close()
    if outcome == "close" or sent then return false end
    if not reused or attempt == 2 then return bad_gateway(client, req, "the origin sent no valid response") end
  end
end

local function http(proxy, client, number)
  local reader, origins, n = wire.reader(), {}, 0
  while true do
    local req = read_request(client, reader)
    if not req then break end
    n = n + 1
    local entry = record(proxy, { kind = req.method == "CONNECT" and "connect" or "forward", target = req.target,
      headers = lower_fields(req.headers), auth_ok = authorized(proxy, req), connection = number,
      connection_requests = n })
    local keep
    if not entry.auth_ok then
      keep = answer(client, req, { status = 407, reason = "Proxy Authentication Required",
        headers = { ["Proxy-Authenticate"] = 'Basic realm="lurl"' }, body = "proxy authentication required\n" })
    elseif req.method == "CONNECT" then
      keep = connect(proxy, client, reader, req)
    else
      keep = forward(proxy, client, req, origins)
    end
    if not keep then break end
  end
  for _, origin in pairs(origins) do origin:close() end
end

-- ---- connections ----

-- The server side of the TLS handshake (an https:// proxy).
local function accept_tls(proxy, tcp)
  return sched.wait(function(wake)
    local started, e, en = tcp:tls_start(proxy.tls, nil, nil, wake)
    if not started then wake(nil, e, en) end
  end)
end

local function serve(proxy, tcp, number)
  if not proxy.tls or accept_tls(proxy, tcp) then
    local client = new_link(proxy, tcp)
    if client:fill(1) then
      local first = client.buf:byte(1)
      if first == 5 and proxy.socks then socks5(proxy, client, number)
      elseif first == 4 and proxy.socks then socks4(proxy, client, number)
      elseif first ~= 4 and first ~= 5 and proxy.http then http(proxy, client, number) end
    end
  end
  proxy.tasks[sched.current()] = nil
  if not tcp:closed() then tcp:close() end
end

local KNOWN = { auth = "table", tls = "userdata", http = "boolean", socks = "boolean", answer_connect = "any",
  socks_reply = "number" }

local function check_options(opts)
  check.options("proxy", "#1", opts, KNOWN)
  local a = opts.auth
  if a and (type(a.user) ~= "string" or type(a.password) ~= "string") then
    check.argerror("proxy", "'auth'", "{ user = string, password = string } expected")
  end
  local t = opts.tls and getmetatable(opts.tls)
  if opts.tls and not (t and t.__name == "lurl.ssl_context") then
    check.argerror("proxy", "'tls'", "lurl.ssl_context{ server = true, ... } expected")
  end
  local answer_type = type(opts.answer_connect)
  if opts.answer_connect ~= nil and answer_type ~= "table" and answer_type ~= "number" and answer_type ~= "string" then
    check.argerror("proxy", "'answer_connect'", "an answer (table, status or body) expected, got " .. answer_type)
  end
  local r = opts.socks_reply
  if r and (r < 1 or r > 255 or r % 1 ~= 0) then check.argerror("proxy", "'socks_reply'", "1 to 255 expected") end
end

-- proxy(opts): see the top of this file.
function M.new(opts)
  opts = opts or {}
  check_options(opts)
  local self = setmetatable({ auth = opts.auth, tls = opts.tls, http = opts.http ~= false,
    socks = opts.socks ~= false, answer_connect = opts.answer_connect, socks_reply = opts.socks_reply,
    connections = 0, seen = {}, links = setmetatable({}, { __mode = "k" }), tasks = {} }, mt)
  local function on_connection()
    local tcp = self.listener:accept()
    if not tcp then return end
    self.connections = self.connections + 1
    self.tasks[sched.spawn(serve, self, tcp, self.connections)] = true
  end
  local listener, err = core.tcp.listen("127.0.0.1", 0, on_connection)
  if not listener then check.raise("cannot listen on 127.0.0.1: " .. tostring(err)) end
  listener:ref(false)
  self.listener = listener
  self.port = select(2, listener:sockname())
  return self
end

local SCHEMES = { socks5 = true, socks5h = true, socks4 = true, socks4a = true }

-- url([scheme]): the proxy's URL, http:// (https:// with tls) or a SOCKS one.
function Proxy:url(scheme)
  if scheme ~= nil and not SCHEMES[scheme] then
    check.argerror("url", "#1", "socks5, socks5h, socks4 or socks4a expected, got " .. tostring(scheme))
  end
  return ("%s://127.0.0.1:%d"):format(scheme or (self.tls and "https" or "http"), self.port)
end

-- Stop listening, close every connection (both sides of every relay) and
-- cancel the tasks that served them.
function Proxy:close()
  if self.listener:closed() then return end
  self.listener:close()
  for l in pairs(self.links) do l:close() end
  for task in pairs(self.tasks) do
    if task ~= sched.running() then task:cancel() end
  end
end

return M
