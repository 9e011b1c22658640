-- ClientSession: shared headers, timeouts and the connection pool; builds each
-- request, runs the HTTP/1.1 exchange and wraps the answer in a response.
local auth = require "lurl.auth"
local body_mod = require "lurl.body"
local cjson = require "cjson"
local codec = require("lurl.core").codec
local core = require "lurl.core"
local connector_mod = require "lurl.connector"
local cookies = require "lurl.cookies"
local decompress = require "lurl.decompress"
local formdata = require "lurl.formdata"
local errors = require "lurl.errors"
local middleware = require "lurl.middleware"
local headers_mod = require "lurl.headers"
local response = require "lurl.response"
local sched = require "lurl.sched"
local timeout = require "lurl.timeout"
local tls = require "lurl.tls"
local trace = require "lurl.trace"
local url = require "lurl.url"

local M = {}

M.USER_AGENT = "lurl/" .. core.version
-- Only what the runtime decodes is advertised.
M.ACCEPT_ENCODING = decompress.ACCEPT

local Session = {}
local mt = { __name = "lurl.session", __index = Session }
function mt.__tostring(s) return ("lurl.session (%s)"):format(s.closed and "closed" or "open") end

local SESSION_OPTIONS = {
  base_url = "string", headers = "table", timeout = "any", raise_for_status = "any",
  skip_auto_headers = "table", json_serialize = "function", connector = "table",
  connector_owner = "boolean", max_line_size = "number", max_field_size = "number",
  trace_configs = "table", cookie_jar = "any", cookies = "table", auth = "any",
  auto_decompress = "boolean", max_decompressed_size = "number", max_body_size = "number",
  fallback_charset_resolver = "function", middlewares = "table",
}

local REQUEST_OPTIONS = {
  params = "any", headers = "table", data = "any", json = "any", timeout = "any",
  raise_for_status = "any", stream = "boolean", skip_auto_headers = "table", chunked = "boolean",
  max_line_size = "number", max_field_size = "number", trace_ctx = "any",
  ssl = "any", server_hostname = "string", allow_redirects = "boolean", max_redirects = "number",
  cookies = "table", auth = "any", auto_decompress = "boolean", max_decompressed_size = "number",
  max_body_size = "number", compress = "string", expect100 = "boolean", max_decompressed_size = "number",
  read_until_eof = "boolean", middlewares = "table",
}

local NO_OPTIONS = {}
local NO_STRIP = {}

local function check_options(fname, opts, known)
  if opts == nil then return NO_OPTIONS end
  return errors.check_options(fname, "#2", opts, known, 3)
end

local function check_rfs(fname, v)
  if v ~= nil and type(v) ~= "boolean" and type(v) ~= "function" then
    errors.argerror(fname, "'raise_for_status'", "boolean or function expected", 3)
  end
end

local function lower_set(list)
  local set = {}
  for _, name in ipairs(list or {}) do set[name:lower()] = true end
  return set
end

local function check_auth(fname, v, level)
  if v ~= nil and not auth.is(v) then
    errors.argerror(fname, "'auth'", "lurl.basic_auth expected, got " .. type(v), level + 1)
  end
end

local function check_trace_configs(list)
  if list == nil then return nil end
  for i, tc in ipairs(list) do
    if not trace.is(tc) then errors.argerror("session", "'trace_configs'", "item " .. i .. " is not a lurl.trace_config", 3) end
  end
  return #list > 0 and list or nil
end

-- lurl.session{ base_url, headers, timeout, raise_for_status, skip_auto_headers,
--               json_serialize, connector, connector_owner, trace_configs }
function M.new(opts)
  opts = check_options("session", opts, SESSION_OPTIONS)
  check_rfs("session", opts.raise_for_status)
  check_auth("session", opts.auth, 2)
  local base
  if opts.base_url then
    local b, err = url.parse(opts.base_url)
    if not b or not url.check_http(b, opts.base_url) then
      errors.argerror("session", "'base_url'", "invalid URL '" .. opts.base_url .. "'" .. (err and (": " .. err.message) or ""), 2)
    end
    base = b
  end
  local conn = opts.connector
  if conn ~= nil and not connector_mod.is(conn) then errors.argerror("session", "'connector'", "lurl.connector expected", 2) end
  local ok, hdrs = pcall(headers_mod.new, opts.headers)
  if not ok then errors.argerror("session", "'headers'", hdrs, 2) end
  local jar = opts.cookie_jar
  if jar ~= nil and not cookies.is(jar) then
    errors.argerror("session", "'cookie_jar'", "lurl.cookie_jar expected, got " .. type(jar), 2)
  end
  jar = jar or cookies.jar()
  -- session-wide cookies go to every host (aiohttp's shared cookies)
  if opts.cookies then jar:update_cookies(opts.cookies) end
  return setmetatable({
    base_url = base,
    headers = hdrs,
    timeout = timeout.for_session(opts.timeout),
    raise_for_status = opts.raise_for_status or false,
    skip_auto_headers = lower_set(opts.skip_auto_headers),
    json_serialize = opts.json_serialize or cjson.encode,
    connector = conn or connector_mod.new(),
    connector_owner = conn == nil or opts.connector_owner ~= false,
    max_line_size = opts.max_line_size or 8190,
    max_field_size = opts.max_field_size or 8190,
    trace_configs = check_trace_configs(opts.trace_configs),
    cookie_jar = jar,
    auth = opts.auth,
    auto_decompress = opts.auto_decompress ~= false,
    max_decompressed_size = opts.max_decompressed_size,
    max_body_size = opts.max_body_size or false,
    fallback_charset_resolver = opts.fallback_charset_resolver or false,
    -- printable (tostring)
    middlewares = middleware.list(opts.middlewares, "session", 2),
    prepared = {},
    closed = false,
  }, mt)
end

-- ---- building the request ----

local function build_url(self, raw, params)
  local u, err
  if type(raw) ~= "string" then errors.argerror("request", "#2", "URL string expected, got " .. type(raw), 5) end
  if self.base_url and not raw:match("^[%a][%w+.-]*:") then
    u, err = url.join(self.base_url, raw)
  else
    u, err = url.parse(raw)
  end
  if not u then return nil, err end
  u, err = url.check_http(u, raw)
  if not u then return nil, err end
  if params ~= nil then
    if type(params) ~= "string" and type(params) ~= "table" then
      errors.argerror("request", "'params'", "table or string expected, got " .. type(params), 5)
    end
    local ok, res = pcall(url.with_params, u, params)
    if not ok then errors.argerror("request", "'params'", res, 5) end
    u = res
  end
  u.fragment = nil
  return u
end

local function build_body(self, opts)
  if opts.data ~= nil and opts.json ~= nil then
    errors.argerror("request", "#2", "'data' and 'json' cannot be used together", 5)
  end
  if opts.json ~= nil then return self.json_serialize(opts.json), "application/json" end
  local data = opts.data
  if data == nil then return nil end
  if type(data) == "string" then return data, nil end
  local streamed = body_mod.from_data(data)
  if streamed then return streamed, nil end
  if formdata.is(data) then
    local ok, b = pcall(data.body, data)
    if not ok then errors.argerror("request", "'data'", b, 5) end
    if #b.parts == 1 and type(b.parts[1]) == "string" then return b.parts[1], b.content_type end
    return body_mod.stream(b.parts), b.content_type
  end
  if type(data) == "table" then
    local ok, res = pcall(url.encode_form, data)
    if not ok then errors.argerror("request", "'data'", res, 5) end
    return res, "application/x-www-form-urlencoded"
  end
  errors.argerror("request", "'data'", "string, table, lurl.formdata, lurl.file or generator function expected, got "
    .. type(data), 5)
end

-- compress = "gzip" | "deflate": the body compressed with Content-Encoding
-- (RFC 9110 section 8.4). A string at once (its length stays known); a
-- streamed body as it goes out, chunked.
local CODINGS = { gzip = true, deflate = true }

local function compress_body(body, opts)
  local coding = opts.compress
  if not coding or not body then return body end
  if not CODINGS[coding] then
    errors.argerror("request", "'compress'", "\"gzip\" or \"deflate\" expected, got " .. coding, 5)
  end
  if type(body) == "string" then
    local enc = codec.encoder(coding)
    return enc:feed(body) .. enc:finish()
  end
  return body_mod.compressed(body, coding)
end

-- The framing of a streamed body (RFC 9112 section 6): the Content-Length
-- the script set, else its known length, else chunked (always with
-- chunked = true). Returns whether it is chunked and the length declared.
local function frame(h, streamed, chunked)
  local given = h:get("Content-Length")
  if given then
    -- RFC 9110 section 8.6: 1*DIGIT, nothing else
    local n = given:match("^%d+$") and tonumber(given)
    if not n then
      errors.argerror("request", "'headers'", "Content-Length must be a byte count, got " .. given, 6)
    end
    if chunked then errors.argerror("request", "'chunked'", "cannot be combined with a Content-Length header", 6) end
    return false, n
  end
  if chunked or not streamed.length then
    h:set("Transfer-Encoding", "chunked")
    return true, nil
  end
  h:set("Content-Length", tostring(streamed.length))
  return false, streamed.length
end

local METHODS_WITH_BODY = { POST = true, PUT = true, PATCH = true }

-- Add a header the script did not set itself nor ask to skip.
local function auto(h, skip, name, value)
  if not skip[name:lower()] and not h:has(name) then h:add(name, value) end
end

local function build_headers(self, method, u, opts, body, ctype, creds)
  local h = headers_mod.new(self.headers)
  if opts.headers then
    local ok, err = pcall(h.update, h, opts.headers)
    if not ok then errors.argerror("request", "'headers'", err, 5) end
  end
  local skip = self.skip_auto_headers
  if opts.skip_auto_headers then skip = setmetatable(lower_set(opts.skip_auto_headers), { __index = skip }) end
  auto(h, skip, "Host", url.host_header(u))
  auto(h, skip, "User-Agent", M.USER_AGENT)
  auto(h, skip, "Accept", "*/*")
  local decoding = opts.auto_decompress
  if decoding == nil then decoding = self.auto_decompress end
  -- advertise exactly what is decoded: nothing when the script takes the bytes as they come
  if decoding then auto(h, skip, "Accept-Encoding", M.ACCEPT_ENCODING) end
  local chunked, declared = false, nil
  if opts.expect100 and body then h:set("Expect", "100-continue") end
  if opts.compress and body then
    if h:has("Content-Encoding") then
      errors.argerror("request", "'compress'", "cannot be combined with a Content-Encoding header", 5)
    end
    h:set("Content-Encoding", opts.compress)
  end
  if type(body) == "table" then
    chunked, declared = frame(h, body, opts.chunked)
    if ctype then auto(h, skip, "Content-Type", ctype) end
  elseif body then
    h:set("Content-Length", tostring(#body))
    if ctype then auto(h, skip, "Content-Type", ctype) end
  elseif METHODS_WITH_BODY[method] then
    h:set("Content-Length", "0")
  end
  if self.connector.force_close then h:set("Connection", "close") end
  for _, name in ipairs(opts.strip or NO_STRIP) do h:remove(name) end
  if creds then
    if h:has("Authorization") then
      errors.argerror("request", "'auth'", "cannot be combined with an Authorization header", 5)
    end
    h:set("Authorization", creds:encode())
  end
  return h, chunked, declared
end

local function origin(u)
  return u.scheme .. "://" .. url.host_header(u)
end

-- The credentials of a request, in aiohttp's order: its auth option, those
-- in its URL (which are taken out of it), or the session's auth, which goes
-- only to the base_url's origin when the session has a base_url. auth =
-- false marks a redirect to another origin: only credentials in its
-- Location count there (aiohttp would send the session's again; they stay
-- behind). Returns the URL and the credentials, or nil and
-- InvalidUrlClientError.
local function credentials(self, u, opts)
  local from_url, err = auth.from_url(u)
  if err then return nil, err end
  if from_url then u = url.strip_userinfo(u) end
  local own = opts.auth
  if from_url and opts.redirected then return u, from_url end -- the server's Location names them
  if own and from_url then
    errors.argerror("request", "'auth'", "cannot be combined with credentials in the URL", 5)
  end
  if own then return u, own end
  if from_url or own == false then return u, from_url end
  local base = self.base_url
  if self.auth and (not base or origin(base) == origin(u)) then return u, self.auth end
  return u, nil
end

-- ---- the exchange ----

local function connection_error(kind, msg, ev, ctx)
  return errors.new(kind, msg, { url = ctx.url, method = ctx.method, errno = ev and ev[3], cause = ev and ev[2] })
end

-- Map a read event that ended the exchange before a head arrived.
local function head_failure(ev, err, ctx)
  if not ev then return err end
  local kind = ev[1]
  if kind == "eof" then
    return connection_error("ServerDisconnectedError", "server disconnected before sending a response", ev, ctx)
  end
  if ev[3] == "ECONNRESET" then
    return connection_error("ClientConnectionResetError", "connection reset by peer", ev, ctx)
  end
  if ev[3] == "ESSL" then
    -- TLS 1.3 servers reject a client certificate after the handshake
    return connection_error("ClientSSLError", "TLS error before the response: " .. tostring(ev[2]), ev, ctx)
  end
  if ev[3] and ev[3]:match("^HPE_") then
    if ev[3] == "HPE_INVALID_EOF_STATE" then
      return connection_error("ServerDisconnectedError", "server disconnected in the middle of the response head", ev, ctx)
    end
    return connection_error("ClientResponseError", "invalid HTTP response: " .. tostring(ev[2]), ev, ctx)
  end
  return connection_error("ClientOSError", tostring(ev[2]), ev, ctx)
end

local function read_head(c, deadline, ctx)
  local ev, err = c:read_event(deadline, ctx)
  -- a 100 that came after the body went anyway
  while ev and ev[1] == "continue" do ev, err = c:read_event(deadline, ctx) end
  if ev and ev[1] == "head" then return ev end
  -- a broken connection that never gave a byte may be a stale keep-alive one
  return nil, head_failure(ev, err, ctx), ev ~= nil and not c.first_byte_at
end

local function emit_sent(tr, req)
  tr:emit("request_headers_sent", { method = req.method, url = req.url_string, headers = req.headers:copy() })
  if type(req.body) == "string" then
    tr:emit("request_chunk_sent", { method = req.method, url = req.url_string, chunk = req.body })
  end
end

local function encode(req, head_only)
  -- a streamed body follows the head, and so does any body that waits for 100
  local body = not head_only and type(req.body) == "string" and req.body or nil
  local bytes, why = core.h1.encode(req.method .. " " .. url.target(req.url) .. " HTTP/1.1", req.headers:flat(), body)
  if not bytes then errors.argerror("request", "'headers'", why, 6) end
  return bytes
end

-- Send the request on c and read the head. Returns the head event, or nil,
-- err, replayable: whether the failure came before any response byte, so
-- the server cannot have acted on what it may have received.
-- Send data on c: true, or nil and the typed error.
local function send_on(c, data, deadline, ctx)
  local ok, err, ename = c:send(data, deadline, ctx)
  if ok then return true end
  if type(err) == "table" then return nil, err end
  return nil, connection_error(ename == "EPIPE" and "ServerDisconnectedError" or "ClientOSError",
    "cannot send request: " .. tostring(err), { "error", err, ename }, ctx)
end

-- How long a request sent with Expect: 100-continue waits for the 100
-- before its body goes anyway (curl's default).
local EXPECT_WAIT = 1

-- The body after a head that went alone.
local function send_body(c, req, deadline, ctx)
  if type(req.body) == "string" then return send_on(c, req.body, deadline, ctx) end
  local function left() return (deadline:limit("write")) end
  local function send(data)
    local secs, _, why = deadline:limit("write")
    if secs == 0 then return nil, deadline:error(why, ctx) end
    return send_on(c, data, deadline, ctx)
  end
  return body_mod.send(req.body, send, left, req.chunked, req.declared, ctx)
end

-- Expect: 100-continue (RFC 9110 section 10.1.1): the head, then the body
-- once the server said 100 (or did not answer within EXPECT_WAIT); a final
-- answer instead means the body is not sent, and the connection, whose
-- request stays incomplete, is not reused.
local function send_expecting(c, req, deadline, ctx)
  c.expecting = true
  local ok, err = send_on(c, encode(req, true), deadline, ctx)
  if not ok then return nil, err end
  local got
  got, err = c:await_continue(EXPECT_WAIT, deadline, ctx)
  if not got then return nil, err end
  if got == "final" then
    c.reusable = false
    return true
  end
  return send_body(c, req, deadline, ctx)
end

-- The head, then a streamed body part by part.
local function send_request(c, req, deadline, ctx)
  if req.expect100 then return send_expecting(c, req, deadline, ctx) end
  local ok, err = send_on(c, req.bytes or encode(req), deadline, ctx)
  if not ok or type(req.body) ~= "table" then return ok, err end
  return send_body(c, req, deadline, ctx)
end

local function exchange(c, req, deadline, ctx, tr)
  c:begin(req.method == "HEAD")
  req.t_send = sched.now()
  local ok, err = send_request(c, req, deadline, ctx)
  req.t_sent = sched.now()
  if not ok then
    -- the peer may have answered and closed before reading everything
    local ev = c.queue[c.queue.head]
    if ev and ev[1] == "head" then return read_head(c, deadline, ctx) end
    return nil, err, not c.first_byte_at and err.kind ~= "TimeoutError" and err.kind ~= "ClientPayloadError"
  end
  if tr then emit_sent(tr, req) end
  return read_head(c, deadline, ctx)
end

-- resp:_release(ok) once its body is done (ok) or abandoned.
local function release(resp, ok)
  local c = resp._conn
  local now = sched.now()
  resp._stamps.t_end = now
  resp._connector:release(c, ok and c:can_reuse(resp._keep_alive), now)
end

-- The decoders for a response's Content-Encoding (false: none), when the
-- request decodes and the response has a body (RFC 9110 sections 6.4.1 and
-- 9.3.2: none for HEAD, 204 and 304).
local function decoder_for(self, req, status, content_encoding)
  if not content_encoding or not req.decode or req.method == "HEAD" or status == 204 or status == 304 then
    return false
  end
  return decompress.chain(content_encoding, req.max_decompressed) or false
end

local function make_response(self, req, head, c, deadline, tr)
  local status, reason, major, minor, block, keep_alive = head[2], head[3], head[4], head[5], head[6], head[7]
  local connector = self.connector
  local resp = response.new {
    status = status, reason = reason, _major = major, _minor = minor,
    method = req.method, url = req.url_string,
    _fields_block = block, -- resp.headers is made from it when first read
    _conn = c, _stamps = req, _trace = tr or false, _release = release, _connector = connector,
    _keep_alive = keep_alive, _tls = c.tls or false, _sets_cookies = head[8] or false,
    _decode = decoder_for(self, req, status, head[9]),
    _max_body = req.max_body, _charset_resolver = self.fallback_charset_resolver,
    -- the body state fields, present from the start so the table never grows
    _body = false, _eof = false, _error = false, _pos = false, _pending = false, _ppos = false, _gc = false,
    -- a streamed body is bounded by sock_read only, as in aiohttp
    _deadline = req.stream and timeout.start(timeout.merge(deadline.t, { total = false })) or deadline,
  }
  req.t_first = c.first_byte_at
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
    if response.too_big(resp, #resp._body) then return resp end
    resp:_finish(true)
  end
  return resp
end

-- A body that only the end of the connection delimits (RFC 9112 section
-- 6.3, rule 8): no Content-Length, not chunked, and a status and method
-- that have a body.
local function close_delimited(resp, req)
  if req.method == "HEAD" or resp.status == 204 or resp.status == 304 or resp.status < 200 then return false end
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

-- RFC 9110 section 9.2.2
local IDEMPOTENT = { GET = true, HEAD = true, OPTIONS = true, TRACE = true, PUT = true, DELETE = true }

-- A request that failed on a reused connection before any response byte
-- (the server closed it while it sat idle) is sent once more on a new
-- connection, when that is safe: the method is idempotent, or the socket
-- refused the request so none of it reached the server.
local function may_replay(connector, req, c, reused, replayable)
  local body = req.body
  return reused and replayable and connector.retry_stale and (IDEMPOTENT[req.method] or c.unsent)
    and (type(body) ~= "table" or body.replayable)
end

-- One try: a connection and the exchange of the request on it. Returns the
-- connection and the head event, or nil, err and whether a retry on a new
-- connection is allowed (may_replay).
local function attempt(self, req, deadline, ctx, tr)
  local connector = self.connector
  local c, reused = connector:acquire(req.key, req.url.host, req.port, deadline, req)
  if not c then return nil, reused end
  req.reused = reused
  local ok, head, herr, replayable = pcall(exchange, c, req, deadline, ctx, tr)
  if ok and head then return c, head end
  -- a timeout, cancellation or failure leaves the connection in an unknown state
  connector:release(c, false)
  if not ok then error(head, 0) end
  return nil, herr, not req.fresh and may_replay(connector, req, c, reused, replayable)
end

local function perform(self, req, deadline, ctx, tr)
  local connector = self.connector
  local c, head, retry = attempt(self, req, deadline, ctx, tr)
  if not c then
    if not retry then return nil, head end
    req.fresh = true
    if tr then tr:emit("request_stale_retry", { method = req.method, url = req.url_string, exception = head }) end
    c, head = attempt(self, req, deadline, ctx, tr)
    if not c then return nil, head end
  end
  local resp = make_response(self, req, head, c, deadline, tr)
  if resp._eof then -- it came whole with its head
    if resp._error then return nil, resp._error end
    return resp
  end
  if req.read_until_eof == false and close_delimited(resp, req) then return skip_until_eof(resp) end
  if req.stream then return guard(resp) end
  local body_ok, body, berr = pcall(response.read_all, resp)
  if not body_ok then
    connector:release(c, false)
    error(body, 0)
  end
  if not body then return nil, berr end
  return resp
end

local function apply_raise_for_status(resp, rfs)
  if not rfs then return resp end
  if type(rfs) == "function" then
    local r, err = rfs(resp)
    if r == nil and err ~= nil then return nil, err end
    return resp
  end
  return resp:raise_for_status()
end

-- What a request needs before it is sent: { u, url_string, port, key,
-- headers, body, bytes (the encoded request, when it can be reused) }, or
-- nil and an InvalidURL error.
local request -- Session:request without the method check, defined below

local function prepare(self, method, raw_url, opts)
  local u, err = build_url(self, raw_url, opts.params)
  if not u then return nil, err end
  local creds
  u, creds = credentials(self, u, opts)
  if not u then return nil, creds end
  local body, ctype = build_body(self, opts)
  body = compress_body(body, opts)
  if opts.chunked and type(body) == "string" then body = body_mod.stream({ body }) end
  local headers, chunked, declared = build_headers(self, method, u, opts, body, ctype, creds)
  local port = u.port or url.default_ports[u.scheme]
  local connector = self.connector
  local ssl = u.scheme == "https" and connector:tls_for(opts.ssl, opts.server_hostname)
  return {
    u = u, url_string = url.tostring(u), port = port, key = connector:key(u.scheme, u.host, port, ssl or nil),
    ssl = ssl, headers = headers, body = body, auth = creds or false, chunked = chunked, declared = declared,
    expect100 = opts.expect100 and body ~= nil or false,
  }
end

-- A request made without options to a URL string seen before reuses what
-- was prepared for it, encoded request included (loops that hit one URL
-- spend no time building requests). The cache is bounded and starts over
-- when full; a change to session.headers makes it start over too.
local PREPARED_MAX = 256

local function prepared(self, method, raw_url)
  local cache, h = self.prepared, self.headers
  local changes = headers_mod.changes(h)
  if cache.headers ~= h or cache.changes ~= changes or cache.size >= PREPARED_MAX then
    cache = { headers = h, changes = changes, size = 0, by_method = {} }
    self.prepared = cache
  end
  local urls = cache.by_method[method]
  if not urls then urls = {}; cache.by_method[method] = urls end
  local p = urls[raw_url]
  if p then return p end
  local err
  p, err = prepare(self, method, raw_url, NO_OPTIONS)
  if not p then return nil, err end
  p.bytes = encode { method = method, url = p.u, headers = p.headers, body = p.body }
  p.method = method
  urls[raw_url], cache.size = p, cache.size + 1
  return p
end

-- ---- cookies (RFC 6265 section 5.4) ----

-- "a=1; b=2" without the pairs whose names the jar sends.
local function without_names(header, sent)
  local kept = {}
  for pair in header:gmatch("[^;]+") do
    local name = pair:match("^%s*([^=]-)%s*=") or pair:match("^%s*(.-)%s*$")
    if not sent[name] then kept[#kept + 1] = pair:match("^%s*(.-)%s*$") end
  end
  return kept
end

-- The Cookie header of a request: an explicit one first, then the jar's
-- cookies for the URL with the request's own cookies= (they win by name,
-- as in aiohttp). Returns the headers and encoded bytes to send.
local function with_cookies(self, p, opts)
  local jar, own = self.cookie_jar, opts.cookies
  if own == nil and jar:count() == 0 then return p.headers, p.bytes end
  local value = jar:cookie_header(p.u, own)
  if not value then return p.headers, p.bytes end
  local h = p.headers:copy()
  local explicit = h:get("Cookie")
  if explicit then
    local sent = {}
    for name in value:gmatch("%s*([^=;]+)=[^;]*") do sent[name] = true end
    local kept = without_names(explicit, sent)
    kept[#kept + 1] = value
    value = table.concat(kept, "; ")
  end
  h:set("Cookie", value)
  return h, nil
end

-- One hop of a request: p (what prepare made) sent and its response read;
-- the jar learns the cookies it set.
local function hop(self, method, p, opts, deadline, tr)
  local ctx = { url = p.url_string, method = method }
  local decoding = opts.auto_decompress
  if decoding == nil then decoding = self.auto_decompress end
  local headers, bytes = with_cookies(self, p, opts)
  -- The request is what connector:acquire takes (context, trace, sizes,
  -- fresh, ssl) and the record of its own timings (t_*, queue, dns,
  -- connect, handshake); every field it gets later is here from the start,
  -- so it never grows.
  local req = {
    method = method, url = p.u, url_string = p.url_string, body = p.body, stream = opts.stream,
    headers = headers, bytes = bytes, port = p.port, key = p.key, ssl = p.ssl,
    chunked = p.chunked, declared = p.declared, decode = decoding, expect100 = p.expect100,
    max_body = opts.max_body_size or self.max_body_size,
    max_decompressed = opts.max_decompressed_size or self.max_decompressed_size,
    read_until_eof = opts.read_until_eof,
    max_line_size = opts.max_line_size or self.max_line_size,
    max_field_size = opts.max_field_size or self.max_field_size,
    context = ctx, trace = tr or false, reused = false, fresh = false,
    t_start = sched.now(), t_send = 0, t_sent = 0, t_first = false, t_end = false,
    queue = false, dns = false, connect = false, handshake = false,
  }
  local resp, err = perform(self, req, deadline, ctx, tr)
  if not resp then return nil, errors.annotate(err, ctx) end
  -- the parser said whether the head has Set-Cookie: most do not, and
  -- then their headers need not be built
  if resp._sets_cookies then self.cookie_jar:update_from_headers(resp.headers:get_all("set-cookie"), p.u) end
  return resp
end

-- ---- redirects (RFC 9110 section 15.4) ----

local REDIRECTS = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- A 303 turns anything but HEAD into a GET without body; so do 301 and
-- 302 for a POST (section 15.4.2, what browsers, curl and aiohttp do).
-- 307 and 308 keep the method and the body.
local function redirected_method(status, method)
  if (status == 303 and method ~= "HEAD") or ((status == 301 or status == 302) and method == "POST") then
    return "GET", false
  end
  return method, true
end

-- Credentials and explicit cookies never follow a redirect to another
-- origin (aiohttp; curl does the same for Authorization).
local CROSS_ORIGIN_STRIP = { "Authorization", "Proxy-Authorization", "Cookie" }
local BODY_HEADERS = { "Content-Length", "Content-Type", "Transfer-Encoding" }

-- The options of the next hop: no params (the Location has its query), no
-- body after a change to GET, the credentials of the first hop within its
-- origin and none, nor an SNI name, for another. used: what the last hop
-- sent (p.auth).
local function next_options(opts, keep_body, cross, used)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.params, o.redirected = nil, true
  o.auth = not cross and used or false
  local strip = {}
  if not keep_body then
    o.data, o.json = nil, nil
    for _, name in ipairs(BODY_HEADERS) do strip[#strip + 1] = name end
  end
  if cross then
    o.server_hostname, o.cookies = nil, nil
    for _, name in ipairs(CROSS_ORIGIN_STRIP) do strip[#strip + 1] = name end
  end
  for _, name in ipairs(opts.strip or NO_STRIP) do strip[#strip + 1] = name end
  o.strip = strip
  return o
end

-- The URL a redirect points to, resolved against the response's URL (RFC
-- 3986 section 5), or nil and InvalidUrlRedirectClientError /
-- NonHttpUrlRedirectClientError.
local function redirect_target(resp, base, location)
  local ctx = { url = resp.url, method = resp.method, status = resp.status, location = location }
  local ref = url.parse(location)
  local u = ref and url.resolve(base, ref)
  if not u then
    return nil, errors.new("InvalidUrlRedirectClientError", "invalid redirect Location: " .. location, ctx)
  end
  local err
  u, err = url.check_http(u, location, true)
  if not u then return nil, errors.annotate(err, ctx) end
  u.fragment = nil
  return u
end

local function too_many(history, max)
  local last = history[#history]
  return errors.new("TooManyRedirects", ("more than max_redirects=%d redirects"):format(max),
    { url = last.url, method = last.method, status = last.status, history = history })
end

-- Send the request and follow its redirects: the final response (with the
-- earlier ones in resp.history) or nil, err; then the method and what
-- prepare made for the last hop. All hops share the deadline.
local function follow(self, method, p, opts, deadline, tr)
  local allow = opts.allow_redirects
  if allow == nil then allow = method ~= "HEAD" end
  local max = opts.max_redirects or 10
  local history -- made at the first redirect: most requests have none
  local resp, err = hop(self, method, p, opts, deadline, tr)
  while resp and allow and REDIRECTS[resp.status] do
    local location = resp.headers["location"]
    if not location then break end
    history = history or {}
    history[#history + 1] = resp
    if #history > max then return nil, too_many(history, max) end
    resp:release()
    local u
    u, err = redirect_target(resp, p.u, location)
    if not u then return nil, err end
    if tr then
      tr:emit("request_redirect", { method = method, url = resp.url, headers = p.headers:copy(), response = resp })
    end
    local keep_body
    method, keep_body = redirected_method(resp.status, method)
    if keep_body and type(p.body) == "table" and not p.body.replayable then
      return nil, errors.new("ClientError", ("cannot follow the %d redirect: the request body (a generator) "
        .. "was sent once and cannot be sent again"):format(resp.status),
        { url = resp.url, method = method, status = resp.status, history = history })
    end
    opts = next_options(opts, keep_body, origin(u) ~= origin(p.u), p.auth)
    p, err = prepare(self, method, url.tostring(u), opts)
    if not p then return nil, err end
    resp, err = hop(self, method, p, opts, deadline, tr)
  end
  if resp and history then rawset(resp, "history", history) end
  return resp, err, method, p
end

-- follow with the request_start, request_end and request_exception
-- signals; the last two tell the last hop's method, URL and headers.
local function traced(self, method, p, opts, deadline, tr)
  tr:emit("request_start", { method = method, url = p.url_string, headers = p.headers:copy() })
  local ok, resp, err, last_method, last = pcall(follow, self, method, p, opts, deadline, tr)
  last_method, last = last_method or method, last or p
  local params = { method = last_method, url = last.url_string, headers = last.headers:copy() }
  if ok and resp then
    params.response = resp
    tr:emit("request_end", params)
    return resp
  end
  params.exception = ok and err or resp
  tr:emit("request_exception", params)
  if not ok then error(resp, 0) end
  return nil, err
end

-- session:request(method, url[, opts]) -> response, or nil, err.
function Session:request(method, raw_url, opts)
  if type(method) ~= "string" or not method:match("^[%w!#$%%&'*+.^_`|~-]+$") then
    errors.argerror("request", "#1", "HTTP method token expected, got " .. tostring(method), 2)
  end
  return request(self, method:upper(), raw_url, opts)
end

-- The request's timeout: the session's with the request's override.
local function request_timeout(self, opts)
  return opts.timeout == nil and self.timeout or timeout.merge(self.timeout, opts.timeout)
end

-- One pass through the exchange (redirects followed) for what prepare made.
local function send(self, method, p, opts, deadline, tr)
  if tr then return traced(self, method, p, opts, deadline, tr) end
  local resp, err = follow(self, method, p, opts, deadline)
  return resp, err
end

-- The deadline of one call of the innermost handler: the request's timeout
-- with the attempt's own (req.timeout) over it, never past the overall
-- deadline that every attempt shares. When that one binds, an expiry names
-- the request's total timeout, or, when a policy narrowed the deadline
-- (lurl.retry's deadline), the time the attempt had left.
local function attempt_deadline(req)
  local t = req.timeout == nil and req.base_timeout or timeout.merge(req.base_timeout, req.timeout)
  local now = sched.now()
  local d = timeout.start(t, now)
  local at = req.deadline_at
  if at and (not d.total_at or at < d.total_at) then
    d.total_at = at
    local total = at == req.request_deadline_at and req.base_timeout.total or at - now
    if total and total > 0 and total ~= t.total then d.t = timeout.merge(t, { total = total }) end
  elseif t.total and t.total ~= req.base_timeout.total then
    d.attempt = true -- the attempt's own total binds
  end
  return d
end

-- What to send for req: what was prepared for it up front (a request
-- without options, which the middlewares left as it was: the session's
-- cache of prepared requests serves it), or a fresh preparation.
local function prepare_for(self, req)
  local p = req.prepared
  if p and req.method == p.method and req.url == p.url_string and req.timeout == nil
    and next(req.options) == nil and headers_mod.changes(req.headers) == 0 then
    return p, nil, NO_OPTIONS
  end
  local opts = {}
  for k, v in pairs(req.options) do opts[k] = v end
  opts.headers = req.headers
  local err
  p, err = prepare(self, req.method, req.url, opts)
  return p, err, opts
end

-- The handler at the end of a middleware chain: the request as req
-- describes it now.
local function final_handler(self)
  return function(req)
    local deadline = attempt_deadline(req)
    -- a handler called once the deadline passed sends nothing
    if deadline.total_at and deadline.total_at <= sched.now() then
      return nil, deadline:error("total", { url = req.url, method = req.method })
    end
    local p, err, opts = prepare_for(self, req)
    if not p then return nil, errors.annotate(err, { method = req.method }) end
    return send(self, req.method, p, opts, deadline, req.trace or nil)
  end
end

-- A request through middlewares: the deadline of its total timeout covers
-- every call of the handler they make.
local function through(self, list, method, raw_url, opts, tr)
  local p, u, err
  if opts == NO_OPTIONS and type(raw_url) == "string" then
    p, err = prepared(self, method, raw_url)
    u = p and p.url_string
  else
    u, err = build_url(self, raw_url, opts.params)
    u = u and url.tostring(u)
  end
  if not u then return nil, errors.annotate(err, { method = method }) end
  local t = request_timeout(self, opts)
  local options, hdrs = middleware.split_options(opts)
  local req = middleware.request {
    method = method, url = u, headers = hdrs, options = options, session = self,
    trace = tr or false, base_timeout = t, deadline_at = t.total and sched.now() + t.total or false,
    prepared = p or false,
  }
  req.request_deadline_at = req.deadline_at
  return middleware.chain(list, final_handler(self))(req)
end

-- The body of every request, method already checked and upper-case.
function request(self, method, raw_url, opts)
  if getmetatable(self) ~= mt then errors.argerror("request", "#0", "call it as session:request(...)", 3) end
  if self.closed then error("session is closed", 3) end
  opts = check_options("request", opts, REQUEST_OPTIONS)
  check_rfs("request", opts.raise_for_status)
  check_auth("request", opts.auth, 2)
  local ssl_ok, why = tls.check(opts.ssl)
  if not ssl_ok then errors.argerror("request", "'ssl'", why, 2) end
  local list = self.middlewares
  if opts.middlewares ~= nil then list = middleware.list(opts.middlewares, "request", 2) end
  if not list[1] then list = nil end
  local tr = self.trace_configs and trace.start(self, self.trace_configs, opts.trace_ctx) or nil
  local resp, err
  if list then
    resp, err = through(self, list, method, raw_url, opts, tr)
  else
    local p
    if opts == NO_OPTIONS and type(raw_url) == "string" then
      p, err = prepared(self, method, raw_url)
    else
      p, err = prepare(self, method, raw_url, opts)
    end
    if not p then return nil, errors.annotate(err, { method = method }) end
    resp, err = send(self, method, p, opts, timeout.start(request_timeout(self, opts)), tr)
  end
  if not resp then return nil, err end
  local rfs = opts.raise_for_status
  if rfs == nil then rfs = self.raise_for_status end
  return apply_raise_for_status(resp, rfs)
end

for _, m in ipairs { "get", "post", "put", "patch", "delete", "head", "options" } do
  local verb = m:upper()
  Session[m] = function(self, u, opts) return request(self, verb, u, opts) end
end

-- Close the session and, if it owns it, its connector.
function Session:close()
  if self.closed then return end
  self.closed = true
  if self.connector_owner then self.connector:close() end
end

return M
