-- lurl.netrc: .netrc files as curl 7.88.1 reads them. Every case of FILES
-- was also run through Debian 12's curl (--netrc-file, and the
-- Authorization header it sent): all agree but the one whose `curl` field
-- says what curl did instead.
local netrc = require "lurl.netrc"

-- { what, file text, host, login, password } (login nil: no credentials)
local FILES = {
  { "one line", "machine host.test login u password p\n", "host.test", "u", "p" },
  { "one token a line", "machine host.test\nlogin u\npassword p\n", "host.test", "u", "p" },
  { "CRLF lines", "machine host.test\r\nlogin u\r\npassword p\r\n", "host.test", "u", "p" },
  { "no newline at the end", "machine host.test login u password p", "host.test", "u", "p" },
  { "keywords and machine names in any case", "MACHINE Host.Test LOGIN u PASSWORD p\n", "host.TEST", "u", "p" },
  { "other machines are skipped", "machine a.test login a password pa\nmachine host.test login u password p\n",
    "host.test", "u", "p" },
  { "no entry for the host", "machine a.test login a password pa\n", "host.test", nil },
  { "a name is not a suffix", "machine test login a password pa\n", "host.test", nil },
  { "no trailing-dot folding", "machine host.test. login u password p\n", "host.test", nil },
  { "the first entry for a host wins",
    "machine host.test login u1 password p1\nmachine host.test login u2 password p2\n", "host.test", "u1", "p1" },
  { "the first value of an entry wins", "machine host.test login u password x password p\n", "host.test", "u", "x" },
  { "an entry without login or password is passed over",
    "machine host.test account x\nmachine host.test login u password p\n", "host.test", "u", "p" },
  { "login only: empty password", "machine host.test login u\n", "host.test", "u", "" },
  { "password only: empty login", "machine host.test password p\n", "host.test", "", "p" },
  { "account is read and not used", "machine host.test login u account a password p\n", "host.test", "u", "p" },
  { "values may be keywords", "machine host.test login machine password default\n", "host.test", "machine", "default" },
  { "values before any machine are ignored", "login z password y\nmachine host.test login u password p\n",
    "host.test", "u", "p" },
  -- default
  { "default when no machine matches", "machine a.test login a password pa\ndefault login d password dp\n",
    "host.test", "d", "dp" },
  { "default for an IP address host", "default login d password dp\n", "127.0.0.1", "d", "dp" },
  { "a machine entry wins over default", "machine host.test login u password p\ndefault login d password dp\n",
    "host.test", "u", "p" },
  { "default when the machine entry names no credentials", "machine host.test\ndefault login d password dp\n",
    "host.test", "d", "dp" },
  { "a machine entry wins over an earlier default",
    "default login d password dp\nmachine host.test login u password p\n", "host.test", "u", "p",
    curl = "d:dp (curl takes the first entry that applies; default is meant to be last)" },
  -- comments
  { "comment lines", "# my hosts\nmachine host.test login u password p\n", "host.test", "u", "p" },
  { "an indented comment line", "   # login z\nmachine host.test login u password p\n", "host.test", "u", "p" },
  { "a comment after tokens", "machine host.test # password x\nlogin u password p\n", "host.test", "u", "p" },
  { "'#' where a value is due starts a comment", "machine host.test login u password #p\n", "host.test", "u", "" },
  { "... and the value is the next token", "machine host.test login u password #p\nmachine other.test\n",
    "host.test", "u", "machine" },
  { "'#' inside a token is text", "machine host.test login u password pa#ss\n", "host.test", "u", "pa#ss" },
  -- quoted tokens (curl 7.84+)
  { "quoted values with spaces and escapes", 'machine host.test login "a b" password "c\\"d\\\\e\\tf"\n',
    "host.test", "a b", 'c"d\\e\tf' },
  { "a quoted machine name", 'machine "host.test" login u password p\n', "host.test", "u", "p" },
  { "an empty quoted value", 'machine host.test login u password ""\n', "host.test", "u", "" },
  { "\\n is a newline, \\q is q", 'machine host.test login u password "a\\nb\\q"\n', "host.test", "u", "a\nbq" },
  { "a quoted '#' is text", 'machine host.test login u password "#p"\n', "host.test", "u", "#p" },
  { "a quote ends its token", 'machine host.test login u password "p q"x\n', "host.test", "u", "p q" },
  { "a quote inside a token is text", 'machine host.test login u password a"b"\n', "host.test", "u", 'a"b"' },
  { "an unterminated quote spoils the file", 'machine host.test login "u password p\n', "host.test", nil },
  -- macdef: skipped up to an empty line
  { "a macro is skipped",
    "macdef init\nmachine host.test login m password mp\n\nmachine host.test login u password p\n", "host.test",
    "u", "p" },
  { "a line of blanks does not end a macro",
    "macdef init\nmachine host.test login m password mp\n   \nmachine host.test login u password p\n", "host.test",
    nil },
  { "a macro inside an entry", "machine host.test login u macdef x y\ncd /\n\npassword p\n", "host.test", "u", "p" },
  { "a macro at the end without an empty line", "machine host.test login u password p\nmacdef m\nx\n",
    "host.test", "u", "p" },
  { "empty file", "", "host.test", nil },
}

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

describe("lurl.netrc", function()
  describe("lookup (file cases)", function()
    for i, c in ipairs(FILES) do
      it(("%d: %s"):format(i, c[1]), function()
        local path = tmpfile(c[2])
        local login, password = netrc.lookup(c[3], path)
        os.remove(path)
        assert.equal(c[4], login)
        assert.equal(c[5], password)
      end)
    end
  end)

  describe("parse", function()
    it("returns the entries in file order", function()
      assert.same({
        { machine = "a.test", login = "a", password = "pa" },
        { machine = "b.test", account = "acct" },
        { default = true, login = "d" },
      }, netrc.parse("# x\nmachine a.test login a password pa\nmachine b.test account acct\ndefault login d\n"))
    end)

    it("reports an unterminated quote with its line", function()
      local entries, err = netrc.parse('machine a\nlogin "u\n')
      assert.is_nil(entries)
      assert.matches("line 2", err, 1, true)
    end)
  end)

  describe("which file", function()
    local env, dir
    local function getenv(name) return env[name] end

    before_each(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir " .. dir))
    end)
    after_each(function() os.execute("rm -rf " .. dir) end)

    local function write(path, text)
      local f = assert(io.open(path, "wb"))
      f:write(text)
      f:close()
    end

    it("$HOME/.netrc", function()
      write(dir .. "/.netrc", "machine h login home password hp\n")
      env = { HOME = dir }
      assert.same({ "home", "hp" }, { netrc.lookup("h", nil, getenv) })
    end)

    it("$NETRC before $HOME/.netrc", function()
      write(dir .. "/.netrc", "machine h login home password hp\n")
      write(dir .. "/other", "machine h login other password op\n")
      env = { HOME = dir, NETRC = dir .. "/other" }
      assert.same({ "other", "op" }, { netrc.lookup("h", nil, getenv) })
    end)

    it("an explicit path before both", function()
      write(dir .. "/.netrc", "machine h login home password hp\n")
      write(dir .. "/mine", "machine h login mine password mp\n")
      env = { HOME = dir, NETRC = dir .. "/.netrc" }
      assert.same({ "mine", "mp" }, { netrc.lookup("h", dir .. "/mine", getenv) })
    end)

    it("an empty NETRC counts as unset", function()
      write(dir .. "/.netrc", "machine h login home password hp\n")
      env = { HOME = dir, NETRC = "" }
      assert.same({ "home", "hp" }, { netrc.lookup("h", nil, getenv) })
    end)

    it("nil, no error: missing file, no HOME, a directory, no host", function()
      env = { HOME = dir }
      assert.is_nil(netrc.lookup("h", nil, getenv))
      env = { NETRC = dir .. "/missing" }
      assert.is_nil(netrc.lookup("h", nil, getenv))
      env = {}
      assert.is_nil(netrc.lookup("h", nil, getenv))
      assert.is_nil(netrc.lookup("h", dir, getenv))
      write(dir .. "/.netrc", "default login d password dp\n")
      assert.is_nil(netrc.lookup(nil, dir .. "/.netrc", getenv))
    end)

    it("reads os.getenv by default", function()
      write(dir .. "/n", "machine h login u password p\n")
      assert.same({ "u", "p" }, { netrc.lookup("h", dir .. "/n") })
    end)
  end)
end)
