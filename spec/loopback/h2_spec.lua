-- HTTP/2 through a session (lurl.h2conn and the connector's h2 path)
-- against a small h2c server written here on core.h2 in server mode: the
-- pieces the nginx interop check cannot make happen on demand (a refused
-- stream, a reset one).
local core = require "lurl.core"
local lurl = require "lurl"

local REFUSED_STREAM, INTERNAL_ERROR = 7, 2

-- An h2c server on 127.0.0.1: answer(sid, n) for the n-th request it sees
-- returns "refuse", "reset", "hold" (no answer) or a body. Counts
-- connections.
local function h2c_server(answer)
  local srv = { connections = 0, requests = 0, links = {} }
  local listener
  listener = assert(core.tcp.listen("127.0.0.1", 0, function()
    local tcp = listener:accept()
    if not tcp then return end
    srv.connections = srv.connections + 1
    local h = core.h2.session { server = true }
    srv.links[#srv.links + 1] = tcp
    local function flush()
      local out = h:pull()
      if out ~= "" and not tcp:closed() then tcp:write(out) end
    end
    tcp:read_start(function(data)
      if not data then return tcp:close() end
      if not h:recv(data) then return tcp:close() end
      for ev in function() return h:event() end do
        if ev[1] == "headers" and ev[6] == "request" then
          srv.requests = srv.requests + 1
          local a = answer(ev[2], srv.requests)
          if a == "refuse" then h:reset(ev[2], REFUSED_STREAM)
          elseif a == "reset" then h:reset(ev[2], INTERNAL_ERROR)
          elseif a ~= "hold" then -- "hold": never answered
            h:response(ev[2], { ":status", "content-length" }, { "200", tostring(#a) }, false)
            h:data(ev[2], a, true)
          end
        elseif ev[1] == "data" then
          h:consume(ev[2], #ev[3])
        end
      end
      flush()
    end)
    flush()
  end))
  listener:ref(false)
  srv.port = select(2, listener:sockname())
  function srv.close()
    for _, t in ipairs(srv.links) do if not t:closed() then t:close() end end
    listener:close()
  end
  return srv
end

describe("http2", function()
  local srv, s

  after_each(function()
    if s then s:close(); s = nil end
    if srv then srv.close(); srv = nil end
  end)

  local function url(path) return ("http://127.0.0.1:%d%s"):format(srv.port, path) end

  it("speaks h2c with prior knowledge and multiplexes on one connection", function()
    srv = h2c_server(function(_, n) return "reply " .. n end)
    s = lurl.session { http2 = "prior_knowledge" }
    local fns = {}
    for i = 1, 20 do fns[i] = function() return assert(s:get(url("/x"))):text() end end
    local bodies = lurl.gather(fns)
    assert.are.equal(20, #bodies)
    assert.are.equal(1, srv.connections)
    local st = s.connector:stats()
    assert.are.same({ 1, 0, 1, 0, 0 }, { st.total, st.in_use, st.idle, st.connecting, st.streams })
    assert.are.equal("2", assert(s:get(url("/v"))).version)
  end)

  it("sends the HEADERS of the requests started in one turn in one write", function()
    srv = h2c_server(function() return "x" end)
    s = lurl.session { http2 = "prior_knowledge" }
    assert(s:get(url("/first"))):read()
    local _, list = next(s.connector.h2)
    local c = list[1]
    local tcp, writes = c.tcp, 0
    c.tcp = setmetatable({}, { __index = function(_, k)
      local v = tcp[k]
      if type(v) ~= "function" then return v end
      return function(_, ...)
        if k == "write" then writes = writes + 1 end
        return v(tcp, ...)
      end
    end })
    local fns = {}
    for i = 1, 50 do fns[i] = function() return assert(s:get(url("/x"))):text() end end
    assert.are.equal(50, #lurl.gather(fns))
    -- one write for the 50 HEADERS frames, and a few WINDOW_UPDATEs
    assert.is_true(writes <= 4, writes .. " writes")
  end)

  it("closes a connection left without streams after keepalive_timeout", function()
    srv = h2c_server(function() return "x" end)
    s = lurl.session { http2 = "prior_knowledge", connector = lurl.connector { keepalive_timeout = 0.2 } }
    assert(s:get(url("/a")))
    assert.are.equal(1, s.connector:stats().total)
    lurl.sleep(0.5)
    assert.are.equal(0, s.connector:stats().total)
    assert(s:get(url("/b")))
    assert.are.equal(2, srv.connections)
  end)

  it("times a silent stream out by sock_read while another stream keeps talking", function()
    srv = h2c_server(function(_, n) return n == 1 and "hold" or "quick" end)
    s = lurl.session { http2 = "prior_knowledge", timeout = lurl.timeout { sock_read = 0.3, total = 5 } }
    local slow_err, failed_after
    local t0 = lurl.now()
    local slow = lurl.spawn(function()
      local r, err = s:get(url("/slow"))
      slow_err, failed_after = err, lurl.now() - t0
      return r
    end)
    lurl.sleep(0.05)
    for _ = 1, 24 do -- 1.2 s of other streams' traffic on the connection
      assert(s:get(url("/quick")))
      lurl.sleep(0.05)
    end
    slow:join()
    assert.is_true(slow_err:is("SocketTimeoutError"), tostring(slow_err))
    assert.is_true(failed_after < 0.9, "failed after " .. failed_after)
  end)

  it("sends a refused stream again on a new connection, whatever the method", function()
    srv = h2c_server(function(_, n) return n == 1 and "refuse" or "fine" end)
    s = lurl.session { http2 = "prior_knowledge" }
    local resp = assert(s:post(url("/once"), { data = "payload" }))
    assert.are.equal("fine", resp:text())
    assert.are.equal(2, srv.requests)
    assert.are.equal(2, srv.connections)
  end)

  it("gives a stream reset with another code as a typed error, the connection going on", function()
    srv = h2c_server(function(_, n) return n == 1 and "reset" or "after" end)
    s = lurl.session { http2 = "prior_knowledge" }
    local resp, err = s:post(url("/boom"), { data = "x" })
    assert.is_nil(resp)
    assert.is_true(err:is("ServerDisconnectedError"))
    assert.matches("INTERNAL_ERROR", err.message)
    assert.are.equal("after", assert(s:get(url("/next"))):text())
    assert.are.equal(1, srv.connections)
  end)

  -- RFC 9113 section 6.9: DATA counts against the connection's window as
  -- well as the stream's. Bodies that had all come (END_STREAM) before the
  -- script read them, or that it never read, were not given back to the
  -- connection's window: past its 16 MiB the connection stalled.
  it("gives the connection's window back for bodies read after their stream ended, or never read", function()
    local body = ("w"):rep(200 * 1024) -- within a stream's window: it all comes at once
    local server = lurl.testing.server { http2 = true, routes = { ["/w"] = function() return body end } }
    s = lurl.session { http2 = "prior_knowledge", timeout = { sock_read = 5 } }
    for i = 1, 100 do -- 20 MiB in all
      local resp = assert(s:get(server:url("/w"), { stream = true }))
      lurl.sleep(0.002)
      if i % 2 == 0 then assert.are.equal(#body, #resp:read()) else resp:release() end
    end
    assert.are.equal(1, server.connections)
    server:close()
  end)
end)
