-- aiohttp's StreamReader (resp.content there) as methods of the response:
-- read(n), readany, readexactly, readuntil, readline, iter_chunked,
-- iter_any, iter_chunks, at_eof. They sit on the response, beside read(),
-- text() and save(), because lurl's response already reads its body
-- itself: one object keeps one position in the body, so the readers can be
-- interleaved freely (read(n) with readline). They read the decoded body,
-- streamed (under the request's deadline and sock_read, as the response's
-- pull does) or, once it was read whole, from what was kept.
--
-- Position: a piece of the body pending (resp._pending from _ppos on: what
-- a reader left of the last chunk), then the kept body from _pos, or the
-- chunks still to come.
local check = require "lurl.check"
local h1 = require "lurl.h1"
local errors = require "lurl.errors"

local M = {}

local function raise(err) error(err, 0) end

local function error_context(self, extra)
  extra.url, extra.method, extra.status = self.url, self.method, self.status
  return extra
end

-- install(Response, r): the methods on Response; r: lurl.response's
-- primitives (pull, take_pending, read_all).
function M.install(Response, r)
  local pull, take_pending, read_all = r.pull, r.take_pending, r.read_all

  -- The next piece of what is left, taken whole: a string, false at the
  -- end, or nil and the error.
  local function next_chunk(self)
    local chunk = take_pending(self)
    if chunk then return chunk end
    local b = self._body
    if b then
      local pos = self._pos or 1
      self._pos = #b + 1
      if pos > #b then return false end
      return pos == 1 and b or b:sub(pos)
    end
    return pull(self)
  end

  -- The pending piece and where its unread part starts (buf, pos), made
  -- from the next chunk when none is; false at the end; nil, err.
  local function peek(self)
    local buf = self._pending
    if buf then return buf, self._ppos end
    local chunk, err = next_chunk(self)
    if not chunk then return chunk, err end
    self._pending, self._ppos = chunk, 1
    return chunk, 1
  end

  -- Bytes pos..last of the pending piece buf; what follows stays pending.
  -- A piece larger than asked for stays whole with an offset: slicing off
  -- the rest each time would copy it over and over.
  local function take(self, buf, pos, last)
    if last < #buf then
      self._ppos = last + 1
      return buf:sub(pos, last)
    end
    self._pending, self._ppos = false, false
    return pos == 1 and buf or buf:sub(pos)
  end

  -- Put parts back in front of what is pending (a readuntil past its limit
  -- leaves the bytes it looked at unread, as asyncio's does).
  local function unread(self, parts)
    local buf = self._pending
    if buf then parts[#parts + 1] = buf:sub(self._ppos) end
    local s = table.concat(parts)
    if s == "" then s = false end
    self._pending, self._ppos = s, s and 1
  end

  -- Up to n bytes of what is left ("" at the end).
  local function read_some(self, n)
    local buf, pos = peek(self)
    if not buf then
      if buf == nil then return nil, pos end
      return ""
    end
    return take(self, buf, pos, pos + n - 1)
  end

  -- read() and read(-1): the body from where the readers are; the whole
  -- body, kept (text() and json() read it too), while they have not begun.
  local function read_rest(self)
    local b = self._body
    if b and not self._pos and not self._pending then return b end
    if b then
      local rest = take_pending(self) or ""
      self._pos = #b + 1
      return rest
    end
    return read_all(self)
  end

  -- read() / read(-1) -> the rest of the body; read(n) -> up to n bytes,
  -- as soon as any are there ("" at the end); read(0) -> "". On a
  -- streamed response a failure returns nil, ClientPayloadError.
  function Response:read(n)
    if n == nil or n == -1 then return read_rest(self) end
    if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
      check.argerror("read", "#1", "byte count >= 0 or -1 expected, got " .. tostring(n))
    end
    if n == 0 then return "" end
    return read_some(self, n)
  end

  -- readany() -> the next piece as it came ("" at the end).
  function Response:readany()
    local c, err = next_chunk(self)
    if c == nil then return nil, err end
    return c or ""
  end

  -- readexactly(n) -> n bytes, or nil and IncompleteReadError (err.partial:
  -- what came, consumed; err.expected: n) when the body ends first.
  function Response:readexactly(n)
    if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
      check.argerror("readexactly", "#1", "byte count >= 0 expected, got " .. tostring(n))
    end
    local parts, size = {}, 0
    while size < n do
      local piece, err = read_some(self, n - size)
      if not piece then return nil, err end
      if piece == "" then
        local partial = table.concat(parts)
        return nil, errors.new("IncompleteReadError",
          ("%d bytes read on a total of %d expected bytes"):format(#partial, n),
          error_context(self, { partial = partial, expected = n }))
      end
      parts[#parts + 1] = piece
      size = size + #piece
    end
    return table.concat(parts)
  end

  -- readuntil's default limit: aiohttp's high-water mark, twice read_bufsize.
  local function default_limit(self)
    local ex = rawget(self, "_exchange")
    return 2 * (ex and ex.read_bufsize or h1.READ_BUFSIZE)
  end

  -- Where sep ends in buf (from pos), when it starts in tail (the last
  -- #sep - 1 bytes before buf) or lies in buf; nil when it does not.
  local function sep_end(buf, pos, sep, tail)
    if tail ~= "" then
      local i = (tail .. buf:sub(pos, pos + #sep - 2)):find(sep, 1, true)
      if i then return pos + i + #sep - 2 - #tail end
    end
    local _, e = buf:find(sep, pos, true)
    return e
  end

  local function too_long(self, parts, limit, sep)
    unread(self, parts)
    return nil, errors.new("LineTooLong", ("no %q in the first %d bytes"):format(sep, limit),
      error_context(self, { limit = limit }))
  end

  -- readuntil([sep[, max_size]]) -> the body up to and including sep
  -- ("\n" by default), what is left when the body ends without it ("" at
  -- the end), or nil and an error: LineTooLong (err.limit) when more than
  -- max_size bytes (twice read_bufsize by default) come before the end of
  -- sep; those bytes stay unread.
  function Response:readuntil(sep, max_size)
    if sep == nil then sep = "\n" end
    if type(sep) ~= "string" or sep == "" then
      check.argerror("readuntil", "#1", "non-empty separator string expected")
    end
    if max_size == nil then max_size = default_limit(self) end
    if type(max_size) ~= "number" or max_size < 1 or max_size % 1 ~= 0 then
      check.argerror("readuntil", "#2", "byte count >= 1 expected, got " .. tostring(max_size))
    end
    local parts, size, tail, keep = {}, 0, "", #sep - 1
    while true do
      local buf, pos = peek(self)
      if not buf then
        if buf == nil then return nil, pos end
        return table.concat(parts)
      end
      local last = sep_end(buf, pos, sep, tail)
      if last then
        if size + last - pos + 1 > max_size then return too_long(self, parts, max_size, sep) end
        parts[#parts + 1] = take(self, buf, pos, last)
        return table.concat(parts)
      end
      local piece = take(self, buf, pos, #buf)
      parts[#parts + 1] = piece
      size = size + #piece
      if size > max_size then return too_long(self, parts, max_size, sep) end
      if keep > 0 then tail = (#piece >= keep and piece or tail .. piece):sub(-keep) end
    end
  end

  -- readline([max_size]) -> the next line, "\n" included and "\r\n" kept
  -- ("" at the end): readuntil("\n", max_size).
  function Response:readline(max_size)
    return self:readuntil("\n", max_size)
  end

  -- for chunk in resp:iter_any() do ... end: pieces as they come. A failure
  -- mid-body raises the ClientPayloadError (a loop cannot return it).
  function Response:iter_any()
    return function()
      local c, err = next_chunk(self)
      if c == nil then raise(err) end
      return c or nil
    end
  end

  -- for chunk in resp:iter_chunked(n) do ... end: pieces of at most n
  -- bytes, as they come (aiohttp's contract). Raises like iter_any.
  function Response:iter_chunked(n)
    if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
      check.argerror("iter_chunked", "#1", "byte count >= 1 expected, got " .. tostring(n))
    end
    return function()
      local c, err = read_some(self, n)
      if c == nil then raise(err) end
      if c == "" then return nil end
      return c
    end
  end

  local function chunked(self)
    local te = self.headers["transfer-encoding"]
    return te ~= nil and te:lower():find("chunked", 1, true) ~= nil
  end

  -- for data, end_of_chunk in resp:iter_chunks() do ... end: aiohttp's
  -- (data, end_of_http_chunk). lurl's connection does not tell where an
  -- HTTP chunk ended (the parser hands over the body bytes of a read as one
  -- string), so pieces come as they arrive with false, and a chunked body
  -- that carried data ends with ("", true): its last chunk ended there.
  -- Raises like iter_any.
  function Response:iter_chunks()
    local ended = false
    return function()
      if ended then return nil end
      local c, err = next_chunk(self)
      if c == nil then raise(err) end
      if c then return c, false end
      ended = true
      if (self._total or 0) > 0 and chunked(self) then return "", true end
      return nil
    end
  end

  -- at_eof() -> whether the readers have nothing left: the body ended and
  -- they took all of it.
  function Response:at_eof()
    if self._pending then return false end
    local b = self._body
    if b then return (self._pos or 1) > #b end
    return self._eof
  end
end

return M
