-- NO_PROXY and proxy-variable cases, read by spec/unit/proxy_env_spec.lua
-- (lurl.proxy_env against `direct` / `want`) and by
-- spec/interop/noproxy_client.lua (Debian 12's curl against the same
-- environment), so that the two cannot drift apart.
--
-- no_proxy: { no_proxy = value, host = URL host, port = URL port (nil: 80),
--   direct = lurl goes direct (true) or through http_proxy (false),
--   curl = what curl 7.88.1 does, only where it differs from lurl on
--   purpose, with why }. Hosts are what a URL holds (an IPv6 address without
--   its brackets); the interop check sends every request to loopback
--   (curl --connect-to), so no address here is ever contacted.
--
-- env: { env = variables, scheme, host, want = proxy URL or nil (direct) }.
-- In variable values and in want, $A and $B stand for two proxies' host:port.
return {
  no_proxy = {
    -- host names: the name itself and names under it, not substrings
    { no_proxy = "example.com", host = "example.com", direct = true },
    { no_proxy = "example.com", host = "a.example.com", direct = true },
    { no_proxy = "example.com", host = "a.b.example.com", direct = true },
    { no_proxy = "example.com", host = "badexample.com", direct = false },
    { no_proxy = "example.com", host = "example.com.evil.test", direct = false },
    { no_proxy = "a.example.com", host = "example.com", direct = false },
    { no_proxy = "com", host = "example.com", direct = true }, -- a bare TLD is a suffix too
    -- a leading dot changes nothing: the domain itself matches as well
    { no_proxy = ".example.com", host = "example.com", direct = true },
    { no_proxy = ".example.com", host = "a.example.com", direct = true },
    { no_proxy = ".example.com", host = "badexample.com", direct = false },
    -- case and the trailing dot of a fully qualified name
    { no_proxy = "Example.COM", host = "a.EXAMPLE.com", direct = true },
    { no_proxy = "example.com", host = "example.com.", direct = true },
    { no_proxy = "example.com.", host = "a.example.com", direct = true },
    -- lists: commas, spaces and tabs separate, empty entries are skipped
    { no_proxy = "other.test,example.com", host = "example.com", direct = true },
    { no_proxy = "other.test example.com", host = "example.com", direct = true },
    { no_proxy = "other.test\texample.com", host = "example.com", direct = true },
    { no_proxy = " ,, other.test , example.com ,", host = "example.com", direct = true },
    { no_proxy = "other.test", host = "example.com", direct = false },
    -- "*": only the whole value; no wildcards inside names
    { no_proxy = "*", host = "example.com", direct = true },
    { no_proxy = "*", host = "127.0.0.1", direct = true },
    { no_proxy = "*,other.test", host = "example.com", direct = false },
    { no_proxy = "*.example.com", host = "a.example.com", direct = false },
    -- IPv4 addresses and CIDR ranges
    { no_proxy = "127.0.0.1", host = "127.0.0.1", direct = true },
    { no_proxy = "127.0.0.1", host = "127.0.0.2", direct = false },
    { no_proxy = "127.0.0.0/8", host = "127.0.0.5", direct = true },
    { no_proxy = "127.0.0.0/24", host = "127.0.1.1", direct = false },
    { no_proxy = "127.1.2.3/16", host = "127.1.9.9", direct = true }, -- host bits of the entry ignored
    { no_proxy = "10.0.0.0/8", host = "10.1.2.3", direct = true },
    { no_proxy = "10.0.0.0/8", host = "11.1.2.3", direct = false },
    { no_proxy = "192.168.0.0/17", host = "192.168.127.1", direct = true },
    { no_proxy = "192.168.0.0/17", host = "192.168.128.1", direct = false },
    { no_proxy = "127.0.0.1/32", host = "127.0.0.1", direct = true },
    { no_proxy = "127.0.0.1/33", host = "127.0.0.1", direct = false },
    { no_proxy = "0.0.0.0/0", host = "10.1.2.3", direct = true,
      curl = false, why = "curl 7.88 reads /0 as the whole address (curl PR 20306)" },
    -- names and addresses never match each other
    { no_proxy = "localhost", host = "127.0.0.1", direct = false },
    { no_proxy = "127.0.0.1", host = "localhost", direct = false },
    { no_proxy = "127.0.0.0/8", host = "localhost", direct = false },
    -- IPv6 addresses, as addresses
    { no_proxy = "::1", host = "::1", direct = true },
    { no_proxy = "::1", host = "[::1]", direct = true },
    { no_proxy = "::2", host = "::1", direct = false },
    { no_proxy = "FE80::1", host = "fe80::1", direct = true },
    { no_proxy = "0:0::1", host = "::1", direct = true,
      curl = false, why = "curl 7.88 compares IPv6 hosts as text (curl issues 5745, 19828)" },
    { no_proxy = "[::1]", host = "::1", direct = true,
      curl = false, why = "curl takes no brackets in NO_PROXY entries" },
    { no_proxy = "::1/128", host = "::1", direct = true,
      curl = false, why = "curl 7.88 compares IPv6 hosts as text: no IPv6 CIDR (curl PR 19828)" },
    { no_proxy = "fe80::/10", host = "fe80::1", direct = true,
      curl = false, why = "curl 7.88: no IPv6 CIDR (curl PR 19828)" },
    { no_proxy = "fe80::/10", host = "fec0::1", direct = false },
    { no_proxy = "2001:db8::/32", host = "2001:db9::1", direct = false },
    { no_proxy = "127.0.0.1", host = "::ffff:127.0.0.1", direct = false }, -- families differ
    -- ports: an entry with a port matches that port only
    { no_proxy = "example.com", host = "example.com", port = 8080, direct = true },
    { no_proxy = "example.com:8080", host = "example.com", port = 8080, direct = true,
      curl = false, why = "curl matches no entry that has a port" },
    { no_proxy = "example.com:8080", host = "example.com", port = 80, direct = false },
    { no_proxy = "127.0.0.1:8080", host = "127.0.0.1", port = 8080, direct = true,
      curl = false, why = "curl matches no entry that has a port" },
    { no_proxy = "[::1]:8080", host = "::1", port = 8080, direct = true,
      curl = false, why = "curl matches no entry that has a port" },
    { no_proxy = "[::1]:8080", host = "::1", port = 8081, direct = false },
    -- empty: nothing is exempt
    { no_proxy = "", host = "localhost", direct = false },
  },

  env = {
    -- lower case wins; upper-case HTTP_PROXY is never read (httpoxy)
    { env = { http_proxy = "http://$A" }, scheme = "http", host = "example.com", want = "http://$A" },
    { env = { HTTP_PROXY = "http://$A" }, scheme = "http", host = "example.com", want = nil },
    { env = { http_proxy = "http://$A", HTTP_PROXY = "http://$B" }, scheme = "http", host = "example.com",
      want = "http://$A" },
    { env = { http_proxy = "http://$A", REQUEST_METHOD = "GET" }, scheme = "http", host = "example.com",
      want = "http://$A" },
    { env = { https_proxy = "http://$A", HTTPS_PROXY = "http://$B" }, scheme = "https", host = "example.com",
      want = "http://$A" },
    { env = { HTTPS_PROXY = "http://$B" }, scheme = "https", host = "example.com", want = "http://$B" },
    -- the scheme's own variable only: http_proxy is not for https
    { env = { http_proxy = "http://$A" }, scheme = "https", host = "example.com", want = nil },
    { env = { https_proxy = "http://$A" }, scheme = "http", host = "example.com", want = nil },
    -- empty counts as unset
    { env = { https_proxy = "", HTTPS_PROXY = "http://$B" }, scheme = "https", host = "example.com",
      want = "http://$B" },
    { env = { http_proxy = "", all_proxy = "http://$B" }, scheme = "http", host = "example.com",
      want = "http://$B" },
    -- all_proxy, then ALL_PROXY, when the scheme has none
    { env = { all_proxy = "http://$A", ALL_PROXY = "http://$B" }, scheme = "http", host = "example.com",
      want = "http://$A" },
    { env = { ALL_PROXY = "http://$B" }, scheme = "https", host = "example.com", want = "http://$B" },
    { env = { http_proxy = "http://$A", all_proxy = "http://$B" }, scheme = "http", host = "example.com",
      want = "http://$A" },
    -- no scheme: an HTTP proxy
    { env = { http_proxy = "$A" }, scheme = "http", host = "example.com", want = "http://$A" },
    -- no_proxy wins over NO_PROXY; an empty no_proxy does not hide NO_PROXY
    { env = { http_proxy = "http://$A", no_proxy = "other.test", NO_PROXY = "example.com" }, scheme = "http",
      host = "example.com", want = "http://$A" },
    { env = { http_proxy = "http://$A", no_proxy = "", NO_PROXY = "example.com" }, scheme = "http",
      host = "example.com", want = nil },
    { env = { http_proxy = "http://$A", NO_PROXY = "example.com" }, scheme = "http", host = "a.example.com",
      want = nil },
    -- WebSocket: ws_proxy, then the http proxy; wss_proxy, then the https one
    -- (curl 8.4+; Debian 12's curl has no WebSocket, so these are unit only)
    { env = { ws_proxy = "http://$A", http_proxy = "http://$B" }, scheme = "ws", host = "example.com",
      want = "http://$A", unit_only = true },
    { env = { WS_PROXY = "http://$A", http_proxy = "http://$B" }, scheme = "ws", host = "example.com",
      want = "http://$A", unit_only = true },
    { env = { http_proxy = "http://$B" }, scheme = "ws", host = "example.com", want = "http://$B", unit_only = true },
    { env = { HTTP_PROXY = "http://$B" }, scheme = "ws", host = "example.com", want = nil, unit_only = true },
    { env = { HTTPS_PROXY = "http://$B" }, scheme = "wss", host = "example.com", want = "http://$B",
      unit_only = true },
    { env = { wss_proxy = "http://$A", https_proxy = "http://$B" }, scheme = "wss", host = "example.com",
      want = "http://$A", unit_only = true },
    { env = { all_proxy = "socks5h://$A" }, scheme = "wss", host = "example.com", want = "socks5h://$A",
      unit_only = true },
    { env = { ws_proxy = "http://$A", no_proxy = "example.com" }, scheme = "ws", host = "example.com", want = nil,
      unit_only = true },
  },
}
