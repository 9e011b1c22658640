-- Files for tasks: core.fs's callbacks turned into calls that wait (the task
-- parks while libuv's thread pool does the I/O; the loop runs on).
local core = require "lurl.core"
local sched = require "lurl.sched"

local M = {}

-- Start a core.fs operation with start(wake) and wait for its result.
local function wait(start)
  return sched.wait(function(wake)
    local ok, e, en = start(wake)
    if not ok then wake(nil, e, en) end
  end)
end

-- open(path, "r" | "w" | "a") -> file, or nil, "ENAME: message", "ENAME"
function M.open(path, mode)
  return wait(function(wake) return core.fs.open(path, mode, wake) end)
end

-- read(file, size, offset) -> data ("" at the end), or nil, err, ename
function M.read(file, size, offset)
  return wait(function(wake) return file:read(size, offset, wake) end)
end

-- write(file, data, offset) -> bytes written, or nil, err, ename
function M.write(file, data, offset)
  return wait(function(wake) return file:write(data, offset, wake) end)
end

-- stat(path) -> { size, mtime, type }, or nil, err, ename
function M.stat(path)
  return wait(function(wake) return core.fs.stat(path, wake) end)
end

return M
