-- HTTP/1.1 on the wire (RFC 9112): what every layer of the request path
-- shares, below all of them: the request head encoder, the idempotent
-- methods, the layout of the connection's events (lurl.conn), named, and
-- the reading of one answer head on a raw stream, for the exchanges that
-- leave HTTP/1.1 after it (a CONNECT tunnel, a WebSocket upgrade).
local core = require "lurl.core"
local url = require "lurl.url"

local M = {}

-- read_bufsize's default (aiohttp's option; lurl.conn's flow control):
-- one read of the runtime (RT_READ_BUF_SIZE). aiohttp's 2**16 pauses
-- reading after nearly every read of a fast body: 1 MiB GETs over 8
-- connections (bench W2) went from 1,250 to 825 MiB/s.
M.READ_BUFSIZE = 256 * 1024

-- RFC 9110 section 9.2.2
M.IDEMPOTENT = { GET = true, HEAD = true, OPTIONS = true, TRACE = true, PUT = true, DELETE = true }

-- Positions in a { "head", ... } event: parser:head_block()'s values
-- after the event's name.
M.STATUS, M.REASON, M.MAJOR, M.MINOR, M.FIELDS, M.KEEP_ALIVE, M.SETS_COOKIES, M.CODINGS = 2, 3, 4, 5, 6, 7, 8, 9
-- Positions in an { "error", message, name } event.
M.MESSAGE, M.ERRNO = 2, 3

-- encode(req[, head_only]) -> the bytes of req's head, and of its body when
-- that is a string sent with it (a streamed body follows the head, and so
-- does any body that waits for 100). req: method, url (parsed), target
-- (the absolute-form a proxy gets, or false for the origin-form of url),
-- version ("1.0" or "1.1", the request line's; nil is "1.1"), headers,
-- body. Headers are checked as they are set (lurl.headers), so a head that
-- cannot go on the wire is a bug in lurl, raised as one.
function M.encode(req, head_only)
  local body = not head_only and type(req.body) == "string" and req.body or nil
  local line = req.method .. " " .. (req.target or url.target(req.url)) .. " HTTP/" .. (req.version or "1.1")
  local bytes, why = core.h1.encode(line, req.headers:flat(), body)
  if not bytes then error("lurl.h1: cannot encode the request head: " .. why, 2) end
  return bytes
end

-- The answer head is held to the same sizes as a response's.
local MAX_LINE, MAX_FIELD = 8190, 8190

-- read_head(stream, deadline, kind, ctx[, upgrade]) -> the head as a
-- connection's head event and the bytes that came behind it in the same
-- read ("" for none), or nil, message, errno, or nil and the deadline's
-- error (kind: the limit it waits under, "sock_connect" or "read"). No body
-- is read: after a tunnel's 2xx or a 101 (upgrade: the request asked for
-- one) the bytes are another protocol's, and a refusal's body is nobody's.
-- Reading is stopped when it returns.
function M.read_head(stream, deadline, kind, ctx, upgrade)
  local parser = core.h1.parser("response", MAX_LINE, MAX_FIELD)
  parser:reset(true, upgrade)
  return deadline:wait(kind, function(wake)
    stream:read_start(function(data, err, ename)
      if not data then return wake(nil, err, ename) end
      local n, head, why = parser:execute(data, 1)
      if not n then return wake(nil, head, why) end
      if head then
        stream:read_stop()
        wake({ "head", parser:head_block() }, data:sub(n + 1))
      end
    end)
    return function() stream:read_stop() end
  end, ctx)
end

return M
