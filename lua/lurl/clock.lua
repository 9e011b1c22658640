-- Monotonic seconds for deadlines and timings: CLOCK_MONOTONIC, the clock of
-- libuv's uv_hrtime (lurl.core.now). Read through LuaJIT's FFI, so compiled
-- code calls clock_gettime directly; a call to a C function of lurl.core
-- leaves the compiled trace, and a request reads the clock about ten times.
-- Where the FFI declaration cannot be made (not 64-bit Linux, or the name is
-- already declared differently) lurl.core.now serves.
local core = require "lurl.core"
local ffi = require "ffi"

local CLOCK_MONOTONIC = 1 -- <linux/time.h>

local function ffi_clock()
  if ffi.os ~= "Linux" or not ffi.abi("64bit") then return nil end
  local ok = pcall(ffi.cdef, [[
    typedef struct { int64_t tv_sec; int64_t tv_nsec; } lurl_timespec;
    int clock_gettime(int clk_id, lurl_timespec *tp);
  ]])
  if not ok then return nil end
  local ts, C = ffi.new("lurl_timespec"), ffi.C
  return function()
    C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
end

return ffi_clock() or core.now
