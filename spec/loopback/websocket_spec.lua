-- WebSocket client (lurl.ws_handshake, lurl.websocket) against
-- lurl.testing.server's WebSocket routes (lurl.testing.ws) and raw peers:
-- the opening handshake and its failures, messages both ways, compression,
-- limits, the close handshake, heartbeats that find a dead peer, proxies.
local sched = require "lurl.sched"
local support = require "spec.support"
local testing = require "lurl.testing"

local function echo(ws)
  for msg in ws:messages() do
    if msg.type == "text" then ws:send_str(msg.data) else ws:send_bytes(msg.data) end
  end
end

describe("websockets", function()
  local server, s

  before_each(function()
    server = support.server {
      ["/echo"] = function() return { ws = echo } end,
      ["/chat"] = function() return { ws = echo, protocol = "chat" } end,
      ["/plain"] = function() return { ws = echo, compress = false } end,
      ["/hello-close"] = function()
        return { ws = function(ws)
          ws:send_str("hello")
          ws:close { code = 4000, message = "bye" }
        end }
      end,
      ["/big"] = function()
        return { ws = function(ws) ws:send_bytes(("x"):rep(2048)); ws:receive(5) end }
      end,
      ["/silent"] = function()
        return { ws = function(ws)
          -- the peer's traffic stops: nothing read, nothing answered
          ws.stream:read_stop()
          sched.sleep(3600)
        end }
      end,
      ["/no"] = function() return { status = 403, body = "no" } end,
      ["/moved"] = function() return { status = 302, headers = { Location = "/echo" } } end,
      ["/cookie"] = function(req) return { ws = function(ws) ws:send_str(req.headers["cookie"] or "") end } end,
    }
    s = support.session(server)
  end)

  after_each(function()
    s:close()
    server:close()
  end)

  local function wsurl(path) return (server:url(path):gsub("^http", "ws")) end

  describe("the opening handshake", function()
    it("connects with ws:// and echoes text, bytes and JSON", function()
      local ws = assert(s:ws_connect(wsurl("/echo")))
      assert(ws:send_str("hi"))
      assert.are.equal("hi", ws:receive_str(5))
      assert(ws:send_bytes("\0\1\2"))
      assert.are.equal("\0\1\2", ws:receive_bytes(5))
      assert(ws:send_json { a = 1 })
      assert.are.same({ a = 1 }, ws:receive_json(5))
      assert.is_true(ws:close())
      assert.is_true(ws.closed)
      assert.are.equal(1000, ws.close_code)
    end)

    it("takes a relative URL against base_url and http:// as aiohttp does", function()
      local ws = assert(s:ws_connect("/echo"))
      assert(ws:send_str("rel"))
      assert.are.equal("rel", ws:receive_str(5))
      ws:close()
    end)

    it("negotiates a subprotocol and refuses one it did not ask for", function()
      local ws = assert(s:ws_connect(wsurl("/chat"), { protocols = { "other", "chat" } }))
      assert.are.equal("chat", ws.protocol)
      ws:close()
      local none, err = s:ws_connect(wsurl("/chat"), { protocols = { "other" } })
      assert.is_nil(none)
      assert.is_true(err:is("WSServerHandshakeError"))
      assert.matches("Unrequested subprotocol", err.message)
    end)

    it("fails with WSServerHandshakeError on a non-101 answer", function()
      local ws, err = s:ws_connect(wsurl("/no"))
      assert.is_nil(ws)
      assert.is_true(err:is("WSServerHandshakeError"))
      assert.is_true(err:is("ClientResponseError"))
      assert.are.equal(403, err.status)
    end)

    it("fails on a wrong Sec-WebSocket-Accept", function()
      local raw = support.raw_server(function(peer)
        if peer.data:find("\r\n\r\n", 1, true) then
          peer.tcp:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            .. "Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n")
        end
      end)
      local ws, err = s:ws_connect(("ws://127.0.0.1:%d/"):format(raw.port))
      assert.is_nil(ws)
      assert.matches("Invalid challenge response", err.message)
      raw.close()
    end)

    it("follows a redirect before the 101 and sends cookies", function()
      local ws = assert(s:ws_connect(wsurl("/moved")))
      assert(ws:send_str("after"))
      assert.are.equal("after", ws:receive_str(5))
      ws:close()
      local c = assert(s:ws_connect(wsurl("/cookie"), { cookies = { sid = "42" } }))
      assert.are.equal("sid=42", c:receive_str(5))
      c:close()
    end)

    it("checks its options where the script called", function()
      support.raises("bad argument #2 to 'ws_connect' (unknown option 'hearbeat' (did you mean 'heartbeat'?))",
        s.ws_connect, s, wsurl("/echo"), { hearbeat = 1 })
      support.raises("bad argument 'timeout' to 'ws_connect' (lurl.ws_timeout expected, got number)",
        s.ws_connect, s, wsurl("/echo"), { timeout = 5 })
    end)
  end)

  describe("messages", function()
    it("are compressed with permessage-deflate unless declined", function()
      local ws = assert(s:ws_connect(wsurl("/echo")))
      assert.truthy(ws.headers["sec-websocket-extensions"]:find("permessage-deflate", 1, true))
      local text = ("compressible "):rep(1000)
      assert(ws:send_str(text))
      assert.are.equal(text, ws:receive_str(5))
      ws:close()
      local plain = assert(s:ws_connect(wsurl("/plain")))
      assert.is_nil(plain.headers["sec-websocket-extensions"])
      assert(plain:send_str(text))
      assert.are.equal(text, plain:receive_str(5))
      plain:close()
    end)

    it("over max_msg_size fail the connection with 1009", function()
      local ws = assert(s:ws_connect(wsurl("/big"), { max_msg_size = 1024, compress = false }))
      local msg = ws:receive(5)
      assert.are.equal("error", msg.type)
      assert.are.equal(1009, msg.data.code)
      assert.are.equal(1009, ws.close_code)
      assert.are.equal("closed", ws:receive(5).type)
    end)

    it("of another type than asked are a WSMessageTypeError", function()
      local ws = assert(s:ws_connect(wsurl("/echo")))
      ws:send_bytes("b")
      local v, err = ws:receive_str(5)
      assert.is_nil(v)
      assert.is_true(err:is("WSMessageTypeError"))
      ws:close()
    end)

    it("time out in receive as asked", function()
      local ws = assert(s:ws_connect(wsurl("/echo")))
      local msg, err = ws:receive(0.1)
      assert.is_nil(msg)
      assert.is_true(err:is("TimeoutError"))
      ws:close()
    end)

    it("come through messages() until the server closes", function()
      local ws = assert(s:ws_connect(wsurl("/hello-close")))
      local got = {}
      for msg in ws:messages() do got[#got + 1] = msg.data end
      assert.are.same({ "hello" }, got)
      assert.are.equal(4000, ws.close_code)
      assert.are.equal("closed", ws:receive().type)
    end)

    it("cannot be sent once closed: a typed error, never a crash", function()
      local ws = assert(s:ws_connect(wsurl("/echo")))
      ws:close()
      local ok, err = ws:send_str("late")
      assert.is_nil(ok)
      assert.is_true(err:is("ClientConnectionResetError"))
      assert.is_false(ws:close())
    end)
  end)

  describe("heartbeat", function()
    it("finds a peer gone silent while the script only receives", function()
      local ws = assert(s:ws_connect(wsurl("/silent"), { heartbeat = 0.4 }))
      local t0 = sched.now()
      local msg = ws:receive(5)
      local took = sched.now() - t0
      assert.are.equal("error", msg.type)
      assert.is_true(msg.data:is("ServerTimeoutError"))
      assert.is_true(took < 0.4 * 1.5 + 0.2, "took " .. took)
      assert.are.equal(1006, ws.close_code)
    end)

    it("finds it while the script only sends", function()
      local ws = assert(s:ws_connect(wsurl("/silent"), { heartbeat = 0.4 }))
      local t0 = sched.now()
      while sched.now() - t0 < 3 do
        if not ws:send_str("tick") then break end
        sched.sleep(0.05)
      end
      local took = sched.now() - t0
      assert.is_true(ws.closed)
      assert.is_true(took < 0.4 * 1.5 + 0.2, "took " .. took)
      assert.are.equal("error", ws:receive().type)
    end)
  end)

  it("runs its heartbeat on lurl.testing.clock's virtual time", function()
    local clock = testing.clock { autojump = 0.05 }
    local ok, err = pcall(function()
      local ws = assert(s:ws_connect(wsurl("/silent"), { heartbeat = 60 }))
      local t0 = sched.now()
      local msg = ws:receive()
      assert.are.equal("error", msg.type)
      assert.are.equal(90, sched.now() - t0) -- 60 s of silence, then 30 s without a pong
    end)
    clock:close()
    if not ok then error(err, 0) end
  end)

  it("takes its proxy from ws_proxy under trust_env", function()
    local ffi = require "ffi"
    ffi.cdef "int setenv(const char *name, const char *value, int overwrite); int unsetenv(const char *name);"
    local proxy = testing.proxy {}
    ffi.C.setenv("ws_proxy", proxy:url(), 1)
    local env_session = support.session(server, { trust_env = true })
    ffi.C.unsetenv("ws_proxy")
    local ws = assert(env_session:ws_connect(wsurl("/echo")))
    assert(ws:send_str("env"))
    assert.are.equal("env", ws:receive_str(5))
    ws:close()
    env_session:close()
    assert.are.equal("connect", proxy.seen[1].kind)
    proxy:close()
  end)

  it("goes through a proxy in a CONNECT tunnel", function()
    local proxy = testing.proxy {}
    local ws = assert(s:ws_connect(wsurl("/echo"), { proxy = proxy:url() }))
    assert(ws:send_str("via"))
    assert.are.equal("via", ws:receive_str(5))
    ws:close()
    assert.are.equal("connect", proxy.seen[1].kind)
    proxy:close()
  end)
end)
