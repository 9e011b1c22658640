-- The cookie parser suites (spec/vectors/cookies): reading the
-- cases, the RFC 6265bis cases whose expectations are not RFC 6265's, and a
-- busted runner that counts and prints the passes. Used by the jar-level
-- spec (spec/unit/cookies_spec.lua) and the HTTP harness (cookies_http_spec.lua).
local lfs = require "lfs"
local url = require "lurl.url"

local M = {}

-- http-state's own suite (RFC 6265) with its dates and hosts, and the
-- web-platform-tests copy rewritten for RFC 6265bis (see spec/vectors/README.md).
M.HTTP_STATE = "spec/vectors/cookies/http-state"
M.PARSER = M.HTTP_STATE .. "/parser"
M.BIS = "spec/vectors/cookies/wpt-rfc6265bis-2020"

-- Every parser case runs at this instant (2012-01-01T00:00:00Z): the suite
-- was written around 2011, and Expires dates that must still be ahead have
-- passed since (http-state 0002, comma0006 and comma0007: 2019; the 2027
-- dates of 0003, chromium0016/0017 will be next).
M.SUITE_TIME = 1325376000

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

local function trim(s) return (s:gsub("^[ \t]+", ""):gsub("[ \t]+$", "")) end
M.trim = trim

-- NAME-test: the header lines of the 302 from /cookie-parser?NAME. Field
-- values are trimmed of surrounding whitespace, as an HTTP parser hands them
-- over; a CR inside a line stays (disabled-chromium0023).
function M.read_case(dir, name)
  local base = "http://home.example.org:8888/cookie-parser?" .. name
  local target = "http://home.example.org:8888/cookie-parser-result?" .. name
  local values = {}
  for line in read_file(dir .. "/" .. name .. "-test"):gmatch("[^\n]+") do
    local field, value = line:match("^([%w-]+):(.*)$")
    if field and field:lower() == "set-cookie" then
      values[#values + 1] = trim(value)
    elseif field and field:lower() == "location" then
      target = url.tostring(assert(url.join(base, trim(value))))
    end
  end
  -- NAME-expected holds the "Cookie:" line, or nothing. http-state's
  -- 0028-expected wrongly holds two Set-Cookie lines and no Cookie line;
  -- parser.json (sent: []) confirms that nothing is expected there.
  local expected = read_file(dir .. "/" .. name .. "-expected"):match("^Cookie: ([^\n]*)")
  return { name = name, base = base, target = target, values = values, expected = expected }
end

function M.case_names(dir)
  local names = {}
  for f in lfs.dir(dir) do
    local n = f:match("^(.*)%-test$")
    if n then names[#names + 1] = n end
  end
  table.sort(names)
  return names
end

-- RFC 6265bis cases whose expectations are not RFC 6265's. Each of them is
-- still run, and must give RFC 6265's answer: what the http-state suite
-- (written for RFC 6265) expects for the same case.
local NAMELESS = "nameless cookies: 6265bis 5.6 step 3 keeps cookies without a name; "
  .. "RFC 6265 5.2 steps 2 and 5 ignore them"
M.BIS_SKIPS = {
  ["0004"] = NAMELESS .. " ('foo' has no '=')",
  ["0021"] = NAMELESS .. " ('=x' has an empty name)",
  ["0023"] = NAMELESS .. " ('foo' has no '=')",
  ["0024"] = NAMELESS .. " ('foo' has no '='; '=' is empty)",
  ["0025"] = NAMELESS .. " ('foo' has no '=')",
  ["0026"] = NAMELESS .. " ('foo' has no '=')",
  ["0027"] = NAMELESS .. " ('foo', 'bar' have no '=')",
  ["0028"] = NAMELESS .. " ('foo' has no '=')",
  chromium0009 = NAMELESS .. " ('BLAHHH' has no '=')",
  chromium0010 = NAMELESS .. " ('\"BLA\\\"HHH\"' has no '=')",
  chromium0012 = NAMELESS .. " ('=ABC' has an empty name)",
  mozilla0012 = NAMELESS .. " ('five' has no '=')",
  mozilla0014 = NAMELESS .. " ('six' has no '=')",
  mozilla0015 = NAMELESS .. " ('six', 'seven' have no '=')",
  mozilla0016 = NAMELESS .. " ('=eight' has an empty name)",
  mozilla0017 = NAMELESS .. " ('=eight' has an empty name)",
  name0017 = NAMELESS .. " ('=a=bar' has an empty name)",
  name0023 = NAMELESS .. " ('foo' before ';' has no '=')",
  name0025 = NAMELESS .. " ('===a=bar' has an empty name)",
  name0028 = NAMELESS .. " ('=a' has an empty name)",
  name0031 = NAMELESS .. " ('\"foo' before ';' has no '=')",
  name0032 = NAMELESS .. " ('\"foo\\\"bar' before ';' has no '=')",
  name0033 = NAMELESS .. " ('=foo=bar' has an empty name, 'aaa' no '=')",
  -- web-platform-tests rewrote this expectation for its own resource paths:
  -- the last Path (/cookie-parser-result) path-matches the result URL here
  -- under RFC 6265 and 6265bis alike (5.2.4 / 5.4.4: the last Path wins).
  attribute0023 = "harness artifact: WPT expects no cookie because its result page is not under /cookie-parser-result",
}

local function skip_summary(skips)
  local by_reason, order = {}, {}
  for _, why in pairs(skips) do
    local key = why:match("^[^(]*") -- the reason without the per-case detail
    if not by_reason[key] then by_reason[key] = 0; order[#order + 1] = key end
    by_reason[key] = by_reason[key] + 1
  end
  table.sort(order)
  local parts = {}
  for _, k in ipairs(order) do parts[#parts + 1] = ("%d %s"):format(by_reason[k], trim(k)) end
  return table.concat(parts, "; ")
end

-- suite(label, dir, skips, rfc6265_dir, run[, rejected]): one busted case
-- per parser case; run(case) gives the Cookie header sent (nil: none). A
-- skipped case must give RFC 6265's answer (the same case in rfc6265_dir).
-- rejected: name -> why the transport refuses the case's response; run must
-- raise for it.
function M.suite(label, dir, skips, rfc6265_dir, run, rejected)
  -- busted's it and assert live in the calling spec file's environment
  local env = getfenv(2)
  local it, assert = env.it, env.assert
  rejected = rejected or {}
  local names = M.case_names(dir)
  local passed, skipped = 0, 0
  for _, name in ipairs(names) do
    local case = M.read_case(dir, name)
    if rejected[name] then
      it(("%s %s (rejected: %s)"):format(label, name, rejected[name]), function()
        skipped = skipped + 1
        assert.is_false(pcall(run, case), name .. " was not rejected")
      end)
    elseif skips[name] then
      it(("%s %s (skipped: %s)"):format(label, name, skips[name]), function()
        skipped = skipped + 1
        local rfc = M.read_case(rfc6265_dir, name)
        local got = run(case)
        assert.are_not.equal(case.expected, got)
        assert.equal(rfc.expected, got)
      end)
    else
      it(("%s %s"):format(label, name), function()
        assert.equal(case.expected, run(case),
          name .. ": " .. table.concat(case.values, " | ") .. " -> " .. case.target)
        passed = passed + 1
      end)
    end
  end
  it(label .. ": every case not on the skip list passed", function()
    local all, nskips = {}, 0
    for _, name in ipairs(names) do
      all[name] = rejected[name] or skips[name]
      if all[name] then nskips = nskips + 1 end
    end
    print(("\n%s: %d of %d pass (%d skipped%s)"):format(label, passed, #names, skipped,
      nskips > 0 and (": " .. skip_summary(all)) or ""))
    assert.equal(#names - nskips, passed)
    assert.equal(nskips, skipped)
  end)
  return names
end

return M
