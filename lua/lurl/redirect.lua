-- The rules of following a redirect (RFC 9110 section 15.4), as aiohttp and
-- curl apply them: which statuses redirect, what becomes of the method and
-- the body, which credentials and headers go on to the next hop, where the
-- Location points. The session (lurl.session) follows them hop by hop.
local errors = require "lurl.errors"
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

-- target(resp, base, location) -> the URL a redirect points to, resolved
-- against the response's URL (RFC 3986 section 5), or nil and
-- InvalidUrlRedirectClientError / NonHttpUrlRedirectClientError.
function M.target(resp, base, location)
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

-- too_many(history, max) -> the TooManyRedirects error.
function M.too_many(history, max)
  local last = history[#history]
  return errors.new("TooManyRedirects", ("more than max_redirects=%d redirects"):format(max),
    { url = last.url, method = last.method, status = last.status, history = history })
end

return M
