-- lurl.testing: tools for specs of lurl scripts and policies.
--   server(opts)  a real HTTP/1.1 (and HTTP/2) server on loopback (lurl.testing.server)
--   proxy(opts)   a forward proxy (HTTP, CONNECT, SOCKS) on loopback (lurl.testing.proxy)
--   mock()        a transport without sockets (lurl.testing.mock)
--   clock(opts)   virtual time for every timer and deadline (lurl.testing.clock)
--   sequence(...) a route answering each answer in turn (lurl.testing.wire)
return {
  sequence = require("lurl.testing.wire").sequence,
  server = require("lurl.testing.server").new,
  proxy = require("lurl.testing.proxy").new,
  mock = require("lurl.testing.mock").new,
  clock = require("lurl.testing.clock").new,
}
