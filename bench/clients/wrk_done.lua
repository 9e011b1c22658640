-- wrk -s: at the end, wrk's count of requests, its duration and its errors
-- (connect, read, write, timeout and status >= 400) as one JSON line.
-- luacheck: globals done
function done(summary)
  local e = summary.errors
  io.write(('{"requests":%d,"seconds":%.6f,"errors":%d}\n'):format(summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout + e.status))
end
