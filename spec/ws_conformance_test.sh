#!/usr/bin/env bash
# WebSocket conformance of lurl's client: the Autobahn|Testsuite cases of
# sections 1-7, 9, 12 and 13 (framing, pings, reserved bits, opcodes,
# fragmentation, UTF-8, closing, limits, permessage-deflate), served by
# spec/interop/ws_fuzzingserver.py (an Autobahn fuzzingserver work-alike,
# scaled down: see its docstring) and run by spec/interop/ws_fuzzing_client.lua.
#   bash spec/ws_conformance_test.sh <path-to-lurl>     (from the repo root)
# The server judges every case (OK / NON-STRICT / INFORMATIONAL /
# UNIMPLEMENTED / FAILED); the test fails if any case FAILED. First, when
# Python's websockets library is there, the same cases run with it as the
# client: a strict, independent client that must not fail either, or the
# server's judgements are suspect. Both runs take 10 to 20 s; a client that
# hangs in every case is cut off after 60 s (reference) and 110 s (lurl).
set -u

LURL=${1:?usage: bash spec/ws_conformance_test.sh <path-to-lurl>}
PY=${WS_FUZZ_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import asyncio, zlib' 2>/dev/null; then
  echo "SKIPPED: $PY cannot run the fuzzing server"
  exit 0
fi
STOP_SIGNAL=TERM
. "$(dirname "$0")/interop/common.sh" ws_conformance
SERVER_LOG="$T/server.err"
REPORT="$T/report.json"

# start_fuzzer [ARGS]: the server with its report in $REPORT; sets URL.
start_fuzzer() {
  : >"$T/server.out"
  "$PY" -u spec/interop/ws_fuzzingserver.py --report "$REPORT" "$@" >"$T/server.out" 2>>"$T/server.err" &
  SERVER_PID=$!
  local port=
  for _ in $(seq 100); do          # up to ~10 s for the port line
    port=$(head -n 1 "$T/server.out" 2>/dev/null)
    case $port in ''|*[!0-9]*) port= ;; *) break ;; esac
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    fail "fuzzing server did not start"; echo "$PASSED passed, $FAILED failed"; exit 1
  fi
  URL="ws://127.0.0.1:$port"
  echo "fuzzing server on 127.0.0.1:$port $*"
}

# run_lurl AGENT: lurl's runner over the server's cases
run_lurl() {
  local start=$SECONDS
  if timeout 110 "$LURL" spec/interop/ws_fuzzing_client.lua "$URL" "$1" 2>"$T/client.err"; then
    pass "lurl ($1) ran every case ($((SECONDS - start)) s)"
  else
    fail "lurl's runner ($1) exit status $? after $((SECONDS - start)) s"; head -n 20 "$T/client.err"
  fi
}

# summarize AGENT [ARGS]: its verdicts; passes when no case FAILED
summarize() {
  echo; echo "=== $1 ==="
  if "$PY" spec/interop/ws_fuzzingserver.py --summarize "$REPORT" --agent "$@"; then
    pass "no case FAILED for $1"
  else
    fail "cases FAILED for $1 (above, with the frames the client sent)"
  fi
}

start_fuzzer

# websockets 10 (Debian 12) cannot deflate with a 256-octet window
# (client_max_window_bits=8: zlib refuses it), which cases 13.3 and 13.5 ask for.
REFERENCE_TOLERATED="13.3.*,13.5.*"
REFERENCE=
if WS_VERSION=$("$PY" -c 'import websockets; print(websockets.__version__)' 2>/dev/null); then
  REFERENCE=websockets
  start=$SECONDS
  if timeout 60 "$PY" spec/interop/ws_fuzzing_reference.py "$URL" websockets 2>"$T/reference.err"; then
    pass "reference client (websockets $WS_VERSION) ran every case ($((SECONDS - start)) s)"
  else
    fail "reference client (websockets $WS_VERSION) exit status $?"
  fi
else
  echo "(no reference run: $PY cannot import websockets; install python3-websockets)"
fi

run_lurl lurl
stop_server                      # the server writes the report as it stops
if [ ! -s "$REPORT" ]; then
  fail "no report from the fuzzing server"
else
  if [ -n "$REFERENCE" ]; then
    echo; echo "=== reference: websockets $WS_VERSION ==="
    if "$PY" spec/interop/ws_fuzzingserver.py --summarize "$REPORT" --agent websockets \
        --tolerate "$REFERENCE_TOLERATED" >"$T/reference.txt"; then
      pass "the server judges no case of the reference client FAILED (but $REFERENCE_TOLERATED)"
      sed -n '1,/^total/p' "$T/reference.txt"
    else
      fail "the server judges cases of the reference client FAILED: its judgements are suspect"
      cat "$T/reference.txt"
    fi
  fi
  summarize lurl
fi

# Autobahn's 13.2, 13.5 and 13.6 ask for client_no_context_takeover only of a
# client that offers it (lurl, like aiohttp, does not: UNIMPLEMENTED above);
# RFC 7692 7.1.1.2 lets a server ask anyway. Run them so.
start_fuzzer --cases '13.2.*,13.5.*,13.6.*' --deflate-rules rfc7692
run_lurl lurl-rfc7692
stop_server
summarize lurl-rfc7692

echo "ws_conformance: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
