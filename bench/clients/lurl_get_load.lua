-- lurl: BENCH_REQUESTS GETs of BENCH_URL from BENCH_CONNS tasks on one
-- session whose pool holds exactly BENCH_CONNS keep-alive connections; every
-- status and body length (BENCH_BYTES) checked. With BENCH_CAFILE (an https
-- URL) the connector verifies the server against that CA
-- (lurl.ssl_context{ cafile }) and each task's first response must have come
-- over TLS. With BENCH_PROXY every request goes through that proxy (the
-- session's proxy option), and each task's first response must say so
-- (resp.proxy). Prints requests, seconds (the load phase only), conns (the
-- connections the pool holds at the end) and, over TLS, tls (the first
-- response's protocol/cipher). With BENCH_HTTP2 the session speaks HTTP/2
-- (required: by ALPN over TLS, with prior knowledge on h2c) and the
-- BENCH_CONNS tasks are streams, which share the connections the server's
-- SETTINGS_MAX_CONCURRENT_STREAMS allows; each task's first response must
-- have come over HTTP/2.
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")

local p = lib.params()
local session, ssl, h2 = lib.session(p)

local first_tls
-- over TLS: task t's first response came over TLS
local function check_tls(resp, t)
  if not resp.tls then error(("task %d request 1: not over TLS"):format(t), 0) end
  first_tls = first_tls or resp.tls
end

-- with BENCH_PROXY: task t's first response came through it
local function check_proxy(resp, t)
  if resp.proxy ~= p.proxy then
    error(("task %d request 1: proxy %s, not %s"):format(t, tostring(resp.proxy), p.proxy), 0)
  end
end

local elapsed, stats = lib.load(session, p, function(resp, t, i)
  if i ~= 1 then return end
  if ssl then check_tls(resp, t) end
  if p.proxy then check_proxy(resp, t) end
  if h2 and resp.version ~= "2" then error(("task %d request 1: HTTP/%s, not 2"):format(t, resp.version), 0) end
end)
lib.print_json {
  requests = p.requests, seconds = elapsed, conns = stats.idle + stats.in_use,
  tls = first_tls and ("%s/%s"):format(first_tls.protocol, first_tls.cipher) or nil,
}
