-- lurl.proxy_env against curl, case by case: run by
-- spec/interop_noproxy_curl_test.sh as
--   lurl spec/interop/noproxy_client.lua <proxy-a port> <proxy-b port> <origin port> <peer log> [curl]
-- The cases are spec/unit/noproxy_cases.lua's (the unit spec reads the same
-- file). For each, curl runs with only that case's variables (env -i) and
-- --connect-to sending every direct connection to the fake origin, so a
-- request never leaves loopback whatever curl decides; which of the peers
-- (spec/interop/noproxy_peer.py) it reached, by the peer's log and by curl's
-- %{remote_port}, is curl's decision. lurl's is proxy_env.proxy_for on the
-- same variables. Prints one line per case and "N passed, N failed".
local proxy_env = require "lurl.proxy_env"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local H = dofile(dir .. "/harness.lua")
local CASES = dofile(dir .. "/../unit/noproxy_cases.lua")

local port_a, port_b, port_o, LOG, CURL = ...
assert(port_a and port_b and port_o and LOG, "usage: lurl noproxy_client.lua <a> <b> <origin> <log> [curl]")
CURL = CURL or "curl"
local A, B = "127.0.0.1:" .. port_a, "127.0.0.1:" .. port_b
local ROLE_OF = { [port_a] = "proxy-a", [port_b] = "proxy-b", [port_o] = "origin" }

local function fill(s) return s and (s:gsub("%$A", A):gsub("%$B", B)) end

-- what a decision (a proxy URL or nil) looks like from the peers' side
local function role(decision)
  if decision == nil then return "origin" end
  return ({ ["http://" .. A] = "proxy-a", ["http://" .. B] = "proxy-b" })[decision] or decision
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function url_of(scheme, host, port)
  if host:find(":", 1, true) and not host:find("^%[") then host = "[" .. host .. "]" end
  return scheme .. "://" .. host .. (port and ":" .. port or "") .. "/"
end

local log_seen = 0

-- The roles of the peer connections logged since the last call.
local function new_log_roles()
  local f = assert(io.open(LOG))
  local roles, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if n > log_seen then roles[#roles + 1] = line:match("^(%S+)") end
  end
  f:close()
  log_seen = n
  return roles
end

-- curl's decision for url under exactly these variables, as a peer role
local function curl_role(vars, url)
  local words = { "env -i" }
  local names = {}
  for k in pairs(vars) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do words[#words + 1] = shell_quote(k .. "=" .. vars[k]) end
  words[#words + 1] = ("%s -q -s -o /dev/null --max-time 5 --connect-timeout 2 --connect-to ::127.0.0.1:%s -w %s %s")
    :format(CURL, port_o, shell_quote("%{remote_port}"), shell_quote(url))
  local p = assert(io.popen(table.concat(words, " ")))
  local remote_port = p:read("*a")
  p:close()
  local logged = new_log_roles()
  local by_port = ROLE_OF[remote_port]
  if #logged ~= 1 or logged[1] ~= by_port then
    error(("curl reached %s by its log, %s by remote_port %q"):format(table.concat(logged, "+"),
      tostring(by_port), remote_port), 2)
  end
  return by_port
end

-- curl's role must be lurl's, or for a known difference what curl 7.88.1
-- did; returns a note for the cases that differ from 7.88.1.
local function compare(lurl_role, want_role, got, curl_want_role, why)
  H.eq(lurl_role, want_role, "lurl's decision")
  if got == want_role then
    return curl_want_role and "curl agrees with lurl here, 7.88.1 did not (" .. why .. ")"
  end
  if curl_want_role and got == curl_want_role then
    return ("known difference: lurl %s, curl %s: %s"):format(want_role, got, why)
  end
  error(("curl went to %s, lurl to %s"):format(got, lurl_role))
end

-- H.check, then the check's note (if any) under its line
local function check(name, fn)
  local note
  H.check(name, function() note = fn() end)
  if note then print("     " .. note) end
end

print(("%d NO_PROXY cases, %d variable cases"):format(#CASES.no_proxy, #CASES.env))
for i, c in ipairs(CASES.no_proxy) do
  local name = ("no_proxy %d: %q for %s%s"):format(i, c.no_proxy, c.host, c.port and ":" .. c.port or "")
  check(name, function()
    local vars = { http_proxy = "http://" .. A, no_proxy = c.no_proxy }
    local decision = proxy_env.proxy_for(proxy_env.snapshot(function(k) return vars[k] end), "http", c.host, c.port)
    local want = c.direct and "origin" or "proxy-a"
    local curl_want = c.curl ~= nil and (c.curl and "origin" or "proxy-a") or nil
    return compare(role(decision), want, curl_role(vars, url_of("http", c.host, c.port)), curl_want, c.why)
  end)
end

for i, c in ipairs(CASES.env) do
  if not c.unit_only then
    local vars = {}
    for k, v in pairs(c.env) do vars[k] = fill(v) end
    local shown = {}
    for k, v in pairs(c.env) do shown[#shown + 1] = k .. "=" .. v end
    table.sort(shown)
    local name = ("env %d: %s %s"):format(i, table.concat(shown, " "), url_of(c.scheme, c.host))
    check(name, function()
      local decision = proxy_env.proxy_for(proxy_env.snapshot(function(k) return vars[k] end), c.scheme, c.host)
      return compare(role(decision), role(fill(c.want)), curl_role(vars, url_of(c.scheme, c.host)))
    end)
  end
end

H.finish("noproxy_client")
