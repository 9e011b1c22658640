-- Response objects: fields, body readers, framing, streaming and limits.
local lurl = require "lurl"
local support = require "spec.support"

-- 1 MiB: more than one read, so a streamed response is still arriving when
-- it is returned (a body that comes whole with its head frees the connection
-- at once)
local BIG = ("0123456789abcdef"):rep(65536)

local routes = {
  ["/plain"] = function()
    return { status = 201, reason = "Made It", body = "hello",
      headers = { { "Content-Type", "text/plain; charset=ISO-8859-1" }, { "X-Multi", "one" }, { "X-Multi", "two" } } }
  end,
  ["/json"] = function() return { headers = { ["Content-Type"] = "application/json" }, body = '{"a":[1,2]}' } end,
  ["/vendor-json"] = function() return { headers = { ["Content-Type"] = "application/vnd.x+json" },
    body = '{"v":1}' } end,
  ["/json-as-text"] = function() return { headers = { ["Content-Type"] = "text/plain" }, body = '{"a":1}' } end,
  ["/empty-json"] = function() return { headers = { ["Content-Type"] = "application/json" }, body = "" } end,
  ["/bad-json"] = function() return { headers = { ["Content-Type"] = "application/json" }, body = "{nope" } end,
  ["/latin1"] = function() return { headers = { ["Content-Type"] = "text/plain; charset=iso-8859-1" },
    body = "caf\233" } end,
  ["/204"] = function() return { status = 204 } end,
  ["/304"] = function() return { status = 304 } end,
  ["/404"] = function() return { status = 404, body = "missing" } end,
  ["/interim"] = function()
    return { raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }
  end,
  ["/chunked"] = function() return { chunked = true, body = "chunky body", trailers = { ["X-Sum"] = "42" } } end,
  ["/until-close"] = function()
    return { raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread me until close", close = true }
  end,
  ["/short"] = function() return { body = "abc", content_length = 10, close = true } end,
  ["/bad-chunks"] = function() return { chunked = true, bad_chunking = true, body = "partial" } end,
  ["/reset"] = function() return { body = BIG, reset_after = 1000 } end,
  ["/cut"] = function() return { body = BIG, close_after = 1000 } end,
  ["/big"] = function() return { body = BIG } end,
  ["/sjis"] = function() return { headers = { ["Content-Type"] = "text/plain; charset=shift_jis" },
    body = "\130\160" } end,
  ["/no-charset"] = function() return { headers = { ["Content-Type"] = "text/plain" }, body = "\233t\233" } end,
  ["/described"] = function()
    return { body = "x", headers = {
      ["Content-Disposition"] = "attachment; filename=\"plain.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt",
      Link = '</page/2>; rel="next", <https://example.test/p/1>; rel="prev first"',
    } }
  end,
  ["/lines"] = function() return { chunked = true, body = "one\ntwo\r\nlast" } end,
  ["/over-high-water"] = function() return { body = BIG .. ("x"):rep(100000) } end,
  -- the test server computes Content-Length from the (empty) HEAD body, so
  -- announce the GET length explicitly
  ["/big-head"] = function() return { body = BIG, content_length = #BIG } end,
  ["/long-header"] = function() return { headers = { ["X-Long"] = ("v"):rep(9000) }, body = "ok" } end,
  ["/long-status"] = function()
    return { raw = "HTTP/1.1 200 " .. ("R"):rep(9000) .. "\r\nContent-Length: 2\r\n\r\nok" }
  end,
}

describe("response", function()
  local server, s

  before_each(function()
    server = support.server(routes)
    s = support.session(server, { timeout = 20 })
  end)

  after_each(function()
    if s then s:close() end
    server:close()
  end)

  describe("fields", function()
    it("status, reason, ok, version, method, url", function()
      local resp = assert(s:get("plain?x=1"))
      assert.are.equal(201, resp.status)
      -- HTTP/2 has no reason phrase on the wire: the standard one stands in
      assert.are.equal(support.http2 and "Created" or "Made It", resp.reason)
      assert.is_true(resp.ok)
      assert.are.equal(support.http2 and "2" or "1.1", resp.version)
      assert.are.equal("GET", resp.method)
      assert.are.equal(server:url("/plain?x=1"), resp.url)
      assert.matches(support.http2 and "201 Created" or "201 Made It", tostring(resp), 1, true)
      local r404 = assert(s:get("404"))
      assert.is_false(r404.ok)
    end)

    it("headers are case-insensitive multi-maps", function()
      local resp = assert(s:get("plain"))
      assert.are.equal("5", resp.headers["content-length"])
      assert.are.equal("5", resp.headers["Content-Length"])
      assert.are.equal("5", resp.headers:get("CONTENT-LENGTH"))
      assert.are.same({ "one", "two" }, resp.headers:get_all("x-multi"))
    end)

    it("raw_headers keep the wire names and order", function()
      if support.h1_only("HTTP/2 sends field names in lower case") then return end
      local resp = assert(s:get("plain"))
      local names = {}
      for _, pair in ipairs(resp.raw_headers) do names[#names + 1] = pair[1] end
      assert.are.same({ "Content-Type", "X-Multi", "X-Multi", "Content-Length" }, names)
      assert.are.equal("one", resp.raw_headers[2][2])
    end)

    it("content_type and charset are parsed and lower-cased", function()
      local resp = assert(s:get("plain"))
      assert.are.equal("text/plain", resp.content_type)
      assert.are.equal("iso-8859-1", resp.charset)
      local j = assert(s:get("json"))
      assert.are.equal("application/json", j.content_type)
      assert.is_nil(j.charset)
    end)

    it("charset is the one text() decodes with, a quoted parameter notwithstanding", function()
      server:route("/quoted", function()
        return { headers = { ["Content-Type"] = 'text/plain; foo="a;charset=x"; charset=ISO-8859-1' },
          body = "caf\233" }
      end)
      local resp = assert(s:get("quoted"))
      assert.are.equal("iso-8859-1", resp.charset)
      assert.are.equal(resp.charset, resp:get_encoding())
      assert.are.equal("caf\195\169", resp:text())
    end)

    it("request_info describes what was sent", function()
      local resp = assert(s:post("plain", { headers = { ["X-Req"] = "1" } }))
      assert.are.equal("POST", resp.request_info.method)
      assert.are.equal(server:url("/plain"), resp.request_info.url)
      assert.are.equal("1", resp.request_info.headers:get("x-req"))
      assert.is_not_nil(resp.request_info.headers:get("host"))
    end)
  end)

  describe("body", function()
    it("read and text", function()
      local resp = assert(s:get("json"))
      assert.are.equal('{"a":[1,2]}', resp:read())
      assert.are.equal('{"a":[1,2]}', resp:text())
      assert.are.equal("{", assert(s:get("json")):read(1))
    end)

    it("text decodes latin-1 to UTF-8", function()
      assert.are.equal("caf\195\169", assert(s:get("latin1")):text())
      -- read as UTF-8 the byte is invalid: an error, or U+FFFD on request
      local text, err = assert(s:get("latin1")):text("utf-8")
      assert.is_nil(text)
      assert.are.equal("ClientPayloadError", err.kind)
      assert.are.equal("caf\239\191\189", assert(s:get("latin1")):text("utf-8", "replace"))
    end)

    it("json decodes application/json and +json", function()
      assert.are.same({ a = { 1, 2 } }, assert(s:get("json")):json())
      assert.are.same({ v = 1 }, assert(s:get("vendor-json")):json())
    end)

    it("json of another content type is ContentTypeError", function()
      local v, err = assert(s:get("json-as-text")):json()
      assert.is_nil(v)
      assert.are.equal("ContentTypeError", err.kind)
      assert.is_true(err:is("ClientResponseError"))
    end)

    it("json with content_type = false skips the check", function()
      assert.are.same({ a = 1 }, assert(s:get("json-as-text")):json { content_type = false })
    end)

    it("json of an empty body is nil without error", function()
      local v, err = assert(s:get("empty-json")):json()
      assert.is_nil(v)
      assert.is_nil(err)
    end)

    it("json of a broken document is an error", function()
      local v, err = assert(s:get("bad-json")):json()
      assert.is_nil(v)
      assert.is_not_nil(err)
    end)
  end)

  describe("content helpers", function()
    it("text converts any charset iconv knows, from Content-Type", function()
      assert.are.equal("\227\129\130", assert(s:get("sjis")):text()) -- あ
      assert.are.equal("shift_jis", assert(s:get("sjis")):get_encoding())
    end)

    it("get_encoding asks the session's fallback_charset_resolver when Content-Type has no charset", function()
      local seen
      s:close()
      s = support.session(server, { fallback_charset_resolver = function(resp, body)
        seen = { resp.url, body }
        return "iso-8859-1"
      end })
      local resp = assert(s:get("no-charset"))
      assert.are.equal("iso-8859-1", resp:get_encoding())
      assert.are.equal("\195\169t\195\169", resp:text())
      assert.same({ server:url("/no-charset"), "\233t\233" }, seen)
    end)

    it("content_disposition reads RFC 6266 with filename* preferred", function()
      local cd = assert(s:get("described")).content_disposition
      assert.are.equal("attachment", cd.type)
      assert.are.equal("\226\130\172 rates.txt", cd.filename)
      assert.is_nil(assert(s:get("plain")).content_disposition)
    end)

    it("links reads RFC 8288 Link fields, resolved against the URL and indexed by rel", function()
      local links = assert(s:get("described")).links
      assert.are.equal(server:url("/page/2"), links.next.url)
      assert.are.equal("https://example.test/p/1", links.prev.url)
      assert.are.equal(links.prev, links.first)
      assert.are.equal(2, #links)
    end)

    it("readline gives the lines of a streamed body, CRLF kept, then the rest and \"\"", function()
      local resp = assert(s:get("lines", { stream = true }))
      assert.are.equal("one\n", resp:readline())
      assert.are.equal("two\r\n", resp:readline())
      assert.are.equal("last", resp:readline())
      assert.are.equal("", resp:readline())
    end)

    it("max_body_size stops an eager read, whether the body came whole or in pieces", function()
      for _, path in ipairs { "plain", "big" } do
        local resp, err = s:get(path, { max_body_size = 3 })
        assert.is_nil(resp)
        assert.are.equal("ClientPayloadError", err.kind)
        assert.matches("max_body_size=3", err.message, 1, true)
      end
      assert.are.equal(#BIG, #assert(s:get("big", { max_body_size = #BIG })):read())
      -- a streamed body is the script's to bound
      local n = 0
      for chunk in assert(s:get("big", { stream = true, max_body_size = 3 })):iter_chunked(65536) do n = n + #chunk end
      assert.are.equal(#BIG, n)
    end)

    it("save streams the body to a file and reports progress; a cut body leaves no file", function()
      local path = os.tmpname()
      local calls, last = 0, nil
      local n = assert(assert(s:get("big", { stream = true })):save(path, { progress = function(done, total)
        calls, last = calls + 1, { done, total }
      end }))
      assert.are.equal(#BIG, n)
      local f = assert(io.open(path, "rb"))
      assert.are.equal(BIG, f:read("*a"))
      f:close()
      assert.is_true(calls >= 1)
      assert.same({ #BIG, #BIG }, last)
      local ok, err = assert(s:get("cut", { stream = true })):save(path)
      assert.is_nil(ok)
      assert.are.equal("ClientPayloadError", err.kind)
      assert.is_nil(io.open(path, "rb"))
    end)
  end)

  describe("framing", function()
    it("read_until_eof = false takes a body delimited by the connection's end as empty (aiohttp)", function()
      if support.h1_only("a body delimited by the connection's end") then return end
      local resp = assert(s:get("until-close", { read_until_eof = false }))
      assert.are.equal("", resp:text())
      assert.are.equal(0, s.connector:stats().idle)
      assert.are.equal("read me until close", assert(s:get("until-close")):text())
      assert.are.equal("hello", assert(s:get("plain", { read_until_eof = false })):text())
      assert.are.equal("chunky body", assert(s:get("chunked", { read_until_eof = false })):text())
    end)

    it("HEAD has no body even with Content-Length", function()
      local resp = assert(s:head("big-head"))
      assert.are.equal(tostring(#BIG), resp.headers["content-length"])
      assert.are.equal("", resp:read())
      -- and the connection stays usable
      assert.are.equal(BIG, assert(s:get("big")):read())
      assert.are.equal(1, server.connections)
    end)

    it("204 and 304 have no body", function()
      assert.are.equal("", assert(s:get("204")):read())
      assert.are.equal(304, assert(s:get("304")).status)
      if not support.http2 then assert.are.equal("ok", assert(s:get("interim")):read()) end
    end)

    it("a 1xx interim response is skipped", function()
      if support.h1_only("an interim response in raw bytes") then return end
      local resp = assert(s:get("interim"))
      assert.are.equal(200, resp.status)
      assert.are.equal("ok", resp:read())
    end)

    it("chunked with trailers", function()
      local resp = assert(s:get("chunked"))
      if not support.http2 then assert.are.equal("chunked", resp.headers["transfer-encoding"]) end
      assert.are.equal("chunky body", resp:read())
      assert.are.equal(1, s.connector:stats().idle)
    end)

    it("a body without length is read until close", function()
      if support.h1_only("a body delimited by the connection's end") then return end
      local resp = assert(s:get("until-close"))
      assert.are.equal("read me until close", resp:read())
      assert.are.equal(0, s.connector:stats().idle)
    end)
  end)

  describe("truncated bodies", function()
    for _, path in ipairs { "short", "bad-chunks", "reset", "cut" } do
      it("are ClientPayloadError, never success: " .. path, function()
        if path == "bad-chunks" and support.h1_only("chunked coding") then return end
        local resp, err = s:get(path)
        assert.is_nil(resp)
        assert.are.equal("ClientPayloadError", err.kind)
        assert.are.equal(0, s.connector:stats().in_use)
        assert.are.equal(0, s.connector:stats().idle)
      end)

      it("streamed, are ClientPayloadError from read(): " .. path, function()
        if path == "bad-chunks" and support.h1_only("chunked coding") then return end
        local resp = assert(s:get(path, { stream = true }))
        local body, err = resp:read()
        assert.is_nil(body)
        assert.are.equal("ClientPayloadError", err.kind)
        assert.are.equal(0, s.connector:stats().in_use)
      end)
    end

    it("streamed, iter_any raises ClientPayloadError", function()
      local resp = assert(s:get("cut", { stream = true }))
      local ok, err = pcall(function() for _ in resp:iter_any() do end end)
      assert.is_false(ok)
      assert.are.equal("ClientPayloadError", err.kind)
    end)
  end)

  describe("streaming", function()
    it("a reader slow enough to pause the socket leaves the pooled connection reading", function()
      -- the body arrives while the reader sleeps: the read that takes the
      -- buffer past 1 MiB pauses reading and also ends the response
      local resp = assert(s:get("over-high-water", { stream = true }))
      lurl.sleep(0.2)
      local n = 0
      for chunk in resp:iter_any() do n = n + #chunk end
      assert.are.equal(#BIG + 100000, n)
      assert.are.equal(1, s.connector:stats().idle)
      local secs, again = support.timed(s.get, s, "plain", { timeout = 5 })
      assert.are.equal("hello", assert(again):text())
      assert.is_true(secs < 4)
      assert.are.equal(1, server.connections)
    end)

    it("iter_chunked(n) gives chunks of at most n bytes and pools the connection", function()
      local resp = assert(s:get("big", { stream = true }))
      assert.are.equal(1, s.connector:stats().in_use)
      local parts, sizes_ok = {}, true
      for chunk in resp:iter_chunked(1000) do
        parts[#parts + 1] = chunk
        if #chunk > 1000 or #chunk == 0 then sizes_ok = false end
      end
      assert.is_true(sizes_ok)
      assert.are.equal(BIG, table.concat(parts))
      local st = s.connector:stats()
      assert.are.equal(0, st.in_use)
      assert.are.equal(1, st.idle)
      assert.is_truthy(s:get("plain"))
      assert.are.equal(1, server.connections)
    end)

    it("iter_any gives the whole body", function()
      local resp = assert(s:get("big", { stream = true }))
      local parts = {}
      for chunk in resp:iter_any() do parts[#parts + 1] = chunk end
      assert.are.equal(BIG, table.concat(parts))
      assert.are.equal(1, s.connector:stats().idle)
    end)

    it("read(n) returns at most n bytes, then '' at the end", function()
      local resp = assert(s:get("big", { stream = true }))
      local parts = {}
      while true do
        local c = assert(resp:read(777))
        if c == "" then break end
        assert.is_true(#c <= 777)
        parts[#parts + 1] = c
      end
      assert.are.equal(BIG, table.concat(parts))
      assert.are.equal(1, s.connector:stats().idle)
    end)

    it("read() after a partial read returns the rest", function()
      local resp = assert(s:get("big", { stream = true }))
      local head = assert(resp:read(10))
      assert.are.equal(BIG, head .. assert(resp:read()))
    end)

    it("a small streamed body that came with its head frees the connection at once", function()
      local resp = assert(s:get("plain", { stream = true }))
      assert.are.equal(0, s.connector:stats().in_use)
      assert.are.equal(1, s.connector:stats().idle)
      local head = assert(resp:read(2))
      assert.are.equal(head .. assert(resp:read()), assert(s:get("plain")):read())
    end)

    it("release() after a partial read closes the connection (over HTTP/2 resets the stream)", function()
      local resp = assert(s:get("big", { stream = true }))
      assert.are.equal(10, #assert(resp:read(10)))
      resp:release()
      local st = s.connector:stats()
      assert.are.equal(0, st.in_use)
      -- over HTTP/2 only the stream goes (RST_STREAM); the connection stays
      assert.are.equal(support.http2 and 1 or 0, st.idle)
      assert.is_truthy(s:get("plain"))
      assert.are.equal(support.http2 and 1 or 2, server.connections)
    end)

    it("release() after a full read keeps the connection", function()
      local resp = assert(s:get("plain", { stream = true }))
      assert.are.equal("hello", resp:read())
      resp:release()
      assert.are.equal(1, s.connector:stats().idle)
    end)

    it("read(n) and iter_chunked reject bad sizes", function()
      local resp = assert(s:get("plain", { stream = true }))
      assert.has_error(function() resp:read(-2) end)
      assert.has_error(function() resp:read(1.5) end)
      assert.has_error(function() resp:iter_chunked(0) end)
      resp:release()
    end)
  end)

  describe("header limits", function()
    it("a header longer than max_field_size is a clear error", function()
      local resp, err = s:get("long-header")
      assert.is_nil(resp)
      assert.is_true(err:is("ClientResponseError"))
      assert.matches("header", tostring(err):lower(), 1, true)
      assert.are.equal(0, s.connector:stats().in_use)
    end)

    it("raising max_field_size lets it pass", function()
      local resp = assert(s:get("long-header", { max_field_size = 10000 }))
      assert.are.equal(9000, #resp.headers["x-long"])
      s:close()
      s = support.session(server, { max_field_size = 10000 })
      assert.are.equal(200, assert(s:get("long-header")).status)
    end)

    it("a status line longer than max_line_size is a clear error", function()
      if support.h1_only("HTTP/2 has no status line") then return end
      local resp, err = s:get("long-status")
      assert.is_nil(resp)
      assert.is_true(err:is("ClientResponseError"))
      assert.are.equal(0, s.connector:stats().in_use)
    end)

    it("raising max_line_size lets it pass", function()
      if support.h1_only("HTTP/2 has no status line") then return end
      s:close()
      s = support.session(server, { max_line_size = 10000 })
      local resp = assert(s:get("long-status"))
      assert.are.equal(9000, #resp.reason)
      assert.are.equal("ok", resp:read())
    end)
  end)
end)
