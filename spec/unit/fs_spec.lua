-- core.fs: files through libuv's thread pool. open, stat, read, write and
-- close; failures handed to the callback as nil, "ENAME: message", "ENAME";
-- bad arguments raised at once; files kept alive while an operation runs;
-- no descriptor leaked.
local core = require "lurl.core"
local sched = require "lurl.sched"
local support = require "spec.support"

local fs = core.fs

-- lurl.fs waits for a core.fs operation in the running task; a failure to
-- start it is returned like one in the callback.
local tasks = require "lurl.fs"
local open, stat, read, write = tasks.open, tasks.stat, tasks.read, tasks.write
local random_bytes, slurp = support.random_bytes, support.read_file

-- A failure as core.fs reports it: nil, "ENAME: message", "ENAME".
local function assert_failure(ename, res, msg, code)
  assert.is_nil(res)
  assert.are.equal(ename, code)
  assert.are.equal(ename .. ": ", msg:sub(1, #ename + 2))
end

describe("core.fs", function()
  local dir, temps

  -- A fresh path in the temporary directory (removed after the case);
  -- with contents, the file is written there first.
  local function temp(contents)
    local path = os.tmpname()
    temps[#temps + 1] = path
    if contents then
      local f = assert(io.open(path, "wb"))
      f:write(contents)
      f:close()
    else
      os.remove(path)
    end
    return path
  end

  before_each(function()
    temps = {}
    dir = os.tmpname()
    os.remove(dir)
    local rc = os.execute("mkdir " .. dir)
    assert(rc == 0 or rc == true, "cannot make " .. dir)
  end)

  after_each(function()
    for _, path in ipairs(temps) do os.remove(path) end
    os.remove(dir)
  end)

  describe("fs.open", function()
    it("opens a file for reading and hands it to the callback, never at once", function()
      local path = temp("hello")
      local called = false
      local got
      local started = sched.wait(function(wake)
        local ok = fs.open(path, "r", function(f, err)
          called = true
          got = f or err
          wake(true)
        end)
        assert.is_true(ok)
        assert.is_false(called) -- the work is on the thread pool
      end)
      assert.is_true(started)
      assert.are.equal("userdata", type(got))
      assert.matches("^lurl%.file %(%d+%)$", tostring(got))
      assert.are.equal("hello", read(got, 100, 0))
      assert.is_true(got:close())
    end)

    it("gives ENOENT for a missing file, through the callback", function()
      local path = temp()
      assert_failure("ENOENT", open(path, "r"))
      assert_failure("ENOENT", open(dir .. "/no/such/dir/file", "w"))
    end)

    it("gives EISDIR for a directory opened for writing", function()
      assert_failure("EISDIR", open(dir, "w"))
      assert_failure("EISDIR", open(dir, "a"))
    end)

    it("creates or truncates with \"w\"", function()
      local path = temp()
      local f = assert(open(path, "w"))
      assert.are.equal(3, write(f, "abc", -1))
      f:close()
      assert.are.equal("abc", slurp(path))
      f = assert(open(path, "w"))
      f:close()
      assert.are.equal("", slurp(path))
    end)

    it("creates or appends with \"a\"", function()
      local path = temp()
      local f = assert(open(path, "a"))
      write(f, "one", -1)
      f:close()
      f = assert(open(path, "a"))
      write(f, "two", -1)
      f:close()
      assert.are.equal("onetwo", slurp(path))
    end)

    it("raises for a mode other than \"r\", \"w\" or \"a\", and without a callback", function()
      local path = temp("x")
      for _, mode in ipairs { "rw", "r+", "x", "", "R" } do
        local ok, err = pcall(fs.open, path, mode, function() end)
        assert.is_false(ok, mode)
        assert.matches("mode must be", err, 1, true)
      end
      assert.is_false(pcall(fs.open, path, nil, function() end))
      assert.is_false(pcall(fs.open, path, "r"))
      assert.is_false(pcall(fs.open, nil, "r", function() end))
    end)
  end)

  describe("fs.stat", function()
    it("tells a file's size, mtime and type", function()
      local path = temp(("x"):rep(1234))
      local st = assert(stat(path))
      assert.are.equal(1234, st.size)
      assert.are.equal("file", st.type)
      assert.are.equal("number", type(st.mtime))
      assert.is_true(math.abs(st.mtime - os.time()) < 600, "mtime " .. st.mtime .. " vs now " .. os.time())
    end)

    it("tells directories and other kinds apart", function()
      assert.are.equal("directory", assert(stat(dir)).type)
      assert.are.equal("other", assert(stat("/dev/null")).type)
    end)

    it("follows a file as it grows", function()
      local path = temp("")
      assert.are.equal(0, assert(stat(path)).size)
      local f = assert(open(path, "a"))
      write(f, ("y"):rep(5000), -1)
      f:close()
      assert.are.equal(5000, assert(stat(path)).size)
    end)

    it("gives ENOENT for a missing path", function()
      assert_failure("ENOENT", stat(temp()))
    end)
  end)

  describe("file:read", function()
    it("reads size bytes at an offset, fewer near the end and \"\" past it", function()
      local f = assert(open(temp("0123456789"), "r"))
      assert.are.equal("0123", read(f, 4, 0))
      assert.are.equal("567", read(f, 3, 5))
      assert.are.equal("89", read(f, 100, 8))
      assert.are.equal("", read(f, 10, 10))
      assert.are.equal("", read(f, 10, 1000))
      f:close()
    end)

    it("reads from the current position with offset -1; a positional read does not move it", function()
      local f = assert(open(temp("abcdefghij"), "r"))
      assert.are.equal("abc", read(f, 3, -1))
      assert.are.equal("hij", read(f, 3, 7))
      assert.are.equal("def", read(f, 3, -1))
      assert.are.equal("ghij", read(f, 10, -1))
      assert.are.equal("", read(f, 10, -1))
      f:close()
    end)

    it("is binary-safe and reads a large file chunk by chunk", function()
      local data = random_bytes(3 * 1024 * 1024 + 17) .. "\0\r\n\0"
      local f = assert(open(temp(data), "r"))
      local parts, offset = {}, 0
      while true do
        local chunk = assert(read(f, 256 * 1024, offset))
        if chunk == "" then break end
        parts[#parts + 1] = chunk
        offset = offset + #chunk
      end
      f:close()
      assert.are.equal(#data, offset)
      assert.is_true(table.concat(parts) == data, "the bytes read differ from the file's")
    end)

    it("runs reads side by side, each with its own result", function()
      local data = random_bytes(64 * 1024)
      local f = assert(open(temp(data), "r"))
      local n, results = 16, {}
      sched.wait(function(wake)
        local left = n
        for i = 1, n do
          assert.is_true(f:read(4096, (i - 1) * 4096, function(chunk)
            results[i] = chunk
            left = left - 1
            if left == 0 then wake() end
          end))
        end
      end)
      for i = 1, n do
        assert.is_true(results[i] == data:sub((i - 1) * 4096 + 1, i * 4096), "read " .. i)
      end
      f:close()
    end)

    it("accepts a size of 1 byte to 64 MiB and raises otherwise", function()
      local f = assert(open(temp("abc"), "r"))
      assert.are.equal("a", read(f, 1, 0))
      assert.are.equal("abc", read(f, 64 * 1024 * 1024, 0))
      for _, size in ipairs { 0, -1, 64 * 1024 * 1024 + 1 } do
        local ok, err = pcall(f.read, f, size, 0, function() error("called") end)
        assert.is_false(ok, "size " .. size)
        assert.matches("size must be 1 byte to 64 MiB", err, 1, true)
      end
      assert.is_false(pcall(f.read, f, 10, 0)) -- no callback
      f:close()
    end)

    it("gives EBADF on a file opened for writing, EISDIR on a directory", function()
      local f = assert(open(temp(), "w"))
      assert_failure("EBADF", read(f, 10, 0))
      f:close()
      local d = assert(open(dir, "r"))
      assert_failure("EISDIR", read(d, 10, 0))
      d:close()
    end)

    it("keeps the file open until its callback ran, though the script dropped it", function()
      local path = temp("still here")
      local got
      local function start() -- its frame, and the file with it, is gone once it returns
        local f = assert(open(path, "r"))
        assert.is_true(f:read(100, 0, function(data, err) got = data or err end))
      end
      start()
      collectgarbage()
      collectgarbage()
      assert.is_truthy(support.eventually(function() return got ~= nil end))
      assert.are.equal("still here", got)
    end)
  end)

  describe("file:write", function()
    it("writes at an offset and gives the bytes written", function()
      local path = temp()
      local f = assert(open(path, "w"))
      assert.are.equal(10, write(f, "0123456789", 0))
      assert.are.equal(2, write(f, "XY", 4))
      assert.are.equal(3, write(f, "end", 10))
      f:close()
      assert.are.equal("0123XY6789end", slurp(path))
    end)

    it("writes at the current position with offset -1", function()
      local path = temp()
      local f = assert(open(path, "w"))
      write(f, "ab", -1)
      write(f, "cd", -1)
      assert.are.equal(0, write(f, "", -1))
      write(f, "ef", -1)
      f:close()
      assert.are.equal("abcdef", slurp(path))
    end)

    it("writes binary data whole, the string kept alive until the callback", function()
      local path = temp()
      local data = random_bytes(2 * 1024 * 1024 + 3)
      local f = assert(open(path, "w"))
      local n
      local function start() -- a string only the request refers to once this returns
        assert.is_true(f:write(data .. "\0tail", 0, function(res, err) n = res or err end))
      end
      start()
      collectgarbage()
      collectgarbage()
      assert.is_truthy(support.eventually(function() return n ~= nil end))
      f:close()
      assert.are.equal(#data + 5, n)
      assert.is_true(slurp(path) == data .. "\0tail", "the file differs from what was written")
    end)

    it("gives EBADF on a file opened for reading", function()
      local f = assert(open(temp("x"), "r"))
      assert_failure("EBADF", write(f, "y", 0))
      f:close()
    end)

    it("raises without data or a callback", function()
      local f = assert(open(temp(), "w"))
      assert.is_false(pcall(f.write, f, nil, 0, function() end))
      assert.is_false(pcall(f.write, f, "x", 0))
      f:close()
    end)
  end)

  describe("file:close", function()
    it("gives true; the file then shows closed and raises on use", function()
      local f = assert(open(temp("abc"), "r"))
      assert.is_true(f:close())
      assert.matches("^lurl%.file %(%-?%d+, closed%)$", tostring(f))
      local ok, err = pcall(f.read, f, 1, 0, function() end)
      assert.is_false(ok)
      assert.matches("file is closed", err, 1, true)
      ok, err = pcall(f.write, f, "x", 0, function() end)
      assert.is_false(ok)
      assert.matches("file is closed", err, 1, true)
      assert.has_no.errors(function() f:close() end) -- closing again is harmless
    end)
  end)

  describe("file:close with an operation in flight", function()
    -- close() must wait for what is queued on the thread pool: closing at
    -- once would let the next open reuse the number under that operation.
    it("makes the operation finish on its own file, never land elsewhere", function()
      local a, b = temp(), temp()
      local strays = 0
      for _ = 1, 2000 do
        local fa = assert(open(a, "w"))
        local res
        assert.is_true(fa:write("from a", 0, function(n, err) res = n or err end))
        fa:close()
        local fb = assert(open(b, "w")) -- truncates b; may get fa's descriptor number
        assert.is_truthy(support.eventually(function() return res ~= nil end))
        fb:close()
        if slurp(b) ~= "" then strays = strays + 1 end
      end
      assert.are.equal(0, strays, strays .. " of 2000 writes to a closed file landed in another file")
    end)
  end)

  describe("descriptors", function()
    it("are not leaked by opens, reads, writes, failures or closes", function()
      local path = temp(("z"):rep(1000))
      local before = support.open_fds()
      for _ = 1, 50 do
        local f = assert(open(path, "r"))
        read(f, 100, 0)
        f:close()
        f = assert(open(path, "a"))
        write(f, "", -1)
        f:close()
        open(temp(), "r")
        stat(path)
      end
      assert.are.equal(before, support.open_fds())
    end)

    it("of files the script dropped without closing are closed by the collector", function()
      local path = temp("abc")
      local before = support.open_fds()
      local function open_and_drop() -- no reference outlives its frame
        for _ = 1, 20 do assert(open(path, "r")) end
        assert.are.equal(before + 20, support.open_fds())
      end
      open_and_drop()
      -- the scheduler keeps the values of a task's last wake until its next one
      assert(stat(path))
      collectgarbage()
      collectgarbage()
      assert.are.equal(before, support.open_fds())
    end)
  end)
end)
