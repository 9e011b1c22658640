-- lurl.errors: the typed error hierarchy (DESIGN.md, "Errors").
local lurl = require "lurl"
local errors = require "lurl.errors"

-- aiohttp 3.12's tree (client_exceptions.py), every kind with its
-- parents there; TimeoutError stands for asyncio.TimeoutError, and
-- WSMessageTypeError (a TypeError) and WebSocketError (http_websocket's)
-- are outside ClientError as in aiohttp.
local design = {
  ClientError = {},
  ClientConnectionError = { "ClientError" },
  ClientConnectionResetError = { "ClientConnectionError" },
  ClientOSError = { "ClientConnectionError" },
  ClientConnectorError = { "ClientOSError" },
  ClientConnectorDNSError = { "ClientConnectorError" },
  ClientProxyConnectionError = { "ClientConnectorError" },
  UnixClientConnectorError = { "ClientConnectorError" },
  ClientSSLError = { "ClientConnectorError" },
  ClientConnectorSSLError = { "ClientSSLError" },
  ClientConnectorCertificateError = { "ClientSSLError" },
  ServerConnectionError = { "ClientConnectionError" },
  ServerDisconnectedError = { "ServerConnectionError" },
  ServerFingerprintMismatch = { "ServerConnectionError" },
  ServerTimeoutError = { "ServerConnectionError", "TimeoutError" },
  ConnectionTimeoutError = { "ServerTimeoutError" },
  SocketTimeoutError = { "ServerTimeoutError" },
  ClientResponseError = { "ClientError" },
  ContentTypeError = { "ClientResponseError" },
  ClientHttpProxyError = { "ClientResponseError" },
  TooManyRedirects = { "ClientResponseError" },
  WSServerHandshakeError = { "ClientResponseError" },
  ClientPayloadError = { "ClientError" },
  InvalidURL = { "ClientError" },
  InvalidUrlClientError = { "InvalidURL" },
  RedirectClientError = { "ClientError" },
  NonHttpUrlClientError = { "ClientError" },
  InvalidUrlRedirectClientError = { "InvalidUrlClientError", "RedirectClientError" },
  NonHttpUrlRedirectClientError = { "NonHttpUrlClientError", "RedirectClientError" },
  WSMessageTypeError = {},
  WebSocketError = {},
  TimeoutError = {},
  CancelledError = {},
}

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

describe("lurl.errors", function()
  describe("kinds", function()
    for _, kind in ipairs(sorted_keys(design)) do
      it(kind .. " exists and is itself and each of its design parents", function()
        assert.is_table(errors.kinds[kind])
        local e = errors.new(kind, "m")
        assert.equal(kind, e.kind)
        assert.is_true(e:is(kind))
        for _, p in ipairs(design[kind]) do
          assert.is_true(e:is(p), kind .. " should be a " .. p)
        end
      end)
    end

    it("has exactly aiohttp's parents for aiohttp's kinds; lurl's own are ClientErrors", function()
      -- lurl's own kinds (the body readers' two are asyncio's in aiohttp)
      local own = { CircuitOpenError = true, ThrottledError = true, IncompleteReadError = true, LineTooLong = true }
      for kind, ps in pairs(errors.kinds) do
        if own[kind] then
          assert.is_true(errors.new(kind, "m"):is("ClientError"), kind)
        else
          assert.are.same(design[kind], ps, kind)
        end
      end
    end)

    it("every kind outside aiohttp's four roots is a ClientError", function()
      local roots = { TimeoutError = true, CancelledError = true, WSMessageTypeError = true, WebSocketError = true }
      for kind in pairs(errors.kinds) do
        assert.equal(not roots[kind], errors.new(kind, "m"):is("ClientError"), kind)
      end
    end)

    it("lurl.error and lurl.errors are the same module", function()
      assert.equal(errors, lurl.errors)
      assert.equal(errors.new, lurl.error)
    end)
  end)

  describe("is() follows ancestors", function()
    it("ServerTimeoutError is both a ServerConnectionError and a TimeoutError", function()
      local e = errors.new("ServerTimeoutError", "m")
      assert.is_true(e:is("ServerConnectionError"))
      assert.is_true(e:is("ClientConnectionError"))
      assert.is_true(e:is("ClientError"))
      assert.is_true(e:is("TimeoutError"))
      assert.is_false(e:is("ClientOSError"))
      assert.is_false(e:is("CancelledError"))
    end)

    it("ConnectionTimeoutError and SocketTimeoutError are TimeoutErrors", function()
      for _, kind in ipairs { "ConnectionTimeoutError", "SocketTimeoutError" } do
        local e = errors.new(kind, "m")
        assert.is_true(e:is("TimeoutError"), kind)
        assert.is_true(e:is("ServerTimeoutError"), kind)
        assert.is_true(e:is("ServerConnectionError"), kind)
        assert.is_true(e:is("ClientError"), kind)
      end
      assert.is_false(errors.new("ConnectionTimeoutError", "m"):is("SocketTimeoutError"))
      assert.is_false(errors.new("SocketTimeoutError", "m"):is("ConnectionTimeoutError"))
    end)

    it("a plain TimeoutError is not a ClientError nor a ServerTimeoutError", function()
      local e = errors.new("TimeoutError", "m")
      assert.is_true(e:is("TimeoutError"))
      assert.is_false(e:is("ServerTimeoutError"))
      assert.is_false(e:is("ClientError"))
    end)

    it("NonHttpUrlRedirectClientError is a redirect and a non-http error, not an InvalidURL", function()
      local e = errors.new("NonHttpUrlRedirectClientError", "m")
      assert.is_false(e:is("InvalidURL"))
      assert.is_true(e:is("RedirectClientError"))
      assert.is_true(e:is("NonHttpUrlClientError"))
      assert.is_true(e:is("ClientError"))
      assert.is_false(e:is("ClientResponseError"))
    end)

    it("the connector branch: DNS and SSL errors are ClientOSErrors", function()
      local dns = errors.new("ClientConnectorDNSError", "m")
      assert.is_true(dns:is("ClientConnectorError"))
      assert.is_true(dns:is("ClientOSError"))
      assert.is_true(dns:is("ClientConnectionError"))
      local cert = errors.new("ClientConnectorCertificateError", "m")
      assert.is_true(cert:is("ClientSSLError"))
      assert.is_true(cert:is("ClientConnectorError"))
      assert.is_false(cert:is("ClientConnectorSSLError"))
      assert.is_false(cert:is("ServerConnectionError"))
    end)

    it("a parent is not its child", function()
      assert.is_false(errors.new("ClientError", "m"):is("InvalidURL"))
      assert.is_false(errors.new("ClientResponseError", "m"):is("TooManyRedirects"))
      assert.is_false(errors.new("ServerConnectionError", "m"):is("ServerTimeoutError"))
    end)

    it("errors.is works on any value", function()
      local e = errors.new("SocketTimeoutError", "m")
      assert.is_true(errors.is(e, "TimeoutError"))
      assert.is_false(errors.is(e, "CancelledError"))
      assert.is_false(errors.is("SocketTimeoutError", "TimeoutError"))
      assert.is_false(errors.is(nil, "TimeoutError"))
      assert.is_false(errors.is({ kind = "TimeoutError" }, "TimeoutError"))
    end)
  end)

  describe("is() with an unknown kind", function()
    it("raises, naming the kind", function()
      local e = errors.new("ClientError", "m")
      local ok, msg = pcall(e.is, e, "TimeOutError")
      assert.is_false(ok)
      assert.matches("unknown error kind 'TimeOutError'", msg, 1, true)
      assert.has_error(function() e:is(nil) end)
    end)

    it("errors.new raises on an unknown kind", function()
      local ok, msg = pcall(errors.new, "NoSuchError", "m")
      assert.is_false(ok)
      assert.matches("unknown error kind 'NoSuchError'", msg, 1, true)
    end)
  end)

  describe("tostring", function()
    it("is 'Kind: message'", function()
      assert.equal("ClientPayloadError: body truncated",
        tostring(errors.new("ClientPayloadError", "body truncated")))
    end)

    it("appends the url", function()
      local e = errors.new("InvalidURL", "bad", { url = "http://x/" })
      assert.equal("InvalidURL: bad (http://x/)", tostring(e))
    end)

    it("appends method and url", function()
      local e = errors.new("TimeoutError", "total timeout of 5s expired",
        { url = "http://127.0.0.1:1/a", method = "GET" })
      assert.equal("TimeoutError: total timeout of 5s expired (GET http://127.0.0.1:1/a)", tostring(e))
    end)

    it("a method without a url is not shown", function()
      assert.equal("ClientError: m", tostring(errors.new("ClientError", "m", { method = "GET" })))
    end)
  end)

  describe("context", function()
    it("fields are copied in but never replace kind or message", function()
      local cause = errors.new("ClientOSError", "ECONNRESET")
      local e = errors.new("ServerDisconnectedError", "gone",
        { kind = "ClientError", message = "x", status = 502, errno = -104, cause = cause })
      assert.equal("ServerDisconnectedError", e.kind)
      assert.equal("gone", e.message)
      assert.equal(502, e.status)
      assert.equal(-104, e.errno)
      assert.equal(cause, e.cause)
    end)

    it("annotate adds missing context only", function()
      local e = errors.new("ClientError", "m", { url = "http://a/" })
      assert.equal(e, errors.annotate(e, { url = "http://b/", method = "POST" }))
      assert.equal("http://a/", e.url)
      assert.equal("POST", e.method)
      assert.equal("plain", errors.annotate("plain", { url = "u" }))
    end)
  end)
end)
