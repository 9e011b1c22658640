-- Driver of fuzz_h1_response: the bytes a server sent on one connection,
-- through lurl.core's llhttp parser the way lurl/conn.lua drives it (execute
-- from a position until the piece is used up, head_block() on a head, reset
-- for the next response, finish() at EOF). The bytes go in twice, as one
-- read and in the pieces the input chose; both runs must tell the same
-- story, since TCP may cut a response anywhere.
local h1 = require("lurl.core").h1
local headers = require "lurl.headers"

local function check(ok, fmt, ...)
  if not ok then error(fmt:format(...), 2) end
end

local TOKEN = "^[%w!#$%%&'*+.^_`|~-]+$"

local function check_fields(names, values, what)
  check(#names == #values, "%s: %d names but %d values", what, #names, #values)
  for i = 1, #names do
    check(names[i]:find(TOKEN) ~= nil, "%s: field name %q is not a token", what, names[i])
    check(not values[i]:find("[\r\n%z]"), "%s: value of %s holds CR, LF or NUL: %q", what, names[i], values[i])
  end
end

-- head() and head_block() are two views of one head: they must agree, and
-- headers.from_block must read the block back into the same fields.
local function take_head(p, log)
  local status, reason, major, minor, names, values, keep_alive = p:head()
  local s2, r2, ma2, mi2, block, ka2, cookies, coding = p:head_block()
  check(status == s2 and reason == r2 and major == ma2 and minor == mi2 and keep_alive == ka2,
    "head() and head_block() disagree on the start line")
  check(status >= 200 and status <= 999, "status %d reached the caller", status)
  check_fields(names, values, "head")
  local parsed, has_cookie, codings = headers.from_block(block), false, {}
  local i = 0
  for name, value in parsed:items() do
    i = i + 1
    check(name == names[i] and value == values[i], "from_block reads field %d as %q: %q", i, name, value)
  end
  check(i == #names, "from_block reads %d fields of %d", i, #names)
  for k, name in ipairs(names) do
    local lower = name:lower()
    if lower == "set-cookie" then has_cookie = true end
    if lower == "content-encoding" then codings[#codings + 1] = values[k] end
  end
  check(cookies == has_cookie, "head_block's Set-Cookie flag is %s", tostring(cookies))
  check(coding == (#codings > 0 and table.concat(codings, ", ") or nil),
    "head_block's Content-Encoding is %q", tostring(coding))
  log[#log + 1] = table.concat({ "head", status, reason, major, minor, block, tostring(keep_alive) }, "|")
end

local function end_message(p, st)
  local names, values = p:trailers()
  check_fields(names, values, "trailers")
  local log = st.log
  log[#log + 1] = "body|" .. table.concat(st.body)
  log[#log + 1] = "trailers|" .. table.concat(names, "\0") .. "|" .. table.concat(values, "\0")
  st.body = {}
  check(st.in_message, "a message ended before its head")
  st.in_message = false
  if st.shrink then p:shrink() end
  p:reset(st.no_body)
end

-- One read: false once the parser failed (the connection is then closed).
local function feed(p, piece, st)
  local pos = 1
  while pos <= #piece do
    local n, head, body, done = p:execute(piece, pos)
    if not n then
      check(type(head) == "string" and type(body) == "string", "an error without a reason and a name")
      st.log[#st.log + 1] = "error"
      return false
    end
    check(n >= 0 and n % 1 == 0 and pos + n <= #piece + 1, "execute consumed %s of %d bytes", n, #piece - pos + 1)
    check(n > 0 or head or body or done, "execute made no progress: conn.lua's read loop would spin")
    pos = pos + n
    p:continued()
    if head then
      check(not st.in_message, "a second head in one message")
      st.in_message = true
      take_head(p, st.log)
    end
    if body then
      check(type(body) == "string" and st.in_message, "body bytes without a head")
      st.body[#st.body + 1] = body
    end
    if done then end_message(p, st) end
  end
  return true
end

-- An error is logged alike whether execute or finish reports it: where a
-- read ends decides which one sees it first.
local function finish(p, st)
  local ended, msg, name = p:finish()
  if ended == nil then
    check(type(msg) == "string" and type(name) == "string", "finish failed without a reason and a name")
    st.log[#st.log + 1] = "error"
    return
  end
  if ended then end_message(p, st) end
  st.log[#st.log + 1] = "eof " .. tostring(ended)
end

local function run(pieces, opts)
  local p = h1.parser("response", opts.max_line, opts.max_field)
  local st = { log = {}, body = {}, no_body = opts.no_body, shrink = opts.shrink }
  p:reset(opts.no_body)
  for _, piece in ipairs(pieces) do
    if not feed(p, piece, st) then return st.log end
  end
  finish(p, st)
  return st.log
end

local function same_story(whole, split)
  for i = 1, math.max(#whole, #split) do
    check(whole[i] == split[i], "one read and pieces differ at event %d:\n  whole: %q\n  split: %q",
      i, tostring(whole[i]):sub(1, 300), tostring(split[i]):sub(1, 300))
  end
end

-- flags: 1 the request was HEAD, 2 tight size limits (8 + 4 * limit),
-- 4 shrink the parser between responses.
return function(data, flags, seed, limit)
  local tight = flags % 4 >= 2
  local opts = {
    no_body = flags % 2 == 1,
    shrink = flags % 8 >= 4,
    max_line = tight and 8 + 4 * limit or nil,
    max_field = tight and 8 + 4 * limit or nil,
  }
  local whole = run({ data }, opts)
  if seed ~= 0 then same_story(whole, run(fuzz_split(data, seed), opts)) end
end
