-- lurl.cli.progress: the fetch command's counts and what it tells on
-- standard error while it runs: on a terminal one line redrawn a few times
-- a second (done/total, rate, ETA, counts by status class and error kind),
-- otherwise a plain line every --interval seconds (a log stays short); and
-- a summary at the end. Standard output carries nothing of this.
local core = require "lurl.core"

local M = {}

local Progress = {}
local mt = { __name = "lurl.cli.progress", __index = Progress }

local CLASSES = { "1xx", "2xx", "3xx", "4xx", "5xx" }

-- new{ total, stream, tty, interval, quiet }: total may be nil (unknown).
function M.new(o)
  return setmetatable({
    total = o.total, stream = o.stream, tty = o.tty, quiet = o.quiet,
    interval = o.interval or (o.tty and 0.25 or 10),
    started = core.now(), done = 0, failed = 0, classes = {}, kinds = {}, timer = false, shown = false,
  }, mt)
end

-- add(rec): one URL's line counted, under its error kind when it failed
-- (a body cut short fails too), else under its status class.
function Progress:add(rec)
  self.done = self.done + 1
  if rec.error then
    self.failed = self.failed + 1
    self.kinds[rec.error.kind] = (self.kinds[rec.error.kind] or 0) + 1
  else
    local class = CLASSES[math.floor(rec.status / 100)] or "other"
    self.classes[class] = (self.classes[class] or 0) + 1
  end
end

local function duration(s)
  local floor = math.floor
  if s >= 3600 then return ("%dh%02dm"):format(floor(s / 3600), floor(s % 3600 / 60)) end
  if s >= 60 then return ("%dm%02ds"):format(floor(s / 60), floor(s % 60)) end
  return ("%.1fs"):format(s)
end

-- "2xx 800, 4xx 12" then "failed 3 (ConnectionTimeoutError 2, ...)".
function Progress:counts()
  local parts = {}
  for _, c in ipairs(CLASSES) do
    if self.classes[c] then parts[#parts + 1] = ("%s %d"):format(c, self.classes[c]) end
  end
  if self.classes.other then parts[#parts + 1] = ("other %d"):format(self.classes.other) end
  if self.failed > 0 then
    local kinds = {}
    for k, n in pairs(self.kinds) do kinds[#kinds + 1] = { k, n } end
    table.sort(kinds, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
    for i, kn in ipairs(kinds) do kinds[i] = kn[1] .. " " .. kn[2] end
    parts[#parts + 1] = ("failed %d (%s)"):format(self.failed, table.concat(kinds, ", "))
  end
  return table.concat(parts, ", ")
end

function Progress:status_line()
  local elapsed = core.now() - self.started
  local rate = elapsed > 0 and self.done / elapsed or 0
  local head = self.total and ("%d/%d"):format(self.done, self.total) or tostring(self.done)
  local eta = ""
  if self.total and rate > 0 then eta = " ETA " .. duration((self.total - self.done) / rate) end
  return ("%s %.0f/s%s %s"):format(head, rate, eta, self:counts())
end

function Progress:show()
  if self.tty then
    self.stream:write("\r\27[K", self:status_line())
    self.shown = true
  else
    self.stream:write("lurl: ", self:status_line(), "\n")
  end
end

-- start(): the periodic display (none with -q). The timer does not keep
-- the loop alive.
function Progress:start()
  if self.quiet or self.interval <= 0 then return end
  local t = core.timer()
  t:ref(false)
  local function tick()
    self:show()
    t:start(self.interval, tick)
  end
  t:start(self.interval, tick)
  self.timer = t
end

-- finish(interrupted): the display stops and the summary follows.
function Progress:finish(interrupted)
  if self.timer then self.timer:close() end
  if self.quiet then return end
  if self.shown then self.stream:write("\r\27[K") end
  local elapsed = core.now() - self.started
  local of = self.total and (" of %d"):format(self.total) or ""
  self.stream:write(("lurl: %s%d%s URLs in %s (%.0f/s): %s\n"):format(interrupted and "interrupted after " or "",
    self.done, of, duration(elapsed), elapsed > 0 and self.done / elapsed or 0, self:counts()))
end

return M
