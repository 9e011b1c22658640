-- core.h2: HTTP/2 sessions on libnghttp2 without sockets. A client and a
-- server session are wired to each other in memory (what one pulls the
-- other receives, until both are quiet); hostile peers are hand-built
-- frames (RFC 9113 4.1) fed to a session.
local h2 = require("lurl.core").h2

local KiB = 1024
local NO_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0, 7, 8, 11

-- ---- wiring ----

-- A pair of sessions and the events each saw, in order. on_server(ev, pair)
-- plays the server application; the client's data is consumed as it comes
-- unless pair.hold_client is set.
local function pair(client_opts, server_opts, on_server)
  local server_o = server_opts or {}
  server_o.server = true
  return {
    c = h2.session(client_opts), s = h2.session(server_o),
    cev = {}, sev = {}, on_server = on_server or function() end,
  }
end

local function take_events(p, side)
  local h, list, n = p[side], p[side .. "ev"], 0
  for ev in function() return h:event() end do
    list[#list + 1] = ev
    n = n + 1
    if side == "s" then
      p.on_server(ev, p)
    elseif ev[1] == "data" and not p.hold_client then
      h:consume(ev[2], #ev[3])
    end
  end
  return n
end

-- Move bytes both ways and hand out events until nothing moves; asserts
-- that neither side failed.
local function run(p)
  for _ = 1, 100000 do
    local a, b = p.c:pull(), p.s:pull()
    if a ~= "" then assert(p.s:recv(a)) end
    if b ~= "" then assert(p.c:recv(b)) end
    local n = take_events(p, "s") + take_events(p, "c")
    if a == "" and b == "" and n == 0 then return p end
  end
  error("the sessions never went quiet")
end

local function select(events, kind, sid)
  local out = {}
  for _, ev in ipairs(events) do
    if ev[1] == kind and (sid == nil or ev[2] == sid) then out[#out + 1] = ev end
  end
  return out
end

local function body_of(events, sid)
  local parts = {}
  for _, ev in ipairs(select(events, "data", sid)) do parts[#parts + 1] = ev[3] end
  return table.concat(parts)
end

local function field(ev, name)
  for i, n in ipairs(ev[3]) do
    if n == name then return ev[4][i] end
  end
end

local GET = { ":method", ":scheme", ":authority", ":path" }
local function get(path) return { "GET", "https", "example.test", path or "/" } end

local function respond(s, sid, body, extra_names, extra_values)
  local names, values = { ":status", "content-type" }, { "200", "text/plain" }
  for i, n in ipairs(extra_names or {}) do
    names[#names + 1], values[#values + 1] = n, extra_values[i]
  end
  assert(s:response(sid, names, values, body == nil))
  if body then assert(s:data(sid, body, true)) end
end

-- A server that answers every request with its path as the body.
local function echo_path(ev, p)
  if ev[1] == "headers" and ev[6] == "request" then respond(p.s, ev[2], field(ev, ":path")) end
end

-- ---- hand-built frames ----

local function be(n, bytes)
  local t = {}
  for i = bytes, 1, -1 do
    t[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(t)
end

local function frame(type, flags, sid, payload)
  payload = payload or ""
  return be(#payload, 3) .. string.char(type, flags) .. be(sid, 4) .. payload
end

local DATA, HEADERS, SETTINGS, PING = 0, 1, 4, 6
local END_STREAM, ACK, END_HEADERS = 1, 1, 4
local SERVER_PREFACE = frame(SETTINGS, 0, 0)

local function rep(s, n) return string.rep(s, n) end

describe("core.h2 session", function()
  it("is a lurl.h2_session that a client starts with the preface and its SETTINGS", function()
    local c = h2.session()
    assert.equal("lurl.h2_session", getmetatable(c).__name)
    local out = c:pull()
    assert.equal("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", out:sub(1, 24))
    assert.equal(SETTINGS, out:byte(28))
    assert.equal("", c:pull())
    c:close()
    c:close()
    assert.has_error(function() c:pull() end)
  end)

  it("carries a GET and its response, headers and body", function()
    local p = run(pair(nil, nil, echo_path))
    local sid = assert(p.c:request(GET, get("/hello"), true))
    assert.equal(1, sid)
    run(p)
    local req = select(p.sev, "headers")[1]
    assert.same({ "headers", 1, GET, get("/hello"), true, "request" }, req)
    local head = select(p.cev, "headers", sid)[1]
    assert.equal("response", head[6])
    -- a client gets the head as field lines, :status apart
    assert.equal("content-type: text/plain\r\n", head[3])
    assert.equal(200, head[4])
    assert.is_false(head[7])
    assert.is_false(head[8])
    assert.is_false(head[5])
    assert.equal("/hello", body_of(p.cev, sid))
    local data = select(p.cev, "data", sid)
    assert.is_true(data[#data][4])
    assert.same({ { "close", sid, NO_ERROR } }, select(p.cev, "close"))
    assert.same({ { "close", sid, NO_ERROR } }, select(p.sev, "close"))
    assert.equal(0, p.c:streams())
    assert.equal(0, p.s:streams())
    assert.is_true(p.c:want_read())
  end)

  it("gives a client the head's codings, cookies and first field over max_field_size", function()
    local p = run(pair({ max_field_size = 40 }, nil, function(ev, q)
      if ev[1] == "headers" then
        respond(q.s, ev[2], "", { "content-encoding", "set-cookie", "x-long", "content-encoding", "x-longer" },
          { "gzip", "a=1", ("v"):rep(40), "br", ("w"):rep(50) })
      end
    end))
    local sid = assert(p.c:request(GET, get(), true))
    run(p)
    local head = select(p.cev, "headers", sid)[1]
    assert.equal("gzip, br", head[7])
    assert.is_true(head[8])
    assert.equal("x-long", head[9])
    assert.equal(48, head[10])
    assert.matches("^content%-type: text/plain\r\ncontent%-encoding: gzip\r\nset%-cookie: a=1\r\nx%-long: v+\r\n"
      .. "content%-encoding: br\r\nx%-longer: w+\r\n$", head[3])
  end)

  it("gives a client the body bytes of one recv as one data event, the end with them", function()
    local p = run(pair(nil, nil, function(ev, q)
      if ev[1] == "headers" then respond(q.s, ev[2], ("x"):rep(48 * KiB)) end
    end))
    local sid = assert(p.c:request(GET, get(), true))
    run(p)
    -- three DATA frames of 16 KiB (SETTINGS_MAX_FRAME_SIZE's default) in one read
    local data = select(p.cev, "data", sid)
    assert.equal(1, #data)
    assert.equal(48 * KiB, #data[1][3])
    assert.is_true(data[1][4])
  end)

  it("reports the peer's SETTINGS_MAX_CONCURRENT_STREAMS when it changes", function()
    local p = run(pair(nil, { max_concurrent_streams = 7 }))
    assert.same({ { "settings", 7 } }, select(p.cev, "settings"))
    assert.equal(7, p.c:peer_max_streams())
    assert.same({ { "settings", 100 } }, select(p.sev, "settings"))
  end)

  it("sends a POST body larger than the window as the receiver consumes it", function()
    local body = {}
    for i = 1, 1024 do body[i] = rep(string.char(65 + i % 26), 1023) .. "\n" end
    body = table.concat(body) -- 1 MiB
    local p = pair(nil, { initial_window_size = 65535 })
    run(p)
    local sid = assert(p.c:request({ ":method", ":scheme", ":authority", ":path" },
      { "POST", "https", "example.test", "/up" }, false))
    assert.is_true(p.c:data(sid, body, true))
    run(p)
    -- the server took nothing yet: the stream's window (65,535) stopped it
    assert.equal(65535, #body_of(p.sev, sid))
    assert.equal(#body - 65535, p.c:queued(sid))
    -- now it reads as the bytes come, and answers at the end
    p.on_server = function(ev, q)
      if ev[1] == "data" then
        q.s:consume(ev[2], #ev[3])
        if ev[4] then respond(q.s, ev[2], "got it") end
      end
    end
    p.s:consume(sid, 65535)
    run(p)
    assert.equal(body, body_of(p.sev, sid))
    assert.equal(0, p.c:queued(sid))
    assert.equal("got it", body_of(p.cev, sid))
    assert.same({ "close", sid, NO_ERROR }, select(p.cev, "close")[1])
  end)

  it("holds a slow reader to the window and goes on when it consumes", function()
    local p = pair({ initial_window_size = 16 * KiB }, nil, function(ev, q)
      if ev[1] == "headers" then respond(q.s, ev[2], rep("x", 100 * KiB)) end
    end)
    p.hold_client = true
    run(p)
    local sid = p.c:request(GET, get(), true)
    run(p)
    assert.equal(16 * KiB, #body_of(p.cev, sid))
    p.hold_client = false
    p.c:consume(sid, 16 * KiB)
    run(p)
    assert.equal(100 * KiB, #body_of(p.cev, sid))
  end)

  it("multiplexes 200 concurrent streams on one connection", function()
    local p = run(pair(nil, { max_concurrent_streams = 200 }, echo_path))
    assert.equal(200, p.c:peer_max_streams())
    local sids = {}
    for i = 1, 200 do
      assert.is_true(p.c:can_open())
      sids[i] = assert(p.c:request(GET, get("/item/" .. i), true))
    end
    assert.equal(200, p.c:streams())
    assert.is_false(p.c:can_open())
    run(p)
    assert.equal(200, #select(p.sev, "headers"))
    for i, sid in ipairs(sids) do
      assert.equal(2 * i - 1, sid)
      assert.equal("/item/" .. i, body_of(p.cev, sid))
      assert.same({ "close", sid, NO_ERROR }, select(p.cev, "close", sid)[1])
    end
    assert.equal(0, p.c:streams())
    assert.is_true(p.c:can_open())
  end)

  it("sends and receives trailers after a body, both ways", function()
    local p = run(pair(nil, nil, function(ev, q)
      if ev[1] == "headers" and ev[6] == "trailers" then
        assert(q.s:response(ev[2], { ":status" }, { "200" }, false))
        assert(q.s:data(ev[2], "payload", false))
        assert(q.s:trailers(ev[2], { "grpc-status", "grpc-message" }, { "0", "fine" }))
      end
    end))
    local sid = p.c:request({ ":method", ":scheme", ":authority", ":path" },
      { "POST", "https", "example.test", "/rpc" }, false)
    assert(p.c:data(sid, "question", false))
    assert(p.c:trailers(sid, { "x-checksum" }, { "abc" }))
    run(p)
    local st = select(p.sev, "headers", sid)
    assert.equal(2, #st)
    assert.same({ "headers", sid, { "x-checksum" }, { "abc" }, true, "trailers" }, st[2])
    assert.equal("question", body_of(p.sev, sid))
    local ct = select(p.cev, "headers", sid)
    assert.equal("response", ct[1][6])
    assert.same({ "headers", sid, "grpc-status: 0\r\ngrpc-message: fine\r\n", nil, true, "trailers", false, false },
      ct[2])
    assert.equal("payload", body_of(p.cev, sid))
    assert.same({ "close", sid, NO_ERROR }, select(p.cev, "close", sid)[1])
  end)

  it("reports a 1xx head as informational before the final one", function()
    local raw = h2.session()
    local sid = raw:request(GET, get(), true)
    local block = string.char(0x08, 0x03) .. "103" -- literal :status (index 8), not indexed
    raw:recv(SERVER_PREFACE .. frame(HEADERS, END_HEADERS, sid, block)
      .. frame(HEADERS, END_HEADERS + END_STREAM, sid, string.char(0x88)))
    local heads = {}
    for ev in function() return raw:event() end do
      if ev[1] == "headers" then heads[#heads + 1] = ev[6] .. " " .. ev[4] end
    end
    assert.same({ "informational 103", "response 200" }, heads)
  end)

  it("closes a stream the server resets, with the code, and keeps the others", function()
    local p = run(pair(nil, nil, function(ev, q)
      if ev[1] == "headers" then
        if field(ev, ":path") == "/reset" then
          assert(q.s:reset(ev[2], CANCEL))
        else
          respond(q.s, ev[2], "ok")
        end
      end
    end))
    local a = p.c:request(GET, get("/reset"), true)
    local b = p.c:request(GET, get("/fine"), true)
    run(p)
    assert.same({ { "close", a, CANCEL } }, select(p.cev, "close", a))
    assert.same({}, select(p.cev, "headers", a))
    assert.equal("ok", body_of(p.cev, b))
    assert.same({ { "close", b, NO_ERROR } }, select(p.cev, "close", b))
  end)

  it("refuses the streams above a GOAWAY's last_stream_id and serves the rest", function()
    local held = {}
    local p = run(pair(nil, nil, function(ev) if ev[1] == "headers" then held[#held + 1] = ev[2] end end))
    for i = 1, 3 do assert(p.c:request(GET, get("/" .. i), true)) end
    run(p)
    assert.same({ 1, 3, 5 }, held)
    assert(p.s:goaway(NO_ERROR, 1))
    run(p)
    assert.same({ { "goaway", 1, NO_ERROR } }, select(p.cev, "goaway"))
    assert.same({ "close", 3, REFUSED_STREAM }, select(p.cev, "close", 3)[1])
    assert.same({ "close", 5, REFUSED_STREAM }, select(p.cev, "close", 5)[1])
    assert.is_false(p.c:can_open())
    local nope, err, ename = p.c:request(GET, get("/late"), true)
    if nope then -- nghttp2 may take it and refuse it when it would send it
      run(p)
      assert.same({ "close", nope, REFUSED_STREAM }, select(p.cev, "close", nope)[1])
    else
      assert.equal("H2_REFUSED_STREAM", ename, err)
    end
    respond(p.s, 1, "last one")
    run(p)
    assert.equal("last one", body_of(p.cev, 1))
    assert.same({ "close", 1, NO_ERROR }, select(p.cev, "close", 1)[1])
    assert.equal(0, p.c:streams())
  end)

  it("honours the server's SETTINGS_MAX_CONCURRENT_STREAMS", function()
    local held = {}
    local p = run(pair(nil, { max_concurrent_streams = 2 }, function(ev)
      if ev[1] == "headers" then held[#held + 1] = ev[2] end
    end))
    assert.equal(2, p.c:peer_max_streams())
    local a = p.c:request(GET, get("/a"), true)
    assert.is_true(p.c:can_open())
    p.c:request(GET, get("/b"), true)
    assert.is_false(p.c:can_open())
    -- a third anyway: nghttp2 holds it back until a stream closes
    local c3 = p.c:request(GET, get("/c"), true)
    run(p)
    assert.same({ 1, 3 }, held)
    respond(p.s, a, "a")
    run(p)
    assert.same({ 1, 3, c3 }, held)
    assert.is_false(p.c:can_open())
    -- a held-back request the caller cancels never goes out
    local d = p.c:request(GET, get("/d"), true)
    assert(p.c:reset(d, CANCEL))
    assert.same({ "close", d, CANCEL }, select({ p.c:event() }, "close", d)[1])
    respond(p.s, 3, "b")
    respond(p.s, c3, "c")
    run(p)
    assert.same({ 1, 3, c3 }, held)
    assert.is_true(p.c:can_open())
    assert.equal("c", body_of(p.cev, c3))
  end)

  describe("header lists over max_header_list_size", function()
    local big = rep("v", 2 * KiB)

    it("are not sent to a server that said it takes less", function()
      local p = run(pair(nil, { max_header_list_size = KiB }))
      local names, values = { ":method", ":scheme", ":authority", ":path", "x-big" },
        { "GET", "https", "example.test", "/", big }
      local sid, err, ename = p.c:request(names, values, true)
      assert.is_nil(sid)
      assert.equal("H2_HEADER_LIST_TOO_LARGE", ename)
      assert.matches("max_header_list_size", err)
    end)

    it("are refused by the server's session with RST_STREAM", function()
      local p = pair(nil, { max_header_list_size = KiB })
      -- sent before the server's SETTINGS arrived
      local sid = p.c:request({ ":method", ":scheme", ":authority", ":path", "x-big" },
        { "GET", "https", "example.test", "/", big }, true)
      run(p)
      assert.same({}, select(p.sev, "headers"))
      assert.same({ { "close", sid, ENHANCE_YOUR_CALM, "H2_HEADER_LIST_TOO_LARGE" } }, select(p.sev, "close"))
      assert.same({ { "close", sid, ENHANCE_YOUR_CALM } }, select(p.cev, "close"))
    end)

    it("are refused in a response, a HPACK bomb included, with bounded memory", function()
      local c = h2.session{ max_header_list_size = 64 * KiB }
      local sid = c:request(GET, get(), true)
      c:pull()
      -- one 4,000-byte field into the dynamic table, then 3,000 one-byte
      -- references to it: 12 MB of fields from 7 KB (RFC 9113 10.5.1)
      local value = rep("b", 4000)
      local block = string.char(0x88, 0x40, 0x01) .. "x" .. string.char(0x7f, 0xa1, 0x1e) .. value
        .. rep(string.char(0xbe), 3000)
      assert.is_true(c:recv(SERVER_PREFACE .. frame(HEADERS, END_HEADERS + END_STREAM, sid, block)))
      local events = {}
      for ev in function() return c:event() end do events[#events + 1] = ev end
      assert.same({}, select(events, "headers"))
      assert.same({ { "close", sid, ENHANCE_YOUR_CALM, "H2_HEADER_LIST_TOO_LARGE" } }, select(events, "close"))
      -- the RST_STREAM went out; the connection lives on
      assert.is_true(c:can_open())
      assert.is_truthy(c:pull():find(string.char(0, 0, 4, 3), 1, true))
    end)
  end)

  describe("a hostile or broken peer fails the session with a typed error", function()
    local function fails(h, bytes, want)
      local ok, err, ename = h:recv(bytes)
      assert.is_nil(ok)
      assert.equal(want, ename, err)
      assert.equal(want, err:match("^([%w_]+):"))
      -- for good: whatever comes next
      local ok2, _, ename2 = h:recv(SERVER_PREFACE)
      assert.is_nil(ok2)
      assert.equal(want, ename2)
      assert.is_false(h:can_open())
      assert.is_false(h:want_read())
      local again, _, ename3 = h:ping()
      assert.is_nil(again)
      assert.equal(want, ename3)
      return err
    end

    it("a PING flood", function()
      local c = h2.session()
      c:pull()
      local err = fails(c, SERVER_PREFACE .. rep(frame(PING, 0, 0, rep("\0", 8)), 2000), "H2_ENHANCE_YOUR_CALM")
      assert.matches("PING", err)
    end)

    it("a SETTINGS flood", function()
      local c = h2.session()
      c:pull()
      fails(c, SERVER_PREFACE .. rep(frame(SETTINGS, 0, 0), 2000), "H2_ENHANCE_YOUR_CALM")
    end)

    it("a SETTINGS frame with too many entries", function()
      local c = h2.session()
      c:pull()
      local entry = be(3, 2) .. be(100, 4) -- MAX_CONCURRENT_STREAMS = 100
      local err = fails(c, SERVER_PREFACE .. frame(SETTINGS, 0, 0, rep(entry, 100)), "H2_ENHANCE_YOUR_CALM")
      assert.matches("SETTINGS", err)
      -- the GOAWAY that says why is there to send
      local out = c:pull()
      assert.equal(7, out:byte(4)) -- GOAWAY
    end)

    it("garbage instead of a server's SETTINGS", function()
      local c = h2.session()
      c:pull()
      fails(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "H2_PROTOCOL_ERROR")
    end)

    it("garbage instead of a client preface", function()
      local s = h2.session{ server = true }
      local err = fails(s, "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n", "H2_PROTOCOL_ERROR")
      assert.matches("preface", err)
    end)

    it("DATA beyond the flow-control window (the stream only)", function()
      local c = h2.session{ initial_window_size = 1024 }
      local sid = c:request(GET, get(), true)
      c:pull()
      -- the window is the client's own once its SETTINGS are acknowledged
      assert.is_true(c:recv(SERVER_PREFACE .. frame(SETTINGS, ACK, 0)
        .. frame(HEADERS, END_HEADERS, sid, string.char(0x88))))
      -- over the stream's window, not the connection's: a stream error
      -- (RFC 9113 6.9.1), RST_STREAM FLOW_CONTROL_ERROR
      assert.is_true(c:recv(frame(DATA, 0, sid, rep("x", 4096))))
      local closes = {}
      for ev in function() return c:event() end do
        if ev[1] == "close" then closes[#closes + 1] = ev end
      end
      assert.same({ { "close", sid, 3 } }, closes)
    end)
  end)

  it("checks its arguments", function()
    local c = h2.session()
    assert.has_error(function() h2.session{ initial_window_size = 2 ^ 31 } end)
    assert.has_error(function() h2.session{ max_concurrent_streams = "many" } end)
    assert.has_error(function() c:response(1, {}, {}, true) end)
    assert.has_error(function() c:request(GET, { "GET" }, true) end)
    local ok, _, ename = c:request({ ":method", "Upper" }, { "GET", "x" }, true)
    assert.is_nil(ok)
    assert.equal("EINVAL", ename)
    ok, _, ename = c:request({ ":method", "x" }, { "GET", "a\r\nb" }, true)
    assert.is_nil(ok)
    assert.equal("EINVAL", ename)
    local sid = c:request(GET, get(), true)
    assert.has_error(function() c:data(sid, "late", true) end)
    local none, _, en = c:data(99, "x", true)
    assert.is_nil(none)
    assert.equal("H2_STREAM_CLOSED", en)
    assert.equal(0, c:queued(99))
    assert.is_false(pcall(c.recv, c))
  end)
end)

-- How a connection comes to speak h2 over TLS: ALPN (RFC 7301, RFC 9113
-- 3.2) on TLS engines wired in memory, as the codec above is.
describe("ALPN on TLS contexts", function()
  local lurl = require "lurl"
  local core = require "lurl.core"
  local support = require "spec.support"
  local P

  setup(function() P = support.pki() end)
  teardown(function() os.execute("rm -rf " .. P) end)

  -- What the client and the server agreed on ("-" for nothing).
  local function agree(client_alpn, server_alpn)
    local sctx = lurl.ssl_context { server = true, certfile = P .. "server.pem", keyfile = P .. "server.key",
      alpn = server_alpn }
    local c = assert(core.tls.engine(lurl.ssl_context { cafile = P .. "ca.pem", alpn = client_alpn },
      "localhost", "localhost:443"))
    local s = assert(core.tls.engine(sctx))
    for _ = 1, 10 do
      local a = c:handshake()
      s:feed(c:pending())
      local b = s:handshake()
      c:feed(s:pending())
      assert(a ~= nil and b ~= nil, "the handshake failed")
      if a and b then break end
    end
    return (c:info().alpn or "-") .. " " .. (s:info().alpn or "-")
  end

  it("offers and accepts only http/1.1 unless asked", function()
    assert.equal("http/1.1 http/1.1", agree(nil, nil))
    assert.equal("http/1.1 http/1.1", agree({ "h2", "http/1.1" }, nil))
    assert.equal("http/1.1 http/1.1", agree(nil, { "h2", "http/1.1" }))
  end)

  it("agrees on h2 when both list it, the server's order deciding", function()
    assert.equal("h2 h2", agree({ "h2", "http/1.1" }, { "h2", "http/1.1" }))
    assert.equal("h2 h2", agree({ "http/1.1", "h2" }, { "h2", "http/1.1" }))
    assert.equal("http/1.1 http/1.1", agree({ "h2", "http/1.1" }, { "http/1.1", "h2" }))
    assert.equal("- -", agree({ "h2" }, nil))
  end)

  it("checks the list", function()
    assert.has_error(function() lurl.ssl_context { alpn = {} } end)
    assert.has_error(function() lurl.ssl_context { alpn = { "" } } end)
    assert.has_error(function() lurl.ssl_context { alpn = "h2" } end)
    assert.has_error(function() lurl.ssl_context { alpn = { rep("x", 256) } } end)
  end)
end)
