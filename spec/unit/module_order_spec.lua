-- The module order that docs/internals.md states ("Module order") holds in
-- the code: every require in lua/lurl/ points to a row below its own
-- module's (the families of row 2 may also require their own members).
local function rows()
  local f = assert(io.open("docs/internals.md"))
  local text = f:read("*a")
  f:close()
  local section = assert(text:match("\n## Module order\n(.-)\n## "), "docs/internals.md has no Module order")
  local row_of = {}
  for n, cells in section:gmatch("\n| (%d+) | ([^\n]+) |") do
    for name in cells:gmatch("`(lurl[%w_.]*)`") do row_of[name] = tonumber(n) end
    for family in cells:gmatch("`(lurl%.%w+)%.%*`") do row_of[family .. ".*"] = tonumber(n) end
  end
  return row_of
end

local function module_files()
  local list = {}
  local p = assert(io.popen("find lua/lurl -name '*.lua' | sort"))
  for path in p:lines() do
    local name = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    list[#list + 1] = { path = path, name = name }
  end
  p:close()
  return list
end

describe("module order", function()
  local row_of = rows()

  -- lurl.policy for lurl.policy.retry, and for lurl.policy (its init) too
  local function family(name)
    return name:match("^(lurl%.%w+)%.") or (row_of[name .. ".*"] and name)
  end

  local function row(name)
    return row_of[name] or (family(name) and row_of[family(name) .. ".*"])
  end

  it("names every module of lua/lurl in docs/internals.md", function()
    for _, m in ipairs(module_files()) do
      assert(row(m.name), m.name .. " has no row in docs/internals.md's Module order")
    end
  end)

  it("has every require point down", function()
    local bad = {}
    for _, m in ipairs(module_files()) do
      local f = assert(io.open(m.path))
      local src = f:read("*a")
      f:close()
      local own = row(m.name)
      for dep in src:gmatch("require%s*%(?%s*[\"'](lurl[%w_.]*)[\"']") do
        local below = row(dep)
        local same_family = family(m.name) and family(m.name) == family(dep)
        if not same_family and not (below and below > own) then
          bad[#bad + 1] = ("%s (row %s) requires %s (row %s)"):format(m.name, own, dep, tostring(below))
        end
      end
    end
    assert.are.same({}, bad)
  end)
end)
