-- Requests through proxies (lurl.proxy, lurl.http_tunnel, the connector's
-- proxy path) against lurl.testing.proxy and lurl.testing.server origins:
-- absolute-form and CONNECT, credentials that reach the proxy only, pool
-- keys per proxy, errors, timeouts, timings and trace signals.
-- The certificates are made at run time by spec/tls/make_certs.sh.
local ffi = require "ffi"
local lurl = require "lurl"
local support = require "spec.support"
local testing = require "lurl.testing"

ffi.cdef [[
  int setenv(const char *name, const char *value, int overwrite);
  int unsetenv(const char *name);
]]

local P -- the directory of the throwaway PKI, ending in "/"

local function server_context()
  return lurl.ssl_context { server = true, certfile = P .. "server.pem", keyfile = P .. "server.key" }
end

local function echo_headers(req)
  local h = {} -- lower-case names, so that a check for a missing one cannot miss it
  for k, v in req.headers:items() do h[k:lower()] = v end
  return { json = { path = req.path, headers = h, connection = req.connection } }
end

local function last_seen(proxy) return proxy.seen[#proxy.seen] end

describe("proxies", function()
  local origin, https_origin, proxy, s

  setup(function() P = support.pki() end)
  teardown(function() os.execute("rm -rf " .. P) end)

  before_each(function()
    origin = support.server { ["*"] = echo_headers }
    https_origin = support.server({ ["*"] = echo_headers }, { ssl = server_context() })
    proxy = testing.proxy {}
  end)

  after_each(function()
    if s then s:close(); s = nil end
    proxy:close()
    origin:close()
    https_origin:close()
  end)

  local function session(opts)
    opts = opts or {}
    opts.connector = opts.connector or lurl.connector { ssl = lurl.ssl_context { cafile = P .. "ca.pem" } }
    s = lurl.session(opts)
    return s
  end

  describe("an http target", function()
    it("goes to the proxy in absolute-form, and the response says which proxy", function()
      session { proxy = proxy:url() }
      local resp = assert(s:get(origin:url("/a?b=1")))
      assert.are.equal(200, resp.status)
      assert.are.equal("/a", resp:json().path)
      assert.are.equal("forward", last_seen(proxy).kind)
      assert.are.equal(origin:url("/a?b=1"), last_seen(proxy).target)
      assert.are.equal(proxy:url(), resp.proxy)
      assert.are.equal(proxy:url(), resp.request_info.proxy)
    end)

    it("keeps one connection to the proxy for every origin", function()
      local other = support.server { ["*"] = echo_headers }
      session { proxy = proxy:url() }
      for _ = 1, 3 do
        assert(s:get(origin:url("/")))
        assert(s:get(other:url("/")))
      end
      other:close()
      local conns = {}
      for _, seen in ipairs(proxy.seen) do conns[seen.connection] = true end
      assert.are.same({ [1] = true }, conns)
    end)

    it("never shares a proxy's connection with direct traffic or another proxy", function()
      local second = testing.proxy {}
      session { proxy = proxy:url() }
      assert(s:get(origin:url("/")))
      assert(s:get(origin:url("/"), { proxy = second:url() }))
      assert(s:get(origin:url("/"), { proxy = false }))
      assert.are.equal(1, #proxy.seen)
      assert.are.equal(1, #second.seen)
      assert.are.equal(3, origin:count("/"))
      assert.are.equal(3, s.connector:stats().total)
      second:close()
    end)

    it("sends Proxy-Authorization and proxy_headers to the proxy, which does not pass them on", function()
      proxy:close()
      proxy = testing.proxy { auth = { user = "u", password = "p" } }
      session { proxy = proxy:url(), proxy_auth = lurl.basic_auth("u", "p"), proxy_headers = { ["X-Via"] = "spec" } }
      local resp = assert(s:get(origin:url("/")))
      assert.are.equal(200, resp.status)
      assert.is_true(last_seen(proxy).auth_ok)
      assert.are.equal("spec", last_seen(proxy).headers["x-via"])
      assert.is_nil(resp:json().headers["proxy-authorization"])
    end)

    it("takes credentials from the proxy URL and never prints them", function()
      proxy:close()
      proxy = testing.proxy { auth = { user = "u", password = "s3cret" } }
      local url = proxy:url():gsub("^http://", "http://u:s3cret@")
      session { proxy = url }
      local resp = assert(s:get(origin:url("/")))
      assert.are.equal(200, resp.status)
      assert.is_true(last_seen(proxy).auth_ok)
      assert.is_nil(resp.proxy:find("s3cret", 1, true))
      assert.is_nil(tostring(s.connector):find("s3cret", 1, true))
      for key in pairs(s.connector:stats().per_host) do assert.is_nil(key:find("s3cret", 1, true)) end
    end)

    it("gives the proxy's 407 as the response", function()
      proxy:close()
      proxy = testing.proxy { auth = { user = "u", password = "p" } }
      session { proxy = proxy:url() }
      local resp = assert(s:get(origin:url("/")))
      assert.are.equal(407, resp.status)
    end)

    it("moves a Proxy-Authorization header off a request that goes direct", function()
      session {}
      local resp = assert(s:get(origin:url("/"), { headers = { ["Proxy-Authorization"] = "Basic eDp5" } }))
      assert.is_nil(resp:json().headers["proxy-authorization"])
    end)
  end)

  describe("an https target", function()
    it("goes through a CONNECT tunnel with TLS to the origin", function()
      session { proxy = proxy:url() }
      local resp = assert(s:get(https_origin:url("/t")))
      assert.are.equal(200, resp.status)
      assert.truthy(resp.tls)
      assert.are.equal("connect", last_seen(proxy).kind)
      assert.are.equal("127.0.0.1:" .. https_origin.port, last_seen(proxy).target)
      assert.is_true(resp.timings.proxy > 0)
    end)

    it("reuses the tunnel", function()
      session { proxy = proxy:url() }
      for _ = 1, 3 do assert.are.equal(200, assert(s:get(https_origin:url("/"))).status) end
      assert.are.equal(1, #proxy.seen)
    end)

    it("sends the credentials on the CONNECT only, never to the origin", function()
      proxy:close()
      proxy = testing.proxy { auth = { user = "u", password = "p" } }
      session { proxy = proxy:url(), proxy_auth = lurl.basic_auth("u", "p") }
      local resp = assert(s:get(https_origin:url("/"),
        { headers = { ["Proxy-Authorization"] = "Basic c2hvdWxkOm5vdA==" } }))
      assert.are.equal(200, resp.status)
      assert.is_true(last_seen(proxy).auth_ok)
      assert.is_nil(resp:json().headers["proxy-authorization"])
    end)

    it("fails with ClientHttpProxyError when the proxy refuses the CONNECT", function()
      proxy:close()
      proxy = testing.proxy { auth = { user = "u", password = "p" } }
      session { proxy = proxy:url() }
      local resp, err = s:get(https_origin:url("/"))
      assert.is_nil(resp)
      assert.is_true(err:is("ClientHttpProxyError"))
      assert.is_true(err:is("ClientResponseError"))
      assert.are.equal(407, err.status)
      assert.truthy(err.headers["proxy-authenticate"])
      assert.are.equal(proxy:url(), err.proxy)
    end)

    it("checks the origin's certificate through the tunnel", function()
      s = lurl.session { proxy = proxy:url() }
      local resp, err = s:get(https_origin:url("/"))
      assert.is_nil(resp)
      assert.is_true(err:is("ClientConnectorCertificateError"))
    end)
  end)

  describe("an https proxy", function()
    local tls_proxy

    before_each(function() tls_proxy = testing.proxy { tls = server_context() } end)
    after_each(function() tls_proxy:close() end)

    local function via_tls_proxy(proxy_ssl)
      return session { proxy = tls_proxy:url(), proxy_ssl = proxy_ssl }
    end

    it("carries TLS to the origin inside its own, both certificates checked", function()
      via_tls_proxy(lurl.ssl_context { cafile = P .. "ca.pem" })
      for _ = 1, 2 do
        local resp = assert(s:get(https_origin:url("/in")))
        assert.are.equal(200, resp.status)
        assert.are.equal("/in", resp:json().path)
      end
      assert.are.equal(1, #tls_proxy.seen)
      assert.are.equal("connect", last_seen(tls_proxy).kind)
    end)

    it("forwards an http target in absolute-form over TLS", function()
      via_tls_proxy(lurl.ssl_context { cafile = P .. "ca.pem" })
      assert.are.equal(200, assert(s:get(origin:url("/plain"))).status)
      assert.are.equal("forward", last_seen(tls_proxy).kind)
    end)

    it("refuses a proxy whose certificate does not verify", function()
      via_tls_proxy(nil) -- the system store does not know the test CA
      local resp, err = s:get(https_origin:url("/"))
      assert.is_nil(resp)
      assert.is_true(err:is("ClientConnectorCertificateError"))
      assert.are.equal(0, #tls_proxy.seen)
    end)
  end)

  describe("failures", function()
    it("a proxy nobody listens on is a ClientProxyConnectionError", function()
      local port = support.free_port()
      session { proxy = "http://127.0.0.1:" .. port, timeout = lurl.timeout { sock_connect = 2 } }
      local resp, err = s:get(origin:url("/"))
      assert.is_nil(resp)
      assert.is_true(err:is("ClientProxyConnectionError"))
      assert.is_true(err:is("ClientConnectorError"))
    end)

    it("a proxy that never answers the CONNECT times out in phase proxy", function()
      local silent = support.raw_server(function() end)
      session { proxy = "http://127.0.0.1:" .. silent.port, timeout = lurl.timeout { sock_connect = 0.3 } }
      local resp, err = s:get(https_origin:url("/"))
      assert.is_nil(resp)
      assert.is_true(err:is("TimeoutError"))
      assert.are.equal("proxy", err.phase)
      silent:close()
    end)

    it("an unsupported scheme or a bad URL is an argument error naming the option", function()
      session {}
      support.raises("bad argument 'proxy' to 'get' (unsupported proxy scheme 'ftp'",
        s.get, s, origin:url("/"), { proxy = "ftp://127.0.0.1:21" })
      support.raises("bad argument 'proxy' to 'session' (URL string or false expected, got number)",
        lurl.session, { proxy = 3128 })
      support.raises("bad argument 'proxy_auth' to 'post' (lurl.basic_auth expected, got string)",
        s.post, s, origin:url("/"), { proxy_auth = "u:p" })
    end)
  end)

  describe("redirects under trust_env", function()
    local saved

    local function setenv(name, value)
      saved[name] = saved[name] or { os.getenv(name) }
      if value then ffi.C.setenv(name, value, 1) else ffi.C.unsetenv(name) end
    end

    before_each(function() saved = {} end)
    after_each(function()
      for name, v in pairs(saved) do setenv(name, v[1]) end
    end)

    it("choose their proxy again, and a direct hop gets no proxy credentials", function()
      local target = origin:url("/landed") -- 127.0.0.1, which NO_PROXY names
      local bouncer = support.server {
        ["/go"] = function() return { status = 302, headers = { Location = target } } end,
      }
      setenv("http_proxy", proxy:url())
      setenv("no_proxy", "127.0.0.1")
      session { trust_env = true, proxy_auth = lurl.basic_auth("u", "p") }
      local resp = assert(s:get(("http://localhost:%d/go"):format(bouncer.port)))
      assert.are.equal("/landed", resp:json().path)
      assert.is_nil(resp:json().headers["proxy-authorization"])
      assert.are.equal(1, #proxy.seen)
      assert.are.equal("forward", last_seen(proxy).kind)
      bouncer:close()
    end)
  end)

  it("under the mock transport, the mock answers as proxy and origin both", function()
    local mock = testing.mock()
    mock:on("GET", "http://example.test/x", "mocked")
    local ms = mock:session { proxy = "http://127.0.0.1:3128" }
    local resp = assert(ms:get("http://example.test/x"))
    assert.are.equal("mocked", resp:read())
    assert.are.equal("http://example.test/x", mock.calls[1].url)
    ms:close()
  end)

  it("emits proxy_connect_start and proxy_connect_end", function()
    local seen = {}
    local tc = lurl.trace_config {
      on_proxy_connect_start = function(_, _, p) seen[#seen + 1] = "start " .. p.proxy end,
      on_proxy_connect_end = function(_, _, p) seen[#seen + 1] = "end " .. p.proxy end,
    }
    session { proxy = proxy:url(), trace_configs = { tc } }
    assert(s:get(https_origin:url("/")))
    assert.are.same({ "start " .. proxy:url(), "end " .. proxy:url() }, seen)
  end)
end)
