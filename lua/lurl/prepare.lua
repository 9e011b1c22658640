-- Building a request from what a script gives (the URL and its params,
-- credentials, the body and its framing, the headers) into what the
-- exchange sends, and a session's cache of requests made without options.
local auth = require "lurl.auth"
local body_mod = require "lurl.body"
local codec = require("lurl.core").codec
local core = require "lurl.core"
local decompress = require "lurl.decompress"
local check = require "lurl.check"
local formdata = require "lurl.formdata"
local h1 = require "lurl.h1"
local headers_mod = require "lurl.headers"
local netrc = require "lurl.netrc"
local proxy_mod = require "lurl.proxy"
local timeout = require "lurl.timeout"
local url = require "lurl.url"

local M = {}

M.USER_AGENT = "lurl/" .. core.version
-- Only what the runtime decodes is advertised.
M.ACCEPT_ENCODING = decompress.ACCEPT

-- The options of a request made without any (the cache serves those).
M.NO_OPTIONS = {}
local NO_OPTIONS = M.NO_OPTIONS

function M.lower_set(list)
  local set = {}
  for _, name in ipairs(list or {}) do set[name:lower()] = true end
  return set
end
local lower_set = M.lower_set

-- encoded: the path and query are taken as written, not requoted (the
-- next hop of a redirect under requote_redirect_url = false).
local ENCODED = { encoded = true }
local function build_url(session, raw, params, fname, encoded)
  local u, err
  if type(raw) ~= "string" then check.argerror(fname, "#2", "URL string expected, got " .. type(raw)) end
  if session.base_url and not raw:match("^[%a][%w+.-]*:") then
    u, err = url.join(session.base_url, raw)
  else
    u, err = url.parse(raw, encoded and ENCODED or nil)
  end
  if not u then return nil, err end
  u, err = url.check_http(u, raw)
  if not u then return nil, err end
  if params ~= nil then
    if type(params) ~= "string" and type(params) ~= "table" then
      check.argerror(fname, "'params'", "table or string expected, got " .. type(params))
    end
    local ok, res = pcall(url.with_params, u, params)
    if not ok then check.argerror(fname, "'params'", res) end
    u = res
  end
  local fragment = u.fragment
  u.fragment = nil
  return u, nil, fragment
end

-- A body that names no type of its own is application/octet-stream, as
-- aiohttp's bytes and generator payloads say it (RFC 9110 section 8.3:
-- the sender knows no better); a file's type comes from its name first.
local OCTET = "application/octet-stream"

local function build_body(session, opts, fname)
  if opts.data ~= nil and opts.json ~= nil then
    check.argerror(fname, "#2", "'data' and 'json' cannot be used together")
  end
  if opts.json ~= nil then return session.json_serialize(opts.json), "application/json" end
  local data = opts.data
  if data == nil then return nil end
  if type(data) == "string" then return data, OCTET end
  local streamed = body_mod.from_data(data)
  if streamed then return streamed, body_mod.is_file(data) and formdata.guess_type(data.path) or OCTET end
  if formdata.is(data) then
    local ok, b = pcall(data.body, data)
    if not ok then check.argerror(fname, "'data'", b) end
    if #b.parts == 1 and type(b.parts[1]) == "string" then return b.parts[1], b.content_type end
    return body_mod.stream(b.parts), b.content_type
  end
  if type(data) == "table" then
    local ok, res = pcall(url.encode_form, data)
    if not ok then check.argerror(fname, "'data'", res) end
    return res, "application/x-www-form-urlencoded"
  end
  check.argerror(fname, "'data'", "string, table, lurl.formdata, lurl.file or generator function expected, got "
    .. type(data))
end

local DATA_TYPES = { string = true, table = true, ["function"] = true }
local CODINGS = { gzip = true, deflate = true }

-- The Content-Encoding compress asks for: "gzip", "deflate", true (deflate,
-- as in aiohttp), or false/nil for none.
local function coding_of(opts, fname)
  local coding = opts.compress
  if coding == true then return "deflate" end
  if not coding then return false end
  if not CODINGS[coding] then
    check.argerror(fname, "'compress'", "\"gzip\", \"deflate\" or true expected, got " .. tostring(coding))
  end
  return coding
end

-- The request line's HTTP version (aiohttp's version=), or nil for the
-- session's; a wrong one raises.
local VERSIONS = { ["1.0"] = true, ["1.1"] = true }
function M.version(v, fname)
  if v ~= nil and not VERSIONS[v] then
    check.argerror(fname, "'version'", "\"1.0\" or \"1.1\" expected, got " .. tostring(v))
  end
  return v
end

-- check(opts, fname): what prepare would refuse in the options alone,
-- refused before a middleware chain, which prepares the request inside.
function M.check(opts, fname)
  if opts.data ~= nil and opts.json ~= nil then
    check.argerror(fname, "#2", "'data' and 'json' cannot be used together")
  end
  local data = opts.data
  if data ~= nil and not DATA_TYPES[type(data)] and not body_mod.from_data(data) and not formdata.is(data) then
    check.argerror(fname, "'data'", "string, table, lurl.formdata, lurl.file or generator function expected, got "
      .. type(data))
  end
  local params = opts.params
  if params ~= nil and type(params) ~= "string" and type(params) ~= "table" then
    check.argerror(fname, "'params'", "table or string expected, got " .. type(params))
  end
  coding_of(opts, fname)
  M.version(opts.version, fname)
  if opts.timeout ~= nil then timeout.merge(timeout.default, opts.timeout, fname) end
end

-- compress = "gzip" | "deflate" | true: the body compressed with
-- Content-Encoding (RFC 9110 section 8.4). A string at once (its length
-- stays known); a streamed body as it goes out, chunked.

local function compress_body(body, opts, fname)
  local coding = coding_of(opts, fname)
  if not coding or not body then return body end
  if type(body) == "string" then
    local enc = codec.encoder(coding)
    return enc:feed(body) .. enc:finish()
  end
  return body_mod.compressed(body, coding)
end

-- The framing of a streamed body (RFC 9112 section 6): the Content-Length
-- the script set, else its known length, else chunked (always with
-- chunked = true). Returns whether it is chunked and the length declared.
local function frame(h, streamed, chunked, fname)
  local given = h:get("Content-Length")
  if given then
    -- RFC 9110 section 8.6: 1*DIGIT, nothing else
    local n = given:match("^%d+$") and tonumber(given)
    if not n then
      check.argerror(fname, "'headers'", "Content-Length must be a byte count, got " .. given)
    end
    if chunked then check.argerror(fname, "'chunked'", "cannot be combined with a Content-Length header") end
    return false, n
  end
  if chunked or not streamed.length then
    h:set("Transfer-Encoding", "chunked")
    return true, nil
  end
  h:set("Content-Length", tostring(streamed.length))
  return false, streamed.length
end

-- A Transfer-Encoding the script set itself: lurl applies chunked and no
-- other coding, and never sends it beside a Content-Length (RFC 9112
-- section 6.1: an intermediary that honours Transfer-Encoding would misread
-- the request). Returns whether the body goes chunked.
local function asked_chunked(h, opts, fname)
  local te = h:get("Transfer-Encoding")
  if not te then return opts.chunked end
  if not te:lower():match("^%s*chunked%s*$") then
    check.argerror(fname, "'headers'", "Transfer-Encoding: lurl sends only chunked, got " .. te)
  end
  if h:has("Content-Length") then
    check.argerror(fname, "'headers'", "Transfer-Encoding and Content-Length cannot be sent together")
  end
  h:remove("Transfer-Encoding")
  return true
end

local METHODS_WITH_BODY = { POST = true, PUT = true, PATCH = true }

-- Add a header the script did not set itself nor ask to skip.
local function auto(h, skip, name, value)
  if not skip[name:lower()] and not h:has(name) then h:add(name, value) end
end

-- Proxy-Authorization goes to the proxy only (RFC 9110 section 11.7.1):
-- in the request itself when the proxy forwards it (absolute-form), on the
-- CONNECT of a tunnel (a value the script set in the headers counts when
-- proxy_auth gives none), and nowhere when the request goes direct.
local function proxy_fields(h, proxy, fname)
  local given = h:get("Proxy-Authorization")
  if given then h:remove("Proxy-Authorization") end
  if not proxy then return end
  if not proxy.authorization then proxy.authorization = given end
  if proxy.tunnel then return end
  if proxy.authorization then h:set("Proxy-Authorization", proxy.authorization) end
  if proxy.headers then
    local ok, err = pcall(h.update, h, proxy.headers)
    if not ok then check.argerror(fname, "'proxy_headers'", err) end
  end
end

local function build_headers(session, method, u, opts, body, ctype, creds, fname, proxy)
  local h = headers_mod.new(session.headers)
  if opts.headers then
    local ok, err = pcall(h.update, h, opts.headers)
    if not ok then check.argerror(fname, "'headers'", err) end
  end
  local skip = session.skip_auto_headers
  if opts.skip_auto_headers then skip = setmetatable(lower_set(opts.skip_auto_headers), { __index = skip }) end
  auto(h, skip, "Host", url.host_header(u))
  auto(h, skip, "User-Agent", M.USER_AGENT)
  auto(h, skip, "Accept", "*/*")
  local decoding = opts.auto_decompress
  if decoding == nil then decoding = session.auto_decompress end
  -- advertise exactly what is decoded: nothing when the script takes the bytes as they come
  if decoding then auto(h, skip, "Accept-Encoding", M.ACCEPT_ENCODING) end
  local chunked, declared = false, nil
  local chunk = asked_chunked(h, opts, fname)
  if chunk and type(body) == "string" then body = body_mod.stream({ body }) end
  if opts.expect100 and body then h:set("Expect", "100-continue") end
  local coding = coding_of(opts, fname)
  if coding and body then
    if h:has("Content-Encoding") then
      check.argerror(fname, "'compress'", "cannot be combined with a Content-Encoding header")
    end
    h:set("Content-Encoding", coding)
  end
  if type(body) == "table" then
    chunked, declared = frame(h, body, chunk, fname)
    if ctype then auto(h, skip, "Content-Type", ctype) end
  elseif body then
    h:set("Content-Length", tostring(#body))
    if ctype then auto(h, skip, "Content-Type", ctype) end
  elseif METHODS_WITH_BODY[method] then
    h:set("Content-Length", "0")
  end
  if session.connector.force_close then h:set("Connection", "close") end
  if opts.strip then
    for _, name in ipairs(opts.strip) do h:remove(name) end
  end
  proxy_fields(h, proxy, fname)
  if creds then
    if h:has("Authorization") then
      check.argerror(fname, "'auth'", "cannot be combined with an Authorization header")
    end
    h:set("Authorization", creds:encode())
  end
  return h, chunked, declared, body
end

-- The pool key: the origin's, the proxy's when the proxy forwards every
-- request on one connection (absolute-form: any origin may share it), or
-- the origin's through that proxy for a tunnel.
local function pool_key(connector, u, port, ssl, proxy)
  local key = connector:key(u.scheme, u.host, port, ssl or nil)
  if not proxy then return key end
  if proxy.tunnel then return key .. "|via " .. proxy.key end
  return "proxy " .. proxy.key
end

-- RFC 9112 section 9.3: after an HTTP/1.1 request the connection persists
-- unless the request says close; after an HTTP/1.0 one only when it asks
-- for keep-alive (aiohttp sends no Connection field for 1.0 by itself). The
-- pool reuses the connection when this and the response (the parser's
-- keep_alive) both say so: a server may answer a 1.0 request in HTTP/1.1
-- without "close" and close anyway.
local function keeps_alive(h, version)
  local connection = table.concat(h:get_all("Connection"), ",")
  if version == "1.0" then return headers_mod.has_token(connection, "keep-alive") end
  return not headers_mod.has_token(connection, "close")
end

-- HTTP/1.0 has no chunked transfer coding (RFC 9112 section 6.1: a client
-- must not send Transfer-Encoding unless it knows the server speaks 1.1),
-- so a body of unknown length cannot be framed. It is refused, not
-- buffered: a generator may be long or endless, and reading it here would
-- spend it before the connection exists.
local function check_framing(version, chunked, fname)
  if version == "1.0" and chunked then
    check.argerror(fname, "'version'", "HTTP/1.0 cannot frame a body of unknown length (a generator, a compressed "
      .. "stream, chunked = true or Transfer-Encoding): send a string or a lurl.file, or use HTTP/1.1")
  end
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
local function credentials(session, u, opts, fname)
  local from_url, err = auth.from_url(u)
  if err then return nil, err end
  if from_url then u = url.strip_userinfo(u) end
  local own = opts.auth
  if from_url and opts.redirected then return u, from_url end -- the server's Location names them
  if own and from_url then
    check.argerror(fname, "'auth'", "cannot be combined with credentials in the URL")
  end
  if own then return u, own end
  if from_url or own == false then return u, from_url end
  local base = session.base_url
  if session.auth and (not base or origin(base) == origin(u)) then return u, session.auth end
  -- trust_env: ~/.netrc when nothing else applies (aiohttp)
  if session.netrc then
    local login, password = netrc.credentials(session.netrc, u.host)
    if login then return u, auth.basic(login, password or "") end
  end
  return u, nil
end

-- prepare(session, method, raw_url, opts, fname) -> what a request needs
-- before it is sent: { method, u, url_string, port, key, headers, body,
-- bytes (the encoded request, when it can be reused) }, or nil and an
-- InvalidURL error. fname: the function the script called (get, post, ...,
-- request), which argument errors name.
local function prepare(session, method, raw_url, opts, fname)
  local u, err, fragment = build_url(session, raw_url, opts.params, fname,
    opts.redirected and session.requote_redirect_url == false)
  if not u then return nil, err end
  local creds
  u, creds = credentials(session, u, opts, fname)
  if not u then return nil, creds end
  local body, ctype = build_body(session, opts, fname)
  body = compress_body(body, opts, fname)
  local proxy = proxy_mod.for_request(session, u, opts, fname)
  local headers, chunked, declared
  headers, chunked, declared, body = build_headers(session, method, u, opts, body, ctype, creds, fname, proxy)
  -- a WebSocket's opening handshake is HTTP/1.1 (RFC 6455 section 4.1)
  local version = opts.websocket and "1.1" or M.version(opts.version, fname) or session.version or "1.1"
  check_framing(version, chunked, fname)
  local port = u.port or url.default_ports[u.scheme]
  local connector = session.connector
  local http2 = opts.http2
  if http2 == nil then http2 = session.http2 end
  -- h2 by ALPN over TLS, h2c only with prior knowledge (RFC 9113 3.2, 3.3);
  -- a request that asked for HTTP/1.0 gets it
  local h2 = u.scheme == "https" and (http2 == true or http2 == "required")
    or (u.scheme == "http" and http2 == "prior_knowledge")
  if opts.websocket or version == "1.0" then h2 = false end
  local ssl = u.scheme == "https" and connector:tls_for(opts.ssl, opts.server_hostname, h2)
  local url_string = url.tostring(u)
  return {
    method = method, u = u, url_string = url_string, fragment = fragment, port = port,
    key = pool_key(connector, u, port, ssl, proxy) .. (h2 and u.scheme == "http" and "|h2c" or ""), ssl = ssl,
    http2 = h2 and http2 or false, headers = headers, body = body,
    auth = creds or false, chunked = chunked, declared = declared,
    version = version, keep_alive = keeps_alive(headers, version),
    expect100 = opts.expect100 and body ~= nil or false,
    proxy = proxy or false,
    -- RFC 9112 section 3.2.2: a request a proxy forwards names the origin
    target = proxy and not proxy.tunnel and url_string or false,
  }
end

-- A request made without options to a URL string seen before reuses what
-- was prepared for it, encoded request included (loops that hit one URL
-- spend no time building requests). The cache is bounded and starts over
-- when full; a change to session.headers makes it start over too.
local PREPARED_MAX = 256

local function prepared(session, method, raw_url, fname)
  local cache, h = session.prepared, session.headers
  local changes = headers_mod.changes(h)
  if cache.headers ~= h or cache.changes ~= changes or cache.size >= PREPARED_MAX then
    cache = { headers = h, changes = changes, size = 0, by_method = {} }
    session.prepared = cache
  end
  local urls = cache.by_method[method]
  if not urls then urls = {}; cache.by_method[method] = urls end
  local p = urls[raw_url]
  if p then return p end
  local err
  p, err = prepare(session, method, raw_url, NO_OPTIONS, fname)
  if not p then return nil, err end
  p.bytes = h1.encode { method = method, url = p.u, target = p.target, version = p.version, headers = p.headers,
    body = p.body }
  urls[raw_url], cache.size = p, cache.size + 1
  return p
end

M.build_url = build_url
M.origin = origin
M.prepare = prepare
M.prepared = prepared

return M
