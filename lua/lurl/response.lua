-- ClientResponse: status line, headers and the body, read whole by the
-- session unless the request was made with stream = true.
local content = require "lurl.content"
local cookies = require "lurl.cookies"
local errors = require "lurl.errors"
local check = require "lurl.check"
local fs = require "lurl.fs"
local h1 = require "lurl.h1"
local headers = require "lurl.headers"

local M = {}

local Response = {}
M.methods = Response

-- resp.timings, in seconds, like curl's -w variables. Phases: queue (waiting
-- for a pool slot), dns, connect, tls, request (writing it); then from the
-- start of the request: ttfb (the first response byte, curl's
-- time_starttransfer) and total; body runs from the first byte to the end
-- of the body; proxy is the time from the proxy's TCP connection to an
-- open tunnel (its TLS, SOCKS or CONNECT). On a reused connection dns,
-- connect, tls and proxy are 0 and reused is true. Until a streamed body is finished, body and total are nil.
-- Built when first read, so nobody pays for it otherwise.
local function timings(r)
  local ex = r._exchange
  local first = ex.t_first or ex.t_sent
  local t = {
    queue = ex.queue or 0, dns = ex.dns or 0, connect = ex.connect or 0, tls = ex.handshake or 0,
    proxy = ex.proxy_time or 0,
    request = ex.t_sent - ex.t_send, ttfb = first - ex.t_start, reused = ex.reused or false,
  }
  if ex.t_end then
    t.body = ex.t_end - first
    t.total = ex.t_end - ex.t_start
    rawset(r, "timings", t)
  end
  return t
end

-- Fields built on first use: most scripts read status and body only.
local lazy = {}

function lazy.headers(r)
  local h = headers.from_block(rawget(r, "_fields_block") or "")
  rawset(r, "headers", h)
  return h
end

-- aiohttp's content.total_bytes: the decoded body bytes received so far
-- (read or not).
function lazy.total_bytes(r) return r._total end

function lazy.timings(r) return rawget(r, "_exchange") and timings(r) end

-- The URL of the proxy the response came through (no credentials), or nil.
function lazy.proxy(r)
  local ex = rawget(r, "_exchange")
  return ex and ex.proxy and ex.proxy.url or nil
end

-- The one Content-Type parser (lurl.content's), so that resp.charset is
-- the charset text() decodes with.
-- Without the header the type is application/octet-stream (RFC 9110
-- section 8.3, as aiohttp says it) and there is no charset.
local function content_type(r, k)
  local value = r.headers["content-type"]
  if value == nil then
    rawset(r, "content_type", "application/octet-stream")
    return rawget(r, k)
  end
  local ct, cs = content.mime_type(value), content.charset_of(value)
  if ct then rawset(r, "content_type", ct) end
  if cs then rawset(r, "charset", cs) end
  return rawget(r, k)
end
lazy.content_type = content_type
lazy.charset = content_type

-- { { name, value }, ... } in wire order, original case
function lazy.raw_headers(r)
  local out = {}
  for name, value in r.headers:items() do out[#out + 1] = { name, value } end
  rawset(r, "raw_headers", out)
  return out
end

function lazy.version(r)
  -- HTTP/2 is "2" (RFC 9113 has no minor version)
  local v = r._major == 2 and "2" or (r._major .. "." .. r._minor)
  rawset(r, "version", v)
  return v
end

-- What TLS negotiated on the response's connection (stream:tls_info():
-- protocol, cipher, alpn, resumed, verified, peer certificate), nil over
-- plain HTTP. Shared by the responses of one connection.
function lazy.tls(r) return rawget(r, "_tls") or nil end

-- The cookies this response sets (its Set-Cookie fields), name -> { name,
-- value, and the attributes lurl.cookies.parse_set_cookie reads }, like
-- aiohttp's resp.cookies;
-- whether the session's jar keeps them is the jar's call (RFC 6265 5.3).
function lazy.cookies(r)
  local out = {}
  for _, field in ipairs(r.headers:get_all("set-cookie")) do
    local name, value, attrs = cookies.parse_set_cookie(field)
    if name then
      attrs.name, attrs.value = name, value
      out[name] = attrs
    end
  end
  rawset(r, "cookies", out)
  return out
end

-- Content-Disposition (RFC 6266): { type, filename, parameters }, nil when
-- absent or malformed.
function lazy.content_disposition(r)
  local v = r.headers["content-disposition"]
  return v and content.content_disposition(v) or nil
end

-- Link fields (RFC 8288), resolved against the response's URL: a list of
-- { url, rel, params, ... } also indexed by relation (resp.links.next.url).
function lazy.links(r)
  local l = content.links(r.headers:get_all("link"), r.url)
  rawset(r, "links", l)
  return l
end

-- the responses of earlier redirect hops, oldest first
function lazy.history(r)
  local h = {}
  rawset(r, "history", h)
  return h
end

-- The URL as requested, its fragment kept (aiohttp's real_url; resp.url
-- and what went on the wire have none, RFC 9110 section 7.1).
local function real_url(ex)
  local fragment = ex.p.fragment
  return fragment and (ex.url_string .. "#" .. fragment) or ex.url_string
end

function lazy.real_url(r)
  local ex = rawget(r, "_exchange")
  return ex and real_url(ex) or rawget(r, "url")
end

-- aiohttp's RequestInfo; headers is a copy the script may change freely;
-- proxy: the URL of the proxy the request went through (no credentials)
function lazy.request_info(r)
  local ex = r._exchange
  if not ex then return nil end
  local info = { method = ex.method, url = ex.url_string, real_url = real_url(ex), headers = ex.headers:copy(),
    proxy = ex.proxy and ex.proxy.url or nil }
  rawset(r, "request_info", info)
  return info
end

local mt = { __name = "lurl.response" }
function mt.__index(r, k)
  local m = Response[k]
  if m ~= nil then return m end
  local f = lazy[k]
  if f then return f(r, k) end
  return nil
end

function mt.__tostring(r)
  return ("lurl.response (%d %s, %s)"):format(r.status, r.reason, r.url)
end

-- new(fields): fields from the session (status, reason, headers, ...) plus
-- the private stream state: _conn, _deadline, and _release(resp, reusable),
-- called once through _finish when the body is done or abandoned.
function M.is(v) return getmetatable(v) == mt end

function M.new(r)
  r.ok = r.status < 400
  return setmetatable(r, mt)
end

-- static{ status = 200, reason, headers, body = "", url, method }: a
-- complete response made in Lua, not received (a cached answer, a
-- fallback's canned one, a mock's).
function M.static(spec)
  if type(spec) ~= "table" then check.argerror("response", "#1", "table expected, got " .. type(spec)) end
  local status = spec.status or 200
  if type(status) ~= "number" or status < 100 or status > 599 or status % 1 ~= 0 then
    check.argerror("response", "'status'", "HTTP status 100-599 expected, got " .. tostring(status))
  end
  local body = spec.body or ""
  if type(body) ~= "string" then check.argerror("response", "'body'", "string expected, got " .. type(body)) end
  local ok, h = pcall(headers.new, spec.headers)
  if not ok then check.argerror("response", "'headers'", h) end
  return M.new {
    status = status, reason = spec.reason or "", url = spec.url or "", method = spec.method or "GET",
    headers = h, _major = 1, _minor = 1, _body = body, _eof = true, _error = false, _total = #body, static = true,
  }
end

local function payload_error(self, ev)
  local msg
  local errno = ev[h1.ERRNO]
  if ev[1] == "eof" or (ev[1] == "error" and errno == "HPE_INVALID_EOF_STATE") then
    msg = "response payload is not completed: the connection closed early"
  else
    msg = ("response payload is not completed: %s (%s)"):format(tostring(ev[h1.MESSAGE]), tostring(errno))
  end
  return errors.new("ClientPayloadError", msg, { url = self.url, method = self.method, status = self.status,
    cause = errno })
end

-- Count and trace a chunk of the body as it arrives.
function M.received(self, chunk)
  self._received = self._received + #chunk
  local tr = self._trace
  if tr then tr:emit("response_chunk_received", { method = self.method, url = self.url, chunk = chunk }) end
end

local function size_text(n)
  if n < 1024 then return n .. " bytes" end
  if n < 1024 * 1024 then return ("%.1f KiB"):format(n / 1024) end
  return ("%.1f MiB"):format(n / (1024 * 1024))
end

-- A timeout while the body arrives says how much of it came.
local function body_timeout(self, err)
  err.received = self._received
  err.message = ("%s (%s received)"):format(err.message, size_text(self._received))
  return err
end

-- The next chunk as it came; false at the end; nil, err on failure (the
-- connection is then closed, never pooled).
local function pull_raw(self)
  -- an error stays (a body that failed to decode after it all came in too)
  if self._error then return nil, self._error end
  if self._eof then return false end
  if not self._conn then return false end
  local ev, err = self._conn:read_event(self._deadline, { url = self.url, method = self.method })
  if err then err = body_timeout(self, err) end
  if ev and ev[1] == "body" then
    M.received(self, ev[2])
    return ev[2]
  end
  if ev and ev[1] == "done" then
    self._eof = true
    self:_finish(true)
    return false
  end
  self._error = err or payload_error(self, ev)
  self:_finish(false)
  return nil, self._error
end

-- fail(resp, msg): the body cannot be had; ClientPayloadError, the
-- connection closed. Returns nil and the error.
local function fail(self, msg)
  self._error = errors.new("ClientPayloadError", msg, { url = self.url, method = self.method, status = self.status })
  self:_finish(false)
  return nil, self._error
end
M.fail = fail

-- The next chunk of the body, decoded when the response has a
-- Content-Encoding the session undoes (never ""); false at the end. A
-- decoded body makes garbage many times faster than the bytes that come
-- in, and LuaJIT collects once the heap has doubled: one step of the
-- collector a decoded piece keeps pace (a 64 MiB text body read in 64 KiB
-- pieces grew the peak RSS by 6.0 MiB without, 1.9 MiB with).
local function pull_decoded(self)
  local d = self._decode
  if not d then return pull_raw(self) end
  while true do
    -- a raw chunk is decoded a slice at a time, as the reader asks
    local chunk, at, err = rawget(self, "_rest"), rawget(self, "_rest_at") or 1, nil
    if not chunk then chunk, err = pull_raw(self) end
    if chunk == nil then return nil, err end
    local out
    if chunk then
      out, at = d:feed_part(chunk, at)
      if not out then return fail(self, at) end
      if at <= #chunk then self._rest, self._rest_at = chunk, at else self._rest, self._rest_at = nil, nil end
    else
      out, err = d:finish()
      if not out then return fail(self, err) end
    end
    if out ~= "" then
      collectgarbage("step", 0)
      return out
    end
    if not chunk then return false end
  end
end

-- pull_decoded, counting the decoded bytes (resp.total_bytes).
local function pull(self)
  local chunk, err = pull_decoded(self)
  if chunk then self._total = self._total + #chunk end
  return chunk, err
end

-- A body that came whole with its head, decoded: true, or nil and the
-- ClientPayloadError.
function M.decode_whole(self, body)
  local d = self._decode
  local out, err = d:feed(body or "")
  local rest
  if out then rest, err = d:finish() end
  if not rest then
    d:close()
    return fail(self, err)
  end
  self._body = out .. rest
  return true
end

-- What read(n) left of the last chunk (from offset _ppos), taken whole.
local function take_pending(self)
  local buf, pos = self._pending, self._ppos
  if not buf then return nil end
  self._pending, self._ppos = false, false
  if pos > 1 then return buf:sub(pos) end
  return buf
end

-- Whether size bytes of body are past max_body_size: then the error is set,
-- the connection let go, and true returned.
function M.too_big(self, size)
  local max = rawget(self, "_max_body")
  if not max or size <= max then return false end
  self._error = errors.new("ClientPayloadError", ("response body exceeds max_body_size=%d (read it streamed)")
    :format(max), { url = self.url, method = self.method, status = self.status })
  self:_finish(false)
  return true
end

-- Read everything that is left; called by the session for non-streamed
-- responses, and by read() on streamed ones. A body past max_body_size
-- (session or request option) fails instead of filling memory.
local function read_all(self)
  if self._body then return self._body end
  -- the stream readers took some already: the body is what they left, and
  -- they are at its end
  local taken = self._total > 0
  -- a body of one piece (the usual small one) needs no table of pieces
  local body, parts = take_pending(self), nil
  local size = body and #body or 0
  while true do
    local chunk, err = pull(self)
    if chunk == nil then return nil, err end
    if chunk == false then break end
    if not body then
      body = chunk
    elseif parts then
      parts[#parts + 1] = chunk
    else
      parts = { body, chunk }
    end
    size = size + #chunk
    if M.too_big(self, size) then return nil, self._error end
  end
  self._body = parts and table.concat(parts) or body or ""
  if taken then self._pos = #self._body + 1 end
  return self._body
end
M.read_all = read_all

require("lurl.stream_reader").install(Response, { pull = pull, take_pending = take_pending, read_all = read_all })

-- resp:save(path[, { progress = fn(done, total) }]) -> bytes written, or
-- nil and an error: the body streamed to a file chunk by chunk, so memory
-- stays flat whatever its size. total is the Content-Length (nil when
-- unknown). A failure removes the partial file: nothing half-written is
-- left looking complete.
function Response:save(path, opts)
  if type(path) ~= "string" then check.argerror("save", "#1", "path string expected, got " .. type(path)) end
  local progress = opts and opts.progress
  if progress ~= nil then check.func("save", "'progress'", progress) end
  local f, ferr = fs.open(path, "w")
  if not f then return nil, errors.new("ClientError", "cannot save to '" .. path .. "': " .. tostring(ferr)) end
  local total = not rawget(self, "_decode") and tonumber(self.headers["content-length"]) or nil
  local done = 0
  local ok, err = pcall(function()
    for chunk in self:iter_any() do
      local written, werr = fs.write(f, chunk, done)
      if not written then error(errors.new("ClientError", "cannot write '" .. path .. "': " .. tostring(werr)), 0) end
      done = done + #chunk
      if progress then progress(done, total) end
    end
  end)
  f:close()
  if not ok then
    os.remove(path)
    if not errors.is(err, "ClientError") then error(err, 0) end -- a progress callback's own error
    return nil, err
  end
  return done
end

-- get_encoding() -> the charset text() decodes with: the Content-Type's,
-- utf-8 for JSON, else what the session's fallback_charset_resolver(resp,
-- body) says, else utf-8 (aiohttp's order).
function Response:get_encoding()
  local body, err = read_all(self)
  if not body then return nil, err end
  local resolver = rawget(self, "_charset_resolver")
  return content.get_encoding(self.headers["content-type"], body,
    resolver and function(b) return resolver(self, b) end or nil)
end

-- text([encoding[, errors]]) -> UTF-8 text: the body decoded from
-- encoding, or get_encoding()'s charset (iconv converts any charset glibc
-- knows). errors: "strict" (a bad byte is ClientPayloadError naming the
-- charset and offset), "replace" (U+FFFD) or "ignore".
function Response:text(encoding, mode)
  local body, err = read_all(self)
  if not body then return nil, err end
  local cs = encoding or self:get_encoding()
  local text, why = content.decode(body, cs, mode or "strict")
  if not text then
    return nil, errors.new("ClientPayloadError", why, { url = self.url, method = self.method, status = self.status })
  end
  return text
end

-- json{ content_type = "application/json" | false, loads = fn, encoding =
-- charset } -> value.
-- A body of another content type is ContentTypeError unless content_type is
-- false; an empty body gives nil.
function Response:json(opts)
  opts = opts or {}
  local body, err = read_all(self)
  if not body then return nil, err end
  local want = opts.content_type
  if want == nil then want = "application/json" end
  local ct = self.headers["content-type"]
  if not content.json_type_ok(ct, want) then
    return nil, errors.new("ContentTypeError",
      ("attempt to decode JSON with unexpected mimetype: %s"):format(self.content_type or ""),
      { url = self.url, status = self.status, headers = self.headers })
  end
  if body:match("^%s*$") then return nil end
  -- aiohttp's json(encoding): text in another charset (the option, else the
  -- header's) is made UTF-8 before it is parsed
  local enc = opts.encoding or self.charset
  if enc and not enc:lower():match("^utf%-?8$") then
    local text, why = content.decode(body, enc)
    if not text then
      return nil, errors.new("ContentTypeError", "cannot decode JSON text from " .. enc .. ": " .. tostring(why),
        { url = self.url, status = self.status })
    end
    body = text
  end
  local loads = opts.loads or require("cjson").decode
  local ok, value = pcall(loads, body)
  if not ok then
    return nil, errors.new("ContentTypeError", "invalid JSON: " .. tostring(value),
      { url = self.url, status = self.status })
  end
  return value
end

-- raise_for_status() -> resp, or nil and ClientResponseError for 4xx/5xx.
function Response:raise_for_status()
  if self.status < 400 then return self end
  return nil, errors.new("ClientResponseError", self.reason, {
    text = ("%d, message='%s'"):format(self.status, self.reason),
    status = self.status, url = self.url, method = self.method, headers = self.headers,
    request_info = self.request_info, history = self.history,
  })
end

-- Give the connection back without reading the rest: it is closed (an unread
-- body would corrupt the next exchange), unless the body was already done.
function Response:release()
  if self._conn and not self._eof then
    self._error = self._error or errors.new("ClientPayloadError", "response was released", { url = self.url })
    self:_finish(false)
  end
end

Response.close = Response.release

function Response:_finish(ok)
  local fin = self._release
  if not fin then return end
  self._release = nil
  fin(self, ok)
  self._conn = nil
end

return M
