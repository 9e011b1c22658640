-- stream:send_file (runtime/l_sendfile.c): a file's bytes from disk onto a
-- plain socket, and what it says when the file or the socket fails.
local core = require "lurl.core"
local sched = require "lurl.sched"
local support = require "spec.support"

-- A connected client stream to a raw server, and the server's side of it.
local function connect(raw)
  local connected
  local stream = assert(core.tcp.connect("127.0.0.1", raw.port, function(ok) connected = ok end))
  assert.is_truthy(support.eventually(function() return connected and raw.peers[1] end))
  return stream, raw.peers[1]
end

-- send_file's outcome, waited for.
local function send(stream, path, offset, length)
  local task, seq = sched.prepare()
  assert(stream:send_file(path, offset, length, function(...) sched.wake(task, seq, ...) end))
  return sched.park(task, 10)
end

describe("stream:send_file", function()
  local raw, stream, peer, path, data

  setup(function()
    data = support.random_bytes(3 * 1024 * 1024 + 123) -- pieces of 256 KiB and a short one
    path = os.tmpname()
    support.write_file(path, data)
  end)
  teardown(function() os.remove(path) end)

  before_each(function()
    raw = support.raw_server()
    stream, peer = connect(raw)
  end)

  after_each(function()
    if not stream:closed() then stream:close() end
    raw.close()
  end)

  it("sends the bytes from offset, length of them, in order", function()
    local ok, sent = send(stream, path, 0, #data)
    assert.is_true(ok)
    assert.are.equal(#data, sent)
    assert.is_true(support.eventually(function() return #peer.data == #data end))
    assert.is_true(peer.data == data)
    local n = #peer.data
    ok, sent = send(stream, path, 1000, 300000)
    assert.are.same({ true, 300000 }, { ok, sent })
    assert.is_true(support.eventually(function() return #peer.data == n + 300000 end))
    assert.is_true(peer.data:sub(n + 1) == data:sub(1001, 301000))
  end)

  it("fails with ESHORT, from the file, when it ends before the length", function()
    local ok, msg, ename, where = send(stream, path, #data - 10, 20)
    assert.is_nil(ok)
    assert.are.same({ "ESHORT", "read" }, { ename, where })
    assert.matches("^ESHORT: ", msg)
  end)

  it("fails with the file's error when it does not open", function()
    local ok, msg, ename, where = send(stream, path .. ".missing", 0, 10)
    assert.is_nil(ok)
    assert.are.same({ "ENOENT", "open" }, { ename, where })
    assert.matches("^ENOENT: ", msg)
  end)

  it("fails without a where when the socket closes under it", function()
    local task, seq = sched.prepare()
    assert(stream:send_file(path, 0, #data, function(...) sched.wake(task, seq, ...) end))
    stream:close()
    local ok, _, ename, where = sched.park(task, 10)
    assert.is_nil(ok)
    assert.are.equal("ECANCELED", ename)
    assert.is_nil(where)
  end)

  it("refuses bad arguments", function()
    assert.has_error(function() stream:send_file(path, -1, 10, function() end) end)
    assert.has_error(function() stream:send_file(path, 0, 0, function() end) end)
    assert.has_error(function() stream:send_file(path, 0, 10) end)
  end)
end)
