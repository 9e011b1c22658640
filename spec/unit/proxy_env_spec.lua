-- lurl.proxy_env: the proxy variables and NO_PROXY. The cases of
-- spec/unit/noproxy_cases.lua are also checked against curl 7.88.1 by
-- spec/interop_noproxy_curl_test.sh; those marked `curl` are where lurl
-- departs from it on purpose.
local proxy_env = require "lurl.proxy_env"
local cases = require "spec.unit.noproxy_cases"

local A, B = "127.0.0.1:3128", "proxy.test:8080"

local function getenv_of(vars)
  return function(name) return vars[name] end
end

local function fill(s) return s and (s:gsub("%$A", A):gsub("%$B", B)) end

describe("lurl.proxy_env", function()
  describe("no_proxy_match (the shared cases)", function()
    for i, c in ipairs(cases.no_proxy) do
      local what = ("%d: %q exempts %s port %s: %s"):format(i, c.no_proxy, c.host, c.port or 80, c.direct)
      it(what, function()
        assert.equal(c.direct, proxy_env.no_proxy_match(c.no_proxy, c.host, c.port or 80))
      end)
    end
  end)

  describe("no_proxy_match", function()
    it("nothing is exempt without a list or a host", function()
      assert.is_false(proxy_env.no_proxy_match(nil, "example.com", 80))
      assert.is_false(proxy_env.no_proxy_match("", "example.com", 80))
      assert.is_false(proxy_env.no_proxy_match("example.com", "", 80))
      assert.is_false(proxy_env.no_proxy_match("*", nil, 80))
    end)

    it("an entry with a port never matches a request without one", function()
      assert.is_false(proxy_env.no_proxy_match("example.com:80", "example.com", nil))
      assert.is_true(proxy_env.no_proxy_match("example.com", "example.com", nil))
    end)

    it("reads IPv6 forms: '::', embedded IPv4, the longest text", function()
      assert.is_true(proxy_env.no_proxy_match("::ffff:7f00:1", "::ffff:127.0.0.1", 80))
      assert.is_true(proxy_env.no_proxy_match("2001:db8:0:0:0:0:0:1", "2001:db8::1", 80))
      assert.is_true(proxy_env.no_proxy_match("2001:db8::/33", "2001:db8:7fff::1", 80))
      assert.is_false(proxy_env.no_proxy_match("2001:db8::/33", "2001:db8:8000::1", 80))
      assert.is_true(proxy_env.no_proxy_match("::/0", "fe80::1", 80))
      assert.is_false(proxy_env.no_proxy_match("::/0", "127.0.0.1", 80))
      assert.is_true(proxy_env.no_proxy_match("[fe80::/10]", "fe80::1", 80))
    end)

    it("skips entries that are no address, range or name", function()
      for _, bad in ipairs({ "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "::1/129", "127.0.0.1/-1",
        "127.0.0.01", "256.0.0.1", "[::1", "[::1]x", "example.com:http", "." }) do
        assert.is_false(proxy_env.no_proxy_match(bad, "::1", 80), bad)
        assert.is_false(proxy_env.no_proxy_match(bad, "127.0.0.1", 80), bad)
        assert.is_false(proxy_env.no_proxy_match(bad, "example.com", 80), bad)
      end
    end)
  end)

  describe("proxy_for (the shared cases)", function()
    for i, c in ipairs(cases.env) do
      local vars = {}
      for k, v in pairs(c.env) do vars[k] = fill(v) end
      it(("%d: %s for %s://%s"):format(i, fill(c.want) or "direct", c.scheme, c.host), function()
        local env = proxy_env.snapshot(getenv_of(vars))
        assert.equal(fill(c.want), proxy_env.proxy_for(env, c.scheme, c.host))
      end)
    end
  end)

  describe("proxy_for", function()
    it("uses NO_PROXY with the scheme's default port", function()
      local env = proxy_env.snapshot(getenv_of({ https_proxy = "http://" .. A, no_proxy = "example.com:443" }))
      assert.is_nil(proxy_env.proxy_for(env, "https", "example.com"))
      assert.equal("http://" .. A, proxy_env.proxy_for(env, "https", "example.com", 8443))
    end)

    it("keeps the value's scheme and credentials as they are", function()
      local env = proxy_env.snapshot(getenv_of({ all_proxy = "socks5://u:p@" .. A }))
      assert.equal("socks5://u:p@" .. A, proxy_env.proxy_for(env, "http", "example.com"))
    end)

    it("has no proxy for other schemes", function()
      local env = proxy_env.snapshot(getenv_of({ all_proxy = "http://" .. A }))
      assert.is_nil(proxy_env.proxy_for(env, "ftp", "example.com"))
    end)
  end)

  describe("snapshot", function()
    it("reads the variables when it is taken, not later, and never HTTP_PROXY", function()
      local reads, vars = {}, { http_proxy = "http://" .. A }
      local env = proxy_env.snapshot(function(name)
        reads[name] = true
        return vars[name]
      end)
      vars.http_proxy = "http://" .. B
      assert.equal("http://" .. A, proxy_env.proxy_for(env, "http", "example.com"))
      assert.is_true(reads.no_proxy and reads.NO_PROXY and reads.ALL_PROXY)
      assert.is_nil(reads.HTTP_PROXY)
    end)

    it("reads os.getenv by default", function()
      assert.same(proxy_env.snapshot(os.getenv), proxy_env.snapshot())
    end)
  end)
end)
