-- What the lurl benchmark scripts share. A script loads it from its own
-- directory:
--   local lib = dofile((arg[0]:match("^(.*/)") or "") .. "lib.lua")
local lurl = require "lurl"

local M = {}

-- This process's resident set (VmRSS), in bytes.
function M.vmrss()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+) kB")) * 1024
end

-- Task t's share (1 to conns) of total requests split over conns tasks.
function M.share(total, conns, t)
  return math.floor(total / conns) + (t <= total % conns and 1 or 0)
end

-- Runs fn(t) in tasks t = 1 to conns, all at once, and waits for every one;
-- the first task's error (by t) is raised again.
function M.run_tasks(conns, fn)
  local tasks = {}
  for t = 1, conns do
    tasks[t] = lurl.spawn(function()
      fn(t)
      return true
    end)
  end
  for _, task in ipairs(tasks) do
    local ok, err = task:join()
    if not ok then error(err, 0) end
  end
end

-- GET url on session and read the body: it must be status 200 with len
-- bytes, or this raises an error naming task t's request i. Returns the
-- response.
function M.get(session, url, len, t, i)
  local resp, err = session:get(url)
  if not resp then error(("task %d request %d: %s"):format(t, i, tostring(err)), 0) end
  local body, rerr = resp:read()
  if resp.status ~= 200 or not body or #body ~= len then
    error(("task %d request %d: status %s, %s bytes (%s)"):format(t, i, tostring(resp.status),
      body and #body or "no", tostring(rerr)), 0)
  end
  return resp
end

return M
