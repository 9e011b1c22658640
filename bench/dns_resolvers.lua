-- One run of bench/dns_resolvers.sh: N distinct names resolved at once by
-- one of lurl's resolvers, through the DNS cache a connector uses (cold).
--   lurl bench/dns_resolvers.lua KIND N PREFIX
-- KIND "threaded" or "ares"; the names are PREFIX-h1.bench.test ...
-- Prints: KIND seconds cpu_seconds resolved
local lurl = require "lurl"
local dns = require "lurl.dns"
local timeout = require "lurl.timeout"

local kind, n, prefix = arg[1], tonumber(arg[2]), arg[3]
local cache = dns.new { enabled = true, ttl = 60, max = n, resolver = dns.resolver(kind) }
local deadline = timeout.start(lurl.timeout { total = 60 })
local names = {}
for i = 1, n do names[i] = ("%s-h%d.bench.test"):format(prefix, i) end

local t0, c0, ok = lurl.now(), os.clock(), 0
for _, addrs in lurl.map(names, function(name) return cache:resolve(name, 80, 0, deadline) end,
  { concurrency = n }) do
  if addrs then ok = ok + 1 end
end
print(("%s %.3f %.3f %d"):format(kind, lurl.now() - t0, os.clock() - c0, ok))
