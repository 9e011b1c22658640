#!/usr/bin/env bash
# Behaviour of the lurl command line: exit statuses, error reports, script
# arguments, stdin, version and help output.
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
    local name
    for name in lurl LuaJIT libuv llhttp OpenSSL; do expect_out_has "$name"; done
}
t_version_short() {
    run "$LURL" -v
    expect_versions
}
t_version_long() {
    run "$LURL" --version
    expect_versions
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
    run "$LURL" -e 'os.exit(3)'
    expect_rc 3
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
check "-h and --help print usage and exit 0" t_help
check "- reads the script from stdin, with its arguments" t_stdin
check "an error in a script from stdin exits 1" t_stdin_error
check "arg and ... hold the script arguments" t_script_args
check "a script without arguments" t_script_no_args
check "options before the script are at negative arg indices" t_options_before_script
check "-- ends the options" t_double_dash
check "an un-joined failed task makes the exit status 1" t_unjoined_task
check "a failed task that was joined does not" t_joined_task
check "spawned tasks finish before lurl exits" t_tasks_finish_before_exit
check "os.exit sets the exit status" t_os_exit
if [[ -x $BUSTED ]]; then
    check "lurl runs busted" t_busted
else
    echo "skip - lurl runs busted ($BUSTED is not installed)"
fi

echo "$passed passed, $failed failed"
((failed == 0))
