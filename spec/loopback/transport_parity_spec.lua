-- One table of cases run against every transport: lurl.testing.server over
-- real loopback sockets, in HTTP/1.1 and in HTTP/2 (h2c with prior
-- knowledge), and lurl.testing.mock's Lua streams. Each case must give the
-- same outcome on all, so the mock cannot drift from what a session sees
-- over the network, nor HTTP/2 from HTTP/1.1. Cases of what only HTTP/1.1
-- has (chunked coding, Connection: close) say h1_only.
local testing = require "lurl.testing"
local support = require "spec.support"

-- routes: path -> answer (anything both transports take, or a function of
-- the request: both give it method, path, query and body); request: method,
-- path, opts; expect: status, body and some headers, or error = the kind.
local CASES = {
  { "a status alone", routes = { ["/x"] = 204 }, expect = { status = 204, body = "" } },
  { "a body alone", routes = { ["/x"] = "hello" }, expect = { status = 200, body = "hello" } },
  { "status, headers and body",
    routes = { ["/x"] = { status = 201, headers = { ["X-Case"] = "1" }, body = "made" } },
    expect = { status = 201, body = "made", headers = { ["x-case"] = "1" } } },
  { "json", routes = { ["/x"] = { json = { a = 1 } } },
    expect = { status = 200, body = '{"a":1}', headers = { ["content-type"] = "application/json" } } },
  { "a delay", routes = { ["/x"] = { delay = 0.05, body = "late" } }, expect = { status = 200, body = "late" } },
  { "chunked", h1_only = true, routes = { ["/x"] = { chunked = true, body = "abc" } },
    expect = { status = 200, body = "abc", headers = { ["transfer-encoding"] = "chunked" } } },
  { "dripped", routes = { ["/x"] = { body = "dripping", drip = { size = 3, interval = 0.01 } } },
    expect = { status = 200, body = "dripping" } },
  { "Connection: close", h1_only = true, routes = { ["/x"] = { body = "bye", close = true } },
    expect = { status = 200, body = "bye", headers = { connection = "close" } } },
  { "gzip decoded", routes = { ["/x"] = { body = support.gzip("plain"), headers = { ["Content-Encoding"] = "gzip" } } },
    expect = { status = 200, body = "plain" } },
  { "the request body", routes = { ["/x"] = function(req) return req.method .. " " .. req.body end },
    request = { method = "POST", opts = { data = "payload" } }, expect = { status = 200, body = "POST payload" } },
  { "the query", routes = { ["/x"] = function(req) return req.query end },
    request = { opts = { params = { a = 1 } } }, expect = { status = 200, body = "a=1" } },
  { "HEAD", routes = { ["/x"] = "body" }, request = { method = "HEAD" },
    expect = { status = 200, body = "", headers = { ["content-length"] = "4" } } },
  { "a redirect", routes = { ["/x"] = { status = 302, headers = { Location = "/to" } }, ["/to"] = "arrived" },
    expect = { status = 200, body = "arrived" } },
  { "reset", routes = { ["/x"] = { error = "reset" } }, expect = { error = "ClientConnectionResetError" } },
  { "disconnect", routes = { ["/x"] = { error = "disconnect" } }, expect = { error = "ServerDisconnectedError" } },
  { "hang", routes = { ["/x"] = { error = "hang" } }, request = { opts = { timeout = { total = 0.3 } } },
    expect = { error = "TimeoutError" } },
  { "no byte within sock_read", routes = { ["/x"] = { delay = 1, body = "too late" } },
    request = { opts = { timeout = { sock_read = 0.2 } } }, expect = { error = "SocketTimeoutError" } },
  { "a body shorter than its Content-Length", routes = { ["/x"] = { body = "abc", content_length = 10 } },
    request = { opts = { timeout = { total = 0.3 } } }, expect = { error = "TimeoutError" } },
  { "closed in the middle of the body", routes = { ["/x"] = { body = "hello", close_after = 2 } },
    expect = { error = "ClientPayloadError" } },
  { "reset in the middle of the body", routes = { ["/x"] = { body = "hello", reset_after = 2 } },
    expect = { error = "ClientPayloadError" } },
}

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- What a request ended with, in the terms of expect.
local function outcome(expect, resp, err)
  if not resp then return { error = err and err.kind } end
  local body, berr = resp:read()
  if not body then return { error = berr.kind } end
  local got = { status = resp.status, body = body }
  if expect.headers then
    got.headers = {}
    for name in pairs(expect.headers) do got.headers[name] = resp.headers[name] end
  end
  return got
end

-- The transports: each makes a session whose relative "x" reaches the
-- case's routes and returns it with its cleanup.
local function over_server(server_opts, session_opts)
  return function(case)
    local routes = {}
    for path, a in pairs(case.routes) do
      routes[path] = type(a) == "function" and a or function() return a end
    end
    local server = support.server(routes, copy(server_opts))
    local s = support.session(server, copy(session_opts))
    return s, function()
      s:close()
      server:close()
    end
  end
end

local TRANSPORTS = {
  { "lurl.testing.server", over_server() },
  { "lurl.testing.server, h2c", over_server({ http2 = true }, { http2 = "prior_knowledge" }), h2 = true },
  { "lurl.testing.mock", function(case)
    local mock = testing.mock()
    for path, a in pairs(case.routes) do mock:on("*", "http://api.test" .. path, a) end
    local s = mock:session { base_url = "http://api.test/" }
    return s, function()
      s:close()
      assert.are.equal(0, mock:open_streams(), "mock connections left open")
    end
  end },
}

describe("transport parity", function()
  for _, case in ipairs(CASES) do
    for _, transport in ipairs(TRANSPORTS) do
      if not (transport.h2 and case.h1_only) then it(case[1] .. " (" .. transport[1] .. ")", function()
        local s, cleanup = transport[2](case)
        local req = case.request or {}
        -- the cleanup runs even when the outcome cannot be read
        local ok, got = pcall(function()
          return outcome(case.expect, s:request(req.method or "GET", "x", copy(req.opts)))
        end)
        local in_use = s.connector:stats().in_use
        cleanup()
        assert(ok, got)
        assert.are.same(case.expect, got)
        assert.are.equal(0, in_use, "connections still in use")
      end) end
    end
  end
end)
