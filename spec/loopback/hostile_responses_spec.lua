-- Hostile HTTP/1.1 responses: llhttp's response cases and curl's hostile
-- replies (spec/vectors/h1-hostile, sources in spec/vectors/README.md),
-- each replayed byte for byte by a raw peer on loopback to a session
-- request, and the outcome checked against its row in
-- spec/vectors/h1-hostile/expected.lua: a status and body, or an error kind.
-- The rows say what an aiohttp-like client must do, and why wherever that
-- departs from llhttp 9 or from curl.
local lfs = require "lfs"
local lurl = require "lurl"
local support = require "spec.support"

local DIR = "spec/vectors/h1-hostile"
local LLHTTP, CURL = DIR .. "/llhttp-response", DIR .. "/curl-tests"
-- per case; a response that never completes fails with a TimeoutError
local BOUND = 5

local EXPECTED = dofile(DIR .. "/expected.lua")

-- ---- llhttp's cases (test/response/*.md) ----

local function llhttp_files()
  local names = {}
  for f in lfs.dir(LLHTTP) do names[#names + 1] = f:match("^(.*)%.md$") end
  table.sort(names)
  return names
end

-- The bytes of an ```http block, as llhttp's test/md-test.ts makes them:
-- lines joined by newlines, a backslash at the end of a line joins it to
-- the next, every newline becomes CRLF, then \r \n \t \f stand for
-- themselves. The vendored files use no other escape.
local function llhttp_input(lines)
  local text = table.concat(lines, "\n")
  assert(not text:find("\\x", 1, true) and not text:find("\\[0-7]") and not text:find("${", 1, true),
    "an escape that md-test.ts knows and this reader does not")
  text = text:gsub("\\\n", ""):gsub("\n", "\r\n")
  return (text:gsub("\\r", "\r"):gsub("\\n", "\n"):gsub("\\t", "\t"):gsub("\\f", "\f"))
end

-- Every case of a file: { id, bytes, mode (llhttp's test type: "response",
-- "response-lenient-headers", ...), method (HEAD where llhttp is told to
-- skip the body, as for a response to HEAD), verdict (the error llhttp 9
-- reports, or false) }. The id is the file name and the heading above it.
local function llhttp_cases(name)
  local cases, heading, meta, block, lines = {}, nil, nil, nil, nil
  for line in support.read_file(LLHTTP .. "/" .. name .. ".md"):gmatch("([^\n]*)\n") do
    if block then
      if line == "```" then
        if block == "http" then
          cases[#cases + 1] = { id = "llhttp/" .. name .. "/" .. heading, bytes = llhttp_input(lines),
            mode = assert(meta:match('"type":%s*"([^"]+)"'), "case without a type"),
            method = meta:find('"skipBody":%s*true') and "HEAD" or "GET", verdict = false }
        else
          local case = cases[#cases]
          for _, l in ipairs(lines) do
            case.verdict = case.verdict or l:match(" error code=%d+ reason=\"(.*)\"$") or false
          end
        end
        block = nil
      else
        lines[#lines + 1] = line
      end
    elseif line:match("^#+ ") then
      heading = line:match("^#+ (.-)%s*$")
    elseif line:match("^<!%-%- meta=") then
      meta = line
    elseif line == "```http" or line == "```log" then
      block, lines = line:sub(4), {}
    end
  end
  return cases
end

-- ---- curl's tests (tests/data/testNNN) ----

-- The values runtests.pl puts in for the variables of the replies and URLs.
local function variables(testno, port)
  return { TESTNUMBER = testno, HOSTIP = "127.0.0.1", HTTPPORT = port, CR = "\r" }
end

local function unhex(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end

-- runtests.pl's preprocessing of one line: variables, then %hex[...]hex%
-- and %repeat[N x ...]%.
local function prepro(line, vars)
  line = line:gsub("%%(%u[%u%d]*)", function(name)
    -- %TESTNUMBER0002: the variable, then digits
    local base, digits = name:match("^(%u+)(%d*)$")
    local v = vars[base]
    if v == nil then return nil end
    return v .. digits
  end)
  line = line:gsub("%%hex%[(.-)%]hex%%", unhex)
  return (line:gsub("%%repeat%[(%d+) x (.-)%]%%", function(n, s) return unhex(s):rep(tonumber(n)) end))
end

-- crlf="headers": runtests.pl's guess of which lines are header lines
-- (testutil.pm subnewlines); those, and a blank line right after one, get a
-- CRLF for their first newline.
local function header_like(line)
  if line:find("\r", 1, true) then return false end
  local version = line:match("^HTTP/(%S+) [1-5]")
  if version then return version:match("^1.[01]$") ~= nil or version == "2" or version == "3" end
  return line:match("^[%w_-]+: ") ~= nil and not line:match("^curl: %(%d+%) ")
end

local PART_ATTRS = { crlf = true, nocheck = true, nonewline = true }

-- A reply part (<data>, <dataN>, <connect>) as the test server sends it.
local function part_bytes(lines, attrs, vars)
  for name in attrs:gmatch("(%a+)=") do assert(PART_ATTRS[name], "part attribute " .. name) end
  local crlf = attrs:match('crlf="(%a+)"')
  local out, after_header = {}, false
  for _, line in ipairs(lines) do
    assert(not line:match("^%%if "), "a conditional line")
    line = prepro(line, vars)
    if crlf == "yes" then
      line = line:gsub("\r*\n", "\r\n", 1)
    elseif crlf == "headers" then
      if header_like(line) then
        line = line:gsub("\r*\n", "\r\n", 1)
        after_header = true
      else
        if line == "\n" and after_header then line = "\r\n" end
        after_header = false
      end
    else
      assert(crlf == nil, "unknown crlf=" .. tostring(crlf))
    end
    out[#out + 1] = line
  end
  local bytes = table.concat(out)
  if attrs:find('nonewline="yes"', 1, true) then bytes = bytes:gsub("\n$", "") end
  return bytes
end

-- The URLs curl fetches (in order: several on the command line, or a {a,b}
-- glob, go over one connection), whether it sends HEAD, follows redirects
-- and how many, and whether it goes through a CONNECT tunnel.
local function client_of(command, vars)
  local c = { paths = {}, method = "GET", follow = false, tunnel = false }
  local words = {}
  for w in command:gmatch("%S+") do words[#words + 1] = (w:gsub('^"(.*)"$', "%1")) end
  for i, w in ipairs(words) do
    if w == "-I" or w == "--head" then c.method = "HEAD" end
    if w == "-L" or w == "--location" then c.follow = true end
    if w == "-p" or w == "--proxytunnel" then c.tunnel = true end
    if w == "--max-redirs" then c.max_redirects = tonumber(words[i + 1]) end
    local proxy = words[i - 1] == "-x" or words[i - 1] == "--proxy"
    local path = w:match("^%a+://%%HOSTIP:%%HTTPPORT(/.*)$")
    if path and not proxy then
      local head, alts, tail = path:match("^(.-){(.-)}(.*)$")
      if head then
        for alt in alts:gmatch("[^,]+") do c.paths[#c.paths + 1] = prepro(head .. alt .. tail, vars) end
      else
        c.paths[#c.paths + 1] = prepro(path, vars)
      end
    end
  end
  if #c.paths == 0 then c.paths[1] = "/" .. vars.TESTNUMBER end
  return c
end

-- A curl test: { id, parts = { data =, data1 =, connect = ... }, client }.
-- The port is known once the peer listens, so the parts are made for it.
local function curl_case(testno, port)
  local text = support.read_file(CURL .. "/test" .. testno)
  local vars = variables(testno, port)
  local case = { id = "curl/test" .. testno, parts = {} }
  local reply = assert(text:match("<reply>\n(.-)</reply>"), "no <reply>")
  for tag, attrs, body in reply:gmatch("<(%a+%d*)([^>]*)>\n(.-)</%1>\n") do
    if tag:match("^data%d*$") or tag == "connect" then
      local lines = {}
      for l in body:gmatch("[^\n]*\n") do lines[#lines + 1] = l end
      case.parts[tag] = part_bytes(lines, attrs, vars)
    else
      assert(tag == "datacheck" or tag:match("^datacheck%d+$") or (tag == "servercmd" and body == "upgrade\n"),
        "reply part this replay does not know: " .. tag)
    end
  end
  case.client = client_of(assert(text:match("<command[^>]*>\n(.-)\n</command>"), "no <command>"), vars)
  return case
end

-- ---- the replay ----

-- curl's exit codes and the lurl error kind that says the same thing; a row
-- that expects anything else says why.
local CURL_KIND = {
  [8] = "ClientResponseError", -- weird server reply
  [18] = "ClientPayloadError", -- partial file
  [47] = "TooManyRedirects",
  [52] = "ServerDisconnectedError", -- empty reply
  [56] = "ClientPayloadError", -- failure receiving data
  [61] = "ClientPayloadError", -- bad content encoding
  [100] = "ClientResponseError", -- too large
}

local ROW_KEYS = { ok = true, err = true, body = true, body_len = true, headers = true, reason = true,
  reuse = true, why = true, note = true }

-- Nothing in this spec may leave the machine: a Location to another host
-- fails to resolve instead.
local function no_lookups(host) return nil, "no name lookups here: " .. host end

-- sws (curl's test server) picks the part by the number that ends the path:
-- above 10000, <dataN> for the remainder N, else <data>. The tunnel's
-- CONNECT answer is what a proxied test is about; lurl has no proxy, so it
-- answers the plain request.
local function curl_part(case, path)
  if case.client.tunnel then return assert(case.parts.connect, case.id .. ": no <connect>") end
  local n = tonumber(path:match("(%d+)$") or "")
  local key = n and n > 10000 and ("data" .. n % 10000) or "data"
  return assert(case.parts[key], case.id .. ": no <" .. key .. "> for " .. path)
end

local function answer(bytes, close)
  if bytes == "" then return { drop = true } end
  return { raw = bytes, close = close }
end

local function quoted(s, max)
  local q = ("%q"):format(s:sub(1, max)):gsub("\\\n", "\\n")
  return q .. (#s > max and "..." or "")
end

local function described(resp, err, body)
  if not resp then return tostring(err) end
  return ("%d %s, %d-byte body %s"):format(resp.status, resp.reason, #body, quoted(body, 60))
end

-- A fresh peer answering with route (and "/again" with "again") and a
-- fresh session, given to fn; both are closed whatever fn does.
local function with_peer(route, fn)
  local server = support.server({ ["*"] = route, ["/again"] = function() return "again" end })
  local s = lurl.session {
    timeout = lurl.timeout { total = BOUND },
    connector = lurl.connector { resolver = no_lookups },
  }
  local ok, e = pcall(fn, server, s)
  s:close()
  server:close()
  if not ok then error(e, 0) end
end

-- Requests each path in turn (all but the last must succeed) and checks
-- the last outcome against the row.
local function replay(row, server, s, method, paths, opts, context)
  local started = lurl.now()
  local resp, err, body
  for i, path in ipairs(paths) do
    resp, err = s:request(method, server:url(path), opts)
    body = resp and resp:read()
    if i < #paths then assert(resp, ("%s: %s failed: %s"):format(context, path, tostring(err))) end
  end
  local got = context .. "\n  got: " .. described(resp, err, body)
  assert(lurl.now() - started < BOUND + 1, "not within its bound: " .. got)
  if row.err then
    assert.is_nil(resp, got)
    assert.are.equal(row.err, err.kind, got)
  else
    assert(resp, got)
    assert.are.equal(row.ok, resp.status, got)
    if row.body then assert.are.equal(row.body, body, got) end
    if row.body_len then assert.are.equal(row.body_len, #body, got) end
    if row.reason then assert.are.equal(row.reason, resp.reason, got) end
    for name, value in pairs(row.headers or {}) do assert.are.equal(value, resp.headers[name], got) end
  end
  if row.reuse then
    local again = assert(s:get(server:url("/again")))
    assert.are.equal("again", again:read(), got)
    assert.are.equal(1, server.connections, "the connection was not reused: " .. got)
  end
end

local function check_row(row, id)
  assert(row.ok or row.err, id .. ": a row expects a status (ok =) or an error kind (err =)")
  assert(not (row.ok and row.err), id .. ": ok and err")
  assert(row.err or row.body or row.body_len, id .. ": an ok row says what the body is")
  for k in pairs(row) do assert(k == 1 or ROW_KEYS[k], id .. ": unknown column " .. tostring(k)) end
end

local rows, order = {}, {}
for _, row in ipairs(EXPECTED) do
  assert(not rows[row[1]], "two rows for " .. row[1])
  rows[row[1]], order[#order + 1] = row, row[1]
end
local seen = {}

describe("hostile HTTP/1.1 responses", function()
  describe("llhttp's response cases", function()
    for _, file in ipairs(llhttp_files()) do
      for _, case in ipairs(llhttp_cases(file)) do
        seen[case.id] = true
        local row = rows[case.id]
        it(case.id, function()
          assert(row, "no row in expected.lua")
          check_row(row, case.id)
          local lenient = case.mode:find("lenient", 1, true)
          assert(row.why or (not lenient and (row.err ~= nil) == (case.verdict ~= false)),
            case.id .. ": departs from llhttp 9 (" .. (case.verdict or "no error")
            .. (lenient and ", lenient mode" or "") .. ") without saying why")
          local context = ("%s (llhttp 9, %s: %s)\n  sent: %s"):format(case.id, case.mode,
            case.verdict or "no error", quoted(case.bytes, 200))
          with_peer(function() return answer(case.bytes, not row.reuse) end, function(server, s)
            replay(row, server, s, case.method, { "/" }, { allow_redirects = false }, context)
          end)
        end)
      end
    end
  end)

  describe("curl's hostile replies", function()
    for line in support.read_file(CURL .. "/INDEX.tsv"):gmatch("[^\n]+") do
      local testno, code, name = line:match("^test(%d+)\t(%d+)\t(.*)$")
      if testno then
        local id = "curl/test" .. testno
        seen[id] = true
        local row = rows[id]
        it(id, function()
          assert(row, "no row in expected.lua")
          check_row(row, id)
          assert(row.why or row.err == CURL_KIND[tonumber(code)],
            ("%s: departs from curl (exit code %s) without saying why"):format(id, code))
          local case
          -- as sws: the connection closes after a reply that says so, or an empty one
          local function route(req)
            local bytes = curl_part(case, req.path)
            return answer(bytes, bytes == "" or bytes:find("swsclose", 1, true) ~= nil)
          end
          with_peer(route, function(server, s)
            case = curl_case(testno, server.port)
            local c = case.client
            local context = ("%s %s (curl: exit code %s)\n  sent: %s"):format(id, name, code,
              quoted(curl_part(case, c.paths[#c.paths]), 200))
            replay(row, server, s, c.method, c.paths, { allow_redirects = c.follow, max_redirects = c.max_redirects },
              context)
          end)
        end)
      end
    end
  end)

  it("every row of expected.lua is a case", function()
    for _, id in ipairs(order) do assert(seen[id], "a row for no case: " .. id) end
  end)
end)
