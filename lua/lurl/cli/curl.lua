-- lurl.cli.curl: `lurl --fetch URL` with one URL and no --json, a quick
-- curl: the body to standard output (or -o FILE), -i the head before it,
-- -w a format after it with curl's %{name} variables.
local M = {}

-- curl's cumulative times from the last hop's timings (lurl's are per
-- phase); time_total is the whole request, redirects and retries included.
local function times(t, elapsed)
  local lookup = (t.queue or 0) + (t.dns or 0)
  local connect = lookup + (t.connect or 0) + (t.proxy or 0)
  local app = (t.tls or 0) > 0 and connect + t.tls or 0
  return {
    time_namelookup = lookup, time_connect = connect, time_appconnect = app,
    time_pretransfer = math.max(connect, app), time_starttransfer = t.ttfb or 0, time_total = elapsed,
  }
end

-- The value of each variable -w knows, as text.
local function variables(url, resp, err, got)
  local v = {
    http_code = ("%03d"):format(resp and resp.status or 0),
    url_effective = resp and resp.url or url,
    num_redirects = tostring(resp and resp.history and #resp.history or 0),
    size_download = tostring(got.bytes),
    content_type = resp and resp.headers["content-type"] or "",
    remote_ip = resp and resp.ip or "",
    method = resp and resp.method or "",
    errormsg = err and tostring(err.message or err) or "",
  }
  v.response_code = v.http_code
  for k, x in pairs(times(resp and resp.timings or {}, got.elapsed)) do v[k] = ("%.6f"):format(x) end
  return v
end

local ESCAPES = { n = "\n", r = "\r", t = "\t", ["\\"] = "\\" }

-- expand(format, vars) -> the text, and the unknown names (left empty).
function M.expand(format, vars)
  local unknown = {}
  local s = format:gsub("\\(.)", function(c) return ESCAPES[c] or "\\" .. c end)
  s = s:gsub("%%{([%w_]+)}", function(name)
    if vars[name] then return vars[name] end
    unknown[#unknown + 1] = name
    return ""
  end)
  return s, unknown
end

local function head_text(resp)
  local out = { ("HTTP/%s %d %s\r\n"):format(resp.version, resp.status, resp.reason) }
  for name, value in resp.headers:items() do out[#out + 1] = name .. ": " .. value .. "\r\n" end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- run(client, url, o, io) -> exit status. io = { stdout, stderr }.
function M.run(client, url, o, io_)
  local dest = io_.stdout
  if o.output then
    local f, ferr = io.open(o.output, "wb")
    if not f then
      io_.stderr:write("lurl: ", ferr, "\n")
      return 1
    end
    dest = f
  end
  local out = { body = function(bytes) dest:write(bytes) end }
  if o.include then out.head = function(resp) dest:write(head_text(resp)) end end
  local resp, err, got = client:fetch(url, out)
  if dest ~= io_.stdout then dest:close() end
  if err then io_.stderr:write("lurl: ", tostring(err), "\n") end
  if o.write_out then
    local text, unknown = M.expand(o.write_out, variables(url, resp, err, got))
    for _, name in ipairs(unknown) do io_.stderr:write("lurl: -w: unknown variable '", name, "'\n") end
    io_.stdout:write(text)
  end
  return err and 3 or 0
end

return M
