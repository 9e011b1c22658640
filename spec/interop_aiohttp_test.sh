#!/usr/bin/env bash
# Interop: lurl against Python's aiohttp server, started and stopped here.
#   bash spec/interop_aiohttp_test.sh <path-to-lurl>     (from the repo root)
# The server (spec/interop/aiohttp_server.py) binds 127.0.0.1 port 0 and prints
# its port; the client side is spec/interop/aiohttp_client.lua (requests and
# responses) and spec/interop/aiohttp_bodies.lua (request bodies as aiohttp's
# parsers read them).
set -u

LURL=${1:?usage: bash spec/interop_aiohttp_test.sh <path-to-lurl>}
# Debian's python3-aiohttp imports under the system Python only, not under
# whatever python3 comes first on PATH.
PY=${AIOHTTP_PYTHON:-/usr/bin/python3}
if ! AIOHTTP_VERSION=$("$PY" -c 'import aiohttp; print(aiohttp.__version__)' 2>/dev/null); then
  echo "SKIPPED: $PY cannot import aiohttp (install python3-aiohttp)"
  exit 0
fi
STOP_SIGNAL=TERM
. "$(dirname "$0")/interop/common.sh" aiohttp
SERVER_LOG="$T/server.err"

start_port_server "$PY" -u spec/interop/aiohttp_server.py
if [ -z "$PORT" ]; then
  fail "aiohttp server did not start"; echo "0 passed, 1 failed"; exit 1
fi
echo "aiohttp $AIOHTTP_VERSION ($PY) on 127.0.0.1:$PORT"

if timeout 180 "$LURL" spec/interop/aiohttp_client.lua "http://127.0.0.1:$PORT"; then
  pass "aiohttp_client.lua"
else
  fail "aiohttp_client.lua (exit status $?)"
fi

# Request bodies (forms, multipart, files, generators, chunked, redirects)
# against aiohttp's parsers. The files are random; their digests come from
# sha256sum here (Lua has none), in its own format, for the client to compare
# with what the server computed from the bytes it parsed.
FILES="$T/files"
mkdir -p "$FILES"
head -c $((3 * 1048576 + 12345)) /dev/urandom >"$FILES/big.bin"
head -c $((1048576 + 1)) /dev/urandom >"$FILES/photo.png"
head -c 1000 /dev/urandom >"$FILES/notes.dat"
: >"$FILES/empty.txt"
(cd "$FILES" && sha256sum big.bin photo.png notes.dat empty.txt) >"$T/SHA256SUMS"
if timeout 180 "$LURL" spec/interop/aiohttp_bodies.lua "http://127.0.0.1:$PORT" "$FILES" "$T/SHA256SUMS"; then
  pass "aiohttp_bodies.lua"
else
  fail "aiohttp_bodies.lua (exit status $?)"
fi

if kill -0 "$SERVER_PID" 2>/dev/null; then
  pass "server still running after the clients"
else
  fail "server died during the client runs"
fi
# aiohttp logs handler exceptions and protocol errors ("Error handling request")
if grep -E 'Traceback|Error handling request' "$T/server.err" >/dev/null; then
  fail "server logged errors"; grep -E -A3 'Traceback|Error handling request' "$T/server.err" | head -20
else
  pass "server logged no errors"
fi

stop_server
echo "interop_aiohttp: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
