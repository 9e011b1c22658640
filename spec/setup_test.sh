#!/usr/bin/env bash
# scripts/setup's interface, run against stand-ins for dpkg-query, id and
# cmake so that nothing is installed or built: the build list alone by
# default, the test list as well with --tests, other arguments passed to
# cmake; and no script in scripts/ ends processes by name.
#
# usage: bash spec/setup_test.sh path/to/lurl   (the argument is unused)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/bin"
# every package is missing, the user is not root, cmake only says how it was called
printf '#!/bin/sh\nexit 1\n' >"$tmp/bin/dpkg-query"
printf '#!/bin/sh\necho 1000\n' >"$tmp/bin/id"
printf '#!/bin/sh\necho "$@" >>"%s/cmake.args"\n' "$tmp" >"$tmp/bin/cmake"
chmod +x "$tmp/bin/"*

failed=0
problem() {
    echo "FAIL - $*"
    failed=1
}

# setup ARGS...: run scripts/setup with the stand-ins; sets err and args
setup() {
    rm -f "$tmp/cmake.args"
    err=$(PATH=$tmp/bin:$PATH BUILD_DIR=$tmp/build "$ROOT/scripts/setup" "$@" 2>&1 >/dev/null)
    args=$(cat "$tmp/cmake.args" 2>/dev/null)
}

setup -DLURL_SANITIZE=ON
[[ $err == *libuv1-dev* && $err == *node-llhttp* ]] || problem "the build list is not asked for: $err"
[[ $err != *lua-busted* && $err != *nginx-light* ]] || problem "without --tests the test list is asked for: $err"
[[ $args == *-DLURL_SANITIZE=ON* ]] || problem "cmake did not get -DLURL_SANITIZE=ON: $args"

setup --tests -DLURL_SANITIZE=ON
[[ $err == *libuv1-dev* && $err == *lua-busted* && $err == *nginx-light* ]] ||
    problem "--tests does not ask for both lists: $err"
[[ $args == *-DLURL_SANITIZE=ON* && $args != *--tests* ]] || problem "cmake got: $args"

hits=$(grep -rnwE 'p[k]ill|kill[a]ll' "$ROOT/scripts") && problem "scripts end processes by name: $hits"
grep -q -- "scripts/setup --tests --bench" "$ROOT/scripts/bench" || problem "scripts/bench does not install through scripts/setup"

((failed == 0)) && echo "setup_test: ok"
((failed == 0))
