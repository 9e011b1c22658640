-- One request on a connection of the pool (HTTP/1.1, RFC 9112): the head
-- and body sent, the response head read and made into a lurl.response
-- whose body is read whole unless the request streams it; a pooled
-- connection the server had closed is replaced once when that is safe.
local body_mod = require "lurl.body"
local decompress = require "lurl.decompress"
local errors = require "lurl.errors"
local h1 = require "lurl.h1"
local response = require "lurl.response"
local sched = require "lurl.sched"

local M = {}

local function connection_error(kind, msg, ev, ctx)
  return errors.new(kind, msg,
    { url = ctx.url, method = ctx.method, errno = ev and ev[h1.ERRNO], cause = ev and ev[h1.MESSAGE] })
end

-- Map a read event that ended the exchange before a head arrived.
local function head_failure(ev, err, ctx)
  if not ev then return err end
  if ev[1] == "eof" then
    return connection_error("ServerDisconnectedError", "server disconnected before sending a response", ev, ctx)
  end
  local errno, message = ev[h1.ERRNO], tostring(ev[h1.MESSAGE])
  if errno == "ECONNRESET" then
    return connection_error("ClientConnectionResetError", "connection reset by peer", ev, ctx)
  end
  if errno == "ESSL" then
    -- TLS 1.3 servers reject a client certificate after the handshake
    return connection_error("ClientSSLError", "TLS error before the response: " .. message, ev, ctx)
  end
  -- HTTP/2: the stream was reset or the connection went away before the
  -- head (RFC 9113 sections 6.4, 6.8)
  if errno and errno:match("^H2_") then
    return connection_error("ServerDisconnectedError", "HTTP/2 stream ended before the response: " .. message, ev,
      ctx)
  end
  if errno == "HPE_INVALID_EOF_STATE" then
    return connection_error("ServerDisconnectedError", "server disconnected in the middle of the response head", ev,
      ctx)
  end
  if errno and errno:match("^HPE_") then
    return connection_error("ClientResponseError", "invalid HTTP response: " .. message, ev, ctx)
  end
  return connection_error("ClientOSError", message, ev, ctx)
end

local function read_head(c, deadline, ctx)
  local ev, err = c:read_event(deadline, ctx)
  -- a 100 that came after the body went anyway
  while ev and ev[1] == "continue" do ev, err = c:read_event(deadline, ctx) end
  if ev and ev[1] == "head" then return ev end
  -- a broken connection that never gave a byte may be a stale keep-alive
  -- one; an HTTP/2 stream the server refused was never processed at all
  return nil, head_failure(ev, err, ctx), ev ~= nil and not c.first_byte_at, ev and ev.refused
end

local function emit_sent(tr, ex)
  tr:emit("request_headers_sent", { method = ex.method, url = ex.url_string, headers = ex.headers:copy() })
  if type(ex.body) == "string" then
    tr:emit("request_chunk_sent", { method = ex.method, url = ex.url_string, chunk = ex.body })
  end
end

-- Send the request on c and read the head. Returns the head event, or nil,
-- err, replayable: whether the failure came before any response byte, so
-- the server cannot have acted on what it may have received.
-- Send data on c: true, or nil and the typed error. last: the end of an
-- HTTP/2 stream's body (an HTTP/1.1 connection ignores it).
-- The outcome of a send as true, or nil and the typed error.
local function sent(ctx, ok, err, ename)
  if ok then return true end
  if type(err) == "table" then return nil, err end
  return nil, connection_error(ename == "EPIPE" and "ServerDisconnectedError" or "ClientOSError",
    "cannot send request: " .. tostring(err), { "error", err, ename }, ctx)
end

local function send_on(c, data, deadline, ctx, last)
  return sent(ctx, c:send(data, deadline, ctx, last))
end

-- The file parts of a body straight from disk to the socket, when the
-- connection can (conn:send_file): file(path, size) -> true; false when it
-- cannot; nil, message, where ("open" or "read") when the file failed (for
-- lurl.body to name); nil and the typed error when the connection did.
local function file_sender(c, deadline, ctx)
  if not c.send_file then return nil end
  return function(path, size)
    local ok, err, ename, where = c:send_file(path, 0, size, deadline, ctx)
    if ok ~= nil then return ok end
    if where then return nil, err, where end
    return sent(ctx, ok, err, ename)
  end
end

-- How long a request sent with Expect: 100-continue waits for the 100
-- before its body goes anyway (curl's default).
local EXPECT_WAIT = 1

-- A streamed body (a file, a generator) part by part; chunked: in
-- HTTP/1.1's chunked framing. Its own function: the closures it makes
-- would keep LuaJIT from compiling the callers' paths without a body.
local function send_parts(c, ex, deadline, ctx, chunked)
  local function left() return (deadline:limit("write")) end
  local function send(data)
    local secs, _, why = deadline:limit("write")
    if secs == 0 then return nil, deadline:error(why, ctx) end
    return send_on(c, data, deadline, ctx)
  end
  return body_mod.send(ex.body, send, left, chunked, ex.p.declared, ctx, file_sender(c, deadline, ctx))
end

-- The body after a head that went alone.
local function send_body(c, ex, deadline, ctx)
  if type(ex.body) == "string" then return send_on(c, ex.body, deadline, ctx) end
  return send_parts(c, ex, deadline, ctx, ex.p.chunked)
end

-- Expect: 100-continue (RFC 9110 section 10.1.1): the head, then the body
-- once the server said 100 (or did not answer within EXPECT_WAIT); a final
-- answer instead means the body is not sent, and the connection, whose
-- request stays incomplete, is not reused.
local function send_expecting(c, ex, deadline, ctx)
  c.expecting = true
  local ok, err = send_on(c, h1.encode(ex, true), deadline, ctx)
  if not ok then return nil, err end
  local got
  got, err = c:await_continue(EXPECT_WAIT, deadline, ctx)
  if not got then return nil, err end
  if got == "final" then
    c.reusable = false
    return true
  end
  return send_body(c, ex, deadline, ctx)
end

-- HTTP/2 (RFC 9113 section 8.1): the head as a HEADERS frame, the body as
-- DATA frames, its end as END_STREAM; no chunked framing, no 100 to wait.
local function send_h2(c, ex, deadline, ctx)
  local body = ex.body
  local ok, err, ename = c:open(ex, body == nil)
  if not ok then return nil, connection_error("ClientOSError", "cannot send request: " .. tostring(err),
    { "error", err, ename }, ctx) end
  if body == nil then return true end
  if type(body) == "string" then return send_on(c, body, deadline, ctx, true) end
  ok, err = send_parts(c, ex, deadline, ctx, false)
  if not ok then return nil, err end
  return send_on(c, "", deadline, ctx, true)
end

-- The head, then a streamed body part by part.
local function send_request(c, ex, deadline, ctx)
  if c.h2 then return send_h2(c, ex, deadline, ctx) end
  if ex.p.expect100 then return send_expecting(c, ex, deadline, ctx) end
  local ok, err = send_on(c, ex.bytes or h1.encode(ex), deadline, ctx)
  if not ok or type(ex.body) ~= "table" then return ok, err end
  return send_body(c, ex, deadline, ctx)
end

local function exchange(c, ex, deadline)
  local ctx, tr = ex.context, ex.trace
  c:begin(ex.method == "HEAD", ex.read_bufsize)
  ex.t_send = sched.now()
  deadline:enter("send", ex.t_send)
  local ok, err = send_request(c, ex, deadline, ctx)
  ex.t_sent = sched.now()
  deadline:enter("head", ex.t_sent)
  if not ok then
    -- the peer may have answered and closed before reading everything
    -- (RFC 9112 section 9.5: a client sending a body watches for an
    -- answer). When the peer reset the connection, what it sent before is
    -- read first: the failure of a write can be told before the answer that
    -- came ahead of it has been read off the socket, and the reset ends the
    -- read side too, so this waits for nothing else.
    local ev = c.queue[c.queue.head]
    if (ev and ev[1] == "head") or err.errno == "ECONNRESET" or err.errno == "EPIPE" then
      local head = read_head(c, deadline, ctx)
      if head then return head end
    end
    return nil, err, not c.first_byte_at and err.kind ~= "TimeoutError" and err.kind ~= "ClientPayloadError"
  end
  if tr then emit_sent(tr, ex) end
  return read_head(c, deadline, ctx)
end

-- resp:_release(ok) once its body is done (ok) or abandoned.
local function release(resp, ok)
  local c = resp._conn
  local now = sched.now()
  resp._exchange.t_end = now
  resp._connector:release(c, ok and c:can_reuse(resp._keep_alive), now)
end

-- The decoders for a response's Content-Encoding (false: none), when the
-- request decodes and the response has a body (RFC 9110 sections 6.4.1 and
-- 9.3.2: none for HEAD, 204 and 304); or false and why they cannot be made.
local function decoder_for(ex, status, content_encoding)
  if not content_encoding or not ex.decode or ex.method == "HEAD" or status == 204 or status == 304 then
    return false
  end
  local chain, err = decompress.chain(content_encoding, ex.max_decompressed)
  return chain or false, err
end

-- The head event's positions, as upvalues: make_response runs once per
-- response, and a field of h1 would be looked up each time.
local STATUS, REASON, MAJOR, MINOR, FIELDS = h1.STATUS, h1.REASON, h1.MAJOR, h1.MINOR, h1.FIELDS
local KEEP_ALIVE, SETS_COOKIES, CODINGS = h1.KEEP_ALIVE, h1.SETS_COOKIES, h1.CODINGS

local function make_response(session, ex, head, c, deadline)
  local status, reason, major, minor = head[STATUS], head[REASON], head[MAJOR], head[MINOR]
  local connector = session.connector
  local decode, refused = decoder_for(ex, status, head[CODINGS])
  local resp = response.new {
    status = status, reason = reason, _major = major, _minor = minor,
    method = ex.method, url = ex.url_string,
    _fields_block = head[FIELDS], -- resp.headers is made from it when first read
    _conn = c, _exchange = ex, _trace = ex.trace, _release = release, _connector = connector,
    -- reused only when the request and the response both keep it (lurl.prepare's keeps_alive)
    _keep_alive = head[KEEP_ALIVE] and ex.p.keep_alive,
    _tls = c.tls or false, ip = c.ip, _sets_cookies = head[SETS_COOKIES] or false,
    _decode = decode,
    _max_body = ex.max_body, _charset_resolver = session.fallback_charset_resolver,
    -- the body state fields, present from the start so the table never grows
    ok = false, _body = false, _eof = false, _error = false, _pos = false, _pending = false, _ppos = false, _gc = false,
    _received = 0, _total = 0,
    -- total covers a streamed body too, until it is read, released or closed (aiohttp)
    _deadline = deadline,
  }
  ex.t_first = c.first_byte_at
  if refused then
    resp._eof = true
    response.fail(resp, refused)
    return resp
  end
  if head.done then
    -- the whole response came with its head: no body events to wait for
    local body = head.body
    if body then response.received(resp, body) end
    resp._eof = true
    if not resp._decode then
      resp._body = body or ""
    elseif not response.decode_whole(resp, body) then
      return resp
    end
    resp._total = #resp._body
    if response.too_big(resp, #resp._body) then return resp end
    resp:_finish(true)
  end
  return resp
end

-- A body that only the end of the connection delimits (RFC 9112 section
-- 6.3, rule 8): no Content-Length, not chunked, and a status and method
-- that have a body.
local function close_delimited(resp, ex)
  if ex.method == "HEAD" or resp.status == 204 or resp.status == 304 or resp.status < 200 then return false end
  local h = resp.headers
  local te = h["transfer-encoding"]
  return not h["content-length"] and not (te and te:lower():find("chunked", 1, true))
end

-- read_until_eof = false (aiohttp): such a body is taken as empty and its
-- connection closed, instead of reading until the server closes it.
local function skip_until_eof(resp)
  resp._body, resp._eof = "", true
  resp:_finish(false)
  return resp
end

-- Close a streamed response's connection if the script drops it unread.
local function guard(resp)
  local proxy = newproxy(true)
  getmetatable(proxy).__gc = function() resp:_finish(false) end
  resp._gc = proxy
  return resp
end

-- A request that failed on a reused connection before any response byte
-- (the server closed it while it sat idle) is sent once more on a new
-- connection, when that is safe: the method is idempotent, or the socket
-- refused the request so none of it reached the server.
-- refused: an HTTP/2 stream above a GOAWAY's last id or reset with
-- REFUSED_STREAM, which the server never processed, so any method may go
-- again (RFC 9113 section 8.7).
-- A stale connection's request goes again once; a refused one up to
-- MAX_REFUSED times (each GOAWAY of a server that sends one every few
-- requests refuses the streams above its last id), within the deadline.
local MAX_REFUSED = 4

local function may_replay(connector, ex, c, reused, replayable, refused)
  local body = ex.body
  if type(body) == "table" and not body.replayable then return false end
  if refused then
    ex.refused = (ex.refused or 0) + 1
    return ex.refused <= MAX_REFUSED
  end
  return not ex.fresh and reused and replayable and connector.retry_stale and (h1.IDEMPOTENT[ex.method] or c.unsent)
end

-- One try: a connection and the exchange of the request on it. Returns the
-- connection and the head event, or nil, err and whether a retry on a new
-- connection is allowed (may_replay).
local function attempt(session, ex, deadline)
  local connector = session.connector
  local c, reused = connector:acquire(ex, deadline)
  if not c then return nil, reused end
  ex.reused = reused
  local ok, head, herr, replayable, refused = pcall(exchange, c, ex, deadline)
  if ok and head then return c, head end
  -- a timeout, cancellation or failure leaves the connection in an unknown state
  connector:release(c, false)
  if not ok then error(head, 0) end
  -- a request sent again goes anywhere but the HTTP/2 connection that failed it
  ex.avoid = c.h2 and c.conn or false
  return nil, herr, may_replay(connector, ex, c, reused, replayable, refused)
end

local function perform(session, ex, deadline)
  local connector = session.connector
  local c, head, retry = attempt(session, ex, deadline)
  while not c do
    if not retry then return nil, head end
    ex.fresh = true
    local tr = ex.trace
    if tr then tr:emit("request_stale_retry", { method = ex.method, url = ex.url_string, exception = head }) end
    c, head, retry = attempt(session, ex, deadline)
  end
  local resp = make_response(session, ex, head, c, deadline)
  -- the body phase starts with the response (its first byte: no clock read)
  deadline:enter("body", ex.t_first or nil)
  if resp._eof then -- it came whole with its head
    if resp._error then return nil, resp._error end
    return resp
  end
  if ex.read_until_eof == false and close_delimited(resp, ex) then return skip_until_eof(resp) end
  if ex.stream then return guard(resp) end
  local body_ok, body, berr = pcall(response.read_all, resp)
  if not body_ok then
    connector:release(c, false)
    error(body, 0)
  end
  if not body then return nil, berr end
  return resp
end

-- new(session, p, opts, headers, bytes, tr) -> the exchange record
-- of one hop: what lurl.prepare made (p, which the rarely read fields come
-- from) with the hop's own headers and encoded bytes (the cookies added),
-- the options that shape the exchange, the error context and the trace,
-- and the record of its timings (t_*) that resp.timings reads. The
-- connector takes it too (key, url, port, ssl, proxy, fresh, sizes). The
-- fields of every request are here from the start, 31 of them, so that the
-- table is made once at 32 slots; those of opening a connection (queue,
-- dns, connect, handshake, proxy_time) and of a retry (avoid, refused)
-- are added when that happens.
function M.new(session, p, opts, headers, bytes, tr)
  local method = p.method
  local decode = opts.auto_decompress
  if decode == nil then decode = session.auto_decompress end
  return {
    method = method, url = p.u, url_string = p.url_string, target = p.target, version = p.version, p = p,
    proxy = p.proxy, http2 = p.http2, body = p.body, stream = opts.stream,
    headers = headers, bytes = bytes, port = p.port, key = p.key, ssl = p.ssl, decode = decode,
    max_body = opts.max_body_size or session.max_body_size,
    max_decompressed = opts.max_decompressed_size or session.max_decompressed_size,
    read_until_eof = opts.read_until_eof,
    max_line_size = opts.max_line_size or session.max_line_size,
    max_field_size = opts.max_field_size or session.max_field_size,
    read_bufsize = opts.read_bufsize or session.read_bufsize,
    context = { url = p.url_string, method = method }, trace = tr or false, reused = false, fresh = false,
    t_start = sched.now(), t_send = 0, t_sent = 0, t_first = false, t_end = false,
  }
end

-- perform(session, ex, deadline) -> the response, its body read unless
-- ex.stream; or nil and the error.
M.perform = perform

-- The head of an upgrade's answer, read off the raw stream; a failure as
-- a read event would have told it.
local function upgrade_head(stream, deadline, ctx)
  local ev, extra, ename = h1.read_head(stream, deadline, "read", ctx, true)
  if ev then return ev, extra end
  if type(extra) == "table" then return nil, extra end
  return nil, head_failure(ename == "EOF" and { "eof" } or { "error", extra, ename }, nil, ctx)
end

-- upgrade(session, ex, deadline) -> stream, head event, the bytes behind
-- the head, what TLS negotiated; or nil, err. An exchange that leaves
-- HTTP/1.1 after the answer (RFC 9110 section 7.8; a WebSocket opening
-- handshake, RFC 6455 section 4.1): on a new connection, which leaves the
-- pool at once (the new protocol owns it; it is never reused for HTTP).
-- The caller owns the stream and closes it.
function M.upgrade(session, ex, deadline)
  local connector = session.connector
  ex.fresh = true
  local c, err = connector:acquire(ex, deadline)
  if not c then return nil, err end
  local tls = c.tls
  local stream = connector:detach(c)
  ex.t_send = sched.now()
  deadline:enter("send", ex.t_send)
  local ok, e, en = stream:write(ex.bytes or h1.encode(ex))
  if ok == nil then
    stream:close()
    return nil, head_failure({ "error", e, en }, nil, ex.context)
  end
  ex.t_sent = sched.now()
  deadline:enter("head", ex.t_sent)
  local head, extra = upgrade_head(stream, deadline, ex.context)
  if not head then
    stream:close()
    return nil, extra
  end
  ex.t_first = sched.now()
  return stream, head, extra, tls
end

return M
