-- Driver of fuzz_url: arbitrary text through lurl.url. parse and join
-- return nil, err for what is no URL and never raise on strings; the
-- quoters never raise and requoting their output changes nothing. What
-- goes on the wire from a parsed http(s) URL (the request target, Host)
-- must be printable ASCII that cannot end the request line or the field,
-- and a canonical URL must parse back to itself.
local url = require "lurl.url"

local function check(ok, fmt, ...)
  if not ok then error(fmt:format(...), 2) end
end

local BASE = "http://a/b/c/d;p?q"
local HOST_CHARS = "^[%w%-%._~!$&'()*+,;=:%[%]]+$"

local function parsed(s)
  local u, err = url.parse(s)
  if not u then
    check(type(err) == "table" and type(err.kind) == "string" and type(err.message) == "string",
      "parse failed without an error object for %q", s)
    return nil
  end
  check(type(u.path) == "string", "no path for %q", s)
  if u.host then check(u.host == "" or u.host:find(HOST_CHARS), "host %q from %q", u.host, s) end
  return u
end

-- A URL a request could be made to: what it puts on the wire.
local function check_wire(u, from)
  if not url.check_http(u, from) then return end
  local target = url.target(u)
  check(target:find("^/[!-~]*$"), "request target %q from %q", target, from)
  check(url.host_header(u):find(HOST_CHARS), "Host %q from %q", url.host_header(u), from)
  local text = url.tostring(u)
  local again = parsed(text)
  check(again ~= nil, "%q (from %q) does not parse", text, from)
  check(url.tostring(again) == text, "%q (from %q) parses to %q", text, from, url.tostring(again))
end

local function check_quoters(s)
  for _, name in ipairs { "quote_path", "quote_query", "quote_fragment" } do
    local once = url[name](s)
    check(url[name](once) == once, "%s is not idempotent on %q: %q", name, s, once)
  end
  check(type(url.unquote(s)) == "string", "unquote gave no string")
  check(type(url.encode_query(s)) == "string", "encode_query gave no string")
  check(type(url.remove_dot_segments(s)) == "string", "remove_dot_segments gave no string")
end

-- data: a URL, or "base\nreference" (a lone URL is joined to BASE).
return function(data)
  local base, ref = data:match("^([^\n]*)\n(.*)$")
  if not base then base, ref = BASE, data end
  local b, r = parsed(base), parsed(ref)
  if b then check_wire(b, base) end
  if r then check_wire(r, ref) end
  check_quoters(ref)
  for _, strict in ipairs { true, false } do
    local j, err = url.join(base, ref, { strict = strict })
    check(j ~= nil or err ~= nil, "join gave neither a URL nor an error")
    if j then check_wire(j, base .. " + " .. ref) end
  end
end
