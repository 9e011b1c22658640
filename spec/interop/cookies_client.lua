-- lurl's cookie jar against curl's, through nginx: run by
-- spec/interop_cookies_curl_test.sh as
--   lurl spec/interop/cookies_client.lua <port> <scratch-dir> [curl]
-- nginx on 127.0.0.1:<port> answers /set-cookies with the Set-Cookie lines
-- of SET_COOKIES below and echoes the request's Cookie header at any path
-- ending in /echo-cookie. Host names under example.test reach it through
-- curl's --resolve and the connector's resolve.
-- Prints one line per check and "N passed, N failed"; exits non-zero on failure.
local lurl = require "lurl"
local cookies = require "lurl.cookies"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local H = dofile(dir .. "/harness.lua")
local check, eq, ok = H.check, H.eq, H.ok

local port, T, CURL = ...
assert(port and T, "usage: lurl cookies_client.lua <port> <scratch-dir> [curl]")
CURL = CURL or "curl"

local WWW = "http://www.example.test:" .. port
-- what nginx sends (the test script writes the same lines into its config)
local SET_COOKIES = {
  "host=1; Path=/",
  "dom=2; Domain=example.test; Path=/",
  "sec=3; Path=/; Secure",
  "ho=4; Path=/; HttpOnly; Max-Age=3600",
  "sub=5; Path=/sub",
  'q="x y"; Path=/',
  "exp=6; Path=/; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
  "gone=7; Path=/; Max-Age=0",
}
-- request URL -> the cookies curl's jar holds for it over http (curl keeps
-- no Secure cookie set over http, and Secure ones are not sent over http)
local EXPECTED = {
  { WWW .. "/echo-cookie", 'dom=2; exp=6; ho=4; host=1; q="x y"' },
  { WWW .. "/sub/echo-cookie", 'dom=2; exp=6; ho=4; host=1; q="x y"; sub=5' },
  { "http://other.example.test:" .. port .. "/echo-cookie", "dom=2" },
  { "http://example.test:" .. port .. "/echo-cookie", "dom=2" },
}

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- curl's answer body for url with extra arguments (-b, -c ...)
local function curl(args, u)
  local cmd = ("%s -sS --max-time 10 --resolve www.example.test:%s:127.0.0.1 --resolve other.example.test:%s:127.0.0.1 "
    .. "--resolve example.test:%s:127.0.0.1 %s %s"):format(CURL, port, port, port, args, shell_quote(u))
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  local closed, _, code = p:close()
  if not closed and code ~= nil and code ~= 0 then error("curl failed (" .. tostring(code) .. "): " .. cmd, 2) end
  return out
end

-- A Cookie header as a sorted set: curl orders cookies of one path length by
-- domain and name length, RFC 6265 by creation time.
local function as_set(h)
  if h == nil or h == "" then return "" end
  local parts = {}
  for p in (h .. "; "):gmatch("(.-); ") do parts[#parts + 1] = p end
  table.sort(parts)
  return table.concat(parts, "; ")
end

local function read_file(path) return H.read_file(path) end

check("lurl jar:save -> curl -b sends what lurl would send", function()
  local jar = cookies.jar()
  local stored = jar:update_from_headers(SET_COOKIES, WWW .. "/set-cookies")
  eq(#stored, 7, "cookies stored from the Set-Cookie lines")
  jar:update_cookies { shared = "not-in-file" }  -- shared cookies have no domain: not saved
  local path = T .. "/lurl-jar.txt"
  assert(jar:save(path))
  jar:clear(function(c) return c.domain == "" end)
  for _, e in ipairs(EXPECTED) do
    local u, want = e[1], e[2]
    local got = curl("-b " .. shell_quote(path), u)
    eq(as_set(got), as_set(jar:cookie_header(u)), "curl's Cookie header for " .. u)
    eq(as_set(got), want, "the cookies sent to " .. u)
  end
  local sub = curl("-b " .. shell_quote(path), WWW .. "/sub/echo-cookie")
  assert(sub:find("^sub=5; "), "the longest path comes first: " .. sub)
  assert(jar:cookie_header(WWW .. "/sub/echo-cookie"):find("^sub=5; "))
end)

local curl_jar = T .. "/curl-jar.txt"

check("curl -c -> lurl jar:load: the cookies, their flags, the Cookie headers", function()
  eq(curl("-c " .. shell_quote(curl_jar), WWW .. "/set-cookies"), "ok", "/set-cookies body")
  local jar = cookies.jar()
  eq(jar:load(curl_jar), 6, "cookies loaded from curl's file")
  local by_name = {}
  for c in jar:iter() do by_name[c.name] = c end
  eq(by_name.sec, nil, "curl keeps no Secure cookie set over http")
  eq(by_name.dom.host_only, false, "dom is a domain cookie")
  eq(by_name.dom.domain, "example.test", "dom's domain")
  eq(by_name.host.host_only, true, "host is host-only")
  eq(by_name.host.domain, "www.example.test", "host's domain")
  eq(by_name.ho.http_only, true, "ho is HttpOnly")
  assert(math.abs(by_name.ho.expires - (os.time() + 3600)) < 60,
    "ho expires in an hour: " .. tostring(by_name.ho.expires))
  eq(by_name.exp.expires, 4102444800, "exp's expiry")
  eq(by_name.q.value, '"x y"', "a quoted value keeps its quotes")
  eq(by_name.sub.path, "/sub", "sub's path")
  eq(by_name.host.expires, nil, "host is a session cookie")
  for _, e in ipairs(EXPECTED) do
    local u, want = e[1], e[2]
    eq(as_set(jar:cookie_header(u)), want, "lurl's Cookie header for " .. u)
    eq(as_set(curl("-b " .. shell_quote(curl_jar), u)), want, "curl's Cookie header for " .. u)
  end
end)

check("curl's file -> lurl load -> save: byte for byte what curl wrote", function()
  local jar = cookies.jar()
  assert(jar:load(curl_jar))
  local path = T .. "/relay-jar.txt"
  assert(jar:save(path))
  eq(read_file(path), read_file(curl_jar), "the file lurl wrote back")
  for _, e in ipairs(EXPECTED) do
    eq(curl("-b " .. shell_quote(path), e[1]), curl("-b " .. shell_quote(curl_jar), e[1]),
      "curl with either file, " .. e[1])
  end
end)

check("cookies of 127.0.0.1 from curl: sent by lurl only with unsafe = true", function()
  local path = T .. "/curl-ip-jar.txt"
  local ip = "http://127.0.0.1:" .. port
  curl("-c " .. shell_quote(path), ip .. "/set-cookies")
  -- curl counts loopback as a secure context: it keeps sec=3 and sends it
  -- over http, as lurl does for an origin in treat_as_secure_origin
  local want = as_set(curl("-b " .. shell_quote(path), ip .. "/echo-cookie"))
  eq(want, 'exp=6; ho=4; host=1; q="x y"; sec=3', "curl's Cookie header for 127.0.0.1")
  local unsafe = cookies.jar { unsafe = true, treat_as_secure_origin = { ip } }
  eq(unsafe:load(path), 6, "cookies in curl's file")
  eq(as_set(unsafe:cookie_header(ip .. "/echo-cookie")), want, "lurl's Cookie header with unsafe = true")
  local plain = cookies.jar { unsafe = true }
  plain:load(path)
  eq(as_set(plain:cookie_header(ip .. "/echo-cookie")), 'exp=6; ho=4; host=1; q="x y"',
    "without treat_as_secure_origin the Secure cookie stays home")
  local safe = cookies.jar()
  safe:load(path)
  eq(safe:cookie_header(ip .. "/echo-cookie"), nil, "lurl's Cookie header without unsafe")
end)

check("lurl's session: Set-Cookie from nginx into the jar, the jar's Cookie header to nginx", function()
  local resolve = {}
  for _, h in ipairs { "www.example.test", "other.example.test", "example.test" } do
    resolve[h .. ":" .. port] = "127.0.0.1"
  end
  local conn = lurl.connector { resolve = resolve }
  -- Once sessions keep cookies themselves, a dummy jar keeps this check
  -- about the explicit header; before that the option does not exist.
  local made, s = pcall(lurl.session, { connector = conn, cookie_jar = cookies.dummy() })
  if not made then s = lurl.session { connector = conn } end
  local jar = cookies.jar()
  local r = ok(s:get(WWW .. "/set-cookies"))
  eq(r.status, 200, "status")
  local values = r.headers:get_all("set-cookie")
  eq(#values, #SET_COOKIES, "Set-Cookie fields received")
  eq(#jar:update_from_headers(values, r.url or (WWW .. "/set-cookies")), 7, "cookies stored")
  local from_curl = cookies.jar()
  from_curl:load(curl_jar)
  for _, e in ipairs(EXPECTED) do
    local h = jar:cookie_header(e[1])
    local echo = ok(s:get(e[1], { headers = { Cookie = h } }))
    eq(echo:text(), h, "nginx's echo of lurl's Cookie header for " .. e[1])
    eq(as_set(h), as_set(from_curl:cookie_header(e[1])), "lurl's and curl's jars agree on " .. e[1])
  end
  s:close()
end)

H.finish("cookies_client")
