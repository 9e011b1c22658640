-- HTTP/1.1 as the test servers speak it: requests parsed from the bytes a
-- client sent, responses encoded from a route's answer table. Shared by
-- lurl.testing.server (over sockets) and lurl.testing.mock (without).
local cjson = require "cjson"
local core = require "lurl.core"
local check = require "lurl.check"
local headers_mod = require "lurl.headers"
local status_mod = require "lurl.status"

local M = {}


-- ---- requests ----

local Reader = {}
local reader_mt = { __name = "lurl.testing.wire.reader", __index = Reader }

-- reader() -> r: r:feed(bytes) as they come, r:take() for each request.
function M.reader()
  return setmetatable({ parser = core.h1.parser("request", 65536, 65536), chunks = {}, req = false, body = {},
    between = true },
    reader_mt)
end

function Reader:feed(data) self.chunks[#self.chunks + 1] = data end

-- The next complete request { method, target, path, query, version,
-- headers, keep_alive, body }, nil when more bytes are needed, or false when
-- the bytes are not HTTP.
function Reader:take()
  local parser = self.parser
  while #self.chunks > 0 do
    local data = table.remove(self.chunks, 1)
    if self.between then parser:reset(false); self.between = false end
    local pos = 1
    while pos <= #data do
      local n, head, chunk, done = parser:execute(data, pos)
      if not n then return false end
      if head then
        local method, target, major, minor, names, values, keep_alive = parser:head()
        local req = { method = method, target = target, version = major .. "." .. minor,
          headers = headers_mod.from_lists(names, values), keep_alive = keep_alive }
        -- RFC 9112 section 3.2.2: a server takes the absolute-form a
        -- client sends to a proxy too; routes see the origin-form
        local origin_form = target:gsub("^%a[%w+.-]*://[^/?]*", "")
        if origin_form == "" then origin_form = "/" end
        req.path, req.query = origin_form:match("^([^?]*)%??(.*)$")
        self.req = req
      end
      if chunk then self.body[#self.body + 1] = chunk end
      pos = pos + n
      if done then
        if pos <= #data then table.insert(self.chunks, 1, data:sub(pos)) end
        local req = self.req
        req.body = table.concat(self.body)
        self.req, self.body, self.between = false, {}, true
        return req
      end
    end
  end
  return nil
end

-- ---- responses ----

-- answer(a) -> the answer table of a route's shorthand: a status (503), a
-- body ("text", with 200), or a table, whose json = value becomes the body
-- (application/json) and retry_after = n a Retry-After header.
function M.answer(a)
  if type(a) == "number" then return { status = a } end
  if type(a) == "string" then return { status = 200, body = a } end
  if a.json == nil and a.retry_after == nil then return a end
  local r = {}
  for k, v in pairs(a) do r[k] = v end
  local h = headers_mod.new(a.headers)
  if a.json ~= nil then
    r.body = cjson.encode(a.json)
    if not h:has("Content-Type") then h:set("Content-Type", "application/json") end
  end
  if a.retry_after ~= nil then h:set("Retry-After", tostring(a.retry_after)) end
  r.headers = h
  return r
end

-- sequence(a1, a2, ...) -> a route function giving a1, then a2, ... and
-- the last one for good; route.count tells how many it answered.
function M.sequence(...)
  local answers, n = { ... }, select("#", ...)
  if n == 0 then check.raise("bad argument #1 to 'sequence' (at least one answer expected)") end
  local seq = { count = 0 }
  return setmetatable(seq, {
    __name = "lurl.testing.sequence",
    __call = function(self)
      self.count = self.count + 1
      return answers[math.min(self.count, n)]
    end,
    __tostring = function(self) return ("lurl.testing.sequence (%d answers, %d given)"):format(n, self.count) end,
  })
end

local function encode_chunked(body, bad, trailers)
  local out = {}
  if #body > 0 then out[#out + 1] = ("%x\r\n%s\r\n"):format(#body, body) end
  if bad then out[#out + 1] = "zz\r\n" end
  out[#out + 1] = "0\r\n"
  for name, value in headers_mod.new(trailers):items() do out[#out + 1] = name .. ": " .. value .. "\r\n" end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- response(resp, req) -> head bytes, body bytes as they go on the wire
-- (chunked when asked, cut at close_after / reset_after). resp: { status,
-- reason, headers, body, chunked, bad_chunking, trailers, content_length,
-- close, close_after, reset_after }.
function M.response(resp, req)
  local status = resp.status or 200
  local body = resp.body or ""
  local h = headers_mod.new(resp.headers)
  if resp.chunked then
    h:set("Transfer-Encoding", "chunked")
  elseif not h:has("Content-Length") and status ~= 204 and status ~= 304 and status >= 200 then
    -- HEAD announces the length a GET would get (RFC 9110 section 9.3.2)
    h:set("Content-Length", tostring(resp.content_length or #body))
  end
  if resp.close or not req.keep_alive then h:set("Connection", "close") end
  local line = ("HTTP/1.1 %d %s"):format(status, resp.reason or status_mod.REASONS[status] or "Unknown")
  local head = assert(core.h1.encode(line, h:flat()))
  if req.method == "HEAD" then body = "" end
  local wire = resp.chunked and req.method ~= "HEAD" and encode_chunked(body, resp.bad_chunking, resp.trailers) or body
  local cut = resp.close_after or resp.reset_after
  if cut then wire = wire:sub(1, cut) end
  return head, wire
end

return M
