-- Seeds for a fuzz target from the project's test vectors, in the target's
-- input format (fuzz/run.sh runs this with luajit before each run):
--   luajit fuzz/seeds.lua TARGET OUTDIR FILE...
-- Files of a kind the target has no use for are skipped. The readers are
-- loose on purpose: a seed only has to be close to real traffic.
local cjson = require "cjson"

local target, outdir = arg[1], arg[2]
local written = 0

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function seed(bytes)
  written = written + 1
  local f = assert(io.open(("%s/vector-%05d"):format(outdir, written), "wb"))
  f:write(bytes)
  f:close()
end

-- ---- HTTP responses ----

-- curl's tests/data/testNNN: the <data> of <reply>, after runtests.pl's
-- variables, %hex[...]hex% and %repeat[N x s]%, and its crlf attribute.
local CURL_VARS = { CR = "\r", HOSTIP = "127.0.0.1", HTTPPORT = "8080", VERSION = "8", TESTNUMBER = "1" }

local function unhex(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end

local function curl_reply(text)
  local reply = text:match("<reply>(.-)</reply>") or ""
  local attrs, data = reply:match("<data(%s[^>]*)>\n?(.-)</data>")
  if not data then attrs, data = "", reply:match("<data>\n?(.-)</data>") end
  if not data then return nil end
  data = data:gsub("%%hex%[(.-)%]hex%%", unhex)
    :gsub("%%repeat%[(%d+) x (.-)%]%%", function(n, s) return s:rep(tonumber(n)) end)
    :gsub("%%(%u[%u%d]*)", function(v) return CURL_VARS[v] end)
  local head, body = data:match("^(.-\n)(\n.*)$")
  if attrs:find('crlf="headers"', 1, true) and head then
    data = head:gsub("\r?\n", "\r\n") .. body:gsub("^\n", "\r\n")
  elseif attrs:find('crlf="yes"', 1, true) then
    data = data:gsub("\r?\n", "\r\n")
  end
  if attrs:find('nonewline="yes"', 1, true) then data = data:gsub("\r?\n$", "") end
  return data
end

-- llhttp's test/response/*.md: each ```http block, as test/md-test.ts
-- reads it (a trailing backslash joins lines, newlines become CRLF, then
-- \r \n \t \f stand for themselves).
local function llhttp_blocks(text)
  local out = {}
  for block in text:gmatch("```http\n(.-)\n```") do
    block = block:gsub("\\\n", ""):gsub("\n", "\r\n")
    out[#out + 1] = block:gsub("\\r", "\r"):gsub("\\n", "\n"):gsub("\\t", "\t"):gsub("\\f", "\f")
  end
  return out
end

local function responses(path)
  local text = read(path)
  if path:match("/test%d+$") then return { curl_reply(text) } end
  if path:match("%.md$") then return llhttp_blocks(text) end
  return {}
end

-- h1_response: no flags, split seed 37 (pieces of up to 37 bytes, so the
-- one-read/pieces comparison runs), no tight limit.
local function h1_seeds(path)
  for _, r in ipairs(responses(path)) do seed("\0\37\0" .. r) end
end

-- decompress: the bodies of responses with a Content-Encoding the chain
-- knows, with a 1 MiB limit and no ratio guard.
local CHAIN_INDEX = { gzip = 0, deflate = 1, br = 2, zstd = 3 }

local function decompress_seeds(path)
  for _, r in ipairs(responses(path)) do
    local head, body = r:match("^(.-\r?\n)\r?\n(.*)$")
    local coding = head and head:lower():match("\ncontent%-encoding:%s*([%w-]+)")
    local chain = CHAIN_INDEX[coding]
    if chain then seed(string.char(chain, 2, 37, 0) .. body) end
  end
end

-- ---- cookies ----

-- http-state and wpt NAME-test files: Set-Cookie lines; date lists (JSON,
-- bsd-examples.json after a // licence header) as Expires attributes.
local function cookie_seeds(path)
  if path:match("%-test$") then
    local values = {}
    for v in read(path):gmatch("[Ss]et%-[Cc]ookie:%s?([^\r\n]*)") do values[#values + 1] = v end
    if #values > 0 then seed("\0\0" .. table.concat(values, "\n")) end
  elseif path:match("%.json$") and path:find("date", 1, true) then
    local ok, list = pcall(cjson.decode, (read(path):gsub("^%s*//[^\n]*", "")))
    for _, case in ipairs(ok and list or {}) do
      if type(case) == "table" and type(case.test) == "string" then seed("\0\0a=b; Expires=" .. case.test) end
    end
  end
end

-- ---- URLs ----

-- WPT urltestdata.json ({ input, base } objects) and the RFC 3986 5.4
-- examples ({ base, group = { { ref, expected } } }) as "base\nref".
local function url_seeds(path)
  if not path:match("%.json$") then return end
  local ok, doc = pcall(cjson.decode, read(path))
  if not ok or type(doc) ~= "table" then return end
  for _, case in ipairs(doc) do
    if type(case) == "table" and type(case.input) == "string" then
      seed(type(case.base) == "string" and case.base .. "\n" .. case.input or case.input)
    end
  end
  if type(doc.base) ~= "string" then return end
  for _, group in pairs(doc) do
    for _, pair in ipairs(type(group) == "table" and group or {}) do
      if type(pair) == "table" and type(pair[1]) == "string" then seed(doc.base .. "\n" .. pair[1]) end
    end
  end
end

local SEEDERS = { h1_response = h1_seeds, decompress = decompress_seeds, set_cookie = cookie_seeds, url = url_seeds }
local seeder = assert(SEEDERS[target], "unknown target " .. tostring(target))
for i = 3, #arg do seeder(arg[i]) end
print(written)
