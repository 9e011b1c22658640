-- lurl.cli.input: the URLs of a fetch run, read one at a time (a list of
-- millions never sits in memory): the arguments, then --input FILE; "-" in
-- either place is standard input. One URL a line; blank lines and lines
-- starting with # are skipped, blanks around a URL dropped.
local M = {}

-- The URL a line holds, or nil for a blank line or a comment.
function M.url_of(line)
  local u = line:match("^%s*(.-)%s*$")
  if u == "" or u:byte(1) == 35 then return nil end -- 35: #
  return u
end

-- The sources in order: { list = {...} } for arguments, { path = p } for a
-- file ("-": standard input).
local function sources(o)
  local out, args = {}, {}
  for _, u in ipairs(o.urls) do
    if u == "-" then
      if #args > 0 then out[#out + 1] = { list = args }; args = {} end
      out[#out + 1] = { path = "-" }
    else
      args[#args + 1] = u
    end
  end
  if #args > 0 then out[#out + 1] = { list = args } end
  if o.input then out[#out + 1] = { path = o.input } end
  return out
end

-- open(o, stdin) -> the sources with their files open, or nil and a message
-- naming the file that cannot be read. With no URL and no --input, stdin.
function M.open(o, stdin)
  local list = sources(o)
  if #list == 0 then list[1] = { path = "-" } end
  for _, s in ipairs(list) do
    if s.path == "-" then
      s.file = stdin
    elseif s.path then
      local f, err = io.open(s.path, "rb")
      if not f then return nil, "cannot read the URL list: " .. err end
      s.file, s.owned = f, true
    end
  end
  return list
end

-- The next raw line or argument of one source, or nil at its end.
local function reader(s)
  if s.list then
    local i = 0
    return function()
      i = i + 1
      return s.list[i]
    end
  end
  return s.file:lines()
end

-- urls(list, keep) -> an iterator over the URLs keep(url) accepts, source
-- after source; each file is closed at its end.
function M.urls(list, keep)
  local k, next_line = 0, nil
  return function()
    while true do
      if not next_line then
        k = k + 1
        local s = list[k]
        if not s then return nil end
        next_line = reader(s)
      end
      local line = next_line()
      if line == nil then
        if list[k].owned then list[k].file:close() end
        next_line = nil
      else
        local u = M.url_of(line)
        if u and keep(u) then return u end
      end
    end
  end
end

-- count(o, keep) -> how many URLs the run will take, or nil when standard
-- input is among the sources (it can be read once only). A file is read
-- twice: counting 100,000 lines takes milliseconds and buys an ETA.
function M.count(o, keep)
  local list, n = sources(o), 0
  if #list == 0 then return nil end
  for _, s in ipairs(list) do
    if s.path == "-" then return nil end
    local f = s.path and io.open(s.path, "rb")
    if s.path and not f then return nil end
    for _ in M.urls({ { list = s.list, file = f, owned = f ~= nil } }, keep) do n = n + 1 end
  end
  return n
end

return M
