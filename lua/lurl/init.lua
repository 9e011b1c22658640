-- lurl: the public Lua API. Everything a script needs hangs off this table;
-- the modules behind it (lurl.session, lurl.sched, ...) may be required too.
local core = require "lurl.core"
local auth = require "lurl.auth"
local body = require "lurl.body"
local connector = require "lurl.connector"
local cookies = require "lurl.cookies"
local formdata = require "lurl.formdata"
local errors = require "lurl.errors"
local headers = require "lurl.headers"
local sched = require "lurl.sched"
local session = require "lurl.session"
local timeout = require "lurl.timeout"
local tls = require "lurl.tls"
local trace = require "lurl.trace"
local url = require "lurl.url"
local response = require "lurl.response"
local map = require "lurl.map"

local lurl = {
  version = core.version,
  versions = core.versions,

  session = session.new,
  timeout = timeout.new,
  connector = connector.new,
  unix_connector = connector.unix,
  trace_config = trace.new,
  fingerprint = tls.fingerprint,
  cookie_jar = cookies.jar,
  basic_auth = auth.basic,
  file = body.file,
  formdata = formdata.new,
  basic_auth_decode = auth.decode,
  basic_auth_from_url = auth.from_url,
  dummy_cookie_jar = cookies.dummy,
  headers = headers.new,

  spawn = sched.spawn,
  gather = sched.gather,
  sleep = sched.sleep,
  wait_for = sched.wait_for,
  semaphore = sched.semaphore,
  map = map.map,
  -- read at each call: a virtual clock (lurl.testing.clock) may replace it
  now = function() return sched.now() end,

  errors = errors,
  error = errors.new,
  url = url,
}

-- A complete response made in Lua (what a caching middleware or a fallback
-- answers with).
function lurl.response(spec) return response.static(spec) end

-- ---- resilience policies (lurl.policy.*), loaded on first use ----
local function policy(module, fn)
  return function(opts) return require("lurl.policy." .. module)[fn](opts) end
end
lurl.retry = policy("retry", "new")
lurl.retry_budget = policy("budget", "retry_budget")
lurl.token_bucket = policy("budget", "token_bucket")
lurl.fallback = policy("fallback", "new")
lurl.hedge = policy("hedge", "new")
lurl.circuit_breaker = policy("circuit_breaker", "new")
lurl.rate_limit = policy("rate_limit", "new")
lurl.adaptive_throttle = policy("adaptive_throttle", "new")
lurl.backoff = setmetatable({}, { __index = function(_, k) return require("lurl.policy.backoff")[k] end })

-- Loaded when first read: lurl.testing (servers, the mock transport, the
-- virtual clock), and what WebSockets alone need; scripts that do not use
-- them do not pay for them.
local LAZY = {
  testing = function() return require "lurl.testing" end,
  ws_timeout = function() return require("lurl.websocket").timeout end,
  WSMsgType = function() return require("lurl.websocket").MsgType end,
  WSCloseCode = function() return require("lurl.websocket").CloseCode end,
}
setmetatable(lurl, { __index = function(t, k)
  local load = LAZY[k]
  if not load then return nil end
  local v = load()
  rawset(t, k, v)
  return v
end })

-- One-shot helpers: a session for a single request, closed afterwards.
function lurl.request(method, u, opts)
  local s = session.new()
  local resp, err = s:request(method, u, opts)
  if resp and opts and opts.stream then
    -- the session must outlive a streamed body: keep it with the response
    resp._session = s
  else
    s:close()
  end
  return resp, err
end

function lurl.get(u, opts) return lurl.request("GET", u, opts) end

-- lurl.ssl_context{ cafile, capath, certfile, keyfile, password,
-- min_version, ciphers, verify = true } (see lurl.tls)
function lurl.ssl_context(opts) return tls.context(opts, 2) end

-- What TLS negotiated for a response (resp.tls), nil over plain HTTP.
function lurl.tls_info(resp) return resp.tls end

return lurl
