-- A tunnel through an HTTP proxy (CONNECT, RFC 9110 section 9.3.6): on a
-- stream to the proxy (TLS already on it for an https proxy), ask for
-- host:port and read the proxy's answer head. A 2xx makes the stream a
-- tunnel to the origin; anything else is the proxy's refusal, a
-- ClientHttpProxyError, and its body never reaches the caller.
local core = require "lurl.core"
local errors = require "lurl.errors"
local h1 = require "lurl.h1"
local headers_mod = require "lurl.headers"

local M = {}

-- RFC 9110 section 9.3.6: the target is the authority-form host:port, and
-- so is Host (RFC 9112 section 3.2.3).
local function authority(host, port)
  return (host:find(":", 1, true) and ("[" .. host .. "]") or host) .. ":" .. port
end

local function request(proxy, target)
  local h = headers_mod.new(proxy.headers)
  h:set("Host", target)
  if proxy.authorization then h:set("Proxy-Authorization", proxy.authorization) end
  return assert(core.h1.encode("CONNECT " .. target .. " HTTP/1.1", h:flat()))
end

-- The answer head as a connection's head event (lurl.h1 names the
-- positions), or nil, message, errno.
local function read_answer(stream, deadline, ctx)
  local ev, extra, ename = h1.read_head(stream, deadline, "sock_connect", ctx)
  if not ev then return nil, extra, ename end
  -- RFC 9110 section 9.3.6: the client speaks first through a tunnel it
  -- was granted, so bytes right behind a 2xx are a broken proxy (those
  -- behind a refusal are its body, which nobody reads)
  local granted = ev[h1.STATUS] >= 200 and ev[h1.STATUS] < 300
  if granted and extra ~= "" then return nil, "the proxy sent bytes after granting CONNECT", "EPROTO" end
  return ev
end

local function refused(proxy, target, head, ctx)
  local status, reason = head[h1.STATUS], head[h1.REASON]
  return errors.annotate(errors.new("ClientHttpProxyError",
    ("proxy %s refused CONNECT %s: %d %s"):format(proxy.url, target, status, reason or ""),
    { status = status, reason = reason, proxy = proxy.url, headers = headers_mod.from_block(head[h1.FIELDS]) }), ctx)
end

-- open(stream, proxy, host, port, deadline, ctx) -> true, or nil and a
-- typed error: ClientHttpProxyError when the proxy answered with anything
-- but 2xx, ClientProxyConnectionError when it failed to answer.
function M.open(stream, proxy, host, port, deadline, ctx)
  local target = authority(host, port)
  local ok, err, ename = stream:write(request(proxy, target))
  if ok == nil then
    return nil, errors.new("ClientProxyConnectionError", ("cannot send CONNECT to proxy %s: %s"):format(proxy.url, err),
      { proxy = proxy.url, errno = ename, host = host, port = port })
  end
  local head
  head, err, ename = read_answer(stream, deadline, ctx)
  if not head then
    if type(err) == "table" then return nil, err end
    return nil, errors.annotate(errors.new("ClientProxyConnectionError",
      ("no answer to CONNECT from proxy %s: %s"):format(proxy.url, tostring(err)),
      { proxy = proxy.url, errno = ename, host = host, port = port }), ctx)
  end
  local status = head[h1.STATUS]
  if status < 200 or status > 299 then return nil, refused(proxy, target, head, ctx) end
  return true
end

return M
