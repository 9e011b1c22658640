-- lurl.testing.server: a real HTTP/1.1 server on loopback, inside the runtime,
-- for specs (ours and users'). Routes are Lua functions
--   function(req) return { status =, headers =, body = } end
-- where req = { method, target, path, query, version, headers, body,
-- connection (the server's count of connections when this one came),
-- connection_requests (this request's number on its connection), tls (what
-- TLS negotiated, client certificate included, on an HTTPS server) }. A route
-- runs in the connection's task, so it may call lurl.sleep. The answer may ask
-- for deliberate misbehaviour:
--   delay = s            wait s seconds before the head
--   drip = { size =, interval = }   send the body (or the raw bytes) in
--                        pieces, pausing between
--   close_after = n      send the head and n body bytes, then close (FIN)
--   reset_after = n      the same, then reset the connection (RST)
--   content_length = n   announce n bytes whatever the body is
--   chunked = true       chunked transfer coding; bad_chunking = true breaks it
--   trailers = {...}     trailer fields (chunked only)
--   never = true         read the request and never answer
--   close = true         Connection: close after this response
--   raw = "bytes"        send these bytes instead of a formed response
--   reset = true         reset the connection (RST) without answering
--   drop = true          close the connection without answering (what a
--                        server does to a keep-alive connection it just
--                        timed out)
--   ws = function(ws, req) ... end   upgrade to a WebSocket and run with
--                        it (lurl.testing.ws: protocol, compress, max_msg_size)
--   error = "reset" | "disconnect" | "hang"   as lurl.testing.mock's: an
--                        RST, a close without answer, no answer at all
-- and shorthands as the mock takes them: a status (503), a body ("text"),
-- json = value, retry_after = n. lurl.testing.sequence(503, 503, "ok")
-- makes a route that answers each in turn (then the last for good).
--
-- What came is counted: server.requests in all, server:count(path) per
-- path, server.resets the HTTP/2 streams the client reset, and at least
-- the last `keep` (1000) requests are in server.received, each
-- with its headers, body and `at` (sched.now() when it was read), to check
-- attempts, bodies and Idempotency-Keys.
local core = require "lurl.core"
local check = require "lurl.check"
local h2 = require "lurl.testing.h2"
local sched = require "lurl.sched"
local wire = require "lurl.testing.wire"
local ws = require "lurl.testing.ws"

local M = {}

local Server = {}
local mt = { __name = "lurl.testing.server", __index = Server }
function mt.__tostring(s) return ("lurl.testing.server (%s)"):format(s:url("/")) end

-- ---- one connection ----

local Peer = {}
local peer_mt = { __index = Peer }

local function new_peer(server, tcp)
  local p = setmetatable({ server = server, tcp = tcp, chunks = {}, eof = false, requests = 0,
    number = server.connections, reader = wire.reader() }, peer_mt)
  tcp:read_start(function(data)
    if data then p.chunks[#p.chunks + 1] = data else p.eof = true end
    local w = p.waker
    if w then p.waker = nil; w() end
  end)
  return p
end

-- Next received bytes, or nil once the client closed.
function Peer:receive()
  while #self.chunks == 0 do
    if self.eof or self.tcp:closed() then return nil end
    sched.wait(function(wake) self.waker = wake end)
  end
  return table.remove(self.chunks, 1)
end

function Peer:send(data)
  if self.tcp:closed() then return false end
  local ok = sched.wait(function(wake)
    local r = self.tcp:write(data, wake)
    if r ~= false then wake(r) end
  end)
  return ok
end

-- What came behind the last request (the first bytes of the protocol it
-- upgraded to), taken from the reader and the unread chunks.
function Peer:take_rest()
  local rest = table.concat(self.reader.chunks) .. table.concat(self.chunks)
  self.reader.chunks, self.chunks = {}, {}
  return rest
end

-- Read one request; nil at the end of the connection or on a parse error.
function Peer:read_request()
  while true do
    local req = self.reader:take()
    if req then
      self.requests = self.requests + 1
      req.connection, req.connection_requests = self.number, self.requests
      req.tls = self.tcp:tls_info()
      return req
    end
    if req == false then return nil end
    local data = self:receive()
    if not data then return nil end
    self.reader:feed(data)
  end
end

function Peer:respond(req, resp)
  if resp.never then
    while self:receive() do end
    return false
  end
  if resp.delay then sched.sleep(resp.delay) end
  if resp.drop then return false end
  if resp.reset then
    self.tcp:close(true)
    return false
  end
  local head, bytes
  if resp.raw then head, bytes = "", resp.raw else head, bytes = wire.response(resp, req) end
  if #head > 0 and not self:send(head) then return false end
  if resp.drip and #bytes > 0 then
    local size = resp.drip.size or 1
    for i = 1, #bytes, size do
      if not self:send(bytes:sub(i, i + size - 1)) then return false end
      if i + size <= #bytes then sched.sleep(resp.drip.interval or 0.01) end
    end
  elseif #bytes > 0 then
    self:send(bytes)
  end
  if resp.reset_after then self.tcp:close(true); return false end
  if resp.close_after then return false end
  return not resp.close and (resp.raw ~= nil or req.keep_alive)
end

-- The mock's failure names, in this server's terms.
local ERRORS = { reset = { reset = true }, disconnect = { drop = true }, hang = { never = true } }

local function handle(server, req)
  local route = server.routes[req.path] or server.routes["*"]
  if not route then return { status = 404, body = "no route for " .. req.path } end
  local ok, resp = pcall(route, req)
  if ok and type(resp) == "table" and resp.error and not ERRORS[resp.error] then
    ok, resp = false, "unknown error '" .. tostring(resp.error) .. "' (reset, disconnect or hang)"
  end
  if not ok then
    io.stderr:write("lurl.testing.server: route ", req.path, " failed: ", tostring(resp), "\n")
    return { status = 500, body = tostring(resp), close = true }
  end
  if resp == nil then return { status = 204 } end
  if type(resp) == "table" and resp.error then return ERRORS[resp.error] end
  return wire.answer(resp)
end

-- Note a request in the counts and the bounded log.
local function log(server, req)
  server.requests = server.requests + 1
  server.counts[req.path] = (server.counts[req.path] or 0) + 1
  req.at = sched.now()
  local r = server.received
  r[#r + 1] = req
  -- trimmed (in place) to the last `keep` once twice that many came: a load
  -- of requests costs no copying each
  local n, keep = #r, server.keep
  if n >= 2 * keep then
    for i = 1, keep do r[i] = r[n - keep + i] end
    for i = n, keep + 1, -1 do r[i] = nil end
  end
end

-- The server side of the TLS handshake; a failure is noted in
-- server.tls_errors ({ message, ename }) and ends the connection.
local function accept_tls(server, tcp)
  local ok, err, ename = sched.wait(function(wake)
    local started, e, en = tcp:tls_start(server.ssl, nil, nil, wake)
    if not started then wake(nil, e, en) end
    -- server:close() cancels this task: the socket must not outlive it and
    -- keep the loop running
    return function() if not tcp:closed() then tcp:close() end end
  end)
  if ok then return true end
  server.tls_errors[#server.tls_errors + 1] = { err, ename }
  return false
end

-- A route's answer to req, the request noted first.
local function answer(server, req)
  log(server, req)
  return handle(server, req)
end

-- With http2, a connection that chose h2 by ALPN or opens with the client
-- preface is served by lurl.testing.h2; returns whether it was.
local function serve_h2(server, peer)
  if not server.http2 then return false end
  local first = peer:receive()
  if not first then return true end
  local tls = peer.tcp:tls_info()
  if (tls and tls.alpn == "h2") or first:sub(1, #h2.PREFACE) == h2.PREFACE then
    h2.serve(peer, first, function(req) return answer(server, req) end)
    return true
  end
  table.insert(peer.chunks, 1, first)
  return false
end

-- Requests one after the other until the connection ends.
local function serve_h1(server, peer)
  local tcp = peer.tcp
  while true do
    local req = peer:read_request()
    if not req then break end
    tcp:ref(true)
    peer.busy = true
    local a = answer(server, req)
    if a.ws then
      ws.accept(peer, req, a)
      break
    end
    local keep = peer:respond(req, a)
    peer.busy = false
    if tcp:closed() then break end
    tcp:ref(false)
    if not keep then break end
  end
end

local function serve(server, tcp)
  if server.ssl and not accept_tls(server, tcp) then
    server.tasks[sched.current()] = nil
    tcp:close()
    return
  end
  local peer = new_peer(server, tcp)
  server.peers[peer] = true
  -- an idle keep-alive connection must not keep a finished script running
  tcp:ref(false)
  if not serve_h2(server, peer) then serve_h1(server, peer) end
  server.peers[peer] = nil
  server.tasks[sched.current()] = nil
  tcp:close()
end

-- ---- the server ----

-- server{ routes = { [path] = fn, ["*"] = fallback }, host = "127.0.0.1",
--         port = 0, ssl = lurl.ssl_context{ server = true, ... }, keep = 1000,
--         http2 = false } or, on a Unix socket, server{ routes =, path = }.
-- With ssl it speaks HTTPS. With http2 it speaks HTTP/2 too
-- (lurl.testing.h2): to a client that opens with the preface (h2c with
-- prior knowledge) and over TLS when ALPN chose h2 (ssl's context must
-- list "h2" in alpn); HTTP/1.1 to the others.
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({ routes = opts.routes or {}, host = opts.host or "127.0.0.1", path = opts.path,
    ssl = opts.ssl, http2 = opts.http2, tls_errors = {}, requests = 0, connections = 0, resets = 0,
    peers = {}, tasks = {},
    counts = {}, received = {}, keep = opts.keep or 1000 }, mt)
  local function on_connection()
    local tcp = self.listener:accept()
    if not tcp then return end
    self.connections = self.connections + 1
    self.tasks[sched.spawn(serve, self, tcp)] = true
  end
  local listener, err
  if self.path then
    os.remove(self.path)
    listener, err = core.pipe.listen(self.path, on_connection)
  else
    listener, err = core.tcp.listen(self.host, opts.port or 0, on_connection)
  end
  if not listener then check.raise("cannot listen on " .. (self.path or self.host) .. ": " .. tostring(err)) end
  self.listener = listener
  listener:ref(false)
  if not self.path then
    local _, port = listener:sockname()
    self.port = port
  end
  return self
end

-- Connections open now.
function Server:open_connections()
  local n = 0
  for _ in pairs(self.peers) do n = n + 1 end
  return n
end

-- Close every connection that sits between requests, as a server's
-- keep-alive timeout does (a new connection is not idle before its first
-- request was answered); returns how many were closed.
function Server:close_idle()
  local n = 0
  for peer in pairs(self.peers) do
    if not peer.busy and peer.requests > 0 and not peer.tcp:closed() then
      peer.tcp:close()
      self.peers[peer] = nil
      local w = peer.waker -- its task sees the close and ends
      peer.waker = nil
      if w then w() end
      n = n + 1
    end
  end
  return n
end

-- Requests received for path (all paths without one).
function Server:count(path)
  if path == nil then return self.requests end
  return self.counts[path] or 0
end

function Server:route(path, fn)
  self.routes[path] = fn
  return self
end

function Server:url(path)
  -- on a Unix socket the host only names the origin
  local scheme = self.ssl and "https" or "http"
  if self.path then return scheme .. "://localhost" .. (path or "/") end
  local host = self.host:find(":", 1, true) and ("[" .. self.host .. "]") or self.host
  return ("%s://%s:%d%s"):format(scheme, host, self.port, path or "/")
end

-- Stop listening and drop every open connection (routes still running are
-- cancelled).
function Server:close()
  if self.listener:closed() then return end
  self.listener:close()
  if self.path then os.remove(self.path) end
  for peer in pairs(self.peers) do
    if not peer.tcp:closed() then peer.tcp:close() end
  end
  for task in pairs(self.tasks) do
    if task ~= sched.running() then task:cancel() end
  end
end

return M
