-- The WebSocket opening handshake (RFC 6455 section 4; aiohttp's
-- ws_connect): a GET with Upgrade: websocket through the same prepare,
-- pool, proxy, TLS and timeout machinery as any request, redirects before
-- the 101 followed as aiohttp follows them, the 101 checked (accept key,
-- subprotocol, permessage-deflate parameters, RFC 7692 section 7.1), and
-- the stream handed to lurl.websocket.
local core = require "lurl.core"
local errors = require "lurl.errors"
local exchange = require "lurl.exchange"
local h1 = require "lurl.h1"
local headers_mod = require "lurl.headers"
local prepare = require "lurl.prepare"
local redirect = require "lurl.redirect"
local timeout = require "lurl.timeout"
local url = require "lurl.url"
local websocket = require "lurl.websocket"

local M = {}

-- ws:// and wss:// are http:// and https:// until the 101 (section 3);
-- aiohttp takes http(s):// URLs too.
local HTTP_SCHEME = { ws = "http", wss = "https" }

local function http_url(raw)
  local scheme, rest = raw:match("^(%a[%w+.-]*)(:.*)$")
  local mapped = scheme and HTTP_SCHEME[scheme:lower()]
  return mapped and (mapped .. rest) or raw
end

-- ---- the request ----

-- RFC 7692 section 7.1: the offer; compress is the largest server window
-- the client accepts (aiohttp's compress=15 offers no limit), and the
-- client lets the server pick the client's window.
local function offer(compress)
  local parts = { "permessage-deflate", "client_max_window_bits" }
  if compress < 15 then parts[#parts + 1] = "server_max_window_bits=" .. compress end
  return table.concat(parts, "; ")
end

local function upgrade_headers(given, key, o)
  local h = headers_mod.new(given)
  h:set("Upgrade", "websocket")
  h:set("Connection", "Upgrade")
  h:set("Sec-WebSocket-Version", "13")
  h:set("Sec-WebSocket-Key", key)
  if o.protocols and #o.protocols > 0 then h:set("Sec-WebSocket-Protocol", table.concat(o.protocols, ", ")) end
  if o.origin then h:set("Origin", o.origin) end
  if o.compress then h:set("Sec-WebSocket-Extensions", offer(o.compress)) end
  return h
end

-- ---- the answer ----

local function refused(head, headers, msg, ctx)
  return errors.annotate(errors.new("WSServerHandshakeError", msg,
    { status = head[h1.STATUS], reason = head[h1.REASON], headers = headers }), ctx)
end

local function window_bits(v)
  local n = v and v:match("^%d+$") and tonumber(v)
  return n and n >= 8 and n <= 15 and n or nil
end

-- The server's permessage-deflate answer (RFC 7692 sections 7.1.1-7.1.2):
-- the parameters, or nil and why it cannot be accepted.
local function deflate_params(value, compress)
  local ext, params = value:match("^%s*([%w-]+)%s*(.-)%s*$")
  if ext ~= "permessage-deflate" or value:find(",", 1, true) then return nil, "unrequested extension: " .. value end
  local d, seen = { client_bits = 15, server_bits = 15 }, {}
  for param in params:gmatch(";%s*([^;]+)") do
    local name, v = param:match("^([%w_]+)%s*=?%s*\"?([^\"]*)\"?%s*$")
    if not name or seen[name] then return nil, "bad permessage-deflate parameter: " .. param end
    seen[name] = true
    if name == "server_no_context_takeover" and v == "" then d.server_no_context_takeover = true
    elseif name == "client_no_context_takeover" and v == "" then d.client_no_context_takeover = true
    elseif name == "server_max_window_bits" and window_bits(v) and window_bits(v) <= compress then
      d.server_bits = window_bits(v)
    elseif name == "client_max_window_bits" and window_bits(v) then d.client_bits = window_bits(v)
    else return nil, "bad permessage-deflate parameter: " .. param end
  end
  return d
end

-- check(head, key, o, ctx) -> { protocol, deflate, headers }, or nil and a
-- WSServerHandshakeError (section 4.2.2's checks, as aiohttp makes them).
local function check_answer(head, key, o, ctx)
  local headers = headers_mod.from_block(head[h1.FIELDS])
  if head[h1.STATUS] ~= 101 then return nil, refused(head, headers, "Invalid response status", ctx) end
  if (headers["upgrade"] or ""):lower() ~= "websocket" then
    return nil, refused(head, headers, "Invalid upgrade header", ctx)
  end
  if not headers_mod.has_token(headers["connection"], "upgrade") then
    return nil, refused(head, headers, "Invalid connection header", ctx)
  end
  if headers["sec-websocket-accept"] ~= core.ws.accept(key) then
    return nil, refused(head, headers, "Invalid challenge response", ctx)
  end
  local protocol = headers["sec-websocket-protocol"]
  if protocol and not headers_mod.has_token(table.concat(o.protocols or {}, ","), protocol:lower()) then
    return nil, refused(head, headers, "Unrequested subprotocol: " .. protocol, ctx)
  end
  local deflate, why
  local ext = headers["sec-websocket-extensions"]
  if ext then
    if not o.compress then return nil, refused(head, headers, "Unrequested extension: " .. ext, ctx) end
    deflate, why = deflate_params(ext, o.compress)
    if not deflate then return nil, refused(head, headers, why, ctx) end
  end
  return { protocol = protocol, deflate = deflate, headers = headers }
end

-- ---- the walk ----

-- One handshake attempt: the stream, the head and what came behind it.
local function attempt(session, p, o, key, deadline)
  local h = upgrade_headers(p.headers, key, o)
  local cookie = session.cookie_jar:cookie_header(p.u, o.cookies, h:get("Cookie"))
  if cookie then h:set("Cookie", cookie) end
  local ex = exchange.new(session, p, o.request, h, nil, nil)
  local stream, head, extra, tls = exchange.upgrade(session, ex, deadline)
  if not stream then return nil, errors.annotate(head, ex.context) end
  local set = headers_mod.from_block(head[h1.FIELDS]):get_all("set-cookie")
  if set[1] then session.cookie_jar:update_from_headers(set, p.u) end
  return stream, head, extra, tls, ex.context
end

-- connect(session, raw_url, o, fname) -> a lurl.websocket, or nil, err. o:
-- the checked options of ws_connect; o.request: those that prepare takes.
function M.connect(session, raw_url, o, fname)
  local deadline = timeout.start(session.timeout)
  local p, err = prepare.prepare(session, "GET", http_url(raw_url), o.request, fname)
  if not p then return nil, err end
  for _ = 0, o.max_redirects do
    local key = core.ws.key()
    local stream, head, extra, tls, ctx = attempt(session, p, o, key, deadline)
    if not stream then return nil, head end
    local location = redirect.STATUSES[head[h1.STATUS]] and headers_mod.from_block(head[h1.FIELDS])["location"]
    if not location then
      local answer
      answer, err = check_answer(head, key, o, ctx)
      if not answer then stream:close(); return nil, err end
      return websocket.new(stream, extra, {
        url = p.url_string, protocol = answer.protocol, headers = answer.headers, tls = tls,
        deflate = answer.deflate, autoclose = o.autoclose, autoping = o.autoping, heartbeat = o.heartbeat,
        max_msg_size = o.max_msg_size, timeout = o.timeout, json_serialize = session.json_serialize,
      })
    end
    stream:close()
    local u
    u, err = redirect.target({ url = p.url_string, method = "GET", status = head[h1.STATUS] }, p.u, location,
      session.requote_redirect_url == false)
    if not u then return nil, err end
    local opts = redirect.options(o.request, true, prepare.origin(u) ~= prepare.origin(p.u), p.auth)
    p, err = prepare.prepare(session, "GET", url.tostring(u), opts, fname)
    if not p then return nil, err end
  end
  return nil, errors.new("TooManyRedirects", ("more than max_redirects=%d redirects"):format(o.max_redirects),
    { url = p.url_string, method = "GET" })
end

return M
