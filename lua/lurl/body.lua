-- Request bodies that are not one string: files streamed from disk through
-- libuv (lurl.file, FormData's files), generator functions, and the
-- multipart bodies of FormData. A streamed body is
--   { parts = { "bytes", { file = path, size = n }, generator, ... },
--     length = total bytes or nil, replayable = boolean }
-- and is sent after the head, with Content-Length when the length is known
-- and chunked transfer coding otherwise (RFC 9112 section 7.1). Memory stays
-- flat: one chunk of a file is in memory at a time.
local codec = require("lurl.core").codec
local errors = require "lurl.errors"
local check = require "lurl.check"
local fs = require "lurl.fs"
local sched = require "lurl.sched"

local M = {}

-- under 128 KiB: LuaJIT gives larger strings their own pages, which cost a
-- page fault per 4 KiB each time (half the time of an upload at 256 KiB)
M.CHUNK = 124 * 1024

-- ---- lurl.file ----

local File = {}
local file_mt = { __name = "lurl.body_file", __index = File }
function file_mt.__tostring(f) return ("lurl.body_file (%s, %d bytes)"):format(f.path, f.size) end

-- lurl.file(path) -> a file body. Its size is taken now, so that the request
-- can carry a Content-Length: that many bytes are sent, and a file that
-- shrank before they were fails the request rather than sending less.
function M.file(path)
  if type(path) ~= "string" then check.argerror("file", "#1", "path string expected, got " .. type(path)) end
  local f, err = io.open(path, "rb")
  if not f then check.argerror("file", "#1", "cannot open '" .. path .. "': " .. tostring(err)) end
  local readable, why = f:read(0)
  if not readable and why then
    f:close()
    check.argerror("file", "#1", "cannot read '" .. path .. "': " .. tostring(why))
  end
  local size = f:seek("end")
  f:close()
  return setmetatable({ path = path, size = size }, file_mt)
end

function M.is_file(v) return getmetatable(v) == file_mt end

-- ---- building ----

-- stream(parts[, replayable]) -> a streamed body; the length is the sum of
-- the parts when none of them is a generator.
function M.stream(parts, replayable)
  local length = 0
  for _, p in ipairs(parts) do
    if type(p) == "string" then length = length and length + #p
    elseif type(p) == "table" and p.file then length = length and length + p.size
    else length = nil end
  end
  return { parts = parts, length = length, replayable = replayable ~= false }
end

-- from_data(data) -> a streamed body for a lurl.file or a generator
-- function (each call returns the next string, nil at the end), or nil.
function M.from_data(data)
  if M.is_file(data) then return M.stream({ { file = data.path, size = data.size } }) end
  if type(data) == "function" then return M.stream({ data }, false) end
  return nil
end

-- ---- sending ----

local function hex(n) return ("%x"):format(n) end

-- A chunk on the wire: itself, or framed as a chunk of chunked coding.
local function framed(chunk, chunked)
  if not chunked then return chunk end
  return { hex(#chunk) .. "\r\n", chunk, "\r\n" }
end

local function body_error(msg, ctx)
  return errors.new("ClientPayloadError", "request body: " .. msg, ctx)
end

-- Stream a file from disk, chunk by chunk: the size it had when the body
-- was made (what Content-Length announced); a file that shrank meanwhile
-- fails the request.
local function shrank(part, now, ctx)
  return body_error(("'%s' shrank to %d bytes while it was sent (%d expected)"):format(part.file, now, part.size), ctx)
end

-- raw(path, size): the file straight to the socket, when the connection can
-- and the bytes go as they are (see M.send).
local function send_raw(raw, part, ctx)
  local ok, err, where = raw(part.file, part.size)
  if ok ~= nil or not where then return ok, err end
  if err:find("^ESHORT") then
    local st = fs.stat(part.file)
    return nil, shrank(part, st and st.size or 0, ctx)
  end
  return nil, body_error(("cannot %s '%s': %s"):format(where, part.file, tostring(err)), ctx)
end

local function send_file(emit, part, ctx, raw)
  if raw and part.size > 0 then
    local ok, err = send_raw(raw, part, ctx)
    if ok ~= false then return ok, err end
  end
  local f, err = fs.open(part.file, "r")
  if not f then return nil, body_error("cannot open '" .. part.file .. "': " .. tostring(err), ctx) end
  local sent, ok = 0, true
  while ok and sent < part.size do
    local data
    data, err = fs.read(f, math.min(M.CHUNK, part.size - sent), sent)
    if not data then
      ok, err = nil, body_error("cannot read '" .. part.file .. "': " .. tostring(err), ctx)
    elseif data == "" then
      ok, err = nil, shrank(part, sent, ctx)
    else
      sent = sent + #data
      ok, err = emit(data)
    end
  end
  f:close()
  return ok, err
end

-- Pull a generator until it returns nil; a chunk that is not a string, a
-- generator that raises, or one that gives more than room (the bytes left
-- of a declared Content-Length; checked before they go out) fails the
-- request. Returns true and the bytes it gave, or nil and an error.
local function send_generator(emit, gen, room, left, ctx)
  local total = 0
  while true do
    -- a generator that waits (for a queue, a sleep) is bounded by what is
    -- left of the request's time, not just when its chunk goes out
    local secs = left()
    local ok, chunk, late
    if secs then ok, chunk, late = pcall(sched.wait_for, secs, gen) else ok, chunk = pcall(gen) end
    if not ok then return nil, body_error("the generator raised: " .. tostring(chunk), ctx) end
    if errors.is(late, "TimeoutError") then return nil, late end
    if chunk == nil then return true, total end
    if type(chunk) ~= "string" then
      return nil, body_error("the generator gave a " .. type(chunk) .. ", not a string", ctx)
    end
    if room and total + #chunk > room then
      return nil, body_error(("the generator gave more than the %d bytes Content-Length announced"):format(room), ctx)
    end
    if #chunk > 0 then
      total = total + #chunk
      local sent, err = emit(chunk)
      if not sent then return nil, err end
    end
  end
end

-- What goes on the wire for each piece of the body: compressed when the
-- body is (the compressor's output may lag its input), framed when chunked.
-- Returns emit(data) and finish().
local function emitter(send, chunked, compress)
  local enc = compress and codec.encoder(compress)
  local function out(data)
    if #data == 0 then return true end
    return send(framed(data, chunked))
  end
  if not enc then return out, function() return true end end
  return function(data) return out(enc:feed(data)) end, function() return out(enc:finish()) end
end

-- send(body, send, left, chunked, declared, ctx[, raw]) -> true, or nil and
-- an error: every part through send(data) (conn:send bound to the request's
-- deadline), compressed with body.compress ("gzip" or "deflate") and framed
-- when chunked. left() tells the seconds the request has left (nil: no
-- limit). declared: the Content-Length the head announced, which the bytes
-- must match. raw(path, size), when the connection offers it, sends a file
-- part without Lua strings; only parts that go as they are (neither
-- compressed nor chunked) take it.
function M.send(body, send, left, chunked, declared, ctx, raw)
  local emit, finish = emitter(send, chunked, body.compress)
  if chunked or body.compress then raw = nil end
  local total = 0
  for _, part in ipairs(body.parts) do
    local ok, err
    if type(part) == "string" then
      ok, err = emit(part)
      total = total + #part
    elseif type(part) == "table" then
      if declared and total + part.size > declared then
        return nil, body_error(("'%s' is larger than the %d bytes Content-Length announced")
          :format(part.file, declared), ctx)
      end
      ok, err = send_file(emit, part, ctx, raw)
      total = total + part.size
    else
      ok, err = send_generator(emit, part, declared and declared - total, left, ctx)
      if ok then total = total + err end
    end
    if not ok then return nil, err end
  end
  if declared and total ~= declared then
    return nil, body_error(("%d bytes sent, Content-Length said %d"):format(total, declared), ctx)
  end
  local ok, err = finish()
  if ok and chunked then return send("0\r\n\r\n") end
  return ok, err
end

-- compressed(body, coding) -> a streamed body compressed as it is sent;
-- its compressed length is not known in advance, so it goes chunked.
function M.compressed(body, coding)
  return { parts = body.parts, length = nil, replayable = body.replayable, compress = coding }
end

return M
