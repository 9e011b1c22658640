-- lurl.conn's event queue over a raw core.tcp stream whose peer the spec
-- scripts byte by byte, and lurl.dial.tcp against real sockets.
local lurl = require "lurl"
local conn = require "lurl.conn"
local core = require "lurl.core"
local dial = require "lurl.dial"
local timeout = require "lurl.timeout"
local support = require "spec.support"

local function deadline(total) return timeout.start(lurl.timeout { total = total or 5 }) end

describe("lurl.conn", function()
  local raw, c, peer

  before_each(function()
    raw = support.raw_server()
    local connected
    local stream = assert(core.tcp.connect("127.0.0.1", raw.port, function(ok) connected = ok end))
    assert.is_truthy(support.eventually(function() return connected and raw.peers[1] end))
    c = conn.new(stream, "raw", {})
    c:begin(false)
    assert.is_true(c:send("GET / HTTP/1.1\r\nHost: raw\r\n\r\n", deadline()))
    assert.is_truthy(support.eventually(function() return raw.peers[1].data:find("\r\n\r\n", 1, true) end))
    peer = raw.peers[1]
  end)

  after_each(function()
    c:close()
    raw.close()
  end)

  -- Every event until done or error (each as its name and payload).
  local function events()
    local out, d = {}, deadline(2)
    repeat
      local ev = assert(c:read_event(d))
      out[#out + 1] = ev
    until ev[1] == "done" or ev[1] == "error" or ev.done
    return out
  end

  local function names(list)
    local out = {}
    for i, ev in ipairs(list) do out[i] = ev[1] end
    return table.concat(out, " ")
  end

  it("queues head, body and done as the bytes come, and the connection may be reused", function()
    peer.tcp:write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
    local first = assert(c:read_event(deadline(2)))
    assert.are.equal("head", first[1])
    assert.are.equal(200, first[2])
    lurl.sleep(0.05)
    peer.tcp:write("cd")
    local rest = events()
    assert.are.equal("body body done", names(rest))
    assert.are.equal("ab", rest[1][2])
    assert.are.equal("cd", rest[2][2])
    assert.is_true(c:can_reuse(true))
    assert.is_falsy(c:can_reuse(false))
  end)

  it("a response whole in one read is one head event carrying its body", function()
    peer.tcp:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    local list = events()
    assert.are.equal(1, #list)
    assert.is_true(list[1].done)
    assert.are.equal("hi", list[1].body)
    assert.is_true(c:can_reuse(true))
  end)

  it("extra bytes after the response make the connection not reusable", function()
    peer.tcp:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA")
    local list = events()
    assert.is_true(list[#list].done or list[#list][1] == "done")
    assert.is_false(c:can_reuse(true))
  end)

  it("EOF in the middle of a body is an error event", function()
    peer.tcp:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert.are.equal("head", assert(c:read_event(deadline(2)))[1])
    lurl.sleep(0.05)
    peer.tcp:close()
    local list = events()
    local last = list[#list]
    assert.are.equal("error", last[1])
    assert.are.equal("HPE_INVALID_EOF_STATE", last[3])
    assert.is_false(c:can_reuse(true))
  end)

  it("EOF before any byte of a response is an eof event", function()
    peer.tcp:close()
    local ev = assert(c:read_event(deadline(2)))
    assert.are.equal("eof", ev[1])
  end)

  it("a body delimited by the end of the connection ends with done", function()
    peer.tcp:write("HTTP/1.1 200 OK\r\n\r\nto the end")
    lurl.sleep(0.05)
    peer.tcp:close()
    local list = events()
    assert.are.equal("done", list[#list][1])
    assert.is_false(c:can_reuse(true))
  end)

  it("a closed connection wakes a waiting reader with ECLOSED", function()
    lurl.spawn(function()
      lurl.sleep(0.05)
      c:close()
    end)
    local ev = assert(c:read_event(deadline(2)))
    assert.are.same({ "error", "connection closed locally", "ECLOSED" }, ev)
  end)

  it("no event before the deadline is a timeout error", function()
    local ev, err = c:read_event(timeout.start(lurl.timeout { total = 0.1 }))
    assert.is_nil(ev)
    assert.are.equal("TimeoutError", err.kind)
  end)
end)

describe("lurl.dial.tcp", function()
  local V4 = { ip = "127.0.0.1", family = 4 }

  it("to a refused port fails with ECONNREFUSED", function()
    local s, msg, ename = dial.tcp({ V4 }, support.free_port(), deadline(), {})
    assert.is_nil(s)
    assert.are.equal("ECONNREFUSED", ename)
    assert.is_truthy(msg)
  end)

  it("to a live listener returns the stream and the address", function()
    local raw = support.raw_server()
    local s, addr = dial.tcp({ V4 }, raw.port, deadline(), {})
    assert.is_truthy(s)
    assert.are.equal(V4, addr)
    assert.is_truthy(support.eventually(function() return raw.peers[1] end))
    s:close()
    raw.close()
  end)

  it("races over several addresses until one connects", function()
    local raw = support.raw_server()
    -- 127.0.0.2 is loopback too, but nothing listens there
    local refused = { ip = "127.0.0.2", family = 4 }
    local s, addr = dial.tcp({ refused, V4 }, raw.port, deadline(), { delay = 0.25 })
    assert.is_truthy(s)
    assert.are.equal(V4, addr)
    s:close()
    raw.close()
  end)

  it("reports the last failure when every address is refused", function()
    local port = support.free_port()
    local s, _, ename = dial.tcp({ V4, { ip = "127.0.0.2", family = 4 } }, port, deadline(), { delay = 0.25 })
    assert.is_nil(s)
    assert.are.equal("ECONNREFUSED", ename)
  end)

  it("a malformed address is a failed attempt, not a raised error", function()
    local s, _, ename = dial.tcp({ { ip = "not an ip", family = 4 } }, 80, deadline(), {})
    assert.is_nil(s)
    assert.are.equal("EINVAL", ename)
  end)
end)
