-- lurl.exchange: one request on a pooled connection, against real sockets
-- (lurl.testing.server, or a raw peer where the server's bytes matter).
local lurl = require "lurl"
local exchange = require "lurl.exchange"
local prepare = require "lurl.prepare"
local timeout = require "lurl.timeout"
local support = require "spec.support"

-- The second request on a connection is dropped unanswered, as a server
-- does to a keep-alive connection it timed out just as the request came.
local function drops_reused(req)
  if req.connection_requests > 1 then return { error = "disconnect" } end
  return "ok " .. req.method
end

describe("lurl.exchange", function()
  local server, s

  before_each(function()
    server = support.server {
      ["/ok"] = function() return "ok" end,
      ["/stale"] = drops_reused,
      ["/echo"] = function(req) return req.body end,
      ["/eof"] = function() return { raw = "HTTP/1.1 200 OK\r\n\r\nuntil the end", close = true } end,
    }
    s = support.session(server)
  end)

  after_each(function()
    s:close()
    server:close()
  end)

  describe("perform", function()
    it("runs one exchange made by exchange.new on the session's connector", function()
      local p = assert(prepare.prepared(s, "GET", "ok"))
      local deadline = timeout.start(lurl.timeout { total = 5 })
      local ex = exchange.new(s, p, prepare.NO_OPTIONS, p.headers, p.bytes)
      local resp = assert(exchange.perform(s, ex, deadline))
      assert.are.equal(200, resp.status)
      assert.are.equal("ok", resp:read())
      assert.is_false(ex.reused)
      assert.is_true(ex.t_sent >= ex.t_send and ex.t_send >= ex.t_start)
      local again = exchange.new(s, p, prepare.NO_OPTIONS, p.headers, p.bytes)
      assert.are.equal("ok", assert(exchange.perform(s, again, timeout.start(lurl.timeout { total = 5 }))):read())
      assert.is_true(again.reused)
      assert.are.equal(1, server.connections)
    end)

    it("read_until_eof = false takes a close-delimited body as empty", function()
      local resp = assert(s:get("eof", { read_until_eof = false }))
      assert.are.equal(200, resp.status)
      assert.are.equal("", resp:read())
      assert.are.equal("until the end", assert(s:get("eof")):read())
    end)
  end)

  describe("a stale keep-alive connection", function()
    it("is replaced once for an idempotent request, with request_stale_retry", function()
      local seen, cfg = support.traced("request_stale_retry")
      s:close()
      s = support.session(server, { trace_configs = { cfg } })
      assert.are.equal("ok GET", assert(s:get("stale")):read())
      assert.are.equal("ok GET", assert(s:get("stale")):read())
      assert.are.equal(3, server:count("/stale"))
      assert.are.equal(2, server.connections)
      assert.are.equal(1, #seen)
      assert.are.equal("ServerDisconnectedError", seen[1].exception.kind)
    end)

    it("is not replaced for a POST the server may have acted on", function()
      assert.are.equal("ok POST", assert(s:post("stale", { data = "a" })):read())
      support.failed("ServerDisconnectedError", nil, s:post("stale", { data = "a" }))
      assert.are.equal(2, server:count("/stale"))
      assert.are.equal(1, server.connections)
    end)

    it("is not replaced when the connector's retry_stale is off", function()
      s:close()
      s = support.session(server, { connector = lurl.connector { retry_stale = false } })
      assert(s:get("stale"))
      support.failed("ServerDisconnectedError", nil, s:get("stale"))
    end)
  end)

  describe("Expect: 100-continue", function()
    local raw

    after_each(function()
      if raw then raw.close() end
      raw = nil
    end)

    -- A raw server that answers a request head with `first` as soon as it
    -- has the head, and with `after_body` once the body came too.
    local function expect_server(first, after_body)
      raw = support.raw_server(function(peer)
        local head_end = peer.data:find("\r\n\r\n", 1, true)
        if not head_end then return end
        if not peer.answered then
          peer.answered = true
          peer.tcp:write(first)
        elseif after_body and #peer.data > head_end + 3 and not peer.finished then
          peer.finished = true
          peer.tcp:write(after_body)
        end
      end)
      return ("http://127.0.0.1:%d/up"):format(raw.port)
    end

    it("a final answer first means the body is not sent", function()
      local u = expect_server("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
      local resp = assert(s:post(u, { data = "THE-BODY", expect100 = true }))
      assert.are.equal(417, resp.status)
      assert.is_truthy(support.eventually(function() return raw.peers[1].eof end, 2))
      assert.is_nil(raw.peers[1].data:find("THE-BODY", 1, true))
      assert.is_truthy(raw.peers[1].data:find("Expect: 100-continue", 1, true))
    end)

    it("a 100 sends the body at once", function()
      local u = expect_server("HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
      local secs, resp = support.timed(s.post, s, u, { data = "THE-BODY", expect100 = true })
      assert.are.equal(201, assert(resp).status)
      assert.are.equal("ok", resp:read())
      assert.is_truthy(raw.peers[1].data:find("\r\n\r\nTHE-BODY", 1, true))
      assert.is_true(secs < 0.9, "waited " .. secs .. " s for a 100 that had come")
    end)

    it("no answer: the body goes after a wait", function()
      local secs, resp = support.timed(s.post, s, "echo", { data = "THE-BODY", expect100 = true })
      assert.are.equal("THE-BODY", assert(resp):read())
      assert.is_true(secs >= 0.9 and secs < 5, "took " .. secs .. " s")
    end)
  end)
end)
