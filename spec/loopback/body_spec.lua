-- Streamed request bodies (lurl.body through lurl.session): lurl.file sent
-- from disk with Content-Length or chunked, generator functions, a declared
-- Content-Length held to, failures as ClientPayloadError on a connection
-- that is then closed, replay on 307/308 and stale connections (files yes,
-- generators no), the body dropped on 303, framing headers and argument
-- errors, and a large upload.
--
-- Timing: no assertion depends on a duration beyond generous bounds.
local lurl = require "lurl"
local support = require "spec.support"

local MiB = 1024 * 1024

local random_bytes = support.random_bytes

-- Same bytes, without printing megabytes when they differ.
local function assert_bytes(expected, actual, what)
  what = what or "body"
  assert.are.equal(#expected, #actual, what .. " length")
  if expected ~= actual then
    local i = 1
    while expected:byte(i) == actual:byte(i) do i = i + 1 end
    error(("%s differs from the expected bytes at offset %d"):format(what, i - 1), 2)
  end
end

-- A generator giving each string of list in turn, then nil; g.calls counts
-- its calls.
local function generator(list)
  local g = { calls = 0 }
  g.fn = function()
    g.calls = g.calls + 1
    return list[g.calls]
  end
  return g
end

local function ok_resp(resp, err)
  assert(resp, tostring(err))
  assert.are.equal(200, resp.status)
  return resp
end

local function assert_payload_error(resp, err, pattern)
  assert.is_nil(resp)
  assert.are.equal("table", type(err), tostring(err))
  assert.are.equal("ClientPayloadError", err.kind, tostring(err))
  if pattern then assert.matches(pattern, err.message, 1, true) end
end

describe("streamed request bodies", function()
  local srv, s, seen, temps

  -- A temporary file with contents; removed after the case.
  local function temp_file(contents)
    local path = os.tmpname()
    temps[#temps + 1] = path
    local f = assert(io.open(path, "wb"))
    f:write(contents)
    f:close()
    return path
  end

  -- Every request that reached a route, in order.
  local function record(req)
    seen[#seen + 1] = req
    return "got " .. #req.body
  end

  before_each(function()
    seen, temps = {}, {}
    srv = support.server({
      ["/echo"] = record,
      -- the server drops every request after the first on a connection
      ["/once"] = function(req)
        if req.connection_requests > 1 then
          seen[#seen + 1] = req
          return { drop = true }
        end
        return record(req)
      end,
      ["*"] = function(req)
        local status, rest = req.path:match("^/(%d%d%d)(.*)$")
        if status then
          seen[#seen + 1] = req
          return { status = tonumber(status), headers = { Location = rest ~= "" and rest or "/echo" } }
        end
        return { status = 404 }
      end,
    })
    s = support.session(srv)
  end)

  after_each(function()
    if s then s:close() end
    srv:close()
    for _, path in ipairs(temps) do os.remove(path) end
  end)

  -- The server has closed every connection (the client's failure closed
  -- its side; over HTTP/2 it reset the stream, or never opened it) and read
  -- no request beyond `requests`.
  local function assert_nothing_reached(requests)
    if not support.http2 then
      assert.is_truthy(support.eventually(function() return srv:open_connections() == 0 end),
        "the connection was left open")
    end
    assert.are.equal(requests or 0, srv.requests)
    assert.are.equal(requests or 0, #seen)
  end

  -- A body sent without a length: chunked over HTTP/1.1; over HTTP/2, whose
  -- DATA frames delimit it, with neither header (RFC 9113 section 8.2.2).
  local function assert_unsized(req)
    if support.http2 then
      assert.is_nil(req.headers["transfer-encoding"])
    else
      assert.are.equal("chunked", req.headers["transfer-encoding"])
    end
    assert.is_nil(req.headers["content-length"])
  end

  -- Connections the server saw: a body that failed closes its HTTP/1.1
  -- connection, and resets its HTTP/2 stream alone.
  local function after_failure(h1) return support.http2 and 1 or h1 end

  describe("lurl.file", function()
    it("is sent with Content-Length = its size, byte for byte", function()
      local data = random_bytes(3 * MiB + 12345) -- not a whole number of chunks
      local resp = ok_resp(s:post("echo", { data = lurl.file(temp_file(data)) }))
      assert.are.equal("got " .. #data, resp:text())
      local req = seen[1]
      assert.are.equal("POST", req.method)
      assert.are.equal(tostring(#data), req.headers["content-length"])
      assert.is_nil(req.headers["transfer-encoding"])
      assert_bytes(data, req.body)
    end)

    it("is sent with Transfer-Encoding: chunked when chunked = true, the same bytes", function()
      local data = random_bytes(2 * MiB + 1)
      ok_resp(s:put("echo", { data = lurl.file(temp_file(data)), chunked = true }))
      local req = seen[1]
      assert.are.equal("PUT", req.method)
      assert_unsized(req)
      assert.is_nil(req.headers["content-length"])
      assert_bytes(data, req.body)
    end)

    it("of an empty file sends no bytes, with Content-Length: 0 or chunked", function()
      local path = temp_file("")
      ok_resp(s:post("echo", { data = lurl.file(path) }))
      ok_resp(s:post("echo", { data = lurl.file(path), chunked = true }))
      assert.are.equal("0", seen[1].headers["content-length"])
      assert.are.equal("", seen[1].body)
      assert_unsized(seen[2])
      assert.are.equal("", seen[2].body)
    end)

    it("can be sent again: the same lurl.file in several requests", function()
      local data = random_bytes(300 * 1024)
      local body = lurl.file(temp_file(data))
      for i = 1, 3 do
        ok_resp(s:post("echo", { data = body }))
        assert_bytes(data, seen[i].body, "request " .. i)
      end
      assert.are.equal(1, srv.connections)
    end)

    it("bodies go out side by side from several tasks, each byte for byte", function()
      local files = {}
      for i = 1, 4 do
        local data = random_bytes(MiB + i)
        files[i] = { data = data, body = lurl.file(temp_file(data)) }
      end
      local tasks = {}
      for i, f in ipairs(files) do
        tasks[i] = lurl.spawn(function() return s:post("echo?" .. i, { data = f.body }) end)
      end
      for _, t in ipairs(tasks) do ok_resp(t:join(60)) end
      assert.are.equal(4, #seen)
      for _, req in ipairs(seen) do
        local i = tonumber(req.query)
        assert_bytes(files[i].data, req.body, "upload " .. i)
      end
    end)

    it("raises for a missing path, naming it, and for a path that is not a string", function()
      local path = os.tmpname()
      os.remove(path)
      local ok, err = pcall(lurl.file, path)
      assert.is_false(ok)
      assert.matches("cannot open '" .. path .. "'", err, 1, true)
      ok, err = pcall(lurl.file, 42)
      assert.is_false(ok)
      assert.matches("path string expected", err, 1, true)
    end)

    it("deleted before the request fails it with ClientPayloadError (cannot open)", function()
      local path = temp_file(random_bytes(1000))
      local body = lurl.file(path)
      os.remove(path)
      local resp, err = s:post("echo", { data = body, timeout = 10 })
      assert_payload_error(resp, err, "cannot open '" .. path .. "'")
      assert.are.equal("POST", err.method)
      assert.are.equal(srv:url("/echo"), err.url)
      assert_nothing_reached()
    end)

    it("truncated before the request fails it with ClientPayloadError (shrank)", function()
      for _, keep in ipairs { 0, 700 * 1024 } do
        local data = random_bytes(MiB)
        local path = temp_file(data)
        local body = lurl.file(path)
        local f = assert(io.open(path, "wb"))
        f:write(data:sub(1, keep))
        f:close()
        local resp, err = s:post("echo", { data = body, timeout = 10 })
        assert_payload_error(resp, err, "'" .. path .. "' shrank to " .. keep .. " bytes")
        assert.matches("(" .. MiB .. " expected)", err.message, 1, true)
      end
      assert_nothing_reached()
    end)

    it("leaks no descriptor, sent or failed", function()
      local data = random_bytes(600 * 1024)
      local path = temp_file(data)
      local gone = temp_file("x")
      local body, gone_body = lurl.file(path), lurl.file(gone)
      os.remove(gone)
      local before = support.open_fds()
      for _ = 1, 10 do
        ok_resp(s:post("echo", { data = body }))
        ok_resp(s:post("echo", { data = body, chunked = true }))
        assert.is_nil(s:post("echo", { data = gone_body }))
      end
      s:close()
      s = nil
      assert.is_truthy(support.eventually(function() return support.open_fds() <= before end),
        ("%d descriptors before, %d after"):format(before, support.open_fds()))
    end)
  end)

  describe("generators", function()
    it("are sent chunked, every string in order; \"\" does not end the body", function()
      local list = { "first,", "", "second,", random_bytes(400 * 1024), "\0last" }
      local g = generator(list)
      local resp = ok_resp(s:post("echo", { data = g.fn }))
      local want = table.concat(list)
      assert.are.equal("got " .. #want, resp:text())
      local req = seen[1]
      assert_unsized(req)
      assert.is_nil(req.headers["content-length"])
      assert_bytes(want, req.body)
      assert.are.equal(#list + 1, g.calls) -- called until its nil, not after
    end)

    it("may block between chunks: a generator runs in the request's task", function()
      local n = 0
      ok_resp(s:post("echo", { data = function()
        n = n + 1
        if n > 5 then return nil end
        lurl.sleep(0.01)
        return "part" .. n .. ";"
      end }))
      assert.are.equal("part1;part2;part3;part4;part5;", seen[1].body)
    end)

    it("that stall are cut off by the request's total timeout, not when they return", function()
      local n = 0
      local secs, resp, err = support.timed(s.post, s, "echo", { timeout = 0.5, data = function()
        n = n + 1
        if n == 1 then return "a" end
        if n == 2 then lurl.sleep(5) return "b" end
      end })
      assert.is_nil(resp)
      assert.are.equal("TimeoutError", err.kind)
      assert.is_true(secs < 3, ("took %.1f s for a 0.5 s total timeout"):format(secs))
    end)

    it("that give nothing send an empty chunked body", function()
      ok_resp(s:post("echo", { data = function() return nil end }))
      assert_unsized(seen[1])
      assert.are.equal("", seen[1].body)
    end)

    it("are sent with the Content-Length the caller gave, not chunked", function()
      local g = generator { "0123", "456", "789" }
      ok_resp(s:put("echo", { data = g.fn, headers = { ["Content-Length"] = "10" } }))
      local req = seen[1]
      assert.are.equal("10", req.headers["content-length"])
      assert.is_nil(req.headers["transfer-encoding"])
      assert.are.equal("0123456789", req.body)
      ok_resp(s:put("echo", { data = generator({}).fn, headers = { ["Content-Length"] = "0" } }))
      assert.are.equal("0", seen[2].headers["content-length"])
      assert.are.equal("", seen[2].body)
    end)

    it("giving more bytes than the Content-Length fail before those bytes are sent", function()
      -- were the second chunk sent, the server would hold 10 bytes: a whole request
      local g = generator { "12345", "678901234", "never asked for" }
      local resp, err = s:post("echo", { data = g.fn, headers = { ["Content-Length"] = "10" }, timeout = 10 })
      assert_payload_error(resp, err, "more than the 10 bytes Content-Length announced")
      assert.are.equal(2, g.calls)
      assert_nothing_reached()
    end)

    it("giving fewer bytes than the Content-Length fail once they end", function()
      local g = generator { "12", "345" }
      local resp, err = s:post("echo", { data = g.fn, headers = { ["Content-Length"] = "10" }, timeout = 10 })
      assert_payload_error(resp, err, "5 bytes sent, Content-Length said 10")
      assert.are.equal(3, g.calls) -- the generator got to its end
      assert_nothing_reached()
    end)

    it("that raise fail the request with ClientPayloadError naming the error", function()
      local n = 0
      local resp, err = s:post("echo", { data = function()
        n = n + 1
        if n == 2 then error("disk on fire", 0) end
        return "chunk"
      end, timeout = 10 })
      assert_payload_error(resp, err, "the generator raised: disk on fire")
      assert_nothing_reached()
    end)

    it("giving something other than a string fail with ClientPayloadError naming it", function()
      for _, bad in ipairs { 42, {}, true } do
        local gave = false
        local resp, err = s:post("echo", { data = function()
          if gave then return bad end
          gave = true
          return "ok so far"
        end, timeout = 10 })
        assert_payload_error(resp, err, "the generator gave a " .. type(bad) .. ", not a string")
      end
      assert_nothing_reached()
    end)

    -- Each failure leaves the connection it happened on closed: a request
    -- after it needs a new one.
    local failures = {
      { "a generator that raises", function() return { data = function() error("boom") end } end },
      { "a generator that gives a number", function() return { data = function() return 1 end } end },
      { "a generator over its Content-Length", function()
        return { data = generator({ "too long" }).fn, headers = { ["Content-Length"] = "3" } }
      end },
      { "a generator under its Content-Length", function()
        return { data = generator({ "short" }).fn, headers = { ["Content-Length"] = "30" } }
      end },
    }
    for _, c in ipairs(failures) do
      local name, options = c[1], c[2]
      it(name .. " closes the connection instead of reusing it", function()
        local opts = options()
        opts.timeout = 10
        ok_resp(s:get("echo"))
        assert.are.equal(1, srv.connections)
        local resp, err = s:put("echo", opts)
        assert_payload_error(resp, err)
        ok_resp(s:get("echo"))
        assert.are.equal(after_failure(2), srv.connections)
        assert.are.equal(2, #seen) -- the failed request never reached the route
      end)
    end

    it("of a vanished file close the connection too", function()
      local path = temp_file("soon gone")
      local body = lurl.file(path)
      os.remove(path)
      ok_resp(s:get("echo"))
      assert_payload_error(s:put("echo", { data = body, timeout = 10 }))
      ok_resp(s:get("echo"))
      assert.are.equal(after_failure(2), srv.connections)
    end)
  end)

  describe("replay", function()
    for _, status in ipairs { 307, 308 } do
      it("a " .. status .. " redirect sends a file body again, byte for byte", function()
        local data = random_bytes(MiB + 77)
        local resp = ok_resp(s:post(status .. "/echo", { data = lurl.file(temp_file(data)) }))
        assert.are.equal(1, #resp.history)
        assert.are.equal(2, #seen)
        assert.are.equal("/" .. status .. "/echo", seen[1].path)
        assert_bytes(data, seen[1].body, "first hop body")
        local final = seen[2]
        assert.are.equal("/echo", final.path)
        assert.are.equal("POST", final.method)
        assert.are.equal(tostring(#data), final.headers["content-length"])
        assert_bytes(data, final.body, "final body")
      end)

      it("a " .. status .. " redirect fails for a generator body: it cannot be sent again", function()
        local g = generator { "only ", "once" }
        local resp, err = s:post(status .. "/echo", { data = g.fn })
        assert.is_nil(resp)
        assert.are.equal("ClientError", err.kind)
        assert.matches("cannot follow the " .. status .. " redirect", err.message, 1, true)
        assert.matches("cannot be sent again", err.message, 1, true)
        assert.are.equal(status, err.status)
        assert.are.equal(1, #err.history)
        assert.are.equal(1, #seen) -- the target was never asked
        assert.are.equal("only once", seen[1].body)
        assert.are.equal(3, g.calls)
      end)
    end

    it("a 307 keeps chunked = true for the file sent again", function()
      local data = random_bytes(100 * 1024)
      ok_resp(s:put("307/echo", { data = lurl.file(temp_file(data)), chunked = true }))
      assert_unsized(seen[2])
      assert_bytes(data, seen[2].body)
    end)

    local dropped = {
      { 303, "a file", function(path) return lurl.file(path) end },
      { 303, "a generator", function() return generator({ "gen", "erated" }).fn end },
      { 302, "a generator", function() return generator({ "gen", "erated" }).fn end },
    }
    for _, c in ipairs(dropped) do
      local status, what, make = c[1], c[2], c[3]
      it(("a %d drops %s body: the next hop is a GET without one"):format(status, what), function()
        local path = temp_file("file contents")
        local resp = ok_resp(s:post(status .. "/echo", { data = make(path) }))
        assert.are.equal(1, #resp.history)
        assert.are.equal("POST", seen[1].method)
        assert.are_not.equal("", seen[1].body)
        local final = seen[2]
        assert.are.equal("GET", final.method)
        assert.are.equal("", final.body)
        assert.is_nil(final.headers["content-length"])
        assert.is_nil(final.headers["transfer-encoding"])
        assert.is_nil(final.headers["content-type"])
      end)
    end

    describe("on a stale keep-alive connection", function()
      local retries

      before_each(function()
        retries = {}
        s:close()
        local tc = lurl.trace_config { on_request_stale_retry = function(_, _, p) retries[#retries + 1] = p end }
        s = support.session(srv, { trace_configs = { tc } })
      end)

      it("a PUT of a file is sent again on a new connection", function()
        local data = random_bytes(MiB + 5)
        ok_resp(s:put("once", { data = "first" }))
        local resp = ok_resp(s:put("once", { data = lurl.file(temp_file(data)) }))
        assert.are.equal("got " .. #data, resp:text())
        assert.are.equal(2, srv.connections)
        assert.are.equal(1, #retries)
        assert.are.equal("ServerDisconnectedError", retries[1].exception.kind)
        assert.are.equal(3, #seen)
        assert_bytes(data, seen[2].body, "dropped request's body")
        assert.are.equal(2, seen[3].connection)
        assert_bytes(data, seen[3].body, "retried request's body")
      end)

      it("a PUT of a generator is not: ServerDisconnectedError", function()
        ok_resp(s:put("once", { data = "first" }))
        local g = generator { "not ", "twice" }
        local resp, err = s:put("once", { data = g.fn })
        assert.is_nil(resp)
        assert.are.equal("ServerDisconnectedError", err.kind)
        assert.are.equal(0, #retries)
        assert.are.equal(1, srv.connections)
        assert.are.equal(3, g.calls) -- pulled once, to its end
        assert.are.equal("not twice", seen[2].body)
      end)

      it("a POST of a file is not either (POST is not idempotent)", function()
        ok_resp(s:post("once", { data = "first" }))
        local resp, err = s:post("once", { data = lurl.file(temp_file("payload")) })
        assert.is_nil(resp)
        assert.are.equal("ServerDisconnectedError", err.kind)
        assert.are.equal(0, #retries)
        assert.are.equal(1, srv.connections)
      end)
    end)
  end)

  describe("headers and arguments", function()
    it("a file or a generator without a type is application/octet-stream, as aiohttp sends it", function()
      ok_resp(s:post("echo", { data = lurl.file(temp_file("{}")) }))
      ok_resp(s:post("echo", { data = generator({ "{}" }).fn }))
      ok_resp(s:post("echo", { data = "{}" }))
      for i = 1, 3 do assert.are.equal("application/octet-stream", seen[i].headers["content-type"]) end
    end)

    it("the caller's Content-Type is sent as given", function()
      ok_resp(s:post("echo", { data = lurl.file(temp_file("{}")),
        headers = { ["Content-Type"] = "application/json" } }))
      ok_resp(s:post("echo", { data = generator({ "a,b" }).fn, headers = { ["Content-Type"] = "text/csv" } }))
      assert.are.equal("application/json", seen[1].headers["content-type"])
      assert.are.equal("text/csv", seen[2].headers["content-type"])
    end)

    it("a Content-Length that is not a byte count is an argument error", function()
      local path = temp_file("0123456789")
      -- tonumber would take some (0x10, 1e1, +10); on the wire they are not
      -- a Content-Length (RFC 9110 section 8.6)
      for _, bad in ipairs { "abc", "-1", "1.5", "", "ten", "0x10", "0XA", "1e1", "10.0", "+10" } do
        for _, data in ipairs { lurl.file(path), generator({ "0123456789" }).fn } do
          local ok, err = pcall(s.post, s, "echo", { data = data, headers = { ["Content-Length"] = bad } })
          assert.is_false(ok, ("Content-Length %q accepted"):format(bad))
          assert.matches("Content-Length must be a byte count", tostring(err), 1, true)
        end
      end
      assert.are.equal(0, srv.connections)
    end)

    it("chunked = true with a Content-Length header is an argument error", function()
      for _, data in ipairs { lurl.file(temp_file("0123456789")), generator({ "0123456789" }).fn } do
        local ok, err = pcall(s.post, s, "echo", { data = data, chunked = true,
          headers = { ["Content-Length"] = "10" } })
        assert.is_false(ok)
        assert.matches("bad argument 'chunked'", tostring(err), 1, true)
        assert.matches("cannot be combined with a Content-Length header", tostring(err), 1, true)
      end
      assert.are.equal(0, srv.connections)
    end)

    it("a Transfer-Encoding: chunked header chunks the body as asked, never beside a Content-Length", function()
      ok_resp(s:post("echo", { data = "hello", headers = { ["Transfer-Encoding"] = "chunked" } }))
      ok_resp(s:post("echo", { data = generator({ "he", "llo" }).fn,
        headers = { ["transfer-encoding"] = " Chunked " } }))
      for i = 1, 2 do
        assert_unsized(seen[i])
        assert.is_nil(seen[i].headers["content-length"])
        assert.are.equal("hello", seen[i].body)
      end
    end)

    it("a Transfer-Encoding lurl cannot apply, or one beside a Content-Length, is an argument error", function()
      for _, h in ipairs {
        { { ["Transfer-Encoding"] = "gzip" }, "lurl sends only chunked, got gzip" },
        { { ["Transfer-Encoding"] = "gzip, chunked" }, "lurl sends only chunked" },
        { { ["Transfer-Encoding"] = "chunked", ["Content-Length"] = "5" }, "cannot be sent together" },
      } do
        local ok, err = pcall(s.post, s, "echo", { data = "hello", headers = h[1] })
        assert.is_false(ok)
        assert.matches("bad argument 'headers'", tostring(err), 1, true)
        assert.matches(h[2], tostring(err), 1, true)
      end
      assert.are.equal(0, srv.connections)
    end)

    it("a file larger than the caller's Content-Length fails before any of it goes out", function()
      -- were it sent, the server would take its first 10 bytes for a whole request
      local path = temp_file(random_bytes(MiB))
      local resp, err = s:post("echo", { data = lurl.file(path), headers = { ["Content-Length"] = "10" },
        timeout = 10 })
      assert_payload_error(resp, err, "'" .. path .. "' is larger than the 10 bytes Content-Length announced")
      assert_nothing_reached()
    end)

    it("a file smaller than the caller's Content-Length fails once it is sent", function()
      local path = temp_file(("x"):rep(100))
      local resp, err = s:post("echo", { data = lurl.file(path), headers = { ["Content-Length"] = "150" },
        timeout = 10 })
      assert_payload_error(resp, err, "100 bytes sent, Content-Length said 150")
      assert_nothing_reached()
    end)

    it("a file with a matching Content-Length from the caller is sent as usual", function()
      local data = random_bytes(5000)
      ok_resp(s:post("echo", { data = lurl.file(temp_file(data)), headers = { ["Content-Length"] = "5000" } }))
      assert.are.equal("5000", seen[1].headers["content-length"])
      assert_bytes(data, seen[1].body)
    end)
  end)

  -- The raw HTTP/1.1 servers below speak no HTTP/2.
  local describe_h1 = describe
  if support.http2 then describe_h1 = function(name) pending(name .. " (HTTP/1.1 only: a raw HTTP/1.1 server)") end end

  describe_h1("a server that answers while the body is still being sent", function()
    -- A raw server (the test server reads whole requests): it answers 413
    -- as soon as a request head arrives and closes the connection.
    local listener

    before_each(function()
      local core = require "lurl.core"
      listener = assert(core.tcp.listen("127.0.0.1", 0, function()
        local c = listener:accept()
        if not c then return end
        local buf = ""
        c:read_start(function(data)
          if not data or c:closed() then return end
          buf = buf .. data
          if buf:find("\r\n\r\n", 1, true) then
            buf = ""
            -- write gives true when done at once, false when its callback will run
            local done = c:write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
              function() c:close() end)
            if done then c:close() end
          end
        end)
      end))
    end)

    after_each(function() listener:close() end)

    -- The request ends with the server's answer (RFC 9112 section 9.5: a
    -- client sending a body should watch for a response and may stop).
    local function assert_answered(ok, resp, err)
      assert.is_true(ok, "raised: " .. tostring(resp))
      assert(resp, tostring(err))
      assert.are.equal(413, resp.status)
      assert.are.equal("no", resp:text())
    end

    it("gives its answer, and does not raise, to a generator still sending", function()
      local _, port = listener:sockname()
      local n = 0
      assert_answered(pcall(s.post, s, ("http://127.0.0.1:%d/up"):format(port), { timeout = 10, data = function()
        n = n + 1
        if n > 5 then return nil end
        lurl.sleep(0.05) -- the answer and the close arrive meanwhile
        return "chunk" .. n
      end }))
    end)

    it("gives its answer, and does not raise, to a file still sending", function()
      local _, port = listener:sockname()
      local path = temp_file(random_bytes(16 * MiB))
      assert_answered(pcall(s.post, s, ("http://127.0.0.1:%d/up"):format(port),
        { timeout = 10, data = lurl.file(path) }))
    end)
  end)

  describe("compress", function()
    local codec = require("lurl.core").codec
    local function inflate(coding, data)
      local d = codec.decoder(coding)
      return d:feed(data) .. d:finish()
    end

    it("compresses a string at once: Content-Encoding and an exact Content-Length", function()
      local text = ("compress me "):rep(1000)
      ok_resp(s:post("/echo", { data = text, compress = "gzip" }))
      local req = seen[1]
      assert.are.equal("gzip", req.headers["content-encoding"])
      assert.are.equal(tostring(#req.body), req.headers["content-length"])
      assert.is_true(#req.body < #text)
      assert.are.equal(text, inflate("gzip", req.body))
    end)

    it("compresses a file and a generator as they go out, chunked", function()
      local data = random_bytes(3 * MiB)
      ok_resp(s:post("/echo", { data = lurl.file(temp_file(data)), compress = "deflate" }))
      ok_resp(s:post("/echo", { data = generator({ "one ", "two ", "three" }).fn, compress = "gzip" }))
      assert_unsized(seen[1])
      assert.are.equal("deflate", seen[1].headers["content-encoding"])
      assert_bytes(data, inflate("deflate", seen[1].body))
      assert.are.equal("one two three", inflate("gzip", seen[2].body))
    end)

    it("compress = true is deflate, as in aiohttp", function()
      local text = ("deflate me "):rep(100)
      ok_resp(s:post("/echo", { data = text, compress = true }))
      assert.are.equal("deflate", seen[1].headers["content-encoding"])
      assert.are.equal(text, inflate("deflate", seen[1].body))
    end)

    it("takes only gzip and deflate, and not with a Content-Encoding header", function()
      assert.has_error(function() s:post("/echo", { data = "x", compress = "br" }) end)
      local ok, err = pcall(s.post, s, "/echo", { data = "x", compress = "gzip",
        headers = { ["Content-Encoding"] = "gzip" } })
      assert.is_false(ok)
      assert.matches("Content%-Encoding", err)
    end)
  end)

  describe_h1("expect100", function()
    local core = require("lurl.core")

    -- A raw server for one mode: "continue" (100, then the answer once the
    -- body is in), "reject" (417 at once, without reading a body) or
    -- "silent" (nothing until the body is in). Returns its URL, stop().
    local function expecting_server(mode)
      local l, held = nil, {}
      l = assert(core.tcp.listen("127.0.0.1", 0, function()
        local c = l:accept()
        held[#held + 1] = c
        local buf, told = "", false
        c:read_start(function(d)
          if not d then return c:close() end
          buf = buf .. d
          local head_end = buf:find("\r\n\r\n", 1, true)
          if not head_end then return end
          if mode == "reject" then
            return c:write("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
          end
          if mode == "continue" and not told then told = true; c:write("HTTP/1.1 100 Continue\r\n\r\n") end
          local body = buf:sub(head_end + 4)
          if #body >= tonumber(buf:match("[Cc]ontent%-[Ll]ength: (%d+)")) then
            local answer = buf:match("[Ee]xpect: ([^\r]*)") .. " " .. body
            c:write(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"):format(#answer, answer))
            buf, told = "", false
          end
        end)
      end))
      local _, port = l:sockname()
      return ("http://127.0.0.1:%d/"):format(port), function()
        for _, c in ipairs(held) do if not c:closed() then c:close() end end
        l:close()
      end
    end

    it("sends the body after the server's 100", function()
      local u, stop = expecting_server("continue")
      local secs, resp = support.timed(s.post, s, u, { data = "the body", expect100 = true })
      stop()
      assert.are.equal("100-continue the body", assert(resp):text())
      assert.is_true(secs < 0.9, "waited " .. secs) -- did not sit out the 1 s wait
    end)

    it("does not send the body when the final answer comes first, and drops that connection", function()
      local u, stop = expecting_server("reject")
      local resp = assert(s:post(u, { data = lurl.file(temp_file(("x"):rep(100000))), expect100 = true }))
      stop()
      assert.are.equal(417, resp.status)
      assert.are.equal(0, s.connector:stats().idle)
    end)

    it("sends the body anyway after a second without an answer", function()
      local u, stop = expecting_server("silent")
      local secs, resp = support.timed(s.post, s, u, { data = "late body", expect100 = true })
      stop()
      assert.are.equal("100-continue late body", assert(resp):text())
      assert.is_true(secs >= 0.9 and secs < 5, "took " .. secs)
    end)

    it("adds no Expect header to a request without a body", function()
      ok_resp(s:get("/echo", { expect100 = true }))
      assert.is_nil(seen[1].headers["expect"])
    end)
  end)

  describe("large uploads", function()
    it("a 64 MiB file completes and arrives whole", function()
      local block = random_bytes(MiB - 1)
      local path = os.tmpname()
      temps[#temps + 1] = path
      local f = assert(io.open(path, "wb"))
      for i = 1, 64 do f:write(block, string.char(i)) end -- no two MiB alike
      f:close()
      local size = 64 * MiB
      local resp = ok_resp(s:put("echo", { data = lurl.file(path), timeout = { total = 120 } }))
      assert.are.equal("got " .. size, resp:text())
      assert.are.equal(tostring(size), seen[1].headers["content-length"])
      assert.are.equal(size, #seen[1].body)
      local parts = {}
      for i = 1, 64 do parts[i] = block .. string.char(i) end
      assert_bytes(table.concat(parts), seen[1].body)
    end)
  end)
end)
