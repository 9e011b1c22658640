-- lurl.cli.fetch: the fetch command, `lurl --fetch [options] [URL...]`
-- (runtime/main.c runs main(arg) when the first argument is --fetch; see
-- docs/cli.md and docs/batch.md). A list of URLs goes through lurl.map's
-- fixed pool of workers and comes out as one JSON line per URL; one URL on
-- the command line is a quick curl (lurl.cli.curl).
local core = require "lurl.core"
local errors = require "lurl.errors"
local lurl = require "lurl"
local args = require "lurl.cli.args"
local client = require "lurl.cli.client"
local curl = require "lurl.cli.curl"
local input = require "lurl.cli.input"
local line = require "lurl.cli.line"
local progress = require "lurl.cli.progress"
local shard = require "lurl.cli.shard"

local M = {}

-- The exit statuses (docs/cli.md).
M.EXIT = { ok = 0, error = 1, usage = 2, failed = 3, interrupted = 130 }

local function fail(env, status, msg)
  env.stderr:write("lurl: ", msg, "\n")
  return status
end

-- Which URLs to take: this shard's, less those --resume found done. Also
-- returns whether the resume file ends in a cut line.
local function selection(o)
  local keep = shard.selector(o.shard)
  if not o.resume then return keep, false end
  local done, partial = shard.done_set(o.resume)
  if not done then return nil, partial end
  return function(u) return not done[u] and keep(u) end, partial
end

-- Where the lines go: stdout, or -o FILE (appended to when it is the
-- --resume file, after a newline that ends a line a crash cut short).
local function output(o, env, partial)
  if not o.output then return env.stdout end
  local append = o.output == o.resume
  local f, err = io.open(o.output, append and "ab" or "wb")
  if not f then return nil, err end
  if append and partial then f:write("\n") end
  return f
end

-- A worker's result that Ctrl-C cut short: it is not written, so that
-- --resume fetches that URL again.
local function cancelled(rec, err)
  return errors.is(err, "CancelledError") or (rec and rec.error and rec.error.kind == "CancelledError")
end

-- The loop over the results: each one written whole, counted, shown.
-- Returns the exit status.
local function drain(m, p, write, prog, state, env)
  for u, rec, err in m do
    if not (state.interrupted and cancelled(rec, err)) then
      rec = rec or line.record(u, nil, err, { elapsed = 0 })
      if p.on_result then
        local ok, herr = pcall(p.on_result, rec)
        if not ok then
          m:cancel()
          return fail(env, M.EXIT.error, "--script on_result: " .. tostring(herr))
        end
      end
      local ok, werr = write(line.encode(rec))
      if not ok then
        m:cancel()
        return fail(env, M.EXIT.error, "cannot write the output: " .. tostring(werr))
      end
      prog:add(rec)
    end
  end
  if state.interrupted then return M.EXIT.interrupted end
  return prog.failed > 0 and M.EXIT.failed or M.EXIT.ok
end

local function batch(c, o, p, env)
  local keep, partial = selection(o)
  if not keep then return fail(env, M.EXIT.usage, "--resume: " .. tostring(partial)) end
  local sources, serr = input.open(o, env.stdin)
  if not sources then return fail(env, M.EXIT.usage, serr) end
  local out, oerr = output(o, env, partial)
  if not out then return fail(env, M.EXIT.usage, oerr) end
  local prog = progress.new { total = input.count(o, keep), stream = env.stderr, tty = env.stderr_tty,
    interval = o.interval, quiet = o.quiet }
  local m = lurl.map(input.urls(sources, keep), function(u) return line.record(u, c:fetch(u)) end,
    { concurrency = o.concurrency })
  -- Ctrl-C: the workers are cancelled, the lines written so far stay, the
  -- summary follows. A second Ctrl-C has its default effect again.
  local state = { interrupted = false }
  local sig
  sig = core.signal("SIGINT", function()
    state.interrupted = true
    sig:close()
    m:cancel()
  end)
  prog:start()
  local status = drain(m, p, line.writer(out), prog, state, env)
  sig:close()
  prog:finish(state.interrupted)
  if out ~= env.stdout then out:close() end
  return status
end

-- run(argv, env) -> exit status. argv: what follows --fetch; env = { stdout,
-- stderr, stdin, stdin_tty, stderr_tty } (specs pass their own).
function M.run(argv, env)
  local o, err = args.parse(argv)
  if not o then return fail(env, M.EXIT.usage, err .. " (lurl --fetch --help)") end
  if o.help then
    env.stdout:write(args.usage)
    return M.EXIT.ok
  end
  if #o.urls == 0 and not o.input and env.stdin_tty then
    return fail(env, M.EXIT.usage, "no URL: give them as arguments, with --input FILE or on standard input")
  end
  local p, perr = client.policy(o.script)
  if not p then return fail(env, M.EXIT.usage, perr) end
  local ok, c = pcall(client.new, o, p)
  if not ok then return fail(env, M.EXIT.usage, tostring(c)) end
  local status
  if #o.urls == 1 and o.urls[1] ~= "-" and not o.input and not o.json then
    status = curl.run(c, o.urls[1], o, env)
  else
    status = batch(c, o, p, env)
  end
  c:close()
  return status
end

-- main(arg) -> exit status, for runtime/main.c: arg[1..] follow --fetch.
function M.main(arg)
  local ffi = require "ffi"
  pcall(ffi.cdef, "int isatty(int fd);") -- declared once per process
  return M.run({ unpack(arg, 1, #arg) }, {
    stdout = io.stdout, stderr = io.stderr, stdin = io.stdin,
    stdin_tty = ffi.C.isatty(0) == 1, stderr_tty = ffi.C.isatty(2) == 1,
  })
end

return M
