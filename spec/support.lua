-- Shared helpers for specs: `local support = require "spec.support"`.
local lurl = require "lurl"
local core = require "lurl.core"
local testing = require "lurl.testing"

local M = {}

-- A loopback test server with the given routes (see lurl.testing.server).
function M.server(routes, opts)
  opts = opts or {}
  opts.routes = routes
  return testing.server(opts)
end

-- A session whose base_url points at server.
function M.session(server, opts)
  opts = opts or {}
  opts.base_url = server:url("/")
  return lurl.session(opts)
end

-- Open file descriptors of this process, for leak checks.
function M.open_fds() return core.open_fds() end

-- Elapsed seconds of fn(...) and its results.
function M.timed(fn, ...)
  local t0 = lurl.now()
  local res = { fn(...) }
  return lurl.now() - t0, unpack(res, 1, table.maxn(res))
end

return M
