-- The server's side of a WebSocket for lurl.testing.server: a route that
-- answers { ws = function(ws, req) ... end } gets the request upgraded
-- (RFC 6455 section 4.2.2) and runs with a lurl.websocket in server mode
-- (the same message, control and close handling as the client's). Answer
-- fields: protocol (the subprotocol to accept), compress = false (decline
-- permessage-deflate), max_msg_size.
local core = require "lurl.core"
local errors = require "lurl.errors"
local headers_mod = require "lurl.headers"
local websocket = require "lurl.websocket"

local M = {}

-- RFC 7692 section 7.1: accept a permessage-deflate offer as made (its
-- server_max_window_bits and server_no_context_takeover are binding on the
-- server once accepted). Returns the response's parameters and the
-- negotiated settings, or nil to decline.
local function accept_deflate(offer_value)
  if not offer_value then return nil end
  for ext in (offer_value .. ","):gmatch("%s*([^,]+),") do
    if ext:match("^permessage%-deflate") then
      local d = { client_bits = 15, server_bits = 15 }
      local reply = { "permessage-deflate" }
      local bits = ext:match("server_max_window_bits%s*=%s*\"?(%d+)")
      if bits then
        d.server_bits = tonumber(bits)
        reply[#reply + 1] = "server_max_window_bits=" .. bits
      end
      if ext:find("server_no_context_takeover", 1, true) then
        d.server_no_context_takeover = true
        reply[#reply + 1] = "server_no_context_takeover"
      end
      return table.concat(reply, "; "), d
    end
  end
  return nil
end

local function bad_request(peer, why)
  peer:send(assert(core.h1.encode("HTTP/1.1 400 Bad Request", { "Content-Length", tostring(#why),
    "Connection", "close" }, why)))
end

-- accept(peer, req, answer): the handshake on the peer's connection, then
-- answer.ws(ws, req) in this task; the connection ends with it.
function M.accept(peer, req, answer)
  local h = req.headers
  local key = h["sec-websocket-key"]
  if not key or (h["upgrade"] or ""):lower() ~= "websocket" or not headers_mod.has_token(h["connection"], "upgrade")
    or h["sec-websocket-version"] ~= "13" then
    return bad_request(peer, "not a WebSocket handshake")
  end
  local fields = { "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", core.ws.accept(key) }
  if answer.protocol then fields[#fields + 1], fields[#fields + 2] = "Sec-WebSocket-Protocol", answer.protocol end
  local reply, deflate
  if answer.compress ~= false then reply, deflate = accept_deflate(h["sec-websocket-extensions"]) end
  if reply then fields[#fields + 1], fields[#fields + 2] = "Sec-WebSocket-Extensions", reply end
  if not peer:send(assert(core.h1.encode("HTTP/1.1 101 Switching Protocols", fields))) then return end
  local w = websocket.new(peer.tcp, peer:take_rest(), {
    server = true, url = req.target, protocol = answer.protocol, headers = h, deflate = deflate,
    autoclose = true, autoping = true, max_msg_size = answer.max_msg_size or 4 * 1024 * 1024,
    timeout = websocket.timeout(),
  })
  local ok, err = pcall(answer.ws, w, req)
  -- server:close() cancels a route still running: that is no failure
  if not ok and not errors.is(err, "CancelledError") then
    io.stderr:write("lurl.testing.server: WebSocket route ", req.path, " failed: ", tostring(err), "\n")
  end
  if not w.closed then w:close() end
end

return M
