-- Shared helpers for specs: `local support = require "spec.support"`.
local lurl = require "lurl"
local core = require "lurl.core"
local sched = require "lurl.sched"
local testing = require "lurl.testing"

local M = {}

-- A loopback test server with the given routes (see lurl.testing.server).
-- LURL_SPEC_HTTP2=1: the specs that make their servers and sessions here
-- run over HTTP/2 (spec/CMakeLists.txt runs a list of them once each way):
-- the servers speak h2c as well and the sessions use it, with prior
-- knowledge. A case about what only HTTP/1.1 has calls M.h1_only().
M.http2 = os.getenv("LURL_SPEC_HTTP2") == "1"

function M.server(routes, opts)
  opts = opts or {}
  opts.routes = routes
  if M.http2 and opts.http2 == nil then opts.http2 = true end
  return testing.server(opts)
end

-- Under LURL_SPEC_HTTP2, the case that calls this is skipped, as pending
-- with why: it is about HTTP/1.1's wire (chunks, Connection, raw bytes).
function M.h1_only(why)
  -- pending is busted's, in the spec file's environment (the caller's)
  if M.http2 then getfenv(2).pending("HTTP/1.1 only: " .. why) end
  return M.http2
end

-- A throwaway PKI made by spec/tls/make_certs.sh (see its header for the
-- files): its directory, ending in "/". Remove it with os.execute("rm -rf ").
function M.pki()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("sh spec/tls/make_certs.sh " .. dir .. " >/dev/null 2>&1") == 0, "make_certs.sh failed")
  return dir .. "/"
end

-- A session whose base_url points at server.
function M.session(server, opts)
  opts = opts or {}
  opts.base_url = server:url("/")
  if M.http2 and opts.http2 == nil then opts.http2 = "prior_knowledge" end
  return lurl.session(opts)
end

-- Files for specs, with plain Lua io.
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- s gzip-compressed, for routes that answer with Content-Encoding: gzip.
function M.gzip(s)
  local enc = core.codec.encoder("gzip")
  return enc:feed(s) .. enc:finish()
end

function M.random_bytes(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local data = f:read(n)
  f:close()
  return data
end

-- Open file descriptors of this process, for leak checks.
function M.open_fds() return core.open_fds() end

-- Elapsed seconds of fn(...) and its results.
function M.timed(fn, ...)
  local t0 = lurl.now()
  local res = { fn(...) }
  return lurl.now() - t0, unpack(res, 1, table.maxn(res))
end


-- ---- helpers for the connector, DNS and tracing specs ----

-- A loopback TCP port with nothing listening on it (connect is refused).
function M.free_port(ip)
  local l = assert(core.tcp.listen(ip or "127.0.0.1", 0, function() end))
  local _, port = l:sockname()
  l:close()
  return port
end

-- A resolver for lurl.connector{ resolver = } that answers from a table of
-- host -> list of addresses ({ ip =, family = }) and counts its calls, in
-- all (r.calls) and per host (r.by_host[host]). r.delay makes each lookup
-- sleep first; a host mapped to a string fails with that message; a host
-- mapped to a function has its result returned (it may raise). r.seen lists
-- { host, port, family } of every call.
function M.resolver(map, delay)
  local r = { calls = 0, by_host = {}, seen = {}, delay = delay }
  r.fn = function(host, port, family)
    r.calls = r.calls + 1
    r.by_host[host] = (r.by_host[host] or 0) + 1
    r.seen[#r.seen + 1] = { host, port, family }
    if r.delay then lurl.sleep(r.delay) end
    local v = map[host]
    if type(v) == "function" then return v(host, port, family) end
    if type(v) == "string" then return nil, v end
    if v == nil then return nil, "unknown host " .. host end
    return v
  end
  return r
end

-- Poll until pred() is true or `secs` (default 5) pass; returns pred()'s
-- last value. For states reached asynchronously (a FIN noticed, a sweeper
-- run): specs wait for them instead of guessing a delay.
function M.eventually(pred, secs)
  local deadline = lurl.now() + (secs or 5)
  local v = pred()
  while not v and lurl.now() < deadline do
    lurl.sleep(0.01)
    v = pred()
  end
  return v
end

-- A fresh Unix socket path (unique: os.tmpname makes the name, the file it
-- creates is removed so that a server can bind there).
function M.socket_path()
  local path = os.tmpname()
  os.remove(path)
  return path .. ".sock"
end

-- A "black hole" at [::1]:port: a listener that never accepts, with its
-- accept queue filled by connections of our own, so that the kernel drops
-- every further SYN and a connect() to it hangs (no refusal). Returns a
-- cleanup function, or nil and why (::1 unusable, port taken, queue never
-- filled).
function M.black_hole6(port)
  local bh, err = core.tcp.listen("::1", port, function() end, 0)
  if not bh then return nil, "cannot listen on [::1]:" .. port .. ": " .. tostring(err) end
  local fillers = {}
  local function cleanup()
    for _, f in ipairs(fillers) do if not f:closed() then f:close() end end
    if not bh:closed() then bh:close() end
  end
  for _ = 1, 16 do
    local connected = false
    local f, ferr = core.tcp.connect("::1", port, function(ok) connected = ok end)
    if not f then cleanup(); return nil, "cannot connect to [::1]: " .. tostring(ferr) end
    fillers[#fillers + 1] = f
    lurl.sleep(0.2)
    if not connected then return cleanup end
  end
  cleanup()
  return nil, "could not fill the accept queue of a listener on [::1]"
end


-- ---- helpers for the policy, mock and middleware specs ----

-- busted's assert: the global one of a required module is Lua's own.
local luassert = require "luassert"

-- State for each test of a spec under the virtual clock (autojump) with the
-- mock transport, made afresh by env.setup() and undone by env.teardown():
-- the sessions of env.session (or given to env.keep) closed, the clock
-- closed, and no task left failed without a join. Use:
--   local env = support.policy_env()
--   local clock, mock
--   before_each(function() clock, mock = env.setup() end)
--   after_each(env.teardown)
function M.policy_env()
  local env, sessions = {}, {}

  function env.setup()
    sessions = {}
    env.clock = testing.clock { autojump = true }
    env.mock = testing.mock()
    return env.clock, env.mock
  end

  function env.teardown()
    for _, s in ipairs(sessions) do s:close() end
    env.clock:close()
    luassert.are.equal(0, sched.unjoined_failures(), "tasks failed without a join")
  end

  -- Session s, closed after the test; returns s.
  function env.keep(s)
    sessions[#sessions + 1] = s
    return s
  end

  -- A session over the mock whose middlewares are a list, or one middleware
  -- (a function or a callable object); opts are other session options.
  function env.session(middlewares, opts)
    opts = opts or {}
    if type(middlewares) == "function" or getmetatable(middlewares) then middlewares = { middlewares } end
    opts.middlewares = middlewares
    return env.keep(env.mock:session(opts))
  end

  -- Replace the clock by a new one with autojump and the given options
  -- (wall =, start =); returns it.
  function env.new_clock(opts)
    env.clock:close()
    opts.autojump = true
    env.clock = testing.clock(opts)
    return env.clock
  end

  return env
end

-- Runs fn(...) in a task, cancels it after secs (virtual) seconds and joins
-- it: checks that it ended cancelled, with nil and a CancelledError.
function M.cancel_after(secs, fn, ...)
  local task = lurl.spawn(fn, ...)
  lurl.sleep(secs)
  task:cancel()
  local res, err = task:join()
  luassert.are.equal("cancelled", task.state)
  luassert.is_nil(res)
  luassert.are.equal("CancelledError", err.kind)
end

-- Checks the results of a request that failed: no response and an error of
-- kind, at virtual time `at` when given; returns the error.
function M.failed(kind, at, resp, err)
  luassert.is_nil(resp)
  luassert.are.equal(kind, err and err.kind)
  if at then luassert.are.equal(at, sched.now()) end
  return err
end

-- Checks that policy:run under a deadline already passed fails with a
-- TimeoutError and never calls its function.
function M.nothing_past_deadline(policy)
  local calls = 0
  local res, err = policy:run(function()
    calls = calls + 1
    return "never"
  end, { deadline = 0 })
  luassert.is_nil(res)
  luassert.are.equal("TimeoutError", err.kind)
  luassert.are.equal(0, calls)
end

-- An on_event hook that keeps the events in a list: returns the list and
-- the hook.
function M.events()
  local list = {}
  return list, function(ev) list[#list + 1] = ev end
end

-- The events of a list of the given type.
function M.of_type(list, kind)
  local out = {}
  for _, ev in ipairs(list) do if ev.type == kind then out[#out + 1] = ev end end
  return out
end

-- A lurl.trace_config that keeps the params of the given signals (names
-- without "on_") in a list: returns the list and the trace config.
function M.traced(...)
  local list, hooks = {}, {}
  local function keep(_, _, params) list[#list + 1] = params end
  for _, name in ipairs { ... } do hooks["on_" .. name] = keep end
  return list, lurl.trace_config(hooks)
end

-- The times (call.at) of a list of mock calls, such as route.calls.
function M.call_times(calls)
  local out = {}
  for i, c in ipairs(calls) do out[i] = c.at end
  return out
end

-- Checks that a time is within 1e-9 of the one expected: virtual times are
-- exact, sums of floats are not. what names it in the message.
function M.near(expected, actual, what)
  what = what or "time"
  luassert.is_true(type(actual) == "number", what .. " is not a number: " .. tostring(actual))
  luassert.is_true(math.abs(expected - actual) < 1e-9,
    ("%s: expected %.17g, got %.17g"):format(what, expected, actual))
end

-- The same for a list of times: as many, each near its expected one.
function M.all_near(expected, actual, what)
  what = what or "times"
  luassert.are.equal(#expected, #actual, what .. ": count")
  for i = 1, #expected do M.near(expected[i], actual[i], ("%s[%d]"):format(what, i)) end
end

-- Checks that session s leaks no connection: its pool has none in use, and
-- every connection the mock holds open is an idle one of the pool.
function M.no_leak(s, mock)
  local st = s.connector:stats()
  luassert.are.equal(0, st.in_use, "connections in use")
  luassert.are.equal(st.idle, mock:open_streams(), "open connections that are not idle in the pool")
end

-- An HTTP-date (as Retry-After takes) for epoch seconds t.
function M.http_date(t)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", t)
end

-- Checks that fn(...) raises an error that contains text (plain); returns
-- the error.
function M.raises(text, fn, ...)
  local ok, err = pcall(fn, ...)
  luassert.is_false(ok, "no error raised; expected one with: " .. text)
  err = tostring(err)
  luassert.is_truthy(err:find(text, 1, true), err)
  return err
end

-- The same, and the error must point at a line of the spec file that calls
-- raises_at: for argument errors raised at their caller's level (fn is then
-- a function of that spec that makes the bad call).
function M.raises_at(text, fn, ...)
  local err = M.raises(text, fn, ...)
  local file = debug.getinfo(2, "S").short_src:match("[^/]+$")
  luassert.is_truthy(err:find(file:gsub("%p", "%%%0") .. ":%d+: "), "the error points elsewhere: " .. err)
  return err
end

-- Checks a constructor's argument errors: make(options) raises an error
-- with the message of each case { options, message }.
function M.bad_options(make, cases)
  for _, case in ipairs(cases) do M.raises(case[2], make, case[1]) end
end


-- ---- a raw TCP peer, for specs that script the bytes a server sends ----

-- A loopback listener that accepts every connection and keeps what each
-- sends: srv.peers[i] = { tcp =, data = (all bytes so far), eof = }.
-- on_data(peer, data), when given, runs in the read callback (it cannot
-- sleep) to answer at once; otherwise the spec writes to peer.tcp itself.
-- srv:close() closes the listener and every peer.
function M.raw_server(on_data)
  local srv = { peers = {} }
  local listener
  listener = assert(core.tcp.listen("127.0.0.1", 0, function()
    local tcp = listener:accept()
    if not tcp then return end
    local peer = { tcp = tcp, data = "", eof = false }
    srv.peers[#srv.peers + 1] = peer
    tcp:read_start(function(data)
      if not data then peer.eof = true; return end
      peer.data = peer.data .. data
      if on_data then on_data(peer, data) end
    end)
  end))
  listener:ref(false)
  srv.port = select(2, listener:sockname())
  function srv.close()
    for _, peer in ipairs(srv.peers) do if not peer.tcp:closed() then peer.tcp:close() end end
    listener:close()
  end
  return srv
end

return M
