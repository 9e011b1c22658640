-- Typed errors after aiohttp's ClientError hierarchy.
--
-- Operational failures are returned as `nil, err`; err is a table with
-- `kind`, `message` and context fields (url, method, status, errno, cause, ...),
-- prints as "Kind: message", and answers err:is(kind) for its kind and every
-- ancestor. A kind may have two parents: every ServerTimeoutError is also a
-- TimeoutError, as in aiohttp.
local check = require "lurl.check"

local M = {}

local parents = {
  ClientError = {},
  ClientConnectionError = { "ClientError" },
  ClientConnectionResetError = { "ClientConnectionError" },
  ClientOSError = { "ClientConnectionError" },
  ClientConnectorError = { "ClientOSError" },
  ClientConnectorDNSError = { "ClientConnectorError" },
  ClientProxyConnectionError = { "ClientConnectorError" },
  UnixClientConnectorError = { "ClientConnectorError" },
  ClientSSLError = { "ClientConnectorError" },
  ClientConnectorSSLError = { "ClientSSLError" },
  ClientConnectorCertificateError = { "ClientSSLError" },
  ServerConnectionError = { "ClientConnectionError" },
  ServerDisconnectedError = { "ServerConnectionError" },
  ServerFingerprintMismatch = { "ServerConnectionError" },
  ServerTimeoutError = { "ServerConnectionError", "TimeoutError" },
  ConnectionTimeoutError = { "ServerTimeoutError" },
  SocketTimeoutError = { "ServerTimeoutError" },
  ClientResponseError = { "ClientError" },
  ContentTypeError = { "ClientResponseError" },
  ClientHttpProxyError = { "ClientResponseError" },
  TooManyRedirects = { "ClientResponseError" },
  WSServerHandshakeError = { "ClientResponseError" },
  ClientPayloadError = { "ClientError" },
  -- the stream readers' (lurl.stream_reader): readexactly(n) on a body
  -- that ended first (err.partial, err.expected; asyncio's, an EOFError in
  -- aiohttp) and readuntil past its limit (err.limit; aiohttp's
  -- LineTooLong, a BadHttpMessage there)
  IncompleteReadError = { "ClientPayloadError" },
  LineTooLong = { "ClientPayloadError" },
  InvalidURL = { "ClientError" },
  InvalidUrlClientError = { "InvalidURL" },
  RedirectClientError = { "ClientError" },
  NonHttpUrlClientError = { "ClientError" },
  InvalidUrlRedirectClientError = { "InvalidUrlClientError", "RedirectClientError" },
  NonHttpUrlRedirectClientError = { "NonHttpUrlClientError", "RedirectClientError" },
  -- outside ClientError, as in aiohttp (a TypeError there, and
  -- http_websocket's own error): a message of another type than
  -- receive_str/bytes/json asked for, and a WebSocket the peer broke
  -- (err.code: the close code lurl sent)
  WSMessageTypeError = {},
  WebSocketError = {},
  CircuitOpenError = { "ClientError" },
  -- a request held back on the client side: a rate limit whose wait would
  -- pass the deadline, or adaptive throttling (lurl.policy)
  ThrottledError = { "ClientError" },
  TimeoutError = {},
  CancelledError = {},
}
M.kinds = parents

-- ancestors[kind][other] is true when kind is other or descends from it.
local ancestors = {}
local function collect(kind, into)
  into[kind] = true
  for _, p in ipairs(parents[kind]) do collect(p, into) end
  return into
end
for kind in pairs(parents) do ancestors[kind] = collect(kind, {}) end

local Error = {}
local mt = { __name = "lurl.error", __index = Error }

-- An error prints its message, or its text when it has one: a
-- ClientResponseError's message is the reason phrase alone, as aiohttp's,
-- and its text says the status too.
function mt.__tostring(e)
  local s = e.kind .. ": " .. tostring(e.text or e.message)
  if e.method and e.url then s = s .. " (" .. e.method .. " " .. tostring(e.url) .. ")"
  elseif e.url then s = s .. " (" .. tostring(e.url) .. ")" end
  return s
end

-- err:is(kind): true when err is of kind or of a kind below it.
function Error:is(kind)
  if not parents[kind] then check.raise("bad argument #1 to 'is' (unknown error kind '" .. tostring(kind) .. "')") end
  return ancestors[self.kind][kind] == true
end

-- errors.new(kind, message[, context]) -> err. context fields are copied in.
function M.new(kind, message, context)
  if not parents[kind] then check.raise("unknown error kind '" .. tostring(kind) .. "'") end
  local e = { kind = kind, message = message }
  if context then for k, v in pairs(context) do if e[k] == nil then e[k] = v end end end
  return setmetatable(e, mt)
end

-- errors.is(value, kind): like err:is, for any value (false for non-errors).
function M.is(value, kind)
  if not parents[kind] then check.raise("bad argument #2 to 'is' (unknown error kind '" .. tostring(kind) .. "')") end
  return getmetatable(value) == mt and ancestors[value.kind][kind] == true
end

-- errors.is_error(value): value is a lurl error.
function M.is_error(value) return getmetatable(value) == mt end

-- Add context (url, method, ...) to an error that lacks it; returns err.
function M.annotate(err, context)
  if getmetatable(err) == mt then
    for k, v in pairs(context) do if err[k] == nil then err[k] = v end end
  end
  return err
end

return M
