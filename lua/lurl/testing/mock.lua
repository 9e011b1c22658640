-- lurl.testing.mock: a transport without sockets, for specs of scripts and
-- policies (after aioresponses and respx).
--
--   local mock = lurl.testing.mock()
--   local items = mock:on("GET", "http://api.test/items", 503, 503, { status = 200, json = { 1, 2 } })
--   local s = mock:session()            -- or lurl.session{ connector = mock:connector() }
--   s:get("http://api.test/items")      -- 503; then 503, then 200 (the last answer repeats)
--   #items.calls, mock.calls[1].headers["idempotency-key"]
--
-- The session runs exactly as over the network (the pool, the HTTP/1.1
-- parser, cookies, redirects, decompression, timeouts): only the stream
-- under the connection is a Lua object that parses what the client writes
-- and answers from the routes. Delays are sleeps of the scheduler, so under
-- lurl.testing.clock they take virtual time.
--
-- Routes: mock:on(method, url, answer...) where method is a name or "*",
-- url is a URL string (matched exactly; without a query it matches any
-- query), { pattern = lua_pattern } matched against the whole URL, or a
-- function(url) -> boolean. The first route that matches answers; a request
-- no route matches fails to connect (ClientConnectorError naming it).
--
-- Answers, each used once in order, the last one for good:
--   200                     a status
--   "text"                  200 with that body
--   { status, reason, headers, body, json, retry_after, delay, close,
--     chunked, content_length, close_after, reset_after, drip = { size, interval } }
--   { error = "refused" | "dns" | "connect_timeout" }   the connection fails
--   { error = "reset" | "disconnect" | "hang" }  after the request: a reset,
--                           a close before any byte, or no answer at all
--   function(call) -> one of the above, for the request described by call
-- As over the network, when a reused keep-alive connection is reset or
-- closed before any byte of the answer, the session sends an idempotent
-- request once more on a new connection (lurl.connector's retry_stale),
-- which takes the route's next answer; mock:connector{ retry_stale = false }
-- leaves that to the policies under test.
--
-- Every request is recorded, in mock.calls and its route's calls:
--   { method, url, path, query, headers, body, at (sched.now()), connection,
--     route, error (for connection failures) }
local connector_mod = require "lurl.connector"
local errors = require "lurl.errors"
local check = require "lurl.check"
local sched = require "lurl.sched"
local url = require "lurl.url"
local wire = require "lurl.testing.wire"

local M = {}

local Mock = {}
local mt = { __name = "lurl.testing.mock", __index = Mock }
function mt.__tostring(m) return ("lurl.testing.mock (%d routes, %d calls)"):format(#m.routes, #m.calls) end

local Route = {}
local route_mt = { __name = "lurl.testing.mock.route", __index = Route }
function route_mt.__tostring(r)
  return ("lurl.testing.mock.route (%s %s, %d calls)"):format(r.method, r.label, #r.calls)
end

local CONNECT_ERRORS = { refused = true, dns = true, connect_timeout = true }
local AFTER_ERRORS = { reset = true, disconnect = true, hang = true }

local callable = check.is_callable

-- What is wrong with answer a, or nil.
local function answer_problem(a)
  local t = type(a)
  if t == "number" or t == "string" or callable(a) then return nil end
  if t ~= "table" then return "a status, a body, a table or a function expected, got " .. t end
  if a.error and not CONNECT_ERRORS[a.error] and not AFTER_ERRORS[a.error] then
    return ("unknown mock error '%s' (refused, dns, connect_timeout, reset, disconnect or hang)")
      :format(tostring(a.error))
  end
  return nil
end

-- Append answers (arguments first.. of fname) to route r.
local function add_answers(r, fname, first, level, ...)
  for i = 1, select("#", ...) do
    local a = select(i, ...)
    local why = answer_problem(a)
    if why then error(("bad argument #%d to '%s' (%s)"):format(first + i - 1, fname, why), level + 1) end
    r.answers[#r.answers + 1] = a
  end
end

-- route:reply(answer, ...): more answers, after those given so far.
function Route:reply(...)
  add_answers(self, "reply", 1, 2, ...)
  return self
end

-- The answer for the next request, without using it up.
local function peek(route)
  return route.answers[math.min(route.next, #route.answers)]
end

local function consume(route)
  local a = peek(route)
  route.next = route.next + 1
  return a
end

-- A URL without its query.
local function no_query(s) return (s:gsub("%?.*$", "")) end

-- scheme://host[:port]/path[?query] as the session writes request URLs.
local function canonical(s)
  local u = url.parse(s)
  if not u or not u.scheme or not u.host then
    check.raise("bad argument #2 to 'on' (absolute URL expected, got '" .. s .. "')")
  end
  u.fragment = nil
  if u.path == "" then u.path = "/" end
  return url.tostring(u)
end

local function matcher(spec)
  if type(spec) == "function" then return spec, "function" end
  if type(spec) == "table" and type(spec.pattern) == "string" then
    local pat = spec.pattern
    return function(u) return u:match(pat) ~= nil end, "~" .. pat
  end
  if type(spec) ~= "string" then
    check.raise("bad argument #2 to 'on' (URL string, { pattern = } or function expected, got " .. type(spec) .. ")")
  end
  local want = canonical(spec)
  if want:find("?", 1, true) then return function(u) return u == want end, want end
  return function(u) return no_query(u) == want end, want
end

-- mock:on(method, url, answer...) -> route
function Mock:on(method, u, ...)
  if type(method) ~= "string" then check.raise("bad argument #1 to 'on' (method name or \"*\" expected)") end
  local match, label = matcher(u)
  local r = setmetatable({ method = method:upper(), match = match, label = label, answers = {}, next = 1, calls = {} },
    route_mt)
  add_answers(r, "on", 3, 2, ...)
  if #r.answers == 0 then check.raise("bad argument #3 to 'on' (at least one answer expected)") end
  self.routes[#self.routes + 1] = r
  return r
end

local function find(self, method, u)
  for _, r in ipairs(self.routes) do
    if (r.method == "*" or r.method == method) and r.match(u) then return r end
  end
  return nil
end

local function record(self, route, call)
  call.route = route
  self.calls[#self.calls + 1] = call
  if route then route.calls[#route.calls + 1] = call end
  return call
end

-- The answer as a table.
local function normalize(a, call)
  if callable(a) then
    a = a(call)
    local why = answer_problem(a)
    if why or callable(a) then error("mock answer function returned a bad answer: " .. (why or "a function"), 0) end
  end
  return wire.answer(a)
end

-- ---- the stream a connection runs over ----

local Stream = {}
local stream_mt = { __name = "lurl.testing.mock.stream", __index = Stream }

-- Hand bytes (or the end: nil, message, errno) to the connection, keeping
-- them while it does not read.
local function deliver(self, data, msg, ename)
  if self.is_closed then return end
  if not self.on_read or not self.reading then
    self.pending[#self.pending + 1] = { data, msg, ename }
    return
  end
  self.on_read(data, msg, ename)
end

local function finish(self, msg, ename)
  deliver(self, nil, msg or "end of file", ename or "EOF")
end

-- Answer one request (in a task of its own, as a server would).
local function answer(self, call, a)
  if a.delay then sched.sleep(a.delay) end
  if self.is_closed then return end
  if a.error == "hang" then return end
  if a.error == "reset" then
    finish(self, "ECONNRESET: connection reset by peer", "ECONNRESET")
    return self:close()
  end
  if a.error == "disconnect" then return finish(self) end
  local head, bytes = wire.response(a, call.request)
  deliver(self, head)
  if a.drip and #bytes > 0 then
    local size = a.drip.size or 1
    for i = 1, #bytes, size do
      if self.is_closed then return end
      deliver(self, bytes:sub(i, i + size - 1))
      if i + size <= #bytes then sched.sleep(a.drip.interval or 0.01) end
    end
  elseif #bytes > 0 then
    deliver(self, bytes)
  end
  if a.reset_after then
    finish(self, "ECONNRESET: connection reset by peer", "ECONNRESET")
  elseif a.close_after or a.close or not call.request.keep_alive then
    finish(self)
  end
end

local function on_request(self, req)
  local mock = self.mock
  -- absolute-form (a request for a proxy, RFC 9112 section 3.2.2) names
  -- its origin itself: the mock stands for the proxy and the origin both
  local full = req.target:find("^%a[%w+.-]*://") and req.target or self.origin .. req.target
  local route = find(mock, req.method, full)
  local next_answer = route and peek(route)
  if not route or (type(next_answer) == "table" and CONNECT_ERRORS[next_answer.error]) then
    -- the server is gone: it closed this idle connection, and a new one
    -- will fail to connect (the session may try that itself)
    return finish(self)
  end
  local call = record(mock, route, {
    method = req.method, url = full, path = req.path, query = req.query, headers = req.headers, body = req.body,
    at = sched.now(), connection = self.number, request = req,
  })
  local a = normalize(consume(route), call)
  sched.spawn(answer, self, call, a)
end

-- The transport interface of lurl.conn (see runtime/l_stream.c).
function Stream:write(data)
  if self.is_closed then return nil, "EPIPE: broken pipe", "EPIPE" end
  -- a body part may come as a list of strings (a chunk and its framing)
  if type(data) == "table" then data = table.concat(data) end
  local reader = self.reader
  reader:feed(data)
  while true do
    local req = reader:take()
    if req == false then
      finish(self, "mock server: the request is not valid HTTP/1.1", "EPROTO")
      break
    end
    if not req then break end
    on_request(self, req)
  end
  return true
end

function Stream:read_start(cb)
  self.on_read, self.reading = cb, true
  local pending = self.pending
  self.pending = {}
  for _, p in ipairs(pending) do deliver(self, p[1], p[2], p[3]) end
end

function Stream:read_stop() self.reading = false end
function Stream:ref() end
function Stream:closed() return self.is_closed end
function Stream:tls_info() return nil end

function Stream:close()
  if self.is_closed then return end
  self.is_closed = true
  self.mock.open[self] = nil
end

-- ---- connecting ----

local function connect_error(a, host, port, ctx)
  local msg, errno = "ECONNREFUSED: connection refused", "ECONNREFUSED"
  if a.error == "dns" then
    return errors.annotate(errors.new("ClientConnectorDNSError",
      ("cannot resolve host %s: mock DNS failure"):format(host), { host = host, port = port }), ctx or {})
  end
  return errors.annotate(errors.new("ClientConnectorError", ("cannot connect to %s:%s: %s"):format(host, port, msg),
    { host = host, port = port, errno = errno, os_error = msg }), ctx or {})
end

-- The connector's dialer: a stream, or the failure the route's next answer
-- asks for (it is used up and recorded).
local function dial(self, host, port, deadline, opts)
  local method, full = opts.method, opts.url_string
  local route = find(self, method, full)
  if not route then
    return nil, errors.annotate(errors.new("ClientConnectorError", ("no mock route for %s %s"):format(method, full),
      { host = host, port = port }), opts.context or {})
  end
  local a = peek(route)
  if type(a) == "table" and CONNECT_ERRORS[a.error] then
    consume(route)
    record(self, route, { method = method, url = full, at = sched.now(), error = a.error })
    if a.delay then sched.sleep(a.delay) end
    if a.error == "connect_timeout" then
      -- nothing answers: the request's connect limits decide
      return deadline:wait("sock_connect", function() end, opts.context)
    end
    return nil, connect_error(a, host, port, opts.context)
  end
  self.streams = self.streams + 1
  local u = url.parse(full)
  local s = setmetatable({ mock = self, number = self.streams, reader = wire.reader(), pending = {},
    is_closed = false, reading = false, origin = u.scheme .. "://" .. url.host_header(u) }, stream_mt)
  self.open[s] = true
  return s, { ip = "mock", family = 4 }
end

-- mock:connector(opts) -> a lurl.connector (any of its options) that
-- connects through the mock.
function Mock:connector(opts)
  local c = connector_mod.new(opts)
  c.dialer = function(host, port, deadline, o) return dial(self, host, port, deadline, o) end
  return c
end

-- mock:session(opts) -> a lurl.session over a new mock connector.
function Mock:session(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.connector = self:connector()
  return require("lurl.session").new(o)
end

-- Connections open now (a cancelled request must leave none behind).
function Mock:open_streams()
  local n = 0
  for _ in pairs(self.open) do n = n + 1 end
  return n
end

function M.new()
  return setmetatable({ routes = {}, calls = {}, open = {}, streams = 0 }, mt)
end

return M
