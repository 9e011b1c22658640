-- ClientSession: shared headers, timeouts, cookies and the connection pool.
-- A request is built by lurl.prepare and sent, its redirects followed, by
-- lurl.redirect; the session checks what the script gave and carries the
-- request through its middlewares.
local auth = require "lurl.auth"
local connector_mod = require "lurl.connector"
local cookies = require "lurl.cookies"
local errors = require "lurl.errors"
local check = require "lurl.check"
local h1 = require "lurl.h1"
local headers_mod = require "lurl.headers"
local middleware = require "lurl.middleware"
local prepare_mod = require "lurl.prepare"
local netrc = require "lurl.netrc"
local proxy_env = require "lurl.proxy_env"
local proxy_mod = require "lurl.proxy"
local redirect = require "lurl.redirect"
local sched = require "lurl.sched"
local timeout = require "lurl.timeout"
local tls = require "lurl.tls"
local trace = require "lurl.trace"
local url = require "lurl.url"

local M = {}

-- What a script may never use is loaded when first used: cjson (a C
-- module, which the dynamic loader opens) with the first JSON body, the
-- WebSocket modules with the first ws_connect. A start that loads them
-- all costs a short script about a millisecond more (bench W3).
local function json_encode(v) return require("cjson").encode(v) end

M.USER_AGENT = prepare_mod.USER_AGENT
M.ACCEPT_ENCODING = prepare_mod.ACCEPT_ENCODING

local NO_OPTIONS = prepare_mod.NO_OPTIONS
local build_url, prepare, prepared = prepare_mod.build_url, prepare_mod.prepare, prepare_mod.prepared

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
  proxy = "any", proxy_auth = "any", proxy_headers = "table", proxy_ssl = "any", trust_env = "boolean",
  version = "string", requote_redirect_url = "boolean", read_bufsize = "number", http2 = "any",
}

local REQUEST_OPTIONS = {
  params = "any", headers = "table", data = "any", json = "any", timeout = "any",
  raise_for_status = "any", stream = "boolean", skip_auto_headers = "table", chunked = "boolean",
  max_line_size = "number", max_field_size = "number", trace_ctx = "any",
  ssl = "any", server_hostname = "string", allow_redirects = "boolean", max_redirects = "number",
  cookies = "table", auth = "any", auto_decompress = "boolean", max_decompressed_size = "number",
  max_body_size = "number", compress = "any", expect100 = "boolean", version = "string",
  read_until_eof = "boolean", middlewares = "table", read_bufsize = "number", http2 = "any",
  proxy = "any", proxy_auth = "any", proxy_headers = "table", proxy_ssl = "any",
}


local function check_options(fname, opts, known)
  if opts == nil then return NO_OPTIONS end
  return check.options(fname, "#2", opts, known)
end

local function check_rfs(fname, v)
  if v ~= nil and type(v) ~= "boolean" and type(v) ~= "function" then
    check.argerror(fname, "'raise_for_status'", "boolean or function expected")
  end
end

-- read_bufsize (aiohttp's): a byte count >= 1 (lurl.conn's flow control,
-- readuntil's limit).
local function check_bufsize(fname, v)
  if v ~= nil and (v < 1 or v % 1 ~= 0) then
    check.argerror(fname, "'read_bufsize'", "byte count >= 1 expected, got " .. tostring(v))
  end
  return v
end

local function check_auth(fname, v)
  if v ~= nil and not auth.is(v) then
    check.argerror(fname, "'auth'", "lurl.basic_auth expected, got " .. type(v))
  end
end

-- proxy = URL string or false, proxy_auth = lurl.basic_auth, proxy_ssl as
-- ssl: wrong values raise where the script called.
local function check_proxy(fname, opts)
  local p = opts.proxy
  if p ~= nil and p ~= false then
    if type(p) ~= "string" then check.argerror(fname, "'proxy'", "URL string or false expected, got " .. type(p)) end
    proxy_mod.parse(p, fname, "'proxy'")
  end
  local pa = opts.proxy_auth
  if pa ~= nil and not auth.is(pa) then
    check.argerror(fname, "'proxy_auth'", "lurl.basic_auth expected, got " .. type(pa))
  end
  local ok, why = tls.check(opts.proxy_ssl)
  if not ok then check.argerror(fname, "'proxy_ssl'", why) end
end

-- http2 = true (the default: h2 by ALPN when the server chooses it) |
-- false | "required" | "prior_knowledge" (h2c on http://, RFC 9113
-- section 3.3)
local HTTP2 = { [false] = true, [true] = true, required = true, prior_knowledge = true }
local function check_http2(fname, v)
  if v ~= nil and not HTTP2[v] then
    check.argerror(fname, "'http2'", "false, true, \"required\" or \"prior_knowledge\" expected, got " .. tostring(v))
  end
  return v
end

local function check_trace_configs(list)
  if list == nil then return nil end
  for i, tc in ipairs(list) do
    if not trace.is(tc) then
      check.argerror("session", "'trace_configs'", "item " .. i .. " is not a lurl.trace_config")
    end
  end
  return #list > 0 and list or nil
end

-- lurl.session{ base_url, headers, timeout, raise_for_status, skip_auto_headers,
--               json_serialize, connector, connector_owner, trace_configs }
function M.new(opts)
  opts = check_options("session", opts, SESSION_OPTIONS)
  check_rfs("session", opts.raise_for_status)
  check_auth("session", opts.auth)
  check_proxy("session", opts)
  local base
  if opts.base_url then
    local b, err = url.parse(opts.base_url)
    if not b or not url.check_http(b, opts.base_url) then
      check.argerror("session", "'base_url'", "invalid URL '" .. opts.base_url .. "'"
        .. (err and (": " .. err.message) or ""))
    end
    base = b
  end
  local conn = opts.connector
  if conn ~= nil and not connector_mod.is(conn) then
    check.argerror("session", "'connector'", "lurl.connector expected")
  end
  local ok, hdrs = pcall(headers_mod.new, opts.headers)
  if not ok then check.argerror("session", "'headers'", hdrs) end
  local jar = opts.cookie_jar
  if jar ~= nil and not cookies.is(jar) then
    check.argerror("session", "'cookie_jar'", "lurl.cookie_jar expected, got " .. type(jar))
  end
  jar = jar or cookies.jar()
  -- session-wide cookies go to every host (aiohttp's shared cookies)
  if opts.cookies then jar:update_cookies(opts.cookies) end
  return setmetatable({
    base_url = base,
    headers = hdrs,
    timeout = timeout.for_session(opts.timeout),
    raise_for_status = opts.raise_for_status or false,
    skip_auto_headers = prepare_mod.lower_set(opts.skip_auto_headers),
    json_serialize = opts.json_serialize or json_encode,
    connector = conn or connector_mod.new(),
    connector_owner = conn == nil or opts.connector_owner ~= false,
    max_line_size = opts.max_line_size or 8190,
    max_field_size = opts.max_field_size or 8190,
    read_bufsize = check_bufsize("session", opts.read_bufsize) or h1.READ_BUFSIZE,
    trace_configs = check_trace_configs(opts.trace_configs),
    cookie_jar = jar,
    auth = opts.auth,
    auto_decompress = opts.auto_decompress ~= false,
    max_decompressed_size = opts.max_decompressed_size,
    max_body_size = opts.max_body_size or false,
    fallback_charset_resolver = opts.fallback_charset_resolver or false,
    proxy = opts.proxy, proxy_auth = opts.proxy_auth, proxy_headers = opts.proxy_headers,
    proxy_ssl = opts.proxy_ssl, trust_env = opts.trust_env or false,
    http2 = check_http2("session", opts.http2) == nil or opts.http2,
    version = prepare_mod.version(opts.version, "session") or "1.1",
    -- false: a redirect's Location is fetched as sent (aiohttp's)
    requote_redirect_url = opts.requote_redirect_url ~= false,
    -- trust_env: the proxy environment read once, as the session starts
    proxy_env = opts.trust_env and proxy_env.snapshot() or false,
    netrc = opts.trust_env and netrc.load() or false,
    -- printable (tostring)
    middlewares = middleware.list(opts.middlewares, "session"),
    prepared = {},
    closed = false,
  }, mt)
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

local request -- Session:request without the method check, defined below

-- session:request(method, url[, opts]) -> response, or nil, err.
function Session:request(method, raw_url, opts)
  if type(method) ~= "string" or not method:match("^[%w!#$%%&'*+.^_`|~-]+$") then
    check.argerror("request", "#1", "HTTP method token expected, got " .. tostring(method))
  end
  return request(self, method:upper(), raw_url, opts, "request")
end

-- The request's timeout: the session's with the request's override.
local function request_timeout(self, opts, fname)
  return opts.timeout == nil and self.timeout or timeout.merge(self.timeout, opts.timeout, fname)
end

-- What to send for req: what was prepared for it up front (a request
-- without options, which the middlewares left as it was: the session's
-- cache of prepared requests serves it), or a fresh preparation.
local function prepare_for(self, req)
  local p = req.prepared
  if p and req.method == p.method and req.url == p.url_string and next(req.options) == nil
    and headers_mod.changes(req.headers) == 0 then
    return p, nil, NO_OPTIONS
  end
  local opts = {}
  for k, v in pairs(req.options) do opts[k] = v end
  opts.headers = req.headers
  local err
  p, err = prepare(self, req.method, req.url, opts, req.fname)
  return p, err, opts
end

-- The handler at the end of a middleware chain: the request as req
-- describes it now.
local function final_handler(self)
  return function(req)
    local deadline = timeout.attempt(req.base_timeout, req.timeout, req.deadline_at, req.request_deadline_at)
    -- a handler called once the deadline passed sends nothing
    if deadline.total_at and deadline.total_at <= sched.now() then
      return nil, deadline:error("total", { url = req.url, method = req.method })
    end
    local p, err, opts = prepare_for(self, req)
    if not p then return nil, errors.annotate(err, { method = req.method }) end
    return redirect.send(self, p, opts, deadline, req.trace or nil, req.fname)
  end
end

-- A request through middlewares: the deadline of its total timeout covers
-- every call of the handler they make.
local function through(self, list, method, raw_url, opts, tr, fname)
  local p, u, err
  if opts == NO_OPTIONS and type(raw_url) == "string" then
    p, err = prepared(self, method, raw_url, fname)
    u = p and p.url_string
  else
    u, err = build_url(self, raw_url, opts.params, fname)
    u = u and url.tostring(u)
  end
  if not u then return nil, errors.annotate(err, { method = method }) end
  local t = request_timeout(self, opts, fname)
  local options, hdrs = middleware.split_options(opts)
  local req = middleware.request {
    method = method, url = u, headers = hdrs, options = options, session = self,
    trace = tr or false, base_timeout = t, deadline_at = t.total and sched.now() + t.total or false,
    prepared = p or false, fname = fname,
  }
  req.request_deadline_at = req.deadline_at
  return middleware.chain(list, final_handler(self))(req)
end

-- The body of every request, method already checked and upper-case.
-- fname: the method the script called (get, post, ..., request), which
-- argument errors name.
function request(self, method, raw_url, opts, fname)
  if getmetatable(self) ~= mt then check.argerror(fname, "#0", "call it as session:" .. fname .. "(...)") end
  if self.closed then check.raise("session is closed") end
  opts = check_options(fname, opts, REQUEST_OPTIONS)
  check_rfs(fname, opts.raise_for_status)
  check_auth(fname, opts.auth)
  check_bufsize(fname, opts.read_bufsize)
  check_http2(fname, opts.http2)
  if opts ~= NO_OPTIONS then check_proxy(fname, opts) end
  local ssl_ok, why = tls.check(opts.ssl)
  if not ssl_ok then check.argerror(fname, "'ssl'", why) end
  local list = self.middlewares
  if opts.middlewares ~= nil then list = middleware.list(opts.middlewares, fname) end
  if not list[1] then list = nil end
  -- under middlewares the request is prepared inside the chain: what its
  -- options alone get wrong is refused here, at the script's line
  if list and opts ~= NO_OPTIONS then prepare_mod.check(opts, fname) end
  local tr = self.trace_configs and trace.start(self, self.trace_configs, opts.trace_ctx) or nil
  local resp, err
  if list then
    resp, err = through(self, list, method, raw_url, opts, tr, fname)
  else
    local p
    if opts == NO_OPTIONS and type(raw_url) == "string" then
      p, err = prepared(self, method, raw_url, fname)
    else
      p, err = prepare(self, method, raw_url, opts, fname)
    end
    if not p then return nil, errors.annotate(err, { method = method }) end
    resp, err = redirect.send(self, p, opts, timeout.start(request_timeout(self, opts, fname)), tr, fname)
  end
  if not resp then return nil, err end
  local rfs = opts.raise_for_status
  if rfs == nil then rfs = self.raise_for_status end
  return apply_raise_for_status(resp, rfs)
end

for _, m in ipairs { "get", "post", "put", "patch", "delete", "head", "options" } do
  local verb = m:upper()
  Session[m] = function(self, u, opts) return request(self, verb, u, opts, m) end
end

-- ---- WebSockets ----

local WS_OPTIONS = {
  protocols = "table", timeout = "any", auth = "any", autoclose = "boolean", autoping = "boolean",
  heartbeat = "number", origin = "string", params = "any", headers = "table", proxy = "any", proxy_auth = "any",
  proxy_headers = "table", proxy_ssl = "any", ssl = "any", server_hostname = "string", compress = "any",
  max_msg_size = "number", method = "string", cookies = "table", max_redirects = "number",
}

-- What ws_connect passes on to prepare, with the marker that makes a proxy
-- tunnel it.
local WS_REQUEST = { "params", "headers", "auth", "proxy", "proxy_auth", "proxy_headers", "proxy_ssl", "ssl",
  "server_hostname", "cookies" }

local function ws_options(opts)
  local websocket = require "lurl.websocket"
  opts = check.options("ws_connect", "#2", opts or {}, WS_OPTIONS)
  check_auth("ws_connect", opts.auth)
  check_proxy("ws_connect", opts)
  local ok, why = tls.check(opts.ssl)
  if not ok then check.argerror("ws_connect", "'ssl'", why) end
  local t = opts.timeout
  if t ~= nil and not websocket.is_timeout(t) then
    check.argerror("ws_connect", "'timeout'", "lurl.ws_timeout expected, got " .. type(t))
  end
  local compress = opts.compress
  if compress == nil then compress = 15 end
  if compress ~= false and compress ~= 0 and (type(compress) ~= "number" or compress < 9 or compress > 15) then
    check.argerror("ws_connect", "'compress'", "window bits 9 to 15, or 0/false for none, expected")
  end
  local passed = { websocket = true }
  for _, k in ipairs(WS_REQUEST) do passed[k] = opts[k] end
  local max = opts.max_msg_size or 4 * 1024 * 1024
  return {
    request = passed, protocols = opts.protocols, origin = opts.origin, cookies = opts.cookies,
    compress = compress ~= 0 and compress or false, timeout = t or websocket.timeout(),
    autoclose = opts.autoclose ~= false, autoping = opts.autoping ~= false,
    heartbeat = check.seconds("ws_connect", "'heartbeat'", opts.heartbeat),
    -- aiohttp: 0 means no limit
    max_msg_size = max > 0 and max or 2 ^ 53, max_redirects = opts.max_redirects or 10,
  }
end

-- session:ws_connect(url[, opts]) -> a lurl.websocket, or nil, err
-- (docs/websockets.md).
function Session:ws_connect(raw_url, opts)
  if getmetatable(self) ~= mt then check.argerror("ws_connect", "#0", "call it as session:ws_connect(...)") end
  if self.closed then check.raise("session is closed") end
  if type(raw_url) ~= "string" then check.argerror("ws_connect", "#1", "URL string expected, got " .. type(raw_url)) end
  local o = ws_options(opts)
  if opts and opts.method and opts.method:upper() ~= "GET" then
    check.argerror("ws_connect", "'method'", "GET expected (RFC 6455 section 4.1)")
  end
  return require("lurl.ws_handshake").connect(self, raw_url, o, "ws_connect")
end

-- detach(): the session lets go of its connector without closing it
-- (aiohttp's); the session is closed from then on.
function Session:detach()
  self.connector_owner = false
  self.connector = nil
  self.closed = true
end

-- Close the session and, if it owns it, its connector.
function Session:close()
  if self.closed then return end
  self.closed = true
  if self.connector_owner then self.connector:close() end
end

return M
