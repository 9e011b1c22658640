-- Request tracing after aiohttp's TraceConfig: lists of Lua callbacks per
-- signal, called as fn(session, ctx, params). ctx is a fresh table per
-- request and trace config ({ trace_request_ctx = <the request's trace_ctx> },
-- or what the config's ctx_factory returns), so callbacks can carry state
-- from the start of a request to its end. A callback that raises is reported
-- on stderr and the request goes on.
--
-- Without trace configs a session never builds a tracer, so tracing costs a
-- nil check per signal.
local errors = require "lurl.errors"
local check = require "lurl.check"

local M = {}

M.SIGNALS = {
  "request_start", "request_end", "request_exception", "request_redirect",
  "request_headers_sent", "request_chunk_sent", "response_chunk_received",
  "connection_queued_start", "connection_queued_end",
  "connection_create_start", "connection_create_end", "connection_reuseconn",
  "dns_resolvehost_start", "dns_resolvehost_end", "dns_cache_hit", "dns_cache_miss",
  -- lurl's own: a request retried on a fresh connection after a pooled one
  -- turned out to be closed by the server (see lurl.session)
  "request_stale_retry",
  -- lurl's own: a new connection through a proxy, from its TCP connection
  -- to an open tunnel ({ proxy = url })
  "proxy_connect_start", "proxy_connect_end",
  -- the events of the resilience policies (lurl.policy.base.emit)
  "attempt_start", "attempt_end", "backoff", "budget_denied", "breaker_transition",
  "hedge_fired", "fallback_taken", "throttled",
}

local KNOWN = {}
for _, name in ipairs(M.SIGNALS) do KNOWN["on_" .. name] = true end

local TraceConfig = {}
local mt = { __name = "lurl.trace_config", __index = TraceConfig }
function mt.__tostring(tc)
  local n = 0
  for name in pairs(KNOWN) do n = n + #tc[name] end
  return ("lurl.trace_config (%d callbacks)"):format(n)
end

-- lurl.trace_config{ on_request_start = fn | { fn, ... }, ..., ctx_factory = fn }
-- Every signal is also a list on the object: table.insert(tc.on_request_end, fn).
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then check.argerror("trace_config", "#1", "table expected, got " .. type(opts)) end
  local tc = setmetatable({}, mt)
  for name in pairs(KNOWN) do tc[name] = {} end
  for k, v in pairs(opts) do
    if k == "ctx_factory" then
      tc.ctx_factory = check.func("trace_config", "'ctx_factory'", v)
    elseif not KNOWN[k] then
      check.argerror("trace_config", "#1", "unknown signal '" .. tostring(k) .. "'")
    else
      local list = type(v) == "table" and v or { v }
      for _, fn in ipairs(list) do
        table.insert(tc[k], check.func("trace_config", "'" .. k .. "'", fn))
      end
    end
  end
  return tc
end

function M.is(v) return getmetatable(v) == mt end

-- Whether name is one of M.SIGNALS.
function M.is_signal(name) return KNOWN["on_" .. tostring(name)] == true end

-- ---- one request's tracer ----

local Tracer = {}
local tmt = { __name = "lurl.tracer", __index = Tracer }

local function report(signal, err)
  io.stderr:write("lurl: trace callback on_", signal, " failed: ", tostring(err), "\n")
end

-- start(session, configs, trace_request_ctx) -> tracer, or nil without configs.
function M.start(session, configs, trace_request_ctx)
  if not configs then return nil end
  local t = setmetatable({ session = session, n = #configs }, tmt)
  for i, tc in ipairs(configs) do
    local ctx
    if tc.ctx_factory then
      local ok, r = pcall(tc.ctx_factory, trace_request_ctx)
      if ok and type(r) == "table" then ctx = r else report("ctx_factory", ok and "must return a table" or r) end
    end
    ctx = ctx or {}
    if ctx.trace_request_ctx == nil then ctx.trace_request_ctx = trace_request_ctx end
    t[i] = { tc, ctx }
  end
  return t
end

function Tracer:emit(signal, params)
  local key = "on_" .. signal
  for i = 1, self.n do
    local tc, ctx = self[i][1], self[i][2]
    local list = tc[key]
    for j = 1, #list do
      local ok, err = xpcall(list[j], debug.traceback, self.session, ctx, params)
      if not ok then
        -- cancellation of the request's task is not the callback's failure
        if errors.is(err, "CancelledError") then error(err, 0) end
        report(signal, err)
      end
    end
  end
end

return M
