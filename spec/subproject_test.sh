#!/usr/bin/env bash
# lurl as part of a parent CMake project: add_subdirectory(<this tree>) gives
# the target lurl::lurl and the lurl CLI, both with the Lua library compiled
# in, and registers none of lurl's tests. The parent links
# examples/embed/host.c, whose Lua fetches from a server on loopback that its
# own runtime starts.
#
# usage: bash spec/subproject_test.sh path/to/lurl
# (the argument is CTest's convention for spec/*_test.sh; unused here)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^project(lurl VERSION \([^ ]*\).*/\1/p' "$ROOT/CMakeLists.txt")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { echo "== $*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step "a parent project with add_subdirectory(lurl), built in Release"
mkdir "$tmp/parent"
cp "$ROOT/examples/embed/host.c" "$tmp/parent/"
cat >"$tmp/parent/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(parent C)
enable_testing()
add_subdirectory("$ROOT" lurl)
add_executable(host host.c)
target_link_libraries(host PRIVATE lurl::lurl)
CMAKE
cmake -S "$tmp/parent" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/build" -j2 >/dev/null

step "the parent's host links lurl::lurl and fetches"
"$tmp/build/host"

step "lurl's CLI built inside the parent has the Lua library"
got=$("$tmp/build/lurl/lurl" -e 'print(require("lurl").version)')
[[ $got == "$VERSION" ]] || fail "lurl says version '$got', expected '$VERSION'"

step "lurl's tests are not the parent's"
(cd "$tmp/build" && ctest -N) | grep -q "Total Tests: 0" || fail "lurl registered tests in the parent"

echo "subproject_test: ok"
