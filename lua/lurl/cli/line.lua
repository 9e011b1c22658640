-- lurl.cli.line: what the fetch command writes for one URL, a JSON object
-- on one line with its fields always in the same order (easy to read, to
-- grep and to diff), and the writer that puts each line out in one write,
-- so that an interrupted run never leaves half a line behind.
local cjson = require "cjson"
local errors = require "lurl.errors"

local M = {}

-- The fields in their order; a field without a value is null.
M.FIELDS = { "url", "final_url", "status", "reason", "redirects", "error", "timings", "bytes", "content_type", "ip" }
local TIMINGS = { "queue", "dns", "connect", "tls", "proxy", "request", "ttfb", "body", "total", "elapsed", "reused" }

-- What a JSON string escapes (RFC 8259 section 7): the quote, the
-- backslash and the control characters.
local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
for b = 0, 127 do
  local c = string.char(b)
  if c:find("%c") and not ESCAPES[c] then ESCAPES[c] = ("\\u%04x"):format(b) end
end

-- A JSON string; unlike cjson's, "/" stays as it is (URLs are most of it).
-- gsub with a table, not a function: no closure per call, which LuaJIT
-- cannot compile (a line took 17 us to encode, 6 without).
local function str(s)
  if not s:find('[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. s:gsub('[%c"\\]', ESCAPES) .. '"'
end

-- The keys as JSON strings, made once each.
local QUOTED = setmetatable({}, { __index = function(t, k)
  local q = str(k)
  t[k] = q
  return q
end })

-- Seconds to the microsecond, without trailing zeros.
local function seconds(x)
  return (("%.6f"):format(x):match("^(.-)%.?0*$"))
end

local encode_value

-- An object of the keys given, in their order; with skip_nil, the keys
-- without a value are left out instead of null.
local function object(t, keys, skip_nil)
  local out = {}
  for _, k in ipairs(keys) do
    if t[k] ~= nil or not skip_nil then out[#out + 1] = QUOTED[k] .. ":" .. encode_value(t[k], k) end
  end
  return "{" .. table.concat(out, ",") .. "}"
end

local function list(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = encode_value(v) end
  return "[" .. table.concat(out, ",") .. "]"
end

function encode_value(v, key)
  local t = type(v)
  if v == nil then return "null" end
  if t == "string" then return str(v) end
  if t == "boolean" then return tostring(v) end
  if t == "number" then return v % 1 == 0 and ("%d"):format(v) or seconds(v) end
  if key == "timings" then return object(v, TIMINGS, true) end
  if key == "error" then return object(v, { "kind", "message", "phase" }) end
  if key == "redirects" then return list(v) end
  if t == "table" and v.url then return object(v, { "url", "status" }) end
  return cjson.encode(v)
end

-- encode(rec) -> the line (no newline): the standard fields in order, then
-- what an on_result hook added, by name.
function M.encode(rec)
  local out, known = {}, {}
  for i, k in ipairs(M.FIELDS) do
    out[i] = QUOTED[k] .. ":" .. encode_value(rec[k], k)
    known[k] = true
  end
  local extra = {}
  for k in pairs(rec) do
    if not known[k] then extra[#extra + 1] = tostring(k) end
  end
  table.sort(extra)
  for _, k in ipairs(extra) do out[#out + 1] = str(k) .. ":" .. cjson.encode(rec[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end

local function redirects(history)
  if not history then return {} end
  local out = {}
  for i, r in ipairs(history) do out[i] = { url = r.url, status = r.status } end
  return out
end

-- The phase of a failure that is not a timeout, from its kind (only
-- timeouts carry err.phase): the most specific kind first.
local PHASE_OF_KIND = {
  { "ClientConnectorDNSError", "dns" }, { "ClientSSLError", "tls" }, { "ClientProxyConnectionError", "proxy" },
  { "ClientHttpProxyError", "proxy" }, { "ClientConnectorError", "connect" }, { "ClientPayloadError", "body" },
}

local function phase_of(err)
  if err.phase then return err.phase end
  for _, kp in ipairs(PHASE_OF_KIND) do
    if errors.is(err, kp[1]) then return kp[2] end
  end
  return nil
end

local function error_of(err)
  if type(err) ~= "table" then return { kind = "Error", message = tostring(err) } end
  return { kind = err.kind or "Error", message = err.message or tostring(err), phase = phase_of(err) }
end

local function timings(resp, elapsed)
  local t = {}
  if resp then
    for k, v in pairs(resp.timings or {}) do t[k] = v end
  end
  t.elapsed = elapsed
  return t
end

-- record(url, resp, err, got) -> the line's fields for one URL: resp (the
-- last response) or err, and got = { elapsed, bytes } measured around it.
-- A response whose body failed half way has both.
function M.record(url, resp, err, got)
  local rec = {
    url = url, timings = timings(resp, got.elapsed), bytes = got.bytes or 0,
    redirects = redirects(resp and resp.history or type(err) == "table" and err.history),
  }
  if resp then
    rec.final_url, rec.status, rec.reason = resp.url, resp.status, resp.reason
    rec.content_type, rec.ip = resp.headers["content-type"], resp.ip
  end
  if err then rec.error = error_of(err) end
  return rec
end

-- writer(file) -> write(line) -> true, or nil and the message: the line
-- and its newline in one write(2) (the file is made unbuffered), so lines
-- from a run stopped at any moment are whole.
function M.writer(file)
  if io.type(file) == "file" then file:setvbuf("no") end
  return function(line)
    local ok, err = file:write(line .. "\n")
    if not ok then return nil, err end
    return true
  end
end

return M
