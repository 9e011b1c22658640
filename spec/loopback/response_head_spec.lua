-- Hostile response heads: each gets its correct outcome at once (a typed
-- error naming what is wrong, its connection closed; or a response that
-- ends where RFC 9110 says it does), never a wait for the total timeout nor
-- bytes of the next response taken as a body.
local support = require "spec.support"

-- Every outcome here comes at once (the million-long chain, the slowest,
-- in about 0.4 s); BOUND leaves room for a loaded machine and stays far
-- below the session's total of 30 s, which the old parser waited for.
local BOUND = 2

local function head(status_line, fields)
  return status_line .. "\r\n" .. table.concat(fields or {}, "\r\n") .. (fields and #fields > 0 and "\r\n" or "")
    .. "\r\n"
end

-- A million codings: 800 Content-Encoding fields of 1,250 each, every field
-- within the default max_field_size.
local function gzip_chain()
  local field = "Content-Encoding: " .. ("gzip, "):rep(1249) .. "gzip"
  local fields = {}
  for i = 1, 800 do fields[i] = field end
  fields[#fields + 1] = "Content-Length: 0"
  return head("HTTP/1.1 200 OK", fields)
end

local routes = {
  ["/ok"] = function() return "ok" end,
  ["/304-length"] = function() return { raw = head("HTTP/1.1 304 Not Modified", { "Content-Length: 10" }) } end,
  ["/204-chunked"] = function() return { raw = head("HTTP/1.1 204 No Content", { "Transfer-Encoding: chunked" }) } end,
  ["/gzip-chain"] = function() return { raw = gzip_chain() } end,
  ["/six-codings"] = function()
    return { raw = head("HTTP/1.1 200 OK", { "Content-Encoding: gzip, br, zstd, deflate, gzip, gzip",
      "Content-Length: 0" }) }
  end,
}

-- Malformed heads, each refused with ClientResponseError and the words
-- that say why.
local MALFORMED = {
  { "status 0 (two spaces)", "HTTP/1.1  200 OK", {}, "three digits" },
  { "status 2", "HTTP/1.1 2 OK", {}, "three digits" },
  { "status of four digits", "HTTP/1.1 0200 OK", {}, "three digits" },
  { "status below 100", "HTTP/1.1 099 Odd", {}, "below 100" },
  { "bare CR inside a field", "HTTP/1.1 200 OK", { "X-A: a\rb" }, "bare CR" },
  { "CR CR ending a field", "HTTP/1.1 200 OK", { "X-A: a\r" }, "bare CR" },
  { "bare CR ending the status line", "HTTP/1.1 200 OK\rX-A: a", {}, "bare CR" },
  { "NUL inside a field", "HTTP/1.1 200 OK", { "X-A: a\0b" }, "NUL" },
  { "whitespace before the first field", "HTTP/1.1 200 OK", { " X-A: a" }, "whitespace between" },
  { "space inside a header name", "HTTP/1.1 200 OK", { "X Y: a" }, "header name 'X Y'" },
  { "space before the colon", "HTTP/1.1 200 OK", { "X-A : a" }, "header name 'X-A '" },
  { "empty header name", "HTTP/1.1 200 OK", { ": a" }, "empty" },
  { "a coding other than chunked", "HTTP/1.1 200 OK", { "Transfer-Encoding: gzip" }, "'gzip' is not supported" },
  { "a coding after chunked", "HTTP/1.1 200 OK", { "Transfer-Encoding: chunked, gzip" }, "follows chunked" },
  { "a second field after chunked", "HTTP/1.1 200 OK", { "Transfer-Encoding: chunked", "Transfer-Encoding: gzip" },
    "follows chunked" },
  { "an unrequested 101", "HTTP/1.1 101 Switching Protocols", { "Upgrade: websocket", "Connection: Upgrade" },
    "101 Switching Protocols" },
}
for i, case in ipairs(MALFORMED) do
  local fields = {}
  for _, f in ipairs(case[3]) do fields[#fields + 1] = f end
  -- the body that a lenient parser would hand over as the answer (framed
  -- by the connection's end where Transfer-Encoding is set)
  if not table.concat(fields):find("Transfer-Encoding", 1, true) then fields[#fields + 1] = "Content-Length: 5" end
  routes["/bad" .. i] = function() return { raw = head(case[2], fields) .. "wrong" } end
end

describe("hostile response heads", function()
  local server, s

  before_each(function()
    server = support.server(routes)
    s = support.session(server, { timeout = 30 })
  end)

  after_each(function()
    s:close()
    server:close()
  end)

  describe("204 and 304 never have a body (RFC 9110 sections 6.4.1, 15.3.5, 15.4.5)", function()
    for _, case in ipairs { { "304 with Content-Length: 10", "304-length", 304 },
      { "204 with chunked", "204-chunked", 204 } } do
      it(case[1] .. " ends at its head; the next response on the connection parses", function()
        local dt, resp, err = support.timed(s.get, s, case[2])
        assert.is_nil(err)
        assert.is_true(dt < BOUND, ("took %.2fs"):format(dt))
        assert.are.equal(case[3], resp.status)
        assert.are.equal("", resp:text())
        local nxt = assert(s:get("ok"))
        assert.are.equal("ok", nxt:text())
        assert.is_true(nxt.timings.reused, "the connection was not kept")
        assert.are.equal(1, server.connections)
      end)
    end
  end)

  describe("stacked content codings", function()
    it("a million-long gzip chain is refused with the count before any decoder exists", function()
      local dt, resp, err = support.timed(s.get, s, "gzip-chain")
      assert.is_nil(resp)
      assert.are.equal("ClientPayloadError", err.kind)
      assert.matches("1000000 codings, more than the 5", err.message, 1, true)
      assert.is_true(dt < BOUND, ("took %.2fs"):format(dt))
      assert.are.equal(0, s.connector:stats().total)
    end)

    it("six are refused, as curl refuses them", function()
      local _, err = s:get("six-codings")
      assert.are.equal("ClientPayloadError", err.kind)
      assert.matches("6 codings", err.message, 1, true)
    end)
  end)

  describe("malformed heads are ClientResponseError and close the connection", function()
    for i, case in ipairs(MALFORMED) do
      it(case[1], function()
        local dt, resp, err = support.timed(s.get, s, "bad" .. i)
        assert.is_nil(resp)
        assert.are.equal("ClientResponseError", err.kind)
        assert.matches(case[4], err.message, 1, true)
        assert.is_true(dt < BOUND, ("took %.2fs"):format(dt))
        assert.are.equal(0, s.connector:stats().total)
      end)
    end

    it("a status code of 0 never passes raise_for_status", function()
      local _, err = s:get("bad1", { raise_for_status = true })
      assert.are.equal("ClientResponseError", err.kind)
      assert.is_nil(err.status)
    end)
  end)

  it("a head dripping across reads is checked as a whole", function()
    server:route("/drip-cr", function()
      return { raw = head("HTTP/1.1 200 OK", { "X-A: a\rb" }), drip = { size = 3, interval = 0.01 } }
    end)
    local _, err = s:get("drip-cr")
    assert.are.equal("ClientResponseError", err.kind)
    assert.matches("bare CR", err.message, 1, true)
  end)

  it("an interim 100 before a malformed head does not hide it", function()
    server:route("/100-then-bad", function()
      return { raw = head("HTTP/1.1 100 Continue") .. head("HTTP/1.1 20 OK", { "Content-Length: 0" }) }
    end)
    local _, err = s:get("100-then-bad")
    assert.are.equal("ClientResponseError", err.kind)
    assert.matches("three digits", err.message, 1, true)
  end)

  it("a body may hold a bare CR", function()
    server:route("/cr-body", function() return { raw = head("HTTP/1.1 200 OK", { "Content-Length: 3" }) .. "a\rb" } end)
    assert.are.equal("a\rb", assert(s:get("cr-body")):text())
  end)

  it("lines may end in a bare LF (RFC 9112 section 2.2), as aiohttp and curl take them", function()
    server:route("/lf", function() return { raw = "HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nhi" } end)
    local resp = assert(s:get("lf"))
    assert.are.equal("b", resp.headers["x-a"])
    assert.are.equal("hi", resp:text())
  end)

  it("a status line without a reason phrase is fine", function()
    server:route("/no-reason", function() return { raw = "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi" } end)
    local resp = assert(s:get("no-reason"))
    assert.are.equal(200, resp.status)
    assert.are.equal("hi", resp:text())
  end)
end)
