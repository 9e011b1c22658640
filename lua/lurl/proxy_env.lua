-- lurl.proxy_env: the proxy a request takes from the environment when a
-- session trusts it (trust_env), with curl's rules where curl and aiohttp
-- (Python's urllib.request.getproxies and proxy_bypass) differ:
--   M.snapshot([getenv])             -> env, the variables read once
--   M.proxy_for(env, scheme, host, port) -> proxy URL string, or nil (direct)
--   M.no_proxy_match(list, host, port)   -> whether NO_PROXY exempts host:port
-- docs/proxies-env.md is the user's reference; spec/unit/noproxy_cases.lua
-- holds the cases that spec/interop_noproxy_curl_test.sh checks against curl.
local default_ports = require("lurl.url").default_ports
local ip = require "lurl.ip"

local M = {}

-- Where each scheme's proxy comes from, first non-empty variable first
-- (curl's lib/url.c detect_proxy), before all_proxy / ALL_PROXY:
-- * lower case wins over upper case;
-- * upper-case HTTP_PROXY is never read, by curl either: a CGI server turns
--   a request's "Proxy:" header into HTTP_PROXY (httpoxy, CVE-2016-5385).
--   Python drops it only under CGI (REQUEST_METHOD set); curl drops it
--   always, and so does lurl, so whether this is CGI does not matter (no
--   other proxy variable starts with HTTP_, the prefix CGI gives headers);
-- * ws and wss fall back to the http and https proxies (curl 8.4+, curl
--   issue 12031); aiohttp reads ws_proxy and wss_proxy only, and no all_proxy.
local SOURCES = {
  http = { "http_proxy" },
  https = { "https_proxy", "HTTPS_PROXY" },
  ws = { "ws_proxy", "WS_PROXY", "http_proxy" },
  wss = { "wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY" },
}
local ALL = { "all_proxy", "ALL_PROXY" }
-- no_proxy wins over NO_PROXY; an empty value counts as unset (curl's
-- curl_getenv returns NULL for ""), so no_proxy="" does not hide NO_PROXY.
local NO_PROXY = { "no_proxy", "NO_PROXY" }

local function first_set(getenv, names)
  for _, name in ipairs(names) do
    local v = getenv(name)
    if v ~= nil and v ~= "" then return v end
  end
  return nil
end

-- ---- NO_PROXY ----

-- An address with an optional "/bits" as { bytes, bits }, or nil. Without
-- "/bits" the whole address counts. "/0" is every address of the family,
-- as CIDR means it (curl 7.88 compares the whole address instead: its
-- issue and pull request 20306).
local function network(s)
  local addr, bits = s:match("^(.-)/(%d+)$")
  local bytes = ip.bytes(addr or s)
  if not bytes then return nil end
  bits = tonumber(bits) or #bytes * 8
  if bits > #bytes * 8 then return nil end
  return { bytes = bytes, bits = bits }
end

local function in_network(bytes, net)
  if #bytes ~= #net.bytes then return false end -- another family
  local full, rest = math.floor(net.bits / 8), net.bits % 8
  for i = 1, full do
    if bytes[i] ~= net.bytes[i] then return false end
  end
  if rest == 0 then return true end
  local unit = 2 ^ (8 - rest) -- compare the top `rest` bits of the next byte
  return math.floor(bytes[full + 1] / unit) == math.floor(net.bytes[full + 1] / unit)
end

-- An entry's optional port: "name:port", "1.2.3.4:port", "[v6]:port" (curl
-- matches no entry with a port at all; Go's httpproxy and requests read it
-- as "this port only", which lurl does). A bare IPv6 address keeps its
-- colons: "::1:8080" is an address, "[::1]:8080" one with a port.
local function split_port(entry)
  local inner, rest = entry:match("^%[([^%]]*)%](.*)$")
  if inner then
    if rest == "" then return inner, nil end
    local port = rest:match("^:(%d+)$")
    if port then return inner, tonumber(port) end
    return nil
  end
  local addr, port = entry:match("^([^:]*):(%d+)$")
  if addr then return addr, tonumber(port) end
  return entry, nil
end

-- The host as no_proxy_match compares it: { bytes } for an IP address
-- (IPv6 with or without brackets), { name } otherwise (lower case, without
-- the trailing dot of a fully qualified name).
local function host_key(host)
  local bytes = ip.bytes(host:match("^%[(.*)%]$") or host)
  if bytes then return { bytes = bytes } end
  return { name = (host:lower():gsub("%.$", "")) }
end

-- An entry ready to compare: { port = number or nil, net = network } for an
-- address or CIDR range, { port, name } for a name (lower case, without its
-- leading and trailing dots), or nil for one that can match nothing. An
-- entry that reads as an address matches addresses only, any other entry
-- names only: a name never matches an address or a range.
local function compile_entry(entry)
  local target, port = split_port(entry)
  if not target then return nil end
  local net = network(target)
  if net then return { port = port, net = net } end
  local name = target:lower():gsub("%.$", ""):gsub("^%.", "")
  if name == "" then return nil end
  return { port = port, name = name }
end

-- compile(list) -> the NO_PROXY value as entries to compare, once for all
-- requests: true for "*", a list otherwise (nil or "" make an empty one).
-- As curl: only the whole value "*" matches everything (a "*" in a longer
-- list is a name like any other, so "*.example.com" matches nothing), and
-- entries are separated by commas, spaces and tabs.
local function compile(list)
  if list == "*" then return true end
  local out = {}
  for entry in (list or ""):gmatch("[^, \t]+") do out[#out + 1] = compile_entry(entry) end
  return out
end

-- A name entry matches the name itself and every name under it ("example.com"
-- and ".example.com" both match example.com and a.example.com, not
-- badexample.com), case-insensitively, a trailing dot ignored (curl 7.86+
-- lib/noproxy.c).
local function entry_matches(e, key, port)
  if e.port and e.port ~= port then return false end
  if e.net then return key.bytes ~= nil and in_network(key.bytes, e.net) end
  local name = key.name
  return name ~= nil and (name == e.name or (#name > #e.name and name:sub(-#e.name - 1) == "." .. e.name))
end

local function exempt(entries, host, port)
  if entries == true then return host ~= nil and host ~= "" end
  if #entries == 0 or host == nil or host == "" then return false end
  local key = host_key(host)
  for _, e in ipairs(entries) do
    if entry_matches(e, key, port) then return true end
  end
  return false
end

-- no_proxy_match(list, host, port) -> true when the NO_PROXY value list
-- exempts the host (a name, an IPv4 or an IPv6 address, with or without
-- brackets) on that port.
function M.no_proxy_match(list, host, port)
  return exempt(compile(list), host, port)
end

-- snapshot([getenv]) -> { proxy = { http, https, ws, wss }, all, no_proxy,
-- exempt }: what the variables say, read once (a session takes one when it
-- is made), NO_PROXY compiled for every request to come.
function M.snapshot(getenv)
  getenv = getenv or os.getenv
  local proxy = {}
  for scheme, names in pairs(SOURCES) do proxy[scheme] = first_set(getenv, names) end
  local no_proxy = first_set(getenv, NO_PROXY)
  return { proxy = proxy, all = first_set(getenv, ALL), no_proxy = no_proxy, exempt = compile(no_proxy) }
end

-- proxy_for(env, scheme, host[, port]) -> the proxy URL for a request, or
-- nil to go direct: nil when NO_PROXY exempts host:port (port defaults to
-- the scheme's). A value without a scheme ("proxy:3128") is an HTTP proxy,
-- as curl reads it.
function M.proxy_for(env, scheme, host, port)
  local url = SOURCES[scheme] and (env.proxy[scheme] or env.all)
  if not url then return nil end
  if exempt(env.exempt, host, port or default_ports[scheme]) then return nil end
  if not url:find("://", 1, true) then url = "http://" .. url end
  return url
end

return M
