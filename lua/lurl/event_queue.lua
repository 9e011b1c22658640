-- The queue of a connection's events (lurl.conn for HTTP/1.1, each stream
-- of lurl.h2conn): the read side pushes from libuv callbacks and wakes the
-- task waiting in take(), which waits under the request's deadline. A
-- holder has queue (M.new()), reader and reader_seq (the waiting task) and
-- read_at (when its peer last sent a byte).
local new_tab = require "table.new"
local sched = require "lurl.sched"

local M = {}

-- new() -> an empty queue. Its array part has room for a response's usual
-- events (head, body, end) from the start: a queue made empty grows by
-- rehashing at its first, second and third event, and an HTTP/2 stream
-- makes one per request.
function M.new()
  local q = new_tab(4, 2)
  q.head, q.tail = 1, 0
  return q
end

-- push(holder, ev): queue the event; the waiting reader, if any, goes on.
function M.push(holder, ev)
  local q = holder.queue
  q.tail = q.tail + 1
  q[q.tail] = ev
  local t = holder.reader
  if t then
    holder.reader = nil
    sched.wake(t, holder.reader_seq, true)
  end
end

-- take(holder, deadline, ctx) -> the next event, or nil and a timeout
-- error (sock_read counted from holder.read_at: deadline:await_read).
function M.take(holder, deadline, ctx)
  local q = holder.queue
  if q.head > q.tail then
    local ok, err = deadline:await_read(holder, holder, ctx)
    if not ok then return nil, err end
  end
  local ev = q[q.head]
  q[q.head] = nil
  q.head = q.head + 1
  return ev
end

return M
