-- luacheck settings for lua/, spec/, examples/, bench/, fuzz/ and cmake/ (scripts/lint
-- runs it). Every warning class is on unless a line below says why not.

-- Everything runs inside lurl, on LuaJIT: bit, jit, newproxy, unpack and the
-- other 5.1 globals are there, 5.2+ ones are not. ffi is required, not global.
std = "luajit"

-- All but a few dozen lines already fit; longer ones are wrapped.
max_line_length = 120

-- A method keeps the colon that its callers and overriders use even when its
-- own body needs no state (the no-op hooks of policy contexts, test doubles).
-- An explicit self parameter that goes unused is still reported.
self = false

files["spec/"] = { std = "+busted" }
-- Standalone scripts the interop checks run with lurl, outside busted.
files["spec/interop/"] = { std = "luajit" }
-- These specs swap io.stderr for a recorder to check what is written to it.
files["spec/loopback/trace_spec.lua"] = { std = "+busted", globals = { "io.stderr" } }
files["spec/loopback/testing_server_spec.lua"] = { std = "+busted", globals = { "io.stderr" } }

-- The fuzz harness (fuzz/harness.c) registers fuzz_split for the targets.
files["fuzz/"] = { read_globals = { "fuzz_split" } }
