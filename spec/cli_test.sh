#!/usr/bin/env bash
# Behaviour of the lurl command line: exit statuses, error reports, script
# arguments, stdin, version and help output, os.exit and busted's exit.
#
# usage: bash spec/cli_test.sh path/to/lurl
# (CTest runs it from the repository root; see spec/CMakeLists.txt.)
set -u

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: bash $0 path/to/lurl" >&2
    exit 2
fi
LURL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
BUSTED=/usr/bin/busted
ROOT=$(cd "$(dirname "$0")/.." && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
rc=0 out="" err="" problems=()

# run CMD...: run it with stdin from /dev/null and a generous time limit (a
# hang fails the case rather than the whole CTest run); sets rc, out, err.
run() {
    run_stdin "" "$@"
}

# run_stdin TEXT CMD...: the same, with TEXT on standard input.
run_stdin() {
    local input=$1
    shift
    printf '%s' "$input" | (cd "$tmp" && timeout 60 "$@") >"$tmp/.out" 2>"$tmp/.err"
    rc=$?
    out=$(cat "$tmp/.out")
    err=$(cat "$tmp/.err")
}

expect_rc() { [[ $rc == "$1" ]] || problems+=("exit status $rc, expected $1"); }
expect_out() { [[ $out == "$1" ]] || problems+=("stdout is '$out', expected '$1'"); }
expect_out_has() { [[ $out == *"$1"* ]] || problems+=("stdout lacks '$1'"); }
expect_err_has() { [[ $err == *"$1"* ]] || problems+=("stderr lacks '$1'"); }
expect_err_empty() { [[ -z $err ]] || problems+=("stderr is not empty"); }

# check NAME FUNCTION: run FUNCTION, which runs lurl and states expectations.
check() {
    local name=$1
    problems=()
    "$2"
    if ((${#problems[@]} == 0)); then
        passed=$((passed + 1))
        echo "ok   - $name"
    else
        failed=$((failed + 1))
        echo "FAIL - $name"
        printf '       %s\n' "${problems[@]}"
        echo "       stdout:"
        head -c 2000 <<<"$out" | sed 's/^/         | /'
        echo "       stderr:"
        head -c 2000 <<<"$err" | sed 's/^/         | /'
    fi
}

# write NAME TEXT: a script file in the scratch directory.
write() { printf '%s\n' "$2" >"$tmp/$1"; }

# ---- cases ----

t_eval() {
    run "$LURL" -e 'print(1)'
    expect_rc 0
    expect_out 1
    expect_err_empty
}

t_eval_twice() {
    run "$LURL" -e 'x = 41' -e 'print(x + 1)'
    expect_rc 0
    expect_out 42
}

t_runtime_error() {
    write runtime_error.lua 'local function explode() error("kaboom") end
explode()
print("not reached")'
    run "$LURL" runtime_error.lua
    expect_rc 1
    expect_out ""
    expect_err_has "runtime_error.lua:1: kaboom"
    expect_err_has "stack traceback:"
    expect_err_has "explode"
}

t_error_object() {
    run "$LURL" -e 'error(setmetatable({}, { __tostring = function() return "custom error" end }))'
    expect_rc 1
    expect_err_has "custom error"
}

t_syntax_error() {
    write syntax_error.lua 'x = = 1'
    run "$LURL" syntax_error.lua
    expect_rc 1
    expect_out ""
    expect_err_has "syntax_error.lua:1:"
}

t_missing_script() {
    run "$LURL" no_such_script.lua
    expect_rc 1
    expect_err_has "no_such_script.lua"
}

t_unknown_flag() {
    run "$LURL" --no-such-flag
    expect_rc 2
    expect_err_has "--no-such-flag"
    expect_err_has "usage"
}

t_e_without_code() {
    run "$LURL" -e
    expect_rc 2
}

expect_versions() {
    expect_rc 0
    local name version
    for name in lurl LuaJIT libuv llhttp OpenSSL zlib brotli zstd libpsl libidn2 c-ares nghttp2 "MIT License"; do
        expect_out_has "$name"
    done
    # the version is project()'s in CMakeLists.txt, written nowhere else
    version=$(sed -n 's/^project(lurl VERSION \([^ ]*\).*/\1/p' "$ROOT/CMakeLists.txt")
    [[ -n $version ]] || problems+=("no project(lurl VERSION ...) in CMakeLists.txt")
    [[ $out == "lurl $version,"* ]] || problems+=("stdout does not start with 'lurl $version,'")
}
t_version_short() {
    run "$LURL" -v
    expect_versions
}
t_version_long() {
    run "$LURL" --version
    expect_versions
}

t_licence() {
    # the licence -v names is the one in LICENSE and in the README
    out=$(cat "$ROOT/LICENSE" 2>&1)
    expect_out_has "MIT License"
    expect_out_has "Copyright (c) 2026 the lurl authors"
    out=$(cat "$ROOT/README.md")
    expect_out_has "MIT License"
}

t_help() {
    run "$LURL" -h
    expect_rc 0
    expect_out_has "usage: lurl"
    run "$LURL" --help
    expect_rc 0
    expect_out_has "usage: lurl"
}

t_stdin() {
    run_stdin 'print("from stdin", ...)' "$LURL" - a b
    expect_rc 0
    expect_out "$(printf 'from stdin\ta\tb')"
}

t_stdin_implicit() {
    run_stdin 'print("piped")' "$LURL"
    expect_rc 0
    expect_out piped
}

t_tty_usage() {
    # script(1) (util-linux, in the essential package bsdutils) gives lurl a
    # terminal as stdin; -e passes lurl's exit status on. Were lurl to read
    # the terminal, it would get script's EOF and exit 0 without the usage.
    rc=0
    out=$(cd "$tmp" && timeout 20 script -qec "$(printf '%q' "$LURL")" /dev/null </dev/null 2>&1) || rc=$?
    err=""
    expect_rc 2
    expect_out_has "usage: lurl"
}

t_stdin_error() {
    run_stdin 'error("stdin boom")' "$LURL" -
    expect_rc 1
    expect_err_has "stdin boom"
}

t_script_args() {
    write args.lua 'print(arg[0], arg[1], arg[2], #arg, select("#", ...), ...)
assert(arg[-1] == os.getenv("LURL_UNDER_TEST"), "arg[-1] is " .. tostring(arg[-1]))'
    LURL_UNDER_TEST=$LURL run "$LURL" args.lua a b
    expect_rc 0
    expect_out "$(printf 'args.lua\ta\tb\t2\t2\ta\tb')"
}

t_script_no_args() {
    write noargs.lua 'print(arg[0], #arg, select("#", ...))'
    run "$LURL" noargs.lua
    expect_rc 0
    expect_out "$(printf 'noargs.lua\t0\t0')"
}

t_options_before_script() {
    # as in lua: options before the script go to negative indices
    write opts.lua 'print(arg[-2], arg[-1], arg[0], arg[1])'
    run "$LURL" -e 'x = 1' opts.lua z
    expect_rc 0
    expect_out "$(printf -- '-e\tx = 1\topts.lua\tz')"
}

t_double_dash() {
    write dd.lua 'print(arg[0], arg[1])'
    run "$LURL" -- dd.lua -v
    expect_rc 0
    expect_out "$(printf 'dd.lua\t-v')"
}

t_unjoined_task() {
    write unjoined.lua 'local lurl = require "lurl"
lurl.spawn(function() lurl.sleep(0.01); error("lost task failure") end)
print("main done")'
    run "$LURL" unjoined.lua
    expect_rc 1
    expect_out "main done"
    expect_err_has "never joined"
    expect_err_has "lost task failure"
    expect_err_has "stack traceback:"
}

t_joined_task() {
    # the same failure, handled by join: not a reason to fail
    write joined.lua 'local lurl = require "lurl"
local t = lurl.spawn(function() lurl.sleep(0.01); error("handled failure") end)
local r, e = t:join()
assert(r == nil and tostring(e):find("handled failure"))
print("handled")'
    run "$LURL" joined.lua
    expect_rc 0
    expect_out handled
    expect_err_empty
}

t_tasks_finish_before_exit() {
    # lurl exits when the main chunk and every task it spawned are done
    write tasks.lua 'local lurl = require "lurl"
lurl.spawn(function() lurl.sleep(0.05); print("task done") end)
print("main done")'
    run "$LURL" tasks.lua
    expect_rc 0
    expect_out "$(printf 'main done\ntask done')"
}

t_os_exit() {
    run "$LURL" -e 'os.exit(3)' -e 'print("not reached")'
    expect_rc 3
    expect_out ""
    expect_err_empty
    run "$LURL" -e 'os.exit(true)'
    expect_rc 0
    run "$LURL" -e 'os.exit(false)'
    expect_rc 1
    expect_err_empty
}

t_os_exit_in_task() {
    # from a spawned task, after the main chunk blocked: the loop stops at once
    write exit_task.lua 'local lurl = require "lurl"
lurl.spawn(function() lurl.sleep(0.01); os.exit(7) end)
lurl.sleep(30)
print("not reached")'
    run "$LURL" exit_task.lua
    expect_rc 7
    expect_out ""
    expect_err_empty
}

t_raised_nil() {
    # lua's convention: an error without a value fails quietly
    run "$LURL" -e 'error()'
    expect_rc 1
    expect_err_empty
}

t_busted_failing() {
    write failing_spec.lua 'describe("a failing spec", function()
  it("fails", function() assert.are.equal(1, 2) end)
end)'
    run "$LURL" "$BUSTED" -o plainTerminal failing_spec.lua
    [[ $rc != 0 ]] || problems+=("exit status 0 for a failing spec")
    expect_out_has "1 failure"
    [[ $err != *"lurl: nil"* && $err != *"stack traceback"* ]] || problems+=("stderr has lurl's report")
}

t_busted_passing() {
    write passing_spec.lua 'describe("a passing spec", function()
  it("passes", function() assert.are.equal(1, 1) end)
end)'
    run "$LURL" "$BUSTED" -o plainTerminal passing_spec.lua
    expect_rc 0
    expect_out_has "1 success"
    expect_err_empty
}

t_busted() {
    run "$LURL" "$BUSTED" --version
    expect_rc 0
    [[ $out =~ ^[0-9]+\.[0-9]+ ]] || problems+=("stdout is not a busted version")
}

check "-e runs code and exits 0" t_eval
check "several -e run in order in one state" t_eval_twice
check "a runtime error exits 1 with a traceback on stderr" t_runtime_error
check "an error object's __tostring is used" t_error_object
check "a syntax error exits 1" t_syntax_error
check "a missing script exits 1" t_missing_script
check "an unknown flag exits 2" t_unknown_flag
check "-e without code exits 2" t_e_without_code
check "-v names lurl and its libraries" t_version_short
check "--version names lurl and its libraries" t_version_long
check "LICENSE and the README state the MIT License" t_licence
check "-h and --help print usage and exit 0" t_help
check "- reads the script from stdin, with its arguments" t_stdin
check "without script and -e a piped stdin is the script" t_stdin_implicit
if command -v script >/dev/null; then
    check "without script and -e a terminal on stdin gets the usage, status 2" t_tty_usage
else
    echo "skip - a terminal on stdin (script(1), package bsdutils, is not installed)"
fi
check "an error in a script from stdin exits 1" t_stdin_error
check "arg and ... hold the script arguments" t_script_args
check "a script without arguments" t_script_no_args
check "options before the script are at negative arg indices" t_options_before_script
check "-- ends the options" t_double_dash
check "an un-joined failed task makes the exit status 1" t_unjoined_task
check "a failed task that was joined does not" t_joined_task
check "spawned tasks finish before lurl exits" t_tasks_finish_before_exit
check "os.exit sets the exit status, quietly" t_os_exit
check "os.exit in a spawned task ends lurl with its status" t_os_exit_in_task
check "error() without a value exits 1 without a message" t_raised_nil
if [[ -x $BUSTED ]]; then
    check "lurl runs busted" t_busted
    check "a failing busted run exits non-zero without lurl's report" t_busted_failing
    check "a passing busted run exits 0" t_busted_passing
else
    echo "skip - lurl runs busted ($BUSTED is not installed)"
fi

echo "$passed passed, $failed failed"
((failed == 0))
