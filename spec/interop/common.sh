# shellcheck shell=bash
# Shared by spec/interop_*_test.sh, sourced as
#   . "$(dirname "$0")/interop/common.sh" NAME
# after the test's skip checks, with LURL set: makes LURL absolute, moves to the
# repository root, creates the scratch directory T, loads the nginx harness
# (spec/interop/nginx.sh, which scripts/bench uses too), and provides pass/fail
# counting, checks of nginx's logs and stopping the peer server. The test sets
# SERVER_PID (start_nginx does), and SERVER_LOG for the log whose tail is
# shown when something failed.
LURL=$(cd "$(dirname "$LURL")" && pwd)/$(basename "$LURL")
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
T=$(mktemp -d "${TMPDIR:-/tmp}/lurl-$1.XXXXXX") || exit 1
. spec/interop/nginx.sh

FAILED=0
PASSED=0
SERVER_PID=
SERVER_LOG=

pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1"; }

# stop_server [SIGNAL]: the peer server, as stop_pid stops it.
stop_server() {
  stop_pid "$SERVER_PID" "${1:-TERM}"
  SERVER_PID=
}

# check_error_log LEVELS: a pass or a fail for nginx's error log holding no
# line at these levels (an extended regex such as "alert|crit|emerg").
check_error_log() {
  if grep -aE "\[($1)\]" "$T/error.log" >/dev/null; then
    fail "error.log has [$1] lines"; grep -aE "\[($1)\]" "$T/error.log" | head
  else
    pass "error.log: no [$1] lines"
  fi
}

# check_keepalive_log UA FIELD WHAT: the access log lines whose User-Agent
# is UA must be 20 requests on one connection (its id in field FIELD of the
# log format); WHAT names the connection in the pass line. Leaves the lines
# in KA for the caller's own checks.
check_keepalive_log() {
  KA=$(grep -a "\"$1\"\$" "$T/access.log" 2>/dev/null)
  local n conns
  n=$(printf '%s\n' "$KA" | grep -c . )
  conns=$(printf '%s\n' "$KA" | awk -v f="$2" 'NF { print $f }' | sort -u | wc -l)
  if [ "$n" -eq 20 ] && [ "$conns" -eq 1 ]; then
    pass "access log: 20 keep-alive requests on 1 $3"
  else
    fail "access log: want 20 requests on 1 connection, got $n requests on $conns connection(s)"
  fi
}

# start_port_server CMD...: run a peer server that prints its port on its
# first line of stdout; sets SERVER_PID and PORT (empty when it did not
# start within about 10 s). Its stderr goes to $T/server.err.
start_port_server() {
  "$@" >"$T/server.out" 2>"$T/server.err" &
  SERVER_PID=$!
  PORT=
  for _ in $(seq 100); do
    PORT=$(head -n 1 "$T/server.out" 2>/dev/null)
    case $PORT in ''|*[!0-9]*) PORT= ;; *) break ;; esac
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
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
