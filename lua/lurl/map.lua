-- lurl.map: fn(item) over many items on a fixed pool of worker tasks, the
-- results handed out as they finish (or in input order), with memory that
-- stays flat however many items there are: items are pulled as workers get
-- free, and finished results wait for the consumer in a queue no longer than
-- the pool (a worker with a result waits while the queue is full).
--
--   for item, res, err in lurl.map(io.lines("urls.txt"), check_url, { concurrency = 200 }) do ... end
--
-- fn(item) returns res or nil, err; an error it raises is that item's err.
-- The object is its own iterator; m:cancel() stops the workers (after a
-- break), and a consumer cancelled while it waits cancels them too.
local check = require "lurl.check"
local sched = require "lurl.sched"

local M = {}

local Map = {}
local mt = { __name = "lurl.map", __index = Map }
function mt.__tostring(m)
  return ("lurl.map (%d done, %d running%s)"):format(m.done, m.running, m.cancelled and ", cancelled" or "")
end

local OPTIONS = { concurrency = "number", ordered = "boolean", progress = "function" }

-- The next item, or nil at the end: items is a list or an iterator. An
-- iterator is not called again once it ended (io.lines raises then, and
-- every worker asks once more).
local function source(items)
  if type(items) == "function" then
    local ended = false
    return function()
      if ended then return nil end
      local item = items()
      if item == nil then ended = true end
      return item
    end
  end
  local i = 0
  return function()
    i = i + 1
    return items[i]
  end
end

local function wake(m)
  local t = m.consumer
  if t then
    m.consumer = nil
    sched.wake(t, m.consumer_seq, true)
  end
end

local function wake_worker(m)
  local w = table.remove(m.blocked, 1)
  if w then sched.wake(w[1], w[2], true) end
end

-- Room in the output for result number n: unordered, the queue is not full;
-- ordered, n is within the pool's reach of the next one to hand out.
local function has_room(m, n)
  if m.ordered then return n < m.next_out + m.concurrency end
  return m.queued < m.concurrency
end

local function deliver(m, n, item, res, err)
  while not has_room(m, n) and not m.cancelled do
    local task, seq = sched.prepare()
    m.blocked[#m.blocked + 1] = { task, seq }
    sched.park(task)
  end
  m.out[n] = { item, res, err }
  m.queued = m.queued + 1
  m.done = m.done + 1
  if m.progress then m.progress(m.done) end
  wake(m)
end

local function call(fn, item)
  local ok, res, err = pcall(fn, item)
  if not ok then return nil, res end
  return res, err
end

local function worker(m)
  while not m.cancelled do
    local item = m.next_item()
    if item == nil then break end
    m.taken = m.taken + 1
    local n = m.taken
    m.running = m.running + 1
    local res, err = call(m.fn, item)
    m.running = m.running - 1
    deliver(m, n, item, res, err)
  end
  m.workers_left = m.workers_left - 1
  wake(m)
end

-- The next finished result's key in m.out, or nil when none is ready.
local function ready(m)
  if m.ordered then return m.out[m.next_out] and m.next_out or nil end
  return next(m.out)
end

local function take(m, k)
  local r = m.out[k]
  m.out[k] = nil
  m.queued = m.queued - 1
  if m.ordered then m.next_out = m.next_out + 1 end
  wake_worker(m)
  return r[1], r[2], r[3]
end

-- The iterator: item, res, err for each item, then nil.
function mt.__call(m)
  while true do
    local k = ready(m)
    if k then return take(m, k) end
    if m.workers_left == 0 or m.cancelled then return nil end
    local task, seq = sched.prepare()
    m.consumer, m.consumer_seq = task, seq
    local ok, err = pcall(sched.park, task)
    if not ok then
      m.consumer = nil
      m:cancel()
      error(err, 0)
    end
  end
end

-- Stop: no new item is started, the running ones are cancelled.
function Map:cancel()
  if self.cancelled then return end
  self.cancelled = true
  for _, t in ipairs(self.tasks) do t:cancel() end
  self.blocked = {}
end

-- map(items, fn[, { concurrency = 100, ordered = false, progress = fn(done) }])
function M.map(items, fn, opts)
  if type(items) ~= "table" and type(items) ~= "function" then
    check.argerror("map", "#1", "list or iterator function expected, got " .. type(items))
  end
  check.func("map", "#2", fn)
  opts = check.options("map", "#3", opts or {}, OPTIONS)
  local n = opts.concurrency or 100
  if n < 1 or n % 1 ~= 0 then check.argerror("map", "'concurrency'", "integer >= 1 expected, got " .. n) end
  local m = setmetatable({
    fn = fn, next_item = source(items), concurrency = n, ordered = opts.ordered or false,
    progress = opts.progress, out = {}, queued = 0, next_out = 1, taken = 0, done = 0, running = 0,
    blocked = {}, tasks = {}, workers_left = n, cancelled = false,
  }, mt)
  for i = 1, n do m.tasks[i] = sched.spawn(worker, m) end
  return m
end

return M
