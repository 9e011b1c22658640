-- lurl.netrc: credentials for a host from a .netrc file, which a session
-- reads when it trusts the environment (trust_env), read the way curl 7.88
-- reads it:
--   M.parse(text)                  -> list of entries, or nil, err
--   M.load([path[, getenv]])       -> list of entries ({} without a usable file)
--   M.credentials(entries, host)   -> login, password; or nil
--   M.lookup(host[, path[, getenv]]) -> load and credentials in one
-- An entry is { machine = name } or { default = true }, with login,
-- password and account when the file gives them.
--
-- The file is whitespace-separated tokens: "machine NAME" or "default"
-- starts an entry; "login", "password" and "account" take the next token
-- as their value (on this line or a later one), the first one given counts;
-- "macdef NAME" skips its line and the macro's lines up to an empty one.
-- Other tokens are skipped. A token that starts with '#' makes the rest of
-- its line a comment, even where a value was due ("password #x" leaves the
-- password to the next token, as curl does). A token that starts with '"'
-- runs to the next unescaped '"' and may hold spaces; in it \n, \r and \t
-- are control characters and a backslash takes any other character as it
-- is (curl 7.84+). A quote that is never closed makes the whole file
-- unusable, as curl treats it.
local M = {}

local ESCAPES = { n = "\n", r = "\r", t = "\t" }

-- The quoted token at line[i] (a '"'): its text and the index after it, or
-- nil when the line ends first.
local function quoted(line, i)
  local out, j = {}, i + 1
  while j <= #line do
    local c = line:sub(j, j)
    if c == '"' then return table.concat(out), j + 1 end
    if c == "\\" and j < #line then
      j = j + 1
      c = line:sub(j, j)
      c = ESCAPES[c] or c
    end
    out[#out + 1] = c
    j = j + 1
  end
  return nil
end

-- The tokens of one line appended to list; nil, err for an open quote.
local function line_tokens(line, list, lineno)
  local i = 1
  while true do
    i = line:find("[^ \t\r\f\v]", i)
    if not i then return list end
    local c = line:sub(i, i)
    if c == "#" then return list end
    local tok
    if c == '"' then
      tok, i = quoted(line, i)
      if not tok then return nil, ("unterminated quoted token on line %d"):format(lineno) end
    else
      local e = line:find("[ \t\r\f\v]", i) or #line + 1
      tok, i = line:sub(i, e - 1), e
    end
    list[#list + 1] = tok
  end
end

local VALUE_KEYS = { login = true, password = true, account = true }

-- parse(text) -> { entry, ... } in file order, or nil, err.
function M.parse(text)
  local entries, current, pending_key = {}, nil, nil
  local in_macro, skip_name = false, false
  local lineno = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    if in_macro then
      -- a macro body ends at an empty line (a line of blanks is body)
      in_macro = not (line == "" or line == "\r")
    else
      local toks, err = line_tokens(line, {}, lineno)
      if not toks then return nil, err end
      for _, tok in ipairs(toks) do
        if skip_name then
          break
        elseif pending_key then
          if current and current[pending_key] == nil then current[pending_key] = tok end
          pending_key = nil
        elseif current and current.machine == false then
          current.machine = tok
        else
          local kw = tok:lower()
          if kw == "machine" then
            current = { machine = false }
            entries[#entries + 1] = current
          elseif kw == "default" then
            current = { default = true }
            entries[#entries + 1] = current
          elseif VALUE_KEYS[kw] then
            pending_key = kw
          elseif kw == "macdef" then
            skip_name, in_macro = true, true
          end
        end
      end
      skip_name = false
    end
  end
  return entries
end

local function has_credentials(e) return e.login ~= nil or e.password ~= nil end

-- The first machine entry for host that names a login or a password (curl
-- goes past one that names neither), else the default entry. Names compare
-- case-insensitively and as they are written otherwise: no trailing-dot or
-- bracket folding, as curl.
local function find(entries, host)
  host = host:lower()
  local default
  for _, e in ipairs(entries) do
    if e.default then
      default = default or (has_credentials(e) and e)
    elseif e.machine and e.machine:lower() == host and has_credentials(e) then
      return e
    end
  end
  return default
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- The file to read: path, else $NETRC, else $HOME/.netrc; nil without HOME.
local function file_path(path, getenv)
  if path then return path end
  local env = getenv("NETRC")
  if env and env ~= "" then return env end
  local home = getenv("HOME")
  if home and home ~= "" then return home .. "/.netrc" end
  return nil
end

-- load([path[, getenv]]) -> the entries of the file, or {} when it is
-- missing, unreadable or malformed (a missing file is the usual case, not
-- an error). A session loads it once, as it starts (blocking io.open on a
-- small local file).
function M.load(path, getenv)
  path = file_path(path, getenv or os.getenv)
  local text = path and read_all(path)
  return text and M.parse(text) or {}
end

-- credentials(entries, host) -> login, password ("" for the one the entry
-- leaves out), or nil when the entries name neither for host and have no
-- default.
function M.credentials(entries, host)
  local e = host and find(entries, host)
  if not e then return nil end
  return e.login or "", e.password or ""
end

-- lookup(host[, path[, getenv]]) -> load and credentials in one call.
function M.lookup(host, path, getenv)
  return M.credentials(M.load(path, getenv), host)
end

return M
