#!/usr/bin/env bash
# lurl installed as a tool and a C library: a fresh Release build of this tree
# is installed into a temporary prefix, then used from outside the tree the two
# ways a host would, cc with pkg-config and a CMake project with
# find_package(lurl). Both link examples/embed/host.c, whose Lua fetches from a
# server on loopback that its own runtime starts.
#
# usage: bash spec/install_test.sh path/to/lurl
# (the argument is CTest's convention for spec/*_test.sh; this test builds and
# installs its own lurl, so that it proves a fresh install works)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^project(lurl VERSION \([^ ]*\).*/\1/p' "$ROOT/CMakeLists.txt")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

step() { echo "== $*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step "configure, build (Release) and cmake --install into a fresh prefix"
cmake -S "$ROOT" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DLURL_BUILD_TESTS=OFF >/dev/null
cmake --build "$tmp/build" -j2 >/dev/null
cmake --install "$tmp/build" --prefix "$prefix" >/dev/null
for f in bin/lurl include/lurl.h include/lurl_version.h lib/liblurl.a lib/pkgconfig/lurl.pc \
    lib/cmake/lurl/lurlConfig.cmake lib/cmake/lurl/lurlConfigVersion.cmake \
    lib/cmake/lurl/lurlTargets.cmake share/doc/lurl/LICENSE; do
    [[ -e $prefix/$f ]] || fail "$f is not installed"
done

step "the installed lurl runs the compiled-in library"
got=$("$prefix/bin/lurl" -e 'print(require("lurl").version)')
[[ $got == "$VERSION" ]] || fail "installed lurl says version '$got', expected '$VERSION'"

# Everything below runs outside the source tree and sees only the prefix.
cd "$tmp"
cp "$ROOT/examples/embed/host.c" .

step "cc host.c \$(pkg-config --cflags --libs lurl)"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[[ $(pkg-config --modversion lurl) == "$VERSION" ]] || fail "pkg-config --modversion lurl"
# word splitting of pkg-config's output is intended
# shellcheck disable=SC2046
cc -o host_pkgconfig host.c $(pkg-config --cflags --libs lurl)
./host_pkgconfig

step "a CMake project with find_package(lurl) and lurl::lurl"
mkdir consumer
cp host.c consumer/
cat >consumer/CMakeLists.txt <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(lurl $VERSION REQUIRED)
add_executable(host host.c)
target_link_libraries(host PRIVATE lurl::lurl)
CMAKE
cmake -S consumer -B consumer/build -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build consumer/build -j2 >/dev/null
consumer/build/host

echo "install_test: ok"
