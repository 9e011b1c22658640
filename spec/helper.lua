-- busted --helper: loaded before every spec file (see spec/CMakeLists.txt).
-- A run-wide watchdog: a spec that hangs fails with a message instead of
-- waiting for CTest's kill. The timer is unreferenced so it never keeps the
-- loop alive by itself.
local core = require "lurl.core"

local limit = tonumber(os.getenv("LURL_SPEC_TIMEOUT") or "") or 180
local watchdog = core.timer()
watchdog:ref(false)
watchdog:start(limit, function()
  io.stderr:write(("spec run exceeded %d seconds: aborting\n"):format(limit))
  os.exit(1)
end)
