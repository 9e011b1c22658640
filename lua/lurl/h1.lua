-- HTTP/1.1 on the wire (RFC 9112): what every layer of the request path
-- shares, below all of them: the request head encoder, the idempotent
-- methods, and the layout of the connection's events (lurl.conn), named.
local core = require "lurl.core"
local url = require "lurl.url"

local M = {}

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
-- headers, body. Headers are checked as they are set (lurl.headers), so a head that
-- cannot go on the wire is a bug in lurl, raised as one.
function M.encode(req, head_only)
  local body = not head_only and type(req.body) == "string" and req.body or nil
  local line = req.method .. " " .. (req.target or url.target(req.url)) .. " HTTP/1.1"
  local bytes, why = core.h1.encode(line, req.headers:flat(), body)
  if not bytes then error("lurl.h1: cannot encode the request head: " .. why, 2) end
  return bytes
end

return M
