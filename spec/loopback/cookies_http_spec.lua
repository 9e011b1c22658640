-- The cookie parser suites run the way their harness ran them: the server
-- answers GET http://home.example.org:8888/cookie-parser?NAME with a 302
-- carrying the case's header lines, the session follows the redirect to
-- /cookie-parser-result?NAME (or the case's Location), and the server
-- checks the Cookie header it receives. The names in cookies/hosts reach the
-- in-process server through the connector's resolve overrides; the jar runs
-- on a clock set to the suite's time (spec/cookie_suites.lua).
local lurl = require "lurl"
local support = require "spec.support"
local suites = require "spec.cookie_suites"

local PARSER, BIS = suites.PARSER, suites.BIS

-- "127.0.0.1 home.example.org" lines -> { ["home.example.org:8888"] = "127.0.0.1:PORT" }
local function overrides(port)
  local map = {}
  for line in suites.read_file(suites.HTTP_STATE .. "/hosts"):gmatch("[^\n]+") do
    local ip, name = line:match("^(%S+)%s+(%S+)")
    if name and not name:find("%.$") then map[name .. ":8888"] = ip .. ":" .. port end
  end
  return map
end

-- The raw 302 of a case: its header lines as the file has them, a Location
-- to the result page when the case gives none.
local function redirect_for(dir, name)
  local lines, location = {}, false
  for line in suites.read_file(dir .. "/" .. name .. "-test"):gmatch("[^\n]+") do
    lines[#lines + 1] = line
    location = location or line:lower():find("^location:") ~= nil
  end
  if not location then lines[#lines + 1] = "Location: /cookie-parser-result?" .. name end
  return "HTTP/1.1 302 Found\r\n" .. table.concat(lines, "\r\n") .. "\r\nContent-Length: 0\r\n\r\n"
end

-- Cases whose response is not valid HTTP: a NUL or a bare CR in a field
-- value (RFC 9110 section 5.5; RFC 9112 section 2.2). The HTTP parser
-- rejects the response, so no cookie is set; Chromium had disabled them too.
-- At the jar level (spec/unit/cookies_spec.lua) they pass.
local INVALID_FIELD = "not HTTP: a NUL or bare CR in a field value is refused (RFC 9110 5.5)"
local REJECTED = {
  ["disabled-chromium0022"] = INVALID_FIELD .. " (NUL)",
  ["disabled-chromium0023"] = INVALID_FIELD .. " (CR)",
}

describe("cookie parser suites over HTTP", function()
  local server, received, dir

  setup(function()
    server = support.server({
      ["*"] = function(req)
        if req.path == "/cookie-parser" then return { raw = redirect_for(dir, req.query) } end
        received = req.headers["cookie"]
        return "ok"
      end,
    })
  end)
  teardown(function() server:close() end)

  -- run(case) for the suite in suite_dir: a fresh session and jar per case.
  local function runner(suite_dir)
    return function(case)
      received, dir = nil, suite_dir
      local s = lurl.session {
        cookie_jar = lurl.cookie_jar { clock = function() return suites.SUITE_TIME end },
        connector = lurl.connector { resolve = overrides(server.port) },
      }
      local resp, err = s:get(case.base)
      s:close()
      assert(resp, tostring(err))
      assert.are.equal(200, resp.status, case.name)
      assert.are.equal(1, #resp.history, case.name)
      return received
    end
  end

  suites.suite("http-state parser over HTTP", PARSER, {}, nil, runner(PARSER), REJECTED)
  suites.suite("6265bis parser over HTTP", BIS, suites.BIS_SKIPS, PARSER, runner(BIS), REJECTED)
end)
