-- lurl's WebSocket client against spec/interop/ws_fuzzingserver.py (a work-alike
-- of the Autobahn|Testsuite fuzzingserver; the real one takes the same URLs).
-- Run by spec/ws_conformance_test.sh as
--   lurl spec/interop/ws_fuzzing_client.lua ws://127.0.0.1:PORT [agent]
-- For every case: ws_connect to /runCase, then echo each text and binary
-- message back with its type until the connection closes or fails, with the
-- autoping and autoclose defaults. Sections 12 and 13 (permessage-deflate)
-- connect with compress on, the others with it off. The server judges the
-- cases; /updateReports has it write its report. Exits non-zero only when
-- the runner itself cannot go on (no server, no case count).
local lurl = require "lurl"

local base, agent = ...
assert(base and base:match("^ws://"), "usage: lurl ws_fuzzing_client.lua ws://host:port [agent]")
agent = agent or "lurl"

local session = lurl.session()
-- The server ends every case within its own timers (10 s at most); these
-- only keep a hung case from hanging the whole run.
local TIMEOUT = lurl.ws_timeout { ws_receive = 30, ws_close = 5 }
local DEFLATE_SECTIONS = { ["12"] = true, ["13"] = true }

-- One text message from an endpoint around the cases (/getCaseCount,
-- /getCaseInfo), or nil, err.
local function ask(path)
  local ws, err = session:ws_connect(base .. path, { compress = false, timeout = TIMEOUT })
  if not ws then return nil, err end
  local text
  text, err = ws:receive_str()
  ws:close()
  return text, err
end

local function echo(ws)
  for msg in ws:messages() do
    if msg.type == "text" then
      ws:send_str(msg.data)
    elseif msg.type == "binary" then
      ws:send_bytes(msg.data)
    end
  end
end

local function run_case(i)
  local info, err = ask("/getCaseInfo?case=" .. i)
  local id = info and info:match('"id": "([%d.]+)"')
  if not id then
    io.stderr:write(("case %d: no case info: %s\n"):format(i, tostring(err or info)))
    return false
  end
  local url = ("%s/runCase?case=%d&agent=%s"):format(base, i, agent)
  local compress = DEFLATE_SECTIONS[id:match("^%d+")] and 15 or false
  local ws
  ws, err = session:ws_connect(url, { compress = compress, timeout = TIMEOUT })
  if not ws then
    io.stderr:write(("case %s: ws_connect failed: %s\n"):format(id, tostring(err)))
    return true
  end
  echo(ws)
  return true
end

local count_text, err = ask("/getCaseCount")
local count = tonumber(count_text)
if not count then
  io.stderr:write("no case count from " .. base .. ": " .. tostring(err or count_text) .. "\n")
  os.exit(1)
end
local started = os.time()
for i = 1, count do
  if not run_case(i) then os.exit(1) end
end
-- /updateReports sends no message: it writes the report and closes
local ws
ws, err = session:ws_connect(base .. "/updateReports?agent=" .. agent, { compress = false, timeout = TIMEOUT })
if not ws then
  io.stderr:write("updateReports: " .. tostring(err) .. "\n")
  os.exit(1)
end
echo(ws)
print(("%d cases run in about %d s"):format(count, os.time() - started))
session:close()
