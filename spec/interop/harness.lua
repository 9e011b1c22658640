-- Tiny check harness shared by the interop clients (loaded with dofile, so it
-- needs no package path). Each check runs in pcall: one failure is reported
-- and counted, the others still run. finish() prints "N passed, N failed"
-- and raises when anything failed, so lurl exits non-zero.
local H = { passed = 0, failed = 0 }

function H.check(name, fn)
  local ok, err = pcall(fn)
  if ok then
    H.passed = H.passed + 1
    print("ok   " .. name)
  else
    H.failed = H.failed + 1
    print("FAIL " .. name .. ": " .. tostring(err))
  end
end

-- args(...) -> the script's key=value arguments as a table.
function H.args(...)
  local opts = {}
  for _, a in ipairs { ... } do
    local k, v = a:match("^([%w_]+)=(.*)$")
    assert(k, "key=value expected, got " .. a)
    opts[k] = v
  end
  return opts
end

-- eq(got, want, what): error with both values shown when they differ.
function H.eq(got, want, what)
  if got ~= want then
    local function show(v)
      if type(v) == "string" and #v > 120 then return ("<%d bytes>"):format(#v) end
      return type(v) == "string" and ("%q"):format(v) or tostring(v)
    end
    error(("%s: got %s, want %s"):format(what or "value", show(got), show(want)), 2)
  end
end

-- ok(resp, err): the response, or an error naming err.
function H.ok(resp, err)
  if not resp then error("request failed: " .. tostring(err), 2) end
  return resp
end

-- Seven requests on session s to a server that closes a connection after
-- three (keepalive_requests 3): get(n) makes request n and returns its
-- connection's id, its number on that connection and anything for
-- each(n, number, extra), the caller's own checks. Requests 1-3, 4-6 and 7
-- must have gone on three connections, none left in the pool after a third.
function H.three_per_connection(s, get, each)
  local seen = {}
  for n = 1, 7 do
    local conn, number, extra = get(n)
    H.eq(number, (n - 1) % 3 + 1, "connection_requests of request " .. n)
    seen[n] = conn
    if each then each(n, number, extra) end
    if number == 3 then
      -- the server said Connection: close: nothing may stay in the pool
      H.eq(s.connector:stats().idle, 0, "idle after the last request on a connection")
    end
  end
  assert(seen[1] == seen[3] and seen[4] == seen[6] and seen[1] ~= seen[4] and seen[4] ~= seen[7],
    "connections: " .. table.concat(seen, " "))
end

-- Adler-32 of a string, or fed incrementally: local a = H.adler(); a:update(s); a:digest()
local function adler_update(st, s)
  local a, b = st.a, st.b
  local byte = string.byte
  local n = #s
  local i = 1
  while i <= n do
    local stop = i + 3799 -- stays far below 2^53 between reductions
    if stop > n then stop = n end
    for j = i, stop do
      a = a + byte(s, j)
      b = b + a
    end
    a, b = a % 65521, b % 65521
    i = stop + 1
  end
  st.a, st.b, st.len = a, b, st.len + n
  return st
end
function H.adler(s)
  local st = { a = 1, b = 0, len = 0, update = adler_update,
               digest = function(t) return t.b * 65536 + t.a end }
  if s then adler_update(st, s) end
  return st
end

function H.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function H.finish(label)
  print(("%s: %d passed, %d failed"):format(label, H.passed, H.failed))
  if H.failed > 0 then error(("%s: %d check(s) failed"):format(label, H.failed), 0) end
end

return H
