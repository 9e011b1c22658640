-- HTTPS: what aiohttp's ssl= parameter says (a verified default, no
-- verification, a context of the script's own, or a pinned certificate),
-- the OpenSSL contexts behind it, and the handshake of a new connection.
--
-- Contexts are built once and shared: the default verified one and the
-- unverified one per runtime, a script's own as it made them. Each keeps
-- the newest session of every server for resumption.
local core = require "lurl.core"
local errors = require "lurl.errors"
local check = require "lurl.check"
local sched = require "lurl.sched"
local tls_over = require "lurl.tls_over"

local M = {}

local CONTEXT_MT = "lurl.ssl_context"

local function is_context(v)
  local mt = getmetatable(v)
  return type(v) == "userdata" and mt ~= nil and mt.__name == CONTEXT_MT
end

-- ---- contexts ----

local VERSIONS = { ["TLSv1.2"] = true, ["TLSv1.3"] = true }

local CONTEXT_OPTIONS = {
  cafile = "string", capath = "string", certfile = "string", keyfile = "string",
  password = "string", ciphers = "string", verify = "boolean", min_version = "string",
  server = "boolean", alpn = "table",
}

-- ALPN protocol names (RFC 7301 3.1): 1 to 255 bytes each, at least one.
local function check_alpn(list)
  if #list == 0 then check.argerror("ssl_context", "'alpn'", "a list of protocol names expected, got an empty one") end
  for i, name in ipairs(list) do
    if type(name) ~= "string" or #name < 1 or #name > 255 then
      check.argerror("ssl_context", "'alpn'", ("protocol name %d must be a string of 1 to 255 bytes"):format(i))
    end
  end
end

-- lurl.ssl_context{ cafile, capath, certfile, keyfile, password,
--   min_version = "TLSv1.2", ciphers, verify = true }: a client context.
-- Without cafile and capath it trusts the system's CA store. verify = false
-- turns certificate and host name checks off (unsafe: anyone on the path
-- can read and change the traffic). A file that does not load raises, so a
-- mistyped path never means a silently different trust or identity.
-- server = true makes a server context (lurl.testing.server): certfile and
-- keyfile required; verify = true with a cafile asks clients for certificates.
-- alpn = { "h2", "http/1.1" }: the protocols a client offers, in order of
-- preference, or those a server accepts (it picks the first of its own list
-- that the client offers); { "http/1.1" } when not given. tls_info().alpn
-- tells what was agreed.
function M.context(opts)
  if type(opts) ~= "table" then
    check.argerror("ssl_context", "#1", "options table expected, got " .. type(opts))
  end
  for k, v in pairs(opts) do
    local want = CONTEXT_OPTIONS[k]
    if not want then check.argerror("ssl_context", "#1", "unknown option '" .. tostring(k) .. "'") end
    if type(v) ~= want then
      check.argerror("ssl_context", "'" .. k .. "'", want .. " expected, got " .. type(v))
    end
  end
  if opts.min_version and not VERSIONS[opts.min_version] then
    check.argerror("ssl_context", "'min_version'", "TLSv1.2 or TLSv1.3 expected, got " .. opts.min_version)
  end
  if opts.alpn then check_alpn(opts.alpn) end
  if opts.keyfile and not opts.certfile then
    check.argerror("ssl_context", "'keyfile'", "needs certfile")
  end
  if opts.server and not opts.certfile then
    check.argerror("ssl_context", "'certfile'", "a server context needs a certificate")
  end
  if opts.server and opts.verify and not opts.cafile and not opts.capath then
    check.argerror("ssl_context", "'cafile'", "a server that verifies clients needs cafile or capath")
  end
  local ctx, err = core.tls.context(opts)
  if not ctx then check.argerror("ssl_context", "#1", (err:gsub("^ESSL: ", ""))) end
  return ctx
end

local shared = {}

-- The shared contexts, verified or not.
local function shared_context(name, opts)
  if not shared[name] then shared[name] = M.context(opts) end
  return shared[name]
end
local function default_context() return shared_context("verified", {}) end
local function unverified_context() return shared_context("unverified", { verify = false }) end

-- What a connection that may speak HTTP/2 offers by ALPN (RFC 9113 section
-- 3.2), in RFC 7301 section 3.1's wire format: each name after its length.
local H2_ALPN = "\2h2\8http/1.1"

-- ---- pinning ----

local Fingerprint = {}
local fp_mt = { __name = "lurl.fingerprint", __index = Fingerprint }
function fp_mt.__tostring(f) return "lurl.fingerprint (sha256 " .. f.digest .. ")" end

-- lurl.fingerprint("sha256 hex of the DER certificate"): colons and spaces
-- as in `openssl x509 -fingerprint -sha256` are allowed. As in aiohttp,
-- MD5 and SHA-1 digests are refused. The certificate is not verified
-- otherwise: the pin is the trust.
function M.fingerprint(hex)
  if type(hex) ~= "string" then check.argerror("fingerprint", "#1", "hex string expected, got " .. type(hex)) end
  local digest = hex:gsub("[:%s]", ""):lower()
  if digest:find("[^0-9a-f]") then check.argerror("fingerprint", "#1", "not a hex digest: " .. hex) end
  if #digest == 32 or #digest == 40 then
    check.argerror("fingerprint", "#1", "MD5 and SHA-1 are insecure and not supported, use SHA-256")
  end
  if #digest ~= 64 then
    check.argerror("fingerprint", "#1", "SHA-256 digest of 64 hex digits expected, got " .. #digest)
  end
  return setmetatable({ digest = digest }, fp_mt)
end

function M.is_fingerprint(v) return getmetatable(v) == fp_mt end

-- ---- settings ----

-- Whether v is a valid ssl= value: nil, a boolean, a context or a fingerprint.
function M.check(v)
  return v == nil or type(v) == "boolean" or is_context(v) or M.is_fingerprint(v),
    "true, false, lurl.ssl_context or lurl.fingerprint expected"
end

-- settings(ssl, server_hostname) -> { context, fingerprint, server_hostname,
-- tag }. The tag joins the pool key: connections made under different
-- settings (verified or not, another context, a pin, another SNI name) are
-- never shared.
local context_ids = setmetatable({}, { __mode = "k" })
local next_id = 0

local function context_tag(ctx)
  local id = context_ids[ctx]
  if not id then
    next_id = next_id + 1
    id = next_id
    context_ids[ctx] = id
  end
  return "|ctx" .. id
end

-- h2: the connection offers h2 and http/1.1 by ALPN, unless its context
-- was made with an alpn option (then it offers that list).
function M.settings(ssl, server_hostname, h2)
  local s
  if ssl == nil or ssl == true then
    s = { context = default_context(), tag = "" }
  elseif ssl == false then
    s = { context = unverified_context(), tag = "|unverified" }
  elseif M.is_fingerprint(ssl) then
    s = { context = unverified_context(), fingerprint = ssl.digest, tag = "|sha256:" .. ssl.digest }
  else
    s = { context = ssl, tag = context_tag(ssl) }
  end
  -- connections that offer h2 and those that do not are pooled apart; the
  -- default (h2 offered) keeps the plain key
  if h2 then s.alpn = H2_ALPN else s.tag = s.tag .. "|h1" end
  if server_hostname then
    s.server_hostname = server_hostname
    s.tag = s.tag .. "|sni:" .. server_hostname
  end
  return s
end

-- ---- the handshake ----

local function failure(kind, host, port, msg, fields, ctx)
  fields.host, fields.port = host, port
  return errors.annotate(errors.new(kind, ("cannot connect to %s:%s: %s"):format(host, tostring(port), msg), fields),
    ctx or {})
end

local function handshake_error(host, port, msg, ename, code, ctx)
  if ename == "ECERT" then
    return failure("ClientConnectorCertificateError", host, port, msg,
      { verify_code = code, errno = ename }, ctx)
  end
  return failure("ClientConnectorSSLError", host, port, "TLS handshake failed: " .. tostring(msg),
    { errno = ename }, ctx)
end

-- Whether stream already runs TLS (the connection to an https:// proxy,
-- whose CONNECT tunnel leads to the origin) or is not a socket of lurl.core:
-- the origin's TLS then runs inside it (lurl.tls_over).
local function runs_over(stream)
  local mt = getmetatable(stream)
  return not (mt and mt.__name == "lurl.stream") or stream:tls_info() ~= nil
end

-- Start TLS on stream, fn to get the outcome: the stream that carries it
-- (stream itself, or the one inside it), or nil, err, ename.
local function start(stream, s, name, session_key, fn)
  if runs_over(stream) then return tls_over.start(stream, s.context, name, session_key, fn, s.alpn) end
  local ok, e, en = stream:tls_start(s.context, name, session_key, fn, s.alpn)
  if not ok then return nil, e, en end
  return stream
end

-- handshake(stream, settings, host, port, deadline, ctx) -> info, stream:
-- what tls_info() tells and the stream to use from then on, which is
-- `stream` itself, or a new one carrying TLS inside it when `stream`
-- already runs TLS or is not a socket of lurl.core (see runs_over); or nil
-- and a typed error (an inner stream is closed then, and `stream` with it).
-- Runs under the sock_connect limit, as part of establishing the connection.
function M.handshake(stream, s, host, port, deadline, ctx)
  local name = s.server_hostname or host
  local task, seq = sched.prepare()
  local tls_stream, e, en = start(stream, s, name, name .. ":" .. port, function(...)
    sched.wake(task, seq, ...)
  end)
  if not tls_stream then return nil, handshake_error(host, port, e, en, nil, ctx) end
  local done, msg, ename, code = deadline:park(task, "sock_connect", ctx, function() tls_stream:close() end)
  local info, err
  if not done then
    err = type(msg) == "table" and msg or handshake_error(host, port, msg, ename, code, ctx)
  else
    info = tls_stream:tls_info()
    local got = info.peer and info.peer.fingerprint
    if s.fingerprint and got ~= s.fingerprint then
      err = failure("ServerFingerprintMismatch", host, port,
        ("certificate fingerprint mismatch: expected sha256 %s, got %s"):format(s.fingerprint, tostring(got)),
        { expected = s.fingerprint, got = got }, ctx)
    end
  end
  if not err then return info, tls_stream end
  if tls_stream ~= stream then tls_stream:close() end
  return nil, err
end

return M
