-- lurl.cli.args: the fetch command's arguments (`lurl --fetch ...`) read
-- into one options table. A mistake is a usage error for the person at the
-- shell, returned as nil, message (the command prints it and exits 2), not
-- raised: it is not a bug in a script.
local M = {}

M.usage = [[
usage: lurl --fetch [options] [URL...]
Fetch every URL (arguments, --input FILE, or standard input when it is not a
terminal; one a line, blank lines and # comments skipped) and write one JSON
line per URL. One URL given as an argument, without --json, is fetched like
curl: the body to standard output (or -o FILE), -i the head, -w a format.
  -a, --input FILE       read URLs from FILE ("-": standard input)
  -o, --output FILE      write the JSON lines (one URL: the body) to FILE
      --json             JSON lines for a single URL too
  -c, --concurrency N    requests at once (default 100)
  -m, --method M         request method (default GET; HEAD reads no body)
  -t, --timeout T        seconds for the whole request, or fields:
                         connect=2,sock_connect=2,sock_read=5,total=10,pool=1
                         (default sock_connect=10,total=30; 0 = no limit)
  -H, --header 'K: V'    add a request header (repeatable)
      --no-follow        do not follow redirects
      --max-redirects N  follow at most N redirects (default 10)
  -k, --insecure         do not verify TLS certificates (unsafe)
      --proxy URL        http, https, socks4(a), socks5(h) proxy
      --trust-env        proxies and .netrc from the environment
      --retry N          retry a failed request up to N times (lurl.retry)
      --script FILE      a Lua file returning { middlewares = {...},
                         on_result = function(line) ... end }
      --shard I/N        only URLs whose FNV-1a hash modulo N is I (0 <= I < N)
      --resume FILE      skip URLs already in the JSON lines of FILE
                         (-o FILE with the same name appends to it)
  -q, --quiet            no progress and no summary on standard error
      --interval S       seconds between progress reports (default 0.25 on a
                         terminal, 10 otherwise)
  -i, --include          one URL: print the response head before the body
  -w, --write-out FMT    one URL: print FMT afterwards (%{http_code}, %{time_total}...)
  -h, --help             print this help
Exit status: 0 every URL answered (any HTTP status), 3 some got no answer
(refused, timed out, DNS, TLS...), 2 usage error, 1 other failure, 130 Ctrl-C.
]]

-- The timeout fields `-t a=1,b=2` may name: lurl.timeout's.
local TIMEOUT_FIELDS = { total = true, connect = true, sock_connect = true, sock_read = true, pool = true }

local function number(s, what, min)
  local n = tonumber(s)
  if not n or n ~= n or n < min then return nil, ("%s: a number >= %d expected, got '%s'"):format(what, min, s) end
  return n
end

local function integer(s, what, min)
  local n, err = number(s, what, min)
  if n and n % 1 ~= 0 then return nil, ("%s: an integer expected, got '%s'"):format(what, s) end
  return n, err
end

-- "5" (total) or "connect=2,sock_read=5,total=10": the lurl.timeout fields.
function M.timeout(s)
  local n = tonumber(s)
  if n then
    if n < 0 or n ~= n then return nil, "-t: seconds >= 0 expected, got '" .. s .. "'" end
    return { total = n }
  end
  local t = {}
  for item in (s .. ","):gmatch("([^,]*),") do
    local k, v = item:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if not k or not TIMEOUT_FIELDS[k] then
      return nil, "-t: '" .. item .. "' is not one of total, connect, sock_connect, sock_read, pool = seconds"
    end
    local secs, err = number(v, "-t " .. k, 0)
    if not secs then return nil, err end
    t[k] = secs
  end
  return t
end

-- "i/n" with 0 <= i < n.
function M.shard(s)
  local i, n = s:match("^(%d+)/(%d+)$")
  i, n = tonumber(i), tonumber(n)
  if not i or n < 1 or i >= n then return nil, "--shard: I/N with 0 <= I < N expected, got '" .. s .. "'" end
  return { index = i, count = n }
end

local function header(s)
  local name, value = s:match("^([^:%s]+)%s*:%s*(.-)%s*$")
  if not name then return nil, "-H: 'Name: value' expected, got '" .. s .. "'" end
  return { name, value }
end

-- Options that take a value: the field it sets and how the text is read.
local function store(field, read)
  return function(o, v)
    local x, err = read(v)
    if x == nil then return err end
    o[field] = x
  end
end
local function text(v) return v end
local function append(field, read)
  return function(o, v)
    local x, err = read(v)
    if x == nil then return err end
    o[field][#o[field] + 1] = x
  end
end

local VALUED = {
  ["--input"] = store("input", text),
  ["--output"] = store("output", text),
  ["--concurrency"] = store("concurrency", function(v) return integer(v, "-c", 1) end),
  ["--method"] = store("method", function(v)
    if not v:match("^[%w!#$%%&'*+.^_`|~-]+$") then return nil, "-m: a method token expected, got '" .. v .. "'" end
    return v:upper()
  end),
  ["--timeout"] = store("timeout", M.timeout),
  ["--header"] = append("headers", header),
  ["--max-redirects"] = store("max_redirects", function(v) return integer(v, "--max-redirects", 0) end),
  ["--proxy"] = store("proxy", text),
  ["--retry"] = store("retry", function(v) return integer(v, "--retry", 0) end),
  ["--script"] = store("script", text),
  ["--shard"] = store("shard", M.shard),
  ["--resume"] = store("resume", text),
  ["--interval"] = store("interval", function(v) return number(v, "--interval", 0) end),
  ["--write-out"] = store("write_out", text),
}

local FLAGS = {
  ["--json"] = "json", ["--no-follow"] = "no_follow", ["--insecure"] = "insecure",
  ["--trust-env"] = "trust_env", ["--quiet"] = "quiet", ["--include"] = "include", ["--help"] = "help",
}

local SHORT = {
  a = "--input", o = "--output", c = "--concurrency", m = "--method", t = "--timeout", H = "--header",
  k = "--insecure", q = "--quiet", i = "--include", w = "--write-out", h = "--help",
}

local function defaults()
  return {
    urls = {}, headers = {}, concurrency = 100, method = "GET",
    timeout = { sock_connect = 10, total = 30 }, max_redirects = 10, retry = 0,
  }
end

-- One option at argv[i] (its value at i + 1 unless given as --name=value);
-- returns the next index, or nil and the message.
local function option(o, argv, i)
  local a = argv[i]
  local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
  name = name or a
  if not name:match("^%-%-") then name = SHORT[name:sub(2)] or name end
  if FLAGS[name] and not inline then
    o[FLAGS[name]] = true
    return i + 1
  end
  local set = VALUED[name]
  if not set then return nil, "unknown option '" .. a .. "'" end
  local v = inline or argv[i + 1]
  if v == nil then return nil, a .. " needs a value" end
  local err = set(o, v)
  if err then return nil, err end
  return inline and i + 1 or i + 2
end

-- parse(argv) -> options, or nil and a usage message. argv holds what
-- follows --fetch (a list).
function M.parse(argv)
  local o = defaults()
  local i, only_urls = 1, false
  while argv[i] do
    local a = argv[i]
    if only_urls or a == "-" or not a:match("^%-") then
      o.urls[#o.urls + 1] = a
      i = i + 1
    elseif a == "--" then
      only_urls, i = true, i + 1
    else
      local nxt, err = option(o, argv, i)
      if not nxt then return nil, err end
      i = nxt
    end
  end
  return o
end

return M
