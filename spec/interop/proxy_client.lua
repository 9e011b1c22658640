-- lurl through a real proxy: run by spec/interop_proxy_peers_test.sh as
--   lurl spec/interop/proxy_client.lua url=URL [key=value...]
-- Keys:
--   url=URL            the origin URL (required)
--   proxy=URL          the proxy option (http, https, socks5, socks5h ...)
--   auth=USER:PASS     proxy_auth = lurl.basic_auth(USER, PASS)
--   method=NAME        GET (the default), POST, ...
--   data=STRING        the request body
--   n=N                N requests, one after the other, on one session
--   cafile=PATH        the CA the origin's certificate is verified against
--   proxy_cafile=PATH  the CA an https proxy's certificate is verified against
--   ua=STRING          the User-Agent (the proxy's log tells checks apart by it)
--   connect=SECONDS    the sock_connect bound (5 by default)
-- Prints one JSON line per request: {"i", "status", "length", "body" (when
-- short), "proxy" (resp.proxy), "elapsed"} for a response, {"i", "error"
-- (the kind), "status", "message", "proxy", "elapsed"} for an error. The
-- shell script judges them.
local lurl = require "lurl"
local cjson = require "cjson"

local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local opts = dofile(dir .. "/harness.lua").args(...)
assert(opts.url, "usage: lurl proxy_client.lua url=URL [proxy=URL] [auth=USER:PASS] [method=M] [data=S] [n=N] ...")

local function context(cafile)
  return cafile and lurl.ssl_context { cafile = cafile } or nil
end

local session = lurl.session {
  timeout = lurl.timeout { total = 20, sock_connect = tonumber(opts.connect) or 5 },
  headers = opts.ua and { ["User-Agent"] = opts.ua } or nil,
}

local request = {
  proxy = opts.proxy,
  ssl = context(opts.cafile),
  proxy_ssl = context(opts.proxy_cafile),
  data = opts.data,
}
if opts.auth then
  local user, pass = opts.auth:match("^([^:]*):(.*)$")
  request.proxy_auth = lurl.basic_auth(user, pass)
end

local method = opts.method or "GET"
for i = 1, tonumber(opts.n) or 1 do
  local started = lurl.now()
  local resp, err = session:request(method, opts.url, request)
  local line = { i = i, elapsed = lurl.now() - started }
  if resp then
    local body = resp:read()
    line.status, line.length, line.proxy = resp.status, #body, resp.proxy
    if #body <= 200 then line.body = body end
  else
    line.error, line.status, line.message, line.proxy = err.kind, err.status, err.message, err.proxy
  end
  print(cjson.encode(line))
end
session:close()
