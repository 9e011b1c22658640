-- Which proxy a request goes through, as aiohttp's proxy=, proxy_auth=,
-- proxy_headers= and trust_env choose it, and how it is described down the
-- request path. A proxy is a record:
--   { scheme, host, port, url (never with credentials), auth (a
--     lurl.basic_auth or nil), authorization (the Proxy-Authorization
--     value, RFC 9110 section 11.7.1), username, password (SOCKS), headers
--     (proxy_headers or nil), ssl (the TLS settings of an https proxy),
--     key (its identity in the pool), tunnel (whether the request goes
--     through a tunnel rather than in absolute-form), socks (a SOCKS
--     proxy), remote_dns (the proxy resolves the origin's name: HTTP
--     proxies, socks4a, socks5h) }
-- Credentials never appear in url, key or any message.
local auth = require "lurl.auth"
local check = require "lurl.check"
local netrc = require "lurl.netrc"
local proxy_env = require "lurl.proxy_env"
local socks = require "lurl.socks"
local tls = require "lurl.tls"
local url = require "lurl.url"

local M = {}

M.DEFAULT_PORTS = { http = 80, https = 443, socks4 = 1080, socks4a = 1080, socks5 = 1080, socks5h = 1080 }
local SOCKS = { socks4 = true, socks4a = true, socks5 = true, socks5h = true }

-- A number per distinct set of credentials, so that tunnels opened with one
-- never serve requests made with another, without the key holding them.
local credential_ids, next_credential_id = {}, 0

local function credential_id(username, password)
  local k = username .. "\0" .. (password or "")
  local id = credential_ids[k]
  if not id then
    next_credential_id = next_credential_id + 1
    id = next_credential_id
    credential_ids[k] = id
  end
  return id
end

-- parse(raw, fname, what) -> { scheme, host, port, url, username, password }
-- of a proxy URL, or raises an argument error naming the option (what).
function M.parse(raw, fname, what)
  local u, err = url.parse(raw)
  if not u or not u.host or u.host == "" then
    check.argerror(fname, what, "proxy URL expected, got '" .. tostring(raw) .. "'"
      .. (err and (": " .. err.message) or ""))
  end
  local scheme = u.scheme and u.scheme:lower()
  if not M.DEFAULT_PORTS[scheme] then
    check.argerror(fname, what, ("unsupported proxy scheme '%s' (http, https, socks4, socks4a, socks5 or socks5h)")
      :format(tostring(u.scheme)))
  end
  local port = u.port or M.DEFAULT_PORTS[scheme]
  local host = u.host:find(":", 1, true) and ("[" .. u.host .. "]") or u.host
  return { scheme = scheme, host = u.host, port = port, url = scheme .. "://" .. host .. ":" .. port,
    username = u.user, password = u.password }
end

-- The proxy URL a request names: its own proxy option, the session's, or
-- the environment's under trust_env. false: direct.
local function named(session, u, opts)
  local p = opts.proxy
  if p == nil then p = session.proxy end
  if p ~= nil then return p end
  if not session.proxy_env then return false end
  -- a WebSocket's URL is ws:// or wss:// for the environment (WS_PROXY,
  -- WSS_PROXY), though it travels as http(s) until the 101
  local scheme = u.scheme
  if opts.websocket then scheme = scheme == "https" and "wss" or "ws" end
  return proxy_env.proxy_for(session.proxy_env, scheme, u.host, u.port) or false
end

-- Credentials for the proxy: proxy_auth, else those in its URL, else
-- ~/.netrc's under trust_env (aiohttp's order).
local function credentials(session, p, opts)
  local given = opts.proxy_auth
  if given == nil then given = session.proxy_auth end
  if given then return given end
  if p.username then return auth.basic(p.username, p.password or "") end
  if session.netrc then
    local login, password = netrc.credentials(session.netrc, p.host)
    if login then return auth.basic(login, password or "") end
  end
  return nil
end

-- for_request(session, u, opts, fname) -> the proxy record for a request to
-- the parsed URL u, or nil when it goes direct.
function M.for_request(session, u, opts, fname)
  local raw = named(session, u, opts)
  if not raw then return nil end
  local p = M.parse(raw, fname, opts.proxy ~= nil and "'proxy'" or "the session's proxy")
  local creds = credentials(session, p, opts)
  p.auth = creds or nil
  p.authorization = creds and creds:encode() or nil
  if creds and SOCKS[p.scheme] then p.username, p.password = creds.login, creds.password end
  local why = SOCKS[p.scheme] and socks.misuse(p)
  if why then check.argerror(fname, opts.proxy_auth and "'proxy_auth'" or "'proxy'", why) end
  p.headers = opts.proxy_headers or session.proxy_headers
  p.socks = SOCKS[p.scheme] or false
  p.remote_dns = p.scheme ~= "socks4" and p.scheme ~= "socks5"
  -- a WebSocket goes through a tunnel whatever its scheme (RFC 6455
  -- section 4.1: a client may use CONNECT), so the proxy never sees frames
  p.tunnel = p.socks or u.scheme == "https" or opts.websocket == true
  local key = p.url
  if creds then key = key .. "#" .. credential_id(creds.login, creds.password) end
  if p.scheme == "https" then
    local ssl = opts.proxy_ssl
    if ssl == nil then ssl = session.proxy_ssl end
    p.ssl = tls.settings(ssl)
    key = key .. p.ssl.tag
  end
  p.key = key
  return p
end

return M
