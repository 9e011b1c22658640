-- lurl.testing.h2: the HTTP/2 side of lurl.testing.server{ http2 = true }.
-- A connection that starts with the client preface (h2c with prior
-- knowledge, RFC 9113 section 3.3) or chose h2 by ALPN is served here, on
-- core.h2 in server mode, with the same routes and answers as HTTP/1.1;
-- each stream's route runs in a task of its own, so one slow route does not
-- hold the others. The misbehaviours keep their meaning where HTTP/2 has
-- one:
--   delay, drip, never, trailers, content_length (more than the body: the
--   stream never ends), close_after / reset_after n (the head and n body
--   bytes, then the connection closed or reset), reset / drop (the whole
--   connection reset or closed, as on HTTP/1.1)
-- and HTTP/2 adds its own:
--   rst_stream = code    reset this stream with the RFC 9113 section 7 code
--                        (7, REFUSED_STREAM: the request was not processed)
--   goaway = true        GOAWAY after this response: no stream above this
--                        one is processed (section 6.8); close = true,
--                        HTTP/1.1's Connection: close, does the same, or
--                        closes the connection when the stream is left
--                        open (content_length longer than the body)
--   stall = true         the head only, then nothing: the stream stays
--                        open without a byte of its body
-- chunked = true sends the body without a Content-Length (HTTP/2 frames
-- every body itself; trailers go as a HEADERS frame). The HTTP/1.1-only
-- ones (bad_chunking, raw, ws) are refused with a 500 that says so.
local core = require "lurl.core"
local headers_mod = require "lurl.headers"
local sched = require "lurl.sched"

local M = {}

local NO_ERROR = 0

M.PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

-- Fields that HTTP/2 does not carry (RFC 9113 section 8.2.2).
local CONNECTION_SPECIFIC = { connection = true, ["keep-alive"] = true, ["proxy-connection"] = true,
  ["transfer-encoding"] = true, upgrade = true }

local H1_ONLY = { "bad_chunking", "raw", "ws" }

local Link = {}
local link_mt = { __name = "lurl.testing.h2.link", __index = Link }

-- Send what the session has ready.
function Link:flush()
  local out = self.h:pull()
  if out ~= "" and not self.tcp:closed() then self.tcp:write(out) end
end

-- While a route runs the connection keeps the loop alive; an idle one does
-- not keep a finished script running.
function Link:busy()
  local busy = next(self.tasks) ~= nil
  self.peer.busy = busy
  if not self.tcp:closed() then self.tcp:ref(busy) end
end

function Link:open(sid) return self.streams[sid] ~= nil and not self.tcp:closed() end

-- The request of a stream whose head (and body, if any) came.
local function request(link, sid, names, values)
  local req = { version = "2", keep_alive = true, body = {} }
  local fields = {}
  for i, name in ipairs(names) do
    local v = values[i]
    if name == ":method" then req.method = v
    elseif name == ":path" then req.target = v
    elseif name == ":authority" then req.authority = v
    elseif name:sub(1, 1) ~= ":" then fields[#fields + 1] = name; fields[#fields + 1] = v end
  end
  req.headers = headers_mod.new()
  for i = 1, #fields, 2 do req.headers:add(fields[i], fields[i + 1]) end
  if req.authority and not req.headers:has("host") then req.headers:set("Host", req.authority) end
  req.path, req.query = (req.target or "/"):match("^([^?]*)%??(.*)$")
  link.peer.requests = link.peer.requests + 1
  req.connection, req.connection_requests = link.peer.number, link.peer.requests
  req.tls = link.tcp:tls_info()
  link.streams[sid] = req
  return req
end

-- The response head of an answer as HTTP/2 fields.
local function head_fields(resp, req)
  local status = resp.status or 200
  local names, values = { ":status" }, { tostring(status) }
  local h = headers_mod.new(resp.headers)
  -- chunked: no length announced, as HTTP/1.1's chunked coding does (HTTP/2
  -- frames every body itself)
  if not resp.chunked and not h:has("Content-Length") and status ~= 204 and status ~= 304 and status >= 200 then
    h:set("Content-Length", tostring(resp.content_length or #(resp.body or "")))
  end
  for name, value in h:items() do
    local lower = name:lower()
    if not CONNECTION_SPECIFIC[lower] then names[#names + 1] = lower; values[#values + 1] = value end
  end
  return names, values, req.method ~= "HEAD" and (resp.body or "") or ""
end

local function trailer_fields(trailers)
  local names, values = {}, {}
  for name, value in headers_mod.new(trailers):items() do
    names[#names + 1], values[#values + 1] = name:lower(), value
  end
  return names, values
end

-- The body, in drips when asked; ends the stream unless told not to.
local function send_body(link, sid, body, resp, last)
  local drip = resp.drip
  local size = drip and (drip.size or 1) or math.max(#body, 1)
  for i = 1, #body, size do
    if not link:open(sid) then return false end
    local final = last and i + size > #body
    link.h:data(sid, body:sub(i, i + size - 1), final)
    link:flush()
    if drip and not final then sched.sleep(drip.interval or 0.01) end
  end
  if #body == 0 and last and link:open(sid) then link.h:data(sid, "", true); link:flush() end
  return true
end

local function h1_only(resp)
  for _, k in ipairs(H1_ONLY) do
    if resp[k] then return k end
  end
end

-- The answers that end a stream without a response (or the connection):
-- true when resp was one of them.
local function cut_short(link, sid, resp)
  if resp.drop then link.tcp:close(); return true end
  if resp.reset then link.tcp:close(true); return true end
  if not resp.rst_stream then return false end
  link.own_resets[sid] = true
  link.h:reset(sid, resp.rst_stream)
  link:flush()
  return true
end

-- After the body: the connection cut (close_after, reset_after, or close
-- with the stream left open, as HTTP/1.1's would end), trailers, GOAWAY.
local function finish(link, sid, resp, ends)
  local cut = resp.close_after or resp.reset_after
  if cut then return link.tcp:close(resp.reset_after ~= nil) end
  if resp.close and not ends and not resp.trailers and not resp.stall then return link.tcp:close() end
  if resp.trailers and link:open(sid) then
    link.h:trailers(sid, trailer_fields(resp.trailers))
    link:flush()
  end
  if resp.goaway or resp.close then
    link.h:goaway(NO_ERROR, sid)
    link:flush()
  end
end

-- Answer one stream as resp says.
local function respond(link, sid, req, resp)
  local only = h1_only(resp)
  if only then resp = { status = 500, body = "lurl.testing.server: '" .. only .. "' is HTTP/1.1 only" } end
  if resp.never then return end
  if resp.delay then sched.sleep(resp.delay) end
  if not link:open(sid) or cut_short(link, sid, resp) then return end
  local names, values, body = head_fields(resp, req)
  local cut = resp.close_after or resp.reset_after
  if cut then body = body:sub(1, cut) end
  -- a longer content_length than the body leaves the stream open (a HEAD
  -- answer has no body whatever its length says, RFC 9110 section 9.3.2)
  local owed = req.method == "HEAD" and 0 or resp.content_length or #body
  local ends = not cut and not resp.stall and not resp.trailers and owed <= #body
  link.h:response(sid, names, values, ends and #body == 0 and not resp.drip)
  link:flush()
  if resp.stall then return end
  if (#body > 0 or (ends and resp.drip)) and not send_body(link, sid, body, resp, ends) then return end
  finish(link, sid, resp, ends)
end

-- Run a complete request's route in a task of its own, which the server's
-- list holds too, so that server:close() cancels it.
local function dispatch(link, sid, req)
  req.body = table.concat(req.body)
  local all = link.peer.server.tasks
  local task
  task = sched.spawn(function()
    respond(link, sid, req, link.answer(req))
    link.tasks[task], all[task] = nil, nil
    link:busy()
  end)
  link.tasks[task], all[task] = true, true
  link:busy()
end

local function on_event(link, ev)
  local kind, sid = ev[1], ev[2]
  if kind == "headers" and ev[6] == "request" then
    local req = request(link, sid, ev[3], ev[4])
    if ev[5] then dispatch(link, sid, req) end
  elseif kind == "headers" and ev[5] and link.streams[sid] then -- trailers end the request
    dispatch(link, sid, link.streams[sid])
  elseif kind == "data" then
    local req = link.streams[sid]
    link.h:consume(sid, #ev[3])
    if req then
      req.body[#req.body + 1] = ev[3]
      if ev[4] then dispatch(link, sid, req) end
    end
  elseif kind == "close" then
    -- a stream the client reset (RST_STREAM, RFC 9113 section 6.4) counts
    local server = link.peer.server
    if ev[3] ~= 0 and not link.own_resets[sid] then server.resets = server.resets + 1 end
    link.streams[sid], link.own_resets[sid] = nil, nil
  end
end

-- serve(peer, first, answer): the connection of peer (lurl.testing.server's,
-- its reading started), whose first bytes were first, served as HTTP/2
-- until it ends; answer(req) -> the route's answer table. Returns when the
-- client closed or the connection failed.
function M.serve(peer, first, answer)
  local link = setmetatable({ peer = peer, tcp = peer.tcp, h = core.h2.session { server = true }, streams = {},
    own_resets = {}, tasks = {}, answer = answer }, link_mt)
  link:flush()
  local data = first
  while data do
    if not link.h:recv(data) then break end
    for ev in function() return link.h:event() end do on_event(link, ev) end
    link:flush()
    data = peer:receive()
  end
  for task in pairs(link.tasks) do task:cancel() end
  link.h:close()
end

return M
