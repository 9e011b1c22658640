# Shared by spec/interop_*_test.sh, sourced as
#   . "$(dirname "$0")/interop/common.sh" NAME
# after the test's skip checks, with LURL set: makes LURL absolute, moves to the
# repository root, creates the scratch directory T, and provides pass/fail
# counting and stopping the peer server. The test sets SERVER_PID, and
# SERVER_LOG for the log whose tail is shown when something failed.
LURL=$(cd "$(dirname "$LURL")" && pwd)/$(basename "$LURL")
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
T=$(mktemp -d "${TMPDIR:-/tmp}/lurl-$1.XXXXXX") || exit 1

FAILED=0
PASSED=0
SERVER_PID=
SERVER_LOG=

pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1"; }

# stop_server [SIGNAL]: ask politely (default TERM), wait up to 5 s, then kill.
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -"${1:-TERM}" "$SERVER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
}

cleanup() {
  stop_server "${STOP_SIGNAL:-TERM}"
  if [ "$FAILED" -ne 0 ] && [ -n "$SERVER_LOG" ] && [ -s "$SERVER_LOG" ]; then
    echo "--- $SERVER_LOG (last 20 lines) ---"; tail -n 20 "$SERVER_LOG"
  fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
