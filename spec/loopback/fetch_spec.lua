-- The fetch command (lurl --fetch, lua/lurl/cli/) run in-process against a
-- loopback server: its JSON lines, exit statuses, redirects, errors with
-- their phase, -H, --retry, --script, --shard and --resume, input lists and
-- the single-URL (curl-like) mode. spec/fetch_cli_test.sh runs the binary.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local fetch = require "lurl.cli.fetch"
local shard = require "lurl.cli.shard"
local args = require "lurl.cli.args"
local lurl = require "lurl"
local support = require "spec.support"

-- A stand-in for a file: what was written, write by write.
local function sink()
  local s = { writes = {} }
  function s:write(...)
    self.writes[#self.writes + 1] = table.concat({ ... })
    return self
  end
  function s:text() return table.concat(self.writes) end
  return s
end

-- run(argv[, stdin]) -> status, { lines (decoded), out, err }
local function run(argv, stdin)
  local out, err = sink(), sink()
  local status = fetch.run(argv, { stdout = out, stderr = err, stdin = stdin, stdin_tty = stdin == nil,
    stderr_tty = false })
  local lines = {}
  -- JSON lines; in the single-URL mode the body is not JSON and lines stays empty
  for l in out:text():gmatch("([^\n]*)\n") do lines[#lines + 1] = cjson_safe.decode(l) end
  return status, { lines = lines, out = out, err = err:text() }
end

local function by_url(lines)
  local t = {}
  for _, l in ipairs(lines) do t[l.url] = l end
  return t
end

local function tmpfile(text)
  local path = os.tmpname()
  support.write_file(path, text or "")
  return path
end

describe("lurl --fetch", function()
  local srv, refused

  setup(function()
    srv = support.server({
      ["/ok"] = function() return { headers = { ["Content-Type"] = "text/plain" }, body = "hello" } end,
      ["/big"] = function() return { body = ("x"):rep(300000) } end,
      ["/missing"] = function() return { status = 404 } end,
      ["/moved"] = function() return { status = 301, headers = { Location = "/hop" } } end,
      ["/hop"] = function() return { status = 302, headers = { Location = "/ok" } } end,
      ["/slow"] = function() return { delay = 2, body = "late" } end,
      ["/cut"] = function() return { content_length = 100, body = "short", close_after = 5 } end,
      ["/echo"] = function(req)
        return { json = { ua = req.headers["x-test"] or false, policy = req.headers["x-policy"] or false } }
      end,
      ["/flaky"] = lurl.testing.sequence(503, 503, "ok"),
    })
    refused = "http://127.0.0.1:" .. support.free_port() .. "/"
  end)

  teardown(function() srv:close() end)

  it("writes one JSON line per URL, its fields in order, and exits 0 when every URL answered", function()
    local status, r = run({ "-q", srv:url("/ok"), srv:url("/missing"), srv:url("/big") })
    assert.are.equal(0, status)
    assert.are.equal(3, #r.lines)
    local got = by_url(r.lines)
    local ok = got[srv:url("/ok")]
    assert.are.equal(200, ok.status)
    assert.are.equal("OK", ok.reason)
    assert.are.equal(5, ok.bytes)
    assert.are.equal("text/plain", ok.content_type)
    assert.are.equal(srv:url("/ok"), ok.final_url)
    assert.are.equal(cjson.null, ok.error)
    assert.is_number(ok.timings.total)
    assert.is_number(ok.timings.elapsed)
    assert.are.equal(404, got[srv:url("/missing")].status)
    assert.are.equal(300000, got[srv:url("/big")].bytes)
    -- each write is one whole line, and the fields keep their order
    for _, w in ipairs(r.out.writes) do assert.truthy(w:match('^{"url":[^\n]*,"ip":[^\n]*}\n$')) end
    assert.are.equal("", r.err) -- -q: no summary
  end)

  it("records the redirect chain, or the redirect itself with --no-follow", function()
    local _, r = run({ "-q", "--json", srv:url("/moved") })
    local l = r.lines[1]
    assert.are.equal(200, l.status)
    assert.are.equal(srv:url("/ok"), l.final_url)
    assert.are.same({ { url = srv:url("/moved"), status = 301 }, { url = srv:url("/hop"), status = 302 } },
      l.redirects)
    _, r = run({ "-q", "--no-follow", "--json", srv:url("/moved") })
    assert.are.equal(301, r.lines[1].status)
    assert.are.same({}, r.lines[1].redirects)
    _, r = run({ "-q", "--max-redirects", "1", "--json", srv:url("/moved") })
    assert.are.equal("TooManyRedirects", r.lines[1].error.kind)
  end)

  it("tells each failure's kind, message and phase, and exits 3", function()
    local status, r = run({ "-q", "-t", "sock_read=0.3,total=5", refused, srv:url("/slow"), srv:url("/cut"),
      "not a url" })
    assert.are.equal(3, status)
    local got = by_url(r.lines)
    assert.are.same("ClientConnectorError", got[refused].error.kind)
    assert.are.equal("connect", got[refused].error.phase)
    assert.are.equal(cjson.null, got[refused].status)
    assert.are.equal("SocketTimeoutError", got[srv:url("/slow")].error.kind)
    assert.are.equal("head", got[srv:url("/slow")].error.phase)
    assert.truthy(got[srv:url("/slow")].error.message:find("sock_read=0.3s", 1, true))
    -- a body cut short: the status came, and so did the failure
    assert.are.equal(200, got[srv:url("/cut")].status)
    assert.are.equal("ClientPayloadError", got[srv:url("/cut")].error.kind)
    assert.are.equal("body", got[srv:url("/cut")].error.phase)
    assert.are.equal(5, got[srv:url("/cut")].bytes)
    assert.truthy(got["not a url"].error.kind:find("Invalid"))
  end)

  it("prints a summary on standard error, counts by status class and error kind", function()
    local _, r = run({ srv:url("/ok"), srv:url("/missing"), refused })
    assert.truthy(r.err:find("lurl: 3 of 3 URLs in", 1, true), r.err)
    assert.truthy(r.err:find("2xx 1, 4xx 1, failed 1 (ClientConnectorError 1)", 1, true), r.err)
  end)

  it("sends -H headers and the script's middlewares, and calls its on_result hook", function()
    local script = tmpfile [[
      local seen = 0
      return {
        middlewares = { function(req, handler) req.headers["X-Policy"] = "on"; return handler(req) end },
        on_result = function(line) seen = seen + 1; line.seen = seen end,
      }]]
    local status, r = run({ "-q", "--json", "-H", "X-Test: yes", "--script", script, srv:url("/echo") })
    os.remove(script)
    assert.are.equal(0, status)
    assert.are.equal(1, r.lines[1].seen)
    assert.truthy(r.out.writes[1]:find(',"ip":[^,]*,"seen":1}'))
    assert.are.equal(srv:url("/echo"), r.lines[1].url)
  end)

  it("refuses a --script that is not a policy table (exit 2)", function()
    local script = tmpfile "return { middleware = {} }"
    local status, r = run({ "--script", script, srv:url("/ok") })
    os.remove(script)
    assert.are.equal(2, status)
    assert.truthy(r.err:find("unknown field 'middleware'", 1, true))
  end)

  it("retries through lurl.retry with --retry N", function()
    local before = srv:count("/flaky")
    local status, r = run({ "-q", "--json", "--retry", "2", srv:url("/flaky") })
    assert.are.equal(0, status)
    assert.are.equal(200, r.lines[1].status)
    assert.are.equal(3, srv:count("/flaky") - before)
  end)

  it("reads URLs from a file and from standard input, skipping blank lines and comments", function()
    local list = tmpfile(("# a list\n\n  %s  \n#%s\n%s\n"):format(srv:url("/ok"), srv:url("/x"), srv:url("/missing")))
    local _, r = run({ "-q", "-a", list })
    assert.are.same({ [srv:url("/ok")] = true, [srv:url("/missing")] = true },
      (function() local t = {} for u in pairs(by_url(r.lines)) do t[u] = true end return t end)())
    local stdin = assert(io.open(list, "rb"))
    _, r = run({ "-q" }, stdin)
    stdin:close()
    os.remove(list)
    assert.are.equal(2, #r.lines)
  end)

  it("writes the lines to -o FILE, nothing to standard output", function()
    local path = os.tmpname()
    local _, r = run({ "-q", "-o", path, srv:url("/ok"), srv:url("/missing") })
    assert.are.equal("", r.out:text())
    local n = 0
    for l in io.lines(path) do n = n + 1; assert.truthy(cjson.decode(l).status) end
    os.remove(path)
    assert.are.equal(2, n)
  end)

  it("answers usage errors with status 2", function()
    assert.are.equal(2, (run({ "--bogus" })))
    assert.are.equal(2, (run({ "-c", "0", srv:url("/ok") })))
    assert.are.equal(2, (run({ "-t", "read=3", srv:url("/ok") })))
    assert.are.equal(2, (run({ "--shard", "4/4", srv:url("/ok") })))
    assert.are.equal(2, (run({}))) -- no URL and a terminal on standard input
    assert.are.equal(2, (run({ "-a", "/nonexistent/list", "-q" })))
  end)

  describe("shards", function()
    it("hashes with FNV-1a 32-bit", function()
      assert.are.equal(0x811c9dc5, shard.fnv1a32(""))
      assert.are.equal(0xe40c292c, shard.fnv1a32("a"))
      assert.are.equal(0xbf9cf968, shard.fnv1a32("foobar"))
    end)

    it("splits a list into disjoint shards whose union is the list", function()
      local seen, sizes = {}, {}
      for i = 0, 3 do
        local keep = shard.selector(assert(args.shard(i .. "/4")))
        sizes[i] = 0
        for n = 1, 2000 do
          local u = "http://h" .. n .. ".example/"
          if keep(u) then
            assert.is_nil(seen[u])
            seen[u] = i
            sizes[i] = sizes[i] + 1
          end
        end
      end
      local total = 0
      for i = 0, 3 do
        total = total + sizes[i]
        assert.is_true(sizes[i] > 400 and sizes[i] < 600) -- about a quarter each
      end
      assert.are.equal(2000, total)
    end)

    it("fetches only its shard's URLs", function()
      local urls = {}
      for n = 1, 20 do urls[n] = srv:url("/ok?n=" .. n) end
      local union = {}
      for i = 0, 2 do
        local argv = { "-q", "--shard", i .. "/3" }
        for _, u in ipairs(urls) do argv[#argv + 1] = u end
        local _, r = run(argv)
        for _, l in ipairs(r.lines) do
          assert.is_nil(union[l.url])
          union[l.url] = true
        end
      end
      for _, u in ipairs(urls) do assert.is_true(union[u]) end
    end)
  end)

  describe("--resume", function()
    it("skips the URLs the file has, ignores a cut line, and appends to it as -o", function()
      local a, b, c = srv:url("/ok?a"), srv:url("/ok?b"), srv:url("/ok?c")
      local path = tmpfile(cjson.encode({ url = a, status = 200 }) .. "\n" .. '{"url":"' .. b .. '","sta')
      local _, r = run({ "-q", "--resume", path, "-o", path, a, b, c })
      assert.are.equal("", r.out:text())
      local urls = {}
      for l in io.lines(path) do
        local rec = cjson_safe.decode(l)
        if rec then urls[#urls + 1] = rec.url end
      end
      os.remove(path)
      table.sort(urls)
      assert.are.same({ a, b, c }, urls)
    end)

    it("starts from nothing when the file does not exist yet", function()
      local path = os.tmpname()
      os.remove(path)
      local _, r = run({ "-q", "--resume", path, "-o", path, srv:url("/ok"), srv:url("/missing") })
      assert.are.equal("", r.out:text())
      local n = 0
      for _ in io.lines(path) do n = n + 1 end
      os.remove(path)
      assert.are.equal(2, n)
    end)
  end)

  describe("one URL, like curl", function()
    it("writes the body to standard output", function()
      local status, r = run({ srv:url("/ok") })
      assert.are.equal(0, status)
      assert.are.equal("hello", r.out:text())
      assert.are.equal("", r.err)
    end)

    it("prints the head with -i and a -w format afterwards", function()
      local _, r = run({ "-i", "-w", "\\n%{http_code} %{size_download} %{num_redirects} %{url_effective} %{time_total}",
        srv:url("/hop") })
      local text = r.out:text()
      assert.truthy(text:match("^HTTP/1%.1 200 OK\r\n"), text)
      assert.truthy(text:find("Content-Type: text/plain\r\n", 1, true))
      local code, size, redirs, eff, total = text:match("\r\n\r\nhello\n(%d+) (%d+) (%d+) (%S+) ([%d.]+)$")
      assert.are.same({ "200", "5", "1", srv:url("/ok") }, { code, size, redirs, eff })
      assert.is_true(tonumber(total) > 0)
    end)

    it("writes the body to -o FILE, and a failure on standard error with status 3", function()
      local path = os.tmpname()
      local status, r = run({ "-o", path, srv:url("/big") })
      assert.are.equal(0, status)
      assert.are.equal(300000, #support.read_file(path))
      os.remove(path)
      assert.are.equal("", r.out:text())
      status, r = run({ "-w", "%{http_code}", refused })
      assert.are.equal(3, status)
      assert.are.equal("000", r.out:text())
      assert.truthy(r.err:find("ClientConnectorError", 1, true))
    end)

    it("reads no body with -m HEAD", function()
      local _, r = run({ "-q", "--json", "-m", "head", srv:url("/big") })
      assert.are.equal(200, r.lines[1].status)
      assert.are.equal(0, r.lines[1].bytes)
    end)
  end)
end)
