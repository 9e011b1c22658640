-- Sending a prepared request and following its redirects (RFC 9110
-- section 15.4) hop by hop, as aiohttp and curl do: which statuses
-- redirect, what becomes of the method and the body, which credentials and
-- headers go on to the next hop, where the Location points. Each hop is one
-- exchange (lurl.exchange) with the jar's cookies, and the jar learns the
-- cookies each response sets.
local errors = require "lurl.errors"
local exchange = require "lurl.exchange"
local prepare = require "lurl.prepare"
local url = require "lurl.url"

local M = {}

M.STATUSES = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- method(status, method) -> the next hop's method, and whether it keeps
-- the body. A 303 turns anything but HEAD into a GET without body; so do
-- 301 and 302 for a POST (section 15.4.2, what browsers, curl and aiohttp
-- do). 307 and 308 keep the method and the body.
function M.method(status, method)
  if (status == 303 and method ~= "HEAD") or ((status == 301 or status == 302) and method == "POST") then
    return "GET", false
  end
  return method, true
end

-- Credentials and explicit cookies never follow a redirect to another
-- origin (aiohttp; curl does the same for Authorization).
local CROSS_ORIGIN_STRIP = { "Authorization", "Proxy-Authorization", "Cookie" }
local BODY_HEADERS = { "Content-Length", "Content-Type", "Transfer-Encoding" }

-- options(opts, keep_body, cross, used) -> the options of the next hop: no
-- params (the Location has its query), no body after a change to GET, the
-- credentials of the first hop within its origin and none, nor an SNI
-- name, for another. used: what the last hop sent (p.auth).
function M.options(opts, keep_body, cross, used)
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
  if opts.strip then
    for _, name in ipairs(opts.strip) do strip[#strip + 1] = name end
  end
  o.strip = strip
  return o
end

-- target(resp, base, location[, raw]) -> the URL a redirect points to,
-- resolved against the response's URL (RFC 3986 section 5), or nil and
-- InvalidUrlRedirectClientError / NonHttpUrlRedirectClientError. raw: the
-- Location's path and query are kept as sent, not requoted (aiohttp's
-- requote_redirect_url = false).
local ENCODED = { encoded = true }
function M.target(resp, base, location, raw)
  local ctx = { url = resp.url, method = resp.method, status = resp.status, location = location }
  local ref = url.parse(location, raw and ENCODED or nil)
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

-- too_many(history, max) -> the TooManyRedirects error.
function M.too_many(history, max)
  local last = history[#history]
  return errors.new("TooManyRedirects", ("more than max_redirects=%d redirects"):format(max),
    { url = last.url, method = last.method, status = last.status, history = history })
end

-- ---- sending, hop by hop ----

-- The Cookie header of a request (RFC 6265 section 5.4): the jar merges an
-- explicit one with its cookies for the URL and the request's own
-- cookies=. Returns the headers and encoded bytes to send.
local function with_cookies(session, p, opts)
  local jar, own = session.cookie_jar, opts.cookies
  if own == nil and jar:count() == 0 then return p.headers, p.bytes end
  local value = jar:cookie_header(p.u, own, p.headers:get("Cookie"))
  if not value then return p.headers, p.bytes end
  local h = p.headers:copy()
  h:set("Cookie", value)
  return h, nil
end

-- One hop: p (what prepare made) sent and its response read; the jar
-- learns the cookies it set.
local function hop(session, p, opts, deadline, tr)
  local headers, bytes = with_cookies(session, p, opts)
  local ex = exchange.new(session, p, opts, headers, bytes, tr)
  local resp, err = exchange.perform(session, ex, deadline)
  if not resp then return nil, errors.annotate(err, ex.context) end
  -- the parser said whether the head has Set-Cookie: most do not, and
  -- then their headers need not be built
  if resp._sets_cookies then session.cookie_jar:update_from_headers(resp.headers:get_all("set-cookie"), p.u) end
  return resp
end

-- The request of the hop after resp, a redirect to location; or nil, err.
local function next_hop(session, resp, p, opts, location, history, tr, fname)
  local u, err = M.target(resp, p.u, location, session.requote_redirect_url == false)
  if not u then return nil, err end
  if tr then
    tr:emit("request_redirect", { method = p.method, url = resp.url, headers = p.headers:copy(), response = resp })
  end
  local method, keep_body = M.method(resp.status, p.method)
  if keep_body and type(p.body) == "table" and not p.body.replayable then
    return nil, errors.new("ClientError", ("cannot follow the %d redirect: the request body (a generator) "
      .. "was sent once and cannot be sent again"):format(resp.status),
      { url = resp.url, method = method, status = resp.status, history = history })
  end
  opts = M.options(opts, keep_body, prepare.origin(u) ~= prepare.origin(p.u), p.auth)
  local q
  q, err = prepare.prepare(session, method, url.tostring(u), opts, fname)
  return q, err, opts
end

-- Send the request and follow its redirects: the final response (with the
-- earlier ones in resp.history) or nil, err; then what prepare made for the
-- last hop. All hops share the deadline.
local function follow(session, p, opts, deadline, tr, fname)
  local allow = opts.allow_redirects
  if allow == nil then allow = p.method ~= "HEAD" end
  local max = opts.max_redirects or 10
  local history -- made at the first redirect: most requests have none
  local resp, err = hop(session, p, opts, deadline, tr)
  while resp and allow and M.STATUSES[resp.status] do
    local location = resp.headers["location"]
    if not location then break end
    history = history or {}
    history[#history + 1] = resp
    if #history > max then return nil, M.too_many(history, max) end
    resp:release()
    p, err, opts = next_hop(session, resp, p, opts, location, history, tr, fname)
    if not p then return nil, err end
    resp, err = hop(session, p, opts, deadline, tr)
  end
  if resp and history then rawset(resp, "history", history) end
  return resp, err, p
end

-- follow with the request_start, request_end and request_exception
-- signals; the last two tell the last hop's method, URL and headers.
local function traced(session, p, opts, deadline, tr, fname)
  tr:emit("request_start", { method = p.method, url = p.url_string, headers = p.headers:copy() })
  local ok, resp, err, last = pcall(follow, session, p, opts, deadline, tr, fname)
  last = last or p
  local params = { method = last.method, url = last.url_string, headers = last.headers:copy() }
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

-- send(session, p, opts, deadline, tr, fname) -> the final response, or
-- nil, err: p sent (p: what lurl.prepare made) and its redirects followed
-- under one deadline. tr: the request's trace, or nil; fname: the function
-- the script called, which argument errors name.
function M.send(session, p, opts, deadline, tr, fname)
  if tr then return traced(session, p, opts, deadline, tr, fname) end
  local resp, err = follow(session, p, opts, deadline, nil, fname)
  return resp, err
end

return M
