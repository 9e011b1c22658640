#!/usr/bin/env bash
# Interop on the wire: lurl and Debian's aiohttp client send the same
# requests (HTTP/1.0, requote_redirect_url = false, raw bodies and their
# Content-Type, compress = true) to one raw echo server, which records the
# exact bytes; spec/interop/wire_compare.py compares them byte for byte and
# checks each expected difference on both sides.
#   bash spec/interop_aiohttp_wire_test.sh <path-to-lurl>     (from the repo root)
# Server: spec/interop/wire_echo_server.py; clients:
# spec/interop/wire_lurl_client.lua and spec/interop/wire_aiohttp_client.py.
set -u

LURL=${1:?usage: bash spec/interop_aiohttp_wire_test.sh <path-to-lurl>}
# Debian's python3-aiohttp imports under the system Python only
PY=${AIOHTTP_PYTHON:-/usr/bin/python3}
if ! AIOHTTP_VERSION=$("$PY" -c 'import aiohttp; print(aiohttp.__version__)' 2>/dev/null); then
  echo "SKIPPED: $PY cannot import aiohttp (install python3-aiohttp)"
  exit 0
fi
STOP_SIGNAL=TERM
. "$(dirname "$0")/interop/common.sh" aiohttp-wire
SERVER_LOG="$T/server.err"

start_port_server "$PY" -u spec/interop/wire_echo_server.py
if [ -z "$PORT" ]; then
  fail "echo server did not start"; echo "0 passed, 1 failed"; exit 1
fi
echo "aiohttp $AIOHTTP_VERSION ($PY), echo server on 127.0.0.1:$PORT"
BASE="http://127.0.0.1:$PORT"
mkdir -p "$T/aiohttp" "$T/lurl"

if timeout 60 "$PY" spec/interop/wire_aiohttp_client.py "$BASE" "$T/aiohttp"; then
  pass "wire_aiohttp_client.py"
else
  fail "wire_aiohttp_client.py (exit status $?)"
fi
if timeout 60 "$LURL" spec/interop/wire_lurl_client.lua "$BASE" "$T/lurl"; then
  pass "wire_lurl_client.lua"
else
  fail "wire_lurl_client.lua (exit status $?)"
fi
if "$PY" spec/interop/wire_compare.py "$T/aiohttp" "$T/lurl"; then
  pass "the same bytes on the wire, or the expected difference"
else
  fail "the requests differ (lines above)"
fi
# what aiohttp sends for a str body, for the record: a Lua string is bytes
if [ -s "$T/aiohttp/info.str_body" ]; then
  echo "aiohttp, data=str: $(grep -a -i '^content-type' "$T/aiohttp/info.str_body" | tr -d '\r')"
fi

if grep -E 'Traceback' "$T/server.err" >/dev/null; then
  fail "server logged errors"; head -20 "$T/server.err"
else
  pass "server logged no errors"
fi

stop_server
echo "interop_aiohttp_wire: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
